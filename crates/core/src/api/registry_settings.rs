//! The RegistrySettings kind: the registry-level switches ECR keeps outside any document of its
//! own, each applied only when the spec sets it:
//!
//! - account settings (PutAccountSetting): the basic scan type version, the registry policy
//!   scope and blob mounting;
//! - managed signing (PutSigningConfiguration): rules that sign pushed images with an AWS Signer
//!   profile, per repository filter;
//! - pull-time update exclusions (RegisterPullTimeUpdateExclusion): IAM principals whose pulls do
//!   not update an image's last-pull time, which lifecycle rules on `sinceImagePulled` count.
//!
//! Shapes, patterns and bounds follow botocore's ECR model (2015-09-21), cited per field; the
//! values PutAccountSetting takes are those its API reference lists ("Valid value for basic scan
//! type: AWS_NATIVE. Valid values for registry policy scope: V2. Valid values for blob mounting:
//! ENABLED or DISABLED"); the 100 exclusions per account are the user guide's quota
//! ("Pull-time update exclusions").

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;
use super::repository::DeletionPolicy;

/// The settings of one registry. ECR has one set per registry, so one object per registry (the
/// own registry, or a RegistryTarget's): the oldest object (creation time, then name) manages
/// it, a younger one for the same registry reports Conflict.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "RegistrySettings",
    plural = "registrysettings",
    status = "RegistrySettingsStatus",
    shortname = "ecrsettings",
    category = "ecr",
    printcolumn = r#"{"name":"Signing rules","type":"integer","jsonPath":".status.signingRuleCount"}"#,
    printcolumn = r#"{"name":"Exclusions","type":"integer","jsonPath":".status.pullTimeUpdateExclusionCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
    .message("registryRef is immutable: create a new RegistrySettings for the other registry"))]
#[serde(rename_all = "camelCase")]
pub struct RegistrySettingsSpec {
    /// The RegistryTarget whose registry these settings are; the operator's own registry when
    /// unset. One object per registry: objects for different targets do not conflict.
    /// RegistrySettings is cluster-scoped, written by cluster admins, so no tenancy grant
    /// (RepositoryAccessPolicy) is needed. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,
    /// Account settings; each is written only when set, and left as it is otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_settings: Option<AccountSettings>,
    /// Managed signing; when set, the registry's whole signing configuration (`rules: []` signs
    /// nothing). When unset, the configuration is not touched (or, if this object wrote it,
    /// deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfiguration>,
    /// IAM roles and users whose pulls leave an image's last-pull time unchanged (shape
    /// PrincipalArn). Exclusions registered outside ecr-operator are kept, never removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 100),
        inner(
            length(max = 200),
            regex(
                pattern = r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[\w+=,.@-]+(/[\w+=,.@-]+)*$"
            )
        )
    )]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub pull_time_update_exclusions: Option<Vec<String>>,
    /// On deletion of this object: Retain (the default) leaves everything in ECR; Delete deletes
    /// the signing configuration this object wrote and deregisters the exclusions it registered.
    /// Account settings always stay: ECR has no "unset".
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Account settings (PutAccountSetting), named as ECR names them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountSettings {
    /// BASIC_SCAN_TYPE_VERSION: AWS_NATIVE, the only value PutAccountSetting takes (Clair is
    /// retired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_scan_type_version: Option<BasicScanTypeVersion>,
    /// REGISTRY_POLICY_SCOPE: V2, the only value PutAccountSetting takes (ECR reads V1 on
    /// registries that never moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_policy_scope: Option<RegistryPolicyScope>,
    /// BLOB_MOUNTING: ENABLED or DISABLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_mounting: Option<BlobMounting>,
}

#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum BasicScanTypeVersion {
    #[serde(rename = "AWS_NATIVE")]
    AwsNative,
}

#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum RegistryPolicyScope {
    V2,
}

#[derive(
    Clone, Copy, Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum BlobMounting {
    Enabled,
    Disabled,
}

impl AccountSettings {
    /// The settings the spec sets, as ECR's (name, value) pairs.
    pub fn declared(&self) -> Vec<(&'static str, &'static str)> {
        let scan = self.basic_scan_type_version.map(|v| match v {
            BasicScanTypeVersion::AwsNative => "AWS_NATIVE",
        });
        let scope = self.registry_policy_scope.map(|v| match v {
            RegistryPolicyScope::V2 => "V2",
        });
        let mounting = self.blob_mounting.map(|v| match v {
            BlobMounting::Enabled => "ENABLED",
            BlobMounting::Disabled => "DISABLED",
        });
        [
            ("BASIC_SCAN_TYPE_VERSION", scan),
            ("REGISTRY_POLICY_SCOPE", scope),
            ("BLOB_MOUNTING", mounting),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }
}

/// The registry's signing configuration (shape SigningConfiguration).
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigningConfiguration {
    /// Shape SigningRuleList: 0..10 rules.
    #[serde(default)]
    #[schemars(length(max = 10))]
    pub rules: Vec<SigningRule>,
}

/// One signing rule (shape SigningRule).
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigningRule {
    /// The AWS Signer signing profile (shape SigningProfileArn), e.g.
    /// `arn:aws:signer:us-east-1:111122223333:/signing-profiles/MyProfile`.
    #[schemars(
        length(max = 200),
        regex(
            pattern = r"^arn:aws(-[a-z]+)*:signer:[a-z0-9-]+:[0-9]{12}:\/signing-profiles\/[a-zA-Z0-9_]{2,}$"
        )
    )]
    pub signing_profile_arn: String,
    /// Repositories whose pushed images this rule signs; none means every repository (shape
    /// SigningRepositoryFilterList: 1..100 when present).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub repository_filters: Vec<SigningRepositoryFilter>,
}

/// A repository filter of a signing rule (shape SigningRepositoryFilter).
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigningRepositoryFilter {
    /// Repository names, `*` matching any sequence (shape SigningRepositoryFilterValue), e.g.
    /// `myapp/*`, `*/production`, `*prod*`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^(?:[a-z0-9*]+(?:[._-][a-z0-9*]+)*/)*[a-z0-9*]+(?:[._-][a-z0-9*]+)*$")
    )]
    pub filter: String,
    /// WILDCARD_MATCH, the only type ECR has (shape SigningRepositoryFilterType).
    #[serde(default)]
    pub filter_type: SigningFilterType,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
pub enum SigningFilterType {
    #[default]
    #[serde(rename = "WILDCARD_MATCH")]
    WildcardMatch,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySettingsStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The account settings this object sets, as ECR last reported them (name → value).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub account_settings: std::collections::BTreeMap<String, String>,
    /// True once the registry's signing configuration is this object's: it wrote it, or found
    /// exactly what its spec says. Only then is it rewritten on drift, or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_owned: Option<bool>,
    /// Rules in the registry's signing configuration, when this object manages it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_rule_count: Option<i32>,
    /// The exclusions this object registered itself (the only ones it ever deregisters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registered_exclusions: Vec<String>,
    /// How many of the spec's exclusions ECR holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_time_update_exclusion_count: Option<i32>,
}

impl RegistrySettings {
    /// The RegistryTarget this object's settings go to, `None` for the own registry.
    pub fn target(&self) -> Option<&str> {
        self.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }
}
