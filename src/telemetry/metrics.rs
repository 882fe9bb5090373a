//! Prometheus metrics, served on the admin listener.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: String,
    /// `success` or the error's metric label (throttled, invalid, conflict, ...).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    /// `reachable`, `unreachable`, `failing` or `unknown`.
    outcome: String,
}

/// `ecr_operator_webhook_reachable`: the last probe's verdict, without a sample until a probe
/// has run (a replica that does not probe must not look like one whose webhook is down).
#[derive(Debug)]
struct ReachableCollector(Arc<AtomicI64>);

impl prometheus_client::collector::Collector for ReachableCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let gauge = Gauge::<i64, AtomicI64>::default();
        let metric = encoder.encode_descriptor(
            "ecr_operator_webhook_reachable",
            "1 when the last probe saw the API server reach the admission webhook, else 0",
            None,
            gauge.metric_type(),
        )?;
        let value = self.0.load(Ordering::Relaxed);
        if value < 0 {
            return Ok(());
        }
        gauge.set(value);
        gauge.encode(metric)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: String,
    outcome: String,
}

/// Reads call counters at scrape time: `((operation, outcome), count)`.
pub type CallSource = Arc<dyn Fn() -> Vec<((String, String), u64)> + Send + Sync>;

/// Exposes counters kept elsewhere (ECR calls) as a counter family, read at scrape time.
struct CallsCollector(CallSource);

impl std::fmt::Debug for CallsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallsCollector")
    }
}

impl prometheus_client::collector::Collector for CallsCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let family = Family::<CallLabels, Counter>::default();
        for ((operation, outcome), n) in (self.0)() {
            family
                .get_or_create(&CallLabels { operation, outcome })
                .inc_by(n);
        }
        let metric = encoder.encode_descriptor(
            "ecr_operator_ecr_calls",
            "ECR API calls made, by operation and outcome",
            None,
            family.metric_type(),
        )?;
        family.encode(metric)
    }
}

/// Metrics rendered as text elsewhere (the webhook's), appended at scrape time.
pub type TextSource = Box<dyn Fn() -> String + Send + Sync>;

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    extra: std::sync::Mutex<Vec<TextSource>>,
    reconciles: Family<ReconcileLabels, Counter>,
    durations: Family<ControllerLabel, Histogram>,
    leader: Gauge,
    /// The last webhook probe: -1 before any, then 0 or 1.
    webhook_reachable: Arc<AtomicI64>,
    webhook_probes: Family<ProbeLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// `ecr_calls` reads the registry's call counters at every scrape.
    pub fn new(ecr_calls: CallSource) -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let durations = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            // 1 ms to ~16 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        let leader = Gauge::default();
        registry.register(
            "ecr_operator_reconciles",
            "Reconciles by controller and result",
            reconciles.clone(),
        );
        registry.register(
            "ecr_operator_reconcile_duration_seconds",
            "Reconcile duration by controller",
            durations.clone(),
        );
        registry.register(
            "ecr_operator_leader",
            "1 while this replica holds the controllers' lease",
            leader.clone(),
        );
        registry.register_collector(Box::new(CallsCollector(ecr_calls)));
        let webhook_reachable = Arc::new(AtomicI64::new(-1));
        registry.register_collector(Box::new(ReachableCollector(webhook_reachable.clone())));
        let webhook_probes = Family::<ProbeLabels, Counter>::default();
        // Every outcome from the start at 0, so that rate() and alerts see the series.
        for outcome in ["reachable", "unreachable", "failing", "unknown"] {
            webhook_probes
                .get_or_create(&ProbeLabels {
                    outcome: outcome.to_string(),
                })
                .inc_by(0);
        }
        registry.register(
            "ecr_operator_webhook_probes",
            "Webhook reachability probes by outcome",
            webhook_probes.clone(),
        );
        Metrics {
            registry,
            extra: std::sync::Mutex::default(),
            reconciles,
            durations,
            leader,
            webhook_reachable,
            webhook_probes,
        }
    }

    /// Records one finished reconcile.
    pub fn reconciled(&self, controller: &str, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&ControllerLabel {
                controller: controller.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Reconciles of `controller` that ended with `result` so far (benchmarks wait on this).
    pub fn reconciles(&self, controller: &str, result: &str) -> u64 {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .get()
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Whether this replica holds the controllers' lease, as last set by [`Self::set_leader`].
    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// Counts one webhook reachability probe by its outcome (`reachable`, `unreachable`,
    /// `failing`, `unknown`).
    pub fn webhook_probed(&self, outcome: &str) {
        self.webhook_probes
            .get_or_create(&ProbeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Sets `ecr_operator_webhook_reachable` to a probe's (confirmed) verdict.
    pub fn set_webhook_reachable(&self, reachable: bool) {
        self.webhook_reachable
            .store(i64::from(reachable), Ordering::Relaxed);
    }

    /// The last probe's verdict; `None` before any.
    pub fn webhook_reachable(&self) -> Option<bool> {
        match self.webhook_reachable.load(Ordering::Relaxed) {
            v if v < 0 => None,
            v => Some(v == 1),
        }
    }

    /// Adds metrics another part renders itself (Prometheus text format).
    pub fn add_text_source(&self, source: TextSource) {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }

    /// The Prometheus text exposition: our registry, then the added sources, then `# EOF`
    /// (a comment to the classic text parser).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let body = out
            .trim_end()
            .strip_suffix("# EOF")
            .unwrap_or(&out)
            .to_string();
        let mut text = body;
        for source in self.extra.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            text.push_str(&source());
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        text.push_str("# EOF\n");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_reconciles_and_ecr_calls() {
        let m = Metrics::new(Arc::new(|| {
            vec![(("CreateRepository".to_string(), "success".to_string()), 3)]
        }));
        m.reconciled("repository", "success", Duration::from_millis(12));
        m.reconciled("repository", "throttled", Duration::from_millis(2));
        m.set_leader(true);
        let text = m.render();
        assert!(
            text.contains(
                r#"ecr_operator_reconciles_total{controller="repository",result="throttled"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"ecr_operator_ecr_calls_total{operation="CreateRepository",outcome="success"} 3"#
            ),
            "{text}"
        );
        assert!(text.contains("ecr_operator_leader 1"), "{text}");
        // The reachability gauge is declared, without a sample until a probe has run.
        assert!(
            text.contains("# TYPE ecr_operator_webhook_reachable gauge"),
            "{text}"
        );
        assert!(!text.contains("ecr_operator_webhook_reachable 0"), "{text}");
        assert!(
            text.contains(r#"ecr_operator_webhook_probes_total{outcome="failing"} 0"#),
            "{text}"
        );
        m.webhook_probed("unreachable");
        m.set_webhook_reachable(false);
        m.webhook_probed("reachable");
        m.set_webhook_reachable(true);
        let text = m.render();
        assert!(text.contains("ecr_operator_webhook_reachable 1"), "{text}");
        assert!(
            text.contains(r#"ecr_operator_webhook_probes_total{outcome="unreachable"} 1"#),
            "{text}"
        );
        assert_eq!(m.webhook_reachable(), Some(true));
        assert!(
            text.contains("ecr_operator_reconcile_duration_seconds_bucket"),
            "{text}"
        );
    }
}
