//! Registry-level switches outside any document: account settings, managed signing and
//! pull-time update exclusions (the RegistrySettings kind).

use std::collections::BTreeSet;

use aws_sdk_ecr::types::{
    SigningConfiguration, SigningRepositoryFilter, SigningRepositoryFilterType, SigningRule,
};

use super::{EcrRegistry, PAGE_SIZE, deleted, invalid};
use crate::registry::{ErrorClass, Result, SigningRuleInfo};

pub(super) async fn get_account_setting(r: &EcrRegistry, name: &str) -> Result<String> {
    let out = r.outcome(
        "GetAccountSetting",
        r.client.get_account_setting().name(name).send().await,
    )?;
    Ok(out.value().unwrap_or_default().to_string())
}

pub(super) async fn put_account_setting(r: &EcrRegistry, name: &str, value: &str) -> Result<()> {
    r.outcome(
        "PutAccountSetting",
        r.client
            .put_account_setting()
            .name(name)
            .value(value)
            .send()
            .await,
    )
    .map(drop)
}

pub(super) async fn get_signing_configuration(
    r: &EcrRegistry,
) -> Result<Option<Vec<SigningRuleInfo>>> {
    let result = r.outcome(
        "GetSigningConfiguration",
        r.client.get_signing_configuration().send().await,
    );
    match result {
        Ok(out) => Ok(out.signing_configuration().map(|c| {
            c.rules()
                .iter()
                .map(|rule| SigningRuleInfo {
                    profile_arn: rule.signing_profile_arn().to_string(),
                    repository_filters: rule
                        .repository_filters()
                        .iter()
                        .map(|f| f.filter().to_string())
                        .collect(),
                })
                .collect()
        })),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn put_signing_configuration(
    r: &EcrRegistry,
    rules: &[SigningRuleInfo],
) -> Result<()> {
    const OP: &str = "PutSigningConfiguration";
    let rules = rules
        .iter()
        .map(|rule| signing_rule_to_ecr(OP, rule))
        .collect::<Result<Vec<_>>>()?;
    let config = SigningConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| invalid(OP, e))?;
    r.outcome(
        OP,
        r.client
            .put_signing_configuration()
            .signing_configuration(config)
            .send()
            .await,
    )
    .map(drop)
}

fn signing_rule_to_ecr(op: &'static str, rule: &SigningRuleInfo) -> Result<SigningRule> {
    let filters = rule
        .repository_filters
        .iter()
        .map(|f| {
            SigningRepositoryFilter::builder()
                .filter(f)
                .filter_type(SigningRepositoryFilterType::WildcardMatch)
                .build()
                .map_err(|e| invalid(op, e))
        })
        .collect::<Result<Vec<_>>>()?;
    SigningRule::builder()
        .signing_profile_arn(&rule.profile_arn)
        // An empty list is left out: ECR's list takes 1..100 filters, and none means all.
        .set_repository_filters((!filters.is_empty()).then_some(filters))
        .build()
        .map_err(|e| invalid(op, e))
}

pub(super) async fn delete_signing_configuration(r: &EcrRegistry) -> Result<()> {
    deleted(r.outcome(
        "DeleteSigningConfiguration",
        r.client.delete_signing_configuration().send().await,
    ))
}

pub(super) async fn list_pull_time_update_exclusions(r: &EcrRegistry) -> Result<BTreeSet<String>> {
    let mut all = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let out = r.outcome(
            "ListPullTimeUpdateExclusions",
            r.client
                .list_pull_time_update_exclusions()
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await,
        )?;
        all.extend(out.pull_time_update_exclusions().iter().cloned());
        match out.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(all),
        }
    }
}

pub(super) async fn register_pull_time_update_exclusion(
    r: &EcrRegistry,
    principal_arn: &str,
) -> Result<()> {
    let result = r.outcome(
        "RegisterPullTimeUpdateExclusion",
        r.client
            .register_pull_time_update_exclusion()
            .principal_arn(principal_arn)
            .send()
            .await,
    );
    match result {
        // Registered meanwhile (e.g. by the previous attempt of this very call): what was asked.
        Err(e) if e.class == ErrorClass::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

pub(super) async fn deregister_pull_time_update_exclusion(
    r: &EcrRegistry,
    principal_arn: &str,
) -> Result<()> {
    deleted(
        r.outcome(
            "DeregisterPullTimeUpdateExclusion",
            r.client
                .deregister_pull_time_update_exclusion()
                .principal_arn(principal_arn)
                .send()
                .await,
        ),
    )
}
