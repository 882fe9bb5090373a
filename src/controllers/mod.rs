//! Controllers, one reconciler per kind, and what they share.

pub mod access;
pub mod claim;
pub mod image_scan_report;
pub mod interned;
pub mod inventory;
pub mod lifecycle_policy;
pub mod public_repository;
pub mod pull_through_cache_rule;
pub mod registry_policy;
pub mod registry_settings;
pub mod registry_target;
pub mod replication_config;
pub mod repository;
pub mod repository_creation_template;
pub mod resync;
pub mod scan_policy;
pub mod singleton;
pub mod singleton_groups;
mod start;
pub mod status;
pub mod targets;
pub mod trigger;
pub mod watch;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, warn};

use crate::api::conditions::Reason;
use crate::registry::{ErrorClass, Registry, RegistryError, TargetPool};
use crate::telemetry::metrics::Metrics;

pub use crate::scope::WatchScope;
pub use inventory::Inventory;
pub(crate) use start::ready_unless_shutdown;
pub use start::run;
pub use watch::{
    list_parseable, parse_object, parsed_events, trigger_hash, watched, watched_observed,
};

/// The field manager for every write the operator makes.
pub const MANAGER: &str = "ecr-operator";
/// Finalizer guarding ECR resources until they are deleted or released.
pub const FINALIZER: &str = "ecr.operator.dev/finalizer";

/// Operator settings, from `ecr-operator run` flags.
#[derive(Clone, Debug)]
pub struct Config {
    /// Identifies this cluster in ownership tags, so two clusters sharing a registry do not
    /// take each other's repositories.
    pub cluster_id: String,
    /// How often the cheap drift sweep (DescribeRepositories pages) runs.
    pub sweep_interval: Duration,
    /// How often each repository's tags and policy are checked (jittered per object).
    pub deep_sweep_interval: Duration,
    /// Reconciles running at once per controller.
    pub concurrency: u16,
    /// The namespace the operator runs in: Secrets referenced by cluster-scoped objects
    /// (PullThroughCacheRule credentials) are read from here.
    pub operator_namespace: String,
    /// How often image scan reports are refreshed from ECR (scan events refresh sooner).
    pub scan_refresh_interval: Duration,
    /// The operator's ECR region: pod images of other regions get no scan report. `None`
    /// takes every region's images as the client's own (tests against one moto).
    pub region: Option<String>,
    /// Which objects this operator acts on (`--watch-namespaces`, `--watch-selector`).
    pub watch: WatchScope,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // `ecr-operator run` always resolves an id (crate::cluster_id); this one is for
            // in-process runs (tests, the benchmark).
            cluster_id: "local".to_string(),
            sweep_interval: Duration::from_secs(60),
            deep_sweep_interval: Duration::from_secs(3600),
            concurrency: 16,
            operator_namespace: "ecr-operator-system".to_string(),
            scan_refresh_interval: Duration::from_secs(300),
            region: None,
            watch: WatchScope::all(),
        }
    }
}

/// The clients of the RegistryTargets in use, each with the inventory of its registry.
pub type Targets = TargetPool<Arc<Inventory>>;

/// What every reconcile gets.
pub struct Context {
    pub client: Client,
    /// The operator's own registry: what objects without a `registryRef` use.
    pub registry: Arc<dyn Registry>,
    pub config: Config,
    /// The operator's own registry's repositories.
    pub inventory: Arc<Inventory>,
    /// The registries objects name in `registryRef`.
    pub targets: Arc<Targets>,
    /// `reportingInstance` of the events (the pod name).
    event_instance: Option<String>,
    /// Where reconcile counts and durations go (`/metrics`); none in tests that do not look.
    pub metrics: Option<Arc<Metrics>>,
    /// ECR and Inspector scan events (SQS), when configured.
    pub scan_events: Option<Arc<crate::registry::ScanEventQueue>>,
    failures: Mutex<HashMap<String, u32>>,
    /// Images given a StartImageScan, and when: ECR allows one a day.
    scan_starts: Mutex<HashMap<String, std::time::Instant>>,
}

impl Context {
    pub fn new(client: Client, registry: Arc<dyn Registry>, config: Config) -> Self {
        Context {
            event_instance: std::env::var("POD_NAME").ok(),
            client,
            registry,
            config,
            inventory: Arc::default(),
            targets: Arc::new(TargetPool::unconfigured()),
            metrics: None,
            scan_events: None,
            failures: Mutex::default(),
            scan_starts: Mutex::default(),
        }
    }

    /// Reaches RegistryTargets through `targets` (without, none can be reached).
    pub fn with_targets(mut self, targets: Arc<Targets>) -> Self {
        self.targets = targets;
        self
    }

    /// Reads scan events from `queue`.
    pub fn with_scan_events(mut self, queue: crate::registry::ScanEventQueue) -> Self {
        self.scan_events = Some(Arc::new(queue));
        self
    }

    /// Claims the start of a scan of `key` unless one was claimed less than `quota` ago.
    pub fn claim_scan_start(&self, key: &str, quota: Duration) -> bool {
        let mut starts = self.scan_starts.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        starts.retain(|_, at| now.duration_since(*at) < quota);
        if starts.contains_key(key) {
            return false;
        }
        starts.insert(key.to_string(), now);
        true
    }

    /// Forgets a claim whose start failed, so the next refresh tries again.
    pub fn release_scan_start(&self, key: &str) {
        self.scan_starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Sends reconcile metrics to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Records one finished reconcile of `controller`.
    pub fn observe<T>(
        &self,
        controller: &str,
        result: &Result<T, Error>,
        started: std::time::Instant,
    ) {
        if let Some(m) = &self.metrics {
            let label = match result {
                Ok(_) => "success",
                Err(e) => e.metric_label(),
            };
            m.reconciled(controller, label, started.elapsed());
        }
    }

    /// Publishes an event; a failure to publish is logged, never fails the reconcile.
    ///
    /// Created directly rather than through kube's `Recorder`: the controllers publish only on
    /// transitions, so its series aggregation buys nothing here, while its cache kept every
    /// event for six minutes and scanned the whole cache on each publish (10 000 creations:
    /// 10 000 cached events and 10^8 steps).
    pub async fn event<K>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let regarding = obj.object_ref(&());
        let now = k8s_openapi::jiff::Timestamp::now();
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let event = K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(MANAGER),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note),
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(MANAGER.to_string()),
            reporting_instance: Some(self.event_instance.as_deref().unwrap_or(MANAGER).into()),
            type_: Some(event_type(type_).to_string()),
            regarding: Some(regarding),
            ..Default::default()
        };
        let api = kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(
            self.client.clone(),
            &namespace,
        );
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            warn!(error = %e, "publishing event failed");
        }
    }

    /// Backoff after the n-th consecutive failure of one object: 1 s doubling to 5 min,
    /// with jitter so that objects failing together do not retry together.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300));
        base + jitter(key, *n as u64, base / 4)
    }

    pub fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

fn event_type(t: EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// A spawned task that is aborted when this handle is dropped, so that it never outlives the
/// future that spawned it.
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A deterministic pseudo-random duration in `[0, max)` from a key and a salt.
pub fn jitter(key: &str, salt: u64, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    salt.hash(&mut h);
    Duration::from_nanos(h.finish() % max.as_nanos().max(1) as u64)
}

/// Reconcile failures, classified: the class decides between waiting for a spec change and
/// retrying with backoff, and gives the condition's reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotEmpty(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A referenced Repository is missing or not Ready; waits for it (it is watched).
    #[error("{0}")]
    RepositoryNotReady(String),
    /// A referenced Secret is missing or incomplete; waits for it (Secrets are watched).
    #[error("{0}")]
    SecretNotFound(String),
    /// An ECR limit would be exceeded by this object.
    #[error("{0}")]
    LimitExceeded(String),
    /// The RegistryTarget the object names is missing or not Ready; waits for it (targets are
    /// watched), with no call to any registry.
    #[error("{0}")]
    TargetNotReady(String),
    /// The object's namespace is not granted the ECR repository (or its adoption); waits for a
    /// change of the object or of the grants (both are watched).
    #[error("{0}")]
    Forbidden(String),
}

impl Error {
    pub fn reason(&self) -> Reason {
        match self {
            Error::Registry(e) => match e.class {
                ErrorClass::Throttled => Reason::Throttled,
                ErrorClass::Invalid => Reason::Invalid,
                ErrorClass::AccessDenied => Reason::AccessDenied,
                ErrorClass::LimitExceeded => Reason::LimitExceeded,
                ErrorClass::NotEmpty => Reason::RepositoryNotEmpty,
                ErrorClass::AlreadyExists => Reason::Conflict,
                ErrorClass::NotFound | ErrorClass::Transient | ErrorClass::Fenced => {
                    Reason::TransientError
                }
                ErrorClass::Credentials => Reason::AssumeRoleFailed,
            },
            Error::Kube(_) | Error::Finalizer(_) => Reason::TransientError,
            Error::Invalid(_) => Reason::Invalid,
            Error::Conflict(_) => Reason::Conflict,
            Error::NotEmpty(_) => Reason::RepositoryNotEmpty,
            Error::RepositoryNotReady(_) => Reason::RepositoryNotReady,
            Error::SecretNotFound(_) => Reason::SecretNotFound,
            Error::LimitExceeded(_) => Reason::LimitExceeded,
            Error::Forbidden(_) => Reason::Forbidden,
            Error::TargetNotReady(_) => Reason::TargetNotReady,
        }
    }

    /// Permanent errors wait for a change of the object instead of retrying.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Registry(e) => e.class.is_permanent(),
            Error::Invalid(_)
            | Error::Conflict(_)
            | Error::RepositoryNotReady(_)
            | Error::SecretNotFound(_)
            | Error::LimitExceeded(_)
            | Error::Forbidden(_)
            | Error::TargetNotReady(_) => true,
            _ => false,
        }
    }

    /// Short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Registry(e) => e.class.as_str(),
            Error::Kube(_) => "kube",
            Error::Invalid(_) => "invalid",
            Error::Conflict(_) => "conflict",
            Error::NotEmpty(_) => "not_empty",
            Error::Finalizer(_) => "finalizer",
            Error::RepositoryNotReady(_) => "repository_not_ready",
            Error::SecretNotFound(_) => "secret_not_found",
            Error::LimitExceeded(_) => "limit_exceeded",
            Error::Forbidden(_) => "forbidden",
            Error::TargetNotReady(_) => "target_not_ready",
        }
    }
}

/// Flattens the finalizer helper's error into ours, keeping the class of the inner error.
pub fn from_finalizer(e: kube::runtime::finalizer::Error<Error>) -> Error {
    use kube::runtime::finalizer::Error as F;
    match e {
        F::ApplyFailed(e) | F::CleanupFailed(e) => e,
        F::AddFinalizer(e) | F::RemoveFinalizer(e) => Error::Kube(e),
        other => Error::Finalizer(other.to_string()),
    }
}

/// A cluster-wide API for `K`, after checking that its CRD is installed: a missing CRD fails
/// the start with a message that says what to do, instead of a watcher retrying forever.
/// Only metadata is listed, so one object this version cannot parse does not stop the start.
pub async fn require_crd<K>(ctx: &Context) -> Result<(), Error>
where
    K: Resource<DynamicType = ()>,
    K::Scope: 'static,
{
    let api = ctx.config.watch.api::<K>(&ctx.client);
    if let Err(e) = api
        .list_metadata(&ctx.config.watch.list_params().limit(1))
        .await
    {
        return Err(Error::Invalid(format!(
            "cannot list {} objects ({e}); are the CRDs installed? kubectl apply -f crds/",
            K::kind(&())
        )));
    }
    Ok(())
}

/// The kube Controller settings every per-object controller runs with.
pub fn controller_config(ctx: &Context) -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency)
}

/// Paces a sweep loop after one pass: on success, triggers a reconcile of every object (a full
/// channel means one is already pending: nothing is lost) and waits a sweep interval; on failure,
/// backs off from 0.5 s, doubling, at most a sweep interval. `failures` counts the failed passes
/// in a row.
pub async fn pace_sweep(
    ctx: &Context,
    what: &str,
    pass: Result<(), RegistryError>,
    failures: &mut u32,
    trigger: &tokio::sync::mpsc::Sender<()>,
) {
    match pass {
        Ok(()) => {
            *failures = 0;
            let _ = trigger.try_send(());
            tokio::time::sleep(ctx.config.sweep_interval).await;
        }
        Err(e) => {
            *failures += 1;
            let wait = Duration::from_millis(500 * (1u64 << (*failures).min(7)))
                .min(ctx.config.sweep_interval);
            warn!(error = %e, retry_in = ?wait, "{what} sweep failed");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Drives a controller's result stream to its end (shutdown). Failures are already logged and
/// reported on the object by each controller's error policy, so they are only traced here.
pub async fn drain<T, E: std::fmt::Display>(results: impl futures::Stream<Item = Result<T, E>>) {
    use futures::StreamExt;
    results
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!(error = %e, "reconcile failed");
            }
        })
        .await;
}

/// `namespace/name` of an object, for logs and ownership tags.
pub fn object_key<K: Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// The owner tag value naming `obj` in this cluster: `<cluster id>/<namespace>/<name>`
/// ([`owner_value`](crate::api::repository::owner_value)), or `<cluster id>/<name>` for a
/// cluster-scoped object.
pub fn owner_id<K: Resource>(ctx: &Context, obj: &K) -> String {
    let cluster = &ctx.config.cluster_id;
    match obj.namespace() {
        Some(ns) => crate::api::repository::owner_value(cluster, &ns, &obj.name_any()),
        None => format!("{cluster}/{}", obj.name_any()),
    }
}
