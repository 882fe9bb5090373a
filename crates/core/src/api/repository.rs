//! The Repository kind: one ECR repository.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;
use super::tags::Tags;

/// ECR's repository name pattern: shape `RepositoryName` of the ECR API model (botocore
/// `ecr/2015-09-21/service-2.json`), `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// anchored, with length 2..256. Components are separated by `.`, `_`, `__` or any run of `-`,
/// so `a__b` and `web--frontend` are names; `a___b`, `a-_b` and `-a` are not. The same grammar
/// as the path components of image references (`crate::image::reference`). The CRD's pattern
/// and its `metadata.name` rule use this constant. Written `[._]` rather than `\.` so that it
/// can stand in a CEL string literal as it is.
pub const REPOSITORY_NAME_PATTERN: &str =
    "^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$";

/// The ECR tag that records which object created (or adopted) a repository.
pub const OWNER_TAG: &str = "ecr.operator.dev/owner";

/// The value of [`OWNER_TAG`] for the Repository `namespace/name` of the cluster `cluster_id`.
pub fn owner_value(cluster_id: &str, namespace: &str, name: &str) -> String {
    format!("{cluster_id}/{namespace}/{name}")
}

/// Whether an [`OWNER_TAG`] value names a Repository of `namespace` in the cluster `cluster_id`.
pub fn owned_in_namespace(owner: &str, cluster_id: &str, namespace: &str) -> bool {
    owner
        .strip_prefix(cluster_id)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// The CEL rules (rule, message) on a tag map: ECR's TagResource bounds and characters, and the
/// operator's reserved owner key. Shared by every kind that declares ECR tags.
pub const TAG_RULES: [(&str, &str); 5] = [
    (
        "self.all(k, size(k) >= 1 && size(k) <= 128)",
        "tag keys must be 1 to 128 characters",
    ),
    (
        "self.all(k, !k.startsWith('aws:'))",
        "tag keys must not start with 'aws:' (reserved by AWS)",
    ),
    (
        "self.all(k, k.matches('^[\\\\p{L}\\\\p{Z}\\\\p{N}_.:/=+@-]*$'))",
        "tag keys may contain only letters, digits, spaces and _ . : / = + - @",
    ),
    (
        "self.all(k, self[k].matches('^[\\\\p{L}\\\\p{Z}\\\\p{N}_.:/=+@-]*$'))",
        "tag values may contain only letters, digits, spaces and _ . : / = + - @",
    ),
    (
        "!('ecr.operator.dev/owner' in self)",
        "the tag key ecr.operator.dev/owner is reserved for the operator",
    ),
];

/// The CEL rule (rule, message) on the actions of a repository policy statement: private ECR's
/// actions. (PublicRepository uses the same statements with ECR Public's rule in its place.)
pub const POLICY_ACTION_RULE: (&str, &str) = (
    "self.all(a, a == '*' || a.startsWith('ecr:'))",
    "repository policy actions must be ecr:* actions",
);

/// An Amazon ECR repository, kept the way this object says.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "Repository",
    namespaced,
    status = "RepositoryStatus",
    shortname = "ecrrepo",
    category = "ecr",
    printcolumn = r#"{"name":"ECR Name","type":"string","jsonPath":".status.repositoryName"}"#,
    printcolumn = r#"{"name":"URI","type":"string","jsonPath":".status.repositoryUri"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new(format!("has(self.spec.repositoryName) || (size(self.metadata.name) >= 2 && self.metadata.name.matches('{REPOSITORY_NAME_PATTERN}'))"))
        .message("metadata.name is not a valid ECR repository name: set spec.repositoryName")
)]
#[x_kube(
    validation = Rule::new("has(self.repositoryName) == has(oldSelf.repositoryName) && (!has(self.repositoryName) || self.repositoryName == oldSelf.repositoryName)")
        .message("repositoryName is immutable"),
    validation = Rule::new("has(self.encryption) == has(oldSelf.encryption) && (!has(self.encryption) || self.encryption == oldSelf.encryption)")
        .message("encryption is immutable: ECR cannot change a repository's encryption after creation"),
    // Moving a Repository to another registry would leave the old repository behind, owned by
    // an object that no longer looks at it: neither added, removed nor changed after creation.
    validation = Rule::new("has(self.registryRef) == has(oldSelf.registryRef) && (!has(self.registryRef) || self.registryRef == oldSelf.registryRef)")
        .message("registryRef is immutable: create a new Repository in the other registry"),
    validation = Rule::new("!self.forceDelete || self.deletionPolicy == 'Delete'")
        .message("forceDelete requires deletionPolicy: Delete"),
    // ECR refuses exclusion filters with MUTABLE or IMMUTABLE, and an *_WITH_EXCLUSION mode
    // without them (InvalidParameterException: "ImageTagMutabilityExclusionFilters can't be
    // null when imageTagMutability is set as IMMUTABLE_WITH_EXCLUSION").
    validation = Rule::new("!has(self.imageTagMutabilityExclusionFilters) || self.imageTagMutability in ['IMMUTABLE_WITH_EXCLUSION', 'MUTABLE_WITH_EXCLUSION']")
        .message("imageTagMutabilityExclusionFilters requires imageTagMutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION"),
    validation = Rule::new("!(self.imageTagMutability in ['IMMUTABLE_WITH_EXCLUSION', 'MUTABLE_WITH_EXCLUSION']) || has(self.imageTagMutabilityExclusionFilters)")
        .message("imageTagMutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION requires imageTagMutabilityExclusionFilters (1 to 5 filters)")
)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySpec {
    /// The RegistryTarget whose registry holds the repository; the operator's own registry when
    /// unset. The namespace must be granted the target (RepositoryAccessPolicy
    /// `registryTargets`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("registryRef is immutable"))]
    pub registry_ref: Option<super::registry_target::RegistryRef>,

    /// The ECR repository name (may contain `/`). Defaults to `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 256),
        regex(pattern = REPOSITORY_NAME_PATTERN)
    )]
    pub repository_name: Option<String>,

    /// Whether image tags can be overwritten: MUTABLE, IMMUTABLE, or one of them with the
    /// exceptions `imageTagMutabilityExclusionFilters` lists (IMMUTABLE_WITH_EXCLUSION: every
    /// tag is immutable but those the filters match; MUTABLE_WITH_EXCLUSION: every tag can be
    /// overwritten but those).
    #[serde(default)]
    pub image_tag_mutability: TagMutability,

    /// The tags exempt from `imageTagMutability`: 1 to 5 filters, required with (and only
    /// allowed with) IMMUTABLE_WITH_EXCLUSION and MUTABLE_WITH_EXCLUSION. Compared with ECR as
    /// a set: order and repeats make no difference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 5))]
    pub image_tag_mutability_exclusion_filters: Vec<TagMutabilityExclusionFilter>,

    /// Scan every image when it is pushed (basic scanning).
    #[serde(default)]
    pub scan_on_push: bool,

    /// Encryption at rest. Immutable: ECR fixes it at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,

    /// Tags on the repository. Tags that others set on the repository are left alone.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    // Values bounded by ECR's TagValue (0..256); the bound keeps the CEL rules below within the
    // API server's cost budget (TagResource API reference).
    #[schemars(extend("maxProperties" = 49, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    #[x_kube(
        validation = Rule::new(TAG_RULES[0].0).message(TAG_RULES[0].1),
        validation = Rule::new(TAG_RULES[1].0).message(TAG_RULES[1].1),
        validation = Rule::new(TAG_RULES[2].0).message(TAG_RULES[2].1),
        validation = Rule::new(TAG_RULES[3].0).message(TAG_RULES[3].1),
        validation = Rule::new(TAG_RULES[4].0).message(TAG_RULES[4].1)
    )]
    pub tags: Tags,

    /// The repository policy (who may pull and push), as typed IAM statements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RepositoryPolicy>,

    /// What happens to the ECR repository when this object is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// With `deletionPolicy: Delete`, also delete a repository that still holds images.
    #[serde(default)]
    pub force_delete: bool,

    /// Take over an existing repository that no other owner holds. Without it, an existing
    /// repository makes this object report `Conflict`.
    #[serde(default)]
    pub adopt: bool,
}

/// Shape `ImageTagMutability` of the ECR API model (botocore `ecr/2015-09-21/service-2.json`).
#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagMutability {
    #[default]
    Mutable,
    Immutable,
    ImmutableWithExclusion,
    MutableWithExclusion,
}

impl TagMutability {
    pub fn as_ecr(self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
            TagMutability::ImmutableWithExclusion => "IMMUTABLE_WITH_EXCLUSION",
            TagMutability::MutableWithExclusion => "MUTABLE_WITH_EXCLUSION",
        }
    }

    /// Whether the mode takes exclusion filters (and requires them).
    pub fn has_exclusions(self) -> bool {
        matches!(
            self,
            TagMutability::ImmutableWithExclusion | TagMutability::MutableWithExclusion
        )
    }
}

/// One tag filter exempt from the repository's tag mutability: shape
/// `ImageTagMutabilityExclusionFilter` (both members required; `filterType` defaults here to
/// the model's only type).
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TagMutabilityExclusionFilter {
    /// How `filter` matches tags: WILDCARD, the only type ECR has (`*` matches any run of
    /// characters).
    #[serde(default)]
    pub filter_type: ExclusionFilterType,
    /// A tag or a tag pattern, e.g. `latest` or `dev-*`: shape
    /// `ImageTagMutabilityExclusionFilterValue`, 1 to 128 characters of `0-9a-zA-Z._*-`.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = "^[0-9a-zA-Z._*-]{1,128}$")
    )]
    pub filter: String,
}

/// Shape `ImageTagMutabilityExclusionFilterType`.
#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExclusionFilterType {
    #[default]
    Wildcard,
}

impl ExclusionFilterType {
    pub fn as_ecr(self) -> &'static str {
        match self {
            ExclusionFilterType::Wildcard => "WILDCARD",
        }
    }
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// Encryption at rest.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.kmsKey) || self.encryptionType != 'AES256'").message("kmsKey requires encryptionType KMS or KMS_DSSE"))]
pub struct Encryption {
    /// AES256 (ECR-managed keys), KMS or KMS_DSSE.
    #[serde(default)]
    pub encryption_type: EncryptionType,
    /// KMS key ARN or id; the AWS managed key when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key: Option<String>,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
pub enum EncryptionType {
    #[default]
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "KMS")]
    Kms,
    #[serde(rename = "KMS_DSSE")]
    KmsDsse,
}

impl EncryptionType {
    pub fn as_ecr(self) -> &'static str {
        match self {
            EncryptionType::Aes256 => "AES256",
            EncryptionType::Kms => "KMS",
            EncryptionType::KmsDsse => "KMS_DSSE",
        }
    }
}

/// An IAM resource policy for the repository.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicy {
    /// Policy language version, `2012-10-17` when omitted. (No schema default: YAML tools read
    /// an unquoted `2012-10-17` as a timestamp.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10), regex(pattern = "^(2012-10-17|2008-10-17)$"))]
    pub version: Option<String>,
    /// The statements.
    #[schemars(length(min = 1, max = 100))]
    pub statements: Vec<PolicyStatement>,
}

/// One IAM policy statement.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.actions) > 0").message("a statement needs at least one action"))]
pub struct PolicyStatement {
    /// Statement id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Za-z0-9]*$"), length(max = 100))]
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// Who the statement applies to.
    pub principals: Principals,
    /// ECR actions, e.g. `ecr:BatchGetImage`; `ecr:*` allowed.
    #[schemars(length(max = 100), inner(length(min = 1, max = 128)))]
    #[x_kube(validation = Rule::new(POLICY_ACTION_RULE.0).message(POLICY_ACTION_RULE.1))]
    pub actions: Vec<String>,
    /// IAM conditions: operator -> key -> values, e.g. `StringEquals: {aws:PrincipalOrgID: [o-123]}`.
    /// Bounded generously: the whole policy must fit ECR's 10,240 characters anyway.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32, "additionalProperties" = {
        "type": "object", "maxProperties": 32,
        "additionalProperties": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 2048}}
    }))]
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(
    Clone, Copy, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

/// Principals of a statement; at least one list must be non-empty.
#[derive(Clone, Debug, Default, Deserialize, Serialize, KubeSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.aws) + size(self.service) > 0").message("a statement needs at least one principal (aws or service)"))]
pub struct Principals {
    /// AWS account ids, account root ARNs, role or user ARNs, or `*`.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 1, max = 2048)))]
    pub aws: Vec<String>,
    /// AWS service principals, e.g. `lambda.amazonaws.com`.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 1, max = 256)))]
    pub service: Vec<String>,
}

/// What the operator observed in ECR.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The ECR repository name in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_arn: Option<String>,
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`, what `docker push` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
    /// When ECR created the repository (RFC 3339). Together with the ARN it identifies the
    /// repository this object owns, so a repository deleted and re-created by someone else
    /// under the same name is not mistaken for ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// How this object came to own the repository: Created or Adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    /// Tag keys this object set, so that removing one from the spec removes it from ECR while
    /// tags set by others are left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,
    /// Whether the repository policy in ECR was written from this object's spec; only then does
    /// removing `spec.policy` delete it.
    #[serde(default)]
    pub policy_managed: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub enum Ownership {
    Created,
    Adopted,
}

impl Repository {
    /// The RegistryTarget this object names, `None` for the operator's own registry.
    pub fn target(&self) -> Option<&str> {
        self.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }

    /// The ECR repository name this object targets.
    pub fn ecr_name(&self) -> String {
        self.spec
            .repository_name
            .clone()
            .unwrap_or_else(|| self.metadata.name.clone().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modes and filters read and write as ECR's API spells them; `filterType` may be left
    /// out for the model's only type.
    #[test]
    fn tag_mutability_in_ecr_spelling() {
        let spec: RepositorySpec = serde_json::from_value(serde_json::json!({
            "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": [
                {"filter": "release-*"},
                {"filterType": "WILDCARD", "filter": "v*"}
            ]
        }))
        .unwrap();
        assert_eq!(
            spec.image_tag_mutability,
            TagMutability::MutableWithExclusion
        );
        assert!(
            spec.image_tag_mutability_exclusion_filters
                .iter()
                .all(|f| f.filter_type == ExclusionFilterType::Wildcard)
        );
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            back["imageTagMutabilityExclusionFilters"][0],
            serde_json::json!({"filterType": "WILDCARD", "filter": "release-*"})
        );
        for (mode, ecr, exclusions) in [
            (TagMutability::Mutable, "MUTABLE", false),
            (TagMutability::Immutable, "IMMUTABLE", false),
            (
                TagMutability::ImmutableWithExclusion,
                "IMMUTABLE_WITH_EXCLUSION",
                true,
            ),
            (
                TagMutability::MutableWithExclusion,
                "MUTABLE_WITH_EXCLUSION",
                true,
            ),
        ] {
            assert_eq!(mode.as_ecr(), ecr);
            assert_eq!(serde_json::to_value(mode).unwrap(), ecr);
            assert_eq!(mode.has_exclusions(), exclusions, "{ecr}");
        }
        // No filters: the member is left out, as ECR wants with a plain mode.
        let plain = serde_json::to_value(RepositorySpec::default()).unwrap();
        assert!(plain.get("imageTagMutabilityExclusionFilters").is_none());
    }

    /// The image reference parser (docker's grammar) and ECR's repository names agree on the
    /// separators the current model allows.
    #[test]
    fn image_references_take_the_same_names() {
        for name in ["a__b", "web--frontend", "team/a.b_c---d"] {
            let reference = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1");
            let parsed: crate::image::ImageRef = reference.parse().unwrap();
            assert_eq!(parsed.ecr().map(|e| e.repository), Some(name.to_string()));
        }
        for name in ["a___b", "a-_b", "_ab"] {
            let reference = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1");
            assert!(
                reference.parse::<crate::image::ImageRef>().is_err(),
                "{name}"
            );
        }
    }
}
