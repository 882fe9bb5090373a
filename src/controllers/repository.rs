//! The Repository controller.
//!
//! observe (shared inventory, tags and policy only when due) → diff (pure) → apply only the
//! difference → write status. Ownership is recorded in ECR as a tag and in status, and nothing
//! owned by someone else is ever modified or deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use serde_json::Value;
use tracing::{info, instrument, warn};

use super::access::Grants;
use super::inventory::Lookup;
use super::{Context, Error, jitter, object_key, policy, status};
use crate::api::conditions::{self, Reason};
use crate::api::repository::{
    DeletionPolicy, OWNER_TAG, Ownership, Repository, RepositoryStatus, owner_value,
};
use crate::registry::{ErrorClass, NewRepository, RepositoryInfo};
use crate::tenancy::{self, Access};

/// State the Repository controller keeps between reconciles.
#[derive(Default)]
pub struct RepositoryState {
    /// When each object's tags and policy are next checked (by uid).
    deep_due: Mutex<HashMap<String, Instant>>,
    /// Ownership conflicts found by reading tags, remembered until the object changes or its
    /// next deep-sweep slot, so a conflicting object costs no ECR call per sweep.
    conflicts: Mutex<HashMap<String, KnownConflict>>,
    /// The status this process last wrote for each object (by uid) and the generation it was
    /// for, kept only until the watch shows it: a reconcile from a store that lags our own write
    /// (a sweep's reconcile-all just after a create) would otherwise take the repository for
    /// one it does not own yet and read its tags and policy again.
    written: Mutex<HashMap<String, (Option<i64>, RepositoryStatus)>>,
    /// The repository (ARN and creation time) whose owner tag this process last saw name each
    /// object (by uid), or that it created for it. Only this memory, never the status (which a
    /// tenant may be able to write), lets the deep sync put back an owner tag someone removed.
    verified: Mutex<HashMap<String, (String, Option<String>)>>,
}

impl RepositoryState {
    fn remember_verified(&self, uid: &str, info: &RepositoryInfo) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                uid.to_string(),
                (info.arn.clone(), rfc3339(info.created_at)),
            );
    }

    /// Whether this process saw `info` (the same ARN, created at the same time) carry this
    /// object's owner tag, or created it.
    fn verified(&self, uid: &str, info: &RepositoryInfo) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .is_some_and(|(arn, created)| *arn == info.arn && *created == rfc3339(info.created_at))
    }

    /// Our own newer status when the stored one lags it; forgets it once the store caught up.
    fn newer_than_stored(
        &self,
        uid: &str,
        generation: Option<i64>,
        stored: &RepositoryStatus,
    ) -> Option<RepositoryStatus> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        // Caught up: the stored status is at least as far as ours (timestamps may be rounded
        // on the way through the API server, so whole statuses are not compared).
        let caught_up = |mine: &RepositoryStatus| {
            stored.common.observed_generation == mine.common.observed_generation
                && stored.repository_arn == mine.repository_arn
                && stored.created_at == mine.created_at
                && stored.ownership == mine.ownership
        };
        match written.get(uid) {
            Some((g, mine)) if *g == generation && !caught_up(mine) => Some(mine.clone()),
            Some(_) => {
                written.remove(uid);
                None
            }
            None => None,
        }
    }
}

struct KnownConflict {
    generation: Option<i64>,
    arn: String,
    until: Instant,
    message: String,
}

/// The desired ECR state, derived from the spec alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub name: String,
    pub tag_mutability: &'static str,
    pub scan_on_push: bool,
    /// `None` when the spec does not say (keep whatever ECR chose).
    pub encryption: Option<(&'static str, Option<String>)>,
    /// Spec tags plus the ownership tag.
    pub tags: BTreeMap<String, String>,
    pub policy: Option<Value>,
}

impl Desired {
    pub fn from_spec(repo: &Repository, owner: &str) -> Desired {
        let mut tags = repo.spec.tags.clone();
        tags.insert(OWNER_TAG.to_string(), owner.to_string());
        Desired {
            name: repo.ecr_name(),
            tag_mutability: repo.spec.image_tag_mutability.as_ecr(),
            scan_on_push: repo.spec.scan_on_push,
            encryption: repo
                .spec
                .encryption
                .as_ref()
                .map(|e| (e.encryption_type.as_ecr(), e.kms_key.clone())),
            tags,
            policy: repo.spec.policy.as_ref().map(policy::render),
        }
    }
}

/// Settings DescribeRepositories shows that differ from the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsDiff {
    pub tag_mutability: Option<&'static str>,
    pub scan_on_push: Option<bool>,
    /// Encryption differs; ECR cannot change it, so this is reported, not applied.
    pub encryption_mismatch: Option<String>,
}

pub fn diff_settings(desired: &Desired, observed: &RepositoryInfo) -> SettingsDiff {
    let mut d = SettingsDiff::default();
    if observed.tag_mutability != desired.tag_mutability {
        d.tag_mutability = Some(desired.tag_mutability);
    }
    if observed.scan_on_push != desired.scan_on_push {
        d.scan_on_push = Some(desired.scan_on_push);
    }
    if let Some((etype, key)) = &desired.encryption {
        let key_differs = key
            .as_ref()
            .is_some_and(|k| observed.kms_key.as_deref() != Some(k.as_str()));
        if observed.encryption_type != *etype || key_differs {
            d.encryption_mismatch = Some(format!(
                "the repository is encrypted with {}{} but the spec asks for {etype}{}; ECR cannot change encryption after creation",
                observed.encryption_type,
                observed
                    .kms_key
                    .as_deref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default(),
                key.as_deref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default(),
            ));
        }
    }
    d
}

/// Tags to set and tag keys to remove. Only keys this object manages are ever removed.
pub fn diff_tags(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
    previously_managed: &[String],
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = desired
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = previously_managed
        .iter()
        .filter(|k| !desired.contains_key(*k) && observed.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

fn owner_id(ctx: &Context, repo: &Repository) -> String {
    owner_value(
        &ctx.config.cluster_id,
        &repo.namespace().unwrap_or_default(),
        &repo.name_any(),
    )
}

fn rfc3339(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_string())
}

/// The repository this object's status says it owns, if `info` is that very repository. The
/// status is a cache: it spares reading tags when nothing is to be written, and is never the
/// proof of ownership a write or a delete needs.
fn status_owns(status: &RepositoryStatus, info: &RepositoryInfo) -> Option<Ownership> {
    let same = status.repository_arn.as_deref() == Some(info.arn.as_str())
        && status.created_at == rfc3339(info.created_at);
    if same { status.ownership } else { None }
}

/// The controller's extra state (lives as long as the controller).
pub struct Shared {
    pub ctx: Arc<Context>,
    pub state: RepositoryState,
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
        state: RepositoryState::default(),
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
        match ctx.registry.list_repositories().await {
            Ok(list) => {
                failures = 0;
                ctx.inventory.apply_sweep(started, list);
                // A full channel means a reconcile-all is already pending: nothing is lost.
                let _ = trigger.try_send(());
                tokio::time::sleep(ctx.config.sweep_interval).await;
            }
            Err(e) => {
                failures += 1;
                let wait = Duration::from_millis(500 * (1u64 << failures.min(7)))
                    .min(ctx.config.sweep_interval);
                warn!(error = %e, retry_in = ?wait, "repository sweep failed");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[instrument(skip(repo, shared), fields(object = %object_key(repo.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(repo: Arc<Repository>, shared: Arc<Shared>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(repo, &shared).await;
    shared.ctx.observe("repository", &result, started);
    result
}

async fn reconcile_inner(repo: Arc<Repository>, shared: &Arc<Shared>) -> Result<Action, Error> {
    if !shared.ctx.inventory.is_synced() {
        // The first sweep has not finished; it triggers a reconcile of everything when it does.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    status::guarded(&shared.ctx, repo, |event| async {
        match event {
            FinalizerEvent::Apply(r) => apply(&r, shared).await,
            FinalizerEvent::Cleanup(r) => cleanup(&r, shared).await,
        }
    })
    .await
}

fn error_policy(repo: Arc<Repository>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, repo.as_ref(), err)
}

/// Another object that claims the same ECR repository and came first.
///
/// Runs on every reconcile, so it must not allocate per stored object: with 10 000 objects a
/// copy of the whole store and two strings per object on each reconcile cost seconds of CPU per
/// sweep. Only the (rare) objects naming the same repository are copied.
fn older_claimant(store: &Store<Repository>, repo: &Repository, name: &str) -> Option<String> {
    let key = |r: &Repository| {
        (
            r.metadata.creation_timestamp.clone().map(|t| t.0),
            object_key(r),
        )
    };
    let same_target = store.state_filter(|o| {
        let target = match &o.spec.repository_name {
            Some(n) => n.as_str(),
            None => o.metadata.name.as_deref().unwrap_or_default(),
        };
        target == name
            && o.metadata.uid != repo.metadata.uid
            && o.metadata.deletion_timestamp.is_none()
    });
    if same_target.is_empty() {
        return None;
    }
    let mine = key(repo);
    same_target
        .into_iter()
        .filter(|o| key(o) < mine)
        .map(|o| object_key(o.as_ref()))
        .min()
}

async fn apply(repo: &Repository, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let owner = owner_id(ctx, repo);
    let desired = Desired::from_spec(repo, &owner);
    let name = desired.name.clone();
    let namespace = repo.namespace().unwrap_or_default();
    // Before anything else, ECR reads included: a namespace's objects touch only what it is
    // granted.
    let access = shared.grants.access(&namespace, &name);
    if let Access::Forbidden(message) = &access {
        return Err(Error::Forbidden(message.clone()));
    }
    if let Some(other) = older_claimant(&shared.store, repo, &name) {
        return Err(Error::Conflict(format!(
            "Repository {other} already manages ECR repository {name}"
        )));
    }
    let uid = repo.uid().unwrap_or_default();
    let mut status = status::current(repo);
    if let Some(mine) = shared
        .state
        .newer_than_stored(&uid, repo.metadata.generation, &status)
    {
        status = mine;
    }
    let generation_changed = status.common.observed_generation != repo.metadata.generation;
    let mut changes: Vec<&str> = Vec::new();

    let (info, claimed, created) = match ctx.inventory.lookup(&name) {
        Lookup::Unknown => return Ok(Action::requeue(Duration::from_millis(500))),
        Lookup::Absent => create(shared, repo, &desired, &owner, &access).await?,
        Lookup::Present(info) => {
            // What ECR cannot change is checked before anything is written (an adoption
            // included), so an impossible spec writes nothing.
            if let Some(msg) = diff_settings(&desired, &info).encryption_mismatch {
                return Err(Error::Invalid(msg));
            }
            let claimed = match status_owns(&status, &info) {
                Some(ownership) => Claimed {
                    ownership,
                    taken_back: false,
                },
                None => claim_remembered(shared, repo, &info, &owner, &access).await?,
            };
            (info, claimed, false)
        }
    };
    let Claimed {
        ownership,
        taken_back,
    } = claimed;

    // Settings DescribeRepositories shows: compared on every sweep.
    let diff = diff_settings(&desired, &info);
    if let Some(msg) = diff.encryption_mismatch {
        return Err(Error::Invalid(msg));
    }
    // Tags and policy: not in DescribeRepositories, so checked when the spec changed or when
    // this object's jittered deep-sweep slot comes.
    let deep_due = {
        let due = shared
            .state
            .deep_due
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        due.get(&uid).is_none_or(|t| Instant::now() >= *t)
    };
    let first_sight = !shared
        .state
        .deep_due
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(&uid);
    let deep = !created
        && (generation_changed
            || (deep_due && !first_sight)
            || ownership_just_claimed(&status, &info));
    let settings_write = diff.tag_mutability.is_some() || diff.scan_on_push.is_some();
    // Nothing is written to a repository before its tags show it is this object's: the sweep's
    // view may predate a delete and re-create outside the operator (someone else's repository
    // under the same name and ARN), and the status matches that view.
    let observed_tags = if !created && (deep || settings_write) {
        Some(verify_owner(shared, &uid, &info, &owner).await?)
    } else {
        None
    };
    let mut observed = info.clone();
    if let Some(m) = diff.tag_mutability {
        ctx.registry.put_image_tag_mutability(&name, m).await?;
        observed.tag_mutability = m.to_string();
        changes.push("imageTagMutability");
    }
    if let Some(s) = diff.scan_on_push {
        ctx.registry.put_scan_on_push(&name, s).await?;
        observed.scan_on_push = s;
        changes.push("scanOnPush");
    }
    if observed != info {
        ctx.inventory.record(&name, Some(observed.clone()));
    }

    let mut policy_managed = status.policy_managed;
    if created {
        // CreateRepository set the tags; only the policy needs its own call.
        if let Some(p) = &desired.policy {
            ctx.registry
                .set_repository_policy(&name, &p.to_string())
                .await?;
            policy_managed = true;
        }
        schedule_deep_check(shared, &uid, false);
    } else if let Some(observed_tags) = observed_tags.filter(|_| deep) {
        let (set, remove) =
            deep_sync(ctx, &desired, &info, &status, &observed_tags, taken_back).await?;
        changes.extend(set);
        changes.extend(remove);
        // After a deep sync ECR holds exactly the spec's policy, or none of ours.
        policy_managed = desired.policy.is_some();
        schedule_deep_check(shared, &uid, false);
    } else if first_sight {
        // Seen for the first time since start, and in sync as far as the sweep shows.
        schedule_deep_check(shared, &uid, true);
    }

    let managed_tag_keys: Vec<String> = repo.spec.tags.keys().cloned().collect();
    let ready_msg = format!("ECR repository {} is in sync", info.uri);
    status.repository_name = Some(name.clone());
    status.repository_arn = Some(info.arn.clone());
    status.repository_uri = Some(info.uri.clone());
    status.registry_id = Some(info.registry_id.clone());
    status.created_at = rfc3339(info.created_at);
    status.ownership = Some(ownership);
    status.managed_tag_keys = managed_tag_keys;
    status.policy_managed = policy_managed;
    let previous_reason =
        conditions::find_ready(&status.common.conditions).map(|c| c.reason.clone());
    status::set_ready(&mut status, repo, true, Reason::Synced, ready_msg);
    status::write(ctx, repo, &status).await?;
    if repo.status.as_ref() != Some(&status) {
        shared
            .state
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.clone(), (repo.metadata.generation, status.clone()));
    }

    if created {
        ctx.event(
            repo,
            EventType::Normal,
            "Created",
            "Create",
            format!("Created ECR repository {name}"),
        )
        .await;
    } else if !changes.is_empty() {
        ctx.event(
            repo,
            EventType::Normal,
            "Updated",
            "Update",
            format!("Updated {}", changes.join(", ")),
        )
        .await;
    } else if previous_reason.as_deref() != Some(Reason::Synced.as_str())
        && ownership == Ownership::Adopted
        && generation_changed
    {
        ctx.event(
            repo,
            EventType::Normal,
            "Adopted",
            "Adopt",
            format!("Adopted ECR repository {name}"),
        )
        .await;
    }
    if !changes.is_empty() {
        info!(repository = %name, changes = ?changes, "applied changes");
    }
    // Come back when this object's tags and policy are due: a fixed requeue of one period would
    // bring every object back at once after a restart, undoing the jitter of the first checks.
    Ok(Action::requeue(next_deep_check(shared, &uid)))
}

/// Time until the object's next tag and policy check (at most one deep-sweep period).
fn next_deep_check(shared: &Shared, uid: &str) -> Duration {
    let period = shared.ctx.config.deep_sweep_interval;
    shared
        .state
        .deep_due
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(uid)
        .map_or(period, |due| {
            due.saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(100), period)
        })
}

/// True when the status does not yet record ownership of this repository (first reconcile
/// after an adoption or a lost status): tags and policy must be checked now.
fn ownership_just_claimed(status: &RepositoryStatus, info: &RepositoryInfo) -> bool {
    status_owns(status, info).is_none()
}

fn schedule_deep_check(shared: &Shared, uid: &str, first_after_start: bool) {
    let period = shared.ctx.config.deep_sweep_interval;
    // After a restart, spread the first checks over a whole period instead of bursting; later
    // checks keep a per-object phase so they stay spread.
    let next = if first_after_start {
        jitter(uid, 0, period)
    } else {
        period - jitter(uid, 1, period / 10)
    };
    shared
        .state
        .deep_due
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(uid.to_string(), Instant::now() + next);
}

/// Creates the repository with every setting in one call. When it exists already (ECR's
/// eventual consistency, a crash before our status write, or someone else), claims it instead.
async fn create(
    shared: &Shared,
    repo: &Repository,
    desired: &Desired,
    owner: &str,
    access: &Access,
) -> Result<(RepositoryInfo, Claimed, bool), Error> {
    let ctx = &shared.ctx;
    let (etype, kms) = desired.encryption.clone().unwrap_or(("AES256", None));
    let input = NewRepository {
        name: desired.name.clone(),
        tag_mutability: desired.tag_mutability.to_string(),
        scan_on_push: desired.scan_on_push,
        encryption_type: etype.to_string(),
        kms_key: kms,
        tags: desired.tags.clone(),
    };
    match ctx.registry.create_repository(&input).await {
        Ok(info) => {
            ctx.inventory.record(&desired.name, Some(info.clone()));
            shared
                .state
                .remember_verified(&repo.uid().unwrap_or_default(), &info);
            let claimed = Claimed {
                ownership: Ownership::Created,
                taken_back: false,
            };
            Ok((info, claimed, true))
        }
        Err(e) if e.class == ErrorClass::AlreadyExists => {
            let Some(info) = ctx.registry.describe_repository(&desired.name).await? else {
                // Exists for CreateRepository but not yet for DescribeRepositories: retry soon.
                return Err(Error::Registry(crate::registry::RegistryError::new(
                    ErrorClass::Transient,
                    "DescribeRepositories",
                    "repository exists but is not visible yet",
                )));
            };
            ctx.inventory.record(&desired.name, Some(info.clone()));
            if let Some(msg) = diff_settings(desired, &info).encryption_mismatch {
                return Err(Error::Invalid(msg));
            }
            let claimed = claim(shared, repo, &info, owner, access).await?;
            Ok((info, claimed, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// [`claim`], remembering a conflict until the object changes or its deep-sweep slot comes.
async fn claim_remembered(
    shared: &Shared,
    repo: &Repository,
    info: &RepositoryInfo,
    owner: &str,
    access: &Access,
) -> Result<Claimed, Error> {
    let uid = repo.uid().unwrap_or_default();
    {
        let known = shared
            .state
            .conflicts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = known.get(&uid)
            && c.generation == repo.metadata.generation
            && c.arn == info.arn
            && Instant::now() < c.until
        {
            return Err(Error::Conflict(c.message.clone()));
        }
    }
    let result = claim(shared, repo, info, owner, access).await;
    let mut known = shared
        .state
        .conflicts
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match &result {
        Err(Error::Conflict(message)) => {
            let period = shared.ctx.config.deep_sweep_interval;
            known.insert(
                uid.clone(),
                KnownConflict {
                    generation: repo.metadata.generation,
                    arn: info.arn.clone(),
                    until: Instant::now() + period - jitter(&uid, 2, period / 10),
                    message: message.clone(),
                },
            );
        }
        _ => {
            known.remove(&uid);
        }
    }
    result
}

/// How this object came to manage the repository its status does not record yet.
#[derive(Debug, Clone, Copy)]
struct Claimed {
    ownership: Ownership,
    /// The repository already carries this object's owner tag: it retained it when an earlier
    /// object of the same namespace and name was deleted, or the status was lost. Which tags
    /// and policy that object put there is unknown, so the spec is applied exactly.
    taken_back: bool,
}

/// Decides whether this object may manage an existing repository, from its ownership tag and
/// (for an adoption) what its namespace's grant allows.
async fn claim(
    shared: &Shared,
    repo: &Repository,
    info: &RepositoryInfo,
    owner: &str,
    access: &Access,
) -> Result<Claimed, Error> {
    let ctx = &shared.ctx;
    let uid = repo.uid().unwrap_or_default();
    let tags = ctx.registry.list_tags(&info.arn).await?;
    match tags.get(OWNER_TAG) {
        Some(o) if o == owner => {
            shared.state.remember_verified(&uid, info);
            Ok(Claimed {
                ownership: status::current(repo)
                    .ownership
                    .unwrap_or(Ownership::Created),
                taken_back: true,
            })
        }
        Some(other) => Err(Error::Conflict(format!(
            "ECR repository {} is owned by {other}; it will not be modified",
            info.name
        ))),
        None if repo.spec.adopt => {
            let namespace = repo.namespace().unwrap_or_default();
            if let Some(refusal) = tenancy::adoption_refusal(access, &namespace, &info.name) {
                return Err(Error::Forbidden(refusal));
            }
            let tag = BTreeMap::from([(OWNER_TAG.to_string(), owner.to_string())]);
            ctx.registry.tag_resource(&info.arn, &tag).await?;
            shared.state.remember_verified(&uid, info);
            Ok(Claimed {
                ownership: Ownership::Adopted,
                taken_back: false,
            })
        }
        None => Err(Error::Conflict(format!(
            "ECR repository {} already exists and is not managed by ecr-operator; set spec.adopt: true to take it over",
            info.name
        ))),
    }
}

/// The repository's tags, when they show `owner` owns it, or carry no owner tag on the very
/// repository this process saw carry it or created (same ARN, created at the same time:
/// someone removed the tag, and the deep sync puts it back). Otherwise the repository under
/// this name is not proven this object's: the inventory learns the repository as it is now (so
/// the next pass claims it properly, or creates it when it is gone), and the object reports
/// Conflict.
async fn verify_owner(
    shared: &Shared,
    uid: &str,
    info: &RepositoryInfo,
    owner: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let ctx = &shared.ctx;
    let tags = match ctx.registry.list_tags(&info.arn).await {
        Ok(tags) => tags,
        Err(e) if e.class == ErrorClass::NotFound => {
            ctx.inventory.record(&info.name, None);
            return Err(Error::RepositoryNotReady(format!(
                "ECR repository {} was deleted outside ecr-operator; it will be created again",
                info.name
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let found = tags.get(OWNER_TAG).map(String::as_str);
    if found == Some(owner) {
        shared.state.remember_verified(uid, info);
        return Ok(tags);
    }
    let now = ctx.registry.describe_repository(&info.name).await?;
    let same = now.as_ref().is_some_and(|n| shared.state.verified(uid, n));
    ctx.inventory.record(&info.name, now);
    if found.is_none() && same {
        return Ok(tags);
    }
    Err(Error::Conflict(format!(
        "ECR repository {} no longer carries this object's owner tag (owner: {}); it was replaced \
         or changed outside ecr-operator and will not be modified",
        info.name,
        tags.get(OWNER_TAG).map_or("none", String::as_str)
    )))
}

/// Applies the difference of tags (read by the caller) and policy (one call, where there is a
/// policy to keep). Tags and a policy the object did not put there are left alone, except on a
/// take-back, where nothing tells ours from others' and a leftover policy could grant what the
/// spec does not.
async fn deep_sync(
    ctx: &Context,
    desired: &Desired,
    info: &RepositoryInfo,
    status: &RepositoryStatus,
    observed_tags: &BTreeMap<String, String>,
    taken_back: bool,
) -> Result<(Vec<&'static str>, Vec<&'static str>), Error> {
    let managed: Vec<String> = if taken_back {
        // `aws:` tags belong to AWS and cannot be removed.
        observed_tags
            .keys()
            .filter(|k| !k.starts_with("aws:"))
            .cloned()
            .collect()
    } else {
        status.managed_tag_keys.clone()
    };
    let (set, remove) = diff_tags(&desired.tags, observed_tags, &managed);
    let mut changed = Vec::new();
    if !set.is_empty() {
        ctx.registry.tag_resource(&info.arn, &set).await?;
        changed.push("tags");
    }
    if !remove.is_empty() {
        ctx.registry.untag_resource(&info.arn, &remove).await?;
        if changed.is_empty() {
            changed.push("tags");
        }
    }
    let mut policy_changed = Vec::new();
    // With no policy in the spec and none of ours in ECR, whatever ECR holds is left alone: no
    // need to read it (half the calls of a deep sweep where repositories have no policy).
    let ours = status.policy_managed || taken_back;
    if desired.policy.is_none() && !ours {
        return Ok((changed, policy_changed));
    }
    let current = ctx.registry.get_repository_policy(&info.name).await?;
    match (&desired.policy, current) {
        (Some(want), Some(have)) if policy::text_equivalent(&have, want) => {}
        (Some(want), _) => {
            ctx.registry
                .set_repository_policy(&info.name, &want.to_string())
                .await?;
            policy_changed.push("policy");
        }
        (None, Some(_)) if ours => {
            ctx.registry.delete_repository_policy(&info.name).await?;
            policy_changed.push("policy");
        }
        (None, _) => {}
    }
    Ok((changed, policy_changed))
}

async fn cleanup(repo: &Repository, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let name = repo.ecr_name();
    let uid = repo.uid().unwrap_or_default();
    shared
        .state
        .deep_due
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&uid);
    shared
        .state
        .conflicts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&uid);
    shared
        .state
        .written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&uid);
    shared
        .state
        .verified
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&uid);
    if repo.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.event(
            repo,
            EventType::Normal,
            "Retained",
            "Delete",
            format!("Left ECR repository {name} in place (deletionPolicy: Retain)"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let namespace = repo.namespace().unwrap_or_default();
    if let Access::Forbidden(message) = shared.grants.access(&namespace, &name) {
        ctx.event(
            repo,
            EventType::Warning,
            "Forbidden",
            "Delete",
            format!("Left ECR repository {name} in place: {message}"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let Some(info) = ctx.registry.describe_repository(&name).await? else {
        ctx.inventory.record(&name, None);
        return Ok(Action::await_change());
    };
    // Only the owner tag, read now, proves the repository is this object's: never the status.
    let owned = ctx
        .registry
        .list_tags(&info.arn)
        .await?
        .get(OWNER_TAG)
        .is_some_and(|o| *o == owner_id(ctx, repo));
    if !owned {
        ctx.event(
            repo,
            EventType::Normal,
            "NotOwned",
            "Delete",
            format!("Left ECR repository {name} in place: this object does not own it"),
        )
        .await;
        return Ok(Action::await_change());
    }
    match ctx
        .registry
        .delete_repository(&name, repo.spec.force_delete)
        .await
    {
        Ok(()) => {}
        Err(e) if e.class == ErrorClass::NotFound => {}
        Err(e) if e.class == ErrorClass::NotEmpty => {
            let msg = if repo.spec.force_delete {
                format!(
                    "ECR repository {name} received images while it was being deleted; retrying"
                )
            } else {
                format!(
                    "ECR repository {name} still holds images; set spec.forceDelete: true to delete them with it, or remove the images"
                )
            };
            return Err(Error::NotEmpty(msg));
        }
        Err(e) => return Err(e.into()),
    }
    ctx.inventory.record(&name, None);
    ctx.event(
        repo,
        EventType::Normal,
        "Deleted",
        "Delete",
        format!("Deleted ECR repository {name}"),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repository::{RepositorySpec, TagMutability};

    fn info() -> RepositoryInfo {
        RepositoryInfo {
            name: "team/app".into(),
            arn: "arn:aws:ecr:us-east-1:123456789012:repository/team/app".into(),
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app".into(),
            registry_id: "123456789012".into(),
            created_at: None,
            tag_mutability: "MUTABLE".into(),
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
        }
    }

    fn repo(spec: RepositorySpec) -> Repository {
        let mut r = Repository::new("app", spec);
        r.metadata.namespace = Some("team".into());
        r
    }

    #[test]
    fn settings_diff_only_what_differs() {
        let r = repo(RepositorySpec {
            repository_name: Some("team/app".into()),
            image_tag_mutability: TagMutability::Immutable,
            ..Default::default()
        });
        let d = Desired::from_spec(&r, "c/team/app");
        let diff = diff_settings(&d, &info());
        assert_eq!(diff.tag_mutability, Some("IMMUTABLE"));
        assert_eq!(diff.scan_on_push, None);
        assert_eq!(diff.encryption_mismatch, None);
        let mut synced = info();
        synced.tag_mutability = "IMMUTABLE".into();
        assert_eq!(diff_settings(&d, &synced), SettingsDiff::default());
    }

    #[test]
    fn encryption_mismatch_is_reported_not_applied() {
        let r = repo(RepositorySpec {
            encryption: Some(crate::api::repository::Encryption {
                encryption_type: crate::api::repository::EncryptionType::Kms,
                kms_key: None,
            }),
            ..Default::default()
        });
        let diff = diff_settings(&Desired::from_spec(&r, "o"), &info());
        assert!(diff.encryption_mismatch.unwrap().contains("cannot change"));
    }

    #[test]
    fn tags_diff_leaves_foreign_tags_alone() {
        let desired = BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            (OWNER_TAG.to_string(), "o".to_string()),
        ]);
        let observed = BTreeMap::from([
            ("team".to_string(), "b".to_string()),
            ("cost-center".to_string(), "42".to_string()),
            ("old".to_string(), "x".to_string()),
            (OWNER_TAG.to_string(), "o".to_string()),
        ]);
        let (set, remove) = diff_tags(
            &desired,
            &observed,
            &["team".to_string(), "old".to_string()],
        );
        assert_eq!(set, BTreeMap::from([("team".to_string(), "a".to_string())]));
        assert_eq!(remove, vec!["old".to_string()]);
        let (set, remove) = diff_tags(&desired, &desired, &["team".to_string()]);
        assert!(set.is_empty() && remove.is_empty());
    }
}
