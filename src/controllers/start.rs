//! Starting and stopping every controller together: one shutdown signal for all, the first
//! that fails to start stops the others, and each one's stop is timed.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::{debug, warn};

use super::{
    Context, Error, access, image_scan_report, lifecycle_policy, public_repository,
    pull_through_cache_rule, registry_policy, registry_settings, registry_target,
    replication_config, repository, repository_creation_template, scan_policy, singleton, targets,
};

/// Runs every controller until `shutdown` resolves. This is what `ecr-operator run` calls,
/// and what the integration tests start. The controllers run concurrently, all stopping on the
/// same signal; the first that fails to start (e.g. its CRD is missing) stops them all.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let stop_began = Arc::new(OnceLock::new());
    let began = stop_began.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = began.set(Instant::now());
    }
    .boxed()
    .shared();
    // Every store lives as long as this run, so a new leadership term starts from what the
    // cluster and ECR hold now: the watches and grants are started afresh, the inventory is
    // emptied until the first sweep.
    ctx.inventory.forget_all();
    // The targets' inventories too: their clients are built again on first use.
    ctx.targets.retain(|_| false);
    let grants = access::Grants::start(&ctx);
    let targets = targets::TargetIndex::start(&ctx);
    let controllers = every_controller(&ctx, &grants, &targets, &shutdown);
    let timed = controllers
        .into_iter()
        .map(|(name, controller)| stop_timed(name, stop_began.clone(), controller));
    futures::future::try_join_all(timed).await?;
    Ok(())
}

type Shutdown = futures::future::Shared<BoxFuture<'static, ()>>;
type Controller = (&'static str, BoxFuture<'static, Result<(), Error>>);

/// Each controller by name, all stopping on `s`, sharing the grants `g` and the targets `t`.
fn every_controller(
    c: &Arc<Context>,
    g: &Arc<access::Grants>,
    t: &Arc<targets::TargetIndex>,
    s: &Shutdown,
) -> [Controller; 12] {
    [
        ("access", access::run(c.clone(), s.clone()).boxed()),
        (
            "repository",
            repository::run(c.clone(), g.clone(), t.clone(), s.clone()).boxed(),
        ),
        (
            "lifecycle_policy",
            lifecycle_policy::run(c.clone(), g.clone(), t.clone(), s.clone()).boxed(),
        ),
        (
            "public_repository",
            public_repository::run(c.clone(), g.clone(), t.clone(), s.clone()).boxed(),
        ),
        (
            "pull_through_cache_rule",
            pull_through_cache_rule::run(c.clone(), t.clone(), s.clone()).boxed(),
        ),
        (
            "replication_config",
            singleton::run::<replication_config::Replication>(c.clone(), t.clone(), s.clone())
                .boxed(),
        ),
        (
            "scan_policy",
            singleton::run::<scan_policy::Scanning>(c.clone(), t.clone(), s.clone()).boxed(),
        ),
        (
            "registry_policy",
            singleton::run::<registry_policy::RegistryPolicySetting>(
                c.clone(),
                t.clone(),
                s.clone(),
            )
            .boxed(),
        ),
        (
            "repository_creation_template",
            repository_creation_template::run(c.clone(), t.clone(), s.clone()).boxed(),
        ),
        (
            "registry_settings",
            registry_settings::run(c.clone(), t.clone(), s.clone()).boxed(),
        ),
        (
            "registry_target",
            registry_target::run(c.clone(), s.clone()).boxed(),
        ),
        (
            "image_scan_report",
            image_scan_report::run(c.clone(), t.clone(), s.clone()).boxed(),
        ),
    ]
}

/// A controller that stops slowly delays the next leader's first write (the elector waits for
/// the term's work before it releases the lease): each one's stop is logged with its duration.
async fn stop_timed(
    name: &'static str,
    stop_began: Arc<OnceLock<Instant>>,
    controller: BoxFuture<'static, Result<(), Error>>,
) -> Result<(), Error> {
    let result = controller.await;
    if let Some(began) = stop_began.get() {
        let took_ms = began.elapsed().as_millis() as u64;
        if began.elapsed() > SLOW_STOP {
            warn!(controller = name, took_ms, "controller was slow to stop");
        } else {
            debug!(controller = name, took_ms, "controller stopped");
        }
    }
    result
}

/// A stop longer than this is worth a warning: it is a good share of a short lease.
const SLOW_STOP: Duration = Duration::from_millis(500);

/// Waits for `ready` unless `shutdown` comes first (then `false`): a term stopped before its
/// indexes' first list must stop at once, not after they sync.
pub(crate) async fn ready_unless_shutdown(
    ready: impl std::future::Future<Output = ()>,
    shutdown: impl std::future::Future<Output = ()>,
) -> bool {
    tokio::select! {
        biased;
        () = shutdown => false,
        () = ready => true,
    }
}

#[cfg(test)]
mod tests {
    use super::ready_unless_shutdown;

    #[tokio::test]
    async fn a_shutdown_ends_the_wait_for_indexes_that_never_sync() {
        let never_ready = std::future::pending::<()>();
        assert!(!ready_unless_shutdown(never_ready, async {}).await);
    }

    #[tokio::test]
    async fn synced_indexes_end_the_wait_while_no_shutdown_comes() {
        let no_shutdown = std::future::pending::<()>();
        assert!(ready_unless_shutdown(async {}, no_shutdown).await);
    }
}
