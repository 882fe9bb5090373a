//! Tests of [`validate`](super::validate): one ECR constraint per test.

use super::super::model::{Action, Count};
use super::super::render;
use super::*;

fn rule(
    priority: u32,
    tag_status: TagStatus,
    prefixes: &[&str],
    patterns: &[&str],
    count: Count,
) -> Rule {
    Rule {
        rule_priority: priority,
        description: None,
        selection: Selection {
            tag_status,
            tag_prefix_list: prefixes.iter().map(|s| s.to_string()).collect(),
            tag_pattern_list: patterns.iter().map(|s| s.to_string()).collect(),
            storage_class: StorageClass::Standard,
            count,
        },
        action: Action::Expire,
    }
}

fn tagged(priority: u32, prefixes: &[&str]) -> Rule {
    rule(
        priority,
        TagStatus::Tagged,
        prefixes,
        &[],
        Count::ImageCountMoreThan(10),
    )
}

fn paths(errors: &[ValidationError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn a_typical_policy_is_valid() {
    let rules = [
        tagged(1, &["prod"]),
        rule(
            2,
            TagStatus::Tagged,
            &[],
            &["release-*"],
            Count::SinceImagePushed { days: 90 },
        ),
        rule(
            5,
            TagStatus::Untagged,
            &[],
            &[],
            Count::SinceImagePushed { days: 1 },
        ),
        rule(10, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(100)),
    ];
    assert_eq!(validate(&rules), []);
}

#[test]
fn at_least_one_rule() {
    assert_eq!(paths(&validate(&[])), ["rules"]);
}

#[test]
fn at_most_fifty_rules() {
    let prefixes: Vec<String> = (0..=MAX_RULES).map(|i| format!("p{i}")).collect();
    let mut rules: Vec<Rule> = (0..MAX_RULES)
        .map(|i| tagged(i as u32 + 1, &[prefixes[i].as_str()]))
        .collect();
    assert_eq!(validate(&rules), []);
    rules.push(tagged(
        MAX_RULES as u32 + 1,
        &[prefixes[MAX_RULES].as_str()],
    ));
    let errors = validate(&rules);
    assert_eq!(paths(&errors), ["rules"]);
    assert!(errors[0].message.contains("51 rules"), "{}", errors[0]);
}

#[test]
fn priority_must_be_positive() {
    assert_eq!(
        paths(&validate(&[tagged(0, &["a"])])),
        ["rules[0].rulePriority"]
    );
}

#[test]
fn priorities_must_be_unique() {
    let errors = validate(&[tagged(3, &["a"]), tagged(1, &["b"]), tagged(3, &["c"])]);
    assert_eq!(paths(&errors), ["rules[2].rulePriority"]);
    assert!(errors[0].message.contains("rules[0]"), "{}", errors[0]);
}

#[test]
fn tagged_needs_exactly_one_list() {
    let neither = rule(1, TagStatus::Tagged, &[], &[], Count::ImageCountMoreThan(1));
    let both = rule(
        1,
        TagStatus::Tagged,
        &["a"],
        &["a*"],
        Count::ImageCountMoreThan(1),
    );
    assert_eq!(paths(&validate(&[neither])), ["rules[0].selection"]);
    let errors = validate(&[both]);
    assert_eq!(paths(&errors), ["rules[0].selection"]);
    assert!(errors[0].message.contains("only one of"), "{}", errors[0]);
}

#[test]
fn lists_only_with_tagged() {
    let untagged = rule(
        1,
        TagStatus::Untagged,
        &["a"],
        &[],
        Count::ImageCountMoreThan(1),
    );
    let any = rule(
        1,
        TagStatus::Any,
        &["a"],
        &["b*"],
        Count::ImageCountMoreThan(1),
    );
    assert_eq!(
        paths(&validate(&[untagged])),
        ["rules[0].selection.tagPrefixList"]
    );
    assert_eq!(
        paths(&validate(&[any])),
        [
            "rules[0].selection.tagPrefixList",
            "rules[0].selection.tagPatternList"
        ]
    );
}

#[test]
fn at_most_four_wildcards_per_pattern() {
    // The docs' own examples: valid and invalid.
    let ok = rule(
        1,
        TagStatus::Tagged,
        &[],
        &["*test*1*2*3", "test*1*2*3*"],
        Count::ImageCountMoreThan(1),
    );
    assert_eq!(validate(&[ok]), []);
    let bad = rule(
        1,
        TagStatus::Tagged,
        &[],
        &["ok*", "test*1*2*3*4*5*6"],
        Count::ImageCountMoreThan(1),
    );
    let errors = validate(&[bad]);
    assert_eq!(paths(&errors), ["rules[0].selection.tagPatternList[1]"]);
    assert!(errors[0].message.contains("6 wildcards"), "{}", errors[0]);
}

#[test]
fn count_number_must_be_positive() {
    let count = rule(
        1,
        TagStatus::Untagged,
        &[],
        &[],
        Count::ImageCountMoreThan(0),
    );
    let age = rule(
        1,
        TagStatus::Untagged,
        &[],
        &[],
        Count::SinceImagePushed { days: 0 },
    );
    assert_eq!(
        paths(&validate(&[count])),
        ["rules[0].selection.countNumber"]
    );
    assert_eq!(paths(&validate(&[age])), ["rules[0].selection.countNumber"]);
}

#[test]
fn any_rule_must_have_the_highest_priority() {
    let any = |p| rule(p, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1));
    assert_eq!(validate(&[any(9), tagged(2, &["a"])]), []);
    assert_eq!(
        paths(&validate(&[any(1), tagged(2, &["a"])])),
        ["rules[0].rulePriority"]
    );
    // Two `any` rules: only the last one can be highest.
    assert_eq!(
        paths(&validate(&[any(4), any(3)])),
        ["rules[1].rulePriority"]
    );
}

#[test]
fn only_one_untagged_rule() {
    let untagged = |p| {
        rule(
            p,
            TagStatus::Untagged,
            &[],
            &[],
            Count::ImageCountMoreThan(1),
        )
    };
    assert_eq!(
        paths(&validate(&[untagged(1), untagged(2)])),
        ["rules[1].selection.tagStatus"]
    );
}

#[test]
fn tag_sets_must_be_unique() {
    let errors = validate(&[
        tagged(1, &["a", "b"]),
        tagged(2, &["b", "a"]),
        tagged(3, &["a"]),
    ]);
    assert_eq!(paths(&errors), ["rules[1].selection.tagPrefixList"]);
    let pattern = |p, pats: &[&str]| {
        rule(
            p,
            TagStatus::Tagged,
            &[],
            pats,
            Count::ImageCountMoreThan(1),
        )
    };
    // A prefix list and a pattern list with the same text are different filters.
    assert_eq!(validate(&[tagged(1, &["a"]), pattern(2, &["a"])]), []);
    assert_eq!(
        paths(&validate(&[pattern(1, &["a*"]), pattern(2, &["a*"])])),
        ["rules[1].selection.tagPatternList"]
    );
}

#[test]
fn rendered_length_is_limited() {
    let mut long = tagged(1, &["a"]);
    long.description = Some("x".repeat(MAX_POLICY_CHARS));
    let errors = validate(&[long]);
    assert_eq!(paths(&errors), ["rules"]);
    assert!(errors[0].message.contains("characters"), "{}", errors[0]);
}

/// Issue #15: the limit is LifecyclePolicyText's, met exactly at its edge; and no valid rule
/// set renders shorter than the model's minimum.
#[test]
fn rendered_length_edges_are_the_models() {
    let padded = |chars: usize| {
        let mut r = tagged(1, &["a"]);
        r.description = Some(String::new());
        let base = render(std::slice::from_ref(&r)).chars().count();
        r.description = Some("é".repeat(chars - base));
        r
    };
    let at_limit = padded(MAX_POLICY_CHARS);
    assert_eq!(
        render(std::slice::from_ref(&at_limit)).chars().count(),
        MAX_POLICY_CHARS
    );
    assert_eq!(validate(&[at_limit]), []);
    let errors = validate(&[padded(MAX_POLICY_CHARS + 1)]);
    assert_eq!(paths(&errors), ["rules"]);
    assert!(
        errors[0].message.contains("30721 characters") && errors[0].message.contains("30720"),
        "{}",
        errors[0]
    );
    let shortest = rule(1, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1));
    let shortest = render(&[shortest]).chars().count();
    assert_eq!(shortest, 138);
    assert!(shortest >= 100, "LifecyclePolicyText min is 100");
}

#[test]
fn every_problem_is_reported_at_once() {
    let rules = [
        rule(0, TagStatus::Any, &["x"], &[], Count::ImageCountMoreThan(0)),
        rule(
            2,
            TagStatus::Tagged,
            &[],
            &[],
            Count::SinceImagePushed { days: 3 },
        ),
    ];
    assert_eq!(
        paths(&validate(&rules)),
        [
            "rules[0].rulePriority",
            "rules[0].selection.tagPrefixList",
            "rules[0].selection.countNumber",
            "rules[1].selection",
            "rules[0].rulePriority",
        ]
    );
}

#[test]
fn display_is_path_then_message() {
    let e = ValidationError::new("rules[1].selection", "broken");
    assert_eq!(e.to_string(), "rules[1].selection: broken");
}

fn archive_rule(priority: u32, tag_status: TagStatus, count: Count, action: Action) -> Rule {
    let mut r = rule(priority, tag_status, &[], &[], count);
    r.action = action;
    if let Count::SinceImageTransitioned { .. } = count {
        r.selection.storage_class = StorageClass::Archive;
    }
    r
}

#[test]
fn the_guides_archive_policies_are_valid() {
    let pulled = Count::SinceImagePulled { days: 90 };
    let pushed = Count::SinceImagePushed { days: 30 };
    let transitioned = Count::SinceImageTransitioned { days: 365 };
    // "Combining archive and expire rules": an `any` rule per storage class.
    let combined = [
        archive_rule(1, TagStatus::Any, pushed, Action::Transition),
        archive_rule(2, TagStatus::Any, transitioned, Action::Expire),
    ];
    assert_eq!(validate(&combined), []);
    assert_eq!(
        validate(&[archive_rule(1, TagStatus::Any, pulled, Action::Transition)]),
        []
    );
    // The 90-day minimum is met exactly at 90.
    let at_minimum = Count::SinceImageTransitioned {
        days: MIN_ARCHIVE_DAYS,
    };
    assert_eq!(
        validate(&[archive_rule(
            1,
            TagStatus::Untagged,
            at_minimum,
            Action::Expire
        )]),
        []
    );
    // Transition by count is allowed too.
    let by_count = Count::ImageCountMoreThan(5);
    assert_eq!(
        validate(&[archive_rule(
            1,
            TagStatus::Untagged,
            by_count,
            Action::Transition
        )]),
        []
    );
}

#[test]
fn storage_class_archive_goes_exactly_with_since_image_transitioned() {
    let mut archive_by_count = rule(
        1,
        TagStatus::Untagged,
        &[],
        &[],
        Count::ImageCountMoreThan(1),
    );
    archive_by_count.selection.storage_class = StorageClass::Archive;
    let errors = validate(&[archive_by_count]);
    assert_eq!(paths(&errors), ["rules[0].selection.storageClass"]);
    assert!(
        errors[0].message.contains("imageCountMoreThan"),
        "{}",
        errors[0]
    );
    let standard_transitioned = rule(
        1,
        TagStatus::Untagged,
        &[],
        &[],
        Count::SinceImageTransitioned { days: 90 },
    );
    assert_eq!(
        paths(&validate(&[standard_transitioned])),
        ["rules[0].selection.storageClass"]
    );
}

#[test]
fn archive_count_types_need_their_action() {
    let pulled_expire = archive_rule(
        1,
        TagStatus::Any,
        Count::SinceImagePulled { days: 90 },
        Action::Expire,
    );
    assert_eq!(paths(&validate(&[pulled_expire])), ["rules[0].action.type"]);
    let transitioned_transition = archive_rule(
        1,
        TagStatus::Any,
        Count::SinceImageTransitioned { days: 90 },
        Action::Transition,
    );
    assert_eq!(
        paths(&validate(&[transitioned_transition])),
        ["rules[0].action.type"]
    );
}

#[test]
fn archived_images_expire_after_ninety_days_at_the_earliest() {
    let early = archive_rule(
        1,
        TagStatus::Any,
        Count::SinceImageTransitioned { days: 89 },
        Action::Expire,
    );
    let errors = validate(&[early]);
    assert_eq!(paths(&errors), ["rules[0].selection.countNumber"]);
    assert!(errors[0].message.contains("90"), "{}", errors[0]);
}

#[test]
fn uniqueness_holds_per_storage_class() {
    let transitioned = Count::SinceImageTransitioned { days: 100 };
    // One untagged rule per class.
    let untagged = [
        archive_rule(
            1,
            TagStatus::Untagged,
            Count::ImageCountMoreThan(1),
            Action::Transition,
        ),
        archive_rule(2, TagStatus::Untagged, transitioned, Action::Expire),
    ];
    assert_eq!(validate(&untagged), []);
    let twice = [
        archive_rule(1, TagStatus::Untagged, transitioned, Action::Expire),
        archive_rule(2, TagStatus::Untagged, transitioned, Action::Expire),
    ];
    assert_eq!(paths(&validate(&twice)), ["rules[1].selection.tagStatus"]);
    // The same tag set once per class.
    let mut archived_prod = tagged(2, &["prod"]);
    archived_prod.selection.count = transitioned;
    archived_prod.selection.storage_class = StorageClass::Archive;
    assert_eq!(validate(&[tagged(1, &["prod"]), archived_prod.clone()]), []);
    let mut again = archived_prod.clone();
    again.rule_priority = 3;
    assert_eq!(
        paths(&validate(&[tagged(1, &["prod"]), archived_prod, again])),
        ["rules[2].selection.tagPrefixList"]
    );
}

#[test]
fn the_any_rule_is_last_within_its_storage_class() {
    let transitioned = Count::SinceImageTransitioned { days: 100 };
    let archived_prod = |p| {
        let mut r = tagged(p, &["prod"]);
        r.selection.count = transitioned;
        r.selection.storage_class = StorageClass::Archive;
        r
    };
    // A standard `any` rule below an archive rule is fine.
    let standard_any = rule(1, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1));
    assert_eq!(validate(&[standard_any.clone(), archived_prod(2)]), []);
    // An archive `any` rule below an archive rule is not.
    let archive_any = archive_rule(1, TagStatus::Any, transitioned, Action::Expire);
    let errors = validate(&[archive_any, archived_prod(2)]);
    assert_eq!(paths(&errors), ["rules[0].rulePriority"]);
    assert!(errors[0].message.contains("archive"), "{}", errors[0]);
    // Nor a standard `any` rule below a standard one.
    assert_eq!(
        paths(&validate(&[standard_any, tagged(2, &["a"])])),
        ["rules[0].rulePriority"]
    );
}
