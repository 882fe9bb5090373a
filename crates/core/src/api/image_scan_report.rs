//! The ImageScanReport kind: ECR's scan findings for one image digest, written by the operator.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;
use super::scan_policy::Severity;

/// The longest text field of a report (ids, package names, versions, URIs, the scan's
/// description); the operator clips what ECR says to this, so a report always fits its schema.
pub const MAX_TEXT: usize = 1024;
/// The most tags a report lists (the first in sort order).
pub const MAX_TAGS: usize = 1000;

/// Scan results for one image digest. Written by the operator; read by the admission webhook.
/// Named `<repository-hash>-<digest-hex-prefix>`; see `spec` for the full identity.
#[derive(CustomResource, JsonSchema, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "ecr.operator.dev",
    version = "v1alpha1",
    kind = "ImageScanReport",
    status = "ImageScanReportStatus",
    shortname = "ecrscanreport",
    category = "ecr",
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.repositoryName"}"#,
    printcolumn = r#"{"name":"Tag","type":"string","jsonPath":".spec.imageTags[0]"}"#,
    printcolumn = r#"{"name":"Scan","type":"string","jsonPath":".spec.scan.status"}"#,
    printcolumn = r#"{"name":"Critical","type":"integer","jsonPath":".spec.summary.critical"}"#,
    printcolumn = r#"{"name":"High","type":"integer","jsonPath":".spec.summary.high"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanReportSpec {
    /// The registry (AWS account id; empty when the client's own registry was meant).
    #[schemars(length(max = 12))]
    pub registry_id: String,
    /// The registry's AWS region. Empty in reports of a client whose region the operator was
    /// not told, and in reports written before regions were recorded: such a report counts for
    /// its image in any region (a digest names the same content everywhere).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 32))]
    pub region: String,
    #[schemars(length(max = 256))]
    pub repository_name: String,
    #[schemars(length(max = 255), regex(pattern = "^[a-z0-9]+:[a-f0-9]{32,128}$"))]
    pub image_digest: String,
    /// The image's tags (ECR's ImageTag is at most 300 characters), at most [`MAX_TAGS`].
    #[serde(default)]
    #[schemars(length(max = 1000), inner(length(max = 300)))]
    pub image_tags: Vec<String>,
    pub scan: ScanState,
    #[serde(default)]
    pub summary: SeveritySummary,
    /// Findings, most severe first, capped (see `truncated` and `summary` for totals).
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub truncated: bool,
}

/// The scan's state as ECR reports it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScanState {
    /// ECR's scan status (COMPLETE, IN_PROGRESS, FAILED, ...); anything else counts as unscanned.
    #[schemars(length(max = 64))]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TEXT))]
    pub description: Option<String>,
    /// When the scan completed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub completed_at: Option<String>,
    /// When the vulnerability database was last updated (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub vulnerability_source_updated_at: Option<String>,
    /// BASIC or ENHANCED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub scan_type: Option<String>,
}

/// Finding counts by severity (all findings, not only the listed ones).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SeveritySummary {
    #[serde(default)]
    pub critical: i64,
    #[serde(default)]
    pub high: i64,
    #[serde(default)]
    pub medium: i64,
    #[serde(default)]
    pub low: i64,
    #[serde(default)]
    pub informational: i64,
    #[serde(default)]
    pub undefined: i64,
}

impl Severity {
    /// ECR's name for the severity (its `FindingSeverity`).
    pub const fn as_ecr(self) -> &'static str {
        match self {
            Self::Informational => "INFORMATIONAL",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }

    /// The severity ECR names `name`, in any case. `None` for `UNDEFINED`, Inspector's
    /// `UNTRIAGED` and names ECR may add: they rank below every threshold and are counted in
    /// [`SeveritySummary::undefined`].
    pub fn from_ecr(name: &str) -> Option<Self> {
        [
            Self::Informational,
            Self::Low,
            Self::Medium,
            Self::High,
            Self::Critical,
        ]
        .into_iter()
        .find(|s| s.as_ecr().eq_ignore_ascii_case(name))
    }
}

impl SeveritySummary {
    /// The count for `severity`.
    pub fn count(&self, severity: Severity) -> i64 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Informational => self.informational,
        }
    }

    /// The counter for `severity`; `None` (see [`Severity::from_ecr`]) is `undefined`.
    pub fn count_mut(&mut self, severity: Option<Severity>) -> &mut i64 {
        match severity {
            Some(Severity::Critical) => &mut self.critical,
            Some(Severity::High) => &mut self.high,
            Some(Severity::Medium) => &mut self.medium,
            Some(Severity::Low) => &mut self.low,
            Some(Severity::Informational) => &mut self.informational,
            None => &mut self.undefined,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// CVE or finding id.
    #[schemars(length(max = MAX_TEXT))]
    pub id: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TEXT))]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TEXT))]
    pub installed_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TEXT))]
    pub fixed_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_available: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TEXT))]
    pub uri: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanReportStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_round_trip_through_ecr_names() {
        let all = [
            Severity::Informational,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ];
        for s in all {
            assert_eq!(Severity::from_ecr(s.as_ecr()), Some(s));
            assert_eq!(Severity::from_ecr(&s.as_ecr().to_lowercase()), Some(s));
            // The CRD spells them as ECR does.
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::from(s.as_ecr()))
            );
        }
        for other in ["UNDEFINED", "UNTRIAGED", "", "SEVERE"] {
            assert_eq!(Severity::from_ecr(other), None, "{other}");
        }
        let mut summary = SeveritySummary::default();
        for (name, n) in [
            ("CRITICAL", 2),
            ("low", 1),
            ("UNDEFINED", 3),
            ("UNTRIAGED", 1),
        ] {
            *summary.count_mut(Severity::from_ecr(name)) += n;
        }
        assert_eq!(summary.count(Severity::Critical), 2);
        assert_eq!(summary.count(Severity::Low), 1);
        assert_eq!(summary.undefined, 4);
    }
}
