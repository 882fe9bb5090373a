//! Between aws-sdk-ecr's shapes and the registry's own types, both ways. No I/O.

use std::collections::BTreeMap;

use aws_sdk_ecr::types::{
    EnhancedImageScanFinding, ImageDetail, ImageScanFinding, ImageTagMutabilityExclusionFilter,
    ImageTagMutabilityExclusionFilterType, RegistryScanningRule, ReplicationConfiguration,
    ReplicationDestination, ReplicationRule, Repository, RepositoryFilter, RepositoryFilterType,
    ScanFrequency, ScanningRepositoryFilter, ScanningRepositoryFilterType, Tag,
};
use k8s_openapi::jiff::Timestamp;

use super::invalid;
use crate::registry::{
    ImageInfo, ReplicationRuleInfo, ReplicationSettings, RepositoryInfo, Result, ScanFinding,
    ScanFindings, ScanningRuleInfo, ScanningSettings,
};

pub(super) fn timestamp(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    let t = t?;
    Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
}

pub(super) fn image_info(d: &ImageDetail) -> Option<ImageInfo> {
    Some(ImageInfo {
        digest: d.image_digest()?.to_string(),
        tags: d.image_tags().to_vec(),
        pushed_at: timestamp(d.image_pushed_at()),
        size_bytes: d.image_size_in_bytes(),
        scan_status: d
            .image_scan_status()
            .and_then(|s| s.status())
            .map(|s| s.as_str().to_string()),
        scan_completed_at: timestamp(
            d.image_scan_findings_summary()
                .and_then(|s| s.image_scan_completed_at()),
        ),
        status: d.image_status().map(|s| s.as_str().to_string()),
        last_pulled_at: timestamp(d.last_recorded_pull_time()),
        last_archived_at: timestamp(d.last_archived_at()),
        last_activated_at: timestamp(d.last_activated_at()),
    })
}

pub(super) fn repository_info(r: &Repository) -> Option<RepositoryInfo> {
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
        tag_mutability_exclusions: r
            .image_tag_mutability_exclusion_filters()
            .iter()
            .map(|f| f.filter().to_string())
            .collect(),
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

/// WILDCARD exclusion filters (shape `ImageTagMutabilityExclusionFilters`, the only filter type
/// of the model), or `None` for none: ECR refuses the member, even empty, with MUTABLE and
/// IMMUTABLE.
pub(super) fn exclusions_to_ecr(
    operation: &'static str,
    filters: &[String],
) -> Result<Option<Vec<ImageTagMutabilityExclusionFilter>>> {
    if filters.is_empty() {
        return Ok(None);
    }
    filters
        .iter()
        .map(|f| {
            ImageTagMutabilityExclusionFilter::builder()
                .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                .filter(f)
                .build()
                .map_err(|e| invalid(operation, e))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

pub(super) fn tags_to_ecr(
    operation: &'static str,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<Tag>> {
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

/// Adds one DescribeImageScanFindings page to `out`: the status and times of the latest page
/// win, findings accumulate.
pub(super) fn merge_findings_page(
    out: &mut ScanFindings,
    page: &aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput,
) {
    if let Some(status) = page.image_scan_status() {
        if let Some(s) = status.status() {
            out.status = s.as_str().to_string();
        }
        out.description = status.description().map(str::to_string);
    }
    if let Some(f) = page.image_scan_findings() {
        out.completed_at = timestamp(f.image_scan_completed_at()).or(out.completed_at);
        out.vulnerability_source_updated_at =
            timestamp(f.vulnerability_source_updated_at()).or(out.vulnerability_source_updated_at);
        if let Some(counts) = f.finding_severity_counts() {
            out.severity_counts = counts
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), i64::from(*v)))
                .collect();
        }
        out.findings.extend(f.findings().iter().map(basic_finding));
        out.enhanced_findings
            .extend(f.enhanced_findings().iter().map(enhanced_finding));
    }
}

fn basic_finding(f: &ImageScanFinding) -> ScanFinding {
    let attribute = |key: &str| {
        f.attributes()
            .iter()
            .find(|a| a.key() == key)
            .and_then(|a| a.value())
            .map(str::to_string)
    };
    ScanFinding {
        id: f.name().unwrap_or_default().to_string(),
        severity: f
            .severity()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "UNDEFINED".to_string()),
        uri: f.uri().map(str::to_string),
        package: attribute("package_name"),
        installed_version: attribute("package_version"),
        fixed_version: None,
        fix_available: None,
        score: attribute("CVSS3_SCORE")
            .or_else(|| attribute("CVSS2_SCORE"))
            .and_then(|s| s.parse().ok()),
    }
}

fn enhanced_finding(f: &EnhancedImageScanFinding) -> ScanFinding {
    let details = f.package_vulnerability_details();
    let package = details.and_then(|d| d.vulnerable_packages().first());
    ScanFinding {
        id: details
            .and_then(|d| d.vulnerability_id())
            .or_else(|| f.title())
            .unwrap_or_default()
            .to_string(),
        severity: f.severity().unwrap_or("UNDEFINED").to_string(),
        uri: details.and_then(|d| d.source_url()).map(str::to_string),
        package: package.and_then(|p| p.name()).map(str::to_string),
        installed_version: package.and_then(|p| p.version()).map(str::to_string),
        fixed_version: package
            .and_then(|p| p.fixed_in_version())
            .map(str::to_string),
        fix_available: f.fix_available().map(|s| s.eq_ignore_ascii_case("YES")),
        score: (f.score() > 0.0).then_some(f.score()),
    }
}

/// A [`crate::registry::PullThroughCacheRuleInfo`] from any SDK shape with the rule's accessors
/// (the rule itself, and the Create output). `None` without a prefix.
macro_rules! ptc_info {
    ($r:expr, $updated:ident) => {{
        let r = $r;
        r.ecr_repository_prefix()
            .map(|prefix| crate::registry::PullThroughCacheRuleInfo {
                prefix: prefix.to_string(),
                upstream_registry_url: r.upstream_registry_url().unwrap_or_default().to_string(),
                registry_id: r.registry_id().unwrap_or_default().to_string(),
                upstream_registry: r.upstream_registry().map(|u| u.as_str().to_string()),
                upstream_repository_prefix: r.upstream_repository_prefix().map(str::to_string),
                credential_arn: r.credential_arn().map(str::to_string),
                custom_role_arn: r.custom_role_arn().map(str::to_string),
                created_at: super::convert::timestamp(r.created_at()),
                updated_at: super::convert::timestamp(r.$updated()),
            })
    }};
}
pub(super) use ptc_info;

pub(super) fn replication_from_ecr(
    config: Option<&ReplicationConfiguration>,
) -> ReplicationSettings {
    let rules = config
        .map(|c| {
            c.rules()
                .iter()
                .map(|r| ReplicationRuleInfo {
                    destinations: r
                        .destinations()
                        .iter()
                        .map(|d| (d.region().to_string(), d.registry_id().to_string()))
                        .collect(),
                    filters: r
                        .repository_filters()
                        .iter()
                        .map(|f| f.filter().to_string())
                        .collect(),
                    // Not in the SDK's shape: read from the body (`delete_replication`).
                    delete_replication: false,
                })
                .collect()
        })
        .unwrap_or_default();
    ReplicationSettings { rules }
}

pub(super) fn replication_to_ecr(
    operation: &'static str,
    settings: &ReplicationSettings,
) -> Result<ReplicationConfiguration> {
    let rules = settings
        .rules
        .iter()
        .map(|rule| replication_rule_to_ecr(operation, rule))
        .collect::<Result<Vec<_>>>()?;
    ReplicationConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| invalid(operation, e))
}

fn replication_rule_to_ecr(
    operation: &'static str,
    rule: &ReplicationRuleInfo,
) -> Result<ReplicationRule> {
    let destinations = rule
        .destinations
        .iter()
        .map(|(region, registry_id)| {
            ReplicationDestination::builder()
                .region(region)
                .registry_id(registry_id)
                .build()
                .map_err(|e| invalid(operation, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let filters = rule
        .filters
        .iter()
        .map(|f| {
            RepositoryFilter::builder()
                .filter(f)
                .filter_type(RepositoryFilterType::PrefixMatch)
                .build()
                .map_err(|e| invalid(operation, e))
        })
        .collect::<Result<Vec<_>>>()?;
    ReplicationRule::builder()
        .set_destinations(Some(destinations))
        .set_repository_filters((!filters.is_empty()).then_some(filters))
        .build()
        .map_err(|e| invalid(operation, e))
}

pub(super) fn scanning_from_ecr(
    config: Option<&aws_sdk_ecr::types::RegistryScanningConfiguration>,
) -> ScanningSettings {
    let Some(config) = config else {
        return ScanningSettings::default();
    };
    ScanningSettings {
        scan_type: config
            .scan_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "BASIC".to_string()),
        rules: config
            .rules()
            .iter()
            .map(|r| ScanningRuleInfo {
                frequency: r.scan_frequency().as_str().to_string(),
                filters: r
                    .repository_filters()
                    .iter()
                    .map(|f| f.filter().to_string())
                    .collect(),
            })
            .collect(),
    }
}

pub(super) fn scanning_rule_to_ecr(
    operation: &'static str,
    rule: &ScanningRuleInfo,
) -> Result<RegistryScanningRule> {
    let filters = rule
        .filters
        .iter()
        .map(|f| {
            ScanningRepositoryFilter::builder()
                .filter(f)
                .filter_type(ScanningRepositoryFilterType::Wildcard)
                .build()
                .map_err(|e| invalid(operation, e))
        })
        .collect::<Result<Vec<_>>>()?;
    RegistryScanningRule::builder()
        .scan_frequency(ScanFrequency::from(rule.frequency.as_str()))
        .set_repository_filters(Some(filters))
        .build()
        .map_err(|e| invalid(operation, e))
}
