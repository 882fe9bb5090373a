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
    /// How the identified images are narrowed down to the ones to expire.
    pub count: Count,
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

/// `selection.countType` together with `countNumber` (and `countUnit`, which is always `days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Count {
    /// Keep the newest N identified images, mark the rest.
    ImageCountMoreThan(u32),
    /// Mark identified images pushed more than `days` days ago.
    SinceImagePushed {
        /// Maximum age in days (`countUnit: days`).
        days: u32,
    },
}

impl Count {
    /// The value ECR uses for `countType`.
    pub fn count_type(self) -> &'static str {
        match self {
            Count::ImageCountMoreThan(_) => "imageCountMoreThan",
            Count::SinceImagePushed { .. } => "sinceImagePushed",
        }
    }

    /// The value ECR uses for `countNumber`.
    pub fn count_number(self) -> u32 {
        match self {
            Count::ImageCountMoreThan(n) => n,
            Count::SinceImagePushed { days } => days,
        }
    }
}

/// `action.type`. ECR's newer `transition` (archive) action is not modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Action {
    /// Delete the marked images.
    #[default]
    Expire,
}

impl Action {
    /// The value ECR uses for `action.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Expire => "expire",
        }
    }
}

/// An image in the repository, as far as lifecycle rules care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Manifest digest (`sha256:...`); unique within a repository.
    pub digest: String,
    /// Tags currently pointing at the image; empty for an untagged image.
    pub tags: Vec<String>,
    /// ECR's `imagePushedAt`.
    pub pushed_at: DateTime<Utc>,
}

/// One image the evaluator would expire, and the rule that expires it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    /// Digest of the expired image.
    pub digest: String,
    /// Its tags, for display.
    pub tags: Vec<String>,
    /// `rulePriority` of the rule that expires it.
    pub rule_priority: u32,
}
