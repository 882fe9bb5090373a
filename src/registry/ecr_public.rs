//! Amazon ECR Public through aws-sdk-ecrpublic: what the PublicRepository controller needs.
//!
//! ECR Public's control plane answers in us-east-1 only, so the client always calls us-east-1,
//! with the credentials and endpoint override of the private ECR client's AWS configuration.
//! Every call is counted in the same [`CallStats`] as ECR's, under `ecr-public:<Operation>`
//! (the IAM action that authorizes it), and every write is refused by the leader fence like
//! ECR's (see [`super::fence`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ecrpublic::Client;
use aws_sdk_ecrpublic::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecrpublic::types::{RepositoryCatalogData, RepositoryCatalogDataInput, Tag};

use super::error::HttpStatus;
use super::{CallStats, ErrorClass, Result};

/// ECR Public's only region.
pub const ECR_PUBLIC_REGION: &str = "us-east-1";

/// A public repository as DescribeRepositories / CreateRepository answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicRepositoryInfo {
    pub name: String,
    pub arn: String,
    /// `public.ecr.aws/<registry alias>/<name>`.
    pub uri: String,
    pub registry_id: String,
    pub created_at: Option<k8s_openapi::jiff::Timestamp>,
}

/// The text members of a repository's catalog data (shape RepositoryCatalogData without the
/// logo), empty strings and lists standing for members left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicCatalog {
    pub description: String,
    pub about_text: String,
    pub usage_text: String,
    pub architectures: Vec<String>,
    pub operating_systems: Vec<String>,
}

/// The catalog data as ECR Public returns it: the text members and the logo's URL (never the
/// logo itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicCatalogInfo {
    pub catalog: PublicCatalog,
    pub logo_url: Option<String>,
}

/// Everything CreateRepository takes in one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPublicRepository {
    pub name: String,
    /// `None`: no catalog data is sent.
    pub catalog: Option<PublicCatalog>,
    pub logo: Option<Vec<u8>>,
    pub tags: BTreeMap<String, String>,
}

/// What the operator needs of ECR Public.
#[async_trait]
pub trait PublicRegistry: Send + Sync {
    /// One repository, or `None` when it does not exist.
    async fn describe_public_repository(&self, name: &str) -> Result<Option<PublicRepositoryInfo>>;
    /// Creates the repository with its catalog data, logo and tags in one call.
    async fn create_public_repository(
        &self,
        input: &NewPublicRepository,
    ) -> Result<(PublicRepositoryInfo, PublicCatalogInfo)>;
    async fn get_public_catalog(&self, name: &str) -> Result<PublicCatalogInfo>;
    /// Replaces the whole catalog data (members not sent are cleared, the logo too).
    async fn put_public_catalog(
        &self,
        name: &str,
        catalog: &PublicCatalog,
        logo: Option<&[u8]>,
    ) -> Result<PublicCatalogInfo>;
    async fn list_public_tags(&self, arn: &str) -> Result<BTreeMap<String, String>>;
    async fn tag_public_repository(&self, arn: &str, tags: &BTreeMap<String, String>)
    -> Result<()>;
    async fn untag_public_repository(&self, arn: &str, keys: &[String]) -> Result<()>;
    /// The repository policy text, or `None` when there is none.
    async fn get_public_policy(&self, name: &str) -> Result<Option<String>>;
    async fn set_public_policy(&self, name: &str, text: &str) -> Result<()>;
    /// Removes the policy; none at all is not an error.
    async fn delete_public_policy(&self, name: &str) -> Result<()>;
    /// Deletes the repository with its images (`force`); one already gone is not an error.
    async fn delete_public_repository(&self, name: &str) -> Result<()>;
}

/// ECR Public through aws-sdk-ecrpublic, counting every call in the shared stats.
#[derive(Clone, Debug)]
pub struct EcrPublic {
    client: Client,
    stats: Arc<CallStats>,
}

impl EcrPublic {
    /// A client for `config`'s credentials and endpoint, in us-east-1 whatever its region.
    pub fn new(config: &aws_config::SdkConfig, stats: Arc<CallStats>) -> Self {
        let conf = aws_sdk_ecrpublic::config::Builder::from(config)
            .region(aws_sdk_ecrpublic::config::Region::new(ECR_PUBLIC_REGION))
            .build();
        EcrPublic {
            client: Client::from_conf(conf),
            stats,
        }
    }

    /// The same client, counting its calls into `stats`.
    pub fn with_stats(mut self, stats: Arc<CallStats>) -> Self {
        self.stats = stats;
        self
    }

    /// The same client, its writes refused while `fence` is shut.
    pub fn with_fence(mut self, fence: crate::leader::Fence) -> Self {
        let conf = self
            .client
            .config()
            .to_builder()
            .interceptor(super::fence::FenceInterceptor(fence))
            .build();
        self.client = Client::from_conf(conf);
        self
    }

    /// The region the client calls (always [`ECR_PUBLIC_REGION`]).
    pub fn region(&self) -> Option<String> {
        self.client.config().region().map(|r| r.to_string())
    }

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

fn repository_info(r: &aws_sdk_ecrpublic::types::Repository) -> Option<PublicRepositoryInfo> {
    Some(PublicRepositoryInfo {
        name: r.repository_name()?.to_string(),
        arn: r.repository_arn()?.to_string(),
        uri: r.repository_uri().unwrap_or_default().to_string(),
        registry_id: r.registry_id().unwrap_or_default().to_string(),
        created_at: r.created_at().and_then(|t| {
            k8s_openapi::jiff::Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
        }),
    })
}

fn catalog_info(c: Option<&RepositoryCatalogData>) -> PublicCatalogInfo {
    let Some(c) = c else {
        return PublicCatalogInfo::default();
    };
    PublicCatalogInfo {
        catalog: PublicCatalog {
            description: c.description().unwrap_or_default().to_string(),
            about_text: c.about_text().unwrap_or_default().to_string(),
            usage_text: c.usage_text().unwrap_or_default().to_string(),
            architectures: c.architectures().to_vec(),
            operating_systems: c.operating_systems().to_vec(),
        },
        logo_url: c.logo_url().filter(|u| !u.is_empty()).map(str::to_string),
    }
}

/// The catalog data input: every member that has a value, the logo as a blob (the SDK sends it
/// base64-encoded, as the JSON protocol wants).
fn catalog_input(catalog: &PublicCatalog, logo: Option<&[u8]>) -> RepositoryCatalogDataInput {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let list = |l: &[String]| (!l.is_empty()).then(|| l.to_vec());
    RepositoryCatalogDataInput::builder()
        .set_description(text(&catalog.description))
        .set_about_text(text(&catalog.about_text))
        .set_usage_text(text(&catalog.usage_text))
        .set_architectures(list(&catalog.architectures))
        .set_operating_systems(list(&catalog.operating_systems))
        .set_logo_image_blob(logo.map(aws_smithy_types::Blob::new))
        .build()
}

fn tags_input(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn missing(operation: &'static str) -> super::RegistryError {
    super::RegistryError::new(
        ErrorClass::Transient,
        operation,
        "the answer holds no repository",
    )
}

#[async_trait]
impl PublicRegistry for EcrPublic {
    async fn describe_public_repository(&self, name: &str) -> Result<Option<PublicRepositoryInfo>> {
        let result = self.outcome(
            "ecr-public:DescribeRepositories",
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

    async fn create_public_repository(
        &self,
        input: &NewPublicRepository,
    ) -> Result<(PublicRepositoryInfo, PublicCatalogInfo)> {
        const OP: &str = "ecr-public:CreateRepository";
        let catalog = input
            .catalog
            .as_ref()
            .map(|c| catalog_input(c, input.logo.as_deref()));
        let out = self.outcome(
            OP,
            self.client
                .create_repository()
                .repository_name(&input.name)
                .set_catalog_data(catalog)
                .set_tags(Some(tags_input(&input.tags)))
                .send()
                .await,
        )?;
        let info = out
            .repository()
            .and_then(repository_info)
            .ok_or_else(|| missing(OP))?;
        Ok((info, catalog_info(out.catalog_data())))
    }

    async fn get_public_catalog(&self, name: &str) -> Result<PublicCatalogInfo> {
        let out = self.outcome(
            "ecr-public:GetRepositoryCatalogData",
            self.client
                .get_repository_catalog_data()
                .repository_name(name)
                .send()
                .await,
        );
        match out {
            Ok(out) => Ok(catalog_info(out.catalog_data())),
            // No catalog data at all: an empty one.
            Err(e) if e.code.as_deref() == Some("RepositoryCatalogDataNotFoundException") => {
                Ok(PublicCatalogInfo::default())
            }
            Err(e) => Err(e),
        }
    }

    async fn put_public_catalog(
        &self,
        name: &str,
        catalog: &PublicCatalog,
        logo: Option<&[u8]>,
    ) -> Result<PublicCatalogInfo> {
        let out = self.outcome(
            "ecr-public:PutRepositoryCatalogData",
            self.client
                .put_repository_catalog_data()
                .repository_name(name)
                .catalog_data(catalog_input(catalog, logo))
                .send()
                .await,
        )?;
        Ok(catalog_info(out.catalog_data()))
    }

    async fn list_public_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let out = self.outcome(
            "ecr-public:ListTagsForResource",
            self.client
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await,
        )?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }

    async fn tag_public_repository(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.outcome(
            "ecr-public:TagResource",
            self.client
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags_input(tags)))
                .send()
                .await,
        )
        .map(drop)
    }

    async fn untag_public_repository(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.outcome(
            "ecr-public:UntagResource",
            self.client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
                .await,
        )
        .map(drop)
    }

    async fn get_public_policy(&self, name: &str) -> Result<Option<String>> {
        let out = self.outcome(
            "ecr-public:GetRepositoryPolicy",
            self.client
                .get_repository_policy()
                .repository_name(name)
                .send()
                .await,
        );
        match out {
            Ok(out) => Ok(out.policy_text().map(str::to_string)),
            Err(e) if e.code.as_deref() == Some("RepositoryPolicyNotFoundException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_public_policy(&self, name: &str, text: &str) -> Result<()> {
        self.outcome(
            "ecr-public:SetRepositoryPolicy",
            self.client
                .set_repository_policy()
                .repository_name(name)
                .policy_text(text)
                .send()
                .await,
        )
        .map(drop)
    }

    async fn delete_public_policy(&self, name: &str) -> Result<()> {
        let out = self.outcome(
            "ecr-public:DeleteRepositoryPolicy",
            self.client
                .delete_repository_policy()
                .repository_name(name)
                .send()
                .await,
        );
        match out {
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    async fn delete_public_repository(&self, name: &str) -> Result<()> {
        let out = self.outcome(
            "ecr-public:DeleteRepository",
            self.client
                .delete_repository()
                .repository_name(name)
                .force(true)
                .send()
                .await,
        );
        match out {
            Err(e) if e.code.as_deref() == Some("RepositoryNotFoundException") => Ok(()),
            other => other.map(drop),
        }
    }
}
