//! Repositories and what hangs on one: settings, tags, repository and lifecycle policies.

use std::collections::BTreeMap;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
};

use super::convert::{exclusions_to_ecr, repository_info, tags_to_ecr};
use super::{EcrRegistry, PAGE_SIZE, invalid};
use crate::registry::{ErrorClass, NewRepository, RegistryError, RepositoryInfo, Result};

pub(super) async fn list_repositories(r: &EcrRegistry) -> Result<Vec<RepositoryInfo>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = r.outcome(
            "DescribeRepositories",
            r.client
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

pub(super) async fn describe_repository(
    r: &EcrRegistry,
    name: &str,
) -> Result<Option<RepositoryInfo>> {
    let result = r.outcome(
        "DescribeRepositories",
        r.client
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

pub(super) async fn create_repository(
    r: &EcrRegistry,
    input: &NewRepository,
) -> Result<RepositoryInfo> {
    const OP: &str = "CreateRepository";
    let mut encryption = EncryptionConfiguration::builder()
        .encryption_type(EncryptionType::from(input.encryption_type.as_str()));
    if let Some(key) = &input.kms_key {
        encryption = encryption.kms_key(key);
    }
    let out = r.outcome(
        OP,
        r.client
            .create_repository()
            .repository_name(&input.name)
            .image_tag_mutability(ImageTagMutability::from(input.tag_mutability.as_str()))
            .set_image_tag_mutability_exclusion_filters(exclusions_to_ecr(
                OP,
                &input.tag_mutability_exclusions,
            )?)
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
    out.repository()
        .and_then(repository_info)
        .ok_or_else(|| RegistryError::new(ErrorClass::Transient, OP, "response had no repository"))
}

pub(super) async fn put_image_tag_mutability(
    r: &EcrRegistry,
    name: &str,
    mutability: &str,
    exclusions: &[String],
) -> Result<()> {
    const OP: &str = "PutImageTagMutability";
    r.outcome(
        OP,
        r.client
            .put_image_tag_mutability()
            .repository_name(name)
            .image_tag_mutability(ImageTagMutability::from(mutability))
            .set_image_tag_mutability_exclusion_filters(exclusions_to_ecr(OP, exclusions)?)
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn put_scan_on_push(
    r: &EcrRegistry,
    name: &str,
    scan_on_push: bool,
) -> Result<()> {
    r.outcome(
        "PutImageScanningConfiguration",
        r.client
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

pub(super) async fn delete_repository(r: &EcrRegistry, name: &str, force: bool) -> Result<()> {
    r.outcome(
        "DeleteRepository",
        r.client
            .delete_repository()
            .repository_name(name)
            .force(force)
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn list_tags(r: &EcrRegistry, arn: &str) -> Result<BTreeMap<String, String>> {
    let out = r.outcome(
        "ListTagsForResource",
        r.client
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

pub(super) async fn tag_resource(
    r: &EcrRegistry,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    r.outcome(
        "TagResource",
        r.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags_to_ecr("TagResource", tags)?))
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn untag_resource(r: &EcrRegistry, arn: &str, keys: &[String]) -> Result<()> {
    r.outcome(
        "UntagResource",
        r.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn get_repository_policy(r: &EcrRegistry, name: &str) -> Result<Option<String>> {
    let result = r.outcome(
        "GetRepositoryPolicy",
        r.client
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

pub(super) async fn set_repository_policy(r: &EcrRegistry, name: &str, policy: &str) -> Result<()> {
    r.outcome(
        "SetRepositoryPolicy",
        r.client
            .set_repository_policy()
            .repository_name(name)
            .policy_text(policy)
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn delete_repository_policy(r: &EcrRegistry, name: &str) -> Result<()> {
    let result = r.outcome(
        "DeleteRepositoryPolicy",
        r.client
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

pub(super) async fn get_lifecycle_policy(
    r: &EcrRegistry,
    repository: &str,
) -> Result<Option<String>> {
    let result = r.outcome(
        "GetLifecyclePolicy",
        r.client
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

pub(super) async fn put_lifecycle_policy(
    r: &EcrRegistry,
    repository: &str,
    text: &str,
) -> Result<()> {
    r.outcome(
        "PutLifecyclePolicy",
        r.client
            .put_lifecycle_policy()
            .repository_name(repository)
            .lifecycle_policy_text(text)
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn delete_lifecycle_policy(r: &EcrRegistry, repository: &str) -> Result<()> {
    super::deleted(
        r.outcome(
            "DeleteLifecyclePolicy",
            r.client
                .delete_lifecycle_policy()
                .repository_name(repository)
                .send()
                .await,
        ),
    )
}
