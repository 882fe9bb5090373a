//! The LifecyclePolicy spec and ECR's images in the evaluator's model (`lifecycle/`). No I/O.

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

use crate::api::lifecycle_policy::{
    LifecycleActionType, LifecycleCountType, LifecyclePolicySpec, LifecycleRule,
    LifecycleSelection, LifecycleStorageClass, LifecycleTagStatus,
};
use crate::lifecycle::{self, Count, Image, Rule, Selection, StorageClass, TagStatus};
use crate::registry::ImageInfo;

/// The spec's rules in the evaluator's model.
pub fn to_rules(spec: &LifecyclePolicySpec) -> Vec<Rule> {
    rules_of(&spec.rules)
}

/// Typed lifecycle rules (a LifecyclePolicy's, a RepositoryCreationTemplate's) in the
/// evaluator's model.
pub fn rules_of(rules: &[LifecycleRule]) -> Vec<Rule> {
    rules
        .iter()
        .map(|r| Rule {
            rule_priority: u32::try_from(r.rule_priority).unwrap_or(0),
            description: r.description.clone().filter(|d| !d.is_empty()),
            selection: to_selection(&r.selection),
            // The CRD requires targetStorageClass archive with transition, its only value.
            action: match r.action.type_ {
                LifecycleActionType::Expire => lifecycle::Action::Expire,
                LifecycleActionType::Transition => lifecycle::Action::Transition,
            },
        })
        .collect()
}

fn to_selection(s: &LifecycleSelection) -> Selection {
    let n = u32::try_from(s.count_number).unwrap_or(0);
    Selection {
        tag_status: match s.tag_status {
            LifecycleTagStatus::Tagged => TagStatus::Tagged,
            LifecycleTagStatus::Untagged => TagStatus::Untagged,
            LifecycleTagStatus::Any => TagStatus::Any,
        },
        tag_prefix_list: s.tag_prefix_list.clone(),
        tag_pattern_list: s.tag_pattern_list.clone(),
        storage_class: match s.storage_class {
            None | Some(LifecycleStorageClass::Standard) => StorageClass::Standard,
            Some(LifecycleStorageClass::Archive) => StorageClass::Archive,
        },
        count: match s.count_type {
            LifecycleCountType::ImageCountMoreThan => Count::ImageCountMoreThan(n),
            LifecycleCountType::SinceImagePushed => Count::SinceImagePushed { days: n },
            LifecycleCountType::SinceImagePulled => Count::SinceImagePulled { days: n },
            LifecycleCountType::SinceImageTransitioned => Count::SinceImageTransitioned { days: n },
        },
    }
}

fn chrono_time(t: Option<Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32))
}

/// The image as lifecycle rules see it. An image being restored (`ACTIVATING`) counts as archived:
/// it is not in the standard class yet, and a standard rule that archived it again would be wrong.
pub(super) fn to_image(i: &ImageInfo, now: DateTime<Utc>) -> Image {
    let archived = matches!(i.status.as_deref(), Some("ARCHIVED" | "ACTIVATING"));
    Image {
        digest: i.digest.clone(),
        tags: i.tags.clone(),
        pushed_at: chrono_time(i.pushed_at).unwrap_or(now),
        storage_class: if archived {
            StorageClass::Archive
        } else {
            StorageClass::Standard
        },
        last_pulled_at: chrono_time(i.last_pulled_at),
        last_archived_at: chrono_time(i.last_archived_at),
        last_activated_at: chrono_time(i.last_activated_at),
    }
}
