//! An ImageScanReport as the admission decision reads it, and nothing more (issue #17): the
//! webhook's cache holds thousands, so a report is a few hundred bytes, its findings' text in
//! the shared [`Symbols`].

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::check::completed_at;
use super::symbols::{Detail, IdSym, Interner, SymbolsFull};
use crate::api::image_scan_report::ImageScanReportSpec;
use crate::api::scan_policy::Severity;

/// Where an image lives: shared by every report of the repository.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repo {
    pub registry_id: Box<str>,
    pub region: Box<str>,
    pub repository: Box<str>,
}

/// An image digest: `sha256:` and 64 lowercase hex digits as 32 bytes, anything else as text.
/// Each text has one form, so equal digests are equal texts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Digest {
    Sha256([u8; 32]),
    Other(Box<str>),
}

/// A [`Digest`] borrowed, to look one up without allocating; ordered as [`Digest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum DigestRef<'a> {
    Sha256([u8; 32]),
    Other(&'a str),
}

impl<'a> DigestRef<'a> {
    pub(super) fn parse(s: &'a str) -> Self {
        let sha256 = || -> Option<[u8; 32]> {
            let hex = s.strip_prefix("sha256:")?.as_bytes();
            if hex.len() != 64 {
                return None;
            }
            let nibble = |b: u8| match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'a'..=b'f' => Some(b - b'a' + 10),
                _ => None,
            };
            let mut out = [0u8; 32];
            for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
                *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
            }
            Some(out)
        };
        match sha256() {
            Some(bytes) => Self::Sha256(bytes),
            None => Self::Other(s),
        }
    }
}

impl Digest {
    pub(super) fn as_ref(&self) -> DigestRef<'_> {
        match self {
            Self::Sha256(b) => DigestRef::Sha256(*b),
            Self::Other(s) => DigestRef::Other(s),
        }
    }

    fn new(s: &str) -> Self {
        match DigestRef::parse(s) {
            DigestRef::Sha256(b) => Self::Sha256(b),
            DigestRef::Other(s) => Self::Other(s.into()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha256(bytes) => {
                f.write_str("sha256:")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// One listed finding: its id and its [`Detail`] (severity, package, score), both symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactFinding {
    pub(super) id: IdSym,
    pub(super) detail: u32,
}

/// What the decision and the findings gauges read from one ImageScanReport.
#[derive(Debug)]
pub struct AdmissionReport {
    pub(super) repo: Arc<Repo>,
    pub(super) digest: Digest,
    pub(super) tags: Box<[Box<str>]>,
    /// ECR's scan status, shared with the other reports.
    pub(super) status: Arc<str>,
    pub(super) completed_at: Option<DateTime<Utc>>,
    /// The summary by severity, negative counts as 0 (how the decision and the gauges read
    /// them), in the order of [`crate::api::image_scan_report::SeveritySummary`]'s fields.
    pub(super) summary: [u64; 6],
    /// In the report's order.
    pub(super) findings: Box<[CompactFinding]>,
}

impl AdmissionReport {
    /// `spec` as the decision reads it; its text in `interner`'s tables.
    pub fn new(spec: &ImageScanReportSpec, interner: &mut Interner) -> Result<Self, SymbolsFull> {
        let findings = spec
            .findings
            .iter()
            .map(|f| {
                let package = f.package.as_deref().map(|p| interner.text(p)).transpose()?;
                Ok(CompactFinding {
                    id: interner.id(&f.id)?,
                    detail: interner.detail(Detail {
                        severity: f.severity,
                        package,
                        score: f.score,
                    })?,
                })
            })
            .collect::<Result<_, SymbolsFull>>()?;
        let s = &spec.summary;
        let summary = [
            s.critical,
            s.high,
            s.medium,
            s.low,
            s.informational,
            s.undefined,
        ]
        .map(|n| u64::try_from(n).unwrap_or(0));
        Ok(Self {
            repo: interner.repo(&spec.registry_id, &spec.region, &spec.repository_name),
            digest: Digest::new(&spec.image_digest),
            tags: spec.image_tags.iter().map(|t| t.as_str().into()).collect(),
            status: interner.shared(&spec.scan.status),
            completed_at: completed_at(&spec.scan),
            summary,
            findings,
        })
    }

    /// ECR's scan status.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The summary's counts (negative ones as 0): critical, high, medium, low, informational,
    /// undefined.
    pub fn summary(&self) -> [u64; 6] {
        self.summary
    }

    /// The summary's count for `severity`.
    pub(super) fn count(&self, severity: Severity) -> u64 {
        let i = match severity {
            Severity::Critical => 0,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
            Severity::Informational => 4,
        };
        self.summary[i]
    }

    /// Orders by (registry, region, repository) then `last`: how the index sorts and finds.
    pub(super) fn cmp_key(&self, key: (&str, &str, &str), last: Ordering) -> Ordering {
        let r = &*self.repo;
        (&*r.registry_id, &*r.region, &*r.repository)
            .cmp(&key)
            .then(last)
    }
}

impl Interner {
    /// The repository, shared with every other report of it.
    fn repo(&mut self, registry_id: &str, region: &str, repository: &str) -> Arc<Repo> {
        let repo = Repo {
            registry_id: registry_id.into(),
            region: region.into(),
            repository: repository.into(),
        };
        match self.repos.get(&repo) {
            Some(shared) => shared.clone(),
            None => {
                let shared = Arc::new(repo);
                self.repos.insert(shared.clone());
                shared
            }
        }
    }
}
