//! The Repository controller's decisions, pure: what the spec wants, how it differs from what
//! ECR shows, whether this object may manage the repository it found, when tags and policy are
//! checked, which event tells the user, and what a deletion does. The I/O around them is in
//! `apply.rs`; table tests at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::api::repository::{DeletionPolicy, OWNER_TAG, Ownership, Repository};
use crate::api::tags::Tags;
use crate::controllers::Error;
use crate::controllers::status::Announcement;
use crate::registry::RepositoryInfo;
use crate::repository_policy;
use crate::tenancy::{self, Access};

/// The desired ECR state, derived from the spec alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub name: String,
    pub tag_mutability: &'static str,
    /// The spec's exclusion filters in its order, repeats dropped (empty without an
    /// *_WITH_EXCLUSION mode).
    pub tag_mutability_exclusions: Vec<String>,
    pub scan_on_push: bool,
    /// `None` when the spec does not say (keep whatever ECR chose).
    pub encryption: Option<(&'static str, Option<String>)>,
    /// Spec tags plus the ownership tag.
    pub tags: BTreeMap<String, String>,
    pub policy: Option<Value>,
}

impl Desired {
    pub fn from_spec(repo: &Repository, owner: &str) -> Desired {
        let mut tags = repo.spec.tags.to_map();
        tags.insert(OWNER_TAG.to_string(), owner.to_string());
        Desired {
            name: repo.ecr_name(),
            tag_mutability: repo.spec.image_tag_mutability.as_ecr(),
            tag_mutability_exclusions: first_occurrences(
                repo.spec
                    .image_tag_mutability_exclusion_filters
                    .iter()
                    .map(|f| f.filter.clone()),
            ),
            scan_on_push: repo.spec.scan_on_push,
            encryption: repo
                .spec
                .encryption
                .as_ref()
                .map(|e| (e.encryption_type.as_ecr(), e.kms_key.clone())),
            tags,
            policy: repo.spec.policy.as_ref().map(repository_policy::render),
        }
    }
}

/// `items` in their order, each only where it first occurs.
fn first_occurrences(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

/// Whether two lists of exclusion filters select the same tags. A tag is exempt when any filter
/// matches it, so ECR's filters are a set: order and repeats do not count.
pub fn same_exclusions(a: &[String], b: &[String]) -> bool {
    let set = |l: &[String]| l.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    set(a) == set(b)
}

/// What PutImageTagMutability sends: the mode and its exclusion filters, and which of the two
/// differed from ECR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutabilityWrite {
    pub mode: &'static str,
    pub exclusions: Vec<String>,
    /// The fields that differed, for the Updated event.
    pub changed: Vec<&'static str>,
}

/// Settings DescribeRepositories shows that differ from the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsDiff {
    /// Mode and exclusion filters go together in one PutImageTagMutability.
    pub tag_mutability: Option<MutabilityWrite>,
    pub scan_on_push: Option<bool>,
    /// Encryption differs; ECR cannot change it, so this is reported, not applied.
    pub encryption_mismatch: Option<String>,
}

impl SettingsDiff {
    /// Whether a settings write is due.
    pub fn writes(&self) -> bool {
        self.tag_mutability.is_some() || self.scan_on_push.is_some()
    }
}

pub fn diff_settings(desired: &Desired, observed: &RepositoryInfo) -> SettingsDiff {
    let mut d = SettingsDiff::default();
    let mut changed = Vec::new();
    if observed.tag_mutability != desired.tag_mutability {
        changed.push("imageTagMutability");
    }
    if !same_exclusions(
        &observed.tag_mutability_exclusions,
        &desired.tag_mutability_exclusions,
    ) {
        changed.push("imageTagMutabilityExclusionFilters");
    }
    if !changed.is_empty() {
        d.tag_mutability = Some(MutabilityWrite {
            mode: desired.tag_mutability,
            exclusions: desired.tag_mutability_exclusions.clone(),
            changed,
        });
    }
    if observed.scan_on_push != desired.scan_on_push {
        d.scan_on_push = Some(desired.scan_on_push);
    }
    if let Some((etype, key)) = &desired.encryption {
        let key_differs = key
            .as_ref()
            .is_some_and(|k| observed.kms_key.as_deref() != Some(k.as_str()));
        if observed.encryption_type != *etype || key_differs {
            let show = |k: Option<&str>| k.map(|k| format!(" ({k})")).unwrap_or_default();
            d.encryption_mismatch = Some(format!(
                "the repository is encrypted with {}{} but the spec asks for {etype}{}; ECR cannot change encryption after creation",
                observed.encryption_type,
                show(observed.kms_key.as_deref()),
                show(key.as_deref()),
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

/// The tag keys this object may remove: those its status recorded, or, on a take-back (nothing
/// tells the old object's tags from others'), every tag but AWS's own.
pub fn managed_tag_keys(
    observed: &BTreeMap<String, String>,
    recorded: &[String],
    taken_back: bool,
) -> Vec<String> {
    if taken_back {
        observed
            .keys()
            .filter(|k| !k.starts_with("aws:"))
            .cloned()
            .collect()
    } else {
        recorded.to_vec()
    }
}

/// What to do with an existing repository the status does not record as this object's.
#[derive(Debug)]
pub enum Claim {
    /// It carries this object's owner tag already (a retained repository, or a lost status).
    TakeBack,
    /// It carries no owner tag, and the spec and the grant allow adoption: tag it.
    Adopt,
    /// Not this object's: Conflict or Forbidden, nothing is written.
    Refuse(Error),
}

/// Decides a claim from the repository's owner tag as read now.
pub fn decide_claim(
    repository: &str,
    found_owner: Option<&str>,
    owner: &str,
    adopt: bool,
    access: &Access,
    namespace: &str,
) -> Claim {
    match found_owner {
        Some(o) if o == owner => Claim::TakeBack,
        Some(other) => Claim::Refuse(Error::Conflict(format!(
            "ECR repository {repository} is owned by {other}; it will not be modified"
        ))),
        None if adopt => match tenancy::adoption_refusal(access, namespace, repository) {
            Some(refusal) => Claim::Refuse(Error::Forbidden(refusal)),
            None => Claim::Adopt,
        },
        None => Claim::Refuse(Error::Conflict(format!(
            "ECR repository {repository} already exists and is not managed by ecr-operator; set spec.adopt: true to take it over"
        ))),
    }
}

/// Whether a repository this object claimed earlier is still proven its before a write: its
/// owner tag, read now, names this object, or it carries none and is the very repository this
/// process saw tagged or created (same ARN, same creation time; the deep sync puts the tag back).
pub fn still_owned(found_owner: Option<&str>, owner: &str, seen_tagged_by_us: bool) -> bool {
    found_owner == Some(owner) || (found_owner.is_none() && seen_tagged_by_us)
}

/// What decides whether tags and policy are read now.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeepCheck {
    /// This reconcile created the repository (with every tag in the one call).
    pub created: bool,
    pub generation_changed: bool,
    /// The object's jittered slot has come.
    pub due: bool,
    /// First reconcile since start: the slot is being assigned now.
    pub first_sight: bool,
    /// The status does not record this very repository as the object's yet.
    pub newly_claimed: bool,
    /// The status records other tag keys than the spec has, at the spec's generation: no sync
    /// of this spec wrote it. A deleted object's reconcile, run late from a lagging store,
    /// writes its status by name onto a new object of the same name; the keys it records are
    /// the old object's, and the tags in ECR are still the old object's too.
    pub unsynced_tag_keys: bool,
}

impl DeepCheck {
    pub fn now(self) -> bool {
        !self.created
            && (self.generation_changed
                || (self.due && !self.first_sight)
                || self.newly_claimed
                || self.unsynced_tag_keys)
    }
}

/// When to come back for the object's next tag and policy check, `until` from now: with a
/// timer only when it falls before the next sweep's resync (`sweep_interval`), which reconciles
/// every object anyway and finds the check due or sets the timer then. So only the objects due
/// within one sweep hold a timer in the controller's queue (about 700 bytes each), not every
/// object: 1 in 60 with the default intervals.
pub fn deep_check_timer(until: Duration, sweep_interval: Duration) -> Option<Duration> {
    (until <= sweep_interval).then_some(until)
}

/// Whether the status's managed tag keys are the spec's (order aside): what every sync of this
/// spec records.
pub fn records_spec_tag_keys(recorded: &[String], spec: &Tags) -> bool {
    let recorded: std::collections::BTreeSet<&String> = recorded.iter().collect();
    recorded.len() == spec.len() && spec.keys().all(|k| recorded.contains(k))
}

/// What to do with the repository policy, given what ECR holds (`current`) and whether a policy
/// there is this object's (`ours`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyAction {
    Keep,
    Put(String),
    Delete,
}

/// Whether the policy must be read at all: with no policy in the spec and none of ours in ECR,
/// whatever ECR holds is left alone (half the calls of a deep check where there is no policy).
pub fn policy_read_needed(desired: Option<&Value>, ours: bool) -> bool {
    desired.is_some() || ours
}

pub fn plan_policy(desired: Option<&Value>, current: Option<&str>, ours: bool) -> PolicyAction {
    match (desired, current) {
        (Some(want), Some(have)) if repository_policy::text_equivalent(have, want) => {
            PolicyAction::Keep
        }
        (Some(want), _) => PolicyAction::Put(want.to_string()),
        (None, Some(_)) if ours => PolicyAction::Delete,
        (None, _) => PolicyAction::Keep,
    }
}

/// The one event of a successful reconcile: Created, Updated (what changed), or Adopted on the
/// first Synced after an adoption; none for a resync that changed nothing.
pub fn announce(
    repository: &str,
    created: bool,
    changes: &[&str],
    ownership: Ownership,
    generation_changed: bool,
    previously_synced: bool,
) -> Option<Announcement> {
    if created {
        Some(Announcement {
            reason: "Created",
            action: "Create",
            note: format!("Created ECR repository {repository}"),
        })
    } else if !changes.is_empty() {
        Some(Announcement {
            reason: "Updated",
            action: "Update",
            note: format!("Updated {}", changes.join(", ")),
        })
    } else if !previously_synced && ownership == Ownership::Adopted && generation_changed {
        Some(Announcement {
            reason: "Adopted",
            action: "Adopt",
            note: format!("Adopted ECR repository {repository}"),
        })
    } else {
        None
    }
}

/// What a deletion does before looking at ECR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// `deletionPolicy: Retain`: the repository stays.
    Retain,
    /// Outside the namespace's grant: the repository stays, whatever its tag says.
    Forbidden(String),
    /// Delete it if its owner tag, read now, names this object.
    DeleteIfOwned,
}

pub fn plan_removal(policy: DeletionPolicy, access: &Access) -> Removal {
    match (policy, access) {
        (DeletionPolicy::Retain, _) => Removal::Retain,
        (_, Access::Forbidden(message)) => Removal::Forbidden(message.clone()),
        (DeletionPolicy::Delete, Access::Granted { .. }) => Removal::DeleteIfOwned,
    }
}

/// The message when a deletion finds images in the repository.
pub fn not_empty_message(repository: &str, force_delete: bool) -> String {
    if force_delete {
        format!("ECR repository {repository} received images while it was being deleted; retrying")
    } else {
        format!(
            "ECR repository {repository} still holds images; set spec.forceDelete: true to delete them with it, or remove the images"
        )
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
