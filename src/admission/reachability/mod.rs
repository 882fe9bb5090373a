//! The webhook proves it is reachable. With `failurePolicy: Ignore` a webhook the API server
//! cannot reach fails silently: every pod is admitted and no image is checked. So the operator
//! asks the API server, at start and every `--webhook-probe-seconds`, to create a probe Pod in
//! a namespace the webhook covers, as a server-side dry run (`dryRun=All`: nothing is ever
//! persisted), and the webhook refuses that Pod with a marker and the probe's nonce
//! ([`review::probe_refusal`](crate::admission::review::probe_refusal)). What the answer means
//! is decided by [`verdict::classify`] (pure); what it changes on each ScanPolicy by
//! [`plan::plan`] (pure). This module does the I/O: the dry-run create, the metric
//! (`ecr_operator_webhook_reachable`, `ecr_operator_webhook_probes_total`), the
//! `WebhookReachable` condition on every ScanPolicy in scope (server-side apply of that one
//! condition under its own field manager, only when it changes, only on the replica that
//! leads) and an Event on each ScanPolicy when the condition's status or reason changes.

pub mod plan;
pub mod verdict;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::admission::review::{PROBE_ANNOTATION, PROBE_IMAGE};
use crate::api::scan_policy::ScanPolicy;
use crate::scope::WatchScope;
use crate::telemetry::metrics::Metrics;
use crate::text::clip;
use plan::Planned;
use verdict::{Answer, Reachability, Verdict};

/// The field manager of the `WebhookReachable` condition (the controllers' own manager owns
/// the rest of the status, so neither removes the other's conditions).
pub const FIELD_MANAGER: &str = "ecr-operator-webhook-probe";

/// Who the Events name as their reporting controller.
const REPORTER: &str = "ecr-operator";

/// Longest event note Kubernetes accepts (1 kB).
const EVENT_NOTE_MAX: usize = 1000;

/// A yes/no question asked before each step (is this replica the leader, is it ready).
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

/// Why reporting a verdict failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

/// The probe's settings.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// Where the probe Pod is created: a namespace the webhook's `namespaceSelector` covers.
    pub namespace: String,
    /// Time between probes.
    pub interval: Duration,
    /// How long a probe may take (the API server waits up to the webhook's `timeoutSeconds`).
    pub timeout: Duration,
    /// A probe that does not find the webhook is repeated after this long before it counts, so
    /// a blip (a replica rolling) does not flip the condition.
    pub confirm_after: Duration,
}

impl ProbeConfig {
    /// Every `interval` in `namespace`; 35 s timeout, confirmed after 5 s.
    pub fn new(namespace: impl Into<String>, interval: Duration) -> Self {
        Self {
            namespace: namespace.into(),
            interval,
            timeout: Duration::from_secs(35),
            confirm_after: Duration::from_secs(5),
        }
    }
}

/// Probes the webhook through the API server and reports what it finds.
pub struct Prober {
    client: kube::Client,
    config: ProbeConfig,
    metrics: Arc<Metrics>,
    scope: WatchScope,
    /// Whether this replica writes conditions and Events (the leader).
    may_write: Gate,
    /// Whether to probe yet (the webhook ready: before that, "unreachable" is no news).
    ready: Gate,
    instance: String,
}

impl Prober {
    /// A prober that writes on every probe, for every ScanPolicy, as soon as it runs.
    pub fn new(client: kube::Client, config: ProbeConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            client,
            config,
            metrics,
            scope: WatchScope::all(),
            may_write: Arc::new(|| true),
            ready: Arc::new(|| true),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| REPORTER.to_owned()),
        }
    }

    /// Only the ScanPolicies of `scope` get the condition.
    pub fn with_scope(mut self, scope: WatchScope) -> Self {
        self.scope = scope;
        self
    }

    /// Writes conditions and Events only while `may_write` says so (the lease holder).
    pub fn writing_when(mut self, may_write: Gate) -> Self {
        self.may_write = may_write;
        self
    }

    /// Probes for the first time only once `ready` says so.
    pub fn starting_when(mut self, ready: Gate) -> Self {
        self.ready = ready;
        self
    }

    /// Probes at start and every interval until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        while !(self.ready)() {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        loop {
            let verdict = tokio::select! {
                () = &mut shutdown => return,
                v = self.probe_confirmed() => v,
            };
            if (self.may_write)() {
                match self.report(&verdict).await {
                    Ok(n) => tracing::debug!(written = n, "webhook probe: conditions written"),
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook probe: cannot write the conditions")
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }

    /// [`Self::probe`], repeated once after `confirm_after` when the first attempt did not find
    /// the webhook: only the confirmed verdict sets the gauge (both attempts are counted).
    pub async fn probe_confirmed(&self) -> Verdict {
        let first = self.attempt().await;
        if first.reachability == Reachability::Reachable || self.config.confirm_after.is_zero() {
            return self.conclude(first);
        }
        tracing::debug!(
            reason = first.reason,
            "webhook probe: not found, trying again"
        );
        tokio::time::sleep(self.config.confirm_after).await;
        self.probe().await
    }

    /// One probe: the dry-run create, its answer classified, counted, logged and set as the
    /// gauge.
    pub async fn probe(&self) -> Verdict {
        let verdict = self.attempt().await;
        self.conclude(verdict)
    }

    /// The dry-run create and its answer classified and counted.
    async fn attempt(&self) -> Verdict {
        let nonce = crate::telemetry::trace::new_trace_id();
        let started = Instant::now();
        let answer = self.dry_run_create(&nonce).await;
        let verdict = verdict::classify(&answer, &nonce, &self.config.namespace);
        self.metrics
            .webhook_probed(verdict.reachability.metric_label());
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(
            elapsed_ms,
            reason = verdict.reason,
            "webhook probe answered"
        );
        verdict
    }

    /// Sets the gauge to `verdict` and logs it (a warning unless the webhook answered).
    fn conclude(&self, verdict: Verdict) -> Verdict {
        let reachable = verdict.reachability == Reachability::Reachable;
        self.metrics.set_webhook_reachable(reachable);
        if !reachable {
            tracing::warn!(reason = verdict.reason, message = %verdict.message,
                "webhook probe: the API server does not reach the webhook");
        }
        verdict
    }

    /// Asks the API server to create the probe Pod as a dry run.
    async fn dry_run_create(&self, nonce: &str) -> Answer {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let params = PostParams {
            dry_run: true,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let pod = probe_pod(nonce);
        match tokio::time::timeout(self.config.timeout, pods.create(&params, &pod)).await {
            Ok(Ok(_)) => Answer::Admitted,
            Ok(Err(kube::Error::Api(status))) => Answer::Refused {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            Ok(Err(e)) => Answer::NoAnswer(e.to_string()),
            Err(_) => Answer::NoAnswer(format!("no answer within {:?}", self.config.timeout)),
        }
    }

    /// Writes `verdict` as the `WebhookReachable` condition of every ScanPolicy in scope whose
    /// condition says otherwise, with an Event where it changes; returns how many it wrote.
    pub async fn report(&self, verdict: &Verdict) -> Result<usize, ProbeError> {
        let api = self.scope.api::<ScanPolicy>(&self.client);
        let policies = api.list(&self.scope.list_params()).await?;
        let now = Timestamp::now();
        let mut written = 0;
        for policy in &policies.items {
            let previous = plan::current(policy.data.pointer("/status/conditions"));
            let Some(planned) =
                plan::plan(previous.as_ref(), verdict, policy.metadata.generation, now)
            else {
                continue;
            };
            self.write(&api, policy, &planned).await?;
            written += 1;
        }
        Ok(written)
    }

    /// Applies one ScanPolicy's condition and publishes its transition.
    async fn write(
        &self,
        api: &Api<DynamicObject>,
        policy: &DynamicObject,
        planned: &Planned,
    ) -> Result<(), ProbeError> {
        let patch = json!({
            "apiVersion": ScanPolicy::api_version(&()),
            "kind": ScanPolicy::kind(&()),
            "status": {"conditions": [planned.condition]},
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(&policy.name_any(), &params, &Patch::Apply(&patch))
            .await?;
        if let Some(transition) = &planned.transition {
            self.publish(policy, transition).await;
        }
        Ok(())
    }

    /// Publishes the Event of a transition; a failure is logged, never fatal.
    async fn publish(&self, policy: &DynamicObject, transition: &plan::Transition) {
        let regarding = policy.object_ref(&kube::core::ApiResource::erase::<ScanPolicy>(&()));
        let now = Timestamp::now();
        // Cluster-scoped objects' Events go to `default`, as kubectl describe looks there.
        let namespace = "default";
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", policy.name_any(), now.as_nanosecond())),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            action: Some("ProbeWebhook".to_owned()),
            reason: Some(transition.reason.clone()),
            note: Some(clip(&transition.note, EVENT_NOTE_MAX)),
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(REPORTER.to_owned()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(
                if transition.warning {
                    "Warning"
                } else {
                    "Normal"
                }
                .to_owned(),
            ),
            regarding: Some(regarding),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        if let Err(e) = events.create(&PostParams::default(), &event).await {
            tracing::warn!(error = %e, "webhook probe: publishing the event failed");
        }
    }
}

/// The probe Pod: the webhook recognises it by [`PROBE_ANNOTATION`] (its value, `nonce`, comes
/// back in the refusal); an ECR-looking image so that the webhook configuration's
/// `matchConditions` send it; restricted by Pod Security Standards, so that PodSecurity does
/// not refuse it before the webhook is asked. Only ever created as a dry run.
pub fn probe_pod(nonce: &str) -> Pod {
    let value = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "ecr-operator-webhook-probe-",
            "labels": {"app.kubernetes.io/name": "ecr-operator", "app.kubernetes.io/component": "webhook-probe"},
            "annotations": {PROBE_ANNOTATION: nonce},
        },
        "spec": {
            "automountServiceAccountToken": false,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe",
                "image": PROBE_IMAGE,
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    });
    // A literal that always has a Pod's shape.
    serde_json::from_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_pod_carries_the_nonce_and_the_probe_image() {
        let pod = probe_pod("n-1");
        assert_eq!(
            pod.annotations().get(PROBE_ANNOTATION).map(String::as_str),
            Some("n-1")
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some(PROBE_IMAGE));
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert!(pod.metadata.generate_name.is_some());
    }
}
