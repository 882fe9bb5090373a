//! The Quick start demo: the operator against moto (ECR) and the in-process Kubernetes API
//! server double. Applies `config/samples/`, waits until they are Ready and prints them the way
//! `kubectl get ecr` would. Exits non-zero when a sample does not become Ready.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ecr_operator::api::resource_for;
use ecr_operator::controllers::{self, Context};
use ecr_operator::registry::{EcrRegistry, Registry};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use testbed::kube_env::KubeEnv;
use testbed::moto::Moto;

/// Kinds whose controllers run today; the others are applied and shown as not reconciled yet.
const RECONCILED: &[&str] = &[
    "Repository",
    "LifecyclePolicy",
    "ReplicationConfig",
    "PullThroughCacheRule",
    "ScanPolicy",
    "RepositoryAccessPolicy",
    "RegistryPolicy",
    "RegistrySettings",
    "RepositoryCreationTemplate",
    "PublicRepository",
    "RegistryTarget",
];

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match demo().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn api_for(client: &kube::Client, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

async fn demo() -> Result<bool, Failure> {
    println!("starting moto (ECR) and the Kubernetes API server double ...");
    let moto = Moto::start().await?;
    let kube = KubeEnv::double().await?;
    let client = kube.client();
    println!("  ECR endpoint  {}", moto.endpoint());
    if let Some(server) = kube.server() {
        println!("  Kubernetes    {}", server.url());
    }

    let registry =
        Arc::new(EcrRegistry::from_client(moto.ecr_client()).with_ecr_public(&moto.sdk_config()));
    let config = controllers::Config {
        sweep_interval: Duration::from_secs(2),
        deep_sweep_interval: Duration::from_secs(30),
        scan_refresh_interval: Duration::from_secs(2),
        ..controllers::Config::default()
    };
    // The sample RegistryTarget's role is assumed through moto's STS (another account there).
    let targets =
        ecr_operator::registry::TargetPool::new(moto.sdk_config(), registry.shared_stats());
    let ctx = Arc::new(
        Context::new(client.clone(), registry.clone(), config).with_targets(Arc::new(targets)),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(controllers::run(ctx, async move {
        let _ = stop_rx.await;
    }));
    println!("operator started; applying config/samples/ ...");

    // Apply every sample, creating namespaces as needed.
    let dir = testbed::workspace_root().join("config/samples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    paths.sort();
    let mut applied: Vec<(String, Option<String>, String)> = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let obj: DynamicObject = serde_yaml::from_str(&text)?;
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        let Some(ar) = resource_for(&kind) else {
            return Err(format!("{}: unknown kind {kind}", path.display()).into());
        };
        let ns = obj.metadata.namespace.clone();
        if let Some(ns) = &ns {
            kube.ensure_namespace(ns).await?;
        }
        let name = obj.metadata.name.clone().unwrap_or_default();
        api_for(&client, &ar, ns.as_deref())
            .create(&PostParams::default(), &obj)
            .await
            .map_err(|e| format!("applying {}: {e}", path.display()))?;
        println!("  {kind}/{name} created");
        applied.push((kind, ns, name));
    }

    // Wait until every reconciled sample is Ready at its current generation.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    let mut rows;
    loop {
        rows = Vec::new();
        let mut all_ready = true;
        for (kind, ns, name) in &applied {
            let ar = resource_for(kind).ok_or("unknown kind")?;
            let obj = api_for(&client, &ar, ns.as_deref()).get(name).await?;
            let row = Row::of(kind, ns.as_deref(), name, &obj);
            if RECONCILED.contains(&kind.as_str()) && !row.ready_now {
                all_ready = false;
            }
            rows.push(row);
        }
        if all_ready || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_ready = rows
        .iter()
        .filter(|r| RECONCILED.contains(&r.kind.as_str()))
        .all(|r| r.ready_now);
    println!(
        "\n$ kubectl get ecr -A   (after {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    print_table(&rows);

    print_repositories(
        "the operator's account",
        &registry.list_repositories().await?,
    );
    // The sample RegistryTarget's registry, reached as the operator reaches it.
    let target: ecr_operator::api::RegistryTarget =
        Api::all(client.clone()).get("shared-services").await?;
    let pool: ecr_operator::registry::TargetPool<()> =
        ecr_operator::registry::TargetPool::new(moto.sdk_config(), Arc::default());
    let other = pool.client("shared-services", &target.spec).await?;
    let account = format!(
        "account {} (RegistryTarget shared-services)",
        target.spec.registry_id
    );
    print_repositories(&account, &other.registry.list_repositories().await?);
    println!(
        "ECR calls made by the operator: {} ({} writes)",
        registry.stats().total(),
        registry.stats().writes()
    );

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), operator).await;
    if !all_ready {
        eprintln!("\nnot every reconciled sample became Ready within 90 s");
    }
    Ok(all_ready)
}

fn print_repositories(whose: &str, repos: &[ecr_operator::registry::RepositoryInfo]) {
    println!("\nECR in {whose} holds {} repositories:", repos.len());
    for r in repos {
        println!(
            "  {}  {}  scanOnPush={}",
            r.uri, r.tag_mutability, r.scan_on_push
        );
    }
}

struct Row {
    kind: String,
    namespace: String,
    name: String,
    ready: String,
    reason: String,
    detail: String,
    ready_now: bool,
}

impl Row {
    fn of(kind: &str, ns: Option<&str>, name: &str, obj: &DynamicObject) -> Row {
        let status = obj.data.get("status");
        let ready = status
            .and_then(|s| s.get("conditions"))
            .and_then(|c| c.as_array())
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
        let observed = status
            .and_then(|s| s.get("observedGeneration"))
            .and_then(|g| g.as_i64());
        let ready_now =
            ready.is_some_and(|c| c["status"] == "True") && observed == obj.metadata.generation;
        let detail = status
            .and_then(|s| s.get("repositoryUri"))
            .and_then(|u| u.as_str())
            .map(str::to_string)
            .or_else(|| {
                ready
                    .and_then(|c| c["message"].as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Row {
            kind: kind.to_string(),
            namespace: ns.unwrap_or("").to_string(),
            name: name.to_string(),
            ready: ready
                .and_then(|c| c["status"].as_str())
                .unwrap_or("-")
                .to_string(),
            reason: ready
                .and_then(|c| c["reason"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| {
                    if RECONCILED.contains(&kind) {
                        "Pending".to_string()
                    } else {
                        "NotReconciledYet".to_string()
                    }
                }),
            detail,
            ready_now,
        }
    }
}

fn print_table(rows: &[Row]) {
    let header = ["NAMESPACE", "NAME", "READY", "REASON", "URI / MESSAGE"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let gvk = GroupVersionKind::gvk("ecr.operator.dev", "v1alpha1", &r.kind);
            [
                r.namespace.clone(),
                format!("{}/{}", gvk.kind.to_lowercase(), r.name),
                r.ready.clone(),
                r.reason.clone(),
                r.detail.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: [&str; 5]| {
        let mut out = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i == 4 {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out
    };
    println!("{}", line(header));
    for row in &cells {
        println!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
}
