//! ImageScanReport: one report per image digest of every Ready Repository, refreshed on a
//! schedule from DescribeImages and DescribeImageScanFindings.
//!
//! Not a kube `Controller`: the source of truth is ECR, so this is a loop that, every
//! `Config::sweep_interval`, reads each managed repository's images and their scans, computes
//! the reports that should exist (pure, [`build_spec`]), applies only those that differ, and
//! deletes the managed reports whose image is gone.
//!
//! ECR calls per refresh: one DescribeImages page per repository (1000 images a page), plus
//! DescribeImageScanFindings (all pages of 1000 findings) only for images whose scan differs
//! from their report's (DescribeImages carries each image's scan status and completion time).
//! A refresh where nothing changed costs one call per repository and writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use tracing::{debug, warn};

use super::{Context, Error, MANAGER};
use crate::api::Repository;
use crate::api::conditions::is_ready_at;
use crate::api::image_scan_report::{
    Finding, ImageScanReport, ImageScanReportSpec, ScanState, SeveritySummary,
};
use crate::api::scan_policy::Severity;
use crate::registry::{ImageInfo, ScanFinding, ScanFindings};

/// Label on every report the operator writes; only these are ever deleted.
pub const MANAGED_BY_LABEL: &str = "ecr.operator.dev/managed-by";
/// The report's repository, sanitized to a label value.
pub const REPOSITORY_LABEL: &str = "ecr.operator.dev/repository";
/// Findings kept per report; the rest are counted in `summary` and flagged by `truncated`.
pub const MAX_FINDINGS: usize = 200;
/// The status of a report for an image ECR holds no scan for.
pub const NOT_SCANNED: &str = "NOT_SCANNED";

/// Refreshes reports every sweep interval until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let _api = super::require_crd::<ImageScanReport>(&ctx.client).await?;
    tokio::pin!(shutdown);
    loop {
        let started = Instant::now();
        let result = refresh(&ctx).await;
        ctx.observe("imagescanreport", &result, started);
        let wait = match &result {
            Ok(()) => {
                ctx.reset_backoff("imagescanreport");
                ctx.config.sweep_interval
            }
            Err(e) => {
                warn!(error = %e, "refreshing image scan reports failed");
                ctx.backoff("imagescanreport")
                    .min(ctx.config.sweep_interval)
            }
        };
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One refresh of every report. A repository whose images cannot be read keeps its reports
/// until the next refresh; the others go on.
pub async fn refresh(ctx: &Context) -> Result<(), Error> {
    // Parsed one by one: a Repository this version cannot read must not stop every report.
    let repos = super::list_parseable::<Repository>(&ctx.client).await?;
    let mut known = BTreeSet::new();
    let mut ready = BTreeMap::new();
    for r in &repos {
        let Some(status) = &r.status else { continue };
        let Some(name) = status.repository_name.clone() else {
            continue;
        };
        known.insert(name.clone());
        if is_ready_at(&status.common.conditions, r.metadata.generation) {
            ready.insert(name, status.registry_id.clone().unwrap_or_default());
        }
    }

    let api = Api::<ImageScanReport>::all(ctx.client.clone());
    let existing: BTreeMap<String, ImageScanReport> = api
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")))
        .await?
        .items
        .into_iter()
        .map(|r| (r.name_any(), r))
        .collect();

    let mut wanted = BTreeSet::new();
    let mut refreshed = BTreeSet::new();
    let mut first_error = None;
    for (repository, registry_id) in &ready {
        match refresh_repository(ctx, &api, &existing, repository, registry_id).await {
            Ok(names) => {
                refreshed.insert(repository.clone());
                wanted.extend(names);
            }
            Err(e) => {
                warn!(repository, error = %e, "refreshing scan reports failed");
                first_error.get_or_insert(e);
            }
        }
    }

    // Reports of refreshed repositories whose image is gone, and of repositories no Repository
    // object names any more. Repositories that are only not Ready keep theirs.
    for (name, report) in &existing {
        let repo = &report.spec.repository_name;
        let stale = (refreshed.contains(repo) && !wanted.contains(name)) || !known.contains(repo);
        if stale {
            debug!(name, repo, "deleting scan report of a vanished image");
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    first_error.get_or_insert(e.into());
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Applies the reports of one repository; returns the names of the reports that should exist.
async fn refresh_repository(
    ctx: &Context,
    api: &Api<ImageScanReport>,
    existing: &BTreeMap<String, ImageScanReport>,
    repository: &str,
    registry_id: &str,
) -> Result<Vec<String>, Error> {
    let images = ctx.registry.list_images(repository).await?;
    let mut names = Vec::with_capacity(images.len());
    for image in &images {
        let name = report_name(repository, &image.digest);
        let current = existing.get(&name);
        let spec = match current.filter(|r| scan_unchanged(&r.spec, image)) {
            // DescribeImages says the scan is the one the report holds: only tags can differ.
            Some(r) => {
                let mut spec = r.spec.clone();
                spec.image_tags = sorted(&image.tags);
                spec.registry_id = registry_id.to_string();
                spec
            }
            None => {
                let scan = ctx
                    .registry
                    .describe_image_scan_findings(repository, &image.digest)
                    .await?;
                build_spec(registry_id, repository, image, scan.as_ref())
            }
        };
        let labels_ok = current.is_some_and(|r| {
            r.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGER)
                && r.labels().get(REPOSITORY_LABEL) == Some(&label_value(repository))
        });
        let unchanged = current.is_some_and(|r| r.spec == spec) && labels_ok;
        if !unchanged {
            let patch = serde_json::json!({
                "apiVersion": "ecr.operator.dev/v1alpha1",
                "kind": "ImageScanReport",
                "metadata": {
                    "name": name,
                    "labels": {
                        MANAGED_BY_LABEL: MANAGER,
                        REPOSITORY_LABEL: label_value(repository),
                    },
                },
                "spec": spec,
            });
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        }
        names.push(name);
    }
    Ok(names)
}

/// Whether DescribeImages shows the same scan `spec` holds, so that DescribeImageScanFindings
/// can be skipped: a COMPLETE scan finished at the same time, or no scan at all.
pub fn scan_unchanged(spec: &ImageScanReportSpec, image: &ImageInfo) -> bool {
    if spec.image_digest != image.digest {
        return false;
    }
    match image.scan_status.as_deref() {
        None => spec.scan.status == NOT_SCANNED,
        Some("COMPLETE") => {
            spec.scan.status == "COMPLETE"
                && image.scan_completed_at.is_some()
                && spec.scan.completed_at == image.scan_completed_at.map(|t| t.to_string())
        }
        Some(_) => false,
    }
}

fn sorted(tags: &[String]) -> Vec<String> {
    let mut tags = tags.to_vec();
    tags.sort();
    tags
}

/// The report for one image: pure, from what ECR said.
pub fn build_spec(
    registry_id: &str,
    repository: &str,
    image: &ImageInfo,
    scan: Option<&ScanFindings>,
) -> ImageScanReportSpec {
    let tags = sorted(&image.tags);
    let Some(scan) = scan else {
        return ImageScanReportSpec {
            registry_id: registry_id.to_string(),
            repository_name: repository.to_string(),
            image_digest: image.digest.clone(),
            image_tags: tags,
            scan: ScanState {
                status: NOT_SCANNED.to_string(),
                ..ScanState::default()
            },
            ..ImageScanReportSpec::default()
        };
    };
    let scan_type = if scan.enhanced_findings.is_empty() && scan.status != "ACTIVE" {
        "BASIC"
    } else {
        "ENHANCED"
    };
    let all: Vec<&ScanFinding> = scan
        .findings
        .iter()
        .chain(scan.enhanced_findings.iter())
        .collect();
    let summary = if scan.severity_counts.is_empty() {
        count(all.iter().map(|f| f.severity.as_str()))
    } else {
        summary_of(&scan.severity_counts)
    };
    let mut findings: Vec<Finding> = all.iter().map(|f| finding(f)).collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
    });
    let truncated = findings.len() > MAX_FINDINGS;
    findings.truncate(MAX_FINDINGS);
    ImageScanReportSpec {
        registry_id: registry_id.to_string(),
        repository_name: repository.to_string(),
        image_digest: image.digest.clone(),
        image_tags: tags,
        scan: ScanState {
            status: scan.status.clone(),
            description: scan.description.clone(),
            completed_at: scan.completed_at.map(|t| t.to_string()),
            vulnerability_source_updated_at: scan
                .vulnerability_source_updated_at
                .map(|t| t.to_string()),
            scan_type: Some(scan_type.to_string()),
        },
        summary,
        findings,
        truncated,
    }
}

fn finding(f: &ScanFinding) -> Finding {
    Finding {
        id: f.id.clone(),
        severity: severity(&f.severity),
        package: f.package.clone(),
        installed_version: f.installed_version.clone(),
        fixed_version: f.fixed_version.clone(),
        fix_available: f.fix_available,
        score: f.score,
        uri: f.uri.clone(),
    }
}

/// ECR's severity names; UNDEFINED, UNTRIAGED and anything new rank lowest.
fn severity(s: &str) -> Severity {
    match s.to_ascii_uppercase().as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => Severity::Informational,
    }
}

fn summary_of(counts: &BTreeMap<String, i64>) -> SeveritySummary {
    let mut s = SeveritySummary::default();
    for (k, n) in counts {
        add(&mut s, k, *n);
    }
    s
}

fn count<'a>(severities: impl Iterator<Item = &'a str>) -> SeveritySummary {
    let mut s = SeveritySummary::default();
    for sev in severities {
        add(&mut s, sev, 1);
    }
    s
}

fn add(s: &mut SeveritySummary, severity: &str, n: i64) {
    let slot = match severity.to_ascii_uppercase().as_str() {
        "CRITICAL" => &mut s.critical,
        "HIGH" => &mut s.high,
        "MEDIUM" => &mut s.medium,
        "LOW" => &mut s.low,
        "INFORMATIONAL" => &mut s.informational,
        _ => &mut s.undefined,
    };
    *slot += n;
}

/// `<repository, sanitized, ≤ 40>-<8 hex of the repository>-<16 hex of the digest>`: a valid
/// DNS-1123 subdomain, stable across restarts and versions (FNV-1a, not std's hasher), and
/// distinct for repositories that sanitize alike.
pub fn report_name(repository: &str, digest: &str) -> String {
    let hex: String = digest
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let prefix = sanitize(repository, 40);
    let hash = format!("{:08x}", fnv1a(repository.as_bytes()));
    if prefix.is_empty() {
        format!("{hash}-{hex}")
    } else {
        format!("{prefix}-{hash}-{hex}")
    }
}

/// The repository as a label value (≤ 63 characters of `[a-z0-9-]`).
pub fn label_value(repository: &str) -> String {
    sanitize(repository, 63)
}

fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_matches('-').to_string()
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str]) -> ImageInfo {
        ImageInfo {
            digest: format!("sha256:{}", "ab".repeat(32)),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: None,
            size_bytes: None,
            scan_status: None,
            scan_completed_at: None,
        }
    }

    fn f(id: &str, sev: &str) -> ScanFinding {
        ScanFinding {
            id: id.to_string(),
            severity: sev.to_string(),
            ..ScanFinding::default()
        }
    }

    #[test]
    fn names_are_dns_1123_and_distinct() {
        let d = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let a = report_name("team/app", &d);
        let b = report_name("team-app", &d);
        assert_ne!(a, b);
        assert!(a.starts_with("team-app-"), "{a}");
        assert!(a.ends_with("-0123456789abcdef"), "{a}");
        let long = report_name(&"x/".repeat(200), &d);
        assert!(long.len() <= 253);
        for n in [a, b, long, report_name("__", &d)] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.starts_with('-') && !n.ends_with('-'), "{n}");
        }
    }

    #[test]
    fn capped_findings_keep_the_most_severe_and_all_counts() {
        let mut findings: Vec<ScanFinding> =
            (0..300).map(|i| f(&format!("CVE-L-{i}"), "LOW")).collect();
        findings.push(f("CVE-CRIT", "CRITICAL"));
        findings.push(f("CVE-HIGH", "HIGH"));
        findings.push(f("CVE-NEW", "SOMETHING_NEW"));
        let scan = ScanFindings {
            status: "COMPLETE".to_string(),
            findings,
            ..ScanFindings::default()
        };
        let spec = build_spec("123", "app", &image(&["b", "a"]), Some(&scan));
        assert!(spec.truncated);
        assert_eq!(spec.findings.len(), MAX_FINDINGS);
        assert_eq!(spec.findings[0].id, "CVE-CRIT");
        assert_eq!(spec.findings[1].id, "CVE-HIGH");
        assert_eq!(spec.summary.critical, 1);
        assert_eq!(spec.summary.high, 1);
        assert_eq!(spec.summary.low, 300);
        assert_eq!(spec.summary.undefined, 1);
        assert_eq!(spec.image_tags, vec!["a", "b"]);
        assert_eq!(spec.scan.scan_type.as_deref(), Some("BASIC"));
    }

    #[test]
    fn ecr_counts_win_and_unknown_states_are_kept_raw() {
        let scan = ScanFindings {
            status: "SOME_FUTURE_STATE".to_string(),
            severity_counts: BTreeMap::from([("CRITICAL".to_string(), 7)]),
            enhanced_findings: vec![f("CVE-1", "CRITICAL")],
            ..ScanFindings::default()
        };
        let spec = build_spec("123", "app", &image(&[]), Some(&scan));
        assert_eq!(spec.summary.critical, 7);
        assert!(!spec.truncated);
        assert_eq!(spec.scan.status, "SOME_FUTURE_STATE");
        assert_eq!(spec.scan.scan_type.as_deref(), Some("ENHANCED"));
        let none = build_spec("123", "app", &image(&[]), None);
        assert_eq!(none.scan.status, NOT_SCANNED);
    }

    #[test]
    fn unchanged_scans_are_not_read_again() {
        let scan = ScanFindings {
            status: "COMPLETE".to_string(),
            completed_at: Some(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap()),
            ..ScanFindings::default()
        };
        let mut img = image(&["a"]);
        let spec = build_spec("123", "app", &img, Some(&scan));
        assert!(!scan_unchanged(&spec, &img), "DescribeImages shows no scan");
        img.scan_status = Some("COMPLETE".to_string());
        img.scan_completed_at = scan.completed_at;
        assert!(scan_unchanged(&spec, &img));
        img.scan_completed_at =
            Some(k8s_openapi::jiff::Timestamp::from_second(1_700_000_001).unwrap());
        assert!(!scan_unchanged(&spec, &img), "a newer scan");
        img.scan_status = Some("ACTIVE".to_string());
        assert!(!scan_unchanged(&spec, &img));
        let unscanned = build_spec("123", "app", &image(&[]), None);
        assert!(scan_unchanged(&unscanned, &image(&[])));
    }
}
