//! The RegistryTarget kind: one ECR registry (an account in a region) and how the operator
//! reaches it: with its own identity, or by assuming an IAM role. Namespaced objects name a
//! target in `spec.registryRef`; without one they use the operator's own registry.
//!
//! Cluster-scoped and for cluster admins only: which namespaces may use which target is the
//! RepositoryAccessPolicy's to say (`crate::tenancy`).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;

/// An AWS account id: shape `RegistryId` of the ECR API model.
pub const REGISTRY_ID_PATTERN: &str = "^[0-9]{12}$";
/// An AWS region name: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`,
/// `us-isob-east-1`.
pub const REGION_PATTERN: &str = "^[a-z]{2}(-[a-z0-9]+)*-[0-9]{1,2}$";
/// An IAM role ARN in any partition (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso-b`, ...), path
/// included: IAM's role names and paths take `[\w+=,.@-]` (IAM API reference, Role).
pub const ROLE_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$";

/// An ECR registry the operator manages things in, named by the objects that use it.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "RegistryTarget",
    status = "RegistryTargetStatus",
    shortname = "ecrtarget",
    category = "ecr",
    printcolumn = r#"{"name":"Registry","type":"string","jsonPath":".spec.registryId"}"#,
    printcolumn = r#"{"name":"Region","type":"string","jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Role","type":"string","priority":1,"jsonPath":".spec.assumeRole.roleArn"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
// A target that moved to another account or region would leave everything made in the old one
// behind, unowned by any object: both are fixed at creation, like a Repository's name.
#[x_kube(
    validation = Rule::new("self.registryId == oldSelf.registryId").message("registryId is immutable"),
    validation = Rule::new("self.region == oldSelf.region").message("region is immutable"),
    // ECR calls go to the registry of the credentials' account: a role of another account
    // would reach another registry than registryId.
    validation = Rule::new("!has(self.assumeRole) || self.assumeRole.roleArn.contains(':iam::' + self.registryId + ':role/')")
        .message("assumeRole.roleArn must be a role of the account registryId")
)]
#[serde(rename_all = "camelCase")]
pub struct RegistryTargetSpec {
    /// The AWS account id of the registry (12 digits). Immutable.
    #[schemars(length(min = 12, max = 12), regex(pattern = REGISTRY_ID_PATTERN))]
    pub registry_id: String,
    /// The AWS region of the registry, e.g. `eu-west-1`. Immutable.
    #[schemars(length(min = 9, max = 32), regex(pattern = REGION_PATTERN))]
    pub region: String,
    /// The IAM role the operator assumes (STS AssumeRole, from its own identity) to reach the
    /// registry. Unset: the operator's own credentials, which must be of account `registryId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AssumeRole>,
    /// An ECR endpoint to call instead of the region's default (a VPC endpoint, a FIPS
    /// endpoint, a test double).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), regex(pattern = "^https?://[^\\s]+$"))]
    pub endpoint_url: Option<String>,
}

/// The role to assume, with STS AssumeRole's bounds on each member (API reference).
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AssumeRole {
    /// The role's ARN, e.g. `arn:aws:iam::111122223333:role/ecr-operator`.
    #[schemars(length(min = 20, max = 2048), regex(pattern = ROLE_ARN_PATTERN))]
    pub role_arn: String,
    /// The external id the role's trust policy asks for (`sts:ExternalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), regex(pattern = r"^[\w+=,.@:/-]*$"))]
    pub external_id: Option<String>,
    /// The session name CloudTrail shows; `ecr-operator` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), regex(pattern = r"^[\w+=,.@-]*$"))]
    pub session_name: Option<String>,
}

/// What the operator found when it reached the registry.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryTargetStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The account ECR answered for (DescribeRegistry's `registryId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// A reference to a RegistryTarget by name, from a namespaced object.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRef {
    /// The RegistryTarget's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// The session name used when the spec names none.
pub const DEFAULT_SESSION_NAME: &str = "ecr-operator";
