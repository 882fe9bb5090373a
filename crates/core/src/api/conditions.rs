//! Standard Kubernetes conditions, shared by every kind.
//!
//! Every status carries `conditions` (a list keyed by `type`) and `observedGeneration`, so
//! `kubectl wait --for=condition=Ready`, Argo CD and Flux (kstatus) work unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The condition every kind reports.
pub const READY: &str = "Ready";

/// kstatus's abnormal-true condition (sigs.k8s.io/cli-utils/pkg/kstatus, read by Flux): True
/// while the operator works towards Ready on its own (kstatus: InProgress).
pub const RECONCILING: &str = "Reconciling";

/// kstatus's abnormal-true condition: True while the object waits for a person (kstatus:
/// Failed). Neither it nor [`RECONCILING`] is present once the object is Ready.
pub const STALLED: &str = "Stalled";

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
    /// A RegistryTarget's IAM role could not be assumed (STS refused it): its trust policy, the
    /// external id or the operator's own permissions need a person.
    AssumeRoleFailed,
    /// A RegistryTarget's registry did not answer (endpoint, network, region); retried.
    Unreachable,
    /// The RegistryTarget an object names is missing or not Ready; waits for it (targets are
    /// watched), nothing is read or written meanwhile.
    TargetNotReady,
}

impl Reason {
    /// Every reason, for tables and for the tests that pin the tools' mappings to this list.
    pub const ALL: [Reason; 17] = [
        Reason::Synced,
        Reason::Progressing,
        Reason::Invalid,
        Reason::Conflict,
        Reason::Throttled,
        Reason::TransientError,
        Reason::AccessDenied,
        Reason::RepositoryNotEmpty,
        Reason::Deleting,
        Reason::RepositoryNotReady,
        Reason::SecretNotFound,
        Reason::LimitExceeded,
        Reason::NotReconciled,
        Reason::Forbidden,
        Reason::AssumeRoleFailed,
        Reason::Unreachable,
        Reason::TargetNotReady,
    ];

    /// Whether an object not Ready for this reason stays so until a person acts (a spec change,
    /// a grant, credentials, a secret, an emptied repository): `Stalled` for kstatus and
    /// Degraded in config/argocd/health.lua (a test pins that the two lists agree). Every
    /// other reason is one the operator retries or waits out by itself: `Reconciling`.
    pub fn waits_for_a_person(self) -> bool {
        matches!(
            self,
            Reason::Invalid
                | Reason::Conflict
                | Reason::AccessDenied
                | Reason::Forbidden
                | Reason::LimitExceeded
                | Reason::SecretNotFound
                | Reason::RepositoryNotEmpty
                | Reason::AssumeRoleFailed
        )
    }

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
            Reason::AssumeRoleFailed => "AssumeRoleFailed",
            Reason::Unreachable => "Unreachable",
            Reason::TargetNotReady => "TargetNotReady",
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

/// The kstatus condition an object carries besides Ready: none when Ready, [`STALLED`] when
/// the reason waits for a person, else [`RECONCILING`]. Both are abnormal-true, so the one
/// written is always True and the other is absent.
pub fn kstatus_condition_type(ready: bool, reason: Reason) -> Option<&'static str> {
    match (ready, reason.waits_for_a_person()) {
        (true, _) => None,
        (false, true) => Some(STALLED),
        (false, false) => Some(RECONCILING),
    }
}

/// Sets Ready and kstatus's `Reconciling`/`Stalled` in `conditions` for one outcome: Ready as
/// [`ready_condition`] builds it; the kstatus condition [`kstatus_condition_type`] names, True,
/// with the same reason, message and generation (its `lastTransitionTime` kept while it stays
/// True); the other kstatus condition removed. Other condition types are left alone.
pub fn set_ready_conditions(
    conditions: &mut Vec<Condition>,
    ready: bool,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) {
    let message = message.into();
    let wanted = kstatus_condition_type(ready, reason);
    let progress = wanted.map(|type_| Condition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: reason.as_str().to_string(),
        message: message.clone(),
        observed_generation: generation,
        last_transition_time: conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
            .map_or(Time(now), |c| c.last_transition_time.clone()),
    });
    let ready = ready_condition(conditions, ready, reason, message, generation, now);
    set_condition(conditions, ready);
    conditions.retain(|c| {
        !(c.type_ == RECONCILING || c.type_ == STALLED) || Some(c.type_.as_str()) == wanted
    });
    if let Some(progress) = progress {
        set_condition(conditions, progress);
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

    /// Every variant, by position in [`Reason::ALL`]: a new variant must be placed here (the
    /// match is exhaustive) and, to be in range, in `ALL`.
    fn position(reason: Reason) -> usize {
        match reason {
            Reason::Synced => 0,
            Reason::Progressing => 1,
            Reason::Invalid => 2,
            Reason::Conflict => 3,
            Reason::Throttled => 4,
            Reason::TransientError => 5,
            Reason::AccessDenied => 6,
            Reason::RepositoryNotEmpty => 7,
            Reason::Deleting => 8,
            Reason::RepositoryNotReady => 9,
            Reason::SecretNotFound => 10,
            Reason::LimitExceeded => 11,
            Reason::NotReconciled => 12,
            Reason::Forbidden => 13,
            Reason::AssumeRoleFailed => 14,
            Reason::Unreachable => 15,
            Reason::TargetNotReady => 16,
        }
    }

    #[test]
    fn all_lists_every_reason_once() {
        let mut seen = [false; Reason::ALL.len()];
        for reason in Reason::ALL {
            assert!(!seen[position(reason)], "{reason} twice");
            seen[position(reason)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    /// (reason, the kstatus condition when not Ready): Stalled for what waits for a person.
    const NOT_READY: [(Reason, &str); 17] = [
        (Reason::Synced, RECONCILING),
        (Reason::Progressing, RECONCILING),
        (Reason::Invalid, STALLED),
        (Reason::Conflict, STALLED),
        (Reason::Throttled, RECONCILING),
        (Reason::TransientError, RECONCILING),
        (Reason::AccessDenied, STALLED),
        (Reason::RepositoryNotEmpty, STALLED),
        (Reason::Deleting, RECONCILING),
        (Reason::RepositoryNotReady, RECONCILING),
        (Reason::SecretNotFound, STALLED),
        (Reason::LimitExceeded, STALLED),
        (Reason::NotReconciled, RECONCILING),
        (Reason::Forbidden, STALLED),
        (Reason::AssumeRoleFailed, STALLED),
        (Reason::Unreachable, RECONCILING),
        (Reason::TargetNotReady, RECONCILING),
    ];

    #[test]
    fn kstatus_condition_table() {
        for (reason, want) in NOT_READY {
            assert_eq!(
                kstatus_condition_type(false, reason),
                Some(want),
                "{reason}"
            );
            assert_eq!(
                kstatus_condition_type(true, reason),
                None,
                "{reason}, Ready"
            );
        }
        let covered: Vec<Reason> = NOT_READY.iter().map(|(r, _)| *r).collect();
        assert_eq!(covered, Reason::ALL);
    }

    /// The reasons config/argocd/health.lua calls Degraded: its `waits_for_a_person` table.
    fn degraded_in_argocd_lua() -> Vec<String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/argocd/health.lua"
        );
        let lua = std::fs::read_to_string(path).unwrap();
        let table = lua.split("local waits_for_a_person = {").nth(1).unwrap();
        let table = table.split('}').next().unwrap();
        let mut reasons: Vec<String> = table
            .split(',')
            .filter_map(|entry| entry.split_once('='))
            .map(|(name, value)| {
                assert_eq!(value.trim(), "true", "{name}");
                name.trim().to_string()
            })
            .collect();
        reasons.sort();
        reasons
    }

    #[test]
    fn stalled_is_exactly_what_argocd_calls_degraded() {
        let mut stalled: Vec<String> = Reason::ALL
            .into_iter()
            .filter(|r| kstatus_condition_type(false, *r) == Some(STALLED))
            .map(|r| r.to_string())
            .collect();
        stalled.sort();
        assert_eq!(stalled, degraded_in_argocd_lua());
    }

    /// (type, status, reason, message, observedGeneration, lastTransitionTime) of a condition.
    type Row = (String, String, String, String, Option<i64>, Time);

    /// An outcome set_ready_conditions is given: (ready, reason, message, generation, day).
    type Outcome = (bool, Reason, &'static str, i64, u8);

    fn row(c: &Condition) -> Row {
        let c = c.clone();
        let (t, s, r, m) = (c.type_, c.status, c.reason, c.message);
        (t, s, r, m, c.observed_generation, c.last_transition_time)
    }

    fn at(day: u8) -> Timestamp {
        format!("2026-01-0{day}T00:00:00Z").parse().unwrap()
    }

    #[test]
    fn set_ready_conditions_follows_the_outcome() {
        let webhook = Condition {
            type_: "WebhookReachable".into(),
            status: "True".into(),
            reason: "WebhookAnswered".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(at(1)),
        };
        let want = |type_: &str, status: &str, reason: &str, message: &str, g: i64, day: u8| {
            let strings = [type_, status, reason, message].map(str::to_string);
            let [t, s, r, m] = strings;
            (t, s, r, m, Some(g), Time(at(day)))
        };
        // (outcome: ready, reason, message, generation, day) → every condition after it. Ready
        // keeps its transition time while False; Reconciling while True; the other kstatus
        // condition goes; conditions of other types stay.
        let steps: [(Outcome, Vec<Row>); 4] = [
            (
                (false, Reason::Progressing, "creating", 1, 1),
                vec![
                    want(READY, "False", "Progressing", "creating", 1, 1),
                    want(RECONCILING, "True", "Progressing", "creating", 1, 1),
                ],
            ),
            (
                (false, Reason::Throttled, "slow down", 2, 2),
                vec![
                    want(READY, "False", "Throttled", "slow down", 2, 1),
                    want(RECONCILING, "True", "Throttled", "slow down", 2, 1),
                ],
            ),
            (
                (false, Reason::Invalid, "bad name", 2, 3),
                vec![
                    want(READY, "False", "Invalid", "bad name", 2, 1),
                    want(STALLED, "True", "Invalid", "bad name", 2, 3),
                ],
            ),
            (
                (true, Reason::Synced, "ok", 3, 4),
                vec![want(READY, "True", "Synced", "ok", 3, 4)],
            ),
        ];
        let mut list = vec![webhook.clone()];
        for ((ready, reason, message, generation, day), mut rows) in steps {
            set_ready_conditions(&mut list, ready, reason, message, Some(generation), at(day));
            rows.insert(0, row(&webhook));
            let got: Vec<Row> = list.iter().map(row).collect();
            assert_eq!(got, rows, "after {reason}");
        }
    }
}
