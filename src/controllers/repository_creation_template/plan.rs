//! The RepositoryCreationTemplate controller's decisions, pure: the template the spec asks for,
//! which write a reconcile makes, which event tells the user, and what the status says. The I/O
//! is in `apply.rs`; table tests in `plan_tests.rs`.
//!
//! - **Ownership.** A template has no tags of its own (`resourceTags` are the tags of the
//!   repositories it creates), so the status records the creation time of the template this
//!   object created ([`status_owns`]). A template found for the prefix without that record is
//!   this object's only when it was created after the object with exactly the desired settings
//!   (a crash between CreateRepositoryCreationTemplate and the status write). Any other template
//!   is a Conflict and is never written nor deleted.
//! - **Writes** ([`plan`]). No template: create it (`Created`, or `DriftCorrected` when the
//!   status records one, so it was deleted outside). A template that differs in meaning (policies
//!   compared as documents, lists as sets): update it (`Updated` after a spec change,
//!   `DriftCorrected` otherwise). Otherwise nothing.
//! - **Deletion** ([`plan_removal`]). `Retain` leaves the template; `Delete` deletes it when it is
//!   the one the status records; another template for the prefix stays (`NotOwned`).

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;

use crate::api::repository::DeletionPolicy;
use crate::api::repository_creation_template::{
    RepositoryCreationTemplateSpec, RepositoryCreationTemplateStatus,
};
use crate::controllers::Error;
use crate::controllers::lifecycle_policy::render_rules;
use crate::controllers::status::{Announcement, recorded_time};
use crate::lifecycle;
use crate::registry::{CreationTemplate, CreationTemplateInfo};
use crate::repository_policy;

pub use crate::controllers::pull_through_cache_rule::plan::prefix_key;

/// The template the spec asks for, with its lifecycle rules and repository policy rendered by
/// the renderers of LifecyclePolicy and Repository; `Err` says why ECR would refuse it (rules
/// ECR forbids, a lifecycle policy over 30,720 or a repository policy over 10,240 characters).
pub fn desired(spec: &RepositoryCreationTemplateSpec) -> Result<CreationTemplate, String> {
    let lifecycle_policy = match spec.lifecycle_rules.as_slice() {
        [] => None,
        rules => Some(render_rules(rules)?.1),
    };
    let repository_policy = match &spec.repository_policy {
        None => None,
        Some(p) => Some(
            repository_policy::render_checked(p)
                .map_err(|e| {
                    e.to_string()
                        .replacen("spec.policy", "spec.repositoryPolicy", 1)
                })?
                .to_string(),
        ),
    };
    let encryption = spec.encryption.clone().unwrap_or_default();
    Ok(CreationTemplate {
        prefix: spec.prefix.clone(),
        description: spec.description.clone().filter(|d| !d.is_empty()),
        encryption_type: encryption.encryption_type.as_ecr().to_string(),
        kms_key: encryption.kms_key,
        resource_tags: spec.resource_tags.clone(),
        tag_mutability: spec.image_tag_mutability.as_ecr().to_string(),
        tag_mutability_exclusions: spec
            .image_tag_mutability_exclusion_filters
            .iter()
            .map(|f| f.filter.clone())
            .collect(),
        repository_policy,
        lifecycle_policy,
        applied_for: spec
            .applied_for
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|a| a.as_ecr().to_string())
            .collect(),
        custom_role_arn: spec.custom_role_arn.clone(),
    })
}

fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

fn same_policy(desired: Option<&str>, observed: Option<&str>) -> bool {
    match (desired, observed) {
        (None, None) => true,
        (Some(d), Some(o)) => serde_json::from_str(d)
            .is_ok_and(|d: serde_json::Value| repository_policy::text_equivalent(o, &d)),
        _ => false,
    }
}

fn same_lifecycle(desired: Option<&str>, observed: Option<&str>) -> bool {
    match (desired, observed) {
        (None, None) => true,
        (Some(d), Some(o)) => lifecycle::policies_equivalent(d, o),
        _ => false,
    }
}

/// The members of the template that differ in meaning from the desired ones. A KMS key left
/// out of the spec is whatever ECR chose.
pub fn differences(desired: &CreationTemplate, observed: &CreationTemplate) -> Vec<&'static str> {
    let d = desired;
    let o = observed;
    let checks = [
        ("description", text(&d.description) == text(&o.description)),
        (
            "encryption",
            d.encryption_type == o.encryption_type
                && (d.kms_key.is_none() && d.encryption_type != "AES256"
                    || text(&d.kms_key) == text(&o.kms_key)),
        ),
        ("resourceTags", d.resource_tags == o.resource_tags),
        (
            "imageTagMutability",
            d.tag_mutability == o.tag_mutability
                && set(&d.tag_mutability_exclusions) == set(&o.tag_mutability_exclusions),
        ),
        (
            "repositoryPolicy",
            same_policy(text(&d.repository_policy), text(&o.repository_policy)),
        ),
        (
            "lifecycleRules",
            same_lifecycle(text(&d.lifecycle_policy), text(&o.lifecycle_policy)),
        ),
        ("appliedFor", set(&d.applied_for) == set(&o.applied_for)),
        (
            "customRoleArn",
            text(&d.custom_role_arn) == text(&o.custom_role_arn),
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(name, _)| name)
        .collect()
}

/// True when `info` is the template this object's status says it created.
pub fn status_owns(status: &RepositoryCreationTemplateStatus, info: &CreationTemplateInfo) -> bool {
    status.created_at.is_some() && status.created_at == recorded_time(info.created_at)
}

/// A template created after the object with exactly the desired settings while the status
/// records none (a crash between the create and the status write). When the status records
/// another creation, the template was deleted and re-created by someone else: not ours.
fn claimable(
    status: &RepositoryCreationTemplateStatus,
    object_created: Option<Timestamp>,
    info: &CreationTemplateInfo,
    desired: &CreationTemplate,
) -> bool {
    if status.created_at.is_some() {
        return false;
    }
    match (object_created, info.created_at) {
        (Some(object), Some(template)) => {
            template >= object && differences(desired, &info.template).is_empty()
        }
        _ => false,
    }
}

/// `spec.adopt`: a template found for the prefix while the status records none becomes this
/// object's, its creation time recorded as for a template it created, so that the plan keeps
/// it (nothing is written when it is as the spec says). A status that records another template
/// (ours, since deleted and re-created by someone else) is left as it is: that one stays foreign.
pub fn adopt(
    mut status: RepositoryCreationTemplateStatus,
    adopt: bool,
    observed: Option<&CreationTemplateInfo>,
) -> RepositoryCreationTemplateStatus {
    if adopt
        && status.created_at.is_none()
        && let Some(info) = observed
    {
        status.created_at = recorded_time(info.created_at);
    }
    status
}

/// One object per prefix: `older` is the object that came first for it, if any.
/// Whether two objects name the same template: the same prefix as ECR keys it, in the same
/// registry (the same prefix in another RegistryTarget is another template).
pub fn same_template(
    a: &RepositoryCreationTemplateSpec,
    b: &RepositoryCreationTemplateSpec,
) -> bool {
    prefix_key(&a.prefix) == prefix_key(&b.prefix) && a.registry_ref == b.registry_ref
}

pub fn refuse_younger(prefix: &str, older: Option<String>) -> Result<(), Error> {
    match older {
        Some(other) => Err(Error::Conflict(format!(
            "RepositoryCreationTemplate {other} already manages the template for prefix {prefix}"
        ))),
        None => Ok(()),
    }
}

pub fn foreign_template(prefix: &str) -> Error {
    Error::Conflict(format!(
        "a repository creation template for prefix {prefix} already exists and was not created by this object; it is left untouched"
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Keep,
    Create,
    Update,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub write: Write,
    pub announcement: Option<Announcement>,
}

/// What to write, given the desired template, the one ECR holds for the prefix, the status,
/// when the object was created, and whether the spec changed since the status was written.
pub fn plan(
    desired: &CreationTemplate,
    observed: Option<&CreationTemplateInfo>,
    status: &RepositoryCreationTemplateStatus,
    object_created: Option<Timestamp>,
    spec_changed: bool,
) -> Result<Plan, Error> {
    let prefix = &desired.prefix;
    let (write, announcement) = match observed {
        None if status.created_at.is_some() => (
            Write::Create,
            announce(
                "DriftCorrected",
                format!(
                    "Re-created repository creation template {prefix}, deleted outside ecr-operator"
                ),
            ),
        ),
        None => (
            Write::Create,
            announce(
                "Created",
                format!("Created repository creation template {prefix}"),
            ),
        ),
        Some(info)
            if !status_owns(status, info) && !claimable(status, object_created, info, desired) =>
        {
            return Err(foreign_template(prefix));
        }
        Some(info) => {
            let changed = differences(desired, &info.template);
            if changed.is_empty() {
                (Write::Keep, None)
            } else {
                let fields = changed.join(", ");
                let (reason, how) = if spec_changed {
                    ("Updated", "Updated")
                } else {
                    ("DriftCorrected", "Restored, changed outside ecr-operator,")
                };
                let note = format!("{how} repository creation template {prefix}: {fields}");
                (Write::Update, announce(reason, note))
            }
        }
    };
    Ok(Plan {
        write,
        announcement,
    })
}

fn announce(reason: &'static str, note: String) -> Option<Announcement> {
    Some(Announcement {
        reason,
        action: "Update",
        note,
    })
}

/// The status once the template is in place.
pub fn synced_status(
    mut status: RepositoryCreationTemplateStatus,
    info: &CreationTemplateInfo,
) -> RepositoryCreationTemplateStatus {
    status.created_at = recorded_time(info.created_at);
    status.updated_at = recorded_time(info.updated_at);
    status
}

pub fn ready_message(desired: &CreationTemplate) -> String {
    format!(
        "repository creation template {} applies to {}",
        desired.prefix,
        desired.applied_for.join(", ")
    )
}

/// What a deletion does with the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The status records no template, or it is gone already.
    Nothing,
    /// deletionPolicy Retain: the template stays.
    Retain,
    Delete,
    /// A template for the prefix this object did not create: it stays.
    NotOwned,
}

/// Whether a deletion reads ECR at all: only with deletionPolicy Delete and a recorded template.
pub fn removal_reads(policy: DeletionPolicy, status: &RepositoryCreationTemplateStatus) -> bool {
    policy == DeletionPolicy::Delete && status.created_at.is_some()
}

pub fn plan_removal(
    policy: DeletionPolicy,
    status: &RepositoryCreationTemplateStatus,
    observed: Option<&CreationTemplateInfo>,
) -> Removal {
    match observed {
        _ if status.created_at.is_none() => Removal::Nothing,
        _ if policy == DeletionPolicy::Retain => Removal::Retain,
        Some(info) if status_owns(status, info) => Removal::Delete,
        Some(_) => Removal::NotOwned,
        None => Removal::Nothing,
    }
}

impl Removal {
    pub fn announcement(self, prefix: &str) -> Option<Announcement> {
        let (reason, note) = match self {
            Removal::Nothing => return None,
            Removal::Retain => (
                "Retained",
                format!(
                    "Left repository creation template {prefix} in ECR (deletionPolicy Retain)"
                ),
            ),
            Removal::Delete => (
                "Deleted",
                format!("Deleted repository creation template {prefix}"),
            ),
            Removal::NotOwned => (
                "NotOwned",
                format!(
                    "Left repository creation template {prefix} in place: this object did not create it"
                ),
            ),
        };
        Some(Announcement {
            reason,
            action: "Delete",
            note,
        })
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
