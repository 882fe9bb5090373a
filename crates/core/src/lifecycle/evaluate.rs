//! The local evaluator: which images a lifecycle policy expires or archives, following ECR's
//! documented evaluation rules ("Lifecycle policy evaluation rules" in the ECR User Guide page
//! "Automate the cleanup of images by using lifecycle policies").

use std::cmp::Ordering;

use chrono::{DateTime, TimeDelta, Utc};

use super::model::{Action, Count, Expiry, Image, Rule, Selection, StorageClass, TagStatus};
use crate::image::wildcard_match;

impl Selection {
    /// Whether the rule *identifies* `image` (ECR's "matches the tagging requirements"), which
    /// needs the image in the rule's storage class ("The rule will only select images of this
    /// storage class", Lifecycle policy properties): a rule of the default `standard` class never
    /// sees an archived image, and only an `archive` rule does.
    ///
    /// With several prefixes or patterns, every entry must match some tag of the image: the docs
    /// say "an image is successfully matched if all of the tags in the `tagPatternList` or
    /// `tagPrefixList` value are matched against any of the image's tags".
    pub fn selects(&self, image: &Image) -> bool {
        image.storage_class == self.storage_class && self.selects_tags(image)
    }

    fn selects_tags(&self, image: &Image) -> bool {
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

/// The time an image's age and order count from: "If an image was archived and then restored at
/// any point in the past, the image's `last_activated_at` is used instead of `pushed_at_time`"
/// (evaluation rules), else its push time.
fn ordering_time(image: &Image) -> DateTime<Utc> {
    image.last_activated_at.unwrap_or(image.pushed_at)
}

/// Orders images oldest first. Equal times fall back to the digest (then the tags), so the
/// outcome never depends on the order in which ECR listed the images.
fn oldest_first(a: &Image, b: &Image) -> Ordering {
    (ordering_time(a), &a.digest, &a.tags).cmp(&(ordering_time(b), &b.digest, &b.tags))
}

/// Which images `rules` expire or archive at `now`, in ECR's semantics:
///
/// - rules apply in `rulePriority` order, lowest first;
/// - each rule *identifies* the images of its storage class that its selection matches, all of
///   them, including images that higher-priority rules already identified ("rules ... can still
///   identify them as if they haven't been expired or archived"), and *marks* some of them: for
///   `imageCountMoreThan` all but the newest N identified images, for the `since*` count types
///   those whose reference time is more than N days before `now` (see [`marks`]);
/// - a rule acts only on the marked images that no higher-priority rule identified ("an image
///   that matches the tagging requirements of a rule cannot be expired or archived by a rule with
///   a lower priority"), so every image is expired or archived by at most one rule ("An image is
///   expired or archived by exactly one or zero rules"), never both;
/// - archived images are identified only by `storageClass: archive` rules, and a `transition`
///   rule never acts on an image that is already archived.
///
/// Newest means the latest push (or restore) time; ties are broken by the larger digest. The
/// result lists the outcomes by rule priority, oldest image first within a rule. The policy is
/// assumed valid (see [`super::validate()`]); for an invalid one the result is still
/// deterministic.
pub fn evaluate(rules: &[Rule], images: &[Image], now: DateTime<Utc>) -> Vec<Expiry> {
    let mut ordered_rules: Vec<&Rule> = rules.iter().collect();
    ordered_rules.sort_by_key(|r| r.rule_priority);

    let mut newest_first: Vec<&Image> = images.iter().collect();
    newest_first.sort_by(|a, b| oldest_first(b, a));

    let mut identified_earlier = vec![false; newest_first.len()];
    let mut outcomes = Vec::new();
    for rule in ordered_rules {
        let identified: Vec<usize> = (0..newest_first.len())
            .filter(|&i| rule.selection.selects(newest_first[i]))
            .collect();
        let marked: Vec<usize> = match rule.selection.count {
            Count::ImageCountMoreThan(keep) => {
                let keep = usize::try_from(keep).unwrap_or(usize::MAX);
                identified.iter().copied().skip(keep).collect()
            }
            count => identified
                .iter()
                .copied()
                .filter(|&i| marks(count, newest_first[i], now))
                .collect(),
        };
        // Oldest first within the rule, for a stable, readable preview.
        for &i in marked.iter().rev() {
            let image = newest_first[i];
            let already_there =
                rule.action == Action::Transition && image.storage_class == StorageClass::Archive;
            if !identified_earlier[i] && !already_there {
                outcomes.push(Expiry {
                    digest: image.digest.clone(),
                    tags: image.tags.clone(),
                    rule_priority: rule.rule_priority,
                    action: rule.action,
                });
            }
        }
        for i in identified {
            identified_earlier[i] = true;
        }
    }
    outcomes
}

/// Whether a `since*` count marks `image` (evaluation rules):
///
/// - `sinceImagePushed`: `pushed_at_time` older than the days;
/// - `sinceImagePulled`: `last_recorded_pulltime` older than the days; "If an image was never
///   pulled, the image's `pushed_at_time` is used instead ... If an image was archived and then
///   restored at any point in the past, but never pulled since the image was restored, the
///   image's `last_activated_at` is used";
/// - `sinceImageTransitioned`: "all archived images whose `last_archived_at` is older than the
///   specified number of days"; an archived image without that time is not marked.
fn marks(count: Count, image: &Image, now: DateTime<Utc>) -> bool {
    let reference = match count {
        Count::ImageCountMoreThan(_) => return false,
        Count::SinceImagePushed { .. } => Some(image.pushed_at),
        Count::SinceImagePulled { .. } => {
            Some(match (image.last_pulled_at, image.last_activated_at) {
                (Some(pulled), Some(activated)) if activated > pulled => activated,
                (Some(pulled), _) => pulled,
                (None, Some(activated)) => activated,
                (None, None) => image.pushed_at,
            })
        }
        Count::SinceImageTransitioned { .. } => match image.storage_class {
            StorageClass::Archive => image.last_archived_at,
            StorageClass::Standard => None,
        },
    };
    reference.is_some_and(|t| more_than_days_ago(t, count.count_number(), now))
}

/// "Older than the specified number of days": strictly more than `days` × 24 h before `now`.
fn more_than_days_ago(t: DateTime<Utc>, days: u32, now: DateTime<Utc>) -> bool {
    TimeDelta::try_days(i64::from(days)).is_some_and(|limit| now.signed_duration_since(t) > limit)
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
