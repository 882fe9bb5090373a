//! Table tests of the Repository controller's decisions (`plan.rs`).

use super::*;
use crate::api::repository::{
    Encryption, EncryptionType, RepositorySpec, TagMutability, TagMutabilityExclusionFilter,
};
use serde_json::json;

fn info() -> RepositoryInfo {
    RepositoryInfo {
        name: "team/app".into(),
        arn: "arn:aws:ecr:us-east-1:123456789012:repository/team/app".into(),
        uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app".into(),
        registry_id: "123456789012".into(),
        created_at: None,
        tag_mutability: "MUTABLE".into(),
        tag_mutability_exclusions: Vec::new(),
        scan_on_push: false,
        encryption_type: "AES256".into(),
        kms_key: None,
    }
}

fn repo(spec: RepositorySpec) -> Repository {
    let mut r = Repository::new("app", spec);
    r.metadata.namespace = Some("team".into());
    r
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Drift of every field DescribeRepositories shows: (what, spec, observed change, expected).
#[test]
fn settings_drift_table() {
    let kms = Some(Encryption {
        encryption_type: EncryptionType::Kms,
        kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/k".into()),
    });
    type Case = (
        &'static str,
        RepositorySpec,
        fn(&mut RepositoryInfo),
        SettingsDiff,
    );
    let cases: Vec<Case> = vec![
        (
            "in sync",
            RepositorySpec::default(),
            |_| {},
            SettingsDiff::default(),
        ),
        (
            "mutability",
            RepositorySpec {
                image_tag_mutability: TagMutability::Immutable,
                ..Default::default()
            },
            |_| {},
            SettingsDiff {
                tag_mutability: Some(MutabilityWrite {
                    mode: "IMMUTABLE",
                    exclusions: vec![],
                    changed: vec!["imageTagMutability"],
                }),
                ..Default::default()
            },
        ),
        (
            "scan on push",
            RepositorySpec::default(),
            |i| i.scan_on_push = true,
            SettingsDiff {
                scan_on_push: Some(false),
                ..Default::default()
            },
        ),
        (
            "encryption unspecified keeps what ECR chose",
            RepositorySpec::default(),
            |i| i.encryption_type = "KMS".into(),
            SettingsDiff::default(),
        ),
    ];
    for (what, spec, change, want) in cases {
        let mut observed = info();
        change(&mut observed);
        let got = diff_settings(&Desired::from_spec(&repo(spec), "o"), &observed);
        assert_eq!(got, want, "{what}");
        assert_eq!(
            got.writes(),
            want.tag_mutability.is_some() || want.scan_on_push.is_some()
        );
    }
    // Encryption cannot change: reported, never a write.
    let d = diff_settings(
        &Desired::from_spec(
            &repo(RepositorySpec {
                encryption: kms,
                ..Default::default()
            }),
            "o",
        ),
        &info(),
    );
    assert!(!d.writes());
    assert!(
        d.encryption_mismatch
            .unwrap_or_default()
            .contains("cannot change")
    );
}

#[test]
fn tags_diff_leaves_foreign_tags_alone() {
    let desired = tags(&[("team", "a"), (OWNER_TAG, "o")]);
    let observed = tags(&[
        ("team", "b"),
        ("cost-center", "42"),
        ("old", "x"),
        (OWNER_TAG, "o"),
    ]);
    let (set, remove) = diff_tags(&desired, &observed, &["team".into(), "old".into()]);
    assert_eq!(set, tags(&[("team", "a")]));
    assert_eq!(remove, vec!["old".to_string()]);
    let (set, remove) = diff_tags(&desired, &desired, &["team".into()]);
    assert!(set.is_empty() && remove.is_empty());
    // A take-back manages everything but AWS's own tags.
    let observed = tags(&[("aws:cloudformation:stack", "s"), ("x", "1")]);
    assert_eq!(
        managed_tag_keys(&observed, &[], true),
        vec!["x".to_string()]
    );
    assert_eq!(
        managed_tag_keys(&observed, &["y".into()], false),
        vec!["y".to_string()]
    );
}

/// Claiming an existing repository: (what, owner tag found, spec.adopt, grant, expected).
#[test]
fn claim_table() {
    let granted = |adopt| Access::Granted {
        adopt,
        by: Some("p".into()),
    };
    let default_grant = Access::Granted {
        adopt: false,
        by: None,
    };
    let forbidden = Access::Forbidden("not granted".into());
    let cases: Vec<(&str, Option<&str>, bool, Access, &str)> = vec![
        (
            "ours",
            Some("c/team/app"),
            false,
            granted(false),
            "take back",
        ),
        (
            "ours, adopt set",
            Some("c/team/app"),
            true,
            granted(false),
            "take back",
        ),
        (
            "another object's",
            Some("c/team/other"),
            true,
            granted(true),
            "Conflict: owned by c/team/other",
        ),
        (
            "another cluster's",
            Some("d/team/app"),
            true,
            granted(true),
            "Conflict: owned by d/team/app",
        ),
        (
            "unowned, no adopt",
            None,
            false,
            granted(true),
            "Conflict: set spec.adopt",
        ),
        ("unowned, adopt allowed", None, true, granted(true), "adopt"),
        (
            "unowned, policy without adoption",
            None,
            true,
            granted(false),
            "Forbidden: grants it without allowAdoption",
        ),
        (
            "unowned, default grant",
            None,
            true,
            default_grant,
            "Forbidden: default grant allows no adoption",
        ),
        (
            "unowned, not granted",
            None,
            true,
            forbidden,
            "Forbidden: not granted",
        ),
    ];
    for (what, found, adopt, access, want) in cases {
        let got = match decide_claim("team/app", found, "c/team/app", adopt, &access, "team") {
            Claim::TakeBack => "take back".to_string(),
            Claim::Adopt => "adopt".to_string(),
            Claim::Refuse(e) => format!("{}: {e}", e.reason()),
        };
        let (head, tail) = want.split_once(": ").unwrap_or((want, ""));
        assert!(got.starts_with(head) && got.contains(tail), "{what}: {got}");
    }
}

#[test]
fn ownership_before_a_write_is_read_from_the_tag() {
    assert!(still_owned(Some("o"), "o", false));
    assert!(
        still_owned(None, "o", true),
        "a removed tag on the repository we saw is put back"
    );
    assert!(
        !still_owned(None, "o", false),
        "status alone proves nothing"
    );
    assert!(
        !still_owned(Some("x"), "o", true),
        "another owner's tag wins over memory"
    );
}

/// When tags and policy are read: (what, inputs, expected).
#[test]
fn deep_check_table() {
    let base = DeepCheck::default();
    let cases = [
        ("resync, not due", base, false),
        ("slot due", DeepCheck { due: true, ..base }, true),
        (
            "first sight after start: slot assigned, not read",
            DeepCheck {
                due: true,
                first_sight: true,
                ..base
            },
            false,
        ),
        (
            "spec changed",
            DeepCheck {
                generation_changed: true,
                ..base
            },
            true,
        ),
        (
            "newly claimed",
            DeepCheck {
                newly_claimed: true,
                first_sight: true,
                ..base
            },
            true,
        ),
        (
            "just created",
            DeepCheck {
                created: true,
                generation_changed: true,
                newly_claimed: true,
                due: true,
                unsynced_tag_keys: true,
                ..base
            },
            false,
        ),
        (
            // Chaos seed 7: a deleted object's status, written by name onto its successor.
            "status records other tag keys, first sight, same generation",
            DeepCheck {
                unsynced_tag_keys: true,
                first_sight: true,
                ..base
            },
            true,
        ),
    ];
    for (what, inputs, want) in cases {
        assert_eq!(inputs.now(), want, "{what}");
    }
}

/// Whether the status's managed tag keys are those of the spec: (what, recorded, spec keys,
/// expected).
#[test]
fn records_spec_tag_keys_table() {
    let cases: [(&str, &[&str], &[&str], bool); 6] = [
        ("none, none", &[], &[], true),
        ("same", &["a", "b"], &["a", "b"], true),
        ("same, other order", &["b", "a"], &["a", "b"], true),
        ("the old object's keys", &["k0"], &["k3", "k4"], false),
        ("one missing", &["a"], &["a", "b"], false),
        ("one more", &["a", "b"], &["a"], false),
    ];
    for (what, recorded, spec, want) in cases {
        let recorded: Vec<String> = recorded.iter().map(|k| k.to_string()).collect();
        let spec: Tags = spec.iter().map(|k| (*k, "v")).collect();
        assert_eq!(records_spec_tag_keys(&recorded, &spec), want, "{what}");
    }
}

/// (what, spec, in ECR, ours, read needed, expected).
type PolicyCase<'a> = (
    &'a str,
    Option<&'a Value>,
    Option<&'a str>,
    bool,
    bool,
    PolicyAction,
);

/// The repository policy.
#[test]
fn policy_table() {
    let want = json!({"Version": "2012-10-17", "Statement": []});
    let same = r#"{"Statement":[],"Version":"2012-10-17"}"#;
    let other = r#"{"Version":"2012-10-17","Statement":[{"Sid":"x"}]}"#;
    let cases: Vec<PolicyCase> = vec![
        (
            "equal text",
            Some(&want),
            Some(same),
            true,
            true,
            PolicyAction::Keep,
        ),
        (
            "drifted",
            Some(&want),
            Some(other),
            true,
            true,
            PolicyAction::Put(want.to_string()),
        ),
        (
            "missing",
            Some(&want),
            None,
            false,
            true,
            PolicyAction::Put(want.to_string()),
        ),
        (
            "ours, removed from spec",
            None,
            Some(other),
            true,
            true,
            PolicyAction::Delete,
        ),
        (
            "someone else's, none in spec",
            None,
            Some(other),
            false,
            false,
            PolicyAction::Keep,
        ),
        (
            "none anywhere",
            None,
            None,
            false,
            false,
            PolicyAction::Keep,
        ),
    ];
    for (what, desired, current, ours, read, expected) in cases {
        assert_eq!(policy_read_needed(desired, ours), read, "{what}: read");
        assert_eq!(plan_policy(desired, current, ours), expected, "{what}");
    }
}

/// (what, created, changes, ownership, generation changed, previously Synced, reason).
type AnnouncementCase<'a> = (
    &'a str,
    bool,
    Vec<&'a str>,
    Ownership,
    bool,
    bool,
    Option<&'a str>,
);

/// Events.
#[test]
fn announcement_table() {
    let cases: Vec<AnnouncementCase> = vec![
        (
            "create",
            true,
            vec![],
            Ownership::Created,
            true,
            false,
            Some("Created"),
        ),
        (
            "update",
            false,
            vec!["tags", "policy"],
            Ownership::Created,
            true,
            true,
            Some("Updated"),
        ),
        (
            "drift repaired",
            false,
            vec!["imageTagMutability"],
            Ownership::Created,
            false,
            true,
            Some("Updated"),
        ),
        (
            "adopted, nothing to change",
            false,
            vec![],
            Ownership::Adopted,
            true,
            false,
            Some("Adopted"),
        ),
        (
            "adopted, already synced",
            false,
            vec![],
            Ownership::Adopted,
            true,
            true,
            None,
        ),
        (
            "resync",
            false,
            vec![],
            Ownership::Created,
            false,
            true,
            None,
        ),
    ];
    for (what, created, changes, ownership, generation_changed, synced, want) in cases {
        let got = announce(
            "team/app",
            created,
            &changes,
            ownership,
            generation_changed,
            synced,
        );
        assert_eq!(got.as_ref().map(|a| a.reason), want, "{what}");
    }
    let updated = announce(
        "r",
        false,
        &["tags", "policy"],
        Ownership::Created,
        true,
        true,
    );
    assert_eq!(
        updated.map(|a| a.note),
        Some("Updated tags, policy".to_string())
    );
}

/// Deletion under each policy and grant.
#[test]
fn removal_table() {
    let granted = Access::Granted {
        adopt: false,
        by: None,
    };
    let forbidden = Access::Forbidden("no".into());
    assert_eq!(
        plan_removal(DeletionPolicy::Retain, &granted),
        Removal::Retain
    );
    assert_eq!(
        plan_removal(DeletionPolicy::Retain, &forbidden),
        Removal::Retain
    );
    assert_eq!(
        plan_removal(DeletionPolicy::Delete, &granted),
        Removal::DeleteIfOwned
    );
    assert_eq!(
        plan_removal(DeletionPolicy::Delete, &forbidden),
        Removal::Forbidden("no".into())
    );
    assert!(not_empty_message("r", false).contains("set spec.forceDelete: true"));
    assert!(not_empty_message("r", true).contains("retrying"));
}

/// A spec with this tag mutability and these exclusion filters.
fn with_exclusions(mode: TagMutability, filters: &[&str]) -> RepositorySpec {
    RepositorySpec {
        image_tag_mutability: mode,
        image_tag_mutability_exclusion_filters: filters
            .iter()
            .map(|f| TagMutabilityExclusionFilter {
                filter: f.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// ECR's view of the repository with this mode and these filters.
fn holding(mode: &str, filters: &[&str]) -> RepositoryInfo {
    RepositoryInfo {
        tag_mutability: mode.into(),
        tag_mutability_exclusions: filters.iter().map(|f| f.to_string()).collect(),
        ..info()
    }
}

fn write(
    mode: &'static str,
    filters: &[&str],
    changed: &[&'static str],
) -> Option<MutabilityWrite> {
    Some(MutabilityWrite {
        mode,
        exclusions: filters.iter().map(|f| f.to_string()).collect(),
        changed: changed.to_vec(),
    })
}

/// Tag mutability with exclusions: (what, spec, what ECR holds, the PutImageTagMutability due).
/// Mode and filters always go together; the filters are compared as a set.
#[test]
fn tag_mutability_exclusions_table() {
    use TagMutability::*;
    const MODE: &str = "imageTagMutability";
    const FILTERS: &str = "imageTagMutabilityExclusionFilters";
    let cases: Vec<(
        &str,
        RepositorySpec,
        RepositoryInfo,
        Option<MutabilityWrite>,
    )> = vec![
        (
            "equal: no write",
            with_exclusions(ImmutableWithExclusion, &["latest", "dev-*"]),
            holding("IMMUTABLE_WITH_EXCLUSION", &["latest", "dev-*"]),
            None,
        ),
        (
            "equal in another order: no write",
            with_exclusions(ImmutableWithExclusion, &["latest", "dev-*"]),
            holding("IMMUTABLE_WITH_EXCLUSION", &["dev-*", "latest"]),
            None,
        ),
        (
            "a filter repeated in the spec: no write",
            with_exclusions(MutableWithExclusion, &["release-*", "release-*"]),
            holding("MUTABLE_WITH_EXCLUSION", &["release-*"]),
            None,
        ),
        (
            "drift of the mode only",
            with_exclusions(ImmutableWithExclusion, &["latest"]),
            holding("MUTABLE_WITH_EXCLUSION", &["latest"]),
            write("IMMUTABLE_WITH_EXCLUSION", &["latest"], &[MODE]),
        ),
        (
            "drift of the filters only",
            with_exclusions(ImmutableWithExclusion, &["latest"]),
            holding("IMMUTABLE_WITH_EXCLUSION", &["latest", "dev-*"]),
            write("IMMUTABLE_WITH_EXCLUSION", &["latest"], &[FILTERS]),
        ),
        (
            "a filter changed",
            with_exclusions(MutableWithExclusion, &["release-*"]),
            holding("MUTABLE_WITH_EXCLUSION", &["rel-*"]),
            write("MUTABLE_WITH_EXCLUSION", &["release-*"], &[FILTERS]),
        ),
        (
            "exclusions set outside the operator on a plain mode are removed",
            RepositorySpec {
                image_tag_mutability: Immutable,
                ..Default::default()
            },
            holding("IMMUTABLE_WITH_EXCLUSION", &["latest"]),
            write("IMMUTABLE", &[], &[MODE, FILTERS]),
        ),
        (
            "exclusions added to a plain repository",
            with_exclusions(ImmutableWithExclusion, &["latest"]),
            holding("IMMUTABLE", &[]),
            write("IMMUTABLE_WITH_EXCLUSION", &["latest"], &[MODE, FILTERS]),
        ),
        (
            "repeats in the spec are sent once",
            with_exclusions(ImmutableWithExclusion, &["b", "a", "b"]),
            holding("MUTABLE", &[]),
            write("IMMUTABLE_WITH_EXCLUSION", &["b", "a"], &[MODE, FILTERS]),
        ),
    ];
    for (what, spec, observed, want) in cases {
        let got = diff_settings(&Desired::from_spec(&repo(spec), "o"), &observed);
        assert_eq!(got.tag_mutability, want, "{what}");
        assert_eq!(got.writes(), want.is_some(), "{what}");
        assert_eq!(got.scan_on_push, None, "{what}");
    }
}

/// Create passes the mode and filters in the one CreateRepository call.
#[test]
fn create_with_exclusions_sends_them() {
    let spec = with_exclusions(TagMutability::MutableWithExclusion, &["prod-*", "v*"]);
    let d = Desired::from_spec(&repo(spec), "o");
    assert_eq!(d.tag_mutability, "MUTABLE_WITH_EXCLUSION");
    assert_eq!(d.tag_mutability_exclusions, vec!["prod-*", "v*"]);
    let plain = Desired::from_spec(&repo(RepositorySpec::default()), "o");
    assert_eq!(plain.tag_mutability, "MUTABLE");
    assert!(plain.tag_mutability_exclusions.is_empty());
}

/// Adopting a repository that uses exclusions: a spec that says the same keeps them (no write);
/// one that says otherwise rewrites them and the Updated event names both fields.
#[test]
fn adopt_with_exclusions() {
    let adopted = holding("IMMUTABLE_WITH_EXCLUSION", &["latest", "dev-*"]);
    let access = Access::Granted {
        adopt: true,
        by: Some("p".into()),
    };
    assert!(matches!(
        decide_claim("team/app", None, "o", true, &access, "team"),
        Claim::Adopt
    ));
    let same = with_exclusions(TagMutability::ImmutableWithExclusion, &["dev-*", "latest"]);
    let d = diff_settings(&Desired::from_spec(&repo(same), "o"), &adopted);
    assert_eq!(d, SettingsDiff::default(), "kept as they are");
    let other = diff_settings(
        &Desired::from_spec(&repo(RepositorySpec::default()), "o"),
        &adopted,
    );
    let changed = other.tag_mutability.map(|w| w.changed).unwrap_or_default();
    let note = announce("team/app", false, &changed, Ownership::Adopted, true, false);
    assert_eq!(
        note.map(|a| a.note),
        Some("Updated imageTagMutability, imageTagMutabilityExclusionFilters".to_string())
    );
}

/// (until the check, sweep interval, timer): a timer only when the check comes before the next
/// sweep's resync would.
#[test]
fn deep_check_timer_table() {
    let s = Duration::from_secs;
    let cases = [
        (s(10), s(60), Some(s(10))),
        (s(60), s(60), Some(s(60))),
        (s(61), s(60), None),
        (s(3600), s(60), None),
        (
            Duration::from_millis(100),
            Duration::from_millis(500),
            Some(Duration::from_millis(100)),
        ),
    ];
    for (until, sweep, want) in cases {
        assert_eq!(deep_check_timer(until, sweep), want, "{until:?} {sweep:?}");
    }
}
