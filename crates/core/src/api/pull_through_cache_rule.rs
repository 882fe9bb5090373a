//! The PullThroughCacheRule kind: an ECR pull-through cache rule.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;

/// Cache images from an upstream registry under an ECR repository prefix.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "PullThroughCacheRule",
    status = "PullThroughCacheRuleStatus",
    shortname = "ecrptc",
    category = "ecr",
    printcolumn = r#"{"name":"Prefix","type":"string","jsonPath":".spec.ecrRepositoryPrefix"}"#,
    printcolumn = r#"{"name":"Upstream","type":"string","jsonPath":".spec.upstreamRegistryUrl"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("self.ecrRepositoryPrefix == oldSelf.ecrRepositoryPrefix")
        .message("ecrRepositoryPrefix is immutable"),
    validation = Rule::new("!(has(self.credentialArn) && has(self.credentialsSecretRef))")
        .message("set credentialArn or credentialsSecretRef, not both")
)]
#[serde(rename_all = "camelCase")]
pub struct PullThroughCacheRuleSpec {
    /// The ECR repository prefix for cached images, or `ROOT`. Immutable.
    #[schemars(
        length(min = 2, max = 30),
        regex(pattern = "^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*|ROOT)$")
    )]
    pub ecr_repository_prefix: String,
    /// Upstream registry URL, e.g. `registry-1.docker.io`, `ghcr.io`, `quay.io`, `public.ecr.aws`.
    #[schemars(length(min = 1, max = 256))]
    pub upstream_registry_url: String,
    /// Upstream repository prefix (ECR upstreams only); defaults to the ECR prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 30))]
    pub upstream_repository_prefix: Option<String>,
    /// ARN of a Secrets Manager secret named `ecr-pullthroughcache/...` with the upstream credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 50, max = 612),
        regex(
            pattern = "^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:ecr-pullthroughcache/[a-zA-Z0-9/_+=.@-]+$"
        )
    )]
    pub credential_arn: Option<String>,
    /// A Kubernetes Secret with `username` and `accessToken`, mirrored by the operator into
    /// Secrets Manager as `ecr-pullthroughcache/<name>` and kept in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretReference>,
    /// IAM role ECR assumes to reach an ECR upstream in another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = "^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/.+$")
    )]
    pub custom_role_arn: Option<String>,
}

/// A Secret in the operator's namespace (cluster-scoped objects may not reach other namespaces).
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Optional; when set it must be the operator's namespace, the only one it reads Secrets
    /// from. Any other namespace is refused rather than silently ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PullThroughCacheRuleStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
    /// The upstream registry type ECR inferred (docker-hub, github-container-registry, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_registry: Option<String>,
    /// The credential ARN in use (the mirrored secret's ARN for credentialsSecretRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}
