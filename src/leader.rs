//! Leader election on a coordination.k8s.io/v1 Lease.
//!
//! Controllers run only on the replica that holds the lease; every replica serves the webhook.
//! The holder renews every `renew_every`; another replica takes over once
//! `renewTime + leaseDurationSeconds` has passed. Writes carry the Lease's resourceVersion, so
//! two candidates racing for an expired lease cannot both win (the loser gets 409 Conflict).
//! On shutdown the holder releases the lease, so a successor starts at once instead of after a
//! full lease duration.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tracing::{info, warn};

/// Settings of one candidate.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

/// One candidate for the lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    leading: Arc<AtomicBool>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            leading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True while this replica holds the lease (for metrics and readiness).
    pub fn leading_flag(&self) -> Arc<AtomicBool> {
        self.leading.clone()
    }

    /// Takes the lease if it is free, expired or already ours; renews it if ours.
    /// Returns whether this replica holds it now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
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
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.config.identity.as_str());
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(secs)) => renewed
                .checked_add(SignedDuration::from_secs(i64::from(secs)))
                .map(|end| end < now)
                .unwrap_or(true),
            _ => true,
        };
        if !mine && holder.is_some() && !expired {
            return Ok(false);
        }
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
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up if this replica holds it.
    pub async fn release(&self) {
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

    /// Runs `work` while this replica leads, until `shutdown`. `work` receives a future that
    /// resolves when leadership is lost or shutdown begins, and must stop when it does; it is
    /// started again if leadership is regained.
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
            let mut shutting_down = false;
            // Renew while leading; stop the work when renewal fails or shutdown comes.
            loop {
                tokio::select! {
                    _ = &mut shutdown => { shutting_down = true; break; }
                    _ = &mut task.0 => { break; }
                    _ = tokio::time::sleep(self.config.renew_every) => {
                        match self.try_acquire_or_renew().await {
                            Ok(true) => {}
                            Ok(false) => { warn!("lost the lease"); break; }
                            // A renewal error is not yet a loss: the lease may still be valid.
                            Err(e) => warn!(error = %e, "renewing the lease failed"),
                        }
                    }
                }
            }
            self.leading.store(false, Ordering::SeqCst);
            let _ = stop_tx.send(true);
            let _ = tokio::time::timeout(self.config.lease_duration, &mut task.0).await;
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
