//! Table tests of the RegistryPolicy merge and of its plan through the singleton's decisions.

use std::sync::Arc;

use super::*;
use crate::api::registry_policy::{RegistryPolicySpec, RegistryPolicyStatement};
use crate::api::repository::{Effect, PolicyStatement, Principals};
use crate::controllers::singleton::{Observation, SyncPlan, final_outcome, plan_sync};

fn statement(sid: Option<&str>, action: &str) -> RegistryPolicyStatement {
    RegistryPolicyStatement {
        statement: PolicyStatement {
            sid: sid.map(str::to_string),
            effect: Effect::Allow,
            principals: Principals {
                aws: vec!["arn:aws:iam::111122223333:root".into()],
                service: vec![],
            },
            actions: vec![action.to_string()],
            conditions: Default::default(),
        },
        resources: vec!["arn:aws:ecr:us-east-1:123456789012:repository/*".into()],
    }
}

fn obj(name: &str, sids: &[&str]) -> RegistryPolicy {
    RegistryPolicy::new(
        name,
        RegistryPolicySpec {
            registry_ref: None,
            statements: sids
                .iter()
                .map(|s| statement(Some(s), "ecr:ReplicateImage"))
                .collect(),
        },
    )
}

/// An object of one statement whose action is padded by `pad` characters.
fn padded(name: &str, sid: &str, pad: usize) -> RegistryPolicy {
    let action = format!("ecr:{}", "A".repeat(pad));
    RegistryPolicy::new(
        name,
        RegistryPolicySpec {
            registry_ref: None,
            statements: vec![statement(Some(sid), &action)],
        },
    )
}

/// The padding that makes the merged text of `objects` plus one padded statement exactly
/// `chars` long.
fn pad_to(objects: &[&RegistryPolicy], sid: &str, chars: usize) -> usize {
    let mut all: Vec<&RegistryPolicy> = objects.to_vec();
    let probe = padded("probe", sid, 0);
    all.push(&probe);
    let (doc, _) = merge(&all);
    let base = doc.map(|d| text_chars(&d)).unwrap_or_default();
    chars - base
}

/// (what, objects oldest first, sids of the document in order, per object: Ok((first, count))
/// or the kind and a fragment of the message).
type MergeCase = (
    &'static str,
    Vec<RegistryPolicy>,
    Vec<&'static str>,
    Vec<Result<(usize, usize), (&'static str, &'static str)>>,
);

#[test]
fn merge_table() {
    let a_fits = pad_to(&[&obj("a", &["A"])], "B", MAX_REGISTRY_POLICY_CHARS);
    let cases: Vec<MergeCase> = vec![
        ("nothing", vec![], vec![], vec![]),
        (
            "one object",
            vec![obj("a", &["A", "B"])],
            vec!["A", "B"],
            vec![Ok((0, 2))],
        ),
        (
            "in creation order, each after the older ones",
            vec![obj("old", &["A"]), obj("new", &["B", "C"])],
            vec!["A", "B", "C"],
            vec![Ok((0, 1)), Ok((1, 2))],
        ),
        (
            "a sid of an older object: the younger one is left out",
            vec![
                obj("old", &["A", "B"]),
                obj("young", &["C", "B"]),
                obj("later", &["C"]),
            ],
            vec!["A", "B", "C"],
            vec![
                Ok((0, 2)),
                Err((
                    "conflict",
                    "statement id B is already in the registry policy for the older RegistryPolicy old",
                )),
                Ok((2, 1)),
            ],
        ),
        (
            "exactly ECR's limit",
            vec![obj("a", &["A"]), padded("b", "B", a_fits)],
            vec!["A", "B"],
            vec![Ok((0, 1)), Ok((1, 1))],
        ),
        (
            "one character over: left out, a later object that fits still applies",
            vec![
                obj("a", &["A"]),
                padded("b", "B", a_fits + 1),
                obj("c", &["C"]),
            ],
            vec!["A", "C"],
            vec![
                Ok((0, 1)),
                Err((
                    "limit",
                    "would be 10241 characters; ECR accepts at most 10240",
                )),
                Ok((1, 1)),
            ],
        ),
        (
            "a sid left out with its object is free for a later one",
            vec![padded("big", "B", 20_000), obj("c", &["B"])],
            vec!["B"],
            vec![Err(("limit", "RegistryPolicyText")), Ok((0, 1))],
        ),
    ];
    for (what, objects, want_sids, want) in cases {
        let refs: Vec<&RegistryPolicy> = objects.iter().collect();
        let (doc, outcomes) = merge(&refs);
        let got_sids: Vec<String> = doc
            .iter()
            .flat_map(|d| d["Statement"].as_array().cloned().unwrap_or_default())
            .map(|s| s["Sid"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(got_sids, want_sids, "{what}");
        if let Some(d) = &doc {
            assert!(text_chars(d) <= MAX_REGISTRY_POLICY_CHARS, "{what}");
            assert_eq!(d["Version"], "2012-10-17", "{what}");
        }
        assert_eq!(outcomes.len(), want.len(), "{what}");
        for (got, want) in outcomes.iter().zip(&want) {
            match (got, want) {
                (Outcome::Applied { first, count }, Ok(w)) => {
                    assert_eq!((*first, *count), *w, "{what}")
                }
                (Outcome::Conflict(m), Err(("conflict", part)))
                | (Outcome::LimitExceeded(m), Err(("limit", part))) => {
                    assert!(m.contains(part), "{what}: {m}")
                }
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn ecr_text_reformatted_is_in_sync_and_anything_else_is_not() {
    let (desired, _) = merge(&[&obj("a", &["A", "B"])]);
    let Some(doc) = desired.clone() else {
        panic!("no document")
    };
    // ECR's spacing, and the statements in another order, mean the same.
    let mut statements = doc["Statement"].as_array().cloned().unwrap_or_default();
    statements.reverse();
    let reordered = serde_json::to_string_pretty(&document(&statements)).ok();
    let cases = [
        ("as sent", Some(doc.to_string()), true, false),
        ("reformatted", reordered, true, false),
        ("none", None, false, true),
        ("not JSON", Some("{not json".to_string()), false, false),
        (
            "someone else's",
            Some(r#"{"Version":"2012-10-17","Statement":[]}"#.to_string()),
            false,
            false,
        ),
    ];
    for (what, text, in_sync, empty) in cases {
        let seen = parse(text);
        assert_eq!(
            RegistryPolicySetting::equivalent(&seen, &desired),
            in_sync,
            "{what}"
        );
        assert_eq!(RegistryPolicySetting::is_empty(&seen), empty, "{what}");
    }
}

/// The pass's decisions for the registry policy, from the objects' merge and ECR's policy:
/// (what, objects, some part written before, ECR's text, plan, first object's final outcome).
#[test]
fn plan_table() {
    let (desired, _) = merge(&[&obj("a", &["A"])]);
    let ours = desired.as_ref().map(|d| d.to_string());
    let drifted = merge(&[&obj("a", &["Other"])]).0.map(|d| d.to_string());
    type Case = (
        &'static str,
        Vec<RegistryPolicy>,
        bool,
        Option<String>,
        SyncPlan<&'static str>,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "first write",
            vec![obj("a", &["A"])],
            false,
            None,
            SyncPlan::Write,
            None,
        ),
        (
            "in sync",
            vec![obj("a", &["A"])],
            true,
            ours.clone(),
            SyncPlan::InSync,
            None,
        ),
        (
            "drift of ours",
            vec![obj("a", &["A"])],
            true,
            drifted.clone(),
            SyncPlan::Write,
            None,
        ),
        (
            "a policy the operator did not write",
            vec![obj("a", &["A"])],
            false,
            drifted.clone(),
            SyncPlan::Conflict,
            Some("did not write"),
        ),
        (
            "last object gone",
            vec![],
            true,
            ours.clone(),
            SyncPlan::Clear,
            None,
        ),
        (
            "never ours, no object",
            vec![],
            false,
            drifted,
            SyncPlan::LeaveNotOwned,
            None,
        ),
        (
            "nothing anywhere",
            vec![],
            false,
            None,
            SyncPlan::Nothing,
            None,
        ),
    ];
    for (what, objects, ever_applied, text, want, conflict) in cases {
        let objects: Vec<Arc<RegistryPolicy>> = objects.into_iter().map(Arc::new).collect();
        let refs: Vec<&RegistryPolicy> = objects.iter().map(|o| o.as_ref()).collect();
        let (desired, outcomes) = merge(&refs);
        let seen = parse(text);
        let observation = Observation {
            in_sync: RegistryPolicySetting::equivalent(&seen, &desired),
            empty: RegistryPolicySetting::is_empty(&seen),
            refused: None,
        };
        let participating = outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Applied { .. }));
        let plan = plan_sync(participating, ever_applied, observation);
        assert_eq!(plan, want, "{what}");
        if let Some(first) = outcomes.first() {
            let message = matches!(plan, SyncPlan::Conflict).then(|| {
                crate::controllers::singleton::foreign_document(RegistryPolicySetting::WHAT)
            });
            match (final_outcome(first, message.as_deref()), conflict) {
                (Outcome::Conflict(m), Some(part)) => assert!(m.contains(part), "{what}: {m}"),
                (Outcome::Applied { .. }, None) => {}
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn status_records_the_part_and_forgets_it_when_left_out() {
    let mut status = RegistryPolicyStatus::default();
    RegistryPolicySetting::set_applied(&mut status, &Outcome::Applied { first: 2, count: 3 });
    assert_eq!(
        (status.first_statement_index, status.statement_count),
        (Some(2), Some(3))
    );
    let mut o = obj("a", &["A"]);
    o.status = Some(status.clone());
    assert!(RegistryPolicySetting::was_applied(&o));
    assert_eq!(
        RegistryPolicySetting::ready_message(&Outcome::Applied { first: 2, count: 3 }),
        "statements 2..5 of the registry policy"
    );
    RegistryPolicySetting::set_applied(&mut status, &Outcome::Conflict("x".into()));
    assert_eq!(
        (status.first_statement_index, status.statement_count),
        (None, None)
    );
    o.status = Some(status);
    assert!(!RegistryPolicySetting::was_applied(&o));
}
