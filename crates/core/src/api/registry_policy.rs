//! The RegistryPolicy kind: statements merged into the registry's one permissions policy
//! (PutRegistryPolicy), which grants other accounts what replication and pull-through cache
//! need of this registry (`ecr:ReplicateImage`, `ecr:CreateRepository`,
//! `ecr:BatchImportUpstreamImage`, ...).
//!
//! A statement is the repository policy's [`PolicyStatement`] (shared, not copied) with the
//! `Resource` a registry policy statement needs: ECR's examples name the repositories, e.g.
//! `arn:aws:ecr:us-west-2:111122223333:repository/*` ("Private registry policy examples",
//! ECR user guide), and a registry policy without one is refused.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;
use super::repository::PolicyStatement;

/// Permissions granted at the registry level. All RegistryPolicy objects merge, oldest first
/// (creation time, then name), into the registry's single policy; statement ids are unique
/// across them.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "RegistryPolicy",
    status = "RegistryPolicyStatus",
    shortname = "ecrregpol",
    category = "ecr",
    printcolumn = r#"{"name":"Statements","type":"integer","jsonPath":".status.statementCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
    .message("registryRef is immutable: create a new RegistryPolicy for the other registry"))]
#[serde(rename_all = "camelCase")]
pub struct RegistryPolicySpec {
    /// The RegistryTarget whose registry receives this object's statements; the operator's own
    /// registry when unset. Objects naming the same target merge into that registry's one
    /// registry policy, independently of every other registry. RegistryPolicy is cluster-scoped, written
    /// by cluster admins, so no tenancy grant (RepositoryAccessPolicy) is needed. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,

    /// The statements; the merged policy (version 2012-10-17) must fit ECR's 10,240 characters.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(validation = Rule::new("self.all(s, !has(s.sid) || self.exists_one(t, has(t.sid) && t.sid == s.sid))").message("statement ids (sid) must be unique"))]
    pub statements: Vec<RegistryPolicyStatement>,
}

/// One statement of the registry policy: a repository policy statement and its resources.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
// Scope V2, the default ("Private registry permissions in Amazon ECR"), allows every ECR action
// and nothing else; the shared statement also admits `*`, which a registry policy may not hold.
#[x_kube(validation = Rule::new("self.actions.all(a, a.startsWith('ecr:'))").message("registry policy actions must be ECR actions (ecr:ReplicateImage, ecr:CreateRepository, ecr:BatchImportUpstreamImage, ecr:*, ...)"))]
pub struct RegistryPolicyStatement {
    #[serde(flatten)]
    pub statement: PolicyStatement,
    /// The repositories the statement covers, as ARNs (`*` wildcards allowed), e.g.
    /// `arn:aws:ecr:us-west-2:111122223333:repository/prod-*`, or `*`.
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(r, r == '*' || r.startsWith('arn:'))").message("resources must be ARNs (arn:aws:ecr:REGION:ACCOUNT:repository/NAME) or *"))]
    pub resources: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryPolicyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// How many statements of the registry policy are this object's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_count: Option<i32>,
    /// Index of this object's first statement in the merged registry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_statement_index: Option<i32>,
}
