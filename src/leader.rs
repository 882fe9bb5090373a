//! Leader election on a coordination.k8s.io/v1 Lease, and the fence that keeps a replica that is
//! no longer sure to lead from writing to ECR.
//!
//! Controllers run only on the replica that holds the lease; every replica serves the webhook.
//! The rules, after client-go's leader election (and kubert's):
//! - The holder renews every `renew_every`. Each renewal that succeeds opens the [`Fence`] until
//!   `renew_deadline` after the renewal *started*. A holder that has not renewed by then steps
//!   down: its controllers are stopped and, before that, every ECR write is refused by the fence,
//!   even one already on its way through a reconcile.
//! - Another replica takes the lease once it has seen the same lease record, unchanged, for
//!   `lease_duration` by its own monotonic clock. The remote `renewTime` is never compared with
//!   the local clock: clocks of two nodes may differ by more than a lease.
//! - `renew_deadline < lease_duration`, so the old holder's fence is shut before anyone else may
//!   take over (assuming both clocks run at the same rate, not that they agree).
//! - Writes carry the Lease's resourceVersion, so two candidates racing for an expired lease
//!   cannot both win (the loser gets 409 Conflict). On shutdown the holder releases the lease, so
//!   a successor starts at once instead of after a full lease duration.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tracing::{info, warn};

/// Whether this replica may write to ECR now. Shared by the leader elector (which opens it after
/// each renewal, until the renew deadline) and the ECR clients (which refuse writes while it is
/// shut).
#[derive(Clone, Debug)]
pub struct Fence {
    inner: Arc<FenceState>,
}

#[derive(Debug)]
struct FenceState {
    /// `None`: always open (no leader election).
    base: Option<Instant>,
    /// Nanoseconds after `base` until which writes are allowed; 0 is shut.
    open_until: AtomicU64,
}

impl Fence {
    /// A fence that never shuts: one replica, no leader election.
    pub fn always_open() -> Fence {
        Fence {
            inner: Arc::new(FenceState {
                base: None,
                open_until: AtomicU64::new(0),
            }),
        }
    }

    /// A fence that is shut until a lease is acquired.
    pub fn shut() -> Fence {
        Fence {
            inner: Arc::new(FenceState {
                base: Some(Instant::now()),
                open_until: AtomicU64::new(0),
            }),
        }
    }

    /// Opens the fence until `until` (never moves an opening back).
    pub fn open_until(&self, until: Instant) {
        if let Some(base) = self.inner.base {
            let nanos = until.saturating_duration_since(base).as_nanos() as u64;
            self.inner.open_until.fetch_max(nanos, Ordering::SeqCst);
        }
    }

    /// Shuts the fence now.
    pub fn shut_now(&self) {
        self.inner.open_until.store(0, Ordering::SeqCst);
    }

    /// Whether writes are allowed at `now`.
    pub fn is_open_at(&self, now: Instant) -> bool {
        match self.inner.base {
            None => true,
            Some(base) => {
                let until = self.inner.open_until.load(Ordering::SeqCst);
                until > 0 && (now.saturating_duration_since(base).as_nanos() as u64) < until
            }
        }
    }

    /// Whether writes are allowed now.
    pub fn is_open(&self) -> bool {
        self.is_open_at(Instant::now())
    }
}

/// Settings of one candidate.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long others wait, after the lease record last changed, before they take it.
    pub lease_duration: Duration,
    /// How long the holder keeps writing without a successful renewal (< `lease_duration`).
    pub renew_deadline: Duration,
    /// How often the holder renews and candidates look at the lease.
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// For a lease of `lease_duration`: renew deadline 2/3 of it, retry period 1/5 of it, close
    /// to client-go's defaults (15 s, 10 s, 2 s).
    pub fn with_defaults(
        namespace: String,
        name: String,
        identity: String,
        lease_duration: Duration,
    ) -> LeaseConfig {
        LeaseConfig {
            namespace,
            name,
            identity,
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            renew_every: lease_duration / 5,
        }
    }
}

/// The lease record as this replica last saw it, and when (by its own clock).
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    holder: Option<String>,
    /// What changes on every renewal: the record's resourceVersion and renewTime.
    version: (Option<String>, Option<String>),
    seen_at: Instant,
}

/// Whether a lease held by someone else has expired for this replica: its record has not
/// changed for `lease_duration` since this replica first saw it as it is now.
fn expired(observed: &Observed, now: Instant, lease_duration: Duration) -> bool {
    now.saturating_duration_since(observed.seen_at) >= lease_duration
}

/// One candidate for the lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    leading: Arc<AtomicBool>,
    fence: Fence,
    observed: Mutex<Option<Observed>>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            leading: Arc::new(AtomicBool::new(false)),
            fence: Fence::shut(),
            observed: Mutex::new(None),
        }
    }

    /// True while this replica holds the lease (for metrics and readiness).
    pub fn leading_flag(&self) -> Arc<AtomicBool> {
        self.leading.clone()
    }

    /// The fence this elector opens while it leads: give it to the ECR clients.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Opens and shuts `fence` (one the ECR clients were built with) instead of its own.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        fence.shut_now();
        self.fence = fence;
        self
    }

    /// Notes the lease record as seen now; returns what this replica knows of it.
    fn observe(&self, lease: &Lease, now: Instant) -> Observed {
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.filter(|h| !h.is_empty());
        let version = (
            lease.metadata.resource_version.clone(),
            spec.renew_time.map(|t| t.0.to_string()),
        );
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        match observed.as_ref() {
            Some(o) if o.holder == holder && o.version == version => o.clone(),
            _ => {
                let fresh = Observed {
                    holder,
                    version,
                    seen_at: now,
                };
                *observed = Some(fresh.clone());
                fresh
            }
        }
    }

    /// Takes the lease if it is free, expired or already ours; renews it if ours. Returns
    /// whether this replica holds it now; when it does, the fence is open until the renew
    /// deadline counted from the start of this call.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let started = Instant::now();
        let now = Timestamp::now();
        let duration_secs = self.config.lease_duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(self.renewed(started)),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let observed = self.observe(&lease, started);
        let mine = observed.holder.as_deref() == Some(self.config.identity.as_str());
        if !mine
            && observed.holder.is_some()
            && !expired(&observed, started, self.config.lease_duration)
        {
            return Ok(false);
        }
        let spec = lease.spec.clone().unwrap_or_default();
        let mut new_spec = spec.clone();
        if !mine {
            new_spec.holder_identity = Some(self.config.identity.clone());
            new_spec.acquire_time = Some(MicroTime(now));
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        new_spec.renew_time = Some(MicroTime(now));
        new_spec.lease_duration_seconds = Some(duration_secs);
        lease.spec = Some(new_spec);
        // Replace with the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(self.renewed(started)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A renewal that started at `started` succeeded: writes are allowed until its deadline.
    fn renewed(&self, started: Instant) -> bool {
        self.fence.open_until(started + self.config.renew_deadline);
        true
    }

    /// Gives the lease up if this replica holds it.
    pub async fn release(&self) {
        self.fence.shut_now();
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
                return Ok(());
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.renew_time = None;
            lease.spec = Some(spec);
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
                .map(drop)
        }
        .await;
        self.leading.store(false, Ordering::SeqCst);
        if let Err(e) = result {
            warn!(error = %e, "releasing the lease failed; a successor waits for it to expire");
        }
    }

    /// Renews until the lease is lost, the renew deadline passes without a renewal, the work
    /// ends, or shutdown comes (`true` for shutdown).
    async fn lead(
        &self,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
        task: &mut tokio::task::JoinHandle<()>,
    ) -> bool {
        let mut last_renewal = Instant::now();
        loop {
            tokio::select! {
                _ = &mut *shutdown => return true,
                _ = &mut *task => return false,
                _ = tokio::time::sleep(self.config.renew_every) => {}
            }
            let deadline = last_renewal + self.config.renew_deadline;
            let started = Instant::now();
            // A partition can hang a request: it gets no longer than the deadline leaves, and a
            // shutdown does not wait for it (the release follows at once).
            let attempt = tokio::select! {
                _ = &mut *shutdown => return true,
                attempt = tokio::time::timeout(
                    deadline.saturating_duration_since(started),
                    self.try_acquire_or_renew(),
                ) => attempt,
            };
            match attempt {
                Ok(Ok(true)) => last_renewal = started,
                Ok(Ok(false)) => {
                    warn!("lost the lease");
                    return false;
                }
                Ok(Err(e)) => warn!(error = %e, "renewing the lease failed"),
                Err(_) => warn!("renewing the lease timed out"),
            }
            if Instant::now() >= deadline && last_renewal < started {
                warn!(
                    deadline = ?self.config.renew_deadline,
                    "no renewal within the renew deadline: stepping down"
                );
                return false;
            }
        }
    }

    /// Runs `work` while this replica leads, until `shutdown`. `work` receives a future that
    /// resolves when leadership is lost or shutdown begins, and must stop when it does; it is
    /// started again (from scratch) if leadership is regained.
    pub async fn run<W, Fut>(self, shutdown: impl Future<Output = ()>, mut work: W)
    where
        W: FnMut(tokio::sync::watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::pin!(shutdown);
        loop {
            // Campaign until we lead or shutdown comes.
            loop {
                match self.try_acquire_or_renew().await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => warn!(error = %e, "lease check failed"),
                }
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(self.config.renew_every) => {}
                }
            }
            info!(identity = %self.config.identity, lease = %self.config.name, "became leader");
            self.leading.store(true, Ordering::SeqCst);
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let mut task = AbortOnDrop(tokio::spawn(work(stop_rx)));
            let shutting_down = self.lead(&mut shutdown, &mut task.0).await;
            // Writes stop first, then the work is asked to stop and given until the lease
            // would expire for others; then it is aborted.
            self.fence.shut_now();
            self.leading.store(false, Ordering::SeqCst);
            let _ = stop_tx.send(true);
            // A JoinHandle must not be polled again once it completed (the work may have ended
            // on its own, which ended the term): tokio panics.
            if !task.0.is_finished() {
                let _ = tokio::time::timeout(self.config.lease_duration, &mut task.0).await;
            }
            drop(task);
            if shutting_down {
                self.release().await;
                return;
            }
        }
    }
}

/// Aborts the work when the elector's future is dropped, so work never outlives leadership.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_open_only_until_the_renew_deadline() {
        let fence = Fence::shut();
        let t0 = Instant::now();
        assert!(!fence.is_open_at(t0), "shut until the first renewal");
        fence.open_until(t0 + Duration::from_secs(10));
        assert!(fence.is_open_at(t0 + Duration::from_secs(9)));
        assert!(!fence.is_open_at(t0 + Duration::from_secs(10)));
        // A late, slow renewal never moves the deadline back.
        fence.open_until(t0 + Duration::from_secs(5));
        assert!(fence.is_open_at(t0 + Duration::from_secs(9)));
        fence.shut_now();
        assert!(!fence.is_open_at(t0 + Duration::from_secs(1)));
        assert!(Fence::always_open().is_open());
    }

    #[test]
    fn expiry_is_judged_by_the_local_clock_from_the_last_change_seen() {
        let seen_at = Instant::now();
        let observed = Observed {
            holder: Some("other".into()),
            version: (Some("7".into()), Some("2020-01-01T00:00:00Z".into())),
            seen_at,
        };
        let lease = Duration::from_secs(15);
        // However old the remote renewTime reads, a record first seen now is not expired.
        assert!(!expired(&observed, seen_at, lease));
        assert!(!expired(
            &observed,
            seen_at + Duration::from_secs(14),
            lease
        ));
        assert!(expired(&observed, seen_at + Duration::from_secs(15), lease));
    }

    #[test]
    fn defaults_keep_the_renew_deadline_inside_the_lease() {
        let c = LeaseConfig::with_defaults(
            "ns".into(),
            "lease".into(),
            "me".into(),
            Duration::from_secs(15),
        );
        assert_eq!(c.renew_deadline, Duration::from_secs(10));
        assert_eq!(c.renew_every, Duration::from_secs(3));
        assert!(c.renew_every < c.renew_deadline && c.renew_deadline < c.lease_duration);
    }
}
