//! The ReplicationConfig kind: rules merged into the registry's one replication configuration.
//!
//! Bounds follow the ECR API model (botocore `data/ecr/2015-09-21/service-2.json`, shapes named
//! on each field) where it is the binding limit, and the documented quotas where those are
//! tighter than the model (rules, destinations).

use kube::CustomResource;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;

/// Cross-region / cross-account replication rules. All ReplicationConfig objects merge, in a
/// stable order (creation time, then name), into the registry's single configuration.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "ReplicationConfig",
    status = "ReplicationConfigStatus",
    shortname = "ecrrepl",
    category = "ecr",
    printcolumn = r#"{"name":"Rules","type":"integer","jsonPath":".status.ruleCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
    .message("registryRef is immutable: create a new ReplicationConfig for the other registry"))]
#[serde(rename_all = "camelCase")]
pub struct ReplicationConfigSpec {
    /// The RegistryTarget whose registry receives this object's rules; the operator's own
    /// registry when unset. Objects naming the same target merge into that registry's one
    /// replication configuration, independently of every other registry. ReplicationConfig is cluster-scoped, written
    /// by cluster admins, so no tenancy grant (RepositoryAccessPolicy) is needed. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,

    /// Replication rules (ECR allows 10 in the whole registry).
    // Shape ReplicationRuleList allows 0..25, but the PutReplicationConfiguration reference and
    // the quota "rules per replication configuration" say 10, which ECR enforces.
    #[schemars(length(min = 1, max = 10))]
    pub rules: Vec<ReplicationRule>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationRule {
    /// Where images go (ECR allows 25 unique destinations in the registry).
    // Shape ReplicationDestinationList allows 100 per rule; the user guide's 25 unique
    // destinations across all rules is the tighter limit (the merge checks it registry-wide).
    #[schemars(length(min = 1, max = 25))]
    pub destinations: Vec<ReplicationDestination>,
    /// Which repositories replicate; all when empty.
    // Shape RepositoryFilterList: 1..100; an empty list here is sent as no member at all.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub repository_filters: Vec<ReplicationFilter>,
    /// Replicate image deletions and tag removals to the destinations as well (shape
    /// ReplicationRule.deleteReplication.enabled; off when omitted, as in ECR).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_replication: bool,
}

#[derive(
    Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDestination {
    /// AWS region, e.g. `eu-west-1`.
    // Shape Region: 2..25 characters of `[0-9a-z-]`.
    #[schemars(length(min = 2, max = 25), regex(pattern = "^[0-9a-z-]{2,25}$"))]
    pub region: String,
    /// The destination account (12 digits).
    // Shape RegistryId: `[0-9]{12}`.
    #[schemars(length(min = 12, max = 12), regex(pattern = "^[0-9]{12}$"))]
    pub registry_id: String,
}

#[derive(
    Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationFilter {
    /// Repository name prefix.
    // Shape RepositoryFilterValue: 2..256 characters, the model's pattern verbatim.
    #[schemars(
        length(min = 2, max = 256),
        regex(pattern = "^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$")
    )]
    pub filter: String,
    #[serde(default)]
    pub filter_type: ReplicationFilterType,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicationFilterType {
    #[default]
    PrefixMatch,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationConfigStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_count: Option<i32>,
    /// Index of this object's first rule in the merged registry configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rule_index: Option<i32>,
}
