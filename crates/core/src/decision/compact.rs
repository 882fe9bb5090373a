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

/// What the decision and the findings gauges read from one ImageScanReport.
#[derive(Debug)]
pub struct AdmissionReport {
    pub(super) repo: Arc<Repo>,
    pub(super) digest: Digest,
    /// ECR's scan status, shared with the other reports.
    status: Arc<str>,
    pub(super) completed_at: Option<DateTime<Utc>>,
    /// The rest in one allocation, as LEB128 varints: the object's name and the tags (each
    /// its length then its bytes, the tags after their count); the summary's six counts
    /// (negative ones as 0); the findings' count, then each finding's [`IdSym`] and
    /// [`Detail`] symbol (package, severity, score), in the report's order. About 5 bytes a
    /// finding where the fields of a `Finding` take over 100.
    packed: Box<[u8]>,
}

impl AdmissionReport {
    /// Object `name`'s `spec` as the decision reads it; its text in `interner`'s tables.
    pub fn new(
        name: &str,
        spec: &ImageScanReportSpec,
        interner: &mut Interner,
    ) -> Result<Self, SymbolsFull> {
        let mut packed = Vec::new();
        put_text(&mut packed, name);
        put(&mut packed, spec.image_tags.len() as u64);
        for tag in &spec.image_tags {
            put_text(&mut packed, tag);
        }
        let s = &spec.summary;
        let counts = [
            s.critical,
            s.high,
            s.medium,
            s.low,
            s.informational,
            s.undefined,
        ];
        for n in counts {
            put(&mut packed, u64::try_from(n).unwrap_or(0));
        }
        put(&mut packed, spec.findings.len() as u64);
        for f in &spec.findings {
            let package = f.package.as_deref().map(|p| interner.text(p)).transpose()?;
            put(&mut packed, interner.id(&f.id)?.0);
            let detail = interner.detail(Detail {
                severity: f.severity,
                package,
                score: f.score,
            })?;
            put(&mut packed, u64::from(detail));
        }
        Ok(Self {
            repo: interner.repo(&spec.registry_id, &spec.region, &spec.repository_name),
            digest: Digest::new(&spec.image_digest),
            status: interner.shared(&spec.scan.status),
            completed_at: completed_at(&spec.scan),
            packed: packed.into_boxed_slice(),
        })
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        Reader(&self.packed).text()
    }

    /// ECR's scan status.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The image's tags.
    pub(super) fn tags(&self) -> impl Iterator<Item = &str> {
        let mut r = Reader(&self.packed);
        r.text();
        let n = r.varint();
        (0..n).map(move |_| r.text())
    }

    /// Tag `i`.
    pub(super) fn tag(&self, i: u32) -> &str {
        self.tags().nth(i as usize).unwrap_or_default()
    }

    /// Past the tags.
    fn after_tags(&self) -> Reader<'_> {
        let mut r = Reader(&self.packed);
        r.text();
        for _ in 0..r.varint() {
            r.text();
        }
        r
    }

    /// The summary's counts (negative ones as 0): critical, high, medium, low, informational,
    /// undefined.
    pub fn summary(&self) -> [u64; 6] {
        let mut r = self.after_tags();
        [(); 6].map(|()| r.varint())
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
        self.summary()[i]
    }

    /// The findings: (id, detail symbol), in the report's order.
    pub(super) fn findings(&self) -> impl Iterator<Item = (IdSym, u32)> + '_ {
        let mut r = self.after_tags();
        for _ in 0..6 {
            r.varint();
        }
        let n = r.varint();
        (0..n).map(move |_| {
            let id = IdSym(r.varint());
            (id, u32::try_from(r.varint()).unwrap_or(u32::MAX))
        })
    }

    /// Orders by (registry, region, repository) then `last`: how the index sorts and finds.
    pub(super) fn cmp_key(&self, key: (&str, &str, &str), last: Ordering) -> Ordering {
        let r = &*self.repo;
        (&*r.registry_id, &*r.region, &*r.repository)
            .cmp(&key)
            .then(last)
    }
}

/// Appends `n` as a LEB128 varint.
fn put(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what [`put`] and [`put_text`] wrote; past the end, zeros and empty text (never for
/// what they wrote).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> u64 {
        let mut n = 0u64;
        for (i, b) in self.0.iter().enumerate() {
            n |= u64::from(b & 0x7f) << (7 * i).min(63);
            if b & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return n;
            }
        }
        self.0 = &[];
        n
    }

    fn text(&mut self) -> &'a str {
        let len = usize::try_from(self.varint()).unwrap_or(usize::MAX);
        let (text, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        std::str::from_utf8(text).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::image_scan_report::Finding;

    #[test]
    fn a_report_reads_back_as_given() {
        let mut spec = ImageScanReportSpec {
            image_digest: "sha256:AB".into(),
            image_tags: vec!["v1".into(), String::new(), "é-ü".repeat(100)],
            ..ImageScanReportSpec::default()
        };
        spec.summary.critical = i64::MAX;
        spec.summary.high = -3;
        spec.summary.undefined = 200;
        spec.findings = vec![Finding {
            id: "GHSA-1".into(),
            severity: Severity::High,
            score: Some(f64::NAN),
            ..Finding::default()
        }];
        let mut interner = Interner::new();
        let r = AdmissionReport::new("name", &spec, &mut interner);
        let symbols = interner.symbols();
        let Ok(r) = r else {
            panic!("not compacted: {r:?}");
        };
        assert_eq!(r.name(), "name");
        assert_eq!(r.tags().collect::<Vec<_>>(), spec.image_tags);
        assert_eq!(r.summary(), [i64::MAX as u64, 0, 0, 0, 0, 200]);
        assert_eq!(r.digest.to_string(), "sha256:AB");
        let findings: Vec<_> = super::super::Scan::Compact(&r, &symbols)
            .findings()
            .collect();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].id, "GHSA-1");
        assert!(findings[0].score.is_some_and(f64::is_nan));
    }

    #[test]
    fn sha256_digests_pack_and_print_as_given() {
        let hex = "0123456789abcdef".repeat(4);
        let d = Digest::new(&format!("sha256:{hex}"));
        assert!(matches!(d, Digest::Sha256(_)));
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        let upper = format!("sha256:{}", hex.to_uppercase());
        assert_eq!(Digest::new(&upper).to_string(), upper);
        assert!(matches!(Digest::new(&upper), Digest::Other(_)));
    }
}
