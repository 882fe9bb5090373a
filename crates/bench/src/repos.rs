//! Repository scenarios, with the Repository controller in this process (the same
//! `controllers::repository::run` that `ecr-operator run` starts) against moto and the double.
//!
//! 1. Floor: N CreateRepository calls straight from aws-sdk-ecr at the operator's concurrency.
//! 2. Converge: N Repository objects created, timed until all are Ready; ECR calls counted.
//! 3. Resync: one frequent sweep of the N unchanged objects (DescribeRepositories pages and the
//!    reconcile of every object it triggers), timed for no-op reconciles per second.
//! 4. Deep sweep: a fresh controller (as after a restart) whose per-object tag and policy checks
//!    come due, counted until every object was checked once.
//! 5. The same deep sweep after every Repository was given a repository policy (so every check
//!    reads it back too).
//!
//! Only the Repository controller runs, so the ImageScanReport loop's calls (one DescribeImages
//! per Ready repository per sweep interval) do not mix into these counts; BENCHMARKS.md says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver_double::ApiServer;
use ecr_operator::api::Repository;
use ecr_operator::controllers::{self, Context};
use ecr_operator::registry::EcrRegistry;
use ecr_operator::telemetry::metrics::Metrics;
use futures::StreamExt;
use kube::api::{Api, PostParams};
use testbed::moto::Moto;

use crate::Sizes;
use crate::figures::Figures;
use crate::util::{self, BenchError, Result, calls_delta, describe, poll, total};

pub const GROUP: &str = "ecr.operator.dev";
pub const NAMESPACE: &str = "bench";

/// The Repository controller running in this process.
pub struct Operator {
    pub ctx: Arc<Context>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<EcrRegistry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl Operator {
    /// Starts the Repository controller alone (`all: false`) or every controller, as
    /// `controllers::run` does (`all: true`).
    pub fn start(
        client: &kube::Client,
        moto: &Moto,
        config: controllers::Config,
        all: bool,
    ) -> Operator {
        Self::launch(client, moto, config, None, all)
    }

    /// Every controller, the ImageScanReport loop also reading scan events from the SQS queue
    /// at `queue_url` (as `--scan-events-queue-url` makes it).
    pub fn start_reading_events(
        client: &kube::Client,
        moto: &Moto,
        config: controllers::Config,
        queue_url: &str,
    ) -> Operator {
        Self::launch(client, moto, config, Some(queue_url), true)
    }

    fn launch(
        client: &kube::Client,
        moto: &Moto,
        config: controllers::Config,
        queue_url: Option<&str>,
        all: bool,
    ) -> Operator {
        let registry = Arc::new(EcrRegistry::from_client(moto.ecr_client()));
        let stats = registry.shared_stats();
        let metrics = Arc::new(Metrics::new(Arc::new(move || {
            stats
                .snapshot()
                .into_iter()
                .map(|((op, outcome), n)| ((op.to_string(), outcome.to_string()), n))
                .collect()
        })));
        let ctx =
            Context::new(client.clone(), registry.clone(), config).with_metrics(metrics.clone());
        let ctx = Arc::new(match queue_url {
            Some(url) => ctx.with_scan_events(ecr_operator::registry::ScanEventQueue::new(
                moto.sqs_client(),
                url.to_string(),
                registry.shared_stats(),
            )),
            None => ctx,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run_ctx = ctx.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let result = if all {
                controllers::run(run_ctx, shutdown).await
            } else {
                controllers::repository::run(
                    run_ctx.clone(),
                    controllers::access::Grants::start(&run_ctx),
                    controllers::targets::TargetIndex::start(&run_ctx),
                    shutdown,
                )
                .await
            };
            result.map_err(|e| BenchError::Scenario(format!("operator stopped: {e}")))
        });
        Operator {
            ctx,
            metrics,
            registry,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn reconciles(&self) -> u64 {
        self.metrics.reconciles("repository", "success")
    }

    /// Waits until the first sweep has filled the inventory.
    pub async fn synced(&self) -> Result<()> {
        let ctx = self.ctx.clone();
        poll(
            "the first repository sweep",
            Duration::from_millis(10),
            Duration::from_secs(60),
            || {
                let ctx = ctx.clone();
                async move { (ctx.inventory.sweeps() > 0).then_some(()) }
            },
        )
        .await
    }

    /// Stops gracefully and reports whether the controller had failed.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(BenchError::Scenario(format!("operator task: {e}"))),
                Err(_) => Err(BenchError::Scenario("operator did not stop in 30 s".into())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A Repository as a platform team writes one: immutable tags, scan on push, two tags.
pub fn repository(i: usize) -> Result<Repository> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": format!("app-{i:05}"), "namespace": NAMESPACE},
        "spec": {
            "repositoryName": format!("bench/app-{i:05}"),
            "imageTagMutability": "IMMUTABLE",
            "scanOnPush": true,
            "tags": {"team": format!("team-{}", i % 17), "env": "prod"},
        }
    }))
    .map_err(|e| BenchError::Scenario(format!("Repository fixture: {e}")))
}

/// Creates Repositories `0..n` through the Kubernetes API, `parallel` at a time.
pub async fn create_repositories(client: &kube::Client, n: usize, parallel: usize) -> Result<()> {
    create_repository_range(client, 0..n, parallel).await
}

/// Creates Repositories `range` through the Kubernetes API, `parallel` at a time.
pub async fn create_repository_range(
    client: &kube::Client,
    range: std::ops::Range<usize>,
    parallel: usize,
) -> Result<()> {
    let api: Api<Repository> = Api::namespaced(client.clone(), NAMESPACE);
    let results: Vec<Result<()>> = futures::stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move {
                let repo = repository(i)?;
                api.create(&PostParams::default(), &repo).await?;
                Ok(())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Waits until `n` Repositories are Ready, reading the double's state directly (no HTTP, so the
/// wait does not load the API server the operator uses).
pub async fn all_ready(
    server: &ApiServer,
    n: usize,
    every: Duration,
    timeout: Duration,
) -> Result<()> {
    let mut last = 0;
    let result = poll(&format!("{n} Repositories Ready"), every, timeout, || {
        let ready = server
            .objects(GROUP, "repositories")
            .iter()
            .filter(|o| util::is_ready(o))
            .count();
        last = ready;
        std::future::ready((ready >= n).then_some(()))
    })
    .await;
    if result.is_err() {
        eprintln!("   only {last} of {n} Ready");
    }
    result
}

/// Write requests the double received (create, update, patch, delete).
fn kube_writes(server: &ApiServer) -> u64 {
    server
        .request_counts()
        .iter()
        .filter(|((verb, _), _)| matches!(verb.as_str(), "create" | "update" | "patch" | "delete"))
        .map(|(_, n)| n)
        .sum()
}

/// The floor: `n` CreateRepository calls with `concurrency` in flight, straight from the SDK.
async fn floor(moto: &Moto, n: usize, concurrency: usize) -> Result<Duration> {
    let client = moto.ecr_client();
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                client
                    .create_repository()
                    .repository_name(format!("floor/app-{i:05}"))
                    .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
                    .image_scanning_configuration(
                        aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                            .scan_on_push(true)
                            .build(),
                    )
                    .tags(
                        aws_sdk_ecr::types::Tag::builder()
                            .key("team")
                            .value("t")
                            .build()
                            .map_err(|e| BenchError::ecr("Tag", e))?,
                    )
                    .send()
                    .await
                    .map_err(|e| BenchError::ecr("CreateRepository", e))?;
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let took = started.elapsed();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(took)
}

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let n = sizes.repos;
    let moto = Moto::start().await?;
    let (server, client) = util::double().await?;

    // 1. The floor, then a clean moto so the operator's sweeps see only its own repositories.
    let floor = floor(&moto, n, usize::from(sizes.concurrency)).await?;
    moto.reset().await?;

    // 2. Converge. Frequent sweeps (every 10 s) so the resync below comes soon; deep checks far
    // off so none mixes into these counts.
    let sweep = Duration::from_secs(if sizes.quick { 2 } else { 10 });
    let config = controllers::Config {
        cluster_id: "bench".to_string(),
        sweep_interval: sweep,
        deep_sweep_interval: Duration::from_secs(3600),
        concurrency: sizes.concurrency,
        operator_namespace: "ecr-operator-system".to_string(),
        ..controllers::Config::default()
    };
    let op = Operator::start(&client, &moto, config.clone(), false);
    op.synced().await?;
    let calls0 = moto.calls().await?;
    let started = Instant::now();
    create_repositories(&client, n, 32).await?;
    let created = started.elapsed();
    // Every 100 ms: reading 1000 objects more often would itself load the two shared cores.
    all_ready(
        &server,
        n,
        Duration::from_millis(100),
        Duration::from_secs(600),
    )
    .await?;
    let converge = started.elapsed();
    let create_calls = calls_delta(&calls0, &moto.calls().await?);
    eprintln!(
        "   created {n} objects in {:.2} s, all Ready after {:.2} s; ECR calls: {}",
        created.as_secs_f64(),
        converge.as_secs_f64(),
        describe(&create_calls)
    );

    // 3. One frequent sweep of n unchanged Ready repositories.
    let writes0 = op.registry.shared_stats().writes();
    let calls1 = moto.calls().await?;
    let kube_writes0 = kube_writes(&server);
    let sweeps = op.ctx.inventory.sweeps();
    let reconciled = op.reconciles();
    let ctx = op.ctx.clone();
    poll(
        "the next sweep",
        Duration::from_millis(2),
        sweep * 3,
        || {
            let ctx = ctx.clone();
            async move { (ctx.inventory.sweeps() > sweeps).then_some(()) }
        },
    )
    .await?;
    let sweep_done = Instant::now();
    let reconciles = op.metrics.clone();
    poll(
        "the sweep's reconciles",
        Duration::from_millis(2),
        Duration::from_secs(120),
        || {
            let done = reconciles.reconciles("repository", "success") >= reconciled + n as u64;
            std::future::ready(done.then_some(()))
        },
    )
    .await?;
    let noop_elapsed = sweep_done.elapsed();
    let resync_calls = calls_delta(&calls1, &moto.calls().await?);
    let resync_writes = op.registry.shared_stats().writes() - writes0;
    let resync_kube_writes = kube_writes(&server) - kube_writes0;
    if op.ctx.inventory.sweeps() > sweeps + 1 {
        return Err(BenchError::Scenario(
            "a second sweep started before the first one's reconciles ended".into(),
        ));
    }
    eprintln!(
        "   resync: {n} reconciles in {:.3} s; ECR calls: {}",
        noop_elapsed.as_secs_f64(),
        describe(&resync_calls)
    );
    op.stop().await?;

    // 4. Deep sweep, with a controller started afresh (as after a restart or failover): its
    // first pass reads nothing per object and spreads the tag and policy checks over one
    // deep-sweep period. The window runs from the start until every object was checked; the
    // start's one DescribeRepositories belongs to the frequent sweep and is left out, and the
    // calls are scaled by N / checks made, so an object whose next slot comes before the
    // window closes is not counted twice.
    let deep = Duration::from_secs(if sizes.quick { 3 } else { 20 });
    let deep_config = controllers::Config {
        sweep_interval: Duration::from_secs(3600),
        deep_sweep_interval: deep,
        ..config.clone()
    };
    let plain = deep_sweep(&client, &moto, deep_config.clone(), n, false).await?;

    // 5. The same deep sweep with a repository policy on every repository (put there by the
    // operator from the spec, so every deep check reads it back).
    let phase = Instant::now();
    let op = Operator::start(&client, &moto, config.clone(), false);
    op.synced().await?;
    let calls3 = moto.calls().await?;
    add_policies(&client, n, 32).await?;
    all_ready(
        &server,
        n,
        Duration::from_millis(100),
        Duration::from_secs(600),
    )
    .await?;
    let policy_calls = calls_delta(&calls3, &moto.calls().await?);
    let set = policy_calls
        .get("SetRepositoryPolicy")
        .copied()
        .unwrap_or(0);
    eprintln!(
        "   policies: {n} Repositories Ready with a policy; ECR calls: {}",
        describe(&policy_calls)
    );
    if set < n as u64 {
        return Err(BenchError::Scenario(format!(
            "{set} SetRepositoryPolicy calls for {n} policies"
        )));
    }
    op.stop().await?;
    let with_policies = deep_sweep(&client, &moto, deep_config, n, true).await?;
    eprintln!(
        "   (policies and their deep sweep: {:.1} s)",
        phase.elapsed().as_secs_f64()
    );

    // Both counts: the operator's (successful writes) and moto's (any write call received).
    let operator_writes = resync_writes + plain.operator_writes;
    let moto_writes = util::writes(&resync_calls) + util::writes(&plain.calls);
    let scale = 1000.0 / n as f64;
    let per = |d: Duration| d.as_secs_f64();
    let suffix = |base: &str| {
        if n == 1000 {
            base.to_string()
        } else {
            format!("{base} (measured at {n}, scaled to 1000)")
        }
    };
    figures.add(
        "repo_converge_1000_s",
        per(converge) * scale,
        "s",
        &suffix("create N Repositories to all Ready"),
    );
    figures.add(
        "repo_floor_1000_s",
        per(floor) * scale,
        "s",
        &suffix("N CreateRepository via aws-sdk-ecr at the same concurrency"),
    );
    figures.add(
        "repo_converge_ratio",
        per(converge) / per(floor),
        "ratio",
        "converge / floor (target <= 1.3)",
    );
    figures.add(
        "ecr_calls_per_repo_create",
        total(&create_calls) as f64 / n as f64,
        "calls",
        "moto-counted ECR calls per Repository, creation to Ready (target <= 2)",
    );
    figures.add(
        "ecr_calls_per_resync_1000",
        total(&resync_calls) as f64,
        "calls",
        &format!("one drift sweep of {n} Ready repositories (target <= 3)"),
    );
    figures.add(
        "ecr_calls_per_deep_sweep_1000",
        plain.per_check * 1000.0,
        "calls",
        "tags + policy check of 1000 repositories, from calls per check (target <= 2000)",
    );
    figures.add(
        "deep_sweep_calls_1000_with_policies",
        with_policies.per_check * 1000.0,
        "calls",
        &format!(
            "one deep sweep of {n} repositories that all have a repository policy, \
             calls per check x 1000{} (target <= 2000)",
            if n == 1000 { "" } else { ", scaled to 1000" }
        ),
    );
    figures.add(
        "ecr_writes_per_deep_sweep_with_policies",
        util::writes(&with_policies.calls).max(with_policies.operator_writes) as f64,
        "calls",
        "writes during the deep sweep of repositories with policies (must be 0)",
    );
    figures.add(
        "ecr_writes_per_resync_1000",
        moto_writes.max(operator_writes) as f64,
        "calls",
        "writes during the resync and the deep sweep (must be 0)",
    );
    let writes = moto_writes.max(operator_writes)
        + util::writes(&with_policies.calls).max(with_policies.operator_writes);
    if writes > 0 {
        return Err(BenchError::Scenario(format!(
            "{writes} ECR writes during sweeps of unchanged repositories"
        )));
    }
    figures.add(
        "kube_writes_per_resync_1000",
        resync_kube_writes as f64,
        "calls",
        "Kubernetes API writes (status, events) during that sweep",
    );
    figures.add(
        "noop_reconciles_per_s",
        n as f64 / noop_elapsed.as_secs_f64().max(1e-3),
        "1/s",
        "reconciles of unchanged objects after a sweep, concurrency 16",
    );
    Ok(())
}

/// What one deep sweep cost.
struct DeepSweep {
    /// moto's counts over the window.
    calls: util::Calls,
    /// ECR calls per deep check (the start's DescribeRepositories left out).
    per_check: f64,
    /// The operator's successful writes over the window.
    operator_writes: u64,
}

/// A deep sweep by a controller started afresh (as after a restart or failover): its first pass
/// reads nothing per object and spreads the tag and policy checks over one deep-sweep period.
/// The window runs from the start until every object was checked (and, `policies`, its policy
/// read); the start's one DescribeRepositories belongs to the frequent sweep and is left out,
/// and the calls are divided by the checks made, so an object whose next slot comes before the
/// window closes is not counted twice.
async fn deep_sweep(
    client: &kube::Client,
    moto: &Moto,
    config: controllers::Config,
    n: usize,
    policies: bool,
) -> Result<DeepSweep> {
    let deep = config.deep_sweep_interval;
    let calls0 = moto.calls().await?;
    let op = Operator::start(client, moto, config, false);
    let writes0 = op.registry.shared_stats().writes();
    let m = op.metrics.clone();
    let reconciled0 = m.reconciles("repository", "success");
    poll(
        "one deep check of every repository",
        Duration::from_millis(20),
        deep * 4 + Duration::from_secs(120),
        || {
            let m = m.clone();
            let calls0 = calls0.clone();
            async move {
                let d = calls_delta(&calls0, &moto.calls().await.ok()?);
                let tags = d.get("ListTagsForResource").copied().unwrap_or(0);
                let read = d.get("GetRepositoryPolicy").copied().unwrap_or(0);
                let reconciles = m.reconciles("repository", "success") - reconciled0;
                (tags >= n as u64 && (!policies || read >= n as u64) && reconciles >= 2 * n as u64)
                    .then_some(())
            }
        },
    )
    .await?;
    // A graceful stop lets the checks in flight finish, so that none is counted with its
    // first call but not its second (what made this 2007 at c8dd166).
    let registry = op.registry.clone();
    op.stop().await?;
    let calls = calls_delta(&calls0, &moto.calls().await?);
    let operator_writes = registry.shared_stats().writes() - writes0;
    eprintln!(
        "   deep sweep{}: ECR calls: {}",
        if policies {
            " (every repository with a policy)"
        } else {
            ""
        },
        describe(&calls)
    );
    // Every deep check reads the tags once (the policy only where there is one to keep).
    let checks = calls
        .get("ListTagsForResource")
        .copied()
        .unwrap_or(0)
        .max(1);
    let per_check = (total(&calls) - calls.get("DescribeRepositories").copied().unwrap_or(0))
        as f64
        / checks as f64;
    Ok(DeepSweep {
        calls,
        per_check,
        operator_writes,
    })
}

/// Gives Repositories `0..n` a repository policy (cross-account pull, as a platform team shares
/// base images), `parallel` patches at a time.
async fn add_policies(client: &kube::Client, n: usize, parallel: usize) -> Result<()> {
    let api: Api<Repository> = Api::namespaced(client.clone(), NAMESPACE);
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let patch = serde_json::json!({"spec": {"policy": {"statements": [{
                    "sid": "CrossAccountPull",
                    "effect": "Allow",
                    "principals": {"aws": [format!("arn:aws:iam::2109876543{:02}:root", i % 100)]},
                    "actions": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                }]}}});
                api.patch(
                    &format!("app-{i:05}"),
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )
                .await?;
                Ok(())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The convergence of [`run`] on a real kube-apiserver + etcd (`KUBEBUILDER_ASSETS`) instead of
/// the double, beside a moto floor measured in the same run: what the double hides (etcd
/// writes, admission, a real watch cache, priority and fairness).
pub async fn run_real(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let n = sizes.repos;
    let kube = testbed::kube_env::KubeEnv::real().await?.ok_or_else(|| {
        BenchError::Scenario(format!(
            "needs a real API server: set {} to a folder with kube-apiserver and etcd \
             (scripts/envtest.sh unpacks ../shared/envtest)",
            testbed::envtest::ASSETS_ENV
        ))
    })?;
    let client = kube.client();
    kube.ensure_namespace(NAMESPACE).await?;
    crate::util::grant_everything(&client).await?;
    let moto = Moto::start().await?;
    let floor = floor(&moto, n, usize::from(sizes.concurrency)).await?;
    moto.reset().await?;

    let config = controllers::Config {
        cluster_id: "bench".to_string(),
        deep_sweep_interval: Duration::from_secs(3600),
        concurrency: sizes.concurrency,
        ..controllers::Config::default()
    };
    let op = Operator::start(&client, &moto, config, false);
    op.synced().await?;
    let started = Instant::now();
    create_repositories(&client, n, 32).await?;
    let created = started.elapsed();
    // Listed through the API server every 250 ms (there is no state to read directly here).
    let api: Api<Repository> = Api::namespaced(client.clone(), NAMESPACE);
    let last = std::sync::atomic::AtomicUsize::new(0);
    let ready = poll(
        &format!("{n} Repositories Ready on the real API server"),
        Duration::from_millis(250),
        Duration::from_secs(600),
        || {
            let (api, last) = (api.clone(), &last);
            async move {
                let list = api.list(&Default::default()).await.ok()?;
                let value = serde_json::to_value(&list.items).ok()?;
                let count = value
                    .as_array()?
                    .iter()
                    .filter(|o| util::is_ready(o))
                    .count();
                last.store(count, std::sync::atomic::Ordering::Relaxed);
                (count >= n).then_some(())
            }
        },
    )
    .await;
    if ready.is_err() {
        eprintln!("   only {} of {n} Ready", last.into_inner());
    }
    ready?;
    let converge = started.elapsed();
    eprintln!(
        "   real API server: created {n} objects in {:.2} s, all Ready after {:.2} s (floor {:.2} s)",
        created.as_secs_f64(),
        converge.as_secs_f64(),
        floor.as_secs_f64()
    );
    op.stop().await?;
    let kube_floor = crate::kube_floor::measure(&kube, n, usize::from(sizes.concurrency)).await?;
    let [finalizers, statuses, events] = kube_floor.phases.map(|d| d.as_secs_f64());
    eprintln!(
        "   the API server alone: {n} creates in {:.2} s, the controller's writes in {:.2} s \
         (finalizers {finalizers:.2} s, statuses {statuses:.2} s, Events {events:.2} s)",
        kube_floor.creates.as_secs_f64(),
        kube_floor.writes.as_secs_f64()
    );
    let stored_report = largest_report_on_real(&client).await?;
    let scale = 1000.0 / n as f64;
    let scaled = if n == 1000 {
        String::new()
    } else {
        format!(" (measured at {n}, scaled to 1000)")
    };
    figures.add(
        "repo_converge_1000_real_s",
        converge.as_secs_f64() * scale,
        "s",
        &format!("create N Repositories to all Ready, real kube-apiserver + etcd{scaled}"),
    );
    figures.add(
        "repo_floor_1000_real_run_s",
        floor.as_secs_f64() * scale,
        "s",
        &format!("N CreateRepository via aws-sdk-ecr, measured in the same run{scaled}"),
    );
    figures.add(
        "repo_converge_1000_real_ratio",
        converge.as_secs_f64() / floor.as_secs_f64(),
        "ratio",
        "converge on the real API server / floor (issue #17 target <= 1.3)",
    );
    figures.add(
        "kube_creates_1000_real_s",
        kube_floor.creates.as_secs_f64() * scale,
        "s",
        &format!("the same N creates on the real API server, no operator running{scaled}"),
    );
    figures.add(
        "kube_writes_1000_real_s",
        kube_floor.writes.as_secs_f64() * scale,
        "s",
        &format!(
            "the controller's writes per new Repository (finalizer, status, Event), {} in \
             flight, on the real API server alone{scaled}",
            sizes.concurrency
        ),
    );
    figures.add(
        "repo_converge_1000_real_kube_bound_ratio",
        (kube_floor.creates + kube_floor.writes).as_secs_f64() / floor.as_secs_f64(),
        "ratio",
        "(creates + the controller's writes on the API server alone) / the moto floor: the \
         ratio the Kubernetes side imposes with ECR fully overlapped",
    );
    if let Some(bytes) = stored_report {
        figures.add(
            "largest_report_real_kib",
            bytes as f64 / 1024.0,
            "KiB",
            "the scan scenario's largest report applied as the operator applies it, read back \
             from the real API server with its managedFields (target <= 64)",
        );
    }
    Ok(())
}

/// The report the scan scenario wrote for its 5,000-finding image (`target/bench/largest-report.json`,
/// when the scan scenario ran before), applied to the real API server as the operator applies
/// reports (server-side apply, its field manager, forced), and read back as the API server
/// returns it, managedFields included: its size in bytes. The double keeps no managedFields.
async fn largest_report_on_real(client: &kube::Client) -> Result<Option<usize>> {
    let path = util::workspace_root().join("target/bench/largest-report.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "   no {} (the scan scenario did not run): no largest_report_real_kib",
            path.display()
        );
        return Ok(None);
    };
    let stored: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BenchError::io(&path, e))?;
    let name = stored["metadata"]["name"]
        .as_str()
        .ok_or_else(|| BenchError::Scenario(format!("{}: no name", path.display())))?
        .to_string();
    let patch = serde_json::json!({
        "apiVersion": stored["apiVersion"],
        "kind": stored["kind"],
        "metadata": {"name": name, "labels": stored["metadata"]["labels"]},
        "spec": stored["spec"],
    });
    let api: Api<ecr_operator::api::image_scan_report::ImageScanReport> = Api::all(client.clone());
    api.patch(
        &name,
        &kube::api::PatchParams::apply(controllers::MANAGER).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await?;
    let request = hyper::Request::get(format!("/apis/{GROUP}/v1alpha1/imagescanreports/{name}"))
        .body(Vec::new())
        .map_err(|e| BenchError::Scenario(format!("request: {e}")))?;
    let text = client.request_text(request).await?;
    let read: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| BenchError::Scenario(format!("the report read back: {e}")))?;
    let real_path = util::workspace_root().join("target/bench/largest-report-real.json");
    std::fs::write(&real_path, &text).map_err(|e| BenchError::io(&real_path, e))?;
    let ids = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["spec"]["findings"]
            .as_array()
            .map(|fs| fs.iter().map(|f| f["id"].clone()).collect())
            .unwrap_or_default()
    };
    if ids(&read) != ids(&stored) || read["spec"]["truncated"] != stored["spec"]["truncated"] {
        return Err(BenchError::Scenario(
            "the real API server's report holds other findings than the operator's".into(),
        ));
    }
    eprintln!(
        "   largest report on the real API server: {} bytes ({} in the double)",
        text.len(),
        serde_json::to_vec(&stored).map_or(0, |v| v.len())
    );
    Ok(Some(text.len()))
}
