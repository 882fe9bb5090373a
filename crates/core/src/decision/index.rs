//! The scan reports the decision reads, by digest and by tag.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::api::image_scan_report::ImageScanReport;

/// (registry id, region, repository, digest or tag).
pub(super) type Key = (String, String, String, String);

/// An in-memory [`ReportLookup`] over a set of reports.
///
/// When several reports claim the same tag (a tag moved and an old report still lists it), the
/// one with the latest `completedAt` wins. Reports are held by `Arc`: an index built from a
/// reflector's store shares its objects instead of copying every finding.
#[derive(Clone, Debug, Default)]
pub struct ReportIndex {
    by_digest: BTreeMap<Key, Arc<ImageScanReport>>,
    tags: BTreeMap<Key, String>,
}

impl ReportIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `report`, replacing any earlier report for the same digest.
    pub fn insert(&mut self, report: ImageScanReportSpec) {
        self.insert_shared(Arc::new(ImageScanReport::new("", report)));
    }

    /// [`Self::insert`] of a report held elsewhere too.
    pub fn insert_shared(&mut self, object: Arc<ImageScanReport>) {
        let report = &object.spec;
        let registry = report.registry_id.clone();
        let region = report.region.clone();
        let repository = report.repository_name.clone();
        let completed = completed_at(report);
        for tag in &report.image_tags {
            let key = (
                registry.clone(),
                region.clone(),
                repository.clone(),
                tag.clone(),
            );
            let newer = match self.tags.get(&key) {
                Some(digest) => {
                    let held = (
                        registry.clone(),
                        region.clone(),
                        repository.clone(),
                        digest.clone(),
                    );
                    completed
                        >= self
                            .by_digest
                            .get(&held)
                            .and_then(|r| completed_at(&r.spec))
                }
                None => true,
            };
            if newer {
                self.tags.insert(key, report.image_digest.clone());
            }
        }
        let key = (registry, region, repository, report.image_digest.clone());
        self.by_digest.insert(key, object);
    }
}

impl FromIterator<ImageScanReportSpec> for ReportIndex {
    fn from_iter<I: IntoIterator<Item = ImageScanReportSpec>>(iter: I) -> Self {
        let mut index = Self::new();
        for report in iter {
            index.insert(report);
        }
        index
    }
}

impl FromIterator<Arc<ImageScanReport>> for ReportIndex {
    fn from_iter<I: IntoIterator<Item = Arc<ImageScanReport>>>(iter: I) -> Self {
        let mut index = Self::new();
        for report in iter {
            index.insert_shared(report);
        }
        index
    }
}

impl ReportIndex {
    /// The entry of `map` for the image in `region`, else the region-less one (see
    /// [`ImageScanReportSpec::region`]).
    fn in_region<'a, V>(
        map: &'a BTreeMap<Key, V>,
        registry_id: &str,
        region: &str,
        repository: &str,
        last: &str,
    ) -> Option<&'a V> {
        let key = |region: &str| {
            (
                registry_id.to_owned(),
                region.to_owned(),
                repository.to_owned(),
                last.to_owned(),
            )
        };
        map.get(&key(region)).or_else(|| map.get(&key("")))
    }
}

impl ReportLookup for ReportIndex {
    fn by_digest(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        digest: &str,
    ) -> Option<&ImageScanReportSpec> {
        Self::in_region(&self.by_digest, registry_id, region, repository, digest).map(|r| &r.spec)
    }

    fn by_tag(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        tag: &str,
    ) -> Option<&ImageScanReportSpec> {
        let digest = Self::in_region(&self.tags, registry_id, region, repository, tag)?;
        self.by_digest(registry_id, region, repository, digest)
    }
}
