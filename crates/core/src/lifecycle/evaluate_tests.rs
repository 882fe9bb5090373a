//! Tests of the evaluator (`evaluate.rs`): tables of ECR's documented behaviour, then properties.

use super::super::model::{Action, StorageClass};
use super::*;
use chrono::TimeZone;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn image(digest: &str, tags: &[&str], age: TimeDelta) -> Image {
    Image {
        digest: digest.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: now() - age,
        ..Image::default()
    }
}

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

fn digests(expiries: &[Expiry]) -> Vec<&str> {
    expiries.iter().map(|e| e.digest.as_str()).collect()
}

#[test]
fn prefix_lists_need_every_prefix() {
    let s = rule(
        1,
        TagStatus::Tagged,
        &["alpha", "beta"],
        &[],
        Count::ImageCountMoreThan(1),
    )
    .selection;
    assert!(s.selects(&image("a", &["alpha-1", "beta-1"], TimeDelta::zero())));
    assert!(!s.selects(&image("b", &["alpha-1"], TimeDelta::zero())));
    assert!(!s.selects(&image("c", &[], TimeDelta::zero())));
    // One tag may satisfy several prefixes.
    assert!(s.selects(&image("d", &["alphabeta", "beta"], TimeDelta::zero())));
}

#[test]
fn untagged_and_any() {
    let untagged = rule(
        1,
        TagStatus::Untagged,
        &[],
        &[],
        Count::ImageCountMoreThan(1),
    )
    .selection;
    let any = rule(2, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1)).selection;
    let bare = image("a", &[], TimeDelta::zero());
    let tagged = image("b", &["x"], TimeDelta::zero());
    assert!(untagged.selects(&bare) && !untagged.selects(&tagged));
    assert!(any.selects(&bare) && any.selects(&tagged));
}

#[test]
fn tagged_rule_without_lists_selects_nothing() {
    let s = rule(1, TagStatus::Tagged, &[], &[], Count::ImageCountMoreThan(1)).selection;
    assert!(!s.selects(&image("a", &["x"], TimeDelta::zero())));
}

#[test]
fn since_image_pushed_is_strictly_older() {
    let rules = [rule(
        1,
        TagStatus::Any,
        &[],
        &[],
        Count::SinceImagePushed { days: 1 },
    )];
    let images = [
        image("exactly-one-day", &[], TimeDelta::days(1)),
        image(
            "a-second-more",
            &[],
            TimeDelta::days(1) + TimeDelta::seconds(1),
        ),
    ];
    assert_eq!(
        digests(&evaluate(&rules, &images, now())),
        ["a-second-more"]
    );
}

#[test]
fn count_ties_are_broken_by_digest() {
    let rules = [rule(
        1,
        TagStatus::Any,
        &[],
        &[],
        Count::ImageCountMoreThan(1),
    )];
    let images = [
        image("sha256:b", &[], TimeDelta::zero()),
        image("sha256:a", &[], TimeDelta::zero()),
    ];
    assert_eq!(digests(&evaluate(&rules, &images, now())), ["sha256:a"]);
}

#[test]
fn identified_images_still_count_for_lower_rules() {
    // The untagged rule identifies `u` but keeps it; the `any` rule still counts `u` as the
    // newest image, so it expires `t` (the docs' "Filtering on all images", Example B).
    let rules = [
        rule(
            1,
            TagStatus::Untagged,
            &[],
            &[],
            Count::ImageCountMoreThan(5),
        ),
        rule(2, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1)),
    ];
    let images = [
        image("u", &[], TimeDelta::days(1)),
        image("t", &["v1"], TimeDelta::days(2)),
    ];
    assert_eq!(digests(&evaluate(&rules, &images, now())), ["t"]);
}

#[test]
fn output_is_by_priority_then_oldest_first() {
    let rules = [
        rule(7, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1)),
        rule(
            3,
            TagStatus::Tagged,
            &["rc"],
            &[],
            Count::SinceImagePushed { days: 1 },
        ),
    ];
    let images = [
        image("new", &[], TimeDelta::zero()),
        image("rc-new", &["rc2"], TimeDelta::days(2)),
        image("old", &[], TimeDelta::days(5)),
        image("rc-old", &["rc1"], TimeDelta::days(9)),
        image("mid", &[], TimeDelta::days(3)),
    ];
    let expiries = evaluate(&rules, &images, now());
    let got: Vec<(&str, u32)> = expiries
        .iter()
        .map(|e| (e.digest.as_str(), e.rule_priority))
        .collect();
    assert_eq!(got, [("rc-old", 3), ("rc-new", 3), ("old", 7), ("mid", 7)]);
}

#[test]
fn huge_numbers_do_not_panic() {
    let rules = [
        rule(
            1,
            TagStatus::Tagged,
            &["a"],
            &[],
            Count::SinceImagePushed { days: u32::MAX },
        ),
        rule(
            2,
            TagStatus::Any,
            &[],
            &[],
            Count::ImageCountMoreThan(u32::MAX),
        ),
    ];
    let images = [Image {
        digest: "x".into(),
        tags: vec!["a".into()],
        pushed_at: DateTime::<Utc>::MIN_UTC,
        ..Image::default()
    }];
    assert!(evaluate(&rules, &images, DateTime::<Utc>::MAX_UTC).is_empty());
}

fn archived(digest: &str, tags: &[&str], pushed: TimeDelta, archived: TimeDelta) -> Image {
    Image {
        storage_class: StorageClass::Archive,
        last_archived_at: Some(now() - archived),
        ..image(digest, tags, pushed)
    }
}

fn with_action(mut rule: Rule, action: Action, class: StorageClass) -> Rule {
    rule.action = action;
    rule.selection.storage_class = class;
    rule
}

#[test]
fn since_image_pulled_counts_from_the_last_pull_then_restore_then_push() {
    let rules = [with_action(
        rule(
            1,
            TagStatus::Any,
            &[],
            &[],
            Count::SinceImagePulled { days: 90 },
        ),
        Action::Transition,
        StorageClass::Standard,
    )];
    let day = TimeDelta::days;
    let pulled = |d: &str, pull: i64| Image {
        last_pulled_at: Some(now() - day(pull)),
        ..image(d, &[], day(400))
    };
    let images = [
        // Never pulled: the push time counts.
        image("never-pulled-old", &[], day(91)),
        image("never-pulled-new", &[], day(89)),
        pulled("pulled-recently", 10),
        pulled("pulled-long-ago", 100),
        // Restored 5 days ago and not pulled since: the restore time counts.
        Image {
            last_activated_at: Some(now() - day(5)),
            ..pulled("restored", 200)
        },
        // Pulled after its restore: the pull counts.
        Image {
            last_activated_at: Some(now() - day(300)),
            ..pulled("pulled-after-restore", 95)
        },
    ];
    let got = evaluate(&rules, &images, now());
    assert!(got.iter().all(|e| e.action == Action::Transition));
    let mut names = digests(&got);
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "never-pulled-old",
            "pulled-after-restore",
            "pulled-long-ago"
        ]
    );
}

#[test]
fn archived_images_are_seen_only_by_archive_rules() {
    let rules = [
        rule(1, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1)),
        with_action(
            rule(
                2,
                TagStatus::Any,
                &[],
                &[],
                Count::SinceImageTransitioned { days: 90 },
            ),
            Action::Expire,
            StorageClass::Archive,
        ),
    ];
    let day = TimeDelta::days;
    let images = [
        image("standard-new", &[], day(1)),
        image("standard-old", &[], day(2)),
        // Newer than both, but archived: the count rule keeps standard-new all the same.
        archived("archived-long", &[], day(0), day(91)),
        archived("archived-short", &[], day(0), day(30)),
        // Archived but without a transition time: not marked.
        Image {
            storage_class: StorageClass::Archive,
            ..image("archived-unknown", &[], day(500))
        },
    ];
    let outcomes = evaluate(&rules, &images, now());
    let got: Vec<(&str, u32, Action)> = outcomes
        .iter()
        .map(|e| (e.digest.as_str(), e.rule_priority, e.action))
        .collect();
    assert_eq!(
        got,
        [
            ("standard-old", 1, Action::Expire),
            ("archived-long", 2, Action::Expire)
        ]
    );
}

#[test]
fn a_transition_rule_leaves_archived_images_alone() {
    // Invalid (validate refuses an archive selection without sinceImageTransitioned), yet the
    // evaluator still never "archives" an archived image.
    let rules = [with_action(
        rule(1, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(0)),
        Action::Transition,
        StorageClass::Archive,
    )];
    let images = [archived("a", &[], TimeDelta::days(3), TimeDelta::days(2))];
    assert!(evaluate(&rules, &images, now()).is_empty());
}

#[test]
fn count_order_uses_the_restore_time() {
    // "If an image was archived and then restored ... last_activated_at is used instead of
    // pushed_at_time": the restored image counts as the newest.
    let rules = [rule(
        1,
        TagStatus::Any,
        &[],
        &[],
        Count::ImageCountMoreThan(1),
    )];
    let images = [
        image("pushed-yesterday", &[], TimeDelta::days(1)),
        Image {
            last_activated_at: Some(now() - TimeDelta::hours(1)),
            ..image("restored-today", &[], TimeDelta::days(300))
        },
    ];
    assert_eq!(
        digests(&evaluate(&rules, &images, now())),
        ["pushed-yesterday"]
    );
}

// ---- properties ----

const TAGS: &[&str] = &["a", "ab", "abc", "b", "ba", "prod-1", "prod-2", "dev"];
const PREFIXES: &[&str] = &["a", "ab", "b", "prod", "d"];
const PATTERNS: &[&str] = &["a*", "*b", "a*c", "prod-*", "*", "b?", "d*v"];

/// Whole 6-hour steps from a small range, so equal times happen.
fn hours_ago(hours: i64) -> DateTime<Utc> {
    now() - TimeDelta::hours(hours / 6 * 6)
}

fn images_strategy() -> impl Strategy<Value = Vec<Image>> {
    let times = (
        0i64..(20 * 24),
        prop::option::of(0i64..(20 * 24)),
        prop::option::of(0i64..(20 * 24)),
        prop::option::of(0i64..(20 * 24)),
    );
    prop::collection::vec(
        (prop::sample::subsequence(TAGS, 0..=3), any::<bool>(), times),
        0..14,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (tags, archive, (pushed, pulled, archived, activated)))| Image {
                    digest: format!("sha256:{i:02}"),
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                    pushed_at: hours_ago(pushed),
                    storage_class: if archive {
                        StorageClass::Archive
                    } else {
                        StorageClass::Standard
                    },
                    last_pulled_at: pulled.map(hours_ago),
                    last_archived_at: archived.map(hours_ago),
                    last_activated_at: activated.map(hours_ago),
                },
            )
            .collect()
    })
}

/// A count with the storage class and action that may go with it (see `validate_archive`).
fn count_strategy() -> impl Strategy<Value = (Count, StorageClass, Action)> {
    use Action::{Expire, Transition};
    use StorageClass::{Archive, Standard};
    let action = prop_oneof![Just(Expire), Just(Transition)];
    prop_oneof![
        ((0u32..5), action.clone()).prop_map(|(n, a)| (Count::ImageCountMoreThan(n), Standard, a)),
        ((0u32..21), action).prop_map(|(days, a)| (Count::SinceImagePushed { days }, Standard, a)),
        (0u32..21).prop_map(|days| (Count::SinceImagePulled { days }, Standard, Transition)),
        (0u32..21).prop_map(|days| (Count::SinceImageTransitioned { days }, Archive, Expire)),
    ]
}

fn selection_strategy() -> impl Strategy<Value = (Selection, Action)> {
    let lists = prop_oneof![
        prop::sample::subsequence(PREFIXES, 1..=2).prop_map(|p| (p, vec![])),
        prop::sample::subsequence(PATTERNS, 1..=2).prop_map(|p| (vec![], p)),
    ];
    (0u8..4, lists, count_strategy()).prop_map(
        |(kind, (prefixes, patterns), (count, storage_class, action))| {
            let (tag_status, prefixes, patterns) = match kind {
                0 => (TagStatus::Untagged, vec![], vec![]),
                1 => (TagStatus::Any, vec![], vec![]),
                _ => (TagStatus::Tagged, prefixes, patterns),
            };
            let selection = Selection {
                tag_status,
                tag_prefix_list: prefixes.iter().map(|s| s.to_string()).collect(),
                tag_pattern_list: patterns.iter().map(|s| s.to_string()).collect(),
                storage_class,
                count,
            };
            (selection, action)
        },
    )
}

/// Rules with distinct priorities, in random order (not necessarily a valid policy: the
/// evaluator's properties hold for any rule set with distinct priorities).
fn rules_strategy() -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec((1u32..4, selection_strategy()), 1..5)
        .prop_map(|specs| {
            let mut priority = 0;
            specs
                .into_iter()
                .map(|(step, (selection, action))| {
                    priority += step;
                    Rule {
                        rule_priority: priority,
                        description: None,
                        selection,
                        action,
                    }
                })
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn count_rule(selection: Selection, keep: u32) -> [Rule; 1] {
    [Rule {
        rule_priority: 1,
        description: None,
        selection: Selection {
            count: Count::ImageCountMoreThan(keep),
            ..selection
        },
        action: Action::Expire,
    }]
}

proptest! {
    #[test]
    fn acts_only_on_images_its_rule_identifies(rules in rules_strategy(), images in images_strategy()) {
        let by_priority: HashMap<u32, &Rule> = rules.iter().map(|r| (r.rule_priority, r)).collect();
        let by_digest: HashMap<&str, &Image> = images.iter().map(|i| (i.digest.as_str(), i)).collect();
        let outcomes = evaluate(&rules, &images, now());
        let mut seen = BTreeSet::new();
        for e in &outcomes {
            let image = by_digest[e.digest.as_str()];
            let rule = by_priority[&e.rule_priority];
            prop_assert!(rule.selection.selects(image));
            prop_assert_eq!(e.action, rule.action);
            // Never both archived and expired, nor twice either.
            prop_assert!(seen.insert(e.digest.clone()), "acted on twice: {}", e.digest);
            // Only standard images move to the archive; archived ones only by archive rules.
            if e.action == Action::Transition {
                prop_assert_eq!(image.storage_class, StorageClass::Standard);
            }
            prop_assert_eq!(image.storage_class, rule.selection.storage_class);
            // No higher-priority rule identified it.
            for r in &rules {
                if r.rule_priority < e.rule_priority {
                    prop_assert!(!r.selection.selects(image));
                }
            }
        }
    }

    #[test]
    fn archived_images_count_only_for_archive_rules(rules in rules_strategy(), images in images_strategy()) {
        // The outcome for standard images is the same without any archived image, and the other
        // way round.
        let of_class = |class: StorageClass| -> Vec<Image> {
            images.iter().filter(|i| i.storage_class == class).cloned().collect()
        };
        let all = evaluate(&rules, &images, now());
        let mut split = evaluate(&rules, &of_class(StorageClass::Standard), now());
        split.extend(evaluate(&rules, &of_class(StorageClass::Archive), now()));
        let key = |e: &Expiry| (e.rule_priority, e.digest.clone());
        let mut all_sorted = all.clone();
        all_sorted.sort_by_key(key);
        split.sort_by_key(key);
        prop_assert_eq!(all_sorted, split);
    }

    #[test]
    fn a_count_rule_keeps_its_newest_n((selection, _) in selection_strategy(), keep in 0u32..5, images in images_strategy()) {
        let rules = count_rule(selection, keep);
        let identified = images.iter().filter(|i| rules[0].selection.selects(i)).count();
        let outcomes = evaluate(&rules, &images, now());
        prop_assert_eq!(outcomes.len(), identified.saturating_sub(keep as usize));
    }

    #[test]
    fn independent_of_input_order(
        (rules, shuffled_rules) in rules_strategy().prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
        (images, shuffled_images) in images_strategy().prop_flat_map(|i| (Just(i.clone()), Just(i).prop_shuffle())),
    ) {
        let first = evaluate(&rules, &images, now());
        prop_assert_eq!(&first, &evaluate(&rules, &images, now()));
        prop_assert_eq!(&first, &evaluate(&shuffled_rules, &shuffled_images, now()));
    }

    #[test]
    fn a_count_rule_is_idempotent((selection, _) in selection_strategy(), keep in 0u32..5, images in images_strategy()) {
        let rules = count_rule(selection, keep);
        let expired: BTreeSet<String> = evaluate(&rules, &images, now()).into_iter().map(|e| e.digest).collect();
        let remaining: Vec<Image> = images.into_iter().filter(|i| !expired.contains(&i.digest)).collect();
        prop_assert!(evaluate(&rules, &remaining, now()).is_empty());
    }

    #[test]
    fn archiving_then_evaluating_again_expires_nothing_new_too_soon(rules in rules_strategy(), images in images_strategy()) {
        // Apply the outcome (archive now, delete), evaluate again at the same instant: images
        // archived now are not expired by a sinceImageTransitioned rule (0 days have passed).
        let outcomes = evaluate(&rules, &images, now());
        let archived_now: BTreeSet<&str> = outcomes.iter().filter(|e| e.action == Action::Transition).map(|e| e.digest.as_str()).collect();
        let expired: BTreeSet<&str> = outcomes.iter().filter(|e| e.action == Action::Expire).map(|e| e.digest.as_str()).collect();
        let after: Vec<Image> = images
            .iter()
            .filter(|i| !expired.contains(i.digest.as_str()))
            .map(|i| if archived_now.contains(i.digest.as_str()) {
                Image { storage_class: StorageClass::Archive, last_archived_at: Some(now()), ..i.clone() }
            } else {
                i.clone()
            })
            .collect();
        for e in evaluate(&rules, &after, now()) {
            prop_assert!(!archived_now.contains(e.digest.as_str()), "{} archived and expired at once", e.digest);
        }
    }
}
