//! The aws-sdk-ecr implementation of [`Registry`].
//!
//! This file holds the client and the [`Registry`] impl, which only routes each call to the
//! file of its concern: [`repositories`], [`images`], registry-level [`settings`] and
//! [`secrets`]; [`convert`] maps between the SDK's shapes and ours.

mod account;
mod convert;
mod delete_replication;
mod images;
mod repositories;
mod secrets;
mod settings;
mod templates;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::types::ImageStatusFilter;

use super::error::HttpStatus;
use super::{
    CallStats, CreationTemplate, CreationTemplateInfo, ErrorClass, ImageInfo,
    NewPullThroughCacheRule, NewRepository, PullThroughCacheRuleInfo, Registry, RegistryError,
    ReplicationSettings, RepositoryInfo, Result, ScanFindings, ScanningSettings, SecretValue,
    SigningRuleInfo,
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
    /// Amazon ECR Public of the same account, from the same AWS configuration.
    public: Option<super::EcrPublic>,
    stats: Arc<CallStats>,
}

/// Page size for list/describe calls: ECR's maximum, so a resync costs as few calls as possible.
const PAGE_SIZE: i32 = 1000;

impl EcrRegistry {
    /// Builds a client from the default credential chain and the given overrides.
    pub async fn from_env(config: &RegistryConfig) -> Self {
        Self::from_sdk_config(&Self::sdk_config(config).await)
    }

    /// The AWS configuration [`Self::from_env`] builds its clients from: the default credential
    /// chain, the given overrides, the operator's retries and timeouts. Also the base of every
    /// RegistryTarget's client ([`super::TargetPool`]).
    pub async fn sdk_config(config: &RegistryConfig) -> aws_config::SdkConfig {
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
        loader.load().await
    }

    /// ECR, Secrets Manager and SQS clients of one AWS configuration.
    pub fn from_sdk_config(sdk_config: &aws_config::SdkConfig) -> Self {
        let mut registry = Self::from_client(Client::new(sdk_config))
            .with_secrets(aws_sdk_secretsmanager::Client::new(sdk_config));
        registry.sqs = Some(aws_sdk_sqs::Client::new(sdk_config));
        registry.with_ecr_public(sdk_config)
    }

    /// Counts calls into `stats` (shared with other registries: one count for the operator),
    /// ECR Public's included: a RegistryTarget's public calls count with the operator's.
    pub fn with_stats(mut self, stats: Arc<CallStats>) -> Self {
        self.public = self.public.map(|p| p.with_stats(stats.clone()));
        self.stats = stats;
        self
    }

    /// The account id the registry answers for (DescribeRegistry's `registryId`): one cheap
    /// read that proves the credentials and the endpoint.
    pub async fn registry_id(&self) -> Result<String> {
        let out = self.outcome(
            "DescribeRegistry",
            self.client.describe_registry().send().await,
        )?;
        Ok(out.registry_id().unwrap_or_default().to_string())
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

    /// The region the ECR Public client calls (us-east-1 whatever [`Self::region`] is); `None`
    /// without one.
    pub fn public_region(&self) -> Option<String> {
        self.public.as_ref().and_then(|p| p.region())
    }

    /// An ECR-only registry; Secrets Manager calls fail until [`Self::with_secrets`] adds a client.
    pub fn from_client(client: Client) -> Self {
        EcrRegistry {
            client,
            secrets: None,
            sqs: None,
            public: None,
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
                .interceptor(super::fence::FenceInterceptor(fence.clone()))
                .build();
            self.secrets = Some(aws_sdk_secretsmanager::Client::from_conf(conf));
        }
        self.public = self.public.map(|p| p.with_fence(fence));
        self
    }

    /// Adds an Amazon ECR Public client with `config`'s credentials and endpoint (always in
    /// us-east-1), counted in this registry's stats. Add it before [`Self::with_fence`].
    pub fn with_ecr_public(mut self, config: &aws_config::SdkConfig) -> Self {
        self.public = Some(super::EcrPublic::new(config, self.stats.clone()));
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

/// A delete's outcome: finding nothing to delete is success (the resource is gone, which is what
/// was asked), any other error stays an error.
fn deleted<T>(result: Result<T>) -> Result<()> {
    match result {
        Err(e) if e.class == ErrorClass::NotFound => Ok(()),
        other => other.map(drop),
    }
}

fn invalid(operation: &'static str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::new(ErrorClass::Invalid, operation, e.to_string())
}

#[async_trait]
impl Registry for EcrRegistry {
    async fn list_repositories(&self) -> Result<Vec<RepositoryInfo>> {
        repositories::list_repositories(self).await
    }

    async fn describe_repository(&self, name: &str) -> Result<Option<RepositoryInfo>> {
        repositories::describe_repository(self, name).await
    }

    async fn create_repository(&self, input: &NewRepository) -> Result<RepositoryInfo> {
        repositories::create_repository(self, input).await
    }

    async fn put_image_tag_mutability(
        &self,
        name: &str,
        mutability: &str,
        exclusions: &[String],
    ) -> Result<()> {
        repositories::put_image_tag_mutability(self, name, mutability, exclusions).await
    }

    async fn put_scan_on_push(&self, name: &str, scan_on_push: bool) -> Result<()> {
        repositories::put_scan_on_push(self, name, scan_on_push).await
    }

    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        repositories::list_tags(self, arn).await
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        repositories::tag_resource(self, arn, tags).await
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()> {
        repositories::untag_resource(self, arn, keys).await
    }

    async fn get_repository_policy(&self, name: &str) -> Result<Option<String>> {
        repositories::get_repository_policy(self, name).await
    }

    async fn set_repository_policy(&self, name: &str, policy: &str) -> Result<()> {
        repositories::set_repository_policy(self, name, policy).await
    }

    async fn delete_repository_policy(&self, name: &str) -> Result<()> {
        repositories::delete_repository_policy(self, name).await
    }

    async fn delete_repository(&self, name: &str, force: bool) -> Result<()> {
        repositories::delete_repository(self, name, force).await
    }

    async fn list_images(&self, name: &str) -> Result<Vec<ImageInfo>> {
        images::list_images(self, name, None).await
    }

    async fn list_images_any_status(&self, name: &str) -> Result<Vec<ImageInfo>> {
        images::list_images(self, name, Some(ImageStatusFilter::Any)).await
    }

    async fn image_digest(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>> {
        images::image_digest(self, registry_id, repository, tag).await
    }

    async fn get_lifecycle_policy(&self, repository: &str) -> Result<Option<String>> {
        repositories::get_lifecycle_policy(self, repository).await
    }

    async fn put_lifecycle_policy(&self, repository: &str, text: &str) -> Result<()> {
        repositories::put_lifecycle_policy(self, repository, text).await
    }

    async fn delete_lifecycle_policy(&self, repository: &str) -> Result<()> {
        repositories::delete_lifecycle_policy(self, repository).await
    }

    async fn get_replication(&self) -> Result<ReplicationSettings> {
        settings::get_replication(self).await
    }

    async fn put_replication(&self, settings: &ReplicationSettings) -> Result<()> {
        settings::put_replication(self, settings).await
    }

    async fn get_registry_scanning(&self) -> Result<ScanningSettings> {
        settings::get_registry_scanning(self).await
    }

    async fn put_registry_scanning(&self, settings: &ScanningSettings) -> Result<()> {
        settings::put_registry_scanning(self, settings).await
    }

    async fn get_registry_policy(&self) -> Result<Option<String>> {
        settings::get_registry_policy(self).await
    }

    async fn put_registry_policy(&self, text: &str) -> Result<()> {
        settings::put_registry_policy(self, text).await
    }

    async fn delete_registry_policy(&self) -> Result<()> {
        settings::delete_registry_policy(self).await
    }

    async fn get_account_setting(&self, name: &str) -> Result<String> {
        account::get_account_setting(self, name).await
    }

    async fn put_account_setting(&self, name: &str, value: &str) -> Result<()> {
        account::put_account_setting(self, name, value).await
    }

    async fn get_signing_configuration(&self) -> Result<Option<Vec<SigningRuleInfo>>> {
        account::get_signing_configuration(self).await
    }

    async fn put_signing_configuration(&self, rules: &[SigningRuleInfo]) -> Result<()> {
        account::put_signing_configuration(self, rules).await
    }

    async fn delete_signing_configuration(&self) -> Result<()> {
        account::delete_signing_configuration(self).await
    }

    async fn list_pull_time_update_exclusions(&self) -> Result<BTreeSet<String>> {
        account::list_pull_time_update_exclusions(self).await
    }

    async fn register_pull_time_update_exclusion(&self, principal_arn: &str) -> Result<()> {
        account::register_pull_time_update_exclusion(self, principal_arn).await
    }

    async fn deregister_pull_time_update_exclusion(&self, principal_arn: &str) -> Result<()> {
        account::deregister_pull_time_update_exclusion(self, principal_arn).await
    }

    async fn describe_pull_through_cache_rule(
        &self,
        prefix: &str,
    ) -> Result<Option<PullThroughCacheRuleInfo>> {
        settings::describe_pull_through_cache_rule(self, prefix).await
    }

    async fn list_pull_through_cache_rules(&self) -> Result<Vec<PullThroughCacheRuleInfo>> {
        settings::list_pull_through_cache_rules(self).await
    }

    async fn create_pull_through_cache_rule(
        &self,
        input: &NewPullThroughCacheRule,
    ) -> Result<PullThroughCacheRuleInfo> {
        settings::create_pull_through_cache_rule(self, input).await
    }

    async fn update_pull_through_cache_rule(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
        custom_role_arn: Option<&str>,
    ) -> Result<()> {
        settings::update_pull_through_cache_rule(self, prefix, credential_arn, custom_role_arn)
            .await
    }

    async fn delete_pull_through_cache_rule(&self, prefix: &str) -> Result<()> {
        settings::delete_pull_through_cache_rule(self, prefix).await
    }

    async fn describe_creation_templates(
        &self,
        prefixes: &[String],
    ) -> Result<Vec<CreationTemplateInfo>> {
        templates::describe(self, prefixes).await
    }

    async fn create_creation_template(
        &self,
        template: &CreationTemplate,
    ) -> Result<CreationTemplateInfo> {
        templates::create(self, template).await
    }

    async fn update_creation_template(
        &self,
        template: &CreationTemplate,
    ) -> Result<CreationTemplateInfo> {
        templates::update(self, template).await
    }

    async fn delete_creation_template(&self, prefix: &str) -> Result<()> {
        templates::delete(self, prefix).await
    }

    async fn get_secret(&self, name: &str) -> Result<Option<SecretValue>> {
        secrets::get_secret(self, name).await
    }

    async fn secret_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        secrets::secret_tags(self, arn).await
    }

    async fn create_secret(
        &self,
        name: &str,
        value: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        secrets::create_secret(self, name, value, tags).await
    }

    async fn put_secret_value(&self, arn: &str, value: &str) -> Result<()> {
        secrets::put_secret_value(self, arn, value).await
    }

    async fn delete_secret(&self, arn: &str) -> Result<()> {
        secrets::delete_secret(self, arn).await
    }

    async fn describe_images(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<ImageInfo>> {
        images::describe_images(self, registry_id, repository, digests).await
    }

    async fn describe_image_scan_findings(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanFindings>> {
        images::describe_image_scan_findings(self, registry_id, repository, digest).await
    }

    async fn start_image_scan(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digest: &str,
    ) -> Result<()> {
        images::start_image_scan(self, registry_id, repository, digest).await
    }

    fn stats(&self) -> &CallStats {
        &self.stats
    }

    fn ecr_public(&self) -> Option<&dyn super::PublicRegistry> {
        self.public
            .as_ref()
            .map(|p| p as &dyn super::PublicRegistry)
    }
}
