//! The index as it was before reports were made compact (issue #17), over whole reports: the
//! oracle the compact [`ReportIndex`](super::ReportIndex) must agree with.

use std::collections::BTreeMap;

use super::check::completed_at;
use super::*;

/// (registry id, region, repository, digest or tag).
type Key = (String, String, String, String);

/// A [`ReportLookup`] over whole reports.
#[derive(Clone, Debug, Default)]
pub(super) struct FullIndex {
    by_digest: BTreeMap<Key, ImageScanReportSpec>,
    tags: BTreeMap<Key, String>,
}

impl FullIndex {
    fn insert(&mut self, report: ImageScanReportSpec) {
        let registry = report.registry_id.clone();
        let region = report.region.clone();
        let repository = report.repository_name.clone();
        let completed = completed_at(&report.scan);
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
                            .and_then(|r| completed_at(&r.scan))
                }
                None => true,
            };
            if newer {
                self.tags.insert(key, report.image_digest.clone());
            }
        }
        let key = (registry, region, repository, report.image_digest.clone());
        self.by_digest.insert(key, report);
    }

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

impl FromIterator<ImageScanReportSpec> for FullIndex {
    fn from_iter<I: IntoIterator<Item = ImageScanReportSpec>>(iter: I) -> Self {
        let mut index = Self::default();
        for report in iter {
            index.insert(report);
        }
        index
    }
}

impl ReportLookup for FullIndex {
    fn by_digest(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        digest: &str,
    ) -> Option<Scan<'_>> {
        Self::in_region(&self.by_digest, registry_id, region, repository, digest).map(Scan::Full)
    }

    fn by_tag(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        tag: &str,
    ) -> Option<Scan<'_>> {
        let digest = Self::in_region(&self.tags, registry_id, region, repository, tag)?;
        self.by_digest(registry_id, region, repository, digest)
    }
}
