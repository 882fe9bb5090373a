//! Controllers, one reconciler per kind, and what they share.

pub mod access;
pub mod image_scan_report;
pub mod inventory;
pub mod lifecycle_policy;
pub mod pull_through_cache_rule;
pub mod replication_config;
pub mod repository;
pub mod scan_policy;
pub mod singleton;
pub mod status;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, warn};

use crate::api::conditions::Reason;
use crate::registry::{ErrorClass, Registry, RegistryError};
use crate::telemetry::metrics::Metrics;

pub use crate::scope::WatchScope;
pub use inventory::Inventory;

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

/// What every reconcile gets.
pub struct Context {
    pub client: Client,
    pub registry: Arc<dyn Registry>,
    pub config: Config,
    pub inventory: Inventory,
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
            inventory: Inventory::default(),
            metrics: None,
            scan_events: None,
            failures: Mutex::default(),
            scan_starts: Mutex::default(),
        }
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
            reporting_instance: Some(
                self.event_instance
                    .clone()
                    .unwrap_or_else(|| MANAGER.to_string()),
            ),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
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
            },
            Error::Kube(_) | Error::Finalizer(_) => Reason::TransientError,
            Error::Invalid(_) => Reason::Invalid,
            Error::Conflict(_) => Reason::Conflict,
            Error::NotEmpty(_) => Reason::RepositoryNotEmpty,
            Error::RepositoryNotReady(_) => Reason::RepositoryNotReady,
            Error::SecretNotFound(_) => Reason::SecretNotFound,
            Error::LimitExceeded(_) => Reason::LimitExceeded,
            Error::Forbidden(_) => Reason::Forbidden,
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
            | Error::Forbidden(_) => true,
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

/// Hash of what should trigger a reconcile: spec (generation), deletion, finalizers and
/// annotations. Status writes, including our own, do not.
pub fn trigger_hash<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.annotations.hash(&mut h);
    Some(h.finish())
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

/// Parses one object of `K` read as a [`DynamicObject`].
pub fn parse_object<K: serde::de::DeserializeOwned>(
    obj: &DynamicObject,
) -> Result<K, serde_json::Error> {
    serde_json::to_value(obj).and_then(serde_json::from_value)
}

/// Every object of `K` in the watch scope, read as JSON and parsed one by one: objects that do
/// not parse are left out (the controller of their kind reports them) instead of failing the
/// whole list.
pub async fn list_parseable<K>(client: &Client, scope: &WatchScope) -> Result<Vec<K>, kube::Error>
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned,
    K::Scope: 'static,
{
    let list = scope.api::<K>(client).list(&scope.list_params()).await?;
    Ok(list
        .items
        .iter()
        .filter(|o| scope.includes_namespace(o.metadata.namespace.as_deref()))
        .filter_map(|o| parse_object(o).ok())
        .collect())
}

/// The message on an object this version of the operator cannot read.
fn unparseable_message(e: &serde_json::Error) -> String {
    format!(
        "this object cannot be read by ecr-operator ({e}); fix its spec or delete it (was it written for another version of the CRD?)"
    )
}

/// Reports on the object itself that it cannot be parsed: `Ready=False, reason=Invalid`. Writes
/// only when the condition says something else, so the report's own watch event ends the loop.
async fn report_unparseable<K>(client: &Client, obj: &DynamicObject, e_parse: &serde_json::Error)
where
    K: Resource<DynamicType = ()>,
{
    let message = unparseable_message(e_parse);
    let generation = obj.metadata.generation;
    let ready = obj.data["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    let reported = ready.is_some_and(|c| {
        c["reason"] == Reason::Invalid.as_str()
            && c["message"] == message.as_str()
            && c["observedGeneration"].as_i64() == generation
    }) && obj.data["status"]["observedGeneration"].as_i64() == generation;
    if reported {
        return;
    }
    let key = match &obj.metadata.namespace {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    };
    warn!(kind = K::kind(&()).as_ref(), object = %key, error = %e_parse, "cannot parse object; reported on it");
    let condition = crate::api::conditions::ready_condition(
        &[],
        false,
        Reason::Invalid,
        message,
        generation,
        k8s_openapi::jiff::Timestamp::now(),
    );
    let patch = serde_json::json!({"status": {
        "observedGeneration": generation,
        "conditions": [condition],
    }});
    let ar = ApiResource::erase::<K>(&());
    let api: kube::Api<DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &ar),
        None => kube::Api::all_with(client.clone(), &ar),
    };
    let written = api
        .patch_status(
            &obj.name_any(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await;
    if let Err(e) = written {
        // An API server that validates the whole object on status writes (without ratcheting)
        // refuses any write to it: a Warning event still tells its users.
        debug!(object = %key, error = %e, "status of an unparseable object not written; sending an event");
        let recorder = kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: MANAGER.to_string(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(K::api_version(&()).to_string()),
            kind: Some(K::kind(&()).to_string()),
            name: obj.metadata.name.clone(),
            namespace: obj.metadata.namespace.clone(),
            uid: obj.metadata.uid.clone(),
            resource_version: obj.metadata.resource_version.clone(),
            ..Default::default()
        };
        let event = kube::runtime::events::Event {
            type_: EventType::Warning,
            reason: Reason::Invalid.as_str().to_string(),
            note: Some(unparseable_message(e_parse)),
            action: "Parse".to_string(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference).await {
            warn!(object = %key, error = %e, "reporting an unparseable object failed");
        }
    }
}

/// Turns a watch event of JSON objects into one of `K`, reporting and leaving out objects that
/// do not parse (a typed watch would fail, and retry forever, on the first such object, and
/// with it every object of the kind).
async fn parse_event<K>(
    client: &Client,
    scope: &WatchScope,
    event: kube::runtime::watcher::Event<DynamicObject>,
) -> Option<kube::runtime::watcher::Event<K>>
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned,
{
    use kube::runtime::watcher::Event as E;
    let parsed = |o: &DynamicObject| parse_object::<K>(o);
    match event {
        E::Init => Some(E::Init),
        E::InitDone => Some(E::InitDone),
        // Several watched namespaces are watched cluster-wide: the others are left out here.
        E::Apply(o) | E::InitApply(o) | E::Delete(o)
            if !scope.includes_namespace(o.metadata.namespace.as_deref()) =>
        {
            None
        }
        E::Apply(o) | E::InitApply(o) if parsed(&o).is_err() => {
            if let Err(e) = parsed(&o) {
                report_unparseable::<K>(client, &o, &e).await;
            }
            None
        }
        E::Apply(o) => parsed(&o).ok().map(E::Apply),
        E::InitApply(o) => parsed(&o).ok().map(E::InitApply),
        E::Delete(o) => parsed(&o).ok().map(E::Delete),
    }
}

/// The watch events of `K` in the watch scope, read as JSON and parsed one by one: an object
/// that does not parse is reported on itself and left out (see [`parse_event`]).
pub fn parsed_events<K>(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<kube::runtime::watcher::Event<K>, kube::runtime::watcher::Error>>
+ Send
+ 'static
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned + Send + 'static,
    K::Scope: 'static,
{
    use futures::StreamExt;
    use kube::runtime::utils::WatchStreamExt;
    let client = ctx.client.clone();
    let scope = ctx.config.watch.clone();
    let json = scope.api::<K>(&client);
    kube::runtime::watcher(json, scope.watcher_config())
        .default_backoff()
        .filter_map(move |event| {
            let client = client.clone();
            let scope = scope.clone();
            async move {
                match event {
                    Ok(e) => parse_event::<K>(&client, &scope, e).await.map(Ok),
                    Err(e) => Some(Err(e)),
                }
            }
        })
}

/// The store and trigger stream every controller watches `K` with: the objects in the watch
/// scope, reflected into the store, and passed on only when [`trigger_hash`] changes (status
/// writes do not trigger). Objects are read as JSON and parsed one by one; one that does not
/// parse is reported on itself and left out, and the others go on.
pub fn watched<K>(
    ctx: &Context,
) -> (
    kube::runtime::reflector::Store<K>,
    impl futures::Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::Scope: 'static,
{
    use kube::runtime::utils::{PredicateConfig, WatchStreamExt};
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = parsed_events::<K>(ctx)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger_hash, PredicateConfig::default());
    (reader, stream)
}

/// The kube Controller settings every per-object controller runs with.
pub fn controller_config(ctx: &Context) -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency)
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

/// Runs every controller until `shutdown` resolves. This is what `ecr-operator run` calls,
/// and what the integration tests start. The controllers run concurrently, all stopping on the
/// same signal; the first that fails to start (e.g. its CRD is missing) stops them all.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    use futures::FutureExt;
    let shutdown = shutdown.boxed().shared();
    // Every store lives as long as this run, so a new leadership term starts from what the
    // cluster and ECR hold now: the watches and grants are started afresh, the inventory is
    // emptied until the first sweep.
    ctx.inventory.forget_all();
    let grants = access::Grants::start(&ctx);
    tokio::try_join!(
        access::run(ctx.clone(), shutdown.clone()),
        repository::run(ctx.clone(), grants.clone(), shutdown.clone()),
        lifecycle_policy::run(ctx.clone(), grants, shutdown.clone()),
        pull_through_cache_rule::run(ctx.clone(), shutdown.clone()),
        singleton::run::<replication_config::Replication>(ctx.clone(), shutdown.clone()),
        singleton::run::<scan_policy::Scanning>(ctx.clone(), shutdown.clone()),
        image_scan_report::run(ctx, shutdown),
    )?;
    Ok(())
}
