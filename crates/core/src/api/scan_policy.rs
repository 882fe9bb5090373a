//! The ScanPolicy kind: registry scanning configuration and what the admission webhook enforces.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;

/// The condition the operator's webhook probe writes on every ScanPolicy: `True` when the API
/// server reaches the admission webhook, `False` when it does not (skipped under
/// `failurePolicy: Ignore`, or failing under `Fail`), `Unknown` when the probe could not tell.
pub const WEBHOOK_REACHABLE: &str = "WebhookReachable";

/// Registry scanning (merged across ScanPolicy objects that agree on scanType) and the admission
/// policy applied to pods in the namespaces this object selects.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "ScanPolicy",
    status = "ScanPolicyStatus",
    shortname = "ecrscan",
    category = "ecr",
    printcolumn = r#"{"name":"Scan Type","type":"string","jsonPath":".spec.scanType"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.enforcement.mode"}"#,
    printcolumn = r#"{"name":"Threshold","type":"string","jsonPath":".spec.enforcement.severityThreshold"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Webhook","type":"string","description":"WebhookReachable: whether the API server reaches the admission webhook (the operator's dry-run probe)","jsonPath":".status.conditions[?(@.type==\"WebhookReachable\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.scanType == 'ENHANCED' || self.rules.all(r, r.scanFrequency != 'CONTINUOUS_SCAN')")
    .message("CONTINUOUS_SCAN requires scanType ENHANCED"),
    validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
    .message("registryRef is immutable: create a new ScanPolicy for the other registry"))]
#[serde(rename_all = "camelCase")]
pub struct ScanPolicySpec {
    /// The RegistryTarget whose registry receives this object's registry scanning rules (the enforcement applies to pods, wherever their images are); the operator's own
    /// registry when unset. Objects naming the same target merge into that registry's one
    /// registry scanning configuration, independently of every other registry. ScanPolicy is cluster-scoped, written
    /// by cluster admins, so no tenancy grant (RepositoryAccessPolicy) is needed. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,

    /// BASIC (ECR's own scanner) or ENHANCED (Amazon Inspector).
    #[serde(default)]
    pub scan_type: ScanType,
    /// Registry scanning rules (ECR allows 2: one per frequency).
    #[serde(default)]
    #[schemars(length(max = 2))]
    pub rules: Vec<ScanRule>,
    /// What the admission webhook enforces for pods in the selected namespaces.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// ECR registries (account ids), besides those of the Ready Repositories the operator
    /// manages, whose images get scan reports (and scans) when pods run them. A pod's image from
    /// any other registry makes the operator call nothing: pods must not make it read or scan
    /// in every account its IAM role reaches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(length(min = 12, max = 12), regex(pattern = "^[0-9]{12}$"))
    )]
    pub registry_ids: Vec<String>,
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanType {
    #[default]
    Basic,
    Enhanced,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScanRule {
    pub scan_frequency: ScanFrequency,
    /// Repositories the rule applies to (`*` wildcards), at most 100.
    #[schemars(length(min = 1, max = 100))]
    pub repository_filters: Vec<ScanFilter>,
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanFrequency {
    #[default]
    ScanOnPush,
    ContinuousScan,
    Manual,
}

#[derive(
    Clone,
    Debug,
    Default,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "camelCase")]
pub struct ScanFilter {
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = "^[a-z0-9*](?:[._/*-]?[a-z0-9*]+)*$")
    )]
    pub filter: String,
    #[serde(default)]
    pub filter_type: ScanFilterType,
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanFilterType {
    #[default]
    Wildcard,
}

/// The admission policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Enforcement {
    /// enforce denies, warn admits with a warning, audit admits and records.
    #[serde(default)]
    pub mode: EnforcementMode,
    /// Findings at or above this severity count against an image.
    #[serde(default)]
    pub severity_threshold: Severity,
    /// Namespaces this policy applies to (all when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::label_selector_schema")]
    pub namespace_selector: Option<LabelSelector>,
    /// Namespaces never checked.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63)))]
    pub exempt_namespaces: Vec<String>,
    /// Image reference patterns (`*` wildcard) never checked, e.g. `123456789012.dkr.ecr.*.amazonaws.com/base/*`.
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(min = 1, max = 1024)))]
    pub exempt_images: Vec<String>,
    /// Findings accepted until they expire.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub allowlist: Vec<AllowlistEntry>,
    /// What to do with an ECR image that has no completed scan.
    #[serde(default)]
    pub unscanned: UnscannedAction,
    /// Reject scans older than this many days (none when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub max_scan_age_days: Option<i32>,
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "camelCase")]
pub enum EnforcementMode {
    #[default]
    Enforce,
    Warn,
    Audit,
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    #[default]
    Critical,
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "camelCase")]
pub enum UnscannedAction {
    #[default]
    Allow,
    Warn,
    Deny,
}

/// An accepted finding.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AllowlistEntry {
    /// The finding id, e.g. `CVE-2024-3094`.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Why it is accepted (shown in audit records).
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// When the acceptance ends (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$')").message("expires must be an RFC 3339 date-time, e.g. 2026-12-31T00:00:00Z"))]
    pub expires: Option<String>,
    /// Limit the entry to images matching these patterns (all images when empty).
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 1, max = 1024)))]
    pub images: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScanPolicyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Scanning rules of this object in the registry configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_rules: Option<i32>,
}
