//! The webhook's ImageScanReports, each kept as the compact [`AdmissionReport`] the decision
//! and the findings gauges read (issue #17): the watch's events update it by name, and the
//! whole report is dropped as soon as it is read.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use super::decision::{AdmissionReport, Interner, Symbols};
use crate::api::image_scan_report::ImageScanReport;

/// Reports by name (the name is in the report: no copy of it as a key).
type ByName = HashSet<Named>;

/// A report, hashed and compared by its name.
#[derive(Debug)]
struct Named(Arc<AdmissionReport>);

impl PartialEq for Named {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for Named {}

impl Hash for Named {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name().hash(state);
    }
}

impl Borrow<str> for Named {
    fn borrow(&self) -> &str {
        self.0.name()
    }
}

/// The reports by name, and the tables their text is in.
#[derive(Debug, Default)]
pub struct ReportStore {
    interner: Interner,
    reports: ByName,
    /// A list in progress: replaces everything at its end, and brings fresh tables, so that
    /// text no report uses any more goes with the old ones.
    relist: Option<(Interner, ByName)>,
    ready: bool,
}

impl ReportStore {
    /// Applies one watch event.
    pub fn apply(&mut self, event: Event<ImageScanReport>) {
        match event {
            Event::Init => self.relist = Some(Default::default()),
            Event::InitApply(report) => match &mut self.relist {
                Some((interner, reports)) => put(interner, reports, &report),
                None => put(&mut self.interner, &mut self.reports, &report),
            },
            Event::InitDone => {
                if let Some((interner, reports)) = self.relist.take() {
                    self.interner = interner;
                    self.reports = reports;
                }
                self.ready = true;
            }
            Event::Apply(report) => put(&mut self.interner, &mut self.reports, &report),
            Event::Delete(report) => {
                self.reports.remove(report.name_any().as_str());
            }
        }
    }

    /// Whether the first list is complete.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Every report, and the tables that read them.
    pub fn contents(&self) -> (Symbols, Vec<Arc<AdmissionReport>>) {
        (
            self.interner.symbols(),
            self.reports.iter().map(|r| r.0.clone()).collect(),
        )
    }

    /// Every report, in no particular order.
    pub fn reports(&self) -> impl Iterator<Item = &AdmissionReport> {
        self.reports.iter().map(|r| &*r.0)
    }
}

/// Stores `report` under its name, compact. A report the tables cannot take (never in
/// practice) is left out, and its older version with it: that one would be stale.
fn put(interner: &mut Interner, reports: &mut ByName, report: &ImageScanReport) {
    let name = report.name_any();
    match AdmissionReport::new(&name, &report.spec, interner) {
        Ok(compact) => {
            reports.replace(Named(Arc::new(compact)));
        }
        Err(e) => {
            tracing::error!(report = %name, error = %e, "admission cache: report left out");
            reports.remove(name.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::image_scan_report::ImageScanReportSpec;

    fn report(name: &str, status: &str) -> ImageScanReport {
        let mut spec = ImageScanReportSpec::default();
        spec.scan.status = status.into();
        ImageScanReport::new(name, spec)
    }

    fn statuses(store: &ReportStore) -> Vec<String> {
        let mut s: Vec<String> = store.reports().map(|r| r.status().to_owned()).collect();
        s.sort();
        s
    }

    #[test]
    fn events_update_the_reports_by_name_and_a_relist_replaces_them() {
        let mut store = ReportStore::default();
        store.apply(Event::Init);
        store.apply(Event::InitApply(report("a", "COMPLETE")));
        assert!(!store.is_ready());
        store.apply(Event::InitDone);
        assert!(store.is_ready());
        store.apply(Event::Apply(report("b", "FAILED")));
        store.apply(Event::Apply(report("a", "ACTIVE")));
        assert_eq!(statuses(&store), ["ACTIVE", "FAILED"]);
        store.apply(Event::Delete(report("b", "FAILED")));
        assert_eq!(statuses(&store), ["ACTIVE"]);
        // A re-list: the old reports stay until it ends, then only the listed ones are left.
        store.apply(Event::Init);
        store.apply(Event::InitApply(report("c", "COMPLETE")));
        assert_eq!(statuses(&store), ["ACTIVE"]);
        store.apply(Event::InitDone);
        assert_eq!(statuses(&store), ["COMPLETE"]);
        assert_eq!(store.contents().1.len(), 1);
    }
}
