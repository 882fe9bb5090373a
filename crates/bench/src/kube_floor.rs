//! The Kubernetes side of `repos-real`'s floor: what the real API server alone takes for the
//! writes convergence needs, with no operator and no ECR. N Repository objects are created as
//! the load does (32 at a time), then each gets the writes the Repository controller makes for a
//! new repository, 16 in flight as its concurrency: its finalizer (a JSON merge patch), its
//! status (server-side apply of `/status`, field manager `ecr-operator`, forced) and the Normal
//! Event of its creation (events.k8s.io/v1). Run in a namespace of its own after the operator
//! stopped, so that nothing reconciles these objects.

use std::time::{Duration, Instant};

use ecr_operator::api::Repository;
use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::util::{BenchError, Result};

/// How long the API server took for the creates, and for the controller's writes after them
/// (each kind of write its own phase: finalizers, then statuses, then Events).
pub struct KubeFloor {
    pub creates: Duration,
    pub writes: Duration,
    /// (finalizers, statuses, Events).
    pub phases: [Duration; 3],
}

pub async fn measure(
    kube: &testbed::kube_env::KubeEnv,
    n: usize,
    concurrency: usize,
) -> Result<KubeFloor> {
    let client = kube.client();
    let namespace = kube.namespace("bench-kube-floor").await?;
    let api: Api<Repository> = Api::namespaced(client.clone(), &namespace);
    let started = Instant::now();
    run_all(n, 32, |i| {
        let api = api.clone();
        async move {
            let mut repo = crate::repos::repository(i)?;
            repo.metadata.namespace = None;
            api.create(&PostParams::default(), &repo).await?;
            Ok(())
        }
    })
    .await?;
    let creates = started.elapsed();
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    // What the controller holds from its watch: read once, not timed.
    let held: std::collections::BTreeMap<String, Repository> = api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect();
    let mut phases = [Duration::ZERO; 3];
    for (phase, took) in phases.iter_mut().enumerate() {
        let started = Instant::now();
        run_all(n, concurrency, |i| {
            let (api, events, namespace) = (api.clone(), events.clone(), namespace.clone());
            let repo = held.get(&format!("app-{i:05}")).cloned();
            async move {
                let repo =
                    repo.ok_or_else(|| BenchError::Scenario(format!("app-{i:05} not listed")))?;
                controller_write(&api, &events, &namespace, &repo, phase).await
            }
        })
        .await?;
        *took = started.elapsed();
    }
    Ok(KubeFloor {
        creates,
        writes: phases.iter().sum(),
        phases,
    })
}

/// Runs `task(0..n)`, `parallel` at a time; the first failure fails all.
async fn run_all<F, Fut>(n: usize, parallel: usize, task: F) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(task)
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

/// One of the three writes of a new Repository (`phase`): 0 its finalizer, 1 its status, 2 the
/// Event of its creation.
async fn controller_write(
    api: &Api<Repository>,
    events: &Api<Event>,
    namespace: &str,
    repo: &Repository,
    phase: usize,
) -> Result<()> {
    let name = repo.metadata.name.clone().unwrap_or_default();
    if phase == 0 {
        let finalizer = json!({"metadata": {"finalizers": ["ecr.operator.dev/finalizer"]}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&finalizer))
            .await?;
        return Ok(());
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = json!({
        "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "Repository",
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "Created",
                "message": "created", "lastTransitionTime": now,
                "observedGeneration": repo.metadata.generation}],
            "observedGeneration": repo.metadata.generation,
            "repositoryName": format!("bench/{name}"),
            "repositoryArn": format!("arn:aws:ecr:us-east-1:123456789012:repository/bench/{name}"),
            "repositoryUri": format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/bench/{name}"),
            "registryId": "123456789012",
        }
    });
    if phase == 1 {
        api.patch_status(
            &name,
            &PatchParams::apply("ecr-operator").force(),
            &Patch::Apply(&status),
        )
        .await?;
        return Ok(());
    }
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}.create"), "namespace": namespace},
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "reportingController": "ecr.operator.dev/ecr-operator",
        "reportingInstance": "bench",
        "action": "Create", "reason": "Created", "type": "Normal",
        "note": format!("created ECR repository bench/{name}"),
        "regarding": {"apiVersion": "ecr.operator.dev/v1alpha1", "kind": "Repository",
            "name": name, "namespace": namespace, "uid": repo.metadata.uid},
    }))
    .map_err(|e| BenchError::Scenario(format!("event fixture: {e}")))?;
    events.create(&PostParams::default(), &event).await?;
    Ok(())
}
