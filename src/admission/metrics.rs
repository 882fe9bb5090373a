//! Counters of the webhook's decisions and a histogram of their latency, lock-free, rendered in
//! the Prometheus text format by [`AdmissionMetrics::render_prometheus`] (the admin listener
//! serves it under `/metrics`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted without warnings (also requests with nothing to check).
    Allowed,
    /// Admitted with warnings.
    Warned,
    /// Denied by policy.
    Denied,
    /// Answered by the failure policy (timeout, cache not ready): `allowed` tells which way.
    Failed {
        /// Whether the failure policy admitted the request.
        allowed: bool,
    },
    /// A body that is not an AdmissionReview, or too large.
    Invalid,
}

/// The webhook's counters.
#[derive(Debug, Default)]
pub struct AdmissionMetrics {
    allowed: AtomicU64,
    warned: AtomicU64,
    denied: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    invalid: AtomicU64,
    resolver_calls: AtomicU64,
    resolver_errors: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
}

impl AdmissionMetrics {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one answered request and how long it took.
    pub fn record(&self, outcome: Outcome, elapsed: Duration) {
        let counter = match outcome {
            Outcome::Allowed => &self.allowed,
            Outcome::Warned => &self.warned,
            Outcome::Denied => &self.denied,
            Outcome::Failed { allowed: true } => &self.failed_open,
            Outcome::Failed { allowed: false } => &self.failed_closed,
            Outcome::Invalid => &self.invalid,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts a call to the digest resolver (a cache miss on a tag), and whether it failed.
    pub fn record_resolve(&self, failed: bool) {
        self.resolver_calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.resolver_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The number of requests answered with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Allowed => &self.allowed,
            Outcome::Warned => &self.warned,
            Outcome::Denied => &self.denied,
            Outcome::Failed { allowed: true } => &self.failed_open,
            Outcome::Failed { allowed: false } => &self.failed_closed,
            Outcome::Invalid => &self.invalid,
        }
        .load(Ordering::Relaxed)
    }

    /// Digest resolver calls so far (calls, failures).
    pub fn resolver_calls(&self) -> (u64, u64) {
        (
            self.resolver_calls.load(Ordering::Relaxed),
            self.resolver_errors.load(Ordering::Relaxed),
        )
    }

    /// Requests timed so far and their total time.
    pub fn latency(&self) -> (u64, Duration) {
        (
            self.latency_count.load(Ordering::Relaxed),
            Duration::from_nanos(self.latency_sum_nanos.load(Ordering::Relaxed)),
        )
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str(
            "# HELP ecr_operator_admission_decisions_total Admission requests answered, by decision.\n\
             # TYPE ecr_operator_admission_decisions_total counter\n",
        );
        for (decision, c) in [
            ("allowed", &self.allowed),
            ("warned", &self.warned),
            ("denied", &self.denied),
            ("failed_open", &self.failed_open),
            ("failed_closed", &self.failed_closed),
            ("invalid", &self.invalid),
        ] {
            let _ = writeln!(
                out,
                "ecr_operator_admission_decisions_total{{decision=\"{decision}\"}} {}",
                load(c)
            );
        }
        out.push_str(
            "# HELP ecr_operator_admission_digest_resolutions_total Tags resolved to digests on a cache miss, by result.\n\
             # TYPE ecr_operator_admission_digest_resolutions_total counter\n",
        );
        let calls = load(&self.resolver_calls);
        let errors = load(&self.resolver_errors);
        let _ = writeln!(
            out,
            "ecr_operator_admission_digest_resolutions_total{{result=\"ok\"}} {}",
            calls.saturating_sub(errors)
        );
        let _ = writeln!(
            out,
            "ecr_operator_admission_digest_resolutions_total{{result=\"error\"}} {errors}"
        );
        out.push_str(
            "# HELP ecr_operator_admission_duration_seconds Time to answer an admission request.\n\
             # TYPE ecr_operator_admission_duration_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (bound, c) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += load(c);
            let _ = writeln!(
                out,
                "ecr_operator_admission_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "ecr_operator_admission_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = load(&self.latency_sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "ecr_operator_admission_duration_seconds_sum {sum}");
        let _ = writeln!(out, "ecr_operator_admission_duration_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = AdmissionMetrics::new();
        m.record(Outcome::Denied, Duration::from_micros(300));
        m.record(Outcome::Allowed, Duration::from_millis(3));
        m.record(Outcome::Failed { allowed: false }, Duration::from_secs(20));
        let text = m.render_prometheus();
        assert!(text.contains("ecr_operator_admission_decisions_total{decision=\"denied\"} 1"));
        assert!(text.contains("decision=\"failed_closed\"} 1"));
        assert!(text.contains("ecr_operator_admission_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("ecr_operator_admission_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("ecr_operator_admission_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("ecr_operator_admission_duration_seconds_count 3"));
        assert_eq!(m.count(Outcome::Denied), 1);
    }
}
