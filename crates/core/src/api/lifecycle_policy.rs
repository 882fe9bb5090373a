//! The LifecyclePolicy kind: typed ECR lifecycle rules for one Repository.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, LocalObjectReference};

/// Expire images in a Repository by typed, validated rules, with a preview of what would expire.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "LifecyclePolicy",
    namespaced,
    status = "LifecyclePolicyStatus",
    shortname = "ecrlp",
    category = "ecr",
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.repositoryRef.name"}"#,
    printcolumn = r#"{"name":"Rules","type":"integer","jsonPath":".status.ruleCount"}"#,
    printcolumn = r#"{"name":"Would Expire","type":"integer","jsonPath":".status.preview.expiringCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("!self.rules.exists(r, r.selection.tagStatus == 'any') || self.rules.filter(r, r.selection.tagStatus == 'any').all(r, r.rulePriority == self.rules.map(o, o.rulePriority).max())")
        .message("a rule with tagStatus any must have the highest rulePriority")
)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicySpec {
    /// The Repository (same namespace) whose images these rules expire.
    pub repository_ref: LocalObjectReference,
    /// Rules, evaluated by ascending rulePriority; rulePriority is the list's key, so the API
    /// server rejects duplicates.
    #[schemars(length(min = 1, max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["rulePriority"]))]
    pub rules: Vec<LifecycleRule>,
    /// Compute the preview only; do not put the policy into ECR.
    #[serde(default)]
    pub dry_run: bool,
}

/// One lifecycle rule.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRule {
    /// Order of evaluation, lowest first; unique within the policy.
    #[schemars(range(min = 1, max = 999_999))]
    pub rule_priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
    pub selection: LifecycleSelection,
    #[serde(default)]
    pub action: LifecycleAction,
}

/// Which images a rule selects.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.tagStatus != 'tagged' || size(self.tagPrefixList) > 0 || size(self.tagPatternList) > 0")
        .message("tagStatus tagged requires tagPrefixList or tagPatternList"),
    validation = Rule::new("self.tagStatus == 'tagged' || (size(self.tagPrefixList) == 0 && size(self.tagPatternList) == 0)")
        .message("tagPrefixList and tagPatternList are only allowed with tagStatus tagged"),
    validation = Rule::new("size(self.tagPrefixList) == 0 || size(self.tagPatternList) == 0")
        .message("use either tagPrefixList or tagPatternList in one rule, not both"),
    validation = Rule::new("self.countType == 'sinceImagePushed' || !has(self.countUnit)")
        .message("countUnit is only allowed with countType sinceImagePushed"),
    validation = Rule::new("self.countType != 'sinceImagePushed' || has(self.countUnit)")
        .message("countType sinceImagePushed requires countUnit: days")
)]
pub struct LifecycleSelection {
    pub tag_status: LifecycleTagStatus,
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(max = 255)))]
    #[x_kube(validation = Rule::new("self.all(p, size(p) >= 1 && size(p) <= 255)").message("tag prefixes must be 1 to 255 characters"))]
    pub tag_prefix_list: Vec<String>,
    /// Tag patterns with `*` wildcards (at most four per pattern).
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(max = 255)))]
    #[x_kube(
        validation = Rule::new("self.all(p, size(p) >= 1 && size(p) <= 255)").message("tag patterns must be 1 to 255 characters"),
        validation = Rule::new("self.all(p, !p.matches('^([^*]*[*]){5}'))").message("a tag pattern may contain at most four * wildcards")
    )]
    pub tag_pattern_list: Vec<String>,
    pub count_type: LifecycleCountType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_unit: Option<LifecycleCountUnit>,
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub count_number: i32,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleTagStatus {
    #[default]
    Tagged,
    Untagged,
    Any,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleCountType {
    #[default]
    ImageCountMoreThan,
    SinceImagePushed,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleCountUnit {
    #[default]
    Days,
}

/// What a rule does with the images it selects.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleAction {
    #[serde(rename = "type", default)]
    pub type_: LifecycleActionType,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleActionType {
    #[default]
    Expire,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The ECR repository the policy is applied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_name: Option<String>,
    /// The Repository (by name, in this namespace) `repositoryName` was resolved from: when
    /// `spec.repositoryRef` moves away from it, the policy is taken off the old repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_ref_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_count: Option<i32>,
    /// Whether the policy is in ECR (false under dryRun).
    #[serde(default)]
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<LifecyclePreview>,
}

/// Which images the rules would expire now.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePreview {
    /// When the preview was computed (RFC 3339).
    pub evaluated_at: String,
    /// Images in the repository at that time.
    pub image_count: i64,
    /// Images the rules would expire.
    pub expiring_count: i64,
    /// The first images that would expire (capped); see `truncated`.
    #[serde(default)]
    pub images: Vec<PreviewImage>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreviewImage {
    pub digest: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub pushed_at: String,
    pub rule_priority: i32,
}
