//! The LifecyclePolicy controller.
//!
//! dereference (the Repository, which must be Ready) → validate and render (pure, `lifecycle/`)
//! → observe (GetLifecyclePolicy) → PutLifecyclePolicy only when the texts differ in meaning →
//! preview (DescribeImages + the local evaluator) → status. ECR calls per reconcile: one
//! GetLifecyclePolicy, one DescribeImages per 1000 images, and a PutLifecyclePolicy only on a
//! change or drift.

use std::sync::Arc;

use chrono::Utc;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tracing::{info, instrument};

use super::access::Grants;
use super::claim;
use super::status::{self, Announcement};
use super::targets::{Reach, TargetIndex};
use super::{Context, Error, object_key};
use crate::api::lifecycle_policy::{
    LifecyclePolicySpec, LifecyclePolicyStatus, LifecyclePreview, LifecycleRule,
};
use crate::api::repository::{OWNER_TAG, owned_in_namespace, owner_value};
use crate::api::{LifecyclePolicy, Repository};
use crate::lifecycle::{self, Rule};
use crate::registry::ErrorClass;
use crate::tenancy::Access;

/// Images listed in the status preview at most; `truncated` says when there are more.
pub const PREVIEW_CAP: usize = 50;

#[path = "lifecycle_policy_model.rs"]
mod model;
use model::settle_preview;
pub use model::{Place, place_to_leave, preview, ready_place, rules_of, to_rules};

/// Validates the rules as ECR would and renders the policy text.
pub fn render_spec(spec: &LifecyclePolicySpec) -> Result<(Vec<Rule>, String), String> {
    render_rules(&spec.rules)
}

/// [`render_spec`] for typed rules of any kind (a RepositoryCreationTemplate's too).
pub fn render_rules(rules: &[LifecycleRule]) -> Result<(Vec<Rule>, String), String> {
    let rules = rules_of(rules);
    let errors = lifecycle::validate(&rules);
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!("invalid lifecycle rules: {}", list.join("; ")));
    }
    let text = lifecycle::render(&rules);
    Ok((rules, text))
}

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<LifecyclePolicy>,
    /// What each namespace may manage.
    pub grants: Arc<Grants>,
    /// The RegistryTargets Repositories name: a policy's calls go to its Repository's.
    pub targets: Arc<TargetIndex>,
}

/// Runs the LifecyclePolicy controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    grants: Arc<Grants>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<LifecyclePolicy>(&ctx).await?;
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
    let store = reader.clone();
    // A Repository becoming Ready (or changing) wakes the policies that reference it.
    // Metadata only: a Repository that does not parse must not stop this watch.
    let repositories = watcher::watcher(
        ctx.config
            .watch
            .namespaced_api::<PartialObjectMeta<Repository>>(&ctx.client),
        ctx.config.watch.watcher_config(),
    )
    .default_backoff()
    .touched_objects();
    super::drain(
        Controller::for_stream(stream, reader)
            .watches_stream(repositories, move |repo| {
                let ns = repo.namespace();
                let name = repo.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|lp| lp.namespace() == ns && lp.spec.repository_ref.name == name)
                    .map(|lp| ObjectRef::from_obj(lp.as_ref()))
                    .collect::<Vec<_>>()
            })
            .reconcile_all_on(changes)
            .with_config(super::controller_config(&ctx))
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, shared),
    )
    .await;
    Ok(())
}

#[instrument(skip(lp, shared), fields(object = %object_key(lp.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(lp: Arc<LifecyclePolicy>, shared: Arc<Shared>) -> Result<Action, Error> {
    status::guarded(&shared.ctx, lp, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply(&o, &shared).await,
            FinalizerEvent::Cleanup(o) => cleanup(&o, &shared).await,
        }
    })
    .await
}

fn error_policy(lp: Arc<LifecyclePolicy>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, lp.as_ref(), err)
}

/// An older LifecyclePolicy for the same Repository: it manages the policy, this one conflicts.
/// A policy whose reference leaves its namespace is refused, so it claims nothing: it must not
/// block a valid policy for the Repository of the same name in its own namespace.
fn older_claimant(store: &Store<LifecyclePolicy>, lp: &LifecyclePolicy) -> Option<String> {
    let local = |o: &LifecyclePolicy| {
        o.spec
            .repository_ref
            .cross_namespace("spec.repositoryRef", &o.namespace().unwrap_or_default())
            .is_none()
    };
    claim::older_claimants(store, lp, |o| {
        o.namespace() == lp.namespace()
            && o.spec.repository_ref.name == lp.spec.repository_ref.name
            && local(o)
    })
    .iter()
    .map(|o| o.name_any())
    .min()
}

/// The Repository `spec.repositoryRef` names, if it exists.
async fn referenced(ctx: &Context, lp: &LifecyclePolicy) -> Result<Option<Repository>, Error> {
    let ns = lp.namespace().unwrap_or_default();
    let api: Api<Repository> = Api::namespaced(ctx.client.clone(), &ns);
    Ok(api.get_opt(&lp.spec.repository_ref.name).await?)
}

/// Whether another LifecyclePolicy's status says it put its policy on the repository at
/// `place` (then that policy is not this object's to remove).
fn applied_by_another(store: &Store<LifecyclePolicy>, lp: &LifecyclePolicy, place: &Place) -> bool {
    store.state().iter().any(|o| {
        o.uid() != lp.uid()
            && o.metadata.deletion_timestamp.is_none()
            && o.status.as_ref().is_some_and(|s| {
                s.applied
                    && s.repository_name.as_deref() == Some(place.repository.as_str())
                    && s.registry_target == place.target
            })
    })
}

/// Which Repository must own an ECR repository before this object writes to it.
enum Owner<'a> {
    /// The Repository `spec.repositoryRef` names (a put).
    Exactly(&'a str),
    /// Any Repository of the object's namespace (removing a policy this object's status says it
    /// put, where the reference has moved on since).
    AnyInNamespace,
}

/// Proves, by reading ECR now, that `repository` is granted to the object's namespace and owned
/// by a Repository of it, before a lifecycle policy is put on it or removed from it. The
/// object's status, and the referenced Repository's, are caches a tenant may be able to write:
/// never proof.
async fn prove_owned(
    shared: &Shared,
    reach: &Reach,
    lp: &LifecyclePolicy,
    repository: &str,
    owner: Owner<'_>,
) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let namespace = lp.namespace().unwrap_or_default();
    let target = reach.target.as_deref();
    if let Access::Forbidden(message) = shared.grants.access_on(&namespace, target, repository) {
        return Err(Error::Forbidden(message));
    }
    let Some(info) = reach.registry.describe_repository(repository).await? else {
        return Err(Error::RepositoryNotReady(format!(
            "ECR repository {repository} does not exist"
        )));
    };
    let tags = reach.registry.list_tags(&info.arn).await?;
    let found = tags.get(OWNER_TAG).map(String::as_str).unwrap_or_default();
    let cluster = &ctx.config.cluster_id;
    let proven = match owner {
        Owner::Exactly(name) => found == owner_value(cluster, &namespace, name),
        Owner::AnyInNamespace => owned_in_namespace(found, cluster, &namespace),
    };
    if proven {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "ECR repository {repository} is not owned by {} (its owner tag says {}); its lifecycle policy will not be changed",
            match owner {
                Owner::Exactly(name) => format!("Repository {namespace}/{name}"),
                Owner::AnyInNamespace => format!("a Repository of namespace {namespace}"),
            },
            if found.is_empty() { "nothing" } else { found }
        )))
    }
}

/// The write a reconcile makes to the repository's lifecycle policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyWrite {
    /// ECR holds what it should (the rendered policy, or under dryRun none of ours).
    None,
    /// Put the rendered policy; `replacing` another one already there.
    Put { replacing: bool },
    /// dryRun: remove the policy this object put there.
    Remove,
}

/// What to write, from the spec's `dryRun`, whether this object's policy is applied (status),
/// and the policy ECR holds now: pure, so every combination is in the table test.
pub fn plan_write(
    dry_run: bool,
    applied: bool,
    current: Option<&str>,
    rendered: &str,
) -> PolicyWrite {
    match (dry_run, current) {
        // dryRun: the policy must not be in ECR; removed only when this object put it there.
        (true, Some(_)) if applied => PolicyWrite::Remove,
        (true, _) => PolicyWrite::None,
        (false, Some(c)) if lifecycle::policies_equivalent(c, rendered) => PolicyWrite::None,
        (false, current) => PolicyWrite::Put {
            replacing: current.is_some(),
        },
    }
}

/// The event of a write (none when nothing was written).
pub fn announce(write: PolicyWrite, repository: &str, rule_count: usize) -> Option<Announcement> {
    let (reason, note) = match write {
        PolicyWrite::None => return None,
        PolicyWrite::Remove => (
            "Removed",
            format!("Removed the lifecycle policy of {repository} (dryRun)"),
        ),
        PolicyWrite::Put { replacing } => (
            if replacing { "Updated" } else { "Applied" },
            format!("Put lifecycle policy ({rule_count} rules) on ECR repository {repository}"),
        ),
    };
    Some(Announcement {
        reason,
        action: "Update",
        note,
    })
}

/// The Ready message: what the preview says would expire or be archived, and whether the policy
/// applies.
pub fn ready_message(dry_run: bool, repository: &str, preview: &LifecyclePreview) -> String {
    let mut outcome = format!(
        "{} of {} images would expire",
        preview.expiring_count, preview.image_count
    );
    if preview.archiving_count > 0 {
        outcome.push_str(&format!(", {} would be archived", preview.archiving_count));
    }
    if dry_run {
        format!("dryRun: {outcome}; the policy is not applied")
    } else {
        format!("lifecycle policy applied to {repository}; {outcome}")
    }
}

/// When `spec.repositoryRef` moved away from the repository where this object's policy is
/// (`now`: where it leads now), takes the policy off there now (not once the new one is Ready,
/// which may be never), in the registry the status records.
async fn leave_previous_repository(
    lp: &LifecyclePolicy,
    shared: &Shared,
    status: &mut LifecyclePolicyStatus,
    now: Option<&Place>,
) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let Some(previous) = place_to_leave(status, &lp.spec.repository_ref.name, now) else {
        return Ok(());
    };
    if !applied_by_another(&shared.store, lp, &previous) {
        let reach = shared
            .targets
            .reach(ctx, previous.target.as_deref())
            .await?;
        let repository = previous.repository.as_str();
        prove_owned(shared, &reach, lp, repository, Owner::AnyInNamespace).await?;
        reach.registry.delete_lifecycle_policy(repository).await?;
    }
    status.applied = false;
    status.repository_name = None;
    status.repository_ref_name = None;
    status.registry_target = None;
    status::write(ctx, lp, status).await
}

/// What refuses the object before any ECR call: an older object for the same Repository, a
/// cross-namespace reference, rules ECR would refuse.
fn refusal(lp: &LifecyclePolicy, shared: &Shared) -> Option<Error> {
    if let Some(other) = older_claimant(&shared.store, lp) {
        return Some(Error::Conflict(format!(
            "LifecyclePolicy {other} already manages the lifecycle policy of Repository {}; one LifecyclePolicy per repository",
            lp.spec.repository_ref.name
        )));
    }
    let own_namespace = lp.namespace().unwrap_or_default();
    lp.spec
        .repository_ref
        .cross_namespace("spec.repositoryRef", &own_namespace)
        .map(Error::Invalid)
}

async fn apply(lp: &LifecyclePolicy, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let mut status = status::current(lp);
    let repo = referenced(ctx, lp).await?;
    let now = repo.as_ref().map(Place::of);
    leave_previous_repository(lp, shared, &mut status, now.as_ref()).await?;
    if let Some(e) = refusal(lp, shared) {
        return Err(e);
    }
    let (rules, text) = render_spec(&lp.spec).map_err(Error::Invalid)?;
    let namespace = lp.namespace().unwrap_or_default();
    let place = ready_place(repo.as_ref(), &namespace, &lp.spec.repository_ref.name);
    let Some(here) = now else {
        return Err(Error::RepositoryNotReady(place.err().unwrap_or_default()));
    };
    // Nothing is read from a repository the namespace is not granted, nor from a target that is
    // missing or not Ready (anywhere): TargetNotReady before the wait for the Repository, which
    // waits for the same target.
    let (target, repository) = (here.target.as_deref(), here.repository.as_str());
    if let Access::Forbidden(message) = shared.grants.access_on(&namespace, target, repository) {
        return Err(Error::Forbidden(message));
    }
    let reach = shared.targets.reach(ctx, target).await?;
    let place = place.map_err(Error::RepositoryNotReady)?;
    let repository = place.repository.as_str();
    let write = converge(lp, shared, &reach, repository, status.applied, &text).await?;
    status.applied = !lp.spec.dry_run;

    // Archived images too: `storageClass: archive` rules act on them.
    let images = reach.registry.list_images_any_status(repository).await?;
    let fresh = preview(&rules, &images, Utc::now(), PREVIEW_CAP);
    let preview = settle_preview(status.preview.as_ref(), fresh);
    let message = ready_message(lp.spec.dry_run, repository, &preview);
    let event = announce(write, repository, rules.len());
    status.repository_name = Some(place.repository);
    status.registry_target = place.target;
    status.repository_ref_name = Some(lp.spec.repository_ref.name.clone());
    status.rule_count = Some(rules.len() as i32);
    status.preview = Some(preview);
    status::write_ready(ctx, lp, status, message, event).await?;
    Ok(Action::requeue(ctx.config.deep_sweep_interval))
}

/// Reads the repository's policy in its registry and writes what [`plan_write`] says, once the
/// repository is proven the referenced Repository's.
async fn converge(
    lp: &LifecyclePolicy,
    shared: &Shared,
    reach: &Reach,
    repository: &str,
    applied: bool,
    text: &str,
) -> Result<PolicyWrite, Error> {
    let current = match reach.registry.get_lifecycle_policy(repository).await {
        Ok(c) => c,
        Err(e) if e.class == ErrorClass::NotFound => {
            return Err(Error::RepositoryNotReady(format!(
                "ECR repository {repository} does not exist"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let write = plan_write(lp.spec.dry_run, applied, current.as_deref(), text);
    if write != PolicyWrite::None {
        let owner = Owner::Exactly(lp.spec.repository_ref.name.as_str());
        prove_owned(shared, reach, lp, repository, owner).await?;
    }
    match write {
        PolicyWrite::None => {}
        PolicyWrite::Remove => reach.registry.delete_lifecycle_policy(repository).await?,
        PolicyWrite::Put { .. } => {
            reach
                .registry
                .put_lifecycle_policy(repository, text)
                .await?;
            info!(repository = %repository, target = ?reach.target, "put lifecycle policy");
        }
    }
    Ok(write)
}

/// Where a policy this object's status does not record may still be (a crash, or an error
/// after the put and before the status write): the referenced Repository's repository, when the
/// policy there is exactly the one this object renders.
async fn unrecorded_put(lp: &LifecyclePolicy, shared: &Shared) -> Result<Option<Place>, Error> {
    let ctx = &shared.ctx;
    let place = referenced(ctx, lp).await?.as_ref().map(Place::of);
    let (Some(place), Ok((_, text))) = (place, render_spec(&lp.spec)) else {
        return Ok(None);
    };
    if lp.spec.dry_run || applied_by_another(&shared.store, lp, &place) {
        return Ok(None);
    }
    let reach = shared.targets.reach(ctx, place.target.as_deref()).await?;
    match reach.registry.get_lifecycle_policy(&place.repository).await {
        Ok(Some(current)) if lifecycle::policies_equivalent(&current, &text) => Ok(Some(place)),
        Ok(_) => Ok(None),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn cleanup(lp: &LifecyclePolicy, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let status = status::current(lp);
    let ours = match (status.applied, status.repository_name.clone()) {
        (true, Some(repository)) => Some(Place {
            repository,
            target: status.registry_target.clone(),
        }),
        _ => unrecorded_put(lp, shared).await?,
    };
    let Some(place) = ours else {
        return Ok(Action::await_change());
    };
    // Its registry, once its target is Ready: until then the finalizer stays, nothing is called.
    let reach = shared.targets.reach(ctx, place.target.as_deref()).await?;
    let repository = place.repository.as_str();
    // Only a policy this object put is removed (a newer, conflicting object never applied),
    // from a repository a Repository of this namespace owns.
    match prove_owned(shared, &reach, lp, repository, Owner::AnyInNamespace).await {
        Ok(()) => {}
        Err(Error::Forbidden(message) | Error::Conflict(message)) => {
            ctx.event(
                lp,
                kube::runtime::events::EventType::Warning,
                "NotOwned",
                "Delete",
                format!(
                    "Left the lifecycle policy of ECR repository {repository} in place: {message}"
                ),
            )
            .await;
            return Ok(Action::await_change());
        }
        Err(Error::RepositoryNotReady(_)) => return Ok(Action::await_change()),
        Err(e) => return Err(e),
    }
    reach.registry.delete_lifecycle_policy(repository).await?;
    ctx.event(
        lp,
        kube::runtime::events::EventType::Normal,
        "Deleted",
        "Delete",
        format!("Removed the lifecycle policy of ECR repository {repository}"),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
#[path = "lifecycle_policy_tests.rs"]
mod tests;
