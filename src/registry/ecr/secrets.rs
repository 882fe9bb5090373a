//! Secrets Manager, for the mirrored credentials of pull-through cache rules.

use std::collections::BTreeMap;

use super::EcrRegistry;
use crate::registry::{ErrorClass, RegistryError, Result, SecretValue};

pub(super) async fn get_secret(r: &EcrRegistry, name: &str) -> Result<Option<SecretValue>> {
    const OP: &str = "GetSecretValue";
    let client = r.secrets_client(OP)?;
    let result = r.outcome(OP, client.get_secret_value().secret_id(name).send().await);
    match result {
        Ok(out) => Ok(Some(SecretValue {
            arn: out.arn().unwrap_or_default().to_string(),
            value: out.secret_string().unwrap_or_default().to_string(),
        })),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn secret_tags(r: &EcrRegistry, arn: &str) -> Result<BTreeMap<String, String>> {
    const OP: &str = "DescribeSecret";
    let client = r.secrets_client(OP)?;
    let out = r.outcome(OP, client.describe_secret().secret_id(arn).send().await)?;
    Ok(out
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect())
}

pub(super) async fn create_secret(
    r: &EcrRegistry,
    name: &str,
    value: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String> {
    const OP: &str = "CreateSecret";
    let client = r.secrets_client(OP)?;
    let tags = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect();
    let out = r.outcome(
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

pub(super) async fn put_secret_value(r: &EcrRegistry, arn: &str, value: &str) -> Result<()> {
    const OP: &str = "PutSecretValue";
    let client = r.secrets_client(OP)?;
    r.outcome(
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

pub(super) async fn delete_secret(r: &EcrRegistry, arn: &str) -> Result<()> {
    const OP: &str = "DeleteSecret";
    let client = r.secrets_client(OP)?;
    super::deleted(
        r.outcome(
            OP,
            client
                .delete_secret()
                .secret_id(arn)
                .force_delete_without_recovery(true)
                .send()
                .await,
        ),
    )
}
