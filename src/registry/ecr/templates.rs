//! Repository creation templates: Create/Update/Delete/DescribeRepositoryCreationTemplates.

use aws_sdk_ecr::types::{
    EncryptionConfigurationForRepositoryCreationTemplate, EncryptionType, ImageTagMutability,
    RctAppliedFor, RepositoryCreationTemplate,
};

use super::convert::{exclusions_to_ecr, tags_to_ecr, timestamp};
use super::{EcrRegistry, PAGE_SIZE, invalid};
use crate::registry::{CreationTemplate, CreationTemplateInfo, ErrorClass, RegistryError, Result};

/// The template in the registry's types; `None` without a prefix (never sent by ECR).
fn template_info(t: &RepositoryCreationTemplate) -> Option<CreationTemplateInfo> {
    let encryption = t.encryption_configuration();
    let template = CreationTemplate {
        prefix: t.prefix()?.to_string(),
        description: t.description().map(str::to_string),
        // Shape EncryptionConfigurationForRepositoryCreationTemplate; ECR's default is AES256.
        encryption_type: encryption
            .map(|e| e.encryption_type().as_str().to_string())
            .unwrap_or_else(|| "AES256".to_string()),
        kms_key: encryption
            .and_then(|e| e.kms_key())
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        resource_tags: t
            .resource_tags()
            .iter()
            .map(|tag| (tag.key().to_string(), tag.value().to_string()))
            .collect(),
        tag_mutability: t
            .image_tag_mutability()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "MUTABLE".to_string()),
        tag_mutability_exclusions: t
            .image_tag_mutability_exclusion_filters()
            .iter()
            .map(|f| f.filter().to_string())
            .collect(),
        repository_policy: t.repository_policy().map(str::to_string),
        lifecycle_policy: t.lifecycle_policy().map(str::to_string),
        applied_for: t
            .applied_for()
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        custom_role_arn: t.custom_role_arn().map(str::to_string),
    };
    Some(CreationTemplateInfo {
        template,
        created_at: timestamp(t.created_at()),
        updated_at: timestamp(t.updated_at()),
    })
}

fn encryption(
    operation: &'static str,
    t: &CreationTemplate,
) -> Result<EncryptionConfigurationForRepositoryCreationTemplate> {
    EncryptionConfigurationForRepositoryCreationTemplate::builder()
        .encryption_type(EncryptionType::from(t.encryption_type.as_str()))
        .set_kms_key(t.kms_key.clone())
        .build()
        .map_err(|e| invalid(operation, e))
}

fn applied_for(t: &CreationTemplate) -> Vec<RctAppliedFor> {
    t.applied_for
        .iter()
        .map(|a| RctAppliedFor::from(a.as_str()))
        .collect()
}

fn answered(
    operation: &'static str,
    t: Option<&RepositoryCreationTemplate>,
) -> Result<CreationTemplateInfo> {
    t.and_then(template_info).ok_or_else(|| {
        RegistryError::new(ErrorClass::Transient, operation, "response had no template")
    })
}

pub(super) async fn describe(
    r: &EcrRegistry,
    prefixes: &[String],
) -> Result<Vec<CreationTemplateInfo>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = r.outcome(
            "DescribeRepositoryCreationTemplates",
            r.client
                .describe_repository_creation_templates()
                .set_prefixes((!prefixes.is_empty()).then(|| prefixes.to_vec()))
                .max_results(PAGE_SIZE)
                .set_next_token(token.take())
                .send()
                .await,
        )?;
        out.extend(
            page.repository_creation_templates()
                .iter()
                .filter_map(template_info),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

pub(super) async fn create(r: &EcrRegistry, t: &CreationTemplate) -> Result<CreationTemplateInfo> {
    const OP: &str = "CreateRepositoryCreationTemplate";
    let out = r.outcome(
        OP,
        r.client
            .create_repository_creation_template()
            .prefix(&t.prefix)
            .set_description(t.description.clone())
            .encryption_configuration(encryption(OP, t)?)
            .set_resource_tags(Some(tags_to_ecr(OP, &t.resource_tags)?).filter(|v| !v.is_empty()))
            .image_tag_mutability(ImageTagMutability::from(t.tag_mutability.as_str()))
            .set_image_tag_mutability_exclusion_filters(exclusions_to_ecr(
                OP,
                &t.tag_mutability_exclusions,
            )?)
            .set_repository_policy(t.repository_policy.clone())
            .set_lifecycle_policy(t.lifecycle_policy.clone())
            .set_applied_for(Some(applied_for(t)))
            .set_custom_role_arn(t.custom_role_arn.clone())
            .send()
            .await,
    )?;
    answered(OP, out.repository_creation_template())
}

/// Sends every member, so that whatever the template held is replaced: ECR keeps the members an
/// update leaves out, and an empty value clears one.
pub(super) async fn update(r: &EcrRegistry, t: &CreationTemplate) -> Result<CreationTemplateInfo> {
    const OP: &str = "UpdateRepositoryCreationTemplate";
    let out = r.outcome(
        OP,
        r.client
            .update_repository_creation_template()
            .prefix(&t.prefix)
            .description(t.description.clone().unwrap_or_default())
            .encryption_configuration(encryption(OP, t)?)
            .set_resource_tags(Some(tags_to_ecr(OP, &t.resource_tags)?))
            .image_tag_mutability(ImageTagMutability::from(t.tag_mutability.as_str()))
            .set_image_tag_mutability_exclusion_filters(exclusions_to_ecr(
                OP,
                &t.tag_mutability_exclusions,
            )?)
            .repository_policy(t.repository_policy.clone().unwrap_or_default())
            .lifecycle_policy(t.lifecycle_policy.clone().unwrap_or_default())
            .set_applied_for(Some(applied_for(t)))
            .custom_role_arn(t.custom_role_arn.clone().unwrap_or_default())
            .send()
            .await,
    )?;
    answered(OP, out.repository_creation_template())
}

pub(super) async fn delete(r: &EcrRegistry, prefix: &str) -> Result<()> {
    super::deleted(
        r.outcome(
            "DeleteRepositoryCreationTemplate",
            r.client
                .delete_repository_creation_template()
                .prefix(prefix)
                .send()
                .await,
        ),
    )
}
