//! The server handle: start, stop, restart, test hooks.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::{oneshot, watch},
    task::{JoinHandle, JoinSet},
};

use crate::{
    error::Error,
    ops::Ops,
    resources::collection_key,
    routes,
    store::{Store, object_key},
};

/// Options of the double.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub require_namespaces: bool,
    pub bookmark_interval: Duration,
}

/// State shared by the handle, the listener and the request handlers.
pub(crate) struct Shared {
    pub store: Arc<Store>,
    pub config: Config,
    pub addr: SocketAddr,
    pub drop_watches: watch::Sender<u64>,
    /// What the fault hooks actually hit.
    pub landed: Arc<Landed>,
    counters: Mutex<BTreeMap<(String, String), u64>>,
}

/// Counts of what the fault hooks actually hit (see [`FaultsLanded`]).
#[derive(Debug, Default)]
pub(crate) struct Landed {
    pub dropped_watches: AtomicU64,
    pub gone_sent: AtomicU64,
    pub connections_cut: AtomicU64,
}

/// What the double's fault hooks actually hit, since it started: a fault that met nothing
/// proves nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultsLanded {
    /// Open watch streams ended by [`ApiServer::drop_watches`] (or `expire_watches`).
    pub dropped_watches: u64,
    /// `410 Gone` ERROR events sent to watches (from a compacted resource version).
    pub gone_sent: u64,
    /// Connections open when [`ApiServer::stop`] cut them.
    pub connections_cut: u64,
}

impl Shared {
    /// Counts one request.
    pub fn count(&self, verb: &str, resource: &str) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        *counters
            .entry((verb.to_string(), resource.to_string()))
            .or_insert(0) += 1;
    }

    fn counters(&self) -> MutexGuard<'_, BTreeMap<(String, String), u64>> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Builder for [`ApiServer`].
#[derive(Debug)]
pub struct ApiServerBuilder {
    history_capacity: usize,
    bookmark_interval: Duration,
    require_namespaces: bool,
    namespaces: Vec<String>,
    crds: Vec<CustomResourceDefinition>,
    port: u16,
}

impl Default for ApiServerBuilder {
    fn default() -> Self {
        Self {
            history_capacity: 20_000,
            bookmark_interval: Duration::from_secs(5),
            require_namespaces: true,
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            crds: Vec::new(),
            port: 0,
        }
    }
}

impl ApiServerBuilder {
    /// How many events each resource keeps for watch replay (default 20 000). Older events
    /// are compacted: a watch from before them gets `410 Gone`.
    pub fn history_capacity(mut self, events: usize) -> Self {
        self.history_capacity = events;
        self
    }

    /// How often an idle watch that asked for bookmarks gets a `BOOKMARK` (default 5 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Whether creating a namespaced object needs its Namespace to exist, as on a real server
    /// (default `true`; `default`, `kube-system`, `kube-public` and `kube-node-lease` exist).
    pub fn require_namespaces(mut self, require: bool) -> Self {
        self.require_namespaces = require;
        self
    }

    /// Namespaces to create at start, in addition to the defaults.
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        self.namespaces.push(name.into());
        self
    }

    /// A CRD to install at start.
    pub fn crd(mut self, crd: CustomResourceDefinition) -> Self {
        self.crds.push(crd);
        self
    }

    /// A fixed port instead of a random one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Starts the server on `127.0.0.1`.
    pub async fn start(self) -> Result<ApiServer, Error> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let listener = bind(addr)?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            store: Arc::new(Store::new(self.history_capacity)),
            config: Config {
                require_namespaces: self.require_namespaces,
                bookmark_interval: self.bookmark_interval,
            },
            addr,
            drop_watches: watch::Sender::new(0),
            landed: Arc::new(Landed::default()),
            counters: Mutex::new(BTreeMap::new()),
        });
        let server = ApiServer {
            running: Mutex::new(Some(spawn_server(listener, shared.clone()))),
            shared,
        };
        for ns in &self.namespaces {
            server.ensure_namespace(ns)?;
        }
        for crd in &self.crds {
            server.install_crd(crd)?;
        }
        Ok(server)
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    let err = |source| Error::Bind { addr, source };
    let socket = TcpSocket::new_v4().map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

fn spawn_server(listener: TcpListener, shared: Arc<Shared>) -> Running {
    let (shutdown, mut shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut shutdown_rx => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| routes::handle(shared.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        // Dropping the listener refuses new connections; aborting the connection tasks cuts
        // every open request and watch, as a crashed API server would.
        drop(listener);
        shared
            .landed
            .connections_cut
            .fetch_add(connections.len() as u64, Ordering::Relaxed);
        connections.shutdown().await;
    });
    Running { shutdown, task }
}

/// An in-process Kubernetes API server double serving plain HTTP on `127.0.0.1`.
///
/// Dropping the handle stops the server.
pub struct ApiServer {
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(running) = self.running_slot().take() {
            running.task.abort();
        }
    }
}

impl ApiServer {
    /// Starts a server with the defaults on a random port of `127.0.0.1`.
    pub async fn start() -> Result<Self, Error> {
        ApiServerBuilder::default().start().await
    }

    /// A builder for non-default options.
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder::default()
    }

    fn running_slot(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A kube config pointing at the server (default namespace `default`).
    pub fn kube_config(&self) -> Result<kube::Config, Error> {
        Ok(kube::Config::new(self.url().parse()?))
    }

    /// A kube client for the server. Needs a Tokio runtime.
    pub fn client(&self) -> Result<kube::Client, Error> {
        Ok(kube::Client::try_from(self.kube_config()?)?)
    }

    /// Stops listening and cuts every open connection (watches end with an error on the client
    /// side; new requests are refused). The state is kept for [`restart`](Self::restart).
    pub async fn stop(&self) {
        let running = self.running_slot().take();
        if let Some(running) = running {
            let _ = running.shutdown.send(());
            let _ = running.task.await;
        }
    }

    /// Listens again on the same port with the same state.
    pub async fn restart(&self) -> Result<(), Error> {
        if self.is_running() {
            return Err(Error::AlreadyRunning);
        }
        let listener = bind(self.shared.addr)?;
        let running = spawn_server(listener, self.shared.clone());
        *self.running_slot() = Some(running);
        Ok(())
    }

    /// Whether the server is listening.
    pub fn is_running(&self) -> bool {
        self.running_slot().is_some()
    }

    /// Ends every open watch stream normally (clients resume from their last resource version).
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|n| *n += 1);
    }

    /// Simulates etcd compaction: a watch from any resource version issued before this call
    /// gets a `410 Gone` ERROR event. Open watches go on; combine with
    /// [`drop_watches`](Self::drop_watches) (or use [`expire_watches`](Self::expire_watches))
    /// to force clients to re-list.
    pub fn compact_history(&self) {
        self.shared.store.compact();
    }

    /// [`compact_history`](Self::compact_history) then [`drop_watches`](Self::drop_watches):
    /// every watcher has to re-list.
    pub fn expire_watches(&self) {
        self.compact_history();
        self.drop_watches();
    }

    /// What [`stop`](Self::stop), [`drop_watches`](Self::drop_watches) and
    /// [`compact_history`](Self::compact_history) actually hit so far.
    pub fn faults_landed(&self) -> FaultsLanded {
        let l = &self.shared.landed;
        FaultsLanded {
            dropped_watches: l.dropped_watches.load(Ordering::Relaxed),
            gone_sent: l.gone_sent.load(Ordering::Relaxed),
            connections_cut: l.connections_cut.load(Ordering::Relaxed),
        }
    }

    /// The current (latest issued) resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.current_rv()
    }

    /// Requests served for a verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`) on a resource (`repositories`, `repositories/status`, …;
    /// any group). Discovery counts as `get` on `/api`, `/apis`, `/apis/{group}/{version}`….
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        self.shared
            .counters()
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Every counter, by (verb, resource).
    pub fn request_counts(&self) -> BTreeMap<(String, String), u64> {
        self.shared.counters().clone()
    }

    /// All requests counted.
    pub fn total_requests(&self) -> u64 {
        self.shared.counters().values().sum()
    }

    /// Sets every counter back to zero.
    pub fn reset_request_counts(&self) {
        self.shared.counters().clear();
    }

    fn ops(&self, group: &str, plural: &str, namespace: Option<&str>) -> Result<Ops<'_>, Error> {
        let def = self
            .shared
            .store
            .storage_def(group, plural)
            .ok_or_else(|| Error::InvalidCrd(format!("{plural}.{group} is not served")))?;
        Ok(Ops {
            store: &self.shared.store,
            def,
            namespace: namespace.map(str::to_string),
            require_namespaces: false,
            dry_run: false,
        })
    }

    fn ensure_namespace(&self, name: &str) -> Result<(), Error> {
        let ops = self.ops("", "namespaces", None)?;
        match ops
            .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        {
            Ok(_) => Ok(()),
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(Error::InvalidCrd(e.message)),
        }
    }

    /// Creates a namespace (no-op when it exists).
    pub fn create_namespace(&self, name: &str) -> Result<(), Error> {
        self.ensure_namespace(name)
    }

    /// Installs (or updates) a CRD, exactly as creating it through the API does.
    pub fn install_crd(&self, crd: &CustomResourceDefinition) -> Result<(), Error> {
        self.install_crd_value(serde_json::to_value(crd)?)
    }

    /// Installs (or updates) a CRD given as JSON.
    pub fn install_crd_value(&self, mut crd: Value) -> Result<(), Error> {
        if let Some(map) = crd.as_object_mut() {
            map.entry("apiVersion")
                .or_insert_with(|| json!("apiextensions.k8s.io/v1"));
            map.entry("kind")
                .or_insert_with(|| json!("CustomResourceDefinition"));
        }
        let ops = self.ops("apiextensions.k8s.io", "customresourcedefinitions", None)?;
        ops.create_or_replace(crd)
            .map(|_| ())
            .map_err(|e| Error::InvalidCrd(e.message))
    }

    /// Installs every `CustomResourceDefinition` document of the `*.yaml`, `*.yml` and
    /// `*.json` files of a directory (multi-document YAML is fine; other kinds are skipped).
    /// Returns how many CRDs were installed.
    pub fn install_crds_from_dir(&self, dir: impl AsRef<Path>) -> Result<usize, Error> {
        let dir = dir.as_ref();
        let read_err = |source| Error::ReadFile {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            })
            .collect();
        paths.sort();
        let mut installed = 0;
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadFile {
                path: path.clone(),
                source,
            })?;
            for document in serde_yaml::Deserializer::from_str(&text) {
                let value =
                    Value::deserialize_from(document).map_err(|source| Error::ParseYaml {
                        path: path.clone(),
                        source,
                    })?;
                if value.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                    self.install_crd_value(value)?;
                    installed += 1;
                }
            }
        }
        Ok(installed)
    }

    /// Creates `objects` of one resource without HTTP, each through the same path as a `POST`
    /// (defaults, pruning, schema and CEL validation, a watch event), then, where an object
    /// carries a `status` and the kind has a status subresource, a `PUT` of it to `/status`:
    /// how a benchmark seeds 100,000 objects in the state a controller left them in. Stops at
    /// the first refusal (the objects before it stay); returns how many were created.
    pub fn seed(
        &self,
        group: &str,
        plural: &str,
        objects: impl IntoIterator<Item = Value>,
    ) -> Result<usize, Error> {
        let mut created = 0;
        for mut object in objects {
            let name = crate::meta::meta_str(&object, "name")
                .unwrap_or_default()
                .to_string();
            let refused = |e: crate::status::ApiError| Error::Refused {
                name: name.clone(),
                message: e.message,
            };
            let namespace = crate::meta::meta_str(&object, "namespace").map(str::to_string);
            let ops = self.ops(group, plural, namespace.as_deref())?;
            let status = object.as_object_mut().and_then(|o| o.remove("status"));
            let stored = ops.create(object).map_err(refused)?;
            if let Some(status) = status.filter(|_| ops.def.status_subresource) {
                let mut body = (*stored).clone();
                body["status"] = status;
                ops.update(&name, body, crate::ops::Sub::Status)
                    .map_err(refused)?;
            }
            created += 1;
        }
        Ok(created)
    }

    /// One stored object as JSON, without HTTP (`group` is `""` for core kinds).
    pub fn get_object(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let def = self.shared.store.storage_def(group, plural)?;
        let ns = if def.namespaced { namespace } else { None };
        self.shared
            .store
            .get(&def, &object_key(ns, name))
            .map(|o| (*o).clone())
    }

    /// Every stored object of a resource, in key order, without HTTP.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        self.shared
            .store
            .all(&collection_key(group, plural))
            .into_iter()
            .map(|o| (*o).clone())
            .collect()
    }

    /// One stored object, typed, without HTTP.
    pub fn get<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let value = self.get_object(&K::group(&()), &K::plural(&()), namespace, name)?;
        serde_json::from_value(value).ok()
    }

    /// Every stored object of a kind, typed, without HTTP.
    pub fn list<K>(&self) -> Vec<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.objects(&K::group(&()), &K::plural(&()))
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }
}

trait DeserializeFrom: Sized {
    fn deserialize_from(document: serde_yaml::Deserializer<'_>) -> Result<Self, serde_yaml::Error>;
}

impl DeserializeFrom for Value {
    fn deserialize_from(document: serde_yaml::Deserializer<'_>) -> Result<Self, serde_yaml::Error> {
        serde::Deserialize::deserialize(document)
    }
}
