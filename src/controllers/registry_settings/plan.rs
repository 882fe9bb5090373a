//! The RegistrySettings controller's decisions, pure: what to read, what to write, what the
//! status and the event say. The I/O is in `apply.rs`; table tests in `plan_tests.rs`.
//!
//! Each part is handled only when the spec sets it (or, for signing and exclusions, when this
//! object wrote something that the spec no longer asks for):
//!
//! - **Account settings** are switches every registry has a value for: a declared value that
//!   differs from ECR's is written. Nothing is ever "taken over".
//! - **The signing configuration** is one document per registry without tags. It is this
//!   object's ([`RegistrySettingsStatus::signing_owned`]) once it wrote it, or found exactly
//!   what its spec says. A configuration with rules that this object does not own is a
//!   Conflict: nothing at all is written then. One it owns is rewritten on drift, and deleted
//!   when the spec drops `signing`.
//! - **Pull-time update exclusions** are single principals: those the spec lists and ECR lacks
//!   are registered and recorded in `status.registeredExclusions`; only recorded ones are ever
//!   deregistered (when the spec drops them, or on deletion with deletionPolicy Delete).
//!   Exclusions registered outside stay, listed or not.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::registry_settings::{
    RegistrySettingsSpec, RegistrySettingsStatus, SigningConfiguration,
};
use crate::api::repository::DeletionPolicy;
use crate::controllers::Error;
use crate::controllers::status::Announcement;
use crate::registry::SigningRuleInfo;

/// What a reconcile reads of ECR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reads {
    /// Account settings, by ECR's name.
    pub account_settings: Vec<&'static str>,
    pub signing: bool,
    pub exclusions: bool,
}

pub fn reads(spec: &RegistrySettingsSpec, status: &RegistrySettingsStatus) -> Reads {
    Reads {
        account_settings: declared_account_settings(spec)
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
        signing: spec.signing.is_some() || owns_signing(status),
        exclusions: spec.pull_time_update_exclusions.is_some()
            || !status.registered_exclusions.is_empty(),
    }
}

/// What was read; `None` where [`reads`] said not to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub account_settings: BTreeMap<String, String>,
    /// `Some(None)`: the registry has no signing configuration.
    pub signing: Option<Option<Vec<SigningRuleInfo>>>,
    pub exclusions: Option<BTreeSet<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningWrite {
    /// Nothing to do (in sync, or not this object's concern).
    Keep,
    Put(Vec<SigningRuleInfo>),
    /// The spec dropped `signing` and the configuration is this object's.
    Delete,
}

/// Every write of one reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub account_settings: Vec<(&'static str, &'static str)>,
    pub signing: SigningWrite,
    pub register: Vec<String>,
    pub deregister: Vec<String>,
}

impl Plan {
    pub fn writes(&self) -> bool {
        !self.account_settings.is_empty()
            || self.signing != SigningWrite::Keep
            || !self.register.is_empty()
            || !self.deregister.is_empty()
    }
}

fn declared_account_settings(spec: &RegistrySettingsSpec) -> Vec<(&'static str, &'static str)> {
    spec.account_settings
        .as_ref()
        .map(|a| a.declared())
        .unwrap_or_default()
}

fn owns_signing(status: &RegistrySettingsStatus) -> bool {
    status.signing_owned == Some(true)
}

/// The spec's signing rules as ECR holds them.
pub fn desired_signing(config: &SigningConfiguration) -> Vec<SigningRuleInfo> {
    config
        .rules
        .iter()
        .map(|rule| SigningRuleInfo {
            profile_arn: rule.signing_profile_arn.clone(),
            repository_filters: rule
                .repository_filters
                .iter()
                .map(|f| f.filter.clone())
                .collect(),
        })
        .collect()
}

/// Two rule lists mean the same: rules in order (ECR applies them as listed), each rule's
/// filters as a set.
pub fn same_signing(a: &[SigningRuleInfo], b: &[SigningRuleInfo]) -> bool {
    let filters = |r: &SigningRuleInfo| {
        r.repository_filters
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.profile_arn == y.profile_arn && filters(x) == filters(y))
}

fn desired_exclusions(spec: &RegistrySettingsSpec) -> Option<BTreeSet<String>> {
    spec.pull_time_update_exclusions
        .as_ref()
        .map(|list| list.iter().cloned().collect())
}

/// The writes that bring ECR to the spec; `Err(Conflict)` when ECR holds a signing
/// configuration this object does not own, and then nothing is written.
pub fn plan(
    spec: &RegistrySettingsSpec,
    status: &RegistrySettingsStatus,
    observed: &Observed,
) -> Result<Plan, Error> {
    let account_settings = declared_account_settings(spec)
        .into_iter()
        .filter(|(name, value)| {
            observed.account_settings.get(*name).map(String::as_str) != Some(value)
        })
        .collect();
    let signing = plan_signing(spec, status, observed)?;
    let (register, deregister) = match &observed.exclusions {
        Some(seen) => plan_exclusions(desired_exclusions(spec), status, seen),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Plan {
        account_settings,
        signing,
        register,
        deregister,
    })
}

fn plan_signing(
    spec: &RegistrySettingsSpec,
    status: &RegistrySettingsStatus,
    observed: &Observed,
) -> Result<SigningWrite, Error> {
    let Some(seen) = &observed.signing else {
        return Ok(SigningWrite::Keep);
    };
    let empty = seen.as_ref().is_none_or(Vec::is_empty);
    match (&spec.signing, seen) {
        (Some(config), Some(rules)) if same_signing(&desired_signing(config), rules) => {
            Ok(SigningWrite::Keep)
        }
        (Some(config), _) if empty || owns_signing(status) => {
            Ok(SigningWrite::Put(desired_signing(config)))
        }
        (Some(_), _) => Err(foreign_signing()),
        (None, Some(_)) if owns_signing(status) => Ok(SigningWrite::Delete),
        (None, _) => Ok(SigningWrite::Keep),
    }
}

pub fn foreign_signing() -> Error {
    Error::Conflict(
        "the registry already has a signing configuration that ecr-operator did not write; it is \
         left untouched and nothing else is written (make spec.signing say exactly what it \
         holds to take it over, or remove it with the AWS console or CLI)"
            .to_string(),
    )
}

/// (register, deregister): the spec's principals ECR lacks; the ones this object registered
/// that the spec dropped and ECR still holds.
fn plan_exclusions(
    desired: Option<BTreeSet<String>>,
    status: &RegistrySettingsStatus,
    seen: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let desired = desired.unwrap_or_default();
    let register = desired.difference(seen).cloned().collect();
    let deregister = status
        .registered_exclusions
        .iter()
        .filter(|p| !desired.contains(*p) && seen.contains(*p))
        .cloned()
        .collect();
    (register, deregister)
}

/// The status once `plan` is applied.
pub fn synced_status(
    mut status: RegistrySettingsStatus,
    spec: &RegistrySettingsSpec,
    observed: &Observed,
    plan: &Plan,
) -> RegistrySettingsStatus {
    status.account_settings = declared_account_settings(spec)
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let managed = spec.signing.is_some() && observed.signing.is_some();
    status.signing_owned = managed.then_some(true);
    status.signing_rule_count = spec
        .signing
        .as_ref()
        .filter(|_| managed)
        .map(|c| c.rules.len() as i32);
    if observed.exclusions.is_some() {
        let desired = desired_exclusions(spec).unwrap_or_default();
        let kept = status
            .registered_exclusions
            .iter()
            .filter(|p| desired.contains(*p))
            .cloned();
        let registered: BTreeSet<String> = kept.chain(plan.register.iter().cloned()).collect();
        status.registered_exclusions = registered.into_iter().collect();
        status.pull_time_update_exclusion_count = spec
            .pull_time_update_exclusions
            .as_ref()
            .map(|l| l.len() as i32);
    }
    status
}

pub fn ready_message(spec: &RegistrySettingsSpec) -> String {
    let mut parts = Vec::new();
    let settings = declared_account_settings(spec);
    if !settings.is_empty() {
        let list: Vec<String> = settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
        parts.push(format!("account settings {}", list.join(", ")));
    }
    if let Some(config) = &spec.signing {
        parts.push(format!("{} signing rules", config.rules.len()));
    }
    if let Some(list) = &spec.pull_time_update_exclusions {
        parts.push(format!("{} pull-time update exclusions", list.len()));
    }
    if parts.is_empty() {
        return "Nothing set: every registry setting is left as it is".to_string();
    }
    format!("The registry has {}", parts.join("; "))
}

/// The event of a reconcile that wrote: Applied after a spec change, DriftCorrected otherwise.
pub fn announcement(plan: &Plan, spec_changed: bool) -> Option<Announcement> {
    if !plan.writes() {
        return None;
    }
    let mut what = Vec::new();
    for (name, value) in &plan.account_settings {
        what.push(format!("set {name} to {value}"));
    }
    match &plan.signing {
        SigningWrite::Keep => {}
        SigningWrite::Put(rules) => what.push(format!("wrote {} signing rules", rules.len())),
        SigningWrite::Delete => what.push("deleted the signing configuration".to_string()),
    }
    if !plan.register.is_empty() {
        what.push(format!("registered {}", plan.register.join(", ")));
    }
    if !plan.deregister.is_empty() {
        what.push(format!("deregistered {}", plan.deregister.join(", ")));
    }
    let (reason, lead) = if spec_changed {
        ("Applied", "Registry settings")
    } else {
        (
            "DriftCorrected",
            "Registry settings changed outside ecr-operator",
        )
    };
    Some(Announcement {
        reason,
        action: "Update",
        note: format!("{lead}: {}", what.join("; ")),
    })
}

/// One object per registry: `older` is the object that came first, if any.
pub fn refuse_younger(older: Option<String>) -> Result<(), Error> {
    match older {
        Some(other) => Err(Error::Conflict(format!(
            "RegistrySettings {other} already manages this registry's settings"
        ))),
        None => Ok(()),
    }
}

/// What the deletion of the object removes from ECR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub delete_signing: bool,
    /// Read ECR's exclusions and deregister these of them.
    pub deregister: Vec<String>,
}

pub fn plan_removal(policy: DeletionPolicy, status: &RegistrySettingsStatus) -> Removal {
    match policy {
        DeletionPolicy::Retain => Removal {
            delete_signing: false,
            deregister: Vec::new(),
        },
        DeletionPolicy::Delete => Removal {
            delete_signing: owns_signing(status),
            deregister: status.registered_exclusions.clone(),
        },
    }
}

impl Removal {
    pub fn announcement(&self, policy: DeletionPolicy) -> Announcement {
        if policy == DeletionPolicy::Retain {
            return Announcement {
                reason: "Retained",
                action: "Delete",
                note: "Left the registry settings in ECR (deletionPolicy Retain)".to_string(),
            };
        }
        let signing = if self.delete_signing {
            "deleted the signing configuration"
        } else {
            "no signing configuration of ours"
        };
        Announcement {
            reason: "Deleted",
            action: "Delete",
            note: format!(
                "Registry settings removed: {signing}; deregistered {} exclusions; account settings stay as they are",
                self.deregister.len()
            ),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
