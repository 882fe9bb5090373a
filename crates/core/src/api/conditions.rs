//! Standard Kubernetes conditions, shared by every kind.
//!
//! Every status carries `conditions` (a list keyed by `type`) and `observedGeneration`, so
//! `kubectl wait --for=condition=Ready`, Argo CD and Flux (kstatus) work unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The condition every kind reports.
pub const READY: &str = "Ready";

/// Why an object is (not) Ready. The strings are part of the API: users and tools match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// ECR matches the spec.
    Synced,
    /// Work in progress (creating, updating).
    Progressing,
    /// The spec cannot be applied as written; waits for a spec change.
    Invalid,
    /// Another object or owner holds the ECR resource.
    Conflict,
    /// ECR throttled us; retrying with backoff.
    Throttled,
    /// A transient ECR or network error; retrying with backoff.
    TransientError,
    /// The operator's credentials may not do this.
    AccessDenied,
    /// Deletion is blocked because the repository still holds images.
    RepositoryNotEmpty,
    /// Deletion in progress.
    Deleting,
    /// A referenced Repository is missing or not Ready yet.
    RepositoryNotReady,
    /// A referenced Secret is missing or incomplete.
    SecretNotFound,
    /// An ECR limit (rules, destinations, filters, ...) would be exceeded.
    LimitExceeded,
    /// No controller reconciles this kind yet.
    NotReconciled,
    /// The ECR repository is outside what a RepositoryAccessPolicy grants the object's namespace,
    /// or the grant does not allow adopting it; nothing was written.
    Forbidden,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::Progressing => "Progressing",
            Reason::Invalid => "Invalid",
            Reason::Conflict => "Conflict",
            Reason::Throttled => "Throttled",
            Reason::TransientError => "TransientError",
            Reason::AccessDenied => "AccessDenied",
            Reason::RepositoryNotEmpty => "RepositoryNotEmpty",
            Reason::Deleting => "Deleting",
            Reason::RepositoryNotReady => "RepositoryNotReady",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::LimitExceeded => "LimitExceeded",
            Reason::NotReconciled => "NotReconciled",
            Reason::Forbidden => "Forbidden",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds the Ready condition, keeping `lastTransitionTime` from `previous` when the status
/// (True/False) did not change, as the Kubernetes API conventions ask.
pub fn ready_condition(
    previous: &[Condition],
    ready: bool,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == READY && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: READY.to_string(),
        status,
        reason: reason.as_str().to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Replaces the condition of the same type in `conditions`, or appends it.
pub fn set_condition(conditions: &mut Vec<Condition>, condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// The Ready condition, if any.
pub fn find_ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == READY)
}

/// True when the Ready condition is True and was observed at `generation`.
pub fn is_ready_at(conditions: &[Condition], generation: Option<i64>) -> bool {
    find_ready(conditions)
        .is_some_and(|c| c.status == "True" && c.observed_generation == generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let first = ready_condition(&[], false, Reason::Progressing, "creating", Some(1), t0);
        let second = ready_condition(
            std::slice::from_ref(&first),
            false,
            Reason::Throttled,
            "slow down",
            Some(1),
            t1,
        );
        assert_eq!(second.last_transition_time, Time(t0));
        assert_eq!(second.reason, "Throttled");
        let third = ready_condition(&[second], true, Reason::Synced, "ok", Some(2), t1);
        assert_eq!(third.last_transition_time, Time(t1));
        assert!(is_ready_at(std::slice::from_ref(&third), Some(2)));
        assert!(!is_ready_at(&[third], Some(3)));
    }

    #[test]
    fn set_condition_replaces_same_type() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut list = vec![];
        set_condition(
            &mut list,
            ready_condition(&[], false, Reason::Invalid, "x", None, t0),
        );
        set_condition(
            &mut list,
            ready_condition(&[], true, Reason::Synced, "y", None, t0),
        );
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "True");
    }
}
