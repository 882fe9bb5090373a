//! The local evaluator: which images a lifecycle policy expires, following ECR's documented
//! evaluation rules ("Lifecycle policy evaluation rules" in the ECR User Guide).

use std::cmp::Ordering;

use chrono::{DateTime, TimeDelta, Utc};

use super::model::{Count, Expiry, Image, Rule, Selection, TagStatus};
use crate::image::wildcard_match;

impl Selection {
    /// Whether the rule *identifies* `image` (ECR's "matches the tagging requirements").
    ///
    /// With several prefixes or patterns, every entry must match some tag of the image: the docs
    /// say "an image is successfully matched if all of the tags in the `tagPatternList` or
    /// `tagPrefixList` value are matched against any of the image's tags".
    pub fn selects(&self, image: &Image) -> bool {
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => image.tags.is_empty(),
            TagStatus::Tagged => {
                // A tagged rule without lists is invalid; let it match nothing rather than all.
                let has_filter =
                    !self.tag_prefix_list.is_empty() || !self.tag_pattern_list.is_empty();
                let prefixes_ok = self
                    .tag_prefix_list
                    .iter()
                    .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str())));
                let patterns_ok = self
                    .tag_pattern_list
                    .iter()
                    .all(|p| image.tags.iter().any(|t| wildcard_match(p, t)));
                has_filter && prefixes_ok && patterns_ok
            }
        }
    }
}

/// Orders images oldest first. Equal push times fall back to the digest (then the tags), so the
/// outcome never depends on the order in which ECR listed the images.
fn oldest_first(a: &Image, b: &Image) -> Ordering {
    (a.pushed_at, &a.digest, &a.tags).cmp(&(b.pushed_at, &b.digest, &b.tags))
}

/// Which images `rules` expire at `now`, in ECR's semantics:
///
/// - rules apply in `rulePriority` order, lowest first;
/// - each rule *identifies* the images its selection matches, all of them, including images that
///   higher-priority rules already identified ("rules ... can still identify them as if they
///   haven't been expired"), and *marks* some of them: for `imageCountMoreThan` all but the newest
///   N identified images, for `sinceImagePushed` those pushed more than N days before `now`;
/// - a rule expires only the marked images that no higher-priority rule identified ("an image that
///   matches the tagging requirements of a rule cannot be expired by a rule with a lower
///   priority"), so every image is expired by at most one rule.
///
/// Newest means the latest push time; ties are broken by the larger digest. The result lists the
/// expiries by rule priority, oldest image first within a rule. The policy is assumed valid (see
/// [`super::validate()`]); for an invalid one the result is still deterministic.
pub fn evaluate(rules: &[Rule], images: &[Image], now: DateTime<Utc>) -> Vec<Expiry> {
    let mut ordered_rules: Vec<&Rule> = rules.iter().collect();
    ordered_rules.sort_by_key(|r| r.rule_priority);

    let mut newest_first: Vec<&Image> = images.iter().collect();
    newest_first.sort_by(|a, b| oldest_first(b, a));

    let mut identified_earlier = vec![false; newest_first.len()];
    let mut expiries = Vec::new();
    for rule in ordered_rules {
        let identified: Vec<usize> = (0..newest_first.len())
            .filter(|&i| rule.selection.selects(newest_first[i]))
            .collect();
        let marked: Vec<usize> = match rule.selection.count {
            Count::ImageCountMoreThan(keep) => {
                let keep = usize::try_from(keep).unwrap_or(usize::MAX);
                identified.iter().copied().skip(keep).collect()
            }
            Count::SinceImagePushed { days } => identified
                .iter()
                .copied()
                .filter(|&i| pushed_more_than_days_ago(newest_first[i], days, now))
                .collect(),
        };
        // Oldest first within the rule, for a stable, readable preview.
        for &i in marked.iter().rev() {
            if !identified_earlier[i] {
                expiries.push(Expiry {
                    digest: newest_first[i].digest.clone(),
                    tags: newest_first[i].tags.clone(),
                    rule_priority: rule.rule_priority,
                });
            }
        }
        for i in identified {
            identified_earlier[i] = true;
        }
    }
    expiries
}

/// "Older than the specified number of days": strictly more than `days` × 24 h before `now`.
fn pushed_more_than_days_ago(image: &Image, days: u32, now: DateTime<Utc>) -> bool {
    TimeDelta::try_days(i64::from(days))
        .is_some_and(|limit| now.signed_duration_since(image.pushed_at) > limit)
}

#[cfg(test)]
mod tests {
    use super::super::model::Action;
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
        }];
        assert!(evaluate(&rules, &images, DateTime::<Utc>::MAX_UTC).is_empty());
    }

    // ---- properties ----

    const TAGS: &[&str] = &["a", "ab", "abc", "b", "ba", "prod-1", "prod-2", "dev"];
    const PREFIXES: &[&str] = &["a", "ab", "b", "prod", "d"];
    const PATTERNS: &[&str] = &["a*", "*b", "a*c", "prod-*", "*", "b?", "d*v"];

    fn images_strategy() -> impl Strategy<Value = Vec<Image>> {
        prop::collection::vec(
            (prop::sample::subsequence(TAGS, 0..=3), 0i64..(20 * 24)),
            0..14,
        )
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (tags, hours))| Image {
                    digest: format!("sha256:{i:02}"),
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                    // Whole hours from a small range, so equal push times happen.
                    pushed_at: now() - TimeDelta::hours(hours / 6 * 6),
                })
                .collect()
        })
    }

    fn count_strategy() -> impl Strategy<Value = Count> {
        prop_oneof![
            (0u32..5).prop_map(Count::ImageCountMoreThan),
            (0u32..21).prop_map(|days| Count::SinceImagePushed { days }),
        ]
    }

    fn selection_strategy() -> impl Strategy<Value = Selection> {
        let lists = prop_oneof![
            prop::sample::subsequence(PREFIXES, 1..=2).prop_map(|p| (p, vec![])),
            prop::sample::subsequence(PATTERNS, 1..=2).prop_map(|p| (vec![], p)),
        ];
        (0u8..4, lists, count_strategy()).prop_map(|(kind, (prefixes, patterns), count)| {
            let (tag_status, prefixes, patterns) = match kind {
                0 => (TagStatus::Untagged, vec![], vec![]),
                1 => (TagStatus::Any, vec![], vec![]),
                _ => (TagStatus::Tagged, prefixes, patterns),
            };
            Selection {
                tag_status,
                tag_prefix_list: prefixes.iter().map(|s| s.to_string()).collect(),
                tag_pattern_list: patterns.iter().map(|s| s.to_string()).collect(),
                count,
            }
        })
    }

    /// Rules with distinct priorities, in random order (not necessarily a valid policy: the
    /// evaluator's properties hold for any rule set with distinct priorities).
    fn rules_strategy() -> impl Strategy<Value = Vec<Rule>> {
        prop::collection::vec((1u32..4, selection_strategy()), 1..5)
            .prop_map(|specs| {
                let mut priority = 0;
                specs
                    .into_iter()
                    .map(|(step, selection)| {
                        priority += step;
                        Rule {
                            rule_priority: priority,
                            description: None,
                            selection,
                            action: Action::Expire,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .prop_shuffle()
    }

    proptest! {
        #[test]
        fn expires_only_images_its_rule_identifies(rules in rules_strategy(), images in images_strategy()) {
            let by_priority: HashMap<u32, &Rule> = rules.iter().map(|r| (r.rule_priority, r)).collect();
            let by_digest: HashMap<&str, &Image> = images.iter().map(|i| (i.digest.as_str(), i)).collect();
            let expiries = evaluate(&rules, &images, now());
            let mut seen = BTreeSet::new();
            for e in &expiries {
                let image = by_digest[e.digest.as_str()];
                prop_assert!(by_priority[&e.rule_priority].selection.selects(image));
                prop_assert!(seen.insert(e.digest.clone()), "expired twice: {}", e.digest);
                // No higher-priority rule identified it.
                for r in &rules {
                    if r.rule_priority < e.rule_priority {
                        prop_assert!(!r.selection.selects(image));
                    }
                }
            }
        }

        #[test]
        fn a_count_rule_keeps_its_newest_n(selection in selection_strategy(), keep in 0u32..5, images in images_strategy()) {
            let rules = [Rule {
                rule_priority: 1,
                description: None,
                selection: Selection { count: Count::ImageCountMoreThan(keep), ..selection },
                action: Action::Expire,
            }];
            let identified = images.iter().filter(|i| rules[0].selection.selects(i)).count();
            let expiries = evaluate(&rules, &images, now());
            prop_assert_eq!(expiries.len(), identified.saturating_sub(keep as usize));
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
        fn a_count_rule_is_idempotent(selection in selection_strategy(), keep in 0u32..5, images in images_strategy()) {
            let rules = [Rule {
                rule_priority: 1,
                description: None,
                selection: Selection { count: Count::ImageCountMoreThan(keep), ..selection },
                action: Action::Expire,
            }];
            let expired: BTreeSet<String> = evaluate(&rules, &images, now()).into_iter().map(|e| e.digest).collect();
            let remaining: Vec<Image> = images.into_iter().filter(|i| !expired.contains(&i.digest)).collect();
            prop_assert!(evaluate(&rules, &remaining, now()).is_empty());
        }
    }
}
