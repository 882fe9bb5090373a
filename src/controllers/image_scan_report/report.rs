//! What a report says, pure: its spec built from what ECR returned (findings capped most severe
//! first, text clipped to the schema's bounds), and its name and labels.

use std::collections::BTreeMap;

use super::{MAX_FINDINGS, NOT_SCANNED};
use crate::api::image_scan_report::{
    Finding, ImageScanReportSpec, MAX_TAGS, MAX_TEXT, ScanState, SeveritySummary,
};
use crate::api::scan_policy::Severity;
use crate::controllers::status::recorded_time;
use crate::registry::{ImageInfo, ScanFinding, ScanFindings};

/// The image's tags as a report lists them: sorted, at most `MAX_TAGS` (the schema's bound).
pub fn sorted(tags: &[String]) -> Vec<String> {
    let mut tags = tags.to_vec();
    tags.sort();
    tags.truncate(MAX_TAGS);
    tags
}

/// ECR's text clipped to the schema's bound (`maxLength` counts characters), so that no
/// report is refused by the API server for one long field.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

/// The report for one image: pure, from what ECR said.
pub fn build_spec(
    registry_id: &str,
    region: &str,
    repository: &str,
    image: &ImageInfo,
    scan: Option<&ScanFindings>,
) -> ImageScanReportSpec {
    let unscanned = ImageScanReportSpec {
        registry_id: registry_id.to_string(),
        region: region.to_string(),
        repository_name: repository.to_string(),
        image_digest: image.digest.clone(),
        image_tags: sorted(&image.tags),
        scan: ScanState {
            status: NOT_SCANNED.to_string(),
            ..ScanState::default()
        },
        ..ImageScanReportSpec::default()
    };
    let Some(scan) = scan else {
        return unscanned;
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
    let (findings, truncated) = capped(&all);
    ImageScanReportSpec {
        scan: scan_state(scan),
        summary,
        findings,
        truncated,
        ..unscanned
    }
}

fn scan_state(scan: &ScanFindings) -> ScanState {
    let scan_type = if scan.enhanced_findings.is_empty() && scan.status != "ACTIVE" {
        "BASIC"
    } else {
        "ENHANCED"
    };
    ScanState {
        status: scan.status.clone(),
        description: scan.description.as_deref().map(bounded),
        completed_at: recorded_time(scan.completed_at),
        vulnerability_source_updated_at: recorded_time(scan.vulnerability_source_updated_at),
        scan_type: Some(scan_type.to_string()),
    }
}

/// The findings a report keeps: the `MAX_FINDINGS` most severe (then highest score), and
/// whether some were left out.
fn capped(all: &[&ScanFinding]) -> (Vec<Finding>, bool) {
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
    (findings, truncated)
}

fn finding(f: &ScanFinding) -> Finding {
    Finding {
        id: bounded(&f.id),
        severity: severity(&f.severity),
        package: f.package.as_deref().map(bounded),
        installed_version: f.installed_version.as_deref().map(bounded),
        fixed_version: f.fixed_version.as_deref().map(bounded),
        fix_available: f.fix_available,
        score: f.score,
        uri: f.uri.as_deref().map(bounded),
    }
}

/// ECR's severity names; UNDEFINED, UNTRIAGED and anything new rank lowest.
fn severity(s: &str) -> Severity {
    Severity::from_ecr(s).unwrap_or(Severity::Informational)
}

fn summary_of(counts: &BTreeMap<String, i64>) -> SeveritySummary {
    let mut s = SeveritySummary::default();
    for (k, n) in counts {
        *s.count_mut(Severity::from_ecr(k)) += n;
    }
    s
}

fn count<'a>(severities: impl Iterator<Item = &'a str>) -> SeveritySummary {
    let mut s = SeveritySummary::default();
    for sev in severities {
        *s.count_mut(Severity::from_ecr(sev)) += 1;
    }
    s
}

/// `<repository, sanitized, ≤ 40>-<8 hex of registry/repository>-<16 hex of the digest>`: a
/// valid DNS-1123 subdomain, stable across restarts and versions (FNV-1a, not std's hasher),
/// distinct for repositories that sanitize alike and for the same repository and digest in two
/// registries (a replicated image has one digest in every account it is copied to).
pub fn report_name(registry_id: &str, region: &str, repository: &str, digest: &str) -> String {
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
    // A region-less report keeps the name it had before regions were recorded.
    let registry = match region {
        "" => registry_id.to_string(),
        _ => format!("{registry_id}/{region}"),
    };
    let hash = format!(
        "{:08x}",
        fnv1a(format!("{registry}/{repository}").as_bytes())
    );
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
            ..Default::default()
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
        let account = "111122223333";
        let a = report_name(account, "", "team/app", &d);
        let b = report_name(account, "", "team-app", &d);
        assert_ne!(a, b);
        // The same image replicated into another account has a report of its own.
        let other_account = report_name("444455556666", "", "team/app", &d);
        let east = report_name(account, "us-east-1", "team/app", &d);
        let west = report_name(account, "eu-west-1", "team/app", &d);
        assert_ne!(east, west, "one image in two regions has two reports");
        assert_ne!(east, a, "a region-less report is another one");
        assert_ne!(a, other_account);
        assert!(a.starts_with("team-app-"), "{a}");
        assert!(a.ends_with("-0123456789abcdef"), "{a}");
        let long = report_name(account, "", &"x/".repeat(200), &d);
        assert!(long.len() <= 253);
        for n in [
            a,
            b,
            other_account,
            long,
            east,
            west,
            report_name("", "", "__", &d),
        ] {
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
        let spec = build_spec("123", "", "app", &image(&["b", "a"]), Some(&scan));
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
        let spec = build_spec("123", "", "app", &image(&[]), Some(&scan));
        assert_eq!(spec.summary.critical, 7);
        assert!(!spec.truncated);
        assert_eq!(spec.scan.status, "SOME_FUTURE_STATE");
        assert_eq!(spec.scan.scan_type.as_deref(), Some("ENHANCED"));
        let none = build_spec("123", "", "app", &image(&[]), None);
        assert_eq!(none.scan.status, NOT_SCANNED);
    }
}
