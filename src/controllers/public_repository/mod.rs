//! The PublicRepository controller: Amazon ECR Public repositories (us-east-1 of the operator's
//! own account, or of the account of the RegistryTarget `spec.registryRef` names) with catalog
//! data, logo, repository policy and tags.
//!
//! observe (DescribeRepositories by name, ListTagsForResource for ownership and tags,
//! GetRepositoryCatalogData and GetRepositoryPolicy where the spec or the status calls for them;
//! the logo's bytes from its ConfigMap or Secret) → plan (`plan.rs`, pure) → apply only the
//! difference → status (`apply.rs`). Every object is reconciled again each sweep interval, which
//! corrects drift and picks up a changed logo source; in sync, that costs four reads and no write.
//!
//! Ownership, adoption, deletion and tenancy are the Repository kind's: the owner tag, adoption
//! only with `adopt: true` and a grant that allows it, the same RepositoryAccessPolicy grants
//! (per target). Every ECR Public call goes through the object's target ([`TargetIndex::reach`]):
//! a target missing or not Ready is TargetNotReady with no call anywhere.

mod apply;
pub mod plan;

use std::sync::Arc;

use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use tracing::instrument;

use super::access::Grants;
use super::targets::TargetIndex;
use super::{Context, Error, claim, object_key, status};
use crate::api::PublicRepository;

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<PublicRepository>,
    /// What each namespace may manage.
    pub grants: Arc<Grants>,
    /// The RegistryTargets objects name: an object's calls go to its target's account.
    pub targets: Arc<TargetIndex>,
}

/// Runs the PublicRepository controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    grants: Arc<Grants>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<PublicRepository>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    let shutdown = futures::FutureExt::shared(shutdown);
    let indexes_ready = async {
        grants.ready().await;
        targets.ready().await;
    };
    if !super::ready_unless_shutdown(indexes_ready, shutdown.clone()).await {
        return Ok(());
    }
    // A changed grant, or a target becoming Ready or going: everything is reconciled again.
    let changes = futures::stream::select(grants.changes(), targets.changes());
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        store: reader.clone(),
        grants,
        targets,
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
    // object, the grants or the targets, and is looked at again each sweep interval like every object: a
    // ConfigMap created later, or a repository released outside, is seen then.
    if action == Action::await_change() {
        return Ok(Action::requeue(shared.ctx.config.sweep_interval));
    }
    Ok(action)
}

fn error_policy(repo: Arc<PublicRepository>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, repo.as_ref(), err)
}

/// Whether `a` and `b` name the same ECR Public repository: the same name in the same account
/// (the same name through another target is another account's repository).
pub fn same_repository(a: &PublicRepository, b: &PublicRepository) -> bool {
    a.spec.repository_name == b.spec.repository_name && a.target() == b.target()
}

/// Another object that manages the same ECR Public repository and came first.
fn older_claimant(store: &Store<PublicRepository>, repo: &PublicRepository) -> Option<String> {
    claim::older_claimants(store, repo, |o| same_repository(o, repo))
        .iter()
        .map(|o| object_key(o.as_ref()))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::public_repository::PublicRepositorySpec;
    use crate::api::registry_target::RegistryRef;

    fn object(name: &str, target: Option<&str>) -> PublicRepository {
        PublicRepository::new(
            "x",
            PublicRepositorySpec {
                repository_name: name.into(),
                registry_ref: target.map(|t| RegistryRef { name: t.into() }),
                ..Default::default()
            },
        )
    }

    /// Two objects contend for one repository only with the same name in the same account.
    #[test]
    fn the_same_repository_is_the_same_name_in_the_same_target() {
        let cases = [
            ("own and own", ("a/app", None), ("a/app", None), true),
            ("own and b", ("a/app", None), ("a/app", Some("b")), false),
            ("b and b", ("a/app", Some("b")), ("a/app", Some("b")), true),
            ("b and c", ("a/app", Some("b")), ("a/app", Some("c")), false),
            (
                "other name",
                ("a/app", Some("b")),
                ("a/cli", Some("b")),
                false,
            ),
        ];
        for (what, (n1, t1), (n2, t2), want) in cases {
            let (a, b) = (object(n1, t1), object(n2, t2));
            assert_eq!(same_repository(&a, &b), want, "{what}");
            assert_eq!(same_repository(&b, &a), want, "{what} (swapped)");
        }
    }
}
