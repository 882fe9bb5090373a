//! The PublicRepository controller's decisions, pure: what the spec wants, whether this object
//! may manage the repository it found, what differs and is written, what the status and the
//! event say. The I/O is in `apply.rs`; table tests in `plan_tests.rs`.
//!
//! Ownership follows the Repository kind: the owner tag, read on every reconcile, names the
//! object; a repository without one is adopted only with `adopt: true` and a grant that allows
//! adoption; anything else is Conflict and nothing is written.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::public_repository::{
    CatalogData, LOGO_MAX_BYTES, PublicRepository, PublicRepositoryStatus,
};
use crate::api::repository::{OWNER_TAG, Ownership};
use crate::controllers::Error;
use crate::controllers::repository::plan::{
    PolicyAction, diff_tags, managed_tag_keys, plan_policy, policy_read_needed,
};
use crate::controllers::status::{self, Announcement};
use crate::registry::{PublicCatalog, PublicCatalogInfo, PublicRepositoryInfo};
use crate::repository_policy;
use crate::tenancy::{self, Access};

/// The logo to send: its bytes and their SHA-256 (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Logo {
    /// The logo of `bytes`, refused (Invalid, before any call) above LogoImageBlob's 512000
    /// bytes.
    pub fn new(bytes: Vec<u8>, source: &str) -> Result<Logo, Error> {
        if bytes.len() > LOGO_MAX_BYTES {
            return Err(Error::Invalid(format!(
                "the logo in {source} is {} bytes; ECR Public takes at most {LOGO_MAX_BYTES}",
                bytes.len()
            )));
        }
        let sha256 = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Logo { bytes, sha256 })
    }
}

/// The desired ECR Public state, from the spec and the logo's bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub name: String,
    /// `None`: the spec does not declare catalog data.
    pub catalog: Option<PublicCatalog>,
    pub logo: Option<Logo>,
    /// Spec tags plus the owner tag.
    pub tags: BTreeMap<String, String>,
    pub policy: Option<Value>,
}

impl Desired {
    pub fn from_spec(repo: &PublicRepository, owner: &str, logo: Option<Logo>) -> Desired {
        let mut tags = repo.spec.tags.to_map();
        tags.insert(OWNER_TAG.to_string(), owner.to_string());
        Desired {
            name: repo.spec.repository_name.clone(),
            catalog: repo.spec.catalog_data.as_ref().map(catalog_of),
            logo,
            tags,
            policy: repo
                .spec
                .repository_policy
                .as_ref()
                .map(repository_policy::render),
        }
    }
}

/// The spec's catalog data as ECR Public holds it (members left out are empty).
pub fn catalog_of(c: &CatalogData) -> PublicCatalog {
    PublicCatalog {
        description: c.description.clone().unwrap_or_default(),
        about_text: c.about_text.clone().unwrap_or_default(),
        usage_text: c.usage_text.clone().unwrap_or_default(),
        architectures: c.architectures.clone(),
        operating_systems: c.operating_systems.clone(),
    }
}

/// Whether this object may manage the repository it found.
#[derive(Debug)]
pub enum Claim {
    /// It carries this object's owner tag, or it is the very repository the status records
    /// (same ARN and creation time) and lost its tag outside: the tag is put back.
    Owned { taken_back: bool },
    /// No owner tag, `adopt: true` and a grant that allows adoption: tag it.
    Adopt,
    /// Not this object's: Conflict or Forbidden, nothing is written.
    Refuse(Error),
}

/// Whether the status records `info` as this object's (same ARN, same creation time).
pub fn status_records(status: &PublicRepositoryStatus, info: &PublicRepositoryInfo) -> bool {
    status.repository_arn.as_deref() == Some(info.arn.as_str())
        && status.created_at == status::recorded_time(info.created_at)
        && status.ownership.is_some()
}

/// Decides a claim from the owner tag read now.
pub fn decide_claim(
    info: &PublicRepositoryInfo,
    found_owner: Option<&str>,
    owner: &str,
    repo: &PublicRepository,
    status: &PublicRepositoryStatus,
    access: &Access,
) -> Claim {
    let name = &info.name;
    let recorded = status_records(status, info);
    match found_owner {
        Some(o) if o == owner => Claim::Owned {
            taken_back: !recorded,
        },
        Some(other) => Claim::Refuse(Error::Conflict(format!(
            "ECR Public repository {name} is owned by {other}; it will not be modified"
        ))),
        None if recorded => Claim::Owned { taken_back: false },
        None if repo.spec.adopt => {
            let namespace = repo.metadata.namespace.as_deref().unwrap_or_default();
            match tenancy::adoption_refusal(access, namespace, name) {
                Some(refusal) => Claim::Refuse(Error::Forbidden(refusal)),
                None => Claim::Adopt,
            }
        }
        None => Claim::Refuse(Error::Conflict(format!(
            "ECR Public repository {name} already exists and is not managed by ecr-operator; set spec.adopt: true to take it over"
        ))),
    }
}

/// Whether the catalog data is read: when the spec declares it, or this object wrote it.
pub fn catalog_read_needed(desired: &Desired, status: &PublicRepositoryStatus) -> bool {
    desired.catalog.is_some() || status.catalog_managed
}

/// Why the catalog data is written (`None`: it is not). PutRepositoryCatalogData replaces the
/// whole catalog, so a write always sends every member and the logo.
pub fn plan_catalog(
    desired: &Desired,
    observed: &PublicCatalogInfo,
    status: &PublicRepositoryStatus,
) -> Option<&'static str> {
    let Some(want) = &desired.catalog else {
        let empty = observed.catalog == PublicCatalog::default() && observed.logo_url.is_none();
        return (status.catalog_managed && !empty).then_some("catalogData");
    };
    if *want != observed.catalog {
        return Some("catalogData");
    }
    match &desired.logo {
        None if observed.logo_url.is_some() => Some("logoImage"),
        None => None,
        Some(logo) if status.logo_sha256.as_deref() != Some(logo.sha256.as_str()) => {
            Some("logoImage")
        }
        // ECR Public never returns the logo: its URL moving from the one recorded means another
        // logo was put outside.
        Some(_) if observed.logo_url != status.logo_url => Some("logoImage"),
        Some(_) => None,
    }
}

/// Every write of one reconcile of an existing repository.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub tags_set: BTreeMap<String, String>,
    pub tags_remove: Vec<String>,
    /// The catalog write and why (`catalogData` or `logoImage`).
    pub catalog: Option<&'static str>,
    pub policy: Option<PolicyAction>,
}

impl Plan {
    pub fn changes(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.tags_set.is_empty() || !self.tags_remove.is_empty() {
            out.push("tags");
        }
        out.extend(self.catalog);
        if matches!(
            self.policy,
            Some(PolicyAction::Put(_) | PolicyAction::Delete)
        ) {
            out.push("repositoryPolicy");
        }
        out
    }
}

/// What was read of an existing repository.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub tags: BTreeMap<String, String>,
    /// `None` where [`catalog_read_needed`] said not to read.
    pub catalog: Option<PublicCatalogInfo>,
    /// `None`: not read ([`policy_read_needed`]); `Some(None)`: no policy.
    pub policy: Option<Option<String>>,
}

/// The writes that bring an owned repository to the spec.
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    status: &PublicRepositoryStatus,
    taken_back: bool,
) -> Plan {
    let managed = managed_tag_keys(&observed.tags, &status.managed_tag_keys, taken_back);
    let (tags_set, tags_remove) = diff_tags(&desired.tags, &observed.tags, &managed);
    let catalog = observed
        .catalog
        .as_ref()
        .and_then(|c| plan_catalog(desired, c, status));
    let ours = status.policy_managed || taken_back;
    let policy = observed
        .policy
        .as_ref()
        .map(|current| plan_policy(desired.policy.as_ref(), current.as_deref(), ours));
    Plan {
        tags_set,
        tags_remove,
        catalog,
        policy,
    }
}

/// Whether the policy is read: the spec declares one, or one of ours may be in ECR Public.
pub fn policy_read(desired: &Desired, status: &PublicRepositoryStatus, taken_back: bool) -> bool {
    policy_read_needed(desired.policy.as_ref(), status.policy_managed || taken_back)
}

/// The status after a successful reconcile. `logo_url` is the URL ECR Public answered the last
/// catalog write with, or the one read when nothing was written.
pub fn synced_status(
    mut status: PublicRepositoryStatus,
    repo: &PublicRepository,
    desired: &Desired,
    info: &PublicRepositoryInfo,
    ownership: Ownership,
    logo_url: Option<String>,
) -> PublicRepositoryStatus {
    status.repository_arn = Some(info.arn.clone());
    status.repository_uri = Some(info.uri.clone());
    status.registry_id = Some(info.registry_id.clone());
    status.created_at = status::recorded_time(info.created_at);
    status.ownership = Some(ownership);
    status.managed_tag_keys = repo.spec.tags.keys().cloned().collect();
    status.policy_managed = desired.policy.is_some();
    status.catalog_managed = desired.catalog.is_some();
    status.logo_url = logo_url.filter(|_| desired.catalog.is_some());
    status.logo_sha256 = desired.logo.as_ref().map(|l| l.sha256.clone());
    status
}

/// The one event of a successful reconcile: Created, Adopted, Updated (a spec change applied)
/// or DriftCorrected (a change made outside undone); none when nothing was written.
pub fn announce(
    name: &str,
    created: bool,
    adopted: bool,
    changes: &[&str],
    spec_changed: bool,
) -> Option<Announcement> {
    let (reason, action, note) = if created {
        (
            "Created",
            "Create",
            format!("Created ECR Public repository {name}"),
        )
    } else if adopted {
        (
            "Adopted",
            "Adopt",
            format!("Adopted ECR Public repository {name}"),
        )
    } else if changes.is_empty() {
        return None;
    } else if spec_changed {
        (
            "Updated",
            "Update",
            format!("Updated {}", changes.join(", ")),
        )
    } else {
        (
            "DriftCorrected",
            "Update",
            format!(
                "Restored {} changed outside ecr-operator",
                changes.join(", ")
            ),
        )
    };
    Some(Announcement {
        reason,
        action,
        note,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
