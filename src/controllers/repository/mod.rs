//! The Repository controller.
//!
//! observe (the shared inventory, tags and policy only when due or before a write) → plan
//! (`plan.rs`, pure) → apply only the difference → status (`apply.rs`). Ownership is recorded
//! in ECR as a tag and proven by reading it; nothing owned by someone else is ever modified or
//! deleted, and nothing outside the namespace's grant is touched at all.

mod apply;
mod memory;
pub mod plan;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use tracing::instrument;

use super::access::Grants;
use super::{Context, Error, claim, object_key, status};
use crate::api::repository::{Ownership, Repository, RepositoryStatus};
use crate::registry::RepositoryInfo;

pub use plan::{Desired, SettingsDiff, diff_settings, diff_tags};

/// The controller's extra state (lives as long as the controller).
pub struct Shared {
    pub ctx: Arc<Context>,
    memory: memory::Memory,
    pub store: Store<Repository>,
    /// What each namespace may manage.
    pub grants: Arc<Grants>,
}

/// Runs the Repository controller and its sweep until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    grants: Arc<Grants>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<Repository>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);

    let (sweep_tx, sweep_rx) = tokio::sync::mpsc::channel::<()>(1);
    // Aborted when this future ends or is dropped (a lost lease, a crashed sibling controller):
    // a detached sweeper would keep calling DescribeRepositories for a dead controller.
    let _sweeper = super::AbortOnDrop(tokio::spawn(sweep_loop(ctx.clone(), sweep_tx)));
    let sweeps = futures::stream::unfold(sweep_rx, |mut rx| async move {
        rx.recv().await.map(|()| ((), rx))
    });
    // A changed grant may allow what was Forbidden (or forbid what was allowed): everything is
    // reconciled again, as after a sweep.
    let sweeps = futures::stream::select(sweeps, grants.changes());
    grants.ready().await;

    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        memory: memory::Memory::default(),
        store: reader.clone(),
        grants,
    });
    super::drain(
        Controller::for_stream(stream, reader)
            .with_config(super::controller_config(&ctx))
            .reconcile_all_on(sweeps)
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, shared),
    )
    .await;
    Ok(())
}

/// Refreshes the inventory every sweep interval and triggers a reconcile of every object.
async fn sweep_loop(ctx: Arc<Context>, trigger: tokio::sync::mpsc::Sender<()>) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let pass = (ctx.registry.list_repositories().await)
            .map(|list| ctx.inventory.apply_sweep(started, list));
        super::pace_sweep(&ctx, "repository", pass, &mut failures, &trigger).await;
    }
}

#[instrument(skip(repo, shared), fields(object = %object_key(repo.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(repo: Arc<Repository>, shared: Arc<Shared>) -> Result<Action, Error> {
    let shared = &shared;
    if !shared.ctx.inventory.is_synced() {
        // The first sweep has not finished; it triggers a reconcile of everything when it does.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    status::guarded(&shared.ctx, repo, |event| async {
        match event {
            FinalizerEvent::Apply(r) => apply::apply(&r, shared).await,
            FinalizerEvent::Cleanup(r) => apply::cleanup(&r, shared).await,
        }
    })
    .await
}

fn error_policy(repo: Arc<Repository>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, repo.as_ref(), err)
}

/// The repository this object's status says it owns, if `info` is that very repository. The
/// status is a cache: it spares reading tags when nothing is to be written, and is never the
/// proof of ownership a write or a delete needs.
fn status_owns(status: &RepositoryStatus, info: &RepositoryInfo) -> Option<Ownership> {
    let same = status.repository_arn.as_deref() == Some(info.arn.as_str())
        && status.created_at == status::recorded_time(info.created_at);
    if same { status.ownership } else { None }
}

/// Another object that claims the same ECR repository and came first.
fn older_claimant(store: &Store<Repository>, repo: &Repository, name: &str) -> Option<String> {
    claim::older_claimants(store, repo, |o| {
        let target = match &o.spec.repository_name {
            Some(n) => n.as_str(),
            None => o.metadata.name.as_deref().unwrap_or_default(),
        };
        target == name
    })
    .iter()
    .map(|o| object_key(o.as_ref()))
    .min()
}
