//! The HTTPS admission webhook server.
//!
//! `POST /validate-pods` (also `/validate-workloads` and `/validate`: one handler serves every
//! kind) answers `admission.k8s.io/v1` AdmissionReviews for Pods (CREATE, and UPDATE that adds an
//! image, including the `ephemeralcontainers` subresource) and for the pod templates of
//! Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs. The server parses the
//! request, gathers the inputs of [`decide`] from the [`ScanCache`] (and the
//! [`DigestResolver`] for tags the cache does not know), and answers. Whether a pod is admitted is
//! [`decide`]'s; what happens when a tag cannot be resolved in time (below) is still decided
//! here, around it.
//!
//! # Failure policy
//!
//! The webhook answers within [`WebhookConfig::timeout`], whatever happens behind it:
//!
//! - **Tag resolution** (the only call that leaves the process) is bounded by
//!   [`WebhookConfig::resolve_timeout`] and by the request timeout. When it fails or times out,
//!   the image is decided without a digest (as an image without a report: the policy's
//!   `unscanned` action applies), and then, for each ScanPolicy that checks the image, by its
//!   mode: `enforce` **fails closed** (the pod is denied, code 503, with a message that says the
//!   tag could not be resolved and that pinning a digest avoids the lookup), `warn` admits with a
//!   warning, `audit` **fails open** (admits, and logs the failure).
//! - **The cache has not synced yet** (just after start): no policy is known, so
//!   [`WebhookConfig::cache_unavailable`] decides: [`FailurePolicy::Fail`] (the default) denies
//!   with code 503, [`FailurePolicy::Ignore`] admits with a warning. The readiness flag
//!   ([`Readiness::ready`]) stays false until then, so a Service sends no traffic to a replica
//!   in that state in the first place.
//! - **A body that is not an AdmissionReview**: HTTP 400 with an AdmissionReview whose response
//!   is `allowed: false`, code 400 (the API server then applies the webhook configuration's
//!   `failurePolicy`). A body larger than [`WebhookConfig::max_body_bytes`]: HTTP 413.
//!
//! Every answer is counted in [`AdmissionMetrics`] and logged (object, namespace, decision,
//! reason); denials also become a Kubernetes Event in the object's namespace (best effort, off the
//! request path).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::admission::AdmissionResponse;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use super::cache::{ScanCache, Snapshot};
use super::cert_secret::{self, SharedCertificate};
use super::decision::{AuditRecord, DecisionInput, PodImage, ReportLookup, Verdict, clip, decide};
use super::metrics::{AdmissionMetrics, Outcome};
use super::resolver::{CachedResolver, DigestResolver};
use super::review::{self, Request, Subject};
use super::tls::{self, CertStore, FileCerts, TlsError};
use crate::api::scan_policy::EnforcementMode;
use crate::image::ImageRef;
use crate::telemetry::trace;

/// The paths the webhook answers on.
pub const PATHS: [&str; 3] = ["/validate-pods", "/validate-workloads", "/validate"];

/// The W3C Trace Context header whose trace id an admission request's logs carry.
const TRACEPARENT: &str = "traceparent";

/// Longest time a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections held at once, the API server's included: the webhook port is reachable
/// from pods, and a flood of connections must not take what the API server needs (with
/// `failurePolicy: Ignore`, a webhook that does not answer admits everything).
#[derive(Debug)]
struct ConnectionLimits {
    open: Arc<Semaphore>,
    per_peer: std::sync::Mutex<HashMap<IpAddr, usize>>,
    max_per_peer: usize,
}

/// One accepted connection's place within [`ConnectionLimits`], given back on drop.
struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    peer: IpAddr,
    _open: tokio::sync::OwnedSemaphorePermit,
}

impl ConnectionLimits {
    fn new(max_open: usize, max_per_peer: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Arc::new(Semaphore::new(max_open.max(1))),
            per_peer: std::sync::Mutex::default(),
            max_per_peer: max_per_peer.max(1),
        })
    }

    /// A slot for a new connection from `peer`, or `None` when the peer or the server is at
    /// its limit (the connection is then closed at once, so accepting stays responsive).
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<ConnectionSlot> {
        let open = self.open.clone().try_acquire_owned().ok()?;
        let mut per_peer = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_peer.entry(peer).or_insert(0);
        if *count >= self.max_per_peer {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            limits: self.clone(),
            peer,
            _open: open,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut per_peer = self
            .limits
            .per_peer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_peer.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

/// Longest event note Kubernetes accepts (1 kB).
const EVENT_NOTE_MAX: usize = 1000;

/// What to do when the webhook cannot know the policies (its cache has not synced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Deny (fail closed).
    #[default]
    Fail,
    /// Admit with a warning (fail open).
    Ignore,
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum CertificateSource {
    /// PEM files (a mounted Secret), reloaded when they change.
    Files {
        /// The certificate chain (`tls.crt`).
        cert: PathBuf,
        /// The private key (`tls.key`).
        key: PathBuf,
        /// How often the files are checked for changes.
        reload_interval: Duration,
    },
    /// Generated at start with a private CA.
    Generated {
        /// The names the certificate is valid for (`SERVICE.NAMESPACE.svc`, …).
        dns_names: Vec<String>,
        /// The ValidatingWebhookConfiguration whose webhooks get the CA bundle, if any.
        webhook_configuration: Option<String>,
        /// Validity in days.
        valid_days: i64,
    },
    /// Generated once and shared by every replica through a Secret, renewed near expiry
    /// (see [`super::cert_secret`]).
    Shared(SharedCertificate),
}

/// The webhook's settings.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The address to listen on (port 0 picks one; see [`WebhookServer::local_addr`]).
    pub addr: SocketAddr,
    /// The serving certificate.
    pub certificate: CertificateSource,
    /// The longest time a request may take (keep it well under the webhook configuration's
    /// `timeoutSeconds`).
    pub timeout: Duration,
    /// The longest time one tag resolution may take.
    pub resolve_timeout: Duration,
    /// How long a resolved digest is remembered.
    pub resolve_found_ttl: Duration,
    /// How long "no such tag" is remembered.
    pub resolve_missing_ttl: Duration,
    /// Resolves tags the cache does not know (ECR `DescribeImages`); `None` decides on the cache.
    pub resolver: Option<Arc<dyn DigestResolver>>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// What to answer before the cache has synced.
    pub cache_unavailable: FailurePolicy,
    /// Publish an Event for every denial.
    pub events: bool,
    /// `reportingController` of the events.
    pub event_reporter: String,
    /// `reportingInstance` of the events (the pod name); the host name when `None`.
    pub event_instance: Option<String>,
    /// The ScanPolicies and ImageScanReports this webhook reads (`--watch-selector`).
    pub watch: crate::scope::WatchScope,
    /// Connections open at once; more are closed as they are accepted.
    pub max_connections: usize,
    /// Connections open at once from one IP address (a pod flooding the port cannot take the
    /// API server's share).
    pub max_connections_per_peer: usize,
    /// How long an HTTP/1 connection may wait for a request's headers, idle keep-alive
    /// connections included: then it is closed.
    pub header_read_timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("addr", &self.addr)
            .field("certificate", &self.certificate)
            .field("timeout", &self.timeout)
            .field("resolve_timeout", &self.resolve_timeout)
            .field("resolver", &self.resolver.is_some())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("cache_unavailable", &self.cache_unavailable)
            .field("watch", &self.watch)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .field("header_read_timeout", &self.header_read_timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Defaults: port 9443 (the chart's `webhook.port`) on every address, a 3 s request
    /// budget, a 1 s resolver deadline (found digests remembered 5 min, missing tags 30 s),
    /// 3 MiB bodies, fail closed before the cache syncs, events on.
    pub fn new(certificate: CertificateSource) -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 9443)),
            certificate,
            timeout: Duration::from_secs(3),
            resolve_timeout: Duration::from_secs(1),
            resolve_found_ttl: Duration::from_secs(300),
            resolve_missing_ttl: Duration::from_secs(30),
            resolver: None,
            max_body_bytes: 3 * 1024 * 1024,
            cache_unavailable: FailurePolicy::Fail,
            events: true,
            event_reporter: "ecr-operator-webhook".to_owned(),
            event_instance: None,
            watch: crate::scope::WatchScope::all(),
            max_connections: 1024,
            max_connections_per_peer: 64,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The listening socket.
    #[error("webhook: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The serving certificate.
    #[error("webhook: {0}")]
    Tls(#[from] TlsError),
}

/// Whether the webhook can answer: a certificate is loaded and the cache has synced.
#[derive(Clone, Debug)]
pub struct Readiness {
    certs: Arc<CertStore>,
    cache: Arc<ScanCache>,
}

impl Readiness {
    /// True once a certificate is loaded and the report cache has synced.
    pub fn ready(&self) -> bool {
        self.certs.is_loaded() && self.cache.is_synced()
    }
}

/// A bound webhook, not yet serving.
pub struct WebhookServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handler: Arc<Handler>,
    readiness: Readiness,
    certs: Arc<CertStore>,
    tasks: JoinSet<()>,
    limits: Arc<ConnectionLimits>,
    header_read_timeout: Duration,
}

impl std::fmt::Debug for WebhookServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookServer")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// Runs the webhook until `shutdown` completes: binds, loads or generates the certificate,
/// starts the cache, serves, and on shutdown stops accepting and lets open requests finish
/// (for at most the request timeout). The entry point of `ecr-operator run`.
pub async fn serve(
    config: WebhookConfig,
    client: kube::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WebhookError> {
    WebhookServer::bind(config, client)
        .await?
        .run(shutdown)
        .await;
    Ok(())
}

impl WebhookServer {
    /// Binds the listener, loads (or generates) the certificate and starts the cache.
    pub async fn bind(config: WebhookConfig, client: kube::Client) -> Result<Self, WebhookError> {
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| WebhookError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let mut tasks = JoinSet::new();
        let certs = Arc::new(CertStore::new());
        match &config.certificate {
            CertificateSource::Files {
                cert,
                key,
                reload_interval,
            } => {
                let files = FileCerts::load(cert.clone(), key.clone(), &certs)?;
                tasks.spawn(files.watch(certs.clone(), *reload_interval));
            }
            CertificateSource::Generated {
                dns_names,
                webhook_configuration,
                valid_days,
            } => {
                let generated = tls::generate(dns_names, *valid_days)?;
                certs.set(generated.certified.clone());
                if let Some(name) = webhook_configuration {
                    tasks.spawn(tls::keep_writing_ca_bundle(
                        client.clone(),
                        name.clone(),
                        generated.ca_pem.clone(),
                    ));
                }
            }
            CertificateSource::Shared(shared) => {
                // Not awaited: the API may be slow to answer at start; readiness waits for
                // the certificate instead.
                tasks.spawn(cert_secret::run(
                    client.clone(),
                    shared.clone(),
                    certs.clone(),
                ));
            }
        }
        let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(certs.clone())?));
        let cache = ScanCache::start(client.clone(), &config.watch, &mut tasks);
        let recorder = config.events.then(|| {
            Recorder::new(
                client,
                Reporter {
                    controller: config.event_reporter.clone(),
                    instance: config.event_instance.clone(),
                },
            )
        });
        let handler = Arc::new(Handler::new(&config, cache.clone(), recorder));
        Ok(Self {
            listener,
            acceptor,
            readiness: Readiness {
                certs: certs.clone(),
                cache,
            },
            handler,
            certs,
            tasks,
            limits: ConnectionLimits::new(config.max_connections, config.max_connections_per_peer),
            header_read_timeout: config.header_read_timeout,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The readiness flag, for the health listener.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// The decision counters, for the metrics listener.
    pub fn metrics(&self) -> Arc<AdmissionMetrics> {
        self.handler.metrics.clone()
    }

    /// The scan report cache (its findings gauges are served on the admin listener).
    pub fn scan_cache(&self) -> Arc<ScanCache> {
        self.handler.cache.clone()
    }

    /// The certificate store (what is served now).
    pub fn certificates(&self) -> Arc<CertStore> {
        self.certs.clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        // The protocol is the one TLS negotiated (ALPN), not sniffed from the first bytes: a
        // sniffing server waits for those bytes without a deadline. An HTTP/1 connection that
        // sends no request headers in time, first request or kept alive, is then closed.
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2.timer(TokioTimer::new());
        let stopping = Arc::new(AtomicBool::new(false));
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Some(slot) = self.limits.admit(peer.ip()) else {
                tracing::debug!(%peer, "webhook: connection limit reached, connection closed");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let handler = self.handler.clone();
            let (http1, http2) = (http1.clone(), http2.clone());
            let watcher = graceful.watcher();
            let stopping = stopping.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "webhook: TLS handshake timed out");
                        return;
                    }
                };
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { handler.http(req).await }
                });
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                let io = TokioIo::new(tls);
                let served = if h2 {
                    watcher.watch(http2.serve_connection(io, service)).await
                } else {
                    watcher.watch(http1.serve_connection(io, service)).await
                };
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "webhook: connection ended with an error");
                }
            });
        }
        stopping.store(true, Ordering::Relaxed);
        let grace = self.handler.timeout + Duration::from_secs(1);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("webhook: open connections did not finish in time");
        }
        self.tasks.shutdown().await;
        tracing::info!("webhook stopped");
    }
}

/// The request path: everything a request needs, shared by all connections.
struct Handler {
    cache: Arc<ScanCache>,
    resolver: Option<CachedResolver>,
    metrics: Arc<AdmissionMetrics>,
    recorder: Option<Recorder>,
    timeout: Duration,
    max_body_bytes: usize,
    cache_unavailable: FailurePolicy,
}

type HttpResponse = hyper::Response<Full<Bytes>>;

fn http_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

impl Handler {
    fn new(config: &WebhookConfig, cache: Arc<ScanCache>, recorder: Option<Recorder>) -> Self {
        let resolver = config.resolver.clone().map(|r| {
            CachedResolver::new(
                r,
                config.resolve_timeout.min(config.timeout),
                config.resolve_found_ttl,
                config.resolve_missing_ttl,
            )
        });
        Self {
            cache,
            resolver,
            metrics: Arc::new(AdmissionMetrics::new()),
            recorder,
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
            cache_unavailable: config.cache_unavailable,
        }
    }

    /// Answers one HTTP request inside an `admission` span whose `trace_id` is the caller's
    /// (from a W3C `traceparent` header, as an API server with tracing enabled sends) or new.
    async fn http(&self, req: hyper::Request<Incoming>) -> Result<HttpResponse, Infallible> {
        let trace_id = req
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(trace::trace_id_from_traceparent)
            .unwrap_or_else(trace::new_trace_id);
        let span = tracing::info_span!("admission", trace_id = %trace_id);
        self.http_in_span(req).instrument(span).await
    }

    async fn http_in_span(
        &self,
        req: hyper::Request<Incoming>,
    ) -> Result<HttpResponse, Infallible> {
        let start = Instant::now();
        if !PATHS.contains(&req.uri().path()) {
            return Ok(http_response(
                StatusCode::NOT_FOUND,
                br#"{"error":"not found"}"#.to_vec(),
            ));
        }
        if req.method() != Method::POST {
            return Ok(http_response(
                StatusCode::METHOD_NOT_ALLOWED,
                br#"{"error":"use POST"}"#.to_vec(),
            ));
        }
        let too_large = || {
            let message = format!("request body larger than {} bytes", self.max_body_bytes);
            self.metrics.record(Outcome::Invalid, start.elapsed());
            tracing::warn!("webhook: {message}");
            http_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                review::to_body(review::invalid(None, &message)),
            )
        };
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Ok(too_large());
        }
        let body = match Limited::new(req.into_body(), self.max_body_bytes)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Ok(too_large()),
            Err(e) => {
                let message = format!("cannot read the request body: {e}");
                self.metrics.record(Outcome::Invalid, start.elapsed());
                return Ok(http_response(
                    StatusCode::BAD_REQUEST,
                    review::to_body(review::invalid(None, &message)),
                ));
            }
        };
        let (status, response) = self.review(&body, start).await;
        Ok(http_response(status, review::to_body(response)))
    }

    /// Answers one AdmissionReview body.
    async fn review(&self, body: &[u8], start: Instant) -> (StatusCode, AdmissionResponse) {
        let req = match review::parse(body) {
            Ok(r) => r,
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(error = %message, "webhook: malformed AdmissionReview");
                self.metrics.record(Outcome::Invalid, start.elapsed());
                return (
                    StatusCode::BAD_REQUEST,
                    review::invalid(review::salvage_uid(body), &message),
                );
            }
        };
        let namespace = req.namespace.clone().unwrap_or_default();
        let name = review::object_name(&req);
        let images = match review::subject(&req) {
            Subject::Skip(why) => {
                self.metrics.record(Outcome::Allowed, start.elapsed());
                tracing::debug!(uid = %req.uid, %namespace, %name, reason = why, "admission: allowed, nothing to check");
                return (StatusCode::OK, review::allow(&req, Vec::new()));
            }
            Subject::Images(images) => images,
        };
        if !self.cache.is_synced() {
            let message = "ecr-operator webhook: the scan report cache has not synced yet";
            return match self.cache_unavailable {
                FailurePolicy::Fail => {
                    self.finish(
                        &req,
                        &name,
                        Outcome::Failed { allowed: false },
                        message,
                        start,
                    );
                    (
                        StatusCode::OK,
                        review::deny(&req, 503, "ServiceUnavailable", message),
                    )
                }
                FailurePolicy::Ignore => {
                    self.finish(
                        &req,
                        &name,
                        Outcome::Failed { allowed: true },
                        message,
                        start,
                    );
                    (
                        StatusCode::OK,
                        review::allow(&req, vec![message.to_owned()]),
                    )
                }
            };
        }
        let snapshot = self.cache.snapshot();
        let labels = self.cache.namespace_labels(&namespace);
        let (images, unresolved) = self.resolve(&snapshot, images, start).await;
        let decision = decide(&DecisionInput {
            namespace: &namespace,
            namespace_labels: &labels,
            images: &images,
            policies: &snapshot.policies,
            reports: &snapshot.reports,
            now: Utc::now(),
        });
        for record in decision
            .audit
            .iter()
            .filter(|r| r.verdict == Verdict::Audit)
        {
            tracing::info!(uid = %req.uid, %namespace, %name, policy = %record.policy,
                container = %record.container, image = %record.image, reason = %record.reason,
                "admission: audit-mode violation admitted");
        }
        let mut response = review::respond(&req, &decision);
        let mut outcome = if !decision.allowed {
            Outcome::Denied
        } else if decision.warnings.is_empty() {
            Outcome::Allowed
        } else {
            Outcome::Warned
        };
        let mut reason = decision
            .message
            .clone()
            .unwrap_or_else(|| decision.warnings.join("; "));

        // Tag resolution failed: each policy that checks the image answers by its mode.
        if !unresolved.is_empty() {
            let failure = resolution_failure(&snapshot, &decision.audit, &unresolved);
            if failure.deny && decision.allowed {
                let message = format!(
                    "ecr-operator webhook: {}; a ScanPolicy in enforce mode checks {}, so the \
                     request is denied. Retry, or reference the image by digest.",
                    failure.text,
                    if unresolved.len() == 1 { "it" } else { "them" }
                );
                response = review::deny(&req, 503, "ServiceUnavailable", &message);
                response.warnings =
                    (!decision.warnings.is_empty()).then(|| decision.warnings.clone());
                outcome = Outcome::Failed { allowed: false };
                reason = message;
            } else if failure.warn {
                let warning = clip(
                    &format!("ecr-operator: {}", failure.text),
                    super::decision::WARNING_MAX_LEN,
                );
                response.warnings.get_or_insert_with(Vec::new).push(warning);
                if decision.allowed {
                    outcome = Outcome::Failed { allowed: true };
                }
            }
            if !reason.is_empty() {
                reason.push_str("; ");
            }
            reason.push_str(&failure.text);
        }
        if reason.is_empty() {
            reason = summary(&decision.audit);
        }
        match outcome {
            Outcome::Denied => {
                self.publish_denial(&req, &namespace, &name, "ImageVulnerable", &reason)
            }
            Outcome::Failed { allowed: false } => {
                self.publish_denial(&req, &namespace, &name, "ImageNotVerified", &reason)
            }
            _ => {}
        }
        self.finish(&req, &name, outcome, &reason, start);
        (StatusCode::OK, response)
    }

    /// Fills in `resolved_digest` of ECR images referenced by a tag the cache does not know.
    /// Returns the images and, for those whose tag could not be resolved, the error.
    async fn resolve(
        &self,
        snapshot: &Snapshot,
        mut images: Vec<PodImage>,
        start: Instant,
    ) -> (Vec<PodImage>, Vec<(String, String)>) {
        let Some(resolver) = &self.resolver else {
            return (images, Vec::new());
        };
        if snapshot.policies.is_empty() {
            return (images, Vec::new());
        }
        let mut wanted = Vec::new();
        for (i, image) in images.iter().enumerate() {
            let Ok(parsed) = ImageRef::parse(&image.image) else {
                continue;
            };
            let Some(ecr) = parsed.ecr() else { continue };
            let Some(tag) = ecr.tag.as_deref() else {
                continue;
            };
            if ecr.digest.is_some()
                || snapshot
                    .reports
                    .by_tag(&ecr.account, &ecr.repository, tag)
                    .is_some()
            {
                continue;
            }
            wanted.push((i, ecr));
        }
        if wanted.is_empty() {
            return (images, Vec::new());
        }
        let budget = self.timeout.saturating_sub(start.elapsed());
        let fresh: Vec<bool> = wanted
            .iter()
            .map(|(_, ecr)| resolver.cached(ecr).is_none())
            .collect();
        let calls = futures::future::join_all(wanted.iter().map(|(_, ecr)| resolver.resolve(ecr)));
        let mut unresolved = Vec::new();
        match tokio::time::timeout(budget, calls).await {
            Ok(results) => {
                for (((i, _), result), fresh) in wanted.iter().zip(results).zip(fresh) {
                    match result {
                        Ok(digest) => {
                            if fresh {
                                self.metrics.record_resolve(false);
                            }
                            images[*i].resolved_digest = digest;
                        }
                        Err(e) => {
                            self.metrics.record_resolve(true);
                            unresolved.push((images[*i].image.clone(), e.to_string()));
                        }
                    }
                }
            }
            Err(_) => {
                for (i, _) in &wanted {
                    self.metrics.record_resolve(true);
                    unresolved.push((
                        images[*i].image.clone(),
                        format!("no answer within the request timeout {:?}", self.timeout),
                    ));
                }
            }
        }
        (images, unresolved)
    }

    fn finish(&self, req: &Request, name: &str, outcome: Outcome, reason: &str, start: Instant) {
        let elapsed = start.elapsed();
        self.metrics.record(outcome, elapsed);
        let decision = match outcome {
            Outcome::Allowed => "allowed",
            Outcome::Warned => "warned",
            Outcome::Denied => "denied",
            Outcome::Failed { allowed: true } => "failed-open",
            Outcome::Failed { allowed: false } => "failed-closed",
            Outcome::Invalid => "invalid",
        };
        tracing::info!(
            uid = %req.uid,
            namespace = req.namespace.as_deref().unwrap_or(""),
            name,
            kind = %req.kind.kind,
            operation = ?req.operation,
            dry_run = req.dry_run,
            decision,
            reason,
            elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "admission decision"
        );
    }

    /// Publishes a `Warning` event about the denied object in its namespace, in the background:
    /// reason `ImageVulnerable` for a policy denial, `ImageNotVerified` for a failure-policy
    /// denial (the tag could not be resolved).
    fn publish_denial(
        &self,
        req: &Request,
        namespace: &str,
        name: &str,
        reason: &str,
        message: &str,
    ) {
        let Some(recorder) = self.recorder.clone() else {
            return;
        };
        if req.dry_run {
            return;
        }
        let reference = ObjectReference {
            api_version: Some(if req.kind.group.is_empty() {
                req.kind.version.clone()
            } else {
                format!("{}/{}", req.kind.group, req.kind.version)
            }),
            kind: Some(req.kind.kind.clone()),
            name: Some(name.trim_end_matches('*').to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: req.object.as_ref().and_then(|o| o.metadata.uid.clone()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(clip(message, EVENT_NOTE_MAX)),
            action: "Admission".to_owned(),
            secondary: None,
        };
        let timeout = self.timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, recorder.publish(&event, &reference)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "webhook: cannot publish the denial event")
                }
                Err(_) => tracing::debug!("webhook: publishing the denial event timed out"),
            }
        });
    }
}

/// How failed tag resolutions weigh on a request.
struct ResolutionFailure {
    deny: bool,
    warn: bool,
    text: String,
}

fn resolution_failure(
    snapshot: &Snapshot,
    audit: &[AuditRecord],
    unresolved: &[(String, String)],
) -> ResolutionFailure {
    let modes: BTreeMap<&str, EnforcementMode> = snapshot
        .policies
        .iter()
        .filter_map(|p| Some((p.metadata.name.as_deref()?, p.spec.enforcement.mode)))
        .collect();
    let mut failure = ResolutionFailure {
        deny: false,
        warn: false,
        text: String::new(),
    };
    let mut texts = Vec::new();
    for (image, error) in unresolved {
        let shown = ImageRef::parse(image).map_or_else(|_| image.clone(), |r| r.to_string());
        let checked = audit.iter().filter(|r| {
            r.image == shown && !matches!(r.verdict, Verdict::Exempt | Verdict::NotChecked)
        });
        for record in checked {
            match modes.get(record.policy.as_str()) {
                Some(EnforcementMode::Enforce) => failure.deny = true,
                Some(EnforcementMode::Warn) => failure.warn = true,
                _ => {}
            }
        }
        texts.push(format!(
            "cannot resolve the tag of {image} to a digest ({error})"
        ));
    }
    failure.text = texts.join("; ");
    failure
}

/// A one-line summary of an admitted request's records.
fn summary(audit: &[AuditRecord]) -> String {
    if audit.is_empty() {
        return "no ScanPolicy applies".to_owned();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in audit {
        *counts.entry(format!("{:?}", r.verdict)).or_default() += 1;
    }
    counts
        .iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
