//! The lifecycle policy model: typed rules, and the images they are evaluated against.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One rule of an ECR lifecycle policy (`rules[]` in ECR's JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Order of application, lowest first. ECR requires it unique within a policy and at least 1.
    pub rule_priority: u32,
    /// Free text kept by ECR; the evaluator ignores it.
    pub description: Option<String>,
    /// Which images the rule identifies, and which of those it marks.
    pub selection: Selection,
    /// What happens to the marked images.
    pub action: Action,
}

/// The `selection` block of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Whether the rule looks at tagged images, untagged images, or all of them.
    pub tag_status: TagStatus,
    /// Tag prefixes (`tagged` only); an image must carry a tag for *every* prefix. Empty = absent.
    pub tag_prefix_list: Vec<String>,
    /// Tag patterns with `*` wildcards (`tagged` only); an image must carry a tag matching *every*
    /// pattern. Empty = absent.
    pub tag_pattern_list: Vec<String>,
    /// `storageClass`: the rule only identifies images of this class ("The rule will only select
    /// images of this storage class", Lifecycle policy properties); `standard` when absent.
    pub storage_class: StorageClass,
    /// How the identified images are narrowed down to the ones to expire or archive.
    pub count: Count,
}

/// `selection.storageClass` of a rule, and the storage class of an image (ECR's
/// `LifecyclePolicyStorageClass`: `STANDARD` | `ARCHIVE`; lower case in the policy text).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StorageClass {
    /// Active images, the ones that can be pulled; the default.
    #[default]
    Standard,
    /// Archived images (DescribeImages `imageStatus: ARCHIVED`); they cannot be pulled.
    Archive,
}

impl StorageClass {
    /// The value ECR uses in the policy text (`standard`, `archive`).
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "standard",
            StorageClass::Archive => "archive",
        }
    }
}

/// `selection.tagStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagStatus {
    /// Images with at least one tag that satisfies the prefix or pattern list.
    Tagged,
    /// Images without any tag.
    Untagged,
    /// Every image.
    Any,
}

impl TagStatus {
    /// The value ECR uses in its JSON (`tagged`, `untagged`, `any`).
    pub fn as_str(self) -> &'static str {
        match self {
            TagStatus::Tagged => "tagged",
            TagStatus::Untagged => "untagged",
            TagStatus::Any => "any",
        }
    }
}

/// `selection.countType` together with `countNumber` (and `countUnit`, which is `days` for every
/// count type but `imageCountMoreThan`, which takes none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Count {
    /// Keep the newest N identified images, mark the rest.
    ImageCountMoreThan(u32),
    /// Mark identified images pushed more than `days` days ago.
    SinceImagePushed {
        /// Maximum age in days (`countUnit: days`).
        days: u32,
    },
    /// Mark identified images last pulled more than `days` days ago (the push time for an image
    /// never pulled, the restore time for one not pulled since it was restored). ECR allows it
    /// only with the `transition` action.
    SinceImagePulled {
        /// Days since the last pull.
        days: u32,
    },
    /// Mark identified archived images archived more than `days` days ago (`last_archived_at`).
    /// ECR allows it only with `storageClass: archive`, the `expire` action and at least 90 days.
    SinceImageTransitioned {
        /// Days since the image was archived.
        days: u32,
    },
}

impl Count {
    /// The value ECR uses for `countType`.
    pub fn count_type(self) -> &'static str {
        match self {
            Count::ImageCountMoreThan(_) => "imageCountMoreThan",
            Count::SinceImagePushed { .. } => "sinceImagePushed",
            Count::SinceImagePulled { .. } => "sinceImagePulled",
            Count::SinceImageTransitioned { .. } => "sinceImageTransitioned",
        }
    }

    /// The value ECR uses for `countNumber`.
    pub fn count_number(self) -> u32 {
        match self {
            Count::ImageCountMoreThan(n) => n,
            Count::SinceImagePushed { days }
            | Count::SinceImagePulled { days }
            | Count::SinceImageTransitioned { days } => days,
        }
    }

    /// Whether the count type takes `countUnit: days` (all but `imageCountMoreThan`).
    pub fn has_unit(self) -> bool {
        !matches!(self, Count::ImageCountMoreThan(_))
    }
}

/// `action.type`, with `targetStorageClass` for `transition` (ECR's `ImageActionType`
/// `EXPIRE` | `TRANSITION`; `LifecyclePolicyTargetStorageClass` has the one value `ARCHIVE`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Delete the marked images.
    #[default]
    Expire,
    /// Move the marked images to the archive storage class (`targetStorageClass: archive`).
    Transition,
}

impl Action {
    /// The value ECR uses for `action.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Expire => "expire",
            Action::Transition => "transition",
        }
    }
}

/// An image in the repository, as far as lifecycle rules care. The times are DescribeImages'
/// `ImageDetail` members of the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Manifest digest (`sha256:...`); unique within a repository.
    pub digest: String,
    /// Tags currently pointing at the image; empty for an untagged image.
    pub tags: Vec<String>,
    /// ECR's `imagePushedAt`.
    pub pushed_at: DateTime<Utc>,
    /// `archive` for an image whose `imageStatus` is `ARCHIVED`.
    #[serde(default)]
    pub storage_class: StorageClass,
    /// `lastRecordedPullTime`; `None` for an image never pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pulled_at: Option<DateTime<Utc>>,
    /// `lastArchivedAt`: when the image was last moved to the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_archived_at: Option<DateTime<Utc>>,
    /// `lastActivatedAt`: when the image was last restored from the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activated_at: Option<DateTime<Utc>>,
}

/// One image the evaluator would expire or archive, and the rule that does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    /// Digest of the image.
    pub digest: String,
    /// Its tags, for display.
    pub tags: Vec<String>,
    /// `rulePriority` of the rule that expires or archives it.
    pub rule_priority: u32,
    /// What that rule does to it: `expire` or `transition` (to the archive).
    pub action: Action,
}
