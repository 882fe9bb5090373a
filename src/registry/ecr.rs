//! The aws-sdk-ecr implementation of [`Registry`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};
use k8s_openapi::jiff::Timestamp;

use super::error::HttpStatus;
use super::{
    CallStats, ErrorClass, ImageInfo, NewRepository, Registry, RegistryError, RepositoryInfo,
    Result,
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

/// ECR through aws-sdk-ecr, counting every call.
#[derive(Clone, Debug)]
pub struct EcrRegistry {
    client: Client,
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
        let sdk_config = loader.load().await;
        Self::from_client(Client::new(&sdk_config))
    }

    pub fn from_client(client: Client) -> Self {
        EcrRegistry {
            client,
            stats: Arc::new(CallStats::default()),
        }
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
        R: std::fmt::Debug + HttpStatus,
    {
        match result {
            Ok(v) => {
                self.stats.record(operation, "success");
                Ok(v)
            }
            Err(e) => {
                let err = RegistryError::from_sdk(operation, e);
                self.stats.record(operation, err.class.as_str());
                Err(err)
            }
        }
    }
}

fn timestamp(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    let t = t?;
    Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
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
            out.extend(page.image_details().iter().filter_map(|d| {
                Some(ImageInfo {
                    digest: d.image_digest()?.to_string(),
                    tags: d.image_tags().to_vec(),
                    pushed_at: timestamp(d.image_pushed_at()),
                    size_bytes: d.image_size_in_bytes(),
                })
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    fn stats(&self) -> &CallStats {
        &self.stats
    }
}
