//! The HTTPS admission webhook server.
//!
//! `POST /validate-pods` (also `/validate-workloads` and `/validate`: one handler serves every
//! kind) answers `admission.k8s.io/v1` AdmissionReviews for Pods (CREATE, and UPDATE that adds an
//! image, including the `ephemeralcontainers` subresource) and for the pod templates of
//! Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs. The server only
//! parses, looks up and answers: it parses the request, looks up the inputs of [`decide`] in
//! the [`ScanCache`] (and asks the [`DigestResolver`] for tags the cache does not know), and
//! answers what [`decide`] says, including what a tag that cannot be resolved does to the
//! answer ([`resolution`]). Before the cache has synced there is nothing to decide on, and
//! the configured failure policy answers.
//!
//! Here: the settings and the server's life (bind, certificates, shutdown). The request path is
//! in [`super::handler`], connections in [`super::listener`].
//!
//! # Failure policy
//!
//! The webhook answers within [`WebhookConfig::timeout`], whatever happens behind it:
//!
//! - **Tag resolution** (the only call that leaves the process) is bounded by
//!   [`WebhookConfig::resolve_timeout`] and by the request timeout. When it fails or times out,
//!   [`decide`] judges the image without a digest (as an image without a report: the policy's
//!   `unscanned` action applies), and then, for each ScanPolicy that checks the image, by its
//!   mode: `enforce` **fails closed** (the pod is denied, code 503, with a message that says the
//!   tag could not be resolved and that pinning a digest avoids the lookup), `warn` admits with a
//!   warning, `audit` **fails open** (admits, and logs the failure).
//! - **The cache has not synced yet** (just after start): no policy is known, so
//!   [`WebhookConfig::cache_unavailable`] decides: [`FailurePolicy::Fail`] (the default) denies
//!   with code 503, [`FailurePolicy::Ignore`] admits with a warning. The readiness flag
//!   ([`WebhookReadiness::ready`]) stays false until then, so a Service sends no traffic to a replica
//!   in that state in the first place.
//! - **A body that is not an AdmissionReview**: HTTP 400 with an AdmissionReview whose response
//!   is `allowed: false`, code 400 (the API server then applies the webhook configuration's
//!   `failurePolicy`). A body larger than [`WebhookConfig::max_body_bytes`]: HTTP 413.
//!
//! Every answer is counted in [`AdmissionMetrics`] and logged (object, namespace, decision,
//! reason); denials also become a Kubernetes Event in the object's namespace (best effort, off the
//! request path).
//!
//! [`decide`]: super::decision::decide
//! [`resolution`]: super::decision::resolution

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::cache::ScanCache;
use super::cert_secret::{self, SharedCertificate};
use super::handler::Handler;
use super::listener::{ConnectionLimits, Connections};
use super::metrics::AdmissionMetrics;
use super::resolver::DigestResolver;
use super::tls::{self, CertStore, FileCerts, TlsError};

/// The paths the webhook answers on.
pub const PATHS: [&str; 3] = ["/validate-pods", "/validate-workloads", "/validate"];

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
pub struct WebhookReadiness {
    certs: Arc<CertStore>,
    cache: Arc<ScanCache>,
}

impl WebhookReadiness {
    /// True once a certificate is loaded and the report cache has synced.
    pub fn ready(&self) -> bool {
        self.certs.is_loaded() && self.cache.is_synced()
    }
}

/// A bound webhook, not yet serving.
pub struct WebhookServer {
    listener: TcpListener,
    connections: Connections,
    handler: Arc<Handler>,
    readiness: WebhookReadiness,
    certs: Arc<CertStore>,
    tasks: JoinSet<()>,
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
        load_certificate(&config.certificate, &client, &certs, &mut tasks)?;
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
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_peer);
        Ok(Self {
            listener,
            connections: Connections::new(
                acceptor,
                handler.clone(),
                limits,
                config.header_read_timeout,
            ),
            readiness: WebhookReadiness {
                certs: certs.clone(),
                cache,
            },
            handler,
            certs,
            tasks,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The readiness flag, for the health listener.
    pub fn readiness(&self) -> WebhookReadiness {
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
        let grace = self.handler.timeout + Duration::from_secs(1);
        self.connections
            .serve_until(&self.listener, shutdown, grace)
            .await;
        self.tasks.shutdown().await;
        tracing::info!("webhook stopped");
    }
}

/// Loads the certificate into `certs`, or starts what will: the file watch, the CA bundle
/// writer, the shared Secret's keeper (in `tasks`).
fn load_certificate(
    source: &CertificateSource,
    client: &kube::Client,
    certs: &Arc<CertStore>,
    tasks: &mut JoinSet<()>,
) -> Result<(), WebhookError> {
    match source {
        CertificateSource::Files {
            cert,
            key,
            reload_interval,
        } => {
            let files = FileCerts::load(cert.clone(), key.clone(), certs)?;
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
            // Not awaited: the API may be slow to answer at start; readiness waits for the
            // certificate instead.
            tasks.spawn(cert_secret::run(
                client.clone(),
                shared.clone(),
                certs.clone(),
            ));
        }
    }
    Ok(())
}
