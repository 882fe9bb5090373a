//! The Repository controller's I/O: observe (the shared inventory; tags and policy only when
//! due or before a write) → the pure decisions of `plan.rs` → apply only the difference → status
//! and one event. Every write to an existing repository and every delete follows a read of its
//! owner tag in the same reconcile.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::info;

use super::memory::KnownConflict;
use super::plan::{
    self, Claim, DeepCheck, Desired, PolicyAction, decide_claim, deep_check_timer, diff_settings,
    diff_tags, managed_tag_keys, plan_policy, policy_read_needed, records_spec_tag_keys,
    still_owned,
};
use super::{Op, Shared, older_claimant, status_owns};
use crate::api::conditions::{self, Reason};
use crate::api::repository::{OWNER_TAG, Ownership, Repository, RepositoryStatus};
use crate::controllers::inventory::Lookup;
use crate::controllers::owner_id;
use crate::controllers::{Error, jitter, status};
use crate::registry::{ErrorClass, NewRepository, RegistryError, RepositoryInfo};
use crate::tenancy::Access;

/// The repository this reconcile works on, and how this object came to manage it.
struct Found {
    info: RepositoryInfo,
    ownership: Ownership,
    /// This reconcile created it.
    created: bool,
    /// It already carried this object's owner tag while the status did not record it (a
    /// retained repository taken back, or a lost status): tags and policy are made to match the
    /// spec exactly, since the old object's cannot be told from others'.
    taken_back: bool,
}

/// One object's reconcile of a live (not deleted) Repository.
pub(super) async fn apply(repo: &Repository, shared: &Shared) -> Result<Action, Error> {
    let result = reach_and_apply(repo, shared).await;
    if result.is_err() {
        // What a failed pass left undone is unknown (a spec changed while the target was down,
        // say): the next one checks tags and policy too.
        let uid = repo.uid().unwrap_or_default();
        shared.memory.schedule_deep_check(&uid, Duration::ZERO);
    }
    result
}

/// The object's registry (refusing first what it may not touch), then [`apply_in`] there.
async fn reach_and_apply(repo: &Repository, shared: &Shared) -> Result<Action, Error> {
    let owner = owner_id(&shared.ctx, repo);
    let desired = Desired::from_spec(repo, &owner);
    let access = refuse_before_any_call(repo, shared, &desired)?;
    let reach = shared.targets.reach(&shared.ctx, repo.target()).await?;
    if !reach.inventory.is_synced() {
        // This registry's first sweep has not finished; it triggers a reconcile of everything.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let op = Op { shared, reach };
    apply_in(repo, &op, &desired, &owner, &access).await
}

/// [`apply`] in the registry the object's calls go to.
async fn apply_in(
    repo: &Repository,
    shared: &Op<'_>,
    desired: &Desired,
    owner: &str,
    access: &Access,
) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    if let Some(other) = older_claimant(shared, repo, &desired.name) {
        return Err(Error::Conflict(format!(
            "Repository {other} already manages ECR repository {}",
            desired.name
        )));
    }
    let uid = repo.uid().unwrap_or_default();
    let mut status = status::current(repo);
    if let Some(mine) = shared
        .memory
        .newer_than_stored(&uid, repo.metadata.generation, &status)
    {
        status = mine;
    }
    let Some(found) = find_or_create(shared, repo, desired, owner, &status, access).await? else {
        // The first sweep has not listed the repository yet.
        return Ok(Action::requeue(Duration::from_millis(500)));
    };
    let generation_changed = status.common.observed_generation != repo.metadata.generation;
    let (changes, policy_managed) = converge(
        shared,
        repo,
        desired,
        owner,
        &status,
        &found,
        generation_changed,
    )
    .await?;
    report(
        shared,
        repo,
        status,
        &found,
        changes,
        policy_managed,
        generation_changed,
    )
    .await?;
    // Come back when this object's tags and policy are due (a fixed requeue of one period would
    // bring every object back at once after a restart, undoing the jitter of the first checks),
    // by timer only when that comes before the next sweep's resync.
    let until = shared
        .memory
        .until_deep_check(&uid, ctx.config.deep_sweep_interval);
    Ok(match deep_check_timer(until, ctx.config.sweep_interval) {
        Some(until) => Action::requeue(until),
        None => Action::await_change(),
    })
}

/// What is refused before anything else, ECR reads included: a repository outside the
/// namespace's grant (a namespace's objects touch only what it is granted), and a policy text
/// over ECR's limit. Returns the namespace's access for the claim.
fn refuse_before_any_call(
    repo: &Repository,
    shared: &Shared,
    desired: &Desired,
) -> Result<Access, Error> {
    let namespace = repo.namespace().unwrap_or_default();
    let access = shared
        .grants
        .access_on(&namespace, repo.target(), &desired.name);
    if let Access::Forbidden(message) = &access {
        return Err(Error::Forbidden(message.clone()));
    }
    if let Some(policy) = &desired.policy {
        crate::repository_policy::check_size(&policy.to_string())
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    Ok(access)
}

/// Brings an existing (or just created) repository to the spec: settings the sweep showed
/// differing, and tags and policy when their check is due. Returns what changed and whether a
/// policy in ECR is now this object's.
async fn converge(
    shared: &Op<'_>,
    repo: &Repository,
    desired: &Desired,
    owner: &str,
    status: &RepositoryStatus,
    found: &Found,
    generation_changed: bool,
) -> Result<(Vec<&'static str>, bool), Error> {
    let uid = repo.uid().unwrap_or_default();
    let diff = diff_settings(desired, &found.info);
    if let Some(msg) = diff.encryption_mismatch.clone() {
        return Err(Error::Invalid(msg));
    }
    let (due, first_sight) = shared.memory.deep_due(&uid);
    let deep = DeepCheck {
        created: found.created,
        generation_changed,
        due,
        first_sight,
        newly_claimed: status_owns(status, &found.info).is_none(),
        unsynced_tag_keys: !records_spec_tag_keys(&status.managed_tag_keys, &repo.spec.tags),
    }
    .now();
    // Nothing is written to a repository before its tags show it is this object's: the sweep's
    // view may predate a delete and re-create outside the operator.
    let observed_tags = if !found.created && (deep || diff.writes()) {
        Some(verify_owner(shared, &uid, &found.info, owner).await?)
    } else {
        None
    };
    let mut changes = apply_settings(shared, &found.info, &diff).await?;
    let mut policy_managed = status.policy_managed;
    if found.created {
        // CreateRepository set the tags; only the policy needs its own call.
        if let Some(p) = &desired.policy {
            shared
                .reach
                .registry
                .set_repository_policy(&desired.name, &p.to_string())
                .await?;
            policy_managed = true;
        }
        schedule_deep_check(shared, &uid, false);
    } else if let Some(observed_tags) = observed_tags.filter(|_| deep) {
        let ours = status.policy_managed || found.taken_back;
        let managed = managed_tag_keys(&observed_tags, &status.managed_tag_keys, found.taken_back);
        changes.extend(
            sync_tags_and_policy(shared, desired, &found.info, &observed_tags, &managed, ours)
                .await?,
        );
        // After a deep sync ECR holds exactly the spec's policy, or none of ours.
        policy_managed = desired.policy.is_some();
        schedule_deep_check(shared, &uid, false);
    } else if first_sight {
        // Seen for the first time since start, and in sync as far as the sweep shows.
        schedule_deep_check(shared, &uid, true);
    }
    Ok((changes, policy_managed))
}

/// The repository from the inventory (created when absent, claimed when the status does not
/// record it); `None` while the inventory does not know yet.
async fn find_or_create(
    shared: &Op<'_>,
    repo: &Repository,
    desired: &Desired,
    owner: &str,
    status: &RepositoryStatus,
    access: &Access,
) -> Result<Option<Found>, Error> {
    let found = match shared.reach.inventory.lookup(&desired.name) {
        Lookup::Unknown => return Ok(None),
        Lookup::Absent => create(shared, repo, desired, owner, access).await?,
        Lookup::Present(info) => {
            let info = *info;
            // What ECR cannot change is checked before anything is written (an adoption
            // included), so an impossible spec writes nothing.
            if let Some(msg) = diff_settings(desired, &info).encryption_mismatch {
                return Err(Error::Invalid(msg));
            }
            match status_owns(status, &info) {
                Some(ownership) => Found {
                    info,
                    ownership,
                    created: false,
                    taken_back: false,
                },
                None => claim_remembered(shared, repo, info, owner, access).await?,
            }
        }
    };
    Ok(Some(found))
}

/// Creates the repository with every setting in one call. When it exists already (ECR's
/// eventual consistency, a crash before our status write, or someone else), claims it instead.
async fn create(
    shared: &Op<'_>,
    repo: &Repository,
    desired: &Desired,
    owner: &str,
    access: &Access,
) -> Result<Found, Error> {
    let (etype, kms) = desired.encryption.clone().unwrap_or(("AES256", None));
    let input = NewRepository {
        name: desired.name.clone(),
        tag_mutability: desired.tag_mutability.to_string(),
        tag_mutability_exclusions: desired.tag_mutability_exclusions.clone(),
        scan_on_push: desired.scan_on_push,
        encryption_type: etype.to_string(),
        kms_key: kms,
        tags: desired.tags.clone(),
    };
    match shared.reach.registry.create_repository(&input).await {
        Ok(info) => {
            shared
                .reach
                .inventory
                .record(&desired.name, Some(info.clone()));
            shared
                .memory
                .remember_verified(&repo.uid().unwrap_or_default(), &info);
            Ok(Found {
                info,
                ownership: Ownership::Created,
                created: true,
                taken_back: false,
            })
        }
        Err(e) if e.class == ErrorClass::AlreadyExists => {
            let Some(info) = shared
                .reach
                .registry
                .describe_repository(&desired.name)
                .await?
            else {
                // Exists for CreateRepository but not yet for DescribeRepositories: retry soon.
                return Err(Error::Registry(RegistryError::new(
                    ErrorClass::Transient,
                    "DescribeRepositories",
                    "repository exists but is not visible yet",
                )));
            };
            shared
                .reach
                .inventory
                .record(&desired.name, Some(info.clone()));
            if let Some(msg) = diff_settings(desired, &info).encryption_mismatch {
                return Err(Error::Invalid(msg));
            }
            claim(shared, repo, info, owner, access).await
        }
        Err(e) => Err(e.into()),
    }
}

/// [`claim`], remembering a conflict until the object changes or its deep-check slot comes.
async fn claim_remembered(
    shared: &Op<'_>,
    repo: &Repository,
    info: RepositoryInfo,
    owner: &str,
    access: &Access,
) -> Result<Found, Error> {
    let uid = repo.uid().unwrap_or_default();
    if let Some(message) = shared
        .memory
        .known_conflict(&uid, repo.metadata.generation, &info.arn)
    {
        return Err(Error::Conflict(message));
    }
    let arn = info.arn.clone();
    let result = claim(shared, repo, info, owner, access).await;
    let conflict = match &result {
        Err(Error::Conflict(message)) => {
            let period = shared.ctx.config.deep_sweep_interval;
            Some(KnownConflict {
                generation: repo.metadata.generation,
                arn,
                until: std::time::Instant::now() + period - jitter(&uid, 2, period / 10),
                message: message.clone(),
            })
        }
        _ => None,
    };
    shared.memory.set_conflict(&uid, conflict);
    result
}

/// Reads the owner tag of an existing repository and decides ([`decide_claim`]) whether this
/// object may manage it; tags it on an allowed adoption.
async fn claim(
    shared: &Op<'_>,
    repo: &Repository,
    info: RepositoryInfo,
    owner: &str,
    access: &Access,
) -> Result<Found, Error> {
    let uid = repo.uid().unwrap_or_default();
    let tags = shared.reach.registry.list_tags(&info.arn).await?;
    let namespace = repo.namespace().unwrap_or_default();
    let found = tags.get(OWNER_TAG).map(String::as_str);
    let (ownership, taken_back) = match decide_claim(
        &info.name,
        found,
        owner,
        repo.spec.adopt,
        access,
        &namespace,
    ) {
        Claim::TakeBack => (
            status::current(repo)
                .ownership
                .unwrap_or(Ownership::Created),
            true,
        ),
        Claim::Adopt => {
            let tag = BTreeMap::from([(OWNER_TAG.to_string(), owner.to_string())]);
            shared.reach.registry.tag_resource(&info.arn, &tag).await?;
            (Ownership::Adopted, false)
        }
        Claim::Refuse(e) => return Err(e),
    };
    shared.memory.remember_verified(&uid, &info);
    Ok(Found {
        info,
        ownership,
        created: false,
        taken_back,
    })
}

/// The repository's tags, when [`still_owned`] holds. Otherwise the repository under this name
/// is not proven this object's: the inventory learns it as it is now (so the next pass claims it
/// properly, or creates it when it is gone), and the object reports Conflict.
async fn verify_owner(
    shared: &Op<'_>,
    uid: &str,
    info: &RepositoryInfo,
    owner: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let tags = match shared.reach.registry.list_tags(&info.arn).await {
        Ok(tags) => tags,
        Err(e) if e.class == ErrorClass::NotFound => {
            shared.reach.inventory.record(&info.name, None);
            return Err(Error::RepositoryNotReady(format!(
                "ECR repository {} was deleted outside ecr-operator; it will be created again",
                info.name
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let found = tags.get(OWNER_TAG).map(String::as_str);
    if found == Some(owner) {
        shared.memory.remember_verified(uid, info);
        return Ok(tags);
    }
    let now = shared
        .reach
        .registry
        .describe_repository(&info.name)
        .await?;
    let seen = now.as_ref().is_some_and(|n| shared.memory.verified(uid, n));
    shared.reach.inventory.record(&info.name, now);
    if still_owned(found, owner, seen) {
        return Ok(tags);
    }
    Err(Error::Conflict(format!(
        "ECR repository {} no longer carries this object's owner tag (owner: {}); it was replaced \
         or changed outside ecr-operator and will not be modified",
        info.name,
        found.unwrap_or("none")
    )))
}

/// Writes the settings DescribeRepositories showed differing; returns what changed.
async fn apply_settings(
    shared: &Op<'_>,
    info: &RepositoryInfo,
    diff: &plan::SettingsDiff,
) -> Result<Vec<&'static str>, Error> {
    let mut changes = Vec::new();
    let mut observed = info.clone();
    if let Some(m) = &diff.tag_mutability {
        shared
            .reach
            .registry
            .put_image_tag_mutability(&info.name, m.mode, &m.exclusions)
            .await?;
        observed.tag_mutability = m.mode.to_string();
        observed.tag_mutability_exclusions = m.exclusions.clone();
        changes.extend(m.changed.iter().copied());
    }
    if let Some(s) = diff.scan_on_push {
        shared
            .reach
            .registry
            .put_scan_on_push(&info.name, s)
            .await?;
        observed.scan_on_push = s;
        changes.push("scanOnPush");
    }
    if observed != *info {
        shared.reach.inventory.record(&info.name, Some(observed));
    }
    Ok(changes)
}

/// Applies the difference of tags (read by the caller) and policy (one read, where there is a
/// policy to keep). Tags and a policy the object did not put there are left alone.
async fn sync_tags_and_policy(
    shared: &Op<'_>,
    desired: &Desired,
    info: &RepositoryInfo,
    observed_tags: &BTreeMap<String, String>,
    managed: &[String],
    ours: bool,
) -> Result<Vec<&'static str>, Error> {
    let registry = &shared.reach.registry;
    let (set, remove) = diff_tags(&desired.tags, observed_tags, managed);
    let mut changed = Vec::new();
    if !set.is_empty() {
        registry.tag_resource(&info.arn, &set).await?;
    }
    if !remove.is_empty() {
        registry.untag_resource(&info.arn, &remove).await?;
    }
    if !set.is_empty() || !remove.is_empty() {
        changed.push("tags");
    }
    if !policy_read_needed(desired.policy.as_ref(), ours) {
        return Ok(changed);
    }
    let current = registry.get_repository_policy(&info.name).await?;
    match plan_policy(desired.policy.as_ref(), current.as_deref(), ours) {
        PolicyAction::Keep => {}
        PolicyAction::Put(text) => {
            registry.set_repository_policy(&info.name, &text).await?;
            changed.push("policy");
        }
        PolicyAction::Delete => {
            registry.delete_repository_policy(&info.name).await?;
            changed.push("policy");
        }
    }
    Ok(changed)
}

fn schedule_deep_check(shared: &Op<'_>, uid: &str, first_after_start: bool) {
    let period = shared.ctx.config.deep_sweep_interval;
    // After a restart, spread the first checks over a whole period instead of bursting; later
    // checks keep a per-object phase so they stay spread.
    let next = if first_after_start {
        jitter(uid, 0, period)
    } else {
        period - jitter(uid, 1, period / 10)
    };
    shared.memory.schedule_deep_check(uid, next);
}

/// Writes Ready with what the reconcile found and changed, and the one event it calls for.
async fn report(
    shared: &Op<'_>,
    repo: &Repository,
    mut status: RepositoryStatus,
    found: &Found,
    changes: Vec<&'static str>,
    policy_managed: bool,
    generation_changed: bool,
) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let info = &found.info;
    status.repository_name = Some(info.name.clone());
    status.repository_arn = Some(info.arn.clone());
    status.repository_uri = Some(info.uri.clone());
    status.registry_id = Some(info.registry_id.clone());
    status.created_at = status::recorded_time(info.created_at);
    status.ownership = Some(found.ownership);
    status.managed_tag_keys = repo.spec.tags.keys().cloned().collect();
    status.policy_managed = policy_managed;
    let previously_synced = conditions::find_ready(&status.common.conditions)
        .is_some_and(|c| c.reason == Reason::Synced.as_str());
    let message = format!("ECR repository {} is in sync", info.uri);
    status::set_ready(&mut status, repo, true, Reason::Synced, message);
    status::write(ctx, repo, &status).await?;
    if repo.status.as_ref() != Some(&status) {
        let uid = repo.uid().unwrap_or_default();
        shared
            .memory
            .remember_written(&uid, repo.metadata.generation, &status);
    }
    if !changes.is_empty() {
        info!(repository = %info.name, changes = ?changes, "applied changes");
    }
    let announcement = plan::announce(
        &info.name,
        found.created,
        &changes,
        found.ownership,
        generation_changed,
        previously_synced,
    );
    if let Some(a) = announcement {
        a.publish(ctx, repo).await;
    }
    Ok(())
}
