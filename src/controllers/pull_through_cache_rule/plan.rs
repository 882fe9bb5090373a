//! The PullThroughCacheRule controller's decisions, pure: from the spec, the status and what ECR
//! and Secrets Manager show, which writes a reconcile makes, which event tells the user, and what
//! the status says. The I/O around them is in `apply.rs`; table tests in `plan_tests.rs`.
//!
//! - **Ownership.** ECR rules carry no tags, so the status records the creation time of the rule
//!   this object created ([`status_owns`]). A rule found for the prefix without that record is
//!   this object's only when it was created after the object with exactly the desired settings
//!   (a crash between CreatePullThroughCacheRule and the status write). Any other rule is a
//!   Conflict and is never written nor deleted; one created before the object is refused before
//!   any credential is mirrored for it ([`refuse_foreign`]).
//! - **Writes** ([`plan`]). No rule: create it (`Created`, or `DriftCorrected` when the status
//!   records one, so it was deleted outside). The upstream URL or upstream prefix changed, or the
//!   spec dropped a credential or role the rule holds: replace it, delete then create (ECR cannot
//!   change those). The credential or role changed otherwise: update them. Otherwise nothing.
//! - **Status** ([`synced_status`]): what ECR reports of the rule and the credential ARN in use.
//! - **Mirrored secret** ([`plan_secret`]). Created when absent. When present it must carry this
//!   object's owner tag, read only when the status does not record its ARN already, or it is a
//!   Conflict; its value is put only when it differs in meaning. It is deleted (still only when
//!   tagged as ours) when the spec no longer refers to a Secret ([`mirrored_secret_unused`]), and
//!   with the object.
//! - **Deletion** ([`plan_removal`]). The kind has no deletionPolicy: the rule goes with the
//!   object when it is the one the status records; another rule for the prefix stays, with a
//!   `NotOwned` event; nothing is read when the status records no rule.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;

use super::upstream::{SECRET_PREFIX, Upstream};
use crate::api::pull_through_cache_rule::{PullThroughCacheRuleSpec, PullThroughCacheRuleStatus};
use crate::api::repository::OWNER_TAG;
use crate::controllers::Error;
use crate::controllers::status::{Announcement, recorded_time};
use crate::registry::{NewPullThroughCacheRule, PullThroughCacheRuleInfo, SecretValue};

/// The rule the spec asks for, with the credential ARN resolved (given, or the mirrored secret's).
pub fn desired(
    spec: &PullThroughCacheRuleSpec,
    credential_arn: Option<String>,
) -> NewPullThroughCacheRule {
    NewPullThroughCacheRule {
        prefix: spec.ecr_repository_prefix.clone(),
        upstream_registry_url: spec.upstream_registry_url.trim().to_string(),
        upstream_repository_prefix: spec.upstream_repository_prefix.clone(),
        credential_arn,
        custom_role_arn: spec.custom_role_arn.clone(),
    }
}

/// The prefix as ECR keys it ("There is always an assumed / applied to the end of the prefix").
pub fn prefix_key(prefix: &str) -> &str {
    if prefix == "ROOT" {
        prefix
    } else {
        prefix.trim_end_matches('/')
    }
}

/// Whether two objects name the same rule: the same prefix as ECR keys it, in the same registry
/// (the same prefix in another RegistryTarget is another rule).
pub fn same_rule(a: &PullThroughCacheRuleSpec, b: &PullThroughCacheRuleSpec) -> bool {
    prefix_key(&a.ecr_repository_prefix) == prefix_key(&b.ecr_repository_prefix)
        && a.registry_ref == b.registry_ref
}

fn upstream_prefix(p: Option<&str>) -> &str {
    p.unwrap_or("ROOT")
}

/// True when `info` is the rule this object's status says it created.
pub fn status_owns(status: &PullThroughCacheRuleStatus, info: &PullThroughCacheRuleInfo) -> bool {
    status.created_at.is_some() && status.created_at == recorded_time(info.created_at)
}

/// The rule was created after the object (created at `object_created`), so the object may have
/// created it.
fn created_after(object_created: Option<Timestamp>, info: &PullThroughCacheRuleInfo) -> bool {
    match (object_created, info.created_at) {
        (Some(created), Some(rule_created)) => rule_created >= created,
        _ => false,
    }
}

fn upstream_differs(info: &PullThroughCacheRuleInfo, desired: &NewPullThroughCacheRule) -> bool {
    info.upstream_registry_url != desired.upstream_registry_url
        || upstream_prefix(info.upstream_repository_prefix.as_deref())
            != upstream_prefix(desired.upstream_repository_prefix.as_deref())
}

fn credentials_differ(info: &PullThroughCacheRuleInfo, desired: &NewPullThroughCacheRule) -> bool {
    info.credential_arn != desired.credential_arn || info.custom_role_arn != desired.custom_role_arn
}

/// A rule this object most likely created (after the object, with exactly the desired settings)
/// but whose creation the status does not record.
fn claimable(
    object_created: Option<Timestamp>,
    info: &PullThroughCacheRuleInfo,
    desired: &NewPullThroughCacheRule,
) -> bool {
    created_after(object_created, info)
        && !upstream_differs(info, desired)
        && !credentials_differ(info, desired)
}

pub fn foreign_rule(prefix: &str, info: &PullThroughCacheRuleInfo) -> Error {
    Error::Conflict(format!(
        "a pull-through cache rule for prefix {prefix} (upstream {}) already exists and was not created by this object; it is left untouched",
        info.upstream_registry_url
    ))
}

/// `spec.adopt`: a rule found for the prefix while the status records none becomes this
/// object's, its creation time recorded as for a rule it created, so that the plan keeps it
/// (nothing is written when it is as the spec says). A status that records another rule (ours,
/// since deleted and re-created by someone else) is left as it is: that rule stays foreign.
pub fn adopt(
    mut status: PullThroughCacheRuleStatus,
    adopt: bool,
    observed: Option<&PullThroughCacheRuleInfo>,
) -> PullThroughCacheRuleStatus {
    if adopt
        && status.created_at.is_none()
        && let Some(info) = observed
    {
        status.created_at = recorded_time(info.created_at);
    }
    status
}

/// Refuses a rule this object cannot have created, before any credential is mirrored for it.
pub fn refuse_foreign(
    prefix: &str,
    observed: Option<&PullThroughCacheRuleInfo>,
    status: &PullThroughCacheRuleStatus,
    object_created: Option<Timestamp>,
) -> Result<(), Error> {
    match observed {
        Some(info) if !status_owns(status, info) && !created_after(object_created, info) => {
            Err(foreign_rule(prefix, info))
        }
        _ => Ok(()),
    }
}

/// The one write to the rule a reconcile makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleWrite {
    Keep,
    Create,
    /// Delete, then create: ECR cannot change a rule's upstream nor drop its credentials.
    Replace,
    UpdateCredentials,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub write: RuleWrite,
    pub announcement: Option<Announcement>,
}

/// What to write, given the desired rule, the rule ECR shows for the prefix, and the status.
pub fn plan(
    desired: &NewPullThroughCacheRule,
    observed: Option<&PullThroughCacheRuleInfo>,
    status: &PullThroughCacheRuleStatus,
    object_created: Option<Timestamp>,
) -> Result<Plan, Error> {
    let write = match observed {
        None => RuleWrite::Create,
        Some(info) if !status_owns(status, info) && !claimable(object_created, info, desired) => {
            return Err(foreign_rule(&desired.prefix, info));
        }
        Some(info) => {
            let credentials_removed = (info.credential_arn.is_some()
                && desired.credential_arn.is_none())
                || (info.custom_role_arn.is_some() && desired.custom_role_arn.is_none());
            if upstream_differs(info, desired) || credentials_removed {
                RuleWrite::Replace
            } else if credentials_differ(info, desired) {
                RuleWrite::UpdateCredentials
            } else {
                RuleWrite::Keep
            }
        }
    };
    let recreated = status.created_at.is_some();
    Ok(Plan {
        write,
        announcement: announce(write, desired, recreated),
    })
}

fn announce(
    write: RuleWrite,
    desired: &NewPullThroughCacheRule,
    recreated: bool,
) -> Option<Announcement> {
    let prefix = &desired.prefix;
    let (reason, note) = match write {
        RuleWrite::Keep => return None,
        RuleWrite::Create if recreated => (
            "DriftCorrected",
            format!("Re-created pull-through cache rule {prefix}, deleted outside ecr-operator"),
        ),
        RuleWrite::Create => (
            "Created",
            format!(
                "Created pull-through cache rule {prefix} for {}",
                desired.upstream_registry_url
            ),
        ),
        RuleWrite::Replace => (
            "Replaced",
            format!("Replaced pull-through cache rule {prefix}: the upstream changed"),
        ),
        RuleWrite::UpdateCredentials => (
            "Updated",
            format!("Updated the credentials of pull-through cache rule {prefix}"),
        ),
    };
    Some(Announcement {
        reason,
        action: "Update",
        note,
    })
}

/// The rule after UpdatePullThroughCacheRule (which returns no description), as of `now`.
pub fn updated(
    info: PullThroughCacheRuleInfo,
    desired: &NewPullThroughCacheRule,
    now: Timestamp,
) -> PullThroughCacheRuleInfo {
    PullThroughCacheRuleInfo {
        credential_arn: desired.credential_arn.clone(),
        custom_role_arn: desired.custom_role_arn.clone(),
        updated_at: Some(now),
        ..info
    }
}

/// The status once the rule is in place: what ECR reports of it, and the credential in use.
pub fn synced_status(
    mut status: PullThroughCacheRuleStatus,
    info: &PullThroughCacheRuleInfo,
    credential_arn: Option<String>,
) -> PullThroughCacheRuleStatus {
    status.registry_id = Some(info.registry_id.clone()).filter(|s| !s.is_empty());
    status.upstream_registry = info.upstream_registry.clone();
    status.credential_arn = credential_arn;
    status.created_at = recorded_time(info.created_at);
    status.updated_at = recorded_time(info.updated_at);
    status
}

pub fn ready_message(desired: &NewPullThroughCacheRule, upstream: &Upstream) -> String {
    format!(
        "pull-through cache rule {} caches {} ({})",
        desired.prefix,
        desired.upstream_registry_url,
        upstream.display()
    )
}

/// The Secrets Manager name a Kubernetes credential Secret is mirrored under.
pub fn secret_name(object_name: &str) -> String {
    format!("{SECRET_PREFIX}{object_name}")
}

/// The Secret's `username` and `accessToken` as the JSON ECR expects, or the keys it lacks.
pub fn credentials_json(secret: &Secret) -> Result<String, String> {
    let value = |key: &str| -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .cloned()
            })
            .filter(|v| !v.is_empty())
    };
    match (value("username"), value("accessToken")) {
        (Some(u), Some(t)) => {
            Ok(serde_json::json!({ "username": u, "accessToken": t }).to_string())
        }
        (None, None) => Err("username and accessToken".to_string()),
        (None, Some(_)) => Err("username".to_string()),
        (Some(_), None) => Err("accessToken".to_string()),
    }
}

fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Whether the existing secret's owner tag must be read: not when the status records its ARN
/// (this object created it or proved it its own before).
pub fn secret_owner_unproven(status: &PullThroughCacheRuleStatus, current_arn: &str) -> bool {
    status.credential_arn.as_deref() != Some(current_arn)
}

/// The write to the mirrored secret; `Put` and `Keep` carry the existing secret's ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretWrite {
    Create,
    Put(String),
    Keep(String),
}

/// Decides the mirror of `value` into the secret `name`, given the secret as it is
/// (`current`) and its owner tag (`owner_tag`, only looked at when the status does not prove it).
pub fn plan_secret(
    name: &str,
    current: Option<&SecretValue>,
    status: &PullThroughCacheRuleStatus,
    owner_tag: Option<&str>,
    ours: &str,
    value: &str,
) -> Result<SecretWrite, Error> {
    let Some(current) = current else {
        return Ok(SecretWrite::Create);
    };
    if secret_owner_unproven(status, &current.arn) && owner_tag != Some(ours) {
        return Err(Error::Conflict(format!(
            "Secrets Manager secret {name} exists and is not managed by this object (tag {OWNER_TAG} is {}); it is left untouched",
            owner_tag.unwrap_or("absent")
        )));
    }
    Ok(if same_json(&current.value, value) {
        SecretWrite::Keep(current.arn.clone())
    } else {
        SecretWrite::Put(current.arn.clone())
    })
}

/// The status records a mirrored secret while the spec no longer refers to a Secret (it moved to
/// credentialArn, or to none): the mirror is to be removed.
pub fn mirrored_secret_unused(
    spec: &PullThroughCacheRuleSpec,
    status: &PullThroughCacheRuleStatus,
    secret_name: &str,
) -> bool {
    spec.credentials_secret_ref.is_none()
        && status
            .credential_arn
            .as_deref()
            .is_some_and(|a| a.contains(&format!(":secret:{secret_name}-")))
}

/// What a deletion does with the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The status records no rule, or there is none: nothing to do.
    Nothing,
    Delete,
    /// A rule for the prefix this object did not create: it stays.
    NotOwned,
}

/// Whether a deletion reads ECR at all: only when the status records a rule.
pub fn removal_reads(status: &PullThroughCacheRuleStatus) -> bool {
    status.created_at.is_some()
}

pub fn plan_removal(
    status: &PullThroughCacheRuleStatus,
    observed: Option<&PullThroughCacheRuleInfo>,
) -> Removal {
    match observed {
        _ if !removal_reads(status) => Removal::Nothing,
        Some(info) if status_owns(status, info) => Removal::Delete,
        Some(_) => Removal::NotOwned,
        None => Removal::Nothing,
    }
}

impl Removal {
    pub fn announcement(self, prefix: &str) -> Option<Announcement> {
        match self {
            Removal::Nothing => None,
            Removal::Delete => Some(Announcement {
                reason: "Deleted",
                action: "Delete",
                note: format!("Deleted pull-through cache rule {prefix}"),
            }),
            Removal::NotOwned => Some(Announcement {
                reason: "NotOwned",
                action: "Delete",
                note: format!(
                    "Left pull-through cache rule {prefix} in place: this object did not create it"
                ),
            }),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
