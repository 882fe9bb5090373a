//! The webhook's view of the cluster: ImageScanReports (compact, in a [`ReportStore`]),
//! ScanPolicies (cluster-scoped) and Namespaces (for their labels), each kept up to date by a
//! watch (a `kube::runtime::reflector` for the last two).
//!
//! Lookups must be fast and never wait on the watches: reports and policies are served from an
//! immutable [`Snapshot`] behind an [`ArcSwap`], rebuilt by one task after changes (coalesced:
//! a burst of watch events costs one rebuild). A request takes the current snapshot with one
//! atomic load and keeps it for its whole decision, so a decision never sees half an update.
//! Namespace labels are read from the reflector's store (a short read lock).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::decision::ReportIndex;
use super::report_store::ReportStore;
use crate::api::image_scan_report::ImageScanReport;
use crate::api::scan_policy::ScanPolicy;

/// Delay between a watch event and the rebuild it triggers, so that bursts coalesce.
const REBUILD_DEBOUNCE: Duration = Duration::from_millis(20);

/// The label the API server sets on every namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Reports and policies at one point in time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every ImageScanReport, indexed by digest and tag.
    pub reports: ReportIndex,
    /// Every ScanPolicy.
    pub policies: Vec<ScanPolicy>,
}

/// The cache; cheap to share (`Arc`).
pub struct ScanCache {
    snapshot: ArcSwap<Snapshot>,
    namespaces: Store<Namespace>,
    /// The reports as the watch left them, for the index and the findings gauges.
    reports: Arc<Mutex<ReportStore>>,
    synced: AtomicBool,
}

impl std::fmt::Debug for ScanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanCache")
            .field("synced", &self.is_synced())
            .finish_non_exhaustive()
    }
}

impl ScanCache {
    /// Starts the three reflectors and the rebuild task on `tasks` (aborted with it).
    /// Reads the ScanPolicies and ImageScanReports in `scope` (its label selector).
    pub fn start(
        client: kube::Client,
        scope: &crate::scope::WatchScope,
        tasks: &mut JoinSet<()>,
    ) -> Arc<ScanCache> {
        let reports = Arc::new(Mutex::new(ReportStore::default()));
        let (policies, policies_writer) = reflector::store::<ScanPolicy>();
        let (namespaces, namespaces_writer) = reflector::store::<Namespace>();
        let cache = Arc::new(ScanCache {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            namespaces: namespaces.clone(),
            reports: reports.clone(),
            synced: AtomicBool::new(false),
        });
        let changed = Arc::new(Notify::new());
        let config = watcher::Config::default();

        let scoped = scope.watcher_config();
        let stream = reports_seen(&client, &scoped, reports.clone());
        tasks.spawn(drive("ImageScanReport", stream, Some(changed.clone())));
        let stream = reflector::reflector(policies_writer, parsed_watch(client.clone(), scoped));
        tasks.spawn(drive("ScanPolicy", stream, Some(changed.clone())));
        let api: Api<Namespace> = Api::all(client);
        let stream = reflector::reflector(
            namespaces_writer,
            watcher::watcher(api, config).default_backoff(),
        );
        tasks.spawn(drive("Namespace", stream, None));

        let rebuilder = cache.clone();
        tasks.spawn(async move {
            let ready = async {
                policies.wait_until_ready().await?;
                rebuilder.namespaces.wait_until_ready().await
            };
            if ready.await.is_err() {
                tracing::error!("admission cache: a reflector stopped before its first list");
                return;
            }
            // Every report event signals `changed`, the first list's end included.
            while !rebuilder.report_store().is_ready() {
                changed.notified().await;
            }
            rebuilder.rebuild(&policies);
            rebuilder.synced.store(true, Ordering::Release);
            tracing::info!(
                reports = rebuilder.report_store().reports().count(),
                policies = policies.len(),
                "admission cache synced"
            );
            loop {
                changed.notified().await;
                tokio::time::sleep(REBUILD_DEBOUNCE).await;
                rebuilder.rebuild(&policies);
            }
        });
        cache
    }

    fn rebuild(&self, policies: &Store<ScanPolicy>) {
        // The index shares the store's reports: no finding is copied.
        let (symbols, reports) = self.report_store().contents();
        let index = ReportIndex::build(symbols, reports);
        let mut policies: Vec<ScanPolicy> =
            policies.state().iter().map(|p| (**p).clone()).collect();
        policies.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        self.snapshot.store(Arc::new(Snapshot {
            reports: index,
            policies,
        }));
    }

    /// A cache over fixed data, never synced from a cluster (for tests and benchmarks of the
    /// request path).
    pub fn fixed(snapshot: Snapshot, namespaces: Vec<Namespace>) -> Arc<ScanCache> {
        let (store, mut writer) = reflector::store::<Namespace>();
        writer.apply_watcher_event(&Event::Init);
        for ns in namespaces {
            writer.apply_watcher_event(&Event::InitApply(ns));
        }
        writer.apply_watcher_event(&Event::InitDone);
        Arc::new(ScanCache {
            snapshot: ArcSwap::from_pointee(snapshot),
            namespaces: store,
            reports: Default::default(),
            synced: AtomicBool::new(true),
        })
    }

    /// Whether every reflector has listed once and the first snapshot is built.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// The reports as the watch left them (a short lock, never taken on the request path).
    fn report_store(&self) -> MutexGuard<'_, ReportStore> {
        self.reports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The labels of namespace `name`. A namespace the watch has not delivered yet gets the
    /// label the API server always sets, `kubernetes.io/metadata.name`.
    pub fn namespace_labels(&self, name: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespaces
            .get(&ObjectRef::new(name))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default();
        labels
            .entry(NAMESPACE_NAME_LABEL.to_owned())
            .or_insert_with(|| name.to_owned());
        labels
    }
}

impl ScanCache {
    /// `ecr_operator_scan_findings{severity}` (findings summed over every ImageScanReport) and
    /// `ecr_operator_scan_reports{status}` (reports by ECR scan status), in the Prometheus text
    /// format, computed from the report store at scrape time (no copy is kept up to date
    /// between scrapes). Before the first list only the descriptions are written: zeros would
    /// claim a clean cluster.
    pub fn render_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut findings = [0i64; 6];
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        let synced = self.is_synced();
        if synced {
            for report in self.report_store().reports() {
                for (total, n) in findings.iter_mut().zip(report.summary()) {
                    *total = total.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
                }
                let status = match report.status() {
                    "" => "UNKNOWN",
                    other => other,
                };
                *statuses.entry(status.to_owned()).or_default() += 1;
            }
        }
        let mut out = String::from(
            "# HELP ecr_operator_scan_findings Vulnerability findings summed over every ImageScanReport, by severity.\n\
             # TYPE ecr_operator_scan_findings gauge\n",
        );
        if synced {
            for (severity, n) in SEVERITIES.iter().zip(findings) {
                let _ = writeln!(
                    out,
                    "ecr_operator_scan_findings{{severity=\"{severity}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP ecr_operator_scan_reports ImageScanReports by ECR scan status.\n\
             # TYPE ecr_operator_scan_reports gauge\n",
        );
        for (status, n) in statuses {
            let _ = writeln!(
                out,
                "ecr_operator_scan_reports{{status=\"{}\"}} {n}",
                escape_label(&status)
            );
        }
        out
    }
}

/// The `severity` label values, in the order of [`crate::api::image_scan_report::SeveritySummary`].
const SEVERITIES: [&str; 6] = [
    "critical",
    "high",
    "medium",
    "low",
    "informational",
    "undefined",
];

/// A label value escaped as the text format requires.
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The report watch, each event applied to `store` (where a report is kept compact) and
/// passed on without its object.
fn reports_seen(
    client: &kube::Client,
    config: &watcher::Config,
    store: Arc<Mutex<ReportStore>>,
) -> impl Stream<Item = Result<(), watcher::Error>> + Send + 'static {
    parsed_watch::<ImageScanReport>(client.clone(), config.clone()).map(move |event| {
        let event = event?;
        store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(event);
        Ok(())
    })
}

/// Drives one reflector's watch stream until it ends, logging watch errors (the watcher
/// retries with backoff) and signalling `changed` after every event.
/// A watch of `K` read as JSON and parsed object by object: an object this version cannot parse
/// is left out (its controller reports it on the object) instead of failing the whole list, and
/// with it the cache's first sync (the webhook would deny everything as "not synced") or every
/// later re-list (the cache would go stale without a word).
pub(super) fn parsed_watch<K>(
    client: kube::Client,
    config: watcher::Config,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Send + 'static,
{
    let api: Api<DynamicObject> = Api::all_with(client, &ApiResource::erase::<K>(&()));
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            let parse = |o: DynamicObject| -> Option<K> {
                match serde_json::to_value(&o).and_then(serde_json::from_value) {
                    Ok(k) => Some(crate::controllers::watch::slim(k)),
                    Err(e) => {
                        tracing::warn!(
                            kind = K::kind(&()).as_ref(),
                            object = %o.name_any(),
                            error = %e,
                            "admission cache: object left out, it cannot be parsed"
                        );
                        None
                    }
                }
            };
            match event {
                Ok(Event::Init) => Some(Ok(Event::Init)),
                Ok(Event::InitDone) => Some(Ok(Event::InitDone)),
                Ok(Event::Apply(o)) => parse(o).map(|k| Ok(Event::Apply(k))),
                Ok(Event::InitApply(o)) => parse(o).map(|k| Ok(Event::InitApply(k))),
                Ok(Event::Delete(o)) => parse(o).map(|k| Ok(Event::Delete(k))),
                Err(e) => Some(Err(e)),
            }
        })
}

async fn drive<S, T>(kind: &'static str, stream: S, changed: Option<Arc<Notify>>)
where
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => {
                if let Some(changed) = &changed {
                    changed.notify_one();
                }
            }
            Err(e) => tracing::warn!(kind, error = %e, "admission cache: watch error"),
        }
    }
    tracing::warn!(kind, "admission cache: watch stream ended");
}
