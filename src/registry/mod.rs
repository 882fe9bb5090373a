//! The ECR boundary: what the operator needs of ECR, in its own types.
//!
//! Controllers see only the [`Registry`] trait and [`RegistryError`] classes. The one
//! implementation, [`EcrRegistry`], uses aws-sdk-ecr (and aws-sdk-secretsmanager for the
//! credentials of pull-through cache rules); tests run it against moto.

mod ecr;
pub mod ecr_public;
mod error;
pub mod fence;
pub mod scan_events;
mod stats;
pub mod targets;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;

pub use ecr::{EcrRegistry, RegistryConfig};
pub use ecr_public::{
    EcrPublic, NewPublicRepository, PublicCatalog, PublicCatalogInfo, PublicRegistry,
    PublicRepositoryInfo,
};
pub use error::{ErrorClass, RegistryError};
pub use scan_events::{ScanEvent, ScanEventQueue};
pub use stats::{CallStats, WRITE_OPERATIONS};
pub use targets::{TargetClient, TargetError, TargetPool};

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// A repository as ECR describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryInfo {
    pub name: String,
    pub arn: String,
    pub uri: String,
    pub registry_id: String,
    pub created_at: Option<Timestamp>,
    /// MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION.
    pub tag_mutability: String,
    /// The WILDCARD filters of the tags exempt from `tag_mutability`, as ECR lists them (empty
    /// without an *_WITH_EXCLUSION mode).
    pub tag_mutability_exclusions: Vec<String>,
    pub scan_on_push: bool,
    /// AES256, KMS, KMS_DSSE.
    pub encryption_type: String,
    pub kms_key: Option<String>,
}

/// Everything CreateRepository takes in one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRepository {
    pub name: String,
    pub tag_mutability: String,
    /// WILDCARD exclusion filters; sent only when not empty (ECR refuses them with MUTABLE and
    /// IMMUTABLE, and requires 1 to 5 with the *_WITH_EXCLUSION modes).
    pub tag_mutability_exclusions: Vec<String>,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// An image in a repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Option<Timestamp>,
    pub size_bytes: Option<i64>,
    /// The last scan's status (`imageScanStatus`), `None` when the image was never scanned.
    pub scan_status: Option<String>,
    /// When the last complete scan finished (`imageScanFindingsSummary`).
    pub scan_completed_at: Option<Timestamp>,
    /// `imageStatus`: `ACTIVE`, `ARCHIVED` or `ACTIVATING` (being restored from the archive);
    /// `None` when ECR does not say, which is an active image.
    pub status: Option<String>,
    /// `lastRecordedPullTime`: the last pull, `None` for an image never pulled.
    pub last_pulled_at: Option<Timestamp>,
    /// `lastArchivedAt`: when the image was last moved to the archive storage class.
    pub last_archived_at: Option<Timestamp>,
    /// `lastActivatedAt`: when the image was last restored from the archive.
    pub last_activated_at: Option<Timestamp>,
}

/// The registry's replication configuration (DescribeRegistry / PutReplicationConfiguration),
/// in the order ECR holds it. No rules means replication is off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationSettings {
    pub rules: Vec<ReplicationRuleInfo>,
}

/// One rule of the registry's managed signing configuration: the AWS Signer profile and the
/// WILDCARD_MATCH repository filters it signs (every repository when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SigningRuleInfo {
    pub profile_arn: String,
    pub repository_filters: Vec<String>,
}

/// One replication rule: destinations and PREFIX_MATCH repository filters (all repositories
/// when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationRuleInfo {
    /// (region, registryId) pairs.
    pub destinations: Vec<(String, String)>,
    /// PREFIX_MATCH filters.
    pub filters: Vec<String>,
    /// Image deletions and tag removals replicate too (`deleteReplication.enabled`).
    pub delete_replication: bool,
}

/// The registry scanning configuration (Get/PutRegistryScanningConfiguration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanningSettings {
    /// BASIC or ENHANCED.
    pub scan_type: String,
    pub rules: Vec<ScanningRuleInfo>,
}

impl Default for ScanningSettings {
    /// What a registry holds before anyone configures scanning.
    fn default() -> Self {
        ScanningSettings {
            scan_type: "BASIC".to_string(),
            rules: Vec::new(),
        }
    }
}

/// One registry scanning rule: a frequency and WILDCARD repository filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanningRuleInfo {
    /// SCAN_ON_PUSH, CONTINUOUS_SCAN or MANUAL.
    pub frequency: String,
    pub filters: Vec<String>,
}

/// A pull-through cache rule as ECR describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullThroughCacheRuleInfo {
    pub prefix: String,
    pub upstream_registry_url: String,
    pub registry_id: String,
    /// docker-hub, github-container-registry, ... as ECR inferred it.
    pub upstream_registry: Option<String>,
    pub upstream_repository_prefix: Option<String>,
    pub credential_arn: Option<String>,
    pub custom_role_arn: Option<String>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// Everything CreatePullThroughCacheRule takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPullThroughCacheRule {
    pub prefix: String,
    pub upstream_registry_url: String,
    pub upstream_repository_prefix: Option<String>,
    pub credential_arn: Option<String>,
    pub custom_role_arn: Option<String>,
}

/// A repository creation template (shape RepositoryCreationTemplate): what
/// Create/UpdateRepositoryCreationTemplate send and DescribeRepositoryCreationTemplates returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreationTemplate {
    pub prefix: String,
    pub description: Option<String>,
    /// AES256, KMS, KMS_DSSE.
    pub encryption_type: String,
    pub kms_key: Option<String>,
    /// The tags ECR puts on the repositories it creates (`resourceTags`).
    pub resource_tags: BTreeMap<String, String>,
    pub tag_mutability: String,
    /// WILDCARD exclusion filters (empty without an *_WITH_EXCLUSION mode).
    pub tag_mutability_exclusions: Vec<String>,
    pub repository_policy: Option<String>,
    pub lifecycle_policy: Option<String>,
    /// PULL_THROUGH_CACHE, REPLICATION, CREATE_ON_PUSH.
    pub applied_for: Vec<String>,
    pub custom_role_arn: Option<String>,
}

/// A template as ECR describes it, with its times.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreationTemplateInfo {
    pub template: CreationTemplate,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// A Secrets Manager secret's ARN and current value. The value is a credential: never log it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue {
    pub arn: String,
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("arn", &self.arn)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// One image's scan as DescribeImageScanFindings reports it, all pages merged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanFindings {
    /// ECR's scan status as sent (COMPLETE, IN_PROGRESS, FAILED, ...; unknown states kept raw).
    pub status: String,
    pub description: Option<String>,
    pub completed_at: Option<Timestamp>,
    pub vulnerability_source_updated_at: Option<Timestamp>,
    /// Counts by severity name (CRITICAL, HIGH, ...), as ECR counts all findings.
    pub severity_counts: BTreeMap<String, i64>,
    /// Basic scanning findings.
    pub findings: Vec<ScanFinding>,
    /// Enhanced (Inspector) scanning findings.
    pub enhanced_findings: Vec<ScanFinding>,
}

/// One finding, basic or enhanced, in the fields the operator keeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanFinding {
    /// CVE or finding id.
    pub id: String,
    /// CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNTRIAGED, UNDEFINED (as sent).
    pub severity: String,
    pub uri: Option<String>,
    pub package: Option<String>,
    pub installed_version: Option<String>,
    pub fixed_version: Option<String>,
    pub fix_available: Option<bool>,
    pub score: Option<f64>,
}

/// What the operator needs of ECR.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Every repository in the registry, read in pages of 1000.
    async fn list_repositories(&self) -> Result<Vec<RepositoryInfo>>;
    /// One repository, or `None` when it does not exist.
    async fn describe_repository(&self, name: &str) -> Result<Option<RepositoryInfo>>;
    async fn create_repository(&self, input: &NewRepository) -> Result<RepositoryInfo>;
    /// Sets the mode and its WILDCARD exclusion filters (sent only when not empty).
    async fn put_image_tag_mutability(
        &self,
        name: &str,
        mutability: &str,
        exclusions: &[String],
    ) -> Result<()>;
    async fn put_scan_on_push(&self, name: &str, scan_on_push: bool) -> Result<()>;
    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>>;
    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()>;
    /// The repository policy text, or `None` when the repository has none.
    async fn get_repository_policy(&self, name: &str) -> Result<Option<String>>;
    async fn set_repository_policy(&self, name: &str, policy: &str) -> Result<()>;
    async fn delete_repository_policy(&self, name: &str) -> Result<()>;
    async fn delete_repository(&self, name: &str, force: bool) -> Result<()>;
    /// Every active image in a repository (ECR's default for DescribeImages), read in pages of
    /// 1000.
    async fn list_images(&self, name: &str) -> Result<Vec<ImageInfo>>;
    /// Every image in a repository, archived ones and ones being restored included
    /// (DescribeImages with `filter.imageStatus: ANY`), read in pages of 1000: what lifecycle
    /// rules see.
    async fn list_images_any_status(&self, name: &str) -> Result<Vec<ImageInfo>>;
    /// The digest `tag` points at in `repository` (of registry `registry_id`, default ours),
    /// or `None` when the tag or the repository does not exist.
    async fn image_digest(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>>;
    /// The repository's lifecycle policy text, or `None` when it has none.
    async fn get_lifecycle_policy(&self, repository: &str) -> Result<Option<String>>;
    async fn put_lifecycle_policy(&self, repository: &str, text: &str) -> Result<()>;
    /// Removes the policy; a policy (or repository) that is already gone is not an error.
    async fn delete_lifecycle_policy(&self, repository: &str) -> Result<()>;

    /// The registry's replication configuration (DescribeRegistry).
    async fn get_replication(&self) -> Result<ReplicationSettings>;
    async fn put_replication(&self, settings: &ReplicationSettings) -> Result<()>;

    /// The registry scanning configuration.
    async fn get_registry_scanning(&self) -> Result<ScanningSettings>;
    async fn put_registry_scanning(&self, settings: &ScanningSettings) -> Result<()>;

    /// The registry's permissions policy text, or `None` when it has none.
    async fn get_registry_policy(&self) -> Result<Option<String>>;
    async fn put_registry_policy(&self, text: &str) -> Result<()>;
    /// Removes the registry policy; one that is already gone is not an error.
    async fn delete_registry_policy(&self) -> Result<()>;

    /// One account setting's value (GetAccountSetting), e.g. `BLOB_MOUNTING` → `ENABLED`.
    async fn get_account_setting(&self, name: &str) -> Result<String>;
    async fn put_account_setting(&self, name: &str, value: &str) -> Result<()>;
    /// The rules of the registry's signing configuration, or `None` when it has none.
    async fn get_signing_configuration(&self) -> Result<Option<Vec<SigningRuleInfo>>>;
    async fn put_signing_configuration(&self, rules: &[SigningRuleInfo]) -> Result<()>;
    /// Removes the signing configuration; none at all is not an error.
    async fn delete_signing_configuration(&self) -> Result<()>;
    /// Every pull-time update exclusion (principal ARNs, all pages).
    async fn list_pull_time_update_exclusions(&self) -> Result<BTreeSet<String>>;
    async fn register_pull_time_update_exclusion(&self, principal_arn: &str) -> Result<()>;
    /// Removes an exclusion; one that is not registered is not an error.
    async fn deregister_pull_time_update_exclusion(&self, principal_arn: &str) -> Result<()>;
    /// The pull-through cache rule for one prefix, or `None`.
    async fn describe_pull_through_cache_rule(
        &self,
        prefix: &str,
    ) -> Result<Option<PullThroughCacheRuleInfo>>;
    /// Every pull-through cache rule of the registry (all pages).
    async fn list_pull_through_cache_rules(&self) -> Result<Vec<PullThroughCacheRuleInfo>>;
    async fn create_pull_through_cache_rule(
        &self,
        input: &NewPullThroughCacheRule,
    ) -> Result<PullThroughCacheRuleInfo>;
    /// Replaces a rule's credentials (the only part of a rule ECR can change).
    async fn update_pull_through_cache_rule(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
        custom_role_arn: Option<&str>,
    ) -> Result<()>;
    /// Deletes a rule; one that is already gone is not an error.
    async fn delete_pull_through_cache_rule(&self, prefix: &str) -> Result<()>;

    /// The repository creation templates of `prefixes` (every template when empty), all pages
    /// of DescribeRepositoryCreationTemplates.
    async fn describe_creation_templates(
        &self,
        prefixes: &[String],
    ) -> Result<Vec<CreationTemplateInfo>>;
    async fn create_creation_template(
        &self,
        template: &CreationTemplate,
    ) -> Result<CreationTemplateInfo>;
    /// Sets every member of the template: empty values clear description, policies, role
    /// and tags.
    async fn update_creation_template(
        &self,
        template: &CreationTemplate,
    ) -> Result<CreationTemplateInfo>;
    /// Deletes a template; one that is already gone is not an error.
    async fn delete_creation_template(&self, prefix: &str) -> Result<()>;

    /// A Secrets Manager secret's ARN and value, or `None` when it does not exist.
    async fn get_secret(&self, name: &str) -> Result<Option<SecretValue>>;
    /// A secret's tags (DescribeSecret).
    async fn secret_tags(&self, arn: &str) -> Result<BTreeMap<String, String>>;
    /// Creates a secret and returns its ARN.
    async fn create_secret(
        &self,
        name: &str,
        value: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String>;
    async fn put_secret_value(&self, arn: &str, value: &str) -> Result<()>;
    /// Deletes a secret at once (no recovery window, so the name can be reused); one that is
    /// already gone is not an error.
    async fn delete_secret(&self, arn: &str) -> Result<()>;

    /// The images of `repository` (in registry `registry_id`, default ours) with these digests;
    /// digests that do not exist, or a repository that does not, are left out.
    async fn describe_images(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<ImageInfo>>;
    /// The scan findings of one image (every page), or `None` when the image has no scan.
    async fn describe_image_scan_findings(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanFindings>>;
    /// Starts a scan of one image.
    async fn start_image_scan(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digest: &str,
    ) -> Result<()>;

    /// Counts of calls made, by operation and outcome.
    fn stats(&self) -> &CallStats;

    /// Amazon ECR Public in the same account (us-east-1), when this registry has a client for it.
    fn ecr_public(&self) -> Option<&dyn PublicRegistry> {
        None
    }
}
