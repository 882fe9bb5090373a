//! The PublicRepository kind: one Amazon ECR Public repository with its catalog data (what the
//! Amazon ECR Public Gallery shows), repository policy and tags.
//!
//! ECR Public's control plane is in us-east-1 only, so the repository is always in us-east-1 of
//! the account: the operator's own, or that of the RegistryTarget `spec.registryRef` names,
//! whatever region the operator's private registry or the target is in. Shapes, patterns
//! and bounds follow botocore's `ecr-public/2020-10-30/service-2.json`, cited per field.
//! Ownership, adoption and deletion follow the Repository kind's rules exactly: the owner tag
//! `ecr.operator.dev/owner`, adoption only with `adopt: true` and a RepositoryAccessPolicy that
//! allows it, and the same grants decide which names a namespace may manage.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;
use super::repository::{
    DeletionPolicy, Ownership, POLICY_ACTION_RULE, RepositoryPolicy, TAG_RULES,
};
use super::tags::Tags;

/// Shape `RepositoryName` of the ECR Public model:
/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, anchored, 2..205
/// characters. Stricter than private ECR's: one separator character between components.
pub const PUBLIC_REPOSITORY_NAME_PATTERN: &str =
    "^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$";

/// The CEL rule on policy actions of an ECR Public repository policy: ECR Public authorizes
/// its own actions (`ecr-public:PutImage`, ...), never private ECR's.
pub const PUBLIC_POLICY_ACTION_RULE: (&str, &str) = (
    "self.all(a, a == '*' || a.startsWith('ecr-public:'))",
    "ECR Public repository policy actions must be ecr-public:* actions",
);

/// An Amazon ECR Public repository, kept the way this object says.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "PublicRepository",
    namespaced,
    status = "PublicRepositoryStatus",
    shortname = "ecrpublic",
    category = "ecr",
    printcolumn = r#"{"name":"ECR Public Name","type":"string","jsonPath":".spec.repositoryName"}"#,
    printcolumn = r#"{"name":"URI","type":"string","jsonPath":".status.repositoryUri"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
// Moving a PublicRepository to another account would leave the old repository behind, owned by
// an object that no longer looks at it: neither added, removed nor changed after creation.
#[x_kube(validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
    .message("registryRef is immutable: create a new PublicRepository in the other account"))]
#[serde(rename_all = "camelCase")]
pub struct PublicRepositorySpec {
    /// The RegistryTarget whose account holds the repository (in us-east-1, whatever the
    /// target's region: ECR Public is there only, reached with the target's credentials and
    /// endpoint); the operator's own account when unset. The namespace must be granted the
    /// target (RepositoryAccessPolicy `registryTargets`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,

    /// The ECR Public repository name (may contain `/`), shown in the Gallery. Immutable.
    #[schemars(
        length(min = 2, max = 205),
        regex(pattern = PUBLIC_REPOSITORY_NAME_PATTERN)
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("repositoryName is immutable"))]
    pub repository_name: String,

    /// What the Amazon ECR Public Gallery shows. Unset: the catalog data is left as it is (or,
    /// if this object wrote it, cleared). Set: it is the repository's whole catalog data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_data: Option<CatalogData>,

    /// The repository policy (who may push), as typed IAM statements of `ecr-public:` actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = public_policy_actions)]
    pub repository_policy: Option<RepositoryPolicy>,

    /// Tags on the repository. Tags that others set on the repository are left alone.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    // ECR Public's TagKey (1..128) and TagValue (0..256); 49 besides the owner tag: the 50 tags
    // a repository takes (TooManyTagsException's documentation).
    #[schemars(extend("maxProperties" = 49, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    #[x_kube(
        validation = Rule::new(TAG_RULES[0].0).message(TAG_RULES[0].1),
        validation = Rule::new(TAG_RULES[1].0).message(TAG_RULES[1].1),
        validation = Rule::new(TAG_RULES[2].0).message(TAG_RULES[2].1),
        validation = Rule::new(TAG_RULES[3].0).message(TAG_RULES[3].1),
        validation = Rule::new(TAG_RULES[4].0).message(TAG_RULES[4].1)
    )]
    pub tags: Tags,

    /// What happens to the ECR Public repository when this object is deleted: Retain (default)
    /// leaves it, Delete deletes it with its images, only when it carries this object's owner tag.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Take over an existing repository that carries no owner tag, when the namespace's
    /// RepositoryAccessPolicy allows adoption. Without it, an existing repository is Conflict.
    #[serde(default)]
    pub adopt: bool,
}

impl PublicRepository {
    /// The RegistryTarget this object names, `None` for the operator's own account.
    pub fn target(&self) -> Option<&str> {
        self.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }
}

/// Shape `RepositoryCatalogDataInput`. Every member left out is cleared: PutRepositoryCatalogData
/// is sent with the whole catalog data, the logo included.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogData {
    /// A short description, shown in search results (shape RepositoryDescription, at most 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// The longform description, in markdown (shape AboutText, at most 25600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 25600))]
    pub about_text: Option<String>,
    /// How to use the images, in markdown (shape UsageText, at most 25600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 25600))]
    pub usage_text: Option<String>,
    /// The architectures of the images (shape ArchitectureList, at most 50 of 1..50 characters).
    /// The Gallery shows `ARM`, `ARM 64`, `x86` and `x86-64` as badges; others are kept but not
    /// shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(min = 1, max = 50)))]
    pub architectures: Vec<String>,
    /// The operating systems of the images (shape OperatingSystemList, at most 50 of 1..50
    /// characters). The Gallery shows `Linux` and `Windows` as badges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(min = 1, max = 50)))]
    pub operating_systems: Vec<String>,
    /// The logo: image bytes from a ConfigMap or Secret key in this object's namespace, sent
    /// base64-encoded (shape LogoImageBlob, at most 512000 bytes, checked before any call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_image: Option<LogoSource>,
}

/// Shape LogoImageBlob's bound: at most this many bytes of image.
pub const LOGO_MAX_BYTES: usize = 512_000;

/// Where the logo's bytes are: exactly one of a ConfigMap key (`binaryData`, or `data` for
/// text) or a Secret key.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)").message("logoImage needs exactly one of configMapKeyRef and secretKeyRef"))]
pub struct LogoSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
}

/// A key of a ConfigMap or Secret in the object's own namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// The ConfigMap's or Secret's name (a DNS subdomain).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The key (what ConfigMap and Secret keys allow).
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Replaces the private ECR action rule of [`RepositoryPolicy`]'s statements with
/// [`PUBLIC_POLICY_ACTION_RULE`]: the same typed policy, ECR Public's actions.
fn public_policy_actions(schema: &mut schemars::Schema) {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if map.get("rule").and_then(|r| r.as_str()) == Some(POLICY_ACTION_RULE.0) {
                    map.insert("rule".into(), PUBLIC_POLICY_ACTION_RULE.0.into());
                    map.insert("message".into(), PUBLIC_POLICY_ACTION_RULE.1.into());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(map) = schema.as_object_mut() {
        map.values_mut().for_each(walk);
    }
}

/// What the operator observed in ECR Public.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicRepositoryStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_arn: Option<String>,
    /// `public.ecr.aws/<registry alias>/<name>`, what `docker pull` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
    /// When ECR Public created the repository (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// How this object came to own the repository: Created or Adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    /// The logo's URL as ECR Public answered the last logo this object sent. ECR Public never
    /// returns the logo itself: a different URL read later means the logo was changed outside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// The SHA-256 (hex) of the logo bytes last sent: a changed ConfigMap or Secret is sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_sha256: Option<String>,
    /// Tag keys this object set, so that removing one from the spec removes it from ECR Public.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,
    /// Whether the repository policy was written from this object's spec; only then does
    /// removing `spec.repositoryPolicy` delete it.
    #[serde(default)]
    pub policy_managed: bool,
    /// Whether the catalog data was written from this object's spec; only then does removing
    /// `spec.catalogData` clear it.
    #[serde(default)]
    pub catalog_managed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    /// The policy keeps Repository's typed statements, with ECR Public's action rule in place of
    /// private ECR's, and nothing else of the CRD mentions the private rule.
    #[test]
    fn policy_actions_are_ecr_public_actions() {
        let crd = serde_json::to_string(&PublicRepository::crd()).unwrap();
        assert!(crd.contains(PUBLIC_POLICY_ACTION_RULE.0), "{crd}");
        assert!(!crd.contains(POLICY_ACTION_RULE.0));
        let private = serde_json::to_string(&super::super::Repository::crd()).unwrap();
        assert!(private.contains(POLICY_ACTION_RULE.0));
    }
}
