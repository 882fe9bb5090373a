//! The ECR boundary: what the operator needs of ECR, in its own types.
//!
//! Controllers see only the [`Registry`] trait and [`RegistryError`] classes. The one
//! implementation, [`EcrRegistry`], uses aws-sdk-ecr; tests run it against moto.

mod ecr;
mod error;
mod stats;

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;

pub use ecr::{EcrRegistry, RegistryConfig};
pub use error::{ErrorClass, RegistryError};
pub use stats::{CallStats, WRITE_OPERATIONS};

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// A repository as ECR describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryInfo {
    pub name: String,
    pub arn: String,
    pub uri: String,
    pub registry_id: String,
    pub created_at: Option<Timestamp>,
    /// MUTABLE, IMMUTABLE, ...
    pub tag_mutability: String,
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
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// An image in a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Option<Timestamp>,
    pub size_bytes: Option<i64>,
}

/// What the operator needs of ECR.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Every repository in the registry, read in pages of 1000.
    async fn list_repositories(&self) -> Result<Vec<RepositoryInfo>>;
    /// One repository, or `None` when it does not exist.
    async fn describe_repository(&self, name: &str) -> Result<Option<RepositoryInfo>>;
    async fn create_repository(&self, input: &NewRepository) -> Result<RepositoryInfo>;
    async fn put_image_tag_mutability(&self, name: &str, mutability: &str) -> Result<()>;
    async fn put_scan_on_push(&self, name: &str, scan_on_push: bool) -> Result<()>;
    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>>;
    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()>;
    /// The repository policy text, or `None` when the repository has none.
    async fn get_repository_policy(&self, name: &str) -> Result<Option<String>>;
    async fn set_repository_policy(&self, name: &str, policy: &str) -> Result<()>;
    async fn delete_repository_policy(&self, name: &str) -> Result<()>;
    async fn delete_repository(&self, name: &str, force: bool) -> Result<()>;
    /// Every image in a repository, read in pages of 1000.
    async fn list_images(&self, name: &str) -> Result<Vec<ImageInfo>>;
    /// Counts of calls made, by operation and outcome.
    fn stats(&self) -> &CallStats;
}
