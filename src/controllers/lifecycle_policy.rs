//! The LifecyclePolicy controller.
//!
//! dereference (the Repository, which must be Ready) → validate and render (pure, `lifecycle/`)
//! → observe (GetLifecyclePolicy) → PutLifecyclePolicy only when the texts differ in meaning →
//! preview (DescribeImages + the local evaluator) → status. ECR calls per reconcile: one
//! GetLifecyclePolicy, one DescribeImages per 1000 images, and a PutLifecyclePolicy only on a
//! change or drift.

use std::sync::Arc;

use chrono::{DateTime, Utc};
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
use super::{Context, Error, object_key};
use crate::api::conditions;
use crate::api::lifecycle_policy::{
    LifecycleActionType, LifecyclePolicySpec, LifecyclePolicyStatus, LifecyclePreview,
    LifecycleRule, LifecycleStorageClass, PreviewImage,
};
use crate::api::repository::{OWNER_TAG, owned_in_namespace, owner_value};
use crate::api::{LifecyclePolicy, Repository};
use crate::lifecycle::{self, Image, Rule, StorageClass};
use crate::registry::{ErrorClass, ImageInfo};
use crate::tenancy::Access;

/// Images listed in the status preview at most; `truncated` says when there are more.
pub const PREVIEW_CAP: usize = 50;

#[path = "lifecycle_policy_model.rs"]
mod model;
use model::to_image;
pub use model::{rules_of, to_rules};

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

/// Which of `images` the rules would expire or archive at `now`: counts, and the first `cap`
/// images (oldest first within each rule, rules by priority), each with its action.
pub fn preview(
    rules: &[Rule],
    images: &[ImageInfo],
    now: DateTime<Utc>,
    cap: usize,
) -> LifecyclePreview {
    let model: Vec<Image> = images.iter().map(|i| to_image(i, now)).collect();
    let outcomes = lifecycle::evaluate(rules, &model, now);
    let image = |digest: &str| model.iter().find(|i| i.digest == digest);
    let archiving = outcomes
        .iter()
        .filter(|e| e.action == lifecycle::Action::Transition)
        .count();
    LifecyclePreview {
        evaluated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        image_count: images.len() as i64,
        expiring_count: (outcomes.len() - archiving) as i64,
        archiving_count: archiving as i64,
        truncated: outcomes.len() > cap,
        images: outcomes
            .iter()
            .take(cap)
            .map(|e| PreviewImage {
                digest: e.digest.clone(),
                tags: e.tags.clone(),
                pushed_at: image(&e.digest)
                    .map(|i| {
                        i.pushed_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    })
                    .unwrap_or_default(),
                rule_priority: i32::try_from(e.rule_priority).unwrap_or(i32::MAX),
                action: match e.action {
                    lifecycle::Action::Expire => LifecycleActionType::Expire,
                    lifecycle::Action::Transition => LifecycleActionType::Transition,
                },
                storage_class: match image(&e.digest).map(|i| i.storage_class) {
                    Some(StorageClass::Archive) => LifecycleStorageClass::Archive,
                    _ => LifecycleStorageClass::Standard,
                },
            })
            .collect(),
    }
}

/// Keeps the previous preview (and its time) when nothing in it changed, so a resync of an
/// unchanged repository writes no status.
fn settle_preview(
    previous: Option<&LifecyclePreview>,
    fresh: LifecyclePreview,
) -> LifecyclePreview {
    match previous {
        Some(p)
            if p.image_count == fresh.image_count
                && p.expiring_count == fresh.expiring_count
                && p.archiving_count == fresh.archiving_count
                && p.truncated == fresh.truncated
                && p.images == fresh.images =>
        {
            p.clone()
        }
        _ => fresh,
    }
}

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<LifecyclePolicy>,
    /// What each namespace may manage.
    pub grants: Arc<Grants>,
}

/// Runs the LifecyclePolicy controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    grants: Arc<Grants>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<LifecyclePolicy>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    grants.ready().await;
    let grant_changes = grants.changes();
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        store: reader.clone(),
        grants,
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
            .reconcile_all_on(grant_changes)
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

/// The ECR repository name the reference points at now, Ready or not; `None` when the
/// Repository does not exist.
async fn target_name(ctx: &Context, lp: &LifecyclePolicy) -> Result<Option<String>, Error> {
    let ns = lp.namespace().unwrap_or_default();
    let api: Api<Repository> = Api::namespaced(ctx.client.clone(), &ns);
    Ok(api.get_opt(&lp.spec.repository_ref.name).await?.map(|r| {
        r.status
            .as_ref()
            .and_then(|s| s.repository_name.clone())
            .unwrap_or_else(|| r.ecr_name())
    }))
}

/// Whether `spec.repositoryRef` no longer leads to `previous`, where the applied policy is: it
/// names another Repository, or the same one now targets another ECR name. A Repository that
/// was deleted does not count (its ECR repository may be retained, policy included).
async fn moved_away(
    ctx: &Context,
    lp: &LifecyclePolicy,
    status: &LifecyclePolicyStatus,
    previous: &str,
) -> Result<bool, Error> {
    let same_ref = status
        .repository_ref_name
        .as_deref()
        .is_none_or(|n| n == lp.spec.repository_ref.name);
    if !same_ref {
        return Ok(true);
    }
    Ok(target_name(ctx, lp)
        .await?
        .is_some_and(|target| target != previous))
}

/// Whether another LifecyclePolicy's status says it put its policy on `repository` (then
/// that policy is not this object's to remove).
fn applied_by_another(
    store: &Store<LifecyclePolicy>,
    lp: &LifecyclePolicy,
    repository: &str,
) -> bool {
    store.state().iter().any(|o| {
        o.uid() != lp.uid()
            && o.metadata.deletion_timestamp.is_none()
            && o.status
                .as_ref()
                .is_some_and(|s| s.applied && s.repository_name.as_deref() == Some(repository))
    })
}

/// The ECR repository name of the referenced Repository, once it is Ready.
async fn ready_repository(ctx: &Context, lp: &LifecyclePolicy) -> Result<String, Error> {
    let ns = lp.namespace().unwrap_or_default();
    let name = &lp.spec.repository_ref.name;
    let api: Api<Repository> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(repo) = api.get_opt(name).await? else {
        return Err(Error::RepositoryNotReady(format!(
            "Repository {name} does not exist in namespace {ns}"
        )));
    };
    // Its policy calls go to the operator's own registry, where the same name is another
    // repository: refused until LifecyclePolicies follow their Repository's target.
    if let Some(target) = repo.target() {
        return Err(Error::Invalid(format!(
            "Repository {name} is in RegistryTarget {target}: LifecyclePolicies of Repositories \
             in a RegistryTarget are not supported yet"
        )));
    }
    let status = repo.status.as_ref();
    let ready = status
        .is_some_and(|s| conditions::is_ready_at(&s.common.conditions, repo.metadata.generation));
    match status.and_then(|s| s.repository_name.clone()) {
        Some(ecr_name) if ready => Ok(ecr_name),
        _ => {
            let why = status
                .and_then(|s| conditions::find_ready(&s.common.conditions))
                .map(|c| format!(" ({}: {})", c.reason, c.message))
                .unwrap_or_default();
            Err(Error::RepositoryNotReady(format!(
                "waiting for Repository {name} to be Ready{why}"
            )))
        }
    }
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
    lp: &LifecyclePolicy,
    repository: &str,
    owner: Owner<'_>,
) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let namespace = lp.namespace().unwrap_or_default();
    if let Access::Forbidden(message) = shared.grants.access(&namespace, repository) {
        return Err(Error::Forbidden(message));
    }
    let Some(info) = ctx.registry.describe_repository(repository).await? else {
        return Err(Error::RepositoryNotReady(format!(
            "ECR repository {repository} does not exist"
        )));
    };
    let tags = ctx.registry.list_tags(&info.arn).await?;
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

/// When `spec.repositoryRef` moved away from the repository where this object's policy is, takes
/// the policy off there now (not once the new one is Ready, which may be never).
async fn leave_previous_repository(
    lp: &LifecyclePolicy,
    shared: &Shared,
    status: &mut LifecyclePolicyStatus,
) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let Some(previous) = status.repository_name.clone().filter(|_| status.applied) else {
        return Ok(());
    };
    if !moved_away(ctx, lp, status, &previous).await? {
        return Ok(());
    }
    if !applied_by_another(&shared.store, lp, &previous) {
        prove_owned(shared, lp, &previous, Owner::AnyInNamespace).await?;
        ctx.registry.delete_lifecycle_policy(&previous).await?;
    }
    status.applied = false;
    status.repository_name = None;
    status.repository_ref_name = None;
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
    leave_previous_repository(lp, shared, &mut status).await?;
    if let Some(e) = refusal(lp, shared) {
        return Err(e);
    }
    let (rules, text) = render_spec(&lp.spec).map_err(Error::Invalid)?;
    let repository = ready_repository(ctx, lp).await?;
    let ref_name = lp.spec.repository_ref.name.as_str();
    // Nothing is read from a repository the namespace is not granted.
    let namespace = lp.namespace().unwrap_or_default();
    if let Access::Forbidden(message) = shared.grants.access(&namespace, &repository) {
        return Err(Error::Forbidden(message));
    }
    let current = match ctx.registry.get_lifecycle_policy(&repository).await {
        Ok(c) => c,
        Err(e) if e.class == ErrorClass::NotFound => {
            return Err(Error::RepositoryNotReady(format!(
                "ECR repository {repository} does not exist"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let write = plan_write(lp.spec.dry_run, status.applied, current.as_deref(), &text);
    if write != PolicyWrite::None {
        prove_owned(shared, lp, &repository, Owner::Exactly(ref_name)).await?;
    }
    match write {
        PolicyWrite::None => {}
        PolicyWrite::Remove => ctx.registry.delete_lifecycle_policy(&repository).await?,
        PolicyWrite::Put { .. } => {
            ctx.registry
                .put_lifecycle_policy(&repository, &text)
                .await?;
            info!(repository = %repository, "put lifecycle policy");
        }
    }
    status.applied = !lp.spec.dry_run;

    // Archived images too: `storageClass: archive` rules act on them.
    let images = ctx.registry.list_images_any_status(&repository).await?;
    let fresh = preview(&rules, &images, Utc::now(), PREVIEW_CAP);
    let preview = settle_preview(status.preview.as_ref(), fresh);
    let message = ready_message(lp.spec.dry_run, &repository, &preview);
    let event = announce(write, &repository, rules.len());
    status.repository_name = Some(repository);
    status.repository_ref_name = Some(lp.spec.repository_ref.name.clone());
    status.rule_count = Some(rules.len() as i32);
    status.preview = Some(preview);
    status::write_ready(ctx, lp, status, message, event).await?;
    Ok(Action::requeue(ctx.config.deep_sweep_interval))
}

async fn cleanup(lp: &LifecyclePolicy, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let status = status::current(lp);
    let ours = match (status.applied, status.repository_name.clone()) {
        (true, Some(repository)) => Some(repository),
        // The status may not record a put that happened (a crash, or an error after the put
        // and before the status write): the policy in ECR is ours when it is exactly the one
        // this object renders.
        _ => match (target_name(ctx, lp).await?, render_spec(&lp.spec)) {
            (Some(target), Ok((_, text)))
                if !lp.spec.dry_run && !applied_by_another(&shared.store, lp, &target) =>
            {
                match ctx.registry.get_lifecycle_policy(&target).await {
                    Ok(Some(current)) if lifecycle::policies_equivalent(&current, &text) => {
                        Some(target)
                    }
                    Ok(_) => None,
                    Err(e) if e.class == ErrorClass::NotFound => None,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => None,
        },
    };
    if let Some(repository) = ours.as_deref() {
        // Only a policy this object put is removed (a newer, conflicting object never applied),
        // from a repository a Repository of this namespace owns.
        match prove_owned(shared, lp, repository, Owner::AnyInNamespace).await {
            Ok(()) => {}
            Err(Error::Forbidden(message) | Error::Conflict(message)) => {
                ctx.event(
                    lp,
                    kube::runtime::events::EventType::Warning,
                    "NotOwned",
                    "Delete",
                    format!("Left the lifecycle policy of ECR repository {repository} in place: {message}"),
                )
                .await;
                return Ok(Action::await_change());
            }
            Err(Error::RepositoryNotReady(_)) => return Ok(Action::await_change()),
            Err(e) => return Err(e),
        }
        ctx.registry.delete_lifecycle_policy(repository).await?;
        ctx.event(
            lp,
            kube::runtime::events::EventType::Normal,
            "Deleted",
            "Delete",
            format!("Removed the lifecycle policy of ECR repository {repository}"),
        )
        .await;
    }
    Ok(Action::await_change())
}

#[cfg(test)]
#[path = "lifecycle_policy_tests.rs"]
mod tests;
