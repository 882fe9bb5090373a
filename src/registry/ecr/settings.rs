//! Registry-level settings: replication, scanning, the registry policy and pull-through cache
//! rules.

use aws_sdk_ecr::types::ScanType;

use super::EcrRegistry;
use super::convert::{
    ptc_info, replication_from_ecr, replication_to_ecr, scanning_from_ecr, scanning_rule_to_ecr,
};
use crate::registry::{
    ErrorClass, NewPullThroughCacheRule, PullThroughCacheRuleInfo, RegistryError,
    ReplicationSettings, Result, ScanningSettings,
};

pub(super) async fn get_replication(r: &EcrRegistry) -> Result<ReplicationSettings> {
    let out = r.outcome(
        "DescribeRegistry",
        r.client.describe_registry().send().await,
    )?;
    Ok(replication_from_ecr(out.replication_configuration()))
}

pub(super) async fn put_replication(r: &EcrRegistry, settings: &ReplicationSettings) -> Result<()> {
    const OP: &str = "PutReplicationConfiguration";
    let config = replication_to_ecr(OP, settings)?;
    r.outcome(
        OP,
        r.client
            .put_replication_configuration()
            .replication_configuration(config)
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn get_registry_scanning(r: &EcrRegistry) -> Result<ScanningSettings> {
    let out = r.outcome(
        "GetRegistryScanningConfiguration",
        r.client.get_registry_scanning_configuration().send().await,
    )?;
    Ok(scanning_from_ecr(out.scanning_configuration()))
}

pub(super) async fn put_registry_scanning(
    r: &EcrRegistry,
    settings: &ScanningSettings,
) -> Result<()> {
    const OP: &str = "PutRegistryScanningConfiguration";
    let rules = settings
        .rules
        .iter()
        .map(|rule| scanning_rule_to_ecr(OP, rule))
        .collect::<Result<Vec<_>>>()?;
    r.outcome(
        OP,
        r.client
            .put_registry_scanning_configuration()
            .scan_type(ScanType::from(settings.scan_type.as_str()))
            .set_rules(Some(rules))
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn get_registry_policy(r: &EcrRegistry) -> Result<Option<String>> {
    let result = r.outcome(
        "GetRegistryPolicy",
        r.client.get_registry_policy().send().await,
    );
    match result {
        Ok(out) => Ok(out.policy_text().map(str::to_string)),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn put_registry_policy(r: &EcrRegistry, text: &str) -> Result<()> {
    r.outcome(
        "PutRegistryPolicy",
        r.client
            .put_registry_policy()
            .policy_text(text)
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn delete_registry_policy(r: &EcrRegistry) -> Result<()> {
    super::deleted(r.outcome(
        "DeleteRegistryPolicy",
        r.client.delete_registry_policy().send().await,
    ))
}

pub(super) async fn describe_pull_through_cache_rule(
    r: &EcrRegistry,
    prefix: &str,
) -> Result<Option<PullThroughCacheRuleInfo>> {
    let result = r.outcome(
        "DescribePullThroughCacheRules",
        r.client
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

/// Every pull-through cache rule of the registry, all pages of DescribePullThroughCacheRules.
pub(super) async fn list_pull_through_cache_rules(
    r: &EcrRegistry,
) -> Result<Vec<PullThroughCacheRuleInfo>> {
    let mut rules = Vec::new();
    let mut token = None;
    loop {
        let out = r.outcome(
            "DescribePullThroughCacheRules",
            r.client
                .describe_pull_through_cache_rules()
                .max_results(super::PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await,
        )?;
        rules.extend(
            out.pull_through_cache_rules()
                .iter()
                .filter_map(|rule| ptc_info!(rule, updated_at)),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(rules);
        }
    }
}

pub(super) async fn create_pull_through_cache_rule(
    r: &EcrRegistry,
    input: &NewPullThroughCacheRule,
) -> Result<PullThroughCacheRuleInfo> {
    const OP: &str = "CreatePullThroughCacheRule";
    let out = r.outcome(
        OP,
        r.client
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

pub(super) async fn update_pull_through_cache_rule(
    r: &EcrRegistry,
    prefix: &str,
    credential_arn: Option<&str>,
    custom_role_arn: Option<&str>,
) -> Result<()> {
    r.outcome(
        "UpdatePullThroughCacheRule",
        r.client
            .update_pull_through_cache_rule()
            .ecr_repository_prefix(prefix)
            .set_credential_arn(credential_arn.map(str::to_string))
            .set_custom_role_arn(custom_role_arn.map(str::to_string))
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn delete_pull_through_cache_rule(r: &EcrRegistry, prefix: &str) -> Result<()> {
    super::deleted(
        r.outcome(
            "DeletePullThroughCacheRule",
            r.client
                .delete_pull_through_cache_rule()
                .ecr_repository_prefix(prefix)
                .send()
                .await,
        ),
    )
}
