//! The PublicRepository controller: Amazon ECR Public repositories (us-east-1 of the target's
//! account) with catalog data, logo, repository policy and tags.
//!
//! observe (DescribeRepositories by name, ListTagsForResource for ownership and tags,
//! GetRepositoryCatalogData and GetRepositoryPolicy where the spec or the status calls for them;
//! the logo's bytes from its ConfigMap or Secret) → plan (`plan.rs`, pure) → apply only the
//! difference → status (`apply.rs`). Every object is reconciled again each sweep interval, which
//! corrects drift and picks up a changed logo source; in sync, that costs four reads and no write.
//!
//! Ownership, adoption, deletion and tenancy are the Repository kind's: the owner tag, adoption
//! only with `adopt: true` and a grant that allows it, the same RepositoryAccessPolicy grants.

mod apply;
pub mod plan;

use std::sync::Arc;

use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use tracing::instrument;

use super::access::Grants;
use super::{Context, Error, claim, object_key, status};
use crate::api::PublicRepository;

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<PublicRepository>,
    /// What each namespace may manage.
    pub grants: Arc<Grants>,
}

/// Runs the PublicRepository controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    grants: Arc<Grants>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<PublicRepository>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    let shutdown = futures::FutureExt::shared(shutdown);
    if !super::ready_unless_shutdown(grants.ready(), shutdown.clone()).await {
        return Ok(());
    }
    let changes = grants.changes();
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        store: reader.clone(),
        grants,
    });
    super::drain(
        Controller::for_stream(stream, reader)
            .with_config(super::controller_config(&ctx))
            .reconcile_all_on(changes)
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, shared),
    )
    .await;
    Ok(())
}

#[instrument(skip(repo, shared), fields(object = %object_key(repo.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(repo: Arc<PublicRepository>, shared: Arc<Shared>) -> Result<Action, Error> {
    let action = status::guarded(&shared.ctx, repo, |event| async {
        match event {
            FinalizerEvent::Apply(r) => apply::apply(&r, &shared).await,
            FinalizerEvent::Cleanup(r) => apply::cleanup(&r, &shared).await,
        }
    })
    .await?;
    // A permanent failure (Conflict, Forbidden, a missing logo source) waits for a change of the
    // object or the grants, and is looked at again each sweep interval like every object: a
    // ConfigMap created later, or a repository released outside, is seen then.
    if action == Action::await_change() {
        return Ok(Action::requeue(shared.ctx.config.sweep_interval));
    }
    Ok(action)
}

fn error_policy(repo: Arc<PublicRepository>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, repo.as_ref(), err)
}

/// Another object that manages the same ECR Public repository and came first.
fn older_claimant(
    store: &Store<PublicRepository>,
    repo: &PublicRepository,
    name: &str,
) -> Option<String> {
    claim::older_claimants(store, repo, |o| o.spec.repository_name == name)
        .iter()
        .map(|o| object_key(o.as_ref()))
        .min()
}
