//! Table tests of the registry-level singletons' decisions (`singleton.rs`).

use super::*;
use crate::api::ReplicationConfig;
use crate::api::replication_config::{
    ReplicationConfigSpec, ReplicationDestination, ReplicationFilter, ReplicationRule,
};
use crate::controllers::replication_config::Replication;
use crate::registry::ErrorClass;

/// What ECR's document looks like to a pass.
#[derive(Clone, Copy, Debug)]
enum Doc {
    /// The desired document.
    Desired,
    Empty,
    /// Something else: drift, or a document someone else wrote.
    Other,
}

/// (what, objects take part, some part was ever written, ECR's document, refused before, plan).
type SyncCase = (&'static str, bool, bool, Doc, bool, SyncPlan<&'static str>);

#[test]
fn sync_table() {
    use Doc::*;
    use SyncPlan::*;
    let cases: Vec<SyncCase> = vec![
        ("in sync", true, true, Desired, false, InSync),
        (
            "in sync, though refused before",
            true,
            true,
            Desired,
            true,
            InSync,
        ),
        (
            "first write into an empty registry",
            true,
            false,
            Empty,
            false,
            Write,
        ),
        (
            "a document someone else wrote",
            true,
            false,
            Other,
            false,
            Conflict,
        ),
        (
            "someone else's, refused before",
            true,
            false,
            Other,
            true,
            Conflict,
        ),
        ("drift of our document", true, true, Other, false, Write),
        (
            "drift, this document refused before",
            true,
            true,
            Other,
            true,
            Refused("why"),
        ),
        (
            "cleared outside, refused before",
            true,
            true,
            Empty,
            true,
            Refused("why"),
        ),
        (
            "no part, empty registry",
            false,
            false,
            Empty,
            false,
            Nothing,
        ),
        (
            "last part gone, already cleared",
            false,
            true,
            Empty,
            false,
            Nothing,
        ),
        ("last part gone", false, true, Other, false, Clear),
        (
            "last part gone, a refusal is no reason to keep it",
            false,
            true,
            Other,
            true,
            Clear,
        ),
        (
            "no part ever written, someone else's",
            false,
            false,
            Other,
            false,
            LeaveNotOwned,
        ),
    ];
    for (what, participating, ever_applied, doc, refused, want) in cases {
        let seen = Observation {
            in_sync: matches!(doc, Desired),
            empty: matches!(doc, Empty),
            refused: refused.then_some("why"),
        };
        assert_eq!(plan_sync(participating, ever_applied, seen), want, "{what}");
    }
}

#[test]
fn document_is_read_only_when_something_takes_or_took_part() {
    for participating in [false, true] {
        for deleting in [false, true] {
            for withdrawn in [false, true] {
                assert_eq!(
                    sync_needed(participating, deleting, withdrawn),
                    participating || deleting || withdrawn,
                    "{participating} {deleting} {withdrawn}"
                );
            }
        }
    }
}

/// (what, outcome of the merge, conflict found in ECR, final outcome).
#[test]
fn outcome_table() {
    let applied = Outcome::Applied { first: 0, count: 2 };
    let cases = [
        ("applied", applied.clone(), None, applied.clone()),
        (
            "applied, ECR holds another's document",
            applied,
            Some("foreign"),
            Outcome::Conflict("foreign".into()),
        ),
        (
            "an invalid object keeps its own problem",
            Outcome::Invalid("bad".into()),
            Some("foreign"),
            Outcome::Invalid("bad".into()),
        ),
        (
            "no part",
            Outcome::NotParticipating("m".into()),
            Some("foreign"),
            Outcome::NotParticipating("m".into()),
        ),
    ];
    for (what, outcome, conflict, want) in cases {
        assert_eq!(final_outcome(&outcome, conflict), want, "{what}");
    }
}

/// (outcome, the reason reported when the sync failed with a throttle).
#[test]
fn failure_table() {
    let throttled = RegistryError::new(
        ErrorClass::Throttled,
        "PutReplicationConfiguration",
        "slow down",
    );
    let cases = [
        (
            Outcome::Applied { first: 0, count: 1 },
            Some(Reason::Throttled),
        ),
        (Outcome::Invalid("m".into()), Some(Reason::Invalid)),
        (Outcome::Conflict("m".into()), Some(Reason::Conflict)),
        (
            Outcome::LimitExceeded("m".into()),
            Some(Reason::LimitExceeded),
        ),
        (Outcome::NotParticipating("m".into()), None),
    ];
    for (outcome, want) in cases {
        assert_eq!(
            failure_of(&outcome, &throttled).map(|e| e.reason()),
            want,
            "{outcome:?}"
        );
    }
}

#[test]
fn events_tell_a_change_from_a_drift() {
    let cases = [
        (false, true, None),
        (false, false, None),
        (true, true, Some("Applied")),
        (true, false, Some("DriftCorrected")),
    ];
    for (written, spec_changed, want) in cases {
        let event = applied_event("replication configuration", written, spec_changed);
        assert_eq!(
            event.as_ref().map(|e| e.reason),
            want,
            "{written} {spec_changed}"
        );
    }
    let restored = applied_event("replication configuration", true, false).map(|e| e.note);
    assert_eq!(
        restored.as_deref(),
        Some("Restored the registry replication configuration changed outside ecr-operator")
    );
    assert!(foreign_document("scanning configuration").contains(
        "already has a scanning configuration that ecr-operator did not write; it is left untouched (remove it"
    ));
}

fn replication(name: &str, rules: usize) -> Arc<ReplicationConfig> {
    let rule = ReplicationRule {
        destinations: vec![ReplicationDestination {
            region: "eu-west-1".into(),
            registry_id: "123456789012".into(),
        }],
        repository_filters: vec![ReplicationFilter {
            filter: "team".into(),
            filter_type: Default::default(),
        }],
        delete_replication: false,
    };
    Arc::new(ReplicationConfig::new(
        name,
        ReplicationConfigSpec {
            registry_ref: None,
            rules: vec![rule; rules],
        },
    ))
}

#[test]
fn invalid_objects_are_left_out_of_the_merge() {
    let objects = [
        replication("a", 2),
        replication("b", 0),
        replication("c", 1),
    ];
    let (doc, outcomes) = plan::<Replication>(&objects);
    assert_eq!(doc.rules.len(), 3);
    assert_eq!(
        outcomes,
        vec![
            Outcome::Applied { first: 0, count: 2 },
            Outcome::Invalid("spec.rules: at least one rule is needed".into()),
            Outcome::Applied { first: 2, count: 1 },
        ]
    );
}
