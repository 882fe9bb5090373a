//! The scan reports the decision reads, by digest and by tag.

use std::collections::HashMap;
use std::sync::Arc;

use super::compact::{AdmissionReport, DigestRef};
use super::symbols::{Interner, Symbols};
use super::*;

/// An in-memory [`ReportLookup`] over a set of compact reports: sorted positions, a few bytes
/// per report beyond the reports themselves.
///
/// When several reports claim the same tag (a tag moved and an old report still lists it), the
/// one with the latest `completedAt` wins; among reports for the same digest, the last given.
#[derive(Clone, Debug, Default)]
pub struct ReportIndex {
    symbols: Symbols,
    reports: Vec<Arc<AdmissionReport>>,
    /// Positions in `reports`, one per (registry, region, repository, digest), in that order.
    by_digest: Vec<u32>,
    /// (position of a report, position of the tag in its tags), one per (registry, region,
    /// repository, tag), in that order: the report whose digest the tag names.
    by_tag: Vec<(u32, u32)>,
}

/// (registry, region, repository, digest or tag), borrowed from the reports while indexing.
type Key<'a> = (&'a str, &'a str, &'a str, DigestOrTag<'a>);

/// Per digest a report's position; per tag (a report's position, the tag's position).
type Winners<'a> = (HashMap<Key<'a>, u32>, HashMap<Key<'a>, (u32, u32)>);

#[derive(PartialEq, Eq, Hash)]
enum DigestOrTag<'a> {
    Digest(DigestRef<'a>),
    Tag(&'a str),
}

impl ReportIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of `reports`, whose symbols are all in `symbols`; later reports replace
    /// earlier ones for the same digest.
    pub fn build(symbols: Symbols, reports: Vec<Arc<AdmissionReport>>) -> Self {
        let (digests, tags) = Self::winners(&reports);
        let mut by_digest: Vec<u32> = digests.into_values().collect();
        let mut by_tag: Vec<(u32, u32)> = tags.into_values().collect();
        let report = |i: u32| &reports[i as usize];
        by_digest.sort_unstable_by(|a, b| {
            let (a, b) = (report(*a), report(*b));
            a.repo.cmp(&b.repo).then(a.digest.cmp(&b.digest))
        });
        by_tag.sort_unstable_by(|a, b| {
            let (ra, rb) = (report(a.0), report(b.0));
            ra.repo.cmp(&rb.repo).then(ra.tag(a.1).cmp(rb.tag(b.1)))
        });
        Self {
            symbols,
            reports,
            by_digest,
            by_tag,
        }
    }

    /// Per digest its last report, per tag the report that names its digest: a tag goes to a
    /// report completed no earlier than the one for the digest the tag names so far.
    fn winners(reports: &[Arc<AdmissionReport>]) -> Winners<'_> {
        let mut digests: HashMap<Key<'_>, u32> = HashMap::new();
        let mut tags: HashMap<Key<'_>, (u32, u32)> = HashMap::new();
        let positions = (0u32..).zip(reports);
        for (i, report) in positions {
            let r = &*report.repo;
            let key = |last| (&*r.registry_id, &*r.region, &*r.repository, last);
            for (t, tag) in (0u32..).zip(report.tags()) {
                let newer = match tags.get(&key(DigestOrTag::Tag(tag))) {
                    Some((held, _)) => {
                        let held = DigestOrTag::Digest(reports[*held as usize].digest.as_ref());
                        report.completed_at
                            >= digests
                                .get(&key(held))
                                .and_then(|p| reports[*p as usize].completed_at)
                    }
                    None => true,
                };
                if newer {
                    tags.insert(key(DigestOrTag::Tag(tag)), (i, t));
                }
            }
            digests.insert(key(DigestOrTag::Digest(report.digest.as_ref())), i);
        }
        (digests, tags)
    }
}

impl FromIterator<ImageScanReportSpec> for ReportIndex {
    /// Reports that do not fit the symbol tables are left out (never in practice).
    fn from_iter<I: IntoIterator<Item = ImageScanReportSpec>>(iter: I) -> Self {
        let mut interner = Interner::new();
        let reports = iter
            .into_iter()
            .filter_map(|r| AdmissionReport::new("", &r, &mut interner).ok())
            .map(Arc::new)
            .collect();
        Self::build(interner.symbols(), reports)
    }
}

impl ReportIndex {
    fn find_digest(&self, key: (&str, &str, &str), digest: DigestRef<'_>) -> Option<Scan<'_>> {
        let i = self.by_digest.binary_search_by(|p| {
            let r = &self.reports[*p as usize];
            r.cmp_key(key, r.digest.as_ref().cmp(&digest))
        });
        let r = &self.reports[*self.by_digest.get(i.ok()?)? as usize];
        Some(Scan::Compact(r, &self.symbols))
    }

    fn find_tag(&self, key: (&str, &str, &str), tag: &str) -> Option<&AdmissionReport> {
        let i = self.by_tag.binary_search_by(|(p, t)| {
            let r = &self.reports[*p as usize];
            r.cmp_key(key, r.tag(*t).cmp(tag))
        });
        let (p, _) = self.by_tag.get(i.ok()?)?;
        Some(&self.reports[*p as usize])
    }
}

impl ReportLookup for ReportIndex {
    fn by_digest(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        digest: &str,
    ) -> Option<Scan<'_>> {
        let digest = DigestRef::parse(digest);
        // A region-less report counts in any region (see `ImageScanReportSpec::region`).
        self.find_digest((registry_id, region, repository), digest)
            .or_else(|| self.find_digest((registry_id, "", repository), digest))
    }

    fn by_tag(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        tag: &str,
    ) -> Option<Scan<'_>> {
        let named = self
            .find_tag((registry_id, region, repository), tag)
            .or_else(|| self.find_tag((registry_id, "", repository), tag))?;
        let digest = named.digest.as_ref();
        self.find_digest((registry_id, region, repository), digest)
            .or_else(|| self.find_digest((registry_id, "", repository), digest))
    }
}
