//! Tests of the LifecyclePolicy controller's pure parts.

use super::*;
use crate::registry::ImageInfo;

/// (what, dryRun, applied, in ECR, expected write, expected event reason).
type WriteCase = (
    &'static str,
    bool,
    bool,
    Option<&'static str>,
    PolicyWrite,
    Option<&'static str>,
);

#[test]
fn write_table() {
    let rendered = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#;
    // The same policy as ECR returns it: other key order, whitespace.
    let same = r#"{ "rules": [ { "action": {"type": "expire"}, "selection": {"countNumber": 5, "countType": "imageCountMoreThan", "tagStatus": "any"}, "rulePriority": 1 } ] }"#;
    let other = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":9},"action":{"type":"expire"}}]}"#;
    let cases: Vec<WriteCase> = vec![
        (
            "first apply",
            false,
            false,
            None,
            PolicyWrite::Put { replacing: false },
            Some("Applied"),
        ),
        ("in sync", false, true, Some(same), PolicyWrite::None, None),
        (
            "drifted in ECR",
            false,
            true,
            Some(other),
            PolicyWrite::Put { replacing: true },
            Some("Updated"),
        ),
        (
            "someone else's policy replaced on apply",
            false,
            false,
            Some(other),
            PolicyWrite::Put { replacing: true },
            Some("Updated"),
        ),
        (
            "deleted in ECR",
            false,
            true,
            None,
            PolicyWrite::Put { replacing: false },
            Some("Applied"),
        ),
        (
            "dryRun after apply removes ours",
            true,
            true,
            Some(same),
            PolicyWrite::Remove,
            Some("Removed"),
        ),
        (
            "dryRun leaves someone else's",
            true,
            false,
            Some(other),
            PolicyWrite::None,
            None,
        ),
        (
            "dryRun, nothing there",
            true,
            true,
            None,
            PolicyWrite::None,
            None,
        ),
    ];
    for (what, dry_run, applied, current, want, reason) in cases {
        let write = plan_write(dry_run, applied, current, rendered);
        assert_eq!(write, want, "{what}");
        assert_eq!(
            announce(write, "team/app", 1).map(|e| e.reason),
            reason,
            "{what}"
        );
    }
    let put = announce(PolicyWrite::Put { replacing: false }, "team/app", 2);
    assert_eq!(
        put.map(|e| e.note),
        Some("Put lifecycle policy (2 rules) on ECR repository team/app".to_string())
    );
}

#[test]
fn ready_messages_say_whether_the_policy_applies() {
    let preview = LifecyclePreview {
        image_count: 4,
        expiring_count: 2,
        ..Default::default()
    };
    assert_eq!(
        ready_message(true, "team/app", &preview),
        "dryRun: 2 of 4 images would expire; the policy is not applied"
    );
    assert_eq!(
        ready_message(false, "team/app", &preview),
        "lifecycle policy applied to team/app; 2 of 4 images would expire"
    );
}

use crate::api::lifecycle_policy::{
    LifecycleAction, LifecycleActionType, LifecycleCountType, LifecycleCountUnit, LifecycleRule,
    LifecycleSelection, LifecycleStorageClass, LifecycleTagStatus, LifecycleTargetStorageClass,
};
use k8s_openapi::jiff::Timestamp;

fn spec(rules: Vec<LifecycleRule>) -> LifecyclePolicySpec {
    LifecyclePolicySpec {
        repository_ref: crate::api::common::LocalObjectReference {
            name: "r".into(),
            namespace: None,
        },
        rules,
        dry_run: false,
    }
}

fn keep(priority: i32, prefix: &str, n: i32) -> LifecycleRule {
    LifecycleRule {
        rule_priority: priority,
        description: None,
        selection: LifecycleSelection {
            tag_status: LifecycleTagStatus::Tagged,
            tag_prefix_list: vec![prefix.into()],
            tag_pattern_list: vec![],
            storage_class: None,
            count_type: LifecycleCountType::ImageCountMoreThan,
            count_unit: None,
            count_number: n,
        },
        action: Default::default(),
    }
}

fn image(digest: &str, tag: &str, secs: i64) -> ImageInfo {
    ImageInfo {
        digest: digest.into(),
        tags: vec![tag.into()],
        pushed_at: Timestamp::from_second(secs).ok(),
        size_bytes: None,
        scan_status: None,
        scan_completed_at: None,
        ..Default::default()
    }
}

#[test]
fn renders_and_previews() {
    let (rules, text) = render_spec(&spec(vec![keep(1, "v", 1)])).unwrap();
    assert!(text.contains("\"tagPrefixList\":[\"v\"]"), "{text}");
    let images = [
        image("sha256:a", "v1", 100),
        image("sha256:b", "v2", 200),
        image("sha256:c", "v3", 300),
    ];
    let p = preview(&rules, &images, Utc::now(), 1);
    assert_eq!(p.image_count, 3);
    assert_eq!(p.expiring_count, 2);
    assert!(p.truncated);
    assert_eq!(p.images[0].digest, "sha256:a");
    assert_eq!(p.images[0].pushed_at, "1970-01-01T00:01:40Z");
}

#[test]
fn invalid_rules_are_reported_all_at_once() {
    let err = render_spec(&spec(vec![keep(1, "v", 1), keep(2, "v", 2)])).unwrap_err();
    assert!(err.starts_with("invalid lifecycle rules:"), "{err}");
}

#[test]
fn unchanged_preview_keeps_its_time() {
    let (rules, _) = render_spec(&spec(vec![keep(1, "v", 1)])).unwrap();
    let images = [image("sha256:a", "v1", 100), image("sha256:b", "v2", 200)];
    let first = preview(&rules, &images, Utc::now(), 50);
    let mut later = first.clone();
    later.evaluated_at = "2099-01-01T00:00:00Z".into();
    assert_eq!(settle_preview(Some(&first), later.clone()), first);
    later.expiring_count = 0;
    assert_eq!(settle_preview(Some(&first), later.clone()), later);
}

/// The guide's "Combining archive and expire rules": archive what was pushed over 30 days ago,
/// expire what has been archived for over 365 days.
fn archive_then_expire() -> Vec<LifecycleRule> {
    let since = |count_type, days, storage_class| LifecycleSelection {
        tag_status: LifecycleTagStatus::Any,
        storage_class,
        count_type,
        count_unit: Some(LifecycleCountUnit::Days),
        count_number: days,
        ..Default::default()
    };
    vec![
        LifecycleRule {
            rule_priority: 1,
            description: None,
            selection: since(LifecycleCountType::SinceImagePushed, 30, None),
            action: LifecycleAction {
                type_: LifecycleActionType::Transition,
                target_storage_class: Some(LifecycleTargetStorageClass::Archive),
            },
        },
        LifecycleRule {
            rule_priority: 2,
            description: None,
            selection: since(
                LifecycleCountType::SinceImageTransitioned,
                365,
                Some(LifecycleStorageClass::Archive),
            ),
            action: LifecycleAction::default(),
        },
    ]
}

#[test]
fn archive_rules_render_and_preview_each_action() {
    let (rules, text) = render_spec(&spec(archive_then_expire())).unwrap();
    assert!(
        text.contains(r#""action":{"type":"transition","targetStorageClass":"archive"}"#),
        "{text}"
    );
    assert!(text.contains(r#""storageClass":"archive""#), "{text}");
    let now = Utc::now();
    let days_ago = |d: i64| Timestamp::from_second(now.timestamp() - d * 86_400).ok();
    let images = [
        // Pushed 40 days ago: archived by rule 1.
        image("sha256:old", "v1", now.timestamp() - 40 * 86_400),
        // Pushed 10 days ago: kept.
        image("sha256:new", "v2", now.timestamp() - 10 * 86_400),
        // Archived 400 days ago: expired by rule 2 (rule 1 does not see it).
        ImageInfo {
            status: Some("ARCHIVED".into()),
            last_archived_at: days_ago(400),
            ..image("sha256:gone", "v0", now.timestamp() - 900 * 86_400)
        },
        // Being restored: still archived for lifecycle rules, and not 365 days yet.
        ImageInfo {
            status: Some("ACTIVATING".into()),
            last_archived_at: days_ago(100),
            ..image("sha256:back", "v9", now.timestamp() - 900 * 86_400)
        },
    ];
    let p = preview(&rules, &images, now, 50);
    assert_eq!(
        (p.image_count, p.expiring_count, p.archiving_count),
        (4, 1, 1)
    );
    let got: Vec<(&str, LifecycleActionType, LifecycleStorageClass, i32)> = p
        .images
        .iter()
        .map(|i| {
            (
                i.digest.as_str(),
                i.action,
                i.storage_class,
                i.rule_priority,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "sha256:old",
                LifecycleActionType::Transition,
                LifecycleStorageClass::Standard,
                1
            ),
            (
                "sha256:gone",
                LifecycleActionType::Expire,
                LifecycleStorageClass::Archive,
                2
            ),
        ]
    );
    assert_eq!(
        ready_message(false, "team/app", &p),
        "lifecycle policy applied to team/app; 1 of 4 images would expire, 1 would be archived"
    );
}

#[test]
fn since_image_pulled_previews_from_the_last_pull() {
    let rules = vec![LifecycleRule {
        rule_priority: 1,
        description: None,
        selection: LifecycleSelection {
            tag_status: LifecycleTagStatus::Any,
            count_type: LifecycleCountType::SinceImagePulled,
            count_unit: Some(LifecycleCountUnit::Days),
            count_number: 90,
            ..Default::default()
        },
        action: LifecycleAction {
            type_: LifecycleActionType::Transition,
            target_storage_class: Some(LifecycleTargetStorageClass::Archive),
        },
    }];
    let (rules, _) = render_spec(&spec(rules)).unwrap();
    let now = Utc::now();
    let old = now.timestamp() - 200 * 86_400;
    let pulled = |d: &str, days: i64| ImageInfo {
        last_pulled_at: Timestamp::from_second(now.timestamp() - days * 86_400).ok(),
        ..image(d, d, old)
    };
    let images = [pulled("sha256:used", 5), pulled("sha256:unused", 95)];
    let p = preview(&rules, &images, now, 50);
    assert_eq!(p.archiving_count, 1);
    assert_eq!(p.images[0].digest, "sha256:unused");
}

/// A Repository named `r` in namespace `ns`, in `target`, whose status says ECR name `ecr`
/// (when given) and Ready `ready` ("True", "False" or none) at `observed` for generation 2.
fn repo(target: Option<&str>, ecr: Option<&str>, ready: Option<&str>, observed: i64) -> Repository {
    let mut value = serde_json::json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "r", "namespace": "ns", "generation": 2},
        "spec": {"repositoryName": "spec/name"},
        "status": {},
    });
    if let Some(t) = target {
        value["spec"]["registryRef"] = serde_json::json!({"name": t});
    }
    if let Some(e) = ecr {
        value["status"]["repositoryName"] = serde_json::json!(e);
    }
    if let Some(s) = ready {
        value["status"]["conditions"] = serde_json::json!([{
            "type": "Ready", "status": s, "reason": if s == "True" { "Synced" } else { "TargetNotReady" },
            "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": observed,
        }]);
        value["status"]["observedGeneration"] = serde_json::json!(observed);
    }
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
}

fn place(repository: &str, target: Option<&str>) -> Place {
    Place {
        repository: repository.into(),
        target: target.map(str::to_string),
    }
}

/// The referenced Repository's place: its status's ECR name and its registryRef, only once it
/// is Ready at its generation (a target's Repository like the own registry's).
#[test]
fn ready_place_table() {
    let b = Some("b");
    let cases: Vec<(&str, Option<Repository>, Result<Place, &str>)> = vec![
        (
            "missing",
            None,
            Err("Repository r does not exist in namespace ns"),
        ),
        (
            "own, Ready",
            Some(repo(None, Some("team/app"), Some("True"), 2)),
            Ok(place("team/app", None)),
        ),
        (
            "in target b, Ready",
            Some(repo(b, Some("team/app"), Some("True"), 2)),
            Ok(place("team/app", b)),
        ),
        (
            "Ready at an older generation",
            Some(repo(b, Some("team/app"), Some("True"), 1)),
            Err("waiting for Repository r to be Ready (Synced: m)"),
        ),
        (
            "target not Ready",
            Some(repo(b, None, Some("False"), 2)),
            Err("waiting for Repository r to be Ready (TargetNotReady: m)"),
        ),
        (
            "no status yet",
            Some(repo(b, None, None, 0)),
            Err("waiting for Repository r to be Ready"),
        ),
    ];
    for (what, r, expected) in cases {
        let got = ready_place(r.as_ref(), "ns", "r");
        assert_eq!(got, expected.map_err(str::to_string), "{what}");
    }
    // Ready or not, where it is: the status's name, else the spec's; the registryRef.
    assert_eq!(Place::of(&repo(b, None, None, 0)), place("spec/name", b));
    assert_eq!(Place::of(&repo(None, Some("x"), None, 0)), place("x", None));
}

/// (what, status, spec.repositoryRef's name, where it leads now, the place to leave).
type LeaveCase = (
    &'static str,
    LifecyclePolicyStatus,
    &'static str,
    Option<Place>,
    Option<Place>,
);

/// When the applied policy is left: the reference names another Repository, or leads to
/// another repository or another registry (same ECR name in another target included); never
/// when not applied, nor when the Repository is gone.
#[test]
fn place_to_leave_table() {
    let status = |applied: bool, target: Option<&str>| LifecyclePolicyStatus {
        repository_name: Some("team/app".into()),
        repository_ref_name: Some("r".into()),
        registry_target: target.map(str::to_string),
        applied,
        ..Default::default()
    };
    let here_own = place("team/app", None);
    let here_b = place("team/app", Some("b"));
    let cases: Vec<LeaveCase> = vec![
        (
            "same place, own",
            status(true, None),
            "r",
            Some(here_own.clone()),
            None,
        ),
        (
            "same place, target b",
            status(true, Some("b")),
            "r",
            Some(here_b.clone()),
            None,
        ),
        (
            "same name, now in b",
            status(true, None),
            "r",
            Some(here_b.clone()),
            Some(here_own.clone()),
        ),
        (
            "same name, now own",
            status(true, Some("b")),
            "r",
            Some(here_own.clone()),
            Some(here_b.clone()),
        ),
        (
            "same name, now in c",
            status(true, Some("b")),
            "r",
            Some(place("team/app", Some("c"))),
            Some(here_b.clone()),
        ),
        (
            "another ECR name",
            status(true, Some("b")),
            "r",
            Some(place("other", Some("b"))),
            Some(here_b.clone()),
        ),
        (
            "another Repository",
            status(true, Some("b")),
            "s",
            None,
            Some(here_b.clone()),
        ),
        ("Repository gone", status(true, Some("b")), "r", None, None),
        (
            "not applied",
            status(false, Some("b")),
            "s",
            Some(here_own.clone()),
            None,
        ),
    ];
    for (what, status, ref_name, now, expected) in cases {
        assert_eq!(
            place_to_leave(&status, ref_name, now.as_ref()),
            expected,
            "{what}"
        );
    }
}
