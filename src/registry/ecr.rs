//! The aws-sdk-ecr implementation of [`Registry`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    RegistryScanningRule, ReplicationConfiguration, ReplicationDestination, ReplicationRule,
    RepositoryFilter, RepositoryFilterType, ScanFrequency, ScanType, ScanningRepositoryFilter,
    ScanningRepositoryFilterType, Tag,
};
use k8s_openapi::jiff::Timestamp;

use super::error::HttpStatus;
use super::{
    CallStats, ErrorClass, ImageInfo, NewPullThroughCacheRule, NewRepository,
    PullThroughCacheRuleInfo, Registry, RegistryError, ReplicationRuleInfo, ReplicationSettings,
    RepositoryInfo, Result, ScanFinding, ScanFindings, ScanningRuleInfo, ScanningSettings,
    SecretValue,
};

/// Where and how to reach ECR. Unset fields fall back to the standard AWS environment
/// (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_ECR`, profiles, web identity, ...).
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Attempts per call, including the first (the SDK's standard retry mode).
    pub max_attempts: Option<u32>,
}

/// One attempt that has not answered in this time is abandoned and retried: without it, a
/// connection that hangs holds its reconcile (and the object) forever.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// The whole call, retries included.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// ECR through aws-sdk-ecr, counting every call. Secrets Manager (for mirrored pull-through
/// cache credentials) through a second client, counted alike.
#[derive(Clone, Debug)]
pub struct EcrRegistry {
    client: Client,
    secrets: Option<aws_sdk_secretsmanager::Client>,
    /// For the optional scan event queue, built from the same AWS configuration.
    sqs: Option<aws_sdk_sqs::Client>,
    stats: Arc<CallStats>,
}

/// Page size for list/describe calls: ECR's maximum, so a resync costs as few calls as possible.
const PAGE_SIZE: i32 = 1000;

impl EcrRegistry {
    /// Builds a client from the default credential chain and the given overrides.
    pub async fn from_env(config: &RegistryConfig) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some(attempts) = config.max_attempts {
            loader = loader.retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(attempts),
            );
        }
        loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
        let sdk_config = loader.load().await;
        let mut registry = Self::from_client(Client::new(&sdk_config))
            .with_secrets(aws_sdk_secretsmanager::Client::new(&sdk_config));
        registry.sqs = Some(aws_sdk_sqs::Client::new(&sdk_config));
        registry
    }

    /// The SQS queue of scan events at `queue_url`, read with this registry's AWS
    /// configuration and counted in its stats; `None` for a registry built from a bare client.
    pub fn scan_event_queue(&self, queue_url: &str) -> Option<super::ScanEventQueue> {
        let sqs = self.sqs.clone()?;
        Some(super::ScanEventQueue::new(
            sqs,
            queue_url.to_string(),
            self.stats.clone(),
        ))
    }

    /// The region the ECR client calls.
    pub fn region(&self) -> Option<String> {
        self.client.config().region().map(|r| r.to_string())
    }

    /// An ECR-only registry; Secrets Manager calls fail until [`Self::with_secrets`] adds a client.
    pub fn from_client(client: Client) -> Self {
        EcrRegistry {
            client,
            secrets: None,
            sqs: None,
            stats: Arc::new(CallStats::default()),
        }
    }

    /// Refuses every write (ECR and Secrets Manager) while `fence` is shut: a replica that does
    /// not surely hold the leader lease writes nothing (see [`crate::leader`]). Add it after
    /// [`Self::with_secrets`].
    pub fn with_fence(mut self, fence: crate::leader::Fence) -> Self {
        let ecr = self
            .client
            .config()
            .to_builder()
            .interceptor(super::fence::FenceInterceptor(fence.clone()))
            .build();
        self.client = Client::from_conf(ecr);
        if let Some(secrets) = &self.secrets {
            let conf = secrets
                .config()
                .to_builder()
                .interceptor(super::fence::FenceInterceptor(fence))
                .build();
            self.secrets = Some(aws_sdk_secretsmanager::Client::from_conf(conf));
        }
        self
    }

    /// Adds the Secrets Manager client used for mirrored pull-through cache credentials.
    pub fn with_secrets(mut self, secrets: aws_sdk_secretsmanager::Client) -> Self {
        self.secrets = Some(secrets);
        self
    }

    fn secrets_client(&self, operation: &'static str) -> Result<&aws_sdk_secretsmanager::Client> {
        self.secrets.as_ref().ok_or_else(|| {
            RegistryError::new(
                ErrorClass::Invalid,
                operation,
                "no Secrets Manager client is configured",
            )
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Shared call counters (the same object across clones).
    pub fn shared_stats(&self) -> Arc<CallStats> {
        self.stats.clone()
    }

    /// One DescribeImages call for at most 100 digests.
    async fn describe_image_batch(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<ImageInfo>> {
        let ids = digests
            .iter()
            .map(|d| {
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(d)
                    .build()
            })
            .collect();
        let out = self.outcome(
            "DescribeImages",
            self.client
                .describe_images()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .set_image_ids(Some(ids))
                .send()
                .await,
        )?;
        Ok(out.image_details().iter().filter_map(image_info).collect())
    }

    /// Records the outcome of one call and classifies its error.
    fn outcome<T, E, R>(
        &self,
        operation: &'static str,
        result: std::result::Result<T, SdkError<E, R>>,
    ) -> Result<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HttpStatus + 'static,
    {
        super::error::record_outcome(&self.stats, operation, result)
    }
}

fn image_info(d: &aws_sdk_ecr::types::ImageDetail) -> Option<ImageInfo> {
    Some(ImageInfo {
        digest: d.image_digest()?.to_string(),
        tags: d.image_tags().to_vec(),
        pushed_at: timestamp(d.image_pushed_at()),
        size_bytes: d.image_size_in_bytes(),
        scan_status: d
            .image_scan_status()
            .and_then(|s| s.status())
            .map(|s| s.as_str().to_string()),
        scan_completed_at: timestamp(
            d.image_scan_findings_summary()
                .and_then(|s| s.image_scan_completed_at()),
        ),
    })
}

fn timestamp(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    let t = t?;
    Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
}

fn basic_finding(f: &aws_sdk_ecr::types::ImageScanFinding) -> ScanFinding {
    let attribute = |key: &str| {
        f.attributes()
            .iter()
            .find(|a| a.key() == key)
            .and_then(|a| a.value())
            .map(str::to_string)
    };
    ScanFinding {
        id: f.name().unwrap_or_default().to_string(),
        severity: f
            .severity()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "UNDEFINED".to_string()),
        uri: f.uri().map(str::to_string),
        package: attribute("package_name"),
        installed_version: attribute("package_version"),
        fixed_version: None,
        fix_available: None,
        score: attribute("CVSS3_SCORE")
            .or_else(|| attribute("CVSS2_SCORE"))
            .and_then(|s| s.parse().ok()),
    }
}

fn enhanced_finding(f: &aws_sdk_ecr::types::EnhancedImageScanFinding) -> ScanFinding {
    let details = f.package_vulnerability_details();
    let package = details.and_then(|d| d.vulnerable_packages().first());
    ScanFinding {
        id: details
            .and_then(|d| d.vulnerability_id())
            .or_else(|| f.title())
            .unwrap_or_default()
            .to_string(),
        severity: f.severity().unwrap_or("UNDEFINED").to_string(),
        uri: details.and_then(|d| d.source_url()).map(str::to_string),
        package: package.and_then(|p| p.name()).map(str::to_string),
        installed_version: package.and_then(|p| p.version()).map(str::to_string),
        fixed_version: package
            .and_then(|p| p.fixed_in_version())
            .map(str::to_string),
        fix_available: f.fix_available().map(|s| s.eq_ignore_ascii_case("YES")),
        score: (f.score() > 0.0).then_some(f.score()),
    }
}

fn repository_info(r: &aws_sdk_ecr::types::Repository) -> Option<RepositoryInfo> {
    let encryption = r.encryption_configuration();
    Some(RepositoryInfo {
        name: r.repository_name()?.to_string(),
        arn: r.repository_arn()?.to_string(),
        uri: r.repository_uri().unwrap_or_default().to_string(),
        registry_id: r.registry_id().unwrap_or_default().to_string(),
        created_at: timestamp(r.created_at()),
        tag_mutability: r
            .image_tag_mutability()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "MUTABLE".to_string()),
        scan_on_push: r
            .image_scanning_configuration()
            .map(|c| c.scan_on_push())
            .unwrap_or(false),
        encryption_type: encryption
            .map(|e| e.encryption_type().as_str().to_string())
            .unwrap_or_else(|| "AES256".to_string()),
        kms_key: encryption.and_then(|e| e.kms_key()).map(str::to_string),
    })
}

fn tags_to_ecr(operation: &'static str, tags: &BTreeMap<String, String>) -> Result<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| invalid(operation, e))
        })
        .collect()
}

/// A [`PullThroughCacheRuleInfo`] from any SDK shape with the rule's accessors (the rule
/// itself, and the Create output). `None` without a prefix.
macro_rules! ptc_info {
    ($r:expr, $updated:ident) => {{
        let r = $r;
        r.ecr_repository_prefix()
            .map(|prefix| PullThroughCacheRuleInfo {
                prefix: prefix.to_string(),
                upstream_registry_url: r.upstream_registry_url().unwrap_or_default().to_string(),
                registry_id: r.registry_id().unwrap_or_default().to_string(),
                upstream_registry: r.upstream_registry().map(|u| u.as_str().to_string()),
                upstream_repository_prefix: r.upstream_repository_prefix().map(str::to_string),
                credential_arn: r.credential_arn().map(str::to_string),
                custom_role_arn: r.custom_role_arn().map(str::to_string),
                created_at: timestamp(r.created_at()),
                updated_at: timestamp(r.$updated()),
            })
    }};
}

fn invalid(operation: &'static str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(ErrorClass::Invalid, operation, e.to_string())
}

#[async_trait]
impl Registry for EcrRegistry {
    async fn list_repositories(&self) -> Result<Vec<RepositoryInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.outcome(
                "DescribeRepositories",
                self.client
                    .describe_repositories()
                    .max_results(PAGE_SIZE)
                    .set_next_token(token.take())
                    .send()
                    .await,
            )?;
            out.extend(page.repositories().iter().filter_map(repository_info));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn describe_repository(&self, name: &str) -> Result<Option<RepositoryInfo>> {
        let result = self.outcome(
            "DescribeRepositories",
            self.client
                .describe_repositories()
                .repository_names(name)
                .send()
                .await,
        );
        match result {
            Ok(out) => Ok(out.repositories().iter().find_map(repository_info)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_repository(&self, input: &NewRepository) -> Result<RepositoryInfo> {
        const OP: &str = "CreateRepository";
        let mut encryption = EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::from(input.encryption_type.as_str()));
        if let Some(key) = &input.kms_key {
            encryption = encryption.kms_key(key);
        }
        let out = self.outcome(
            OP,
            self.client
                .create_repository()
                .repository_name(&input.name)
                .image_tag_mutability(ImageTagMutability::from(input.tag_mutability.as_str()))
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(input.scan_on_push)
                        .build(),
                )
                .encryption_configuration(encryption.build().map_err(|e| invalid(OP, e))?)
                .set_tags(Some(tags_to_ecr(OP, &input.tags)?))
                .send()
                .await,
        )?;
        out.repository().and_then(repository_info).ok_or_else(|| {
            RegistryError::new(ErrorClass::Transient, OP, "response had no repository")
        })
    }

    async fn put_image_tag_mutability(&self, name: &str, mutability: &str) -> Result<()> {
        self.outcome(
            "PutImageTagMutability",
            self.client
                .put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(ImageTagMutability::from(mutability))
                .send()
                .await,
        )
        .map(drop)
    }

    async fn put_scan_on_push(&self, name: &str, scan_on_push: bool) -> Result<()> {
        self.outcome(
            "PutImageScanningConfiguration",
            self.client
                .put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(scan_on_push)
                        .build(),
                )
                .send()
                .await,
        )
        .map(drop)
    }

    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let out = self.outcome(
            "ListTagsForResource",
            self.client
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await,
        )?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.outcome(
            "TagResource",
            self.client
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags_to_ecr("TagResource", tags)?))
                .send()
                .await,
        )
        .map(drop)
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.outcome(
            "UntagResource",
            self.client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
                .await,
        )
        .map(drop)
    }

    async fn get_repository_policy(&self, name: &str) -> Result<Option<String>> {
        let result = self.outcome(
            "GetRepositoryPolicy",
            self.client
                .get_repository_policy()
                .repository_name(name)
                .send()
                .await,
        );
        match result {
            Ok(out) => Ok(out.policy_text().map(str::to_string)),
            // RepositoryPolicyNotFoundException: the repository exists but has no policy.
            Err(e)
                if e.class == ErrorClass::NotFound
                    && e.code.as_deref() == Some("RepositoryPolicyNotFoundException") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn set_repository_policy(&self, name: &str, policy: &str) -> Result<()> {
        self.outcome(
            "SetRepositoryPolicy",
            self.client
                .set_repository_policy()
                .repository_name(name)
                .policy_text(policy)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn delete_repository_policy(&self, name: &str) -> Result<()> {
        let result = self.outcome(
            "DeleteRepositoryPolicy",
            self.client
                .delete_repository_policy()
                .repository_name(name)
                .send()
                .await,
        );
        match result {
            Err(e) if e.code.as_deref() == Some("RepositoryPolicyNotFoundException") => Ok(()),
            other => other.map(drop),
        }
    }

    async fn delete_repository(&self, name: &str, force: bool) -> Result<()> {
        self.outcome(
            "DeleteRepository",
            self.client
                .delete_repository()
                .repository_name(name)
                .force(force)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn list_images(&self, name: &str) -> Result<Vec<ImageInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.outcome(
                "DescribeImages",
                self.client
                    .describe_images()
                    .repository_name(name)
                    .max_results(PAGE_SIZE)
                    .set_next_token(token.take())
                    .send()
                    .await,
            )?;
            out.extend(page.image_details().iter().filter_map(image_info));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn describe_images(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<ImageInfo>> {
        let mut out = Vec::new();
        // DescribeImages takes at most 100 image ids, and fails the whole call with
        // ImageNotFoundException when one of them is gone: such a batch is re-read one by one.
        for batch in digests.chunks(100) {
            match self
                .describe_image_batch(registry_id, repository, batch)
                .await
            {
                Ok(found) => out.extend(found),
                Err(e) if e.code.as_deref() == Some("RepositoryNotFoundException") => {
                    return Ok(Vec::new());
                }
                Err(e) if e.class == ErrorClass::NotFound && batch.len() > 1 => {
                    for digest in batch {
                        match self
                            .describe_image_batch(
                                registry_id,
                                repository,
                                std::slice::from_ref(digest),
                            )
                            .await
                        {
                            Ok(found) => out.extend(found),
                            Err(e) if e.class == ErrorClass::NotFound => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.class == ErrorClass::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn describe_image_scan_findings(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanFindings>> {
        let image_id = aws_sdk_ecr::types::ImageIdentifier::builder()
            .image_digest(digest)
            .build();
        let mut out = ScanFindings::default();
        let mut token: Option<String> = None;
        loop {
            let result = self.outcome(
                "DescribeImageScanFindings",
                self.client
                    .describe_image_scan_findings()
                    .set_registry_id(registry_id.map(str::to_string))
                    .repository_name(repository)
                    .image_id(image_id.clone())
                    .max_results(PAGE_SIZE)
                    .set_next_token(token.take())
                    .send()
                    .await,
            );
            let page = match result {
                Ok(page) => page,
                Err(e) if e.code.as_deref() == Some("ScanNotFoundException") => return Ok(None),
                Err(e) => return Err(e),
            };
            if let Some(status) = page.image_scan_status() {
                if let Some(s) = status.status() {
                    out.status = s.as_str().to_string();
                }
                out.description = status.description().map(str::to_string);
            }
            if let Some(f) = page.image_scan_findings() {
                out.completed_at = timestamp(f.image_scan_completed_at()).or(out.completed_at);
                out.vulnerability_source_updated_at =
                    timestamp(f.vulnerability_source_updated_at())
                        .or(out.vulnerability_source_updated_at);
                if let Some(counts) = f.finding_severity_counts() {
                    out.severity_counts = counts
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), i64::from(*v)))
                        .collect();
                }
                out.findings.extend(f.findings().iter().map(basic_finding));
                out.enhanced_findings
                    .extend(f.enhanced_findings().iter().map(enhanced_finding));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(Some(out)),
            }
        }
    }

    async fn start_image_scan(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digest: &str,
    ) -> Result<()> {
        self.outcome(
            "StartImageScan",
            self.client
                .start_image_scan()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_id(
                    aws_sdk_ecr::types::ImageIdentifier::builder()
                        .image_digest(digest)
                        .build(),
                )
                .send()
                .await,
        )
        .map(drop)
    }

    async fn get_lifecycle_policy(&self, repository: &str) -> Result<Option<String>> {
        let result = self.outcome(
            "GetLifecyclePolicy",
            self.client
                .get_lifecycle_policy()
                .repository_name(repository)
                .send()
                .await,
        );
        match result {
            Ok(out) => Ok(out.lifecycle_policy_text().map(str::to_string)),
            Err(e) if e.code.as_deref() == Some("LifecyclePolicyNotFoundException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_lifecycle_policy(&self, repository: &str, text: &str) -> Result<()> {
        self.outcome(
            "PutLifecyclePolicy",
            self.client
                .put_lifecycle_policy()
                .repository_name(repository)
                .lifecycle_policy_text(text)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn delete_lifecycle_policy(&self, repository: &str) -> Result<()> {
        let result = self.outcome(
            "DeleteLifecyclePolicy",
            self.client
                .delete_lifecycle_policy()
                .repository_name(repository)
                .send()
                .await,
        );
        match result {
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    async fn get_replication(&self) -> Result<ReplicationSettings> {
        let out = self.outcome(
            "DescribeRegistry",
            self.client.describe_registry().send().await,
        )?;
        let rules = out
            .replication_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .map(|r| ReplicationRuleInfo {
                        destinations: r
                            .destinations()
                            .iter()
                            .map(|d| (d.region().to_string(), d.registry_id().to_string()))
                            .collect(),
                        filters: r
                            .repository_filters()
                            .iter()
                            .map(|f| f.filter().to_string())
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ReplicationSettings { rules })
    }

    async fn put_replication(&self, settings: &ReplicationSettings) -> Result<()> {
        const OP: &str = "PutReplicationConfiguration";
        let mut rules = Vec::with_capacity(settings.rules.len());
        for rule in &settings.rules {
            let destinations = rule
                .destinations
                .iter()
                .map(|(region, registry_id)| {
                    ReplicationDestination::builder()
                        .region(region)
                        .registry_id(registry_id)
                        .build()
                        .map_err(|e| invalid(OP, e))
                })
                .collect::<Result<Vec<_>>>()?;
            let filters = rule
                .filters
                .iter()
                .map(|f| {
                    RepositoryFilter::builder()
                        .filter(f)
                        .filter_type(RepositoryFilterType::PrefixMatch)
                        .build()
                        .map_err(|e| invalid(OP, e))
                })
                .collect::<Result<Vec<_>>>()?;
            rules.push(
                ReplicationRule::builder()
                    .set_destinations(Some(destinations))
                    .set_repository_filters((!filters.is_empty()).then_some(filters))
                    .build()
                    .map_err(|e| invalid(OP, e))?,
            );
        }
        let config = ReplicationConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| invalid(OP, e))?;
        self.outcome(
            OP,
            self.client
                .put_replication_configuration()
                .replication_configuration(config)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn get_registry_scanning(&self) -> Result<ScanningSettings> {
        let out = self.outcome(
            "GetRegistryScanningConfiguration",
            self.client
                .get_registry_scanning_configuration()
                .send()
                .await,
        )?;
        let Some(config) = out.scanning_configuration() else {
            return Ok(ScanningSettings::default());
        };
        Ok(ScanningSettings {
            scan_type: config
                .scan_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(|| "BASIC".to_string()),
            rules: config
                .rules()
                .iter()
                .map(|r| ScanningRuleInfo {
                    frequency: r.scan_frequency().as_str().to_string(),
                    filters: r
                        .repository_filters()
                        .iter()
                        .map(|f| f.filter().to_string())
                        .collect(),
                })
                .collect(),
        })
    }

    async fn put_registry_scanning(&self, settings: &ScanningSettings) -> Result<()> {
        const OP: &str = "PutRegistryScanningConfiguration";
        let mut rules = Vec::with_capacity(settings.rules.len());
        for rule in &settings.rules {
            let filters = rule
                .filters
                .iter()
                .map(|f| {
                    ScanningRepositoryFilter::builder()
                        .filter(f)
                        .filter_type(ScanningRepositoryFilterType::Wildcard)
                        .build()
                        .map_err(|e| invalid(OP, e))
                })
                .collect::<Result<Vec<_>>>()?;
            rules.push(
                RegistryScanningRule::builder()
                    .scan_frequency(ScanFrequency::from(rule.frequency.as_str()))
                    .set_repository_filters(Some(filters))
                    .build()
                    .map_err(|e| invalid(OP, e))?,
            );
        }
        self.outcome(
            OP,
            self.client
                .put_registry_scanning_configuration()
                .scan_type(ScanType::from(settings.scan_type.as_str()))
                .set_rules(Some(rules))
                .send()
                .await,
        )
        .map(drop)
    }

    async fn describe_pull_through_cache_rule(
        &self,
        prefix: &str,
    ) -> Result<Option<PullThroughCacheRuleInfo>> {
        let result = self.outcome(
            "DescribePullThroughCacheRules",
            self.client
                .describe_pull_through_cache_rules()
                .ecr_repository_prefixes(prefix)
                .send()
                .await,
        );
        match result {
            Ok(out) => Ok(out
                .pull_through_cache_rules()
                .iter()
                .find_map(|r| ptc_info!(r, updated_at))),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_pull_through_cache_rule(
        &self,
        input: &NewPullThroughCacheRule,
    ) -> Result<PullThroughCacheRuleInfo> {
        const OP: &str = "CreatePullThroughCacheRule";
        let out = self.outcome(
            OP,
            self.client
                .create_pull_through_cache_rule()
                .ecr_repository_prefix(&input.prefix)
                .upstream_registry_url(&input.upstream_registry_url)
                .set_upstream_repository_prefix(input.upstream_repository_prefix.clone())
                .set_credential_arn(input.credential_arn.clone())
                .set_custom_role_arn(input.custom_role_arn.clone())
                .send()
                .await,
        )?;
        ptc_info!(&out, created_at)
            .ok_or_else(|| RegistryError::new(ErrorClass::Transient, OP, "response had no rule"))
    }

    async fn update_pull_through_cache_rule(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
        custom_role_arn: Option<&str>,
    ) -> Result<()> {
        self.outcome(
            "UpdatePullThroughCacheRule",
            self.client
                .update_pull_through_cache_rule()
                .ecr_repository_prefix(prefix)
                .set_credential_arn(credential_arn.map(str::to_string))
                .set_custom_role_arn(custom_role_arn.map(str::to_string))
                .send()
                .await,
        )
        .map(drop)
    }

    async fn delete_pull_through_cache_rule(&self, prefix: &str) -> Result<()> {
        let result = self.outcome(
            "DeletePullThroughCacheRule",
            self.client
                .delete_pull_through_cache_rule()
                .ecr_repository_prefix(prefix)
                .send()
                .await,
        );
        match result {
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    async fn get_secret(&self, name: &str) -> Result<Option<SecretValue>> {
        const OP: &str = "GetSecretValue";
        let client = self.secrets_client(OP)?;
        let result = self.outcome(OP, client.get_secret_value().secret_id(name).send().await);
        match result {
            Ok(out) => Ok(Some(SecretValue {
                arn: out.arn().unwrap_or_default().to_string(),
                value: out.secret_string().unwrap_or_default().to_string(),
            })),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn secret_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        const OP: &str = "DescribeSecret";
        let client = self.secrets_client(OP)?;
        let out = self.outcome(OP, client.describe_secret().secret_id(arn).send().await)?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect())
    }

    async fn create_secret(
        &self,
        name: &str,
        value: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        const OP: &str = "CreateSecret";
        let client = self.secrets_client(OP)?;
        let tags = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
            })
            .collect();
        let out = self.outcome(
            OP,
            client
                .create_secret()
                .name(name)
                .secret_string(value)
                .set_tags(Some(tags))
                .send()
                .await,
        )?;
        out.arn()
            .map(str::to_string)
            .ok_or_else(|| RegistryError::new(ErrorClass::Transient, OP, "response had no ARN"))
    }

    async fn put_secret_value(&self, arn: &str, value: &str) -> Result<()> {
        const OP: &str = "PutSecretValue";
        let client = self.secrets_client(OP)?;
        self.outcome(
            OP,
            client
                .put_secret_value()
                .secret_id(arn)
                .secret_string(value)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn delete_secret(&self, arn: &str) -> Result<()> {
        const OP: &str = "DeleteSecret";
        let client = self.secrets_client(OP)?;
        let result = self.outcome(
            OP,
            client
                .delete_secret()
                .secret_id(arn)
                .force_delete_without_recovery(true)
                .send()
                .await,
        );
        match result {
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    async fn image_digest(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>> {
        let result = self.outcome(
            "DescribeImages",
            self.client
                .describe_images()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_ids(
                    aws_sdk_ecr::types::ImageIdentifier::builder()
                        .image_tag(tag)
                        .build(),
                )
                .send()
                .await,
        );
        match result {
            Ok(out) => Ok(out
                .image_details()
                .iter()
                .find_map(|d| d.image_digest().map(str::to_string))),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn stats(&self) -> &CallStats {
        &self.stats
    }
}
