//! Repository convergence across four RegistryTargets (issue #16): N Repositories, a quarter in
//! each of four accounts of moto reached by assuming a role there through moto's STS, with the
//! RegistryTarget and Repository controllers in this process against the API server double.
//! Beside `repo_converge_1000_s` of the `repos` scenario (one registry, same N, same
//! concurrency), and the calls of one resync sweep per target (ceil(N/4/1000) DescribeRepositories
//! pages expected).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ecr_operator::api::{RegistryTarget, Repository, RepositoryAccessPolicy};
use ecr_operator::controllers::{self, Context};
use ecr_operator::registry::{EcrRegistry, TargetPool};
use futures::FutureExt;
use kube::api::{Api, PostParams};
use testbed::moto::Moto;

use crate::Sizes;
use crate::figures::Figures;
use crate::repos::{GROUP, NAMESPACE, all_ready};
use crate::util::{self, BenchError, Result, calls_delta, describe, poll};

const TARGETS: usize = 4;

fn account(t: usize) -> String {
    format!("21000000000{t}")
}

fn fixture<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| BenchError::Scenario(format!("fixture: {e}")))
}

/// The four targets, and a grant of every target to every namespace.
async fn create_targets(client: &kube::Client) -> Result<()> {
    let grant: RepositoryAccessPolicy = fixture(serde_json::json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "RepositoryAccessPolicy",
        "metadata": {"name": "bench-targets"},
        "spec": {"namespaces": {"selector": {}}, "repositories": ["*"], "registryTargets": ["*"]},
    }))?;
    Api::<RepositoryAccessPolicy>::all(client.clone())
        .create(&PostParams::default(), &grant)
        .await?;
    let api = Api::<RegistryTarget>::all(client.clone());
    for t in 0..TARGETS {
        let target: RegistryTarget = fixture(serde_json::json!({
            "apiVersion": "ecr.operator.dev/v1alpha1",
            "kind": "RegistryTarget",
            "metadata": {"name": format!("target-{t}")},
            "spec": {
                "registryId": account(t),
                "region": "us-east-1",
                "assumeRole": {"roleArn": format!("arn:aws:iam::{}:role/bench", account(t))},
            },
        }))?;
        api.create(&PostParams::default(), &target).await?;
    }
    Ok(())
}

/// Repository `i` in target `i % 4`.
async fn create_repositories(client: &kube::Client, n: usize, parallel: usize) -> Result<()> {
    use futures::StreamExt;
    let api: Api<Repository> = Api::namespaced(client.clone(), NAMESPACE);
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let mut repo = crate::repos::repository(i)?;
                repo.spec.registry_ref = Some(fixture(
                    serde_json::json!({"name": format!("target-{}", i % TARGETS)}),
                )?);
                api.create(&PostParams::default(), &repo).await?;
                Ok(())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let n = sizes.repos;
    let moto = Moto::start().await?;
    let (server, client) = util::double().await?;
    create_targets(&client).await?;
    let sweep = Duration::from_secs(if sizes.quick { 2 } else { 10 });
    let config = controllers::Config {
        cluster_id: "bench".to_string(),
        sweep_interval: sweep,
        deep_sweep_interval: Duration::from_secs(3600),
        concurrency: sizes.concurrency,
        operator_namespace: "ecr-operator-system".to_string(),
        ..controllers::Config::default()
    };
    let registry = Arc::new(EcrRegistry::from_client(moto.ecr_client()));
    let pool = TargetPool::new(moto.sdk_config(), registry.shared_stats());
    let ctx = Arc::new(
        Context::new(client.clone(), registry.clone(), config).with_targets(Arc::new(pool)),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = stopped.map(drop).shared();
    let run_ctx = ctx.clone();
    let operator = tokio::spawn(async move {
        tokio::try_join!(
            controllers::registry_target::run(run_ctx.clone(), shutdown.clone()),
            controllers::repository::run(
                run_ctx.clone(),
                controllers::access::Grants::start(&run_ctx),
                controllers::targets::TargetIndex::start(&run_ctx),
                shutdown,
            ),
        )
        .map(drop)
    });
    let ready_targets = || {
        let ready = server
            .objects(GROUP, "registrytargets")
            .iter()
            .filter(|o| util::is_ready(o))
            .count();
        std::future::ready((ready == TARGETS).then_some(()))
    };
    poll(
        "four targets Ready",
        Duration::from_millis(20),
        Duration::from_secs(60),
        ready_targets,
    )
    .await?;

    let calls0 = moto.calls().await?;
    let started = Instant::now();
    create_repositories(&client, n, 32).await?;
    all_ready(
        &server,
        n,
        Duration::from_millis(100),
        Duration::from_secs(600),
    )
    .await?;
    let converge = started.elapsed();
    let converge_calls = calls_delta(&calls0, &moto.calls().await?);
    eprintln!(
        "   {n} Repositories in {TARGETS} targets Ready after {:.2} s; ECR calls: {}",
        converge.as_secs_f64(),
        describe(&converge_calls)
    );
    // They are in the targets' accounts, none in the operator's own.
    use ecr_operator::registry::Registry;
    let own = registry
        .list_repositories()
        .await
        .map_err(|e| BenchError::Scenario(format!("listing the own registry: {e}")))?
        .len();
    if own != 0 {
        return Err(BenchError::Scenario(format!(
            "{own} repositories in the operator's own registry; all belong to the targets"
        )));
    }
    figures.add(
        &format!("repo_converge_{n}_4targets_s"),
        converge.as_secs_f64(),
        "s",
        "issue #16: a quarter of the Repositories in each of 4 accounts (assumed roles), created 32 at a time, until all Ready; compare repo_converge_1000_s (one registry)",
    );

    // Sweeps of every target: DescribeRepositories calls per completed sweep (each target
    // sweeps on its own clock; its inventory counts the sweeps it completed). The operator's own
    // registry, empty here, sweeps too: its one page per sweep is counted with it.
    let sweeps = || -> u64 {
        let targets: u64 = (0..TARGETS)
            .filter_map(|t| ctx.targets.get(&format!("target-{t}")))
            .map(|c| c.state.sweeps())
            .sum();
        targets + ctx.inventory.sweeps()
    };
    let describes = |calls: &util::Calls| calls.get("DescribeRepositories").copied().unwrap_or(0);
    let (sweeps0, calls1) = (sweeps(), moto.calls().await?);
    let more = 2 * (TARGETS as u64 + 1);
    poll(
        "two sweeps of every target",
        Duration::from_millis(20),
        sweep * 4,
        || std::future::ready((sweeps() >= sweeps0 + more).then_some(())),
    )
    .await?;
    let (swept, sweep_calls) = (
        sweeps() - sweeps0,
        calls_delta(&calls1, &moto.calls().await?),
    );
    let per_target = describes(&sweep_calls) as f64 / swept as f64;
    eprintln!("   {swept} target sweeps: {}", describe(&sweep_calls));
    figures.add(
        "ecr_calls_per_sweep_per_target",
        per_target,
        "calls",
        "issue #16: DescribeRepositories pages per completed registry sweep, the 4 targets' and the own registry's (target: ceil(N/4/1000), 1 at N=1000; a sweep in flight at either end counts a page more or less)",
    );
    if util::writes(&sweep_calls) > 0 {
        return Err(BenchError::Scenario(format!(
            "writes during a sweep of converged targets: {}",
            describe(&sweep_calls)
        )));
    }
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(30), operator).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(BenchError::Scenario(format!("operator stopped: {e}"))),
        Ok(Err(e)) => Err(BenchError::Scenario(format!("operator task: {e}"))),
        Err(_) => Err(BenchError::Scenario("operator did not stop in 30 s".into())),
    }
}
