//! The RepositoryAccessPolicy kind: which ECR repositories the namespaced objects of which
//! namespaces may manage, and whether they may adopt existing ones.
//!
//! Cluster-scoped and meant for cluster admins only: tenants never get rights on it. A namespace
//! no policy selects may manage only repositories under `<namespace>/` and adopt none (see
//! `crate::tenancy` for the rules).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;

/// Grants the Repository and LifecyclePolicy objects of some namespaces the ECR repositories
/// whose names match `repositories`.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "RepositoryAccessPolicy",
    status = "RepositoryAccessPolicyStatus",
    shortname = "ecraccess",
    category = "ecr",
    printcolumn = r#"{"name":"Repositories","type":"string","jsonPath":".spec.repositories"}"#,
    printcolumn = r#"{"name":"Adoption","type":"boolean","jsonPath":".spec.allowAdoption"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryAccessPolicySpec {
    /// The namespaces this policy applies to.
    pub namespaces: NamespaceSelection,
    /// ECR repository name patterns the selected namespaces may manage. `*` stands for any run of
    /// characters, `/` included; `{namespace}` stands for the managing object's namespace
    /// (`{namespace}/*`, `shared/{namespace}-*`, `*`).
    #[schemars(
        length(min = 1, max = 100),
        inner(
            length(min = 1, max = 256),
            regex(pattern = r"^([a-z0-9._/*-]|\{namespace\})+$")
        )
    )]
    pub repositories: Vec<String>,
    /// Whether objects of the selected namespaces may adopt an existing ECR repository that
    /// carries no owner tag (`spec.adopt: true`) when its name matches `repositories`.
    #[serde(default)]
    pub allow_adoption: bool,
    /// The RegistryTargets (by name, `*` for every one) whose registries this grant is for.
    /// Empty: the operator's own registry only. To grant both, write two policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(
            length(min = 1, max = 253),
            regex(pattern = "^(\\*|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")
        )
    )]
    pub registry_targets: Vec<String>,
}

/// Namespaces by name, by label selector, or both (a namespace either names is selected).
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.names) && size(self.names) > 0) || has(self.selector)",
    "message": "namespaces needs names or a selector (an empty selector {} selects every namespace)"
}]))]
pub struct NamespaceSelection {
    /// Namespace names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(
            length(min = 1, max = 63),
            regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub names: Vec<String>,
    /// Namespaces whose labels match (Kubernetes label selector semantics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::label_selector_schema")]
    pub selector: Option<LabelSelector>,
}

/// What the operator found in the policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryAccessPolicyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
}
