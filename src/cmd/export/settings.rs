//! The registry-wide part of the conversion: replication, scanning, the registry policy,
//! pull-through cache rules and creation templates. Each is one document (or one template) the
//! operator would rewrite whole, so what a kind cannot say refuses the object, never a part.

use std::collections::BTreeMap;

use ecr_operator::api::pull_through_cache_rule::PullThroughCacheRuleSpec;
use ecr_operator::api::replication_config::{
    ReplicationConfigSpec, ReplicationDestination, ReplicationFilter, ReplicationFilterType,
    ReplicationRule,
};
use ecr_operator::api::repository::Encryption;
use ecr_operator::api::repository_creation_template::{AppliedFor, RepositoryCreationTemplateSpec};
use ecr_operator::api::scan_policy::{
    Enforcement, EnforcementMode, ScanFilter, ScanFilterType, ScanFrequency, ScanPolicySpec,
    ScanRule, ScanType,
};
use ecr_operator::api::{
    PullThroughCacheRule, RegistryPolicy, ReplicationConfig, RepositoryCreationTemplate, ScanPolicy,
};
use ecr_operator::registry::{
    CreationTemplate, PullThroughCacheRuleInfo, ReplicationSettings, ScanningRuleInfo,
    ScanningSettings,
};

use super::convert::{Note, encryption_type, mutability, tag_accepted};
use super::names::object_names;
use super::policy;

/// The object names of the registry-wide documents (one object each).
pub const REPLICATION_NAME: &str = "replication";
pub const SCANNING_NAME: &str = "registry-scanning";
pub const REGISTRY_POLICY_NAME: &str = "registry-policy";

/// The one ReplicationConfig holding every rule, in ECR's order (the controller compares the
/// merged rules in order); none when replication is off.
pub fn replication(
    settings: &ReplicationSettings,
    notes: &mut Vec<Note>,
) -> Option<ReplicationConfig> {
    if settings.rules.is_empty() {
        return None;
    }
    if settings.rules.len() > 10 || settings.rules.iter().any(|r| r.destinations.is_empty()) {
        notes.push(Note::refused(
            "replication configuration",
            "a ReplicationConfig holds 1 to 10 rules of 1 or more destinations",
        ));
        return None;
    }
    let rules = settings
        .rules
        .iter()
        .map(|r| ReplicationRule {
            destinations: r
                .destinations
                .iter()
                .map(|(region, registry_id)| ReplicationDestination {
                    region: region.clone(),
                    registry_id: registry_id.clone(),
                })
                .collect(),
            repository_filters: r
                .filters
                .iter()
                .map(|f| ReplicationFilter {
                    filter: f.clone(),
                    filter_type: ReplicationFilterType::PrefixMatch,
                })
                .collect(),
            delete_replication: r.delete_replication,
        })
        .collect();
    Some(ReplicationConfig::new(
        REPLICATION_NAME,
        ReplicationConfigSpec {
            registry_ref: None,
            rules,
        },
    ))
}

/// The shape the ScanPolicy schema takes for a filter: `^[a-z0-9*](?:[._/*-]?[a-z0-9*]+)*$`.
fn scan_filter_accepted(filter: &str) -> bool {
    let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '*';
    let separator = |c: char| matches!(c, '.' | '_' | '/' | '-');
    let chars: Vec<char> = filter.chars().collect();
    (1..=255).contains(&chars.len())
        && chars.first().is_some_and(|c| word(*c))
        && chars.last().is_some_and(|c| word(*c))
        && chars.iter().all(|c| word(*c) || separator(*c))
        && !chars.windows(2).any(|w| separator(w[0]) && separator(w[1]))
}

/// The registry scanning configuration as a ScanPolicy in `audit` mode: importing what ECR
/// scans must not start refusing pods (the kind's default mode is `enforce`). None for the
/// configuration of a registry nobody configured (BASIC, no rules).
pub fn scanning(settings: &ScanningSettings, notes: &mut Vec<Note>) -> Option<ScanPolicy> {
    let subject = "registry scanning configuration";
    let rules: Vec<_> = settings
        .rules
        .iter()
        .filter(|r| !r.filters.is_empty())
        .collect();
    let scan_type = match settings.scan_type.as_str() {
        "BASIC" if rules.is_empty() => return None,
        "BASIC" => ScanType::Basic,
        "ENHANCED" => ScanType::Enhanced,
        other => {
            notes.push(Note::refused(
                subject,
                format!("scan type {other} is unknown"),
            ));
            return None;
        }
    };
    if rules.is_empty() {
        notes.push(Note::refused(
            subject,
            "ENHANCED scanning without rules: a ScanPolicy without rules takes no part in the registry's configuration",
        ));
        return None;
    }
    let typed = match rules.into_iter().map(scan_rule).collect() {
        Ok(typed) => typed,
        Err(reason) => {
            notes.push(Note::refused(subject, reason));
            return None;
        }
    };
    let spec = ScanPolicySpec {
        registry_ref: None,
        scan_type,
        rules: typed,
        enforcement: Enforcement {
            mode: EnforcementMode::Audit,
            ..Default::default()
        },
        registry_ids: Vec::new(),
    };
    Some(ScanPolicy::new(SCANNING_NAME, spec))
}

fn scan_rule(r: &ScanningRuleInfo) -> Result<ScanRule, String> {
    let frequency = match r.frequency.as_str() {
        "SCAN_ON_PUSH" => ScanFrequency::ScanOnPush,
        "CONTINUOUS_SCAN" => ScanFrequency::ContinuousScan,
        "MANUAL" => ScanFrequency::Manual,
        other => return Err(format!("scan frequency {other} is unknown")),
    };
    if let Some(bad) = r.filters.iter().find(|f| !scan_filter_accepted(f)) {
        return Err(format!("filter {bad} does not fit the ScanPolicy schema"));
    }
    Ok(ScanRule {
        scan_frequency: frequency,
        repository_filters: r
            .filters
            .iter()
            .map(|f| ScanFilter {
                filter: f.clone(),
                filter_type: ScanFilterType::Wildcard,
            })
            .collect(),
    })
}

pub fn registry_policy(text: &str, notes: &mut Vec<Note>) -> Option<RegistryPolicy> {
    match policy::registry_policy(text) {
        Ok(spec) => Some(RegistryPolicy::new(REGISTRY_POLICY_NAME, spec)),
        Err(e) => {
            notes.push(Note::refused("registry policy", e));
            None
        }
    }
}

/// One object per rule, named after its prefix, with `adopt: true`: the rule exists already.
pub fn pull_through_cache_rules(rules: &[PullThroughCacheRuleInfo]) -> Vec<PullThroughCacheRule> {
    let names = object_names(rules.iter().map(|r| r.prefix.as_str()));
    let mut sorted: Vec<_> = rules.iter().collect();
    sorted.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    sorted
        .into_iter()
        .map(|r| {
            let spec = PullThroughCacheRuleSpec {
                registry_ref: None,
                ecr_repository_prefix: r.prefix.clone(),
                upstream_registry_url: r.upstream_registry_url.clone(),
                // ECR reports ROOT, its default, where none was set; the kind takes the field
                // only with an ECR upstream, and reads it absent as ROOT.
                upstream_repository_prefix: r
                    .upstream_repository_prefix
                    .clone()
                    .filter(|p| p != "ROOT"),
                credential_arn: r.credential_arn.clone(),
                credentials_secret_ref: None,
                custom_role_arn: r.custom_role_arn.clone(),
                adopt: true,
            };
            PullThroughCacheRule::new(&names[&r.prefix], spec)
        })
        .collect()
}

fn applied_for(value: &str) -> Option<AppliedFor> {
    Some(match value {
        "PULL_THROUGH_CACHE" => AppliedFor::PullThroughCache,
        "REPLICATION" => AppliedFor::Replication,
        "CREATE_ON_PUSH" => AppliedFor::CreateOnPush,
        _ => return None,
    })
}

pub fn templates(
    templates: &[CreationTemplate],
    notes: &mut Vec<Note>,
) -> Vec<RepositoryCreationTemplate> {
    let names = object_names(templates.iter().map(|t| t.prefix.as_str()));
    let mut sorted: Vec<_> = templates.iter().collect();
    sorted.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    sorted
        .into_iter()
        .filter_map(|t| match template_spec(t) {
            Ok(spec) => Some(RepositoryCreationTemplate::new(&names[&t.prefix], spec)),
            Err(e) => {
                notes.push(Note::refused(
                    format!("repository creation template {}", t.prefix),
                    e,
                ));
                None
            }
        })
        .collect()
}

fn template_spec(t: &CreationTemplate) -> Result<RepositoryCreationTemplateSpec, String> {
    let (mode, filters) = mutability(&t.tag_mutability, &t.tag_mutability_exclusions)?;
    let etype = encryption_type(&t.encryption_type)
        .ok_or_else(|| format!("encryption type {} is unknown", t.encryption_type))?;
    let applied_for = t
        .applied_for
        .iter()
        .map(|a| applied_for(a).ok_or_else(|| format!("appliedFor {a} is unknown")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((k, _)) = t.resource_tags.iter().find(|(k, v)| !tag_accepted(k, v)) {
        return Err(format!(
            "resource tag {k} does not fit the kind's tag rules"
        ));
    }
    let present = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let lifecycle_rules = match present(&t.lifecycle_policy) {
        Some(text) => {
            policy::lifecycle_rules(&text).map_err(|e| format!("lifecycle policy: {e}"))?
        }
        None => Vec::new(),
    };
    let repository_policy = match present(&t.repository_policy) {
        Some(text) => {
            Some(policy::repository_policy(&text).map_err(|e| format!("repository policy: {e}"))?)
        }
        None => None,
    };
    let encryption = match (etype, &t.kms_key) {
        (ecr_operator::api::repository::EncryptionType::Aes256, None) => None,
        (encryption_type, kms_key) => Some(Encryption {
            encryption_type,
            kms_key: kms_key.clone(),
        }),
    };
    Ok(RepositoryCreationTemplateSpec {
        registry_ref: None,
        prefix: t.prefix.clone(),
        applied_for,
        description: present(&t.description),
        image_tag_mutability: mode,
        image_tag_mutability_exclusion_filters: filters,
        encryption,
        resource_tags: t
            .resource_tags
            .clone()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        custom_role_arn: present(&t.custom_role_arn),
        lifecycle_rules,
        repository_policy,
        deletion_policy: Default::default(),
        adopt: true,
    })
}
