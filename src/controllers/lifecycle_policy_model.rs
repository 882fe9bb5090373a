//! The LifecyclePolicy spec and ECR's images in the evaluator's model (`lifecycle/`). No I/O.

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;

use crate::api::Repository;
use crate::api::conditions;
use crate::api::lifecycle_policy::{
    LifecycleActionType, LifecycleCountType, LifecyclePolicySpec, LifecyclePolicyStatus,
    LifecyclePreview, LifecycleRule, LifecycleSelection, LifecycleStorageClass, LifecycleTagStatus,
    PreviewImage,
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

/// Which of `images` the rules would expire or archive at `now`: counts, and the first `cap`
/// images (oldest first within each rule, rules by priority), each with its action.
pub fn preview(
    rules: &[Rule],
    images: &[ImageInfo],
    now: DateTime<Utc>,
    cap: usize,
) -> LifecyclePreview {
    let model: Vec<Image> = images.iter().map(|i| to_image(i, now)).collect();
    let outcomes = lifecycle::evaluate(rules, &model, now);
    let image = |digest: &str| model.iter().find(|i| i.digest == digest);
    let archiving = outcomes
        .iter()
        .filter(|e| e.action == lifecycle::Action::Transition)
        .count();
    LifecyclePreview {
        evaluated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        image_count: images.len() as i64,
        expiring_count: (outcomes.len() - archiving) as i64,
        archiving_count: archiving as i64,
        truncated: outcomes.len() > cap,
        images: outcomes
            .iter()
            .take(cap)
            .map(|e| PreviewImage {
                digest: e.digest.clone(),
                tags: e.tags.clone(),
                pushed_at: image(&e.digest)
                    .map(|i| {
                        i.pushed_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    })
                    .unwrap_or_default(),
                rule_priority: i32::try_from(e.rule_priority).unwrap_or(i32::MAX),
                action: match e.action {
                    lifecycle::Action::Expire => LifecycleActionType::Expire,
                    lifecycle::Action::Transition => LifecycleActionType::Transition,
                },
                storage_class: match image(&e.digest).map(|i| i.storage_class) {
                    Some(StorageClass::Archive) => LifecycleStorageClass::Archive,
                    _ => LifecycleStorageClass::Standard,
                },
            })
            .collect(),
    }
}

/// Keeps the previous preview (and its time) when nothing in it changed, so a resync of an
/// unchanged repository writes no status.
pub(super) fn settle_preview(
    previous: Option<&LifecyclePreview>,
    fresh: LifecyclePreview,
) -> LifecyclePreview {
    match previous {
        Some(p)
            if p.image_count == fresh.image_count
                && p.expiring_count == fresh.expiring_count
                && p.archiving_count == fresh.archiving_count
                && p.truncated == fresh.truncated
                && p.images == fresh.images =>
        {
            p.clone()
        }
        _ => fresh,
    }
}

/// Where a repository is: its ECR name and the RegistryTarget holding it (`None`: the
/// operator's own registry). The same name in two registries is two repositories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub repository: String,
    pub target: Option<String>,
}

impl Place {
    /// Where a Repository's repository is, Ready or not.
    pub fn of(repo: &Repository) -> Place {
        Place {
            repository: (repo.status.as_ref())
                .and_then(|s| s.repository_name.clone())
                .unwrap_or_else(|| repo.ecr_name()),
            target: repo.target().map(str::to_string),
        }
    }
}

/// The referenced Repository's place once it is Ready at its generation; otherwise why not
/// (for RepositoryNotReady).
pub fn ready_place(
    repo: Option<&Repository>,
    namespace: &str,
    name: &str,
) -> Result<Place, String> {
    let Some(repo) = repo else {
        return Err(format!(
            "Repository {name} does not exist in namespace {namespace}"
        ));
    };
    let status = repo.status.as_ref();
    let ready = status
        .is_some_and(|s| conditions::is_ready_at(&s.common.conditions, repo.metadata.generation));
    match status.and_then(|s| s.repository_name.clone()) {
        Some(repository) if ready => Ok(Place {
            repository,
            target: repo.target().map(str::to_string),
        }),
        _ => {
            let why = status
                .and_then(|s| conditions::find_ready(&s.common.conditions))
                .map(|c| format!(" ({}: {})", c.reason, c.message))
                .unwrap_or_default();
            Err(format!("waiting for Repository {name} to be Ready{why}"))
        }
    }
}

/// Where the policy this object's status says it applied is, when `spec.repositoryRef` no
/// longer leads there (`now`: where it leads, `None` when the Repository does not exist): it
/// names another Repository, or the same one now in another repository or registry. A deleted
/// Repository does not count (its ECR repository may be retained, policy included).
pub fn place_to_leave(
    status: &LifecyclePolicyStatus,
    ref_name: &str,
    now: Option<&Place>,
) -> Option<Place> {
    let previous = Place {
        repository: status.repository_name.clone().filter(|_| status.applied)?,
        target: status.registry_target.clone(),
    };
    let same_ref = (status.repository_ref_name.as_deref()).is_none_or(|n| n == ref_name);
    let moved = !same_ref || now.is_some_and(|p| *p != previous);
    moved.then_some(previous)
}
