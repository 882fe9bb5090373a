//! The LifecyclePolicy kind: typed ECR lifecycle rules for one Repository.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, LocalObjectReference};

/// The CEL rule "a rule with tagStatus any has the highest rulePriority of the rules of its
/// storage class" over the list of rules `list` (shared by every kind that holds lifecycle rules).
pub fn any_rule_last(list: &str) -> String {
    format!(
        "{list}.all(r, r.selection.tagStatus != 'any' || {list}.all(o, o.rulePriority <= r.rulePriority || (has(o.selection.storageClass) ? o.selection.storageClass : 'standard') != (has(r.selection.storageClass) ? r.selection.storageClass : 'standard')))"
    )
}

pub const ANY_RULE_LAST_MESSAGE: &str =
    "a rule with tagStatus any must have the highest rulePriority of the rules of its storageClass";

/// The CEL rule "one rule per storage class selects untagged images" over the list `list`.
pub fn one_untagged_rule(list: &str) -> String {
    format!(
        "{list}.filter(r, r.selection.tagStatus == 'untagged' && has(r.selection.storageClass) && r.selection.storageClass == 'archive').size() <= 1 && {list}.filter(r, r.selection.tagStatus == 'untagged' && !(has(r.selection.storageClass) && r.selection.storageClass == 'archive')).size() <= 1"
    )
}

pub const ONE_UNTAGGED_RULE_MESSAGE: &str =
    "only one rule of a storageClass may select untagged images";

/// Expire images in a Repository, or move them to ECR's archive storage class, by typed, validated
/// rules, with a preview of what would be expired or archived.
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
    printcolumn = r#"{"name":"Would Archive","type":"integer","jsonPath":".status.preview.archivingCount","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
// ECR's evaluation rules hold per storage class ("The set of all rules selecting a specific
// storage class must contain a unique set of prefixes", "Only one rule selecting a specific storage
// class is allowed to select untagged images"), and so does "any must have the highest
// rulePriority": the guide's "Combining archive and expire rules" example has an `any` rule in
// each class. Priorities are unique (the list's key), so `<=` is strict between two rules. The
// unique tag sets are checked by `lifecycle::validate` only: comparing every pair of lists of up
// to 100 tags each is beyond CEL's cost budget.
#[x_kube(
    validation = Rule::new(any_rule_last("self.rules")).message(ANY_RULE_LAST_MESSAGE),
    validation = Rule::new(one_untagged_rule("self.rules")).message(ONE_UNTAGGED_RULE_MESSAGE)
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
///
/// The count types that go with each action, from the ECR User Guide, "Examples of lifecycle
/// policies": "The sinceImagePulled count type must be used with the transition action. It cannot
/// be used with the expire action" and "The sinceImageTransitioned count type must be used with the
/// expire action and the archive storage class".
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.selection.countType != 'sinceImagePulled' || (has(self.action) && has(self.action.type) && self.action.type == 'transition')")
        .message("countType sinceImagePulled must be used with action type transition"),
    validation = Rule::new("!(has(self.action) && has(self.action.type) && self.action.type == 'transition') || self.selection.countType != 'sinceImageTransitioned'")
        .message("countType sinceImageTransitioned must be used with action type expire")
)]
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
    validation = Rule::new("self.countType != 'imageCountMoreThan' || !has(self.countUnit)")
        .message("countUnit is only allowed with countType sinceImagePushed, sinceImagePulled or sinceImageTransitioned"),
    validation = Rule::new("self.countType == 'imageCountMoreThan' || has(self.countUnit)")
        .message("countType sinceImagePushed, sinceImagePulled or sinceImageTransitioned requires countUnit: days"),
    validation = Rule::new("(has(self.storageClass) && self.storageClass == 'archive') == (self.countType == 'sinceImageTransitioned')")
        .message("storageClass archive goes exactly with countType sinceImageTransitioned (the other count types select standard images only)"),
    validation = Rule::new("self.countType != 'sinceImageTransitioned' || self.countNumber >= 90")
        .message("images must stay in the archive at least 90 days: countType sinceImageTransitioned needs countNumber 90 or more")
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
    /// The storage class of the images the rule selects: `standard` (the default) or `archive`
    /// ("Lifecycle policy properties": "When using a countType of imageCountMoreThan,
    /// sinceImagePushed, or sinceImagePulled, the only supported value is standard. When using a
    /// count type of sinceImageTransitioned, this is required, and the only supported value is
    /// archive").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<LifecycleStorageClass>,
    pub count_type: LifecycleCountType,
    /// `days`, required with every count type but `imageCountMoreThan`, refused with it.
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
    /// Days since the last pull (the push, or the restore from the archive, when not pulled
    /// since); only with action `transition`.
    SinceImagePulled,
    /// Days since the image was archived; only with `storageClass: archive` and action `expire`,
    /// and at least 90.
    SinceImageTransitioned,
}

/// ECR's `LifecyclePolicyStorageClass`, as the policy text spells it.
#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleStorageClass {
    #[default]
    Standard,
    Archive,
}

/// ECR's `LifecyclePolicyTargetStorageClass`: `archive` is its only value.
#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleTargetStorageClass {
    #[default]
    Archive,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleCountUnit {
    #[default]
    Days,
}

/// What a rule does with the images it selects: `expire` deletes them, `transition` moves them to
/// `targetStorageClass: archive` (required with `transition`, "only present when the type is
/// TRANSITION": LifecyclePolicyRuleAction in ECR's API model).
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(has(self.type) && self.type == 'transition') == has(self.targetStorageClass)")
        .message("targetStorageClass archive is required with type transition and only allowed with it")
)]
pub struct LifecycleAction {
    #[serde(rename = "type", default)]
    pub type_: LifecycleActionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_storage_class: Option<LifecycleTargetStorageClass>,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleActionType {
    #[default]
    Expire,
    /// Move to the archive storage class (`targetStorageClass: archive`).
    Transition,
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
    /// The RegistryTarget whose registry holds `repositoryName` (the Repository's
    /// `registryRef`); absent for the operator's own registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_count: Option<i32>,
    /// Whether the policy is in ECR (false under dryRun).
    #[serde(default)]
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<LifecyclePreview>,
}

/// Which images the rules would expire, and which they would move to the archive, now.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePreview {
    /// When the preview was computed (RFC 3339).
    pub evaluated_at: String,
    /// Images in the repository at that time.
    pub image_count: i64,
    /// Images the rules would expire.
    pub expiring_count: i64,
    /// Images the rules would move to the archive storage class (`transition` rules).
    #[serde(default)]
    pub archiving_count: i64,
    /// The first images that would be expired or archived (capped; by rule priority, oldest
    /// first within a rule); see `truncated`.
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
    /// What that rule would do to the image: `expire` it or `transition` it to the archive.
    #[serde(default)]
    pub action: LifecycleActionType,
    /// The image's storage class now: `archive` for an archived image (which only an `expire`
    /// rule of `storageClass: archive` can act on).
    #[serde(default)]
    pub storage_class: LifecycleStorageClass,
}
