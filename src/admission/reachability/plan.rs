//! What a verdict changes on one ScanPolicy: the `WebhookReachable` condition to write (none
//! when it already says so) and the Event of a transition. Pure, tested with a table.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::verdict::{Reachability, Verdict};
use crate::api::scan_policy::WEBHOOK_REACHABLE;

/// An Event to publish about the ScanPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// `Normal` when the webhook became reachable, else `Warning`.
    pub warning: bool,
    /// The new condition's reason.
    pub reason: String,
    pub note: String,
}

/// The write one ScanPolicy needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub condition: Condition,
    /// Set when status or reason changed (or there was no condition): not on every probe.
    pub transition: Option<Transition>,
}

/// The condition `verdict` asks for on an object at `generation` whose current
/// `WebhookReachable` condition is `previous`; `None` when nothing would change.
/// `lastTransitionTime` is kept while the status stays the same.
pub fn plan(
    previous: Option<&Condition>,
    verdict: &Verdict,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Planned> {
    let status = verdict.reachability.condition_status();
    let last_transition_time = previous
        .filter(|c| c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: WEBHOOK_REACHABLE.to_owned(),
        status: status.to_owned(),
        reason: verdict.reason.to_owned(),
        message: verdict.message.clone(),
        observed_generation: generation,
        last_transition_time,
    };
    if previous == Some(&condition) {
        return None;
    }
    let changed =
        previous.is_none_or(|c| c.status != condition.status || c.reason != condition.reason);
    let transition = changed.then(|| Transition {
        warning: verdict.reachability != Reachability::Reachable,
        reason: verdict.reason.to_owned(),
        note: verdict.message.clone(),
    });
    Some(Planned {
        condition,
        transition,
    })
}

/// The `WebhookReachable` condition among `conditions` (the JSON of `status.conditions`),
/// if it parses.
pub fn current(conditions: Option<&serde_json::Value>) -> Option<Condition> {
    conditions?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(WEBHOOK_REACHABLE))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(reachability: Reachability, reason: &'static str) -> Verdict {
        Verdict {
            reachability,
            reason,
            message: format!("{reason} message"),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The condition `verdict` leads to from nothing, at `t`.
    fn written(v: &Verdict, generation: i64, t: &str) -> Condition {
        plan(None, v, Some(generation), at(t)).unwrap().condition
    }

    #[test]
    fn writes_and_events_only_on_change() {
        let up = verdict(Reachability::Reachable, "WebhookAnswered");
        let down = verdict(Reachability::Unreachable, "WebhookSkipped");
        let failing = verdict(Reachability::Failing, "WebhookCallFailed");
        let unknown = verdict(Reachability::Unknown, "ProbeForbidden");
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-01T00:01:00Z";
        let up0 = written(&up, 1, t0);
        let down0 = written(&down, 1, t0);
        let mut reworded = up0.clone();
        reworded.message = "older wording".into();
        // (what, previous, verdict, generation, write?, event (warning, reason)?, transition time)
        type Case<'a> = (
            &'a str,
            Option<Condition>,
            &'a Verdict,
            i64,
            bool,
            Option<(bool, &'a str)>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "first, reachable",
                None,
                &up,
                1,
                true,
                Some((false, "WebhookAnswered")),
                t1,
            ),
            (
                "first, unreachable",
                None,
                &down,
                1,
                true,
                Some((true, "WebhookSkipped")),
                t1,
            ),
            (
                "first, unknown",
                None,
                &unknown,
                1,
                true,
                Some((true, "ProbeForbidden")),
                t1,
            ),
            ("unchanged", Some(up0.clone()), &up, 1, false, None, t0),
            ("still down", Some(down0.clone()), &down, 1, false, None, t0),
            (
                "goes down",
                Some(up0.clone()),
                &down,
                1,
                true,
                Some((true, "WebhookSkipped")),
                t1,
            ),
            (
                "comes back",
                Some(down0.clone()),
                &up,
                1,
                true,
                Some((false, "WebhookAnswered")),
                t1,
            ),
            // Same status, another reason: an event, the transition time kept.
            (
                "down another way",
                Some(down0.clone()),
                &failing,
                1,
                true,
                Some((true, "WebhookCallFailed")),
                t0,
            ),
            // A new generation or message: written quietly.
            ("new generation", Some(up0.clone()), &up, 2, true, None, t0),
            ("new message", Some(reworded), &up, 1, true, None, t0),
        ];
        for (what, previous, v, generation, write, event, transition_time) in cases {
            let planned = plan(previous.as_ref(), v, Some(generation), at(t1));
            assert_eq!(planned.is_some(), write, "{what}");
            let Some(planned) = planned else { continue };
            let c = &planned.condition;
            assert_eq!(c.type_, "WebhookReachable", "{what}");
            assert_eq!(c.status, v.reachability.condition_status(), "{what}");
            assert_eq!(
                (c.reason.as_str(), c.observed_generation),
                (v.reason, Some(generation)),
                "{what}"
            );
            assert_eq!(c.last_transition_time, Time(at(transition_time)), "{what}");
            let got = planned
                .transition
                .as_ref()
                .map(|t| (t.warning, t.reason.as_str()));
            assert_eq!(got, event, "{what}");
        }
    }

    #[test]
    fn the_current_condition_is_read_from_status_json() {
        let up = written(
            &verdict(Reachability::Reachable, "WebhookAnswered"),
            3,
            "2026-01-01T00:00:00Z",
        );
        let list = serde_json::json!([
            {"type": "Ready", "status": "True", "reason": "Synced", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            up,
        ]);
        assert_eq!(current(Some(&list)), Some(up));
        assert_eq!(current(Some(&serde_json::json!([{"type": "Ready"}]))), None);
        assert_eq!(
            current(Some(&serde_json::json!([{"type": "WebhookReachable"}]))),
            None
        );
        assert_eq!(current(None), None);
    }
}
