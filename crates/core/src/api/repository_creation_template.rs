//! The RepositoryCreationTemplate kind: the settings ECR gives the repositories it creates itself
//! (pull-through cache, replication, create on push) under a prefix.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;
use super::lifecycle_policy::{
    ANY_RULE_LAST_MESSAGE, LifecycleRule, ONE_UNTAGGED_RULE_MESSAGE, any_rule_last,
    one_untagged_rule,
};
use super::repository::{
    DeletionPolicy, Encryption, RepositoryPolicy, TAG_RULES, TagMutability,
    TagMutabilityExclusionFilter,
};

/// Shape `Prefix` of the ECR API model (botocore `ecr/2015-09-21/service-2.json`), verbatim:
/// repository name components, an optional trailing `/`, or `ROOT`.
pub const TEMPLATE_PREFIX_PATTERN: &str =
    r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$";

/// The settings ECR applies to the repositories it creates under a prefix.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "RepositoryCreationTemplate",
    status = "RepositoryCreationTemplateStatus",
    shortname = "ecrrct",
    category = "ecr",
    printcolumn = r#"{"name":"Prefix","type":"string","jsonPath":".spec.prefix"}"#,
    printcolumn = r#"{"name":"Applied For","type":"string","jsonPath":".spec.appliedFor"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("self.prefix == oldSelf.prefix").message("prefix is immutable"),
    validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
        .message("registryRef is immutable: create a new RepositoryCreationTemplate for the other registry"),
    // As for a Repository: ECR refuses filters with MUTABLE or IMMUTABLE and an
    // *_WITH_EXCLUSION mode without them.
    validation = Rule::new("!has(self.imageTagMutabilityExclusionFilters) || self.imageTagMutability in ['IMMUTABLE_WITH_EXCLUSION', 'MUTABLE_WITH_EXCLUSION']")
        .message("imageTagMutabilityExclusionFilters requires imageTagMutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION"),
    validation = Rule::new("!(self.imageTagMutability in ['IMMUTABLE_WITH_EXCLUSION', 'MUTABLE_WITH_EXCLUSION']) || has(self.imageTagMutabilityExclusionFilters)")
        .message("imageTagMutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION requires imageTagMutabilityExclusionFilters (1 to 5 filters)"),
    // Shape KmsKeyForRepositoryCreationTemplate: a key ARN (a Repository also takes key ids).
    validation = Rule::new("!has(self.encryption) || !has(self.encryption.kmsKey) || self.encryption.kmsKey.matches('^arn:aws[a-z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-z0-9-]+$')")
        .message("encryption.kmsKey must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) in a template")
)]
#[serde(rename_all = "camelCase")]
// Bounds are those of CreateRepositoryCreationTemplateRequest in the ECR API model, named on
// each field, so the API server refuses what ECR would refuse.
pub struct RepositoryCreationTemplateSpec {
    /// The RegistryTarget whose registry holds the template; the operator's own registry when
    /// unset. One object per prefix and registry: the same prefix in another registry is
    /// another template. RepositoryCreationTemplate is cluster-scoped, written by cluster
    /// admins, so no tenancy grant (RepositoryAccessPolicy) is needed. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,
    /// The repository namespace prefix the template applies to (`prod` applies to `prod/...`;
    /// ECR assumes a trailing `/`), or `ROOT` for every repository no other template covers.
    /// One object per prefix. Immutable.
    // Shape Prefix: 1..256 characters of the model's pattern.
    #[schemars(length(min = 1, max = 256), regex(pattern = TEMPLATE_PREFIX_PATTERN))]
    pub prefix: String,
    /// Which repository creations the template applies to: PULL_THROUGH_CACHE, REPLICATION,
    /// CREATE_ON_PUSH (each at most once).
    // Shape RCTAppliedForList (required) of RCTAppliedFor.
    #[schemars(length(min = 1, max = 3))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub applied_for: Vec<AppliedFor>,
    /// A description of the template (at most 256 characters).
    // Shape RepositoryTemplateDescription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
    /// Tag mutability of the created repositories, as a Repository's.
    #[serde(default)]
    pub image_tag_mutability: TagMutability,
    /// Tags exempt from `imageTagMutability` (1 to 5), as a Repository's.
    // Shape ImageTagMutabilityExclusionFilters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 5))]
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,
    /// Encryption of the created repositories (AES256 when omitted); `kmsKey` must be a key ARN.
    // Shape EncryptionConfigurationForRepositoryCreationTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Tags ECR puts on the created repositories (not on the template, which has none). Tags
    /// and KMS keys need `customRoleArn` (the ECR user guide, "Creating a repository creation
    /// template").
    // Member resourceTags (TagList): "Tag keys can have a maximum character length of 128
    // characters, and tag values can have a maximum length of 256 characters"; 50 tags at most
    // and the characters of a repository's tags (TagResource), checked by a Repository's rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    #[x_kube(
        validation = Rule::new(TAG_RULES[0].0).message(TAG_RULES[0].1),
        validation = Rule::new(TAG_RULES[1].0).message(TAG_RULES[1].1),
        validation = Rule::new(TAG_RULES[2].0).message(TAG_RULES[2].1),
        validation = Rule::new(TAG_RULES[3].0).message(TAG_RULES[3].1),
        validation = Rule::new(TAG_RULES[4].0).message(TAG_RULES[4].1)
    )]
    pub resource_tags: BTreeMap<String, String>,
    /// The IAM role ECR assumes to create the repositories (same account as the registry);
    /// without it ECR uses its service-linked role.
    // Shape CustomRoleArn: at most 2048 characters; an IAM role ARN, as PullThroughCacheRule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^arn:aws(-\w+)*:iam::[0-9]{12}:role/.+$")
    )]
    pub custom_role_arn: Option<String>,
    /// Lifecycle rules of the created repositories, typed as a LifecyclePolicy's.
    // Shape LifecyclePolicyTextForRepositoryCreationTemplate (0..30720 characters): the rendered
    // text is checked by the controller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["rulePriority"]))]
    #[x_kube(
        validation = Rule::new(any_rule_last("self")).message(ANY_RULE_LAST_MESSAGE),
        validation = Rule::new(one_untagged_rule("self")).message(ONE_UNTAGGED_RULE_MESSAGE)
    )]
    pub lifecycle_rules: Vec<LifecycleRule>,
    /// The repository policy of the created repositories, typed as a Repository's.
    // Shape RepositoryPolicyText (0..10240 characters): checked by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_policy: Option<RepositoryPolicy>,
    /// What happens to the template in ECR when this object is deleted: Retain (the default)
    /// or Delete.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Take over a template that already exists for the prefix and that no status records (one
    /// made in the console, by Terraform, or before `ecr-operator export`): from then on it is
    /// this object's, kept as the spec says. Without it, such a template makes this object
    /// report `Conflict`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

/// Shape `RCTAppliedFor`.
#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppliedFor {
    PullThroughCache,
    Replication,
    CreateOnPush,
}

impl AppliedFor {
    pub fn as_ecr(self) -> &'static str {
        match self {
            AppliedFor::PullThroughCache => "PULL_THROUGH_CACHE",
            AppliedFor::Replication => "REPLICATION",
            AppliedFor::CreateOnPush => "CREATE_ON_PUSH",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCreationTemplateStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// When ECR created the template this object manages (RFC 3339). Templates carry no tags of
    /// their own, so this is the proof of ownership: a template for the prefix with another
    /// creation time was not created by this object and is never written nor deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl RepositoryCreationTemplate {
    /// The RegistryTarget this object's template is in, `None` for the own registry.
    pub fn target(&self) -> Option<&str> {
        self.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }
}
