//! Tests of the LifecyclePolicy controller's pure parts.

use super::*;

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
            announce(write, "team/app", 1).map(|e| e.0),
            reason,
            "{what}"
        );
    }
    let put = announce(PolicyWrite::Put { replacing: false }, "team/app", 2);
    assert_eq!(
        put.map(|e| e.2),
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

use crate::api::lifecycle_policy::{LifecycleRule, LifecycleSelection};
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
