//! The Repository controller.
//!
//! observe (the shared inventory, tags and policy only when due or before a write) → plan
//! (`plan.rs`, pure) → apply only the difference → status (`apply.rs`). Ownership is recorded
//! in ECR as a tag and proven by reading it; nothing owned by someone else is ever modified or
//! deleted, and nothing outside the namespace's grant is touched at all.

mod apply;
mod cleanup;
mod memory;
pub mod plan;
mod sweep;

use std::sync::Arc;

use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use tracing::instrument;

use super::access::Grants;
use super::targets::{Reach, TargetIndex};
use super::{Context, Error, claim, object_key, status};
use crate::api::repository::{Ownership, Repository, RepositoryStatus};
use crate::registry::RepositoryInfo;

pub use plan::{Desired, SettingsDiff, diff_settings, diff_tags};

/// The controller's extra state (lives as long as the controller).
pub struct Shared {
    pub ctx: Arc<Context>,
    memory: Arc<memory::Memory>,
    pub store: Store<Repository>,
    /// What each namespace may manage.
    pub grants: Arc<Grants>,
    /// The RegistryTargets objects name.
    pub targets: Arc<TargetIndex>,
    /// How many objects name each ECR repository: the store is searched for an older
    /// claimant only when another may name the same.
    claims: Arc<claim::TargetCounts<Repository>>,
}

/// One reconcile's view: the controller's state and where this object's ECR calls go.
pub(super) struct Op<'a> {
    shared: &'a Shared,
    pub reach: Reach,
}

impl std::ops::Deref for Op<'_> {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        self.shared
    }
}

/// Runs the Repository controller and its sweep until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    grants: Arc<Grants>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<Repository>(&ctx).await?;
    let claims = Arc::new(claim::TargetCounts::new(|r: &Repository| {
        (r.target().map(str::to_string), r.ecr_name())
    }));
    let counted = claims.clone();
    let memory = Arc::new(memory::Memory::default());
    let remembered = memory.clone();
    let (reader, stream) = super::watched_observed(&ctx, move |event| {
        counted.observe(event);
        remembered.observe(event);
    });

    let (sweeps, _sweepers) = sweep::start(&ctx, &reader, &grants, &targets);
    let shutdown = futures::FutureExt::shared(shutdown);
    let indexes_ready = async {
        grants.ready().await;
        targets.ready().await;
    };
    if !super::ready_unless_shutdown(indexes_ready, shutdown.clone()).await {
        return Ok(());
    }

    // A sweep's resync is paced so that spec changes are not queued behind all of it.
    let progress = Arc::new(super::resync::Progress::default());
    let batch = usize::from(ctx.config.concurrency).max(1);
    let resyncs = super::resync::paced(reader.clone(), sweeps, progress.clone(), batch);
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        memory,
        store: reader.clone(),
        grants,
        targets,
        claims,
    });
    super::drain(
        progress.count(
            Controller::for_stream(stream, reader)
                .with_config(super::controller_config(&ctx))
                .reconcile_on(resyncs)
                .graceful_shutdown_on(shutdown)
                .run(reconcile, error_policy, shared),
        ),
    )
    .await;
    Ok(())
}

#[instrument(skip(repo, shared), fields(object = %object_key(repo.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(repo: Arc<Repository>, shared: Arc<Shared>) -> Result<Action, Error> {
    let shared = &shared;
    status::guarded(&shared.ctx, repo, |event| async {
        match event {
            FinalizerEvent::Apply(r) => apply::apply(&r, shared).await,
            FinalizerEvent::Cleanup(r) => cleanup::cleanup(&r, shared).await,
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
fn older_claimant(shared: &Shared, repo: &Repository, name: &str) -> Option<String> {
    if !shared.claims.may_be_shared(repo) {
        return None;
    }
    // The same name in another registry is another repository.
    claim::older_claimants(&shared.store, repo, |o| {
        o.ecr_name() == name && o.target() == repo.target()
    })
    .iter()
    .map(|o| object_key(o.as_ref()))
    .min()
}
