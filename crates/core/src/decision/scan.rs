//! A scan report as the decision reads it: a whole [`ImageScanReportSpec`] or a compact
//! [`AdmissionReport`], the same questions answered the same way.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::check::completed_at;
use super::compact::AdmissionReport;
use super::symbols::Symbols;
use crate::api::image_scan_report::{Finding, ImageScanReportSpec};
use crate::api::scan_policy::Severity;

/// One report, found by a [`super::ReportLookup`].
#[derive(Clone, Copy, Debug)]
pub enum Scan<'a> {
    Full(&'a ImageScanReportSpec),
    Compact(&'a AdmissionReport, &'a Symbols),
}

/// One listed finding, borrowed.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingRef<'a> {
    pub id: Cow<'a, str>,
    pub severity: Severity,
    pub package: Option<&'a str>,
    pub score: Option<f64>,
}

impl FindingRef<'_> {
    /// An owned copy (the fields the decision reads).
    pub fn to_finding(&self) -> Finding {
        Finding {
            id: self.id.clone().into_owned(),
            severity: self.severity,
            package: self.package.map(str::to_owned),
            score: self.score,
            ..Finding::default()
        }
    }
}

impl<'a> Scan<'a> {
    /// The image's digest.
    pub fn digest(&self) -> String {
        match self {
            Self::Full(r) => r.image_digest.clone(),
            Self::Compact(r, _) => r.digest.to_string(),
        }
    }

    /// ECR's scan status.
    pub fn status(&self) -> &'a str {
        match self {
            Self::Full(r) => &r.scan.status,
            Self::Compact(r, _) => r.status(),
        }
    }

    /// When the scan completed, when known and valid.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Full(r) => completed_at(&r.scan),
            Self::Compact(r, _) => r.completed_at,
        }
    }

    /// The summary's count for `severity` (a negative one as 0).
    pub fn count(&self, severity: Severity) -> u64 {
        match self {
            Self::Full(r) => u64::try_from(r.summary.count(severity)).unwrap_or(0),
            Self::Compact(r, _) => r.count(severity),
        }
    }

    /// The listed findings, in the report's order.
    pub fn findings(&self) -> Box<dyn Iterator<Item = FindingRef<'a>> + 'a> {
        match *self {
            Self::Full(r) => Box::new(r.findings.iter().map(|f| FindingRef {
                id: Cow::Borrowed(&f.id),
                severity: f.severity,
                package: f.package.as_deref(),
                score: f.score,
            })),
            Self::Compact(r, symbols) => Box::new(r.findings().filter_map(move |(id, detail)| {
                let detail = symbols.detail(detail)?;
                Some(FindingRef {
                    id: symbols.id(id),
                    severity: detail.severity,
                    package: detail.package.map(|p| symbols.text(p)),
                    score: detail.score,
                })
            })),
        }
    }
}
