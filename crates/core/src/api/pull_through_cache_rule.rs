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
    validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
        .message("registryRef is immutable: create a new PullThroughCacheRule for the other registry"),
    validation = Rule::new("!(has(self.credentialArn) && has(self.credentialsSecretRef))")
        .message("set credentialArn or credentialsSecretRef, not both"),
    validation = Rule::new("self.ecrRepositoryPrefix != 'ROOT' || !has(self.upstreamRepositoryPrefix) || self.upstreamRepositoryPrefix == 'ROOT'")
        .message("upstreamRepositoryPrefix can only be set when ecrRepositoryPrefix is not ROOT")
)]
#[serde(rename_all = "camelCase")]
// Field bounds are those of CreatePullThroughCacheRuleRequest in the ECR API model (botocore
// `data/ecr/2015-09-21/service-2.json`, shapes named on each field), so the API server refuses
// exactly what ECR would refuse. What the model cannot say (which upstreams need credentials,
// which fields only an ECR upstream takes) is checked by the controller before any call.
pub struct PullThroughCacheRuleSpec {
    /// The RegistryTarget whose registry holds the rule (and the mirrored credentials secret);
    /// the operator's own registry when unset. One object per prefix and registry: the same
    /// prefix in another registry is another rule. PullThroughCacheRule is cluster-scoped,
    /// written by cluster admins, so no tenancy grant (RepositoryAccessPolicy) is needed.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,
    /// The ECR repository prefix for cached images (2 to 30 characters), or `ROOT`. Immutable.
    /// ECR assumes a trailing `/` (`hub` and `hub/` are the same prefix).
    // Shape PullThroughCacheRuleRepositoryPrefix: 2..30 characters, the model's pattern verbatim
    // (separators `.`, `_`, `__` and runs of `-`, so `a__b` and `web--x` are prefixes).
    #[schemars(
        length(min = 2, max = 30),
        regex(
            pattern = r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$"
        )
    )]
    pub ecr_repository_prefix: String,
    /// Upstream registry URL, e.g. `registry-1.docker.io`, `ghcr.io`, `quay.io`, `public.ecr.aws`.
    // Shape Url has no bounds in the model; which URLs ECR supports is checked by the controller
    // (ECR answers UnsupportedUpstreamRegistryException). 256 characters hold the longest
    // supported one (`<account>.dkr.ecr.<region>.amazonaws.com.cn`) and bound CEL cost.
    #[schemars(length(min = 1, max = 256))]
    pub upstream_registry_url: String,
    /// Upstream repository prefix (ECR upstreams only, 2 to 30 characters, the same form as
    /// `ecrRepositoryPrefix`); ECR uses `ROOT` when it is not set.
    // Shape PullThroughCacheRuleRepositoryPrefix, as `ecrRepositoryPrefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 30),
        regex(
            pattern = r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$"
        )
    )]
    pub upstream_repository_prefix: Option<String>,
    /// ARN of a Secrets Manager secret named `ecr-pullthroughcache/...` with the upstream
    /// credentials (50 to 612 characters).
    // Shape CredentialArn: 50..612 characters, the model's pattern verbatim (any partition
    // `aws-*`; region and account in one `[a-zA-Z0-9-:]+` part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 50, max = 612),
        regex(
            pattern = r"^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$"
        )
    )]
    pub credential_arn: Option<String>,
    /// A Kubernetes Secret with `username` and `accessToken`, mirrored by the operator into
    /// Secrets Manager as `ecr-pullthroughcache/<name>` and kept in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretReference>,
    /// IAM role ECR assumes to reach an ECR upstream in another account (at most 2048
    /// characters).
    // Shape CustomRoleArn: at most 2048 characters. The model gives no pattern; the member's
    // documentation says it is the ARN "of the IAM role to be assumed by Amazon ECR", so an IAM
    // role ARN is required here, in any partition (`aws(-\w+)*`, as CredentialArn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^arn:aws(-\w+)*:iam::[0-9]{12}:role/.+$")
    )]
    pub custom_role_arn: Option<String>,
    /// Take over a rule that already exists for the prefix and that no status records (one
    /// made in the console, by Terraform, or before `ecr-operator export`): from then on it is
    /// this object's, kept as the spec says and deleted with the object. Without it, such a
    /// rule makes this object report `Conflict`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
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

impl PullThroughCacheRule {
    /// The RegistryTarget this object's rule is in, `None` for the own registry.
    pub fn target(&self) -> Option<&str> {
        self.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }
}
