//! The scan reports the decision reads, by digest and by tag.

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
    by_digest: Box<[u32]>,
    /// (position of a report, position of the tag in its tags), one per (registry, region,
    /// repository, tag), in that order: the report whose digest the tag names.
    by_tag: Box<[(u32, u32)]>,
}

impl ReportIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of `reports`, whose symbols are all in `symbols`: per digest the last of its
    /// reports, per tag the report that names its digest (see [`Self::tag_winner`]). Built by
    /// sorting positions, in place: no map of keys, whose size would stay with the allocator.
    pub fn build(symbols: Symbols, reports: Vec<Arc<AdmissionReport>>) -> Self {
        let report = |i: u32| &reports[i as usize];
        let digest_order = |a: &u32, b: &u32| {
            let (ra, rb) = (report(*a), report(*b));
            (&ra.repo, &ra.digest, a).cmp(&(&rb.repo, &rb.digest, b))
        };
        // Every report's position, by (repository, digest, position).
        let mut all: Vec<u32> = (0u32..).zip(&reports).map(|(i, _)| i).collect();
        all.sort_unstable_by(digest_order);
        let mut tags: Vec<(u32, u32)> = (0u32..)
            .zip(&reports)
            .flat_map(|(i, r)| (0u32..).zip(r.tags()).map(move |(t, _)| (i, t)))
            .collect();
        let same_tag = |a: &(u32, u32), b: &(u32, u32)| {
            let (ra, rb) = (report(a.0), report(b.0));
            (&ra.repo, ra.tag(a.1)).cmp(&(&rb.repo, rb.tag(b.1)))
        };
        tags.sort_unstable_by(|a, b| same_tag(a, b).then(a.cmp(b)));
        let by_tag = tags
            .chunk_by(|a, b| same_tag(a, b).is_eq())
            .filter_map(|claims| Self::tag_winner(&reports, &all, claims))
            .collect();
        drop(tags);
        let same_digest = |a: &u32, b: &u32| {
            let (ra, rb) = (report(*a), report(*b));
            ra.repo == rb.repo && ra.digest == rb.digest
        };
        let by_digest = all
            .chunk_by(|a, b| same_digest(a, b))
            .filter_map(|group| group.last().copied())
            .collect();
        Self {
            symbols,
            reports,
            by_digest,
            by_tag,
        }
    }

    /// Of the `claims` on one tag, by position, the one that holds it when the reports are
    /// taken in order: the first, then any whose scan completed no earlier than that of the
    /// report then held for the digest the tag names. `all` is every position by (repository,
    /// digest, position).
    fn tag_winner(
        reports: &[Arc<AdmissionReport>],
        all: &[u32],
        claims: &[(u32, u32)],
    ) -> Option<(u32, u32)> {
        let report = |i: u32| &reports[i as usize];
        let (first, rest) = claims.split_first()?;
        let mut holder = *first;
        for &(p, t) in rest {
            let (claimant, held) = (report(p), &report(holder.0).digest);
            // The last report before `p` for the held digest.
            let key = |q: &u32| (&report(*q).repo, &report(*q).digest);
            let start = all.partition_point(|q| key(q) < (&claimant.repo, held));
            let end = all.partition_point(|q| (key(q), *q) < ((&claimant.repo, held), p));
            let held_completed = all[start..end].last().and_then(|q| report(*q).completed_at);
            if claimant.completed_at >= held_completed {
                holder = (p, t);
            }
        }
        Some(holder)
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
