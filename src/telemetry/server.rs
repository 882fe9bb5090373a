//! The admin listener: `/metrics`, `/healthz`, `/readyz`, apart from the webhook's TLS port.
//!
//! Plain HTTP by default (a cluster-internal port); with a certificate ([`serve_tls_on`]) every
//! endpoint is served over HTTPS, probes included (kubelet probes take `scheme: HTTPS` and do not
//! verify the certificate). No endpoint takes a body: requests with one larger than
//! [`MAX_BODY_BYTES`] are refused with 413 before any handler runs.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};

use super::metrics::Metrics;
use crate::admission::tls::{self, TlsError};

/// A named readiness check: true once its part is ready.
type Check = (&'static str, Arc<dyn Fn() -> bool + Send + Sync>);

/// What `/readyz` waits for: named checks, each asked at every request.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<std::sync::Mutex<Vec<Check>>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("pending", &self.pending())
            .finish()
    }
}

impl Readiness {
    /// Registers a named check and returns the flag its owner sets.
    pub fn check(&self, name: &'static str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        let read = flag.clone();
        self.check_with(name, move || read.load(Ordering::SeqCst));
        flag
    }

    /// Registers a named check answered by `ready` itself (a part that already knows whether
    /// it is ready, such as the webhook), so no flag has to mirror it.
    pub fn check_with(&self, name: &'static str, ready: impl Fn() -> bool + Send + Sync + 'static) {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, Arc::new(ready)));
    }

    /// Names of the checks not ready yet.
    pub fn pending(&self) -> Vec<&'static str> {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, ready)| !ready())
            .map(|(n, _)| *n)
            .collect()
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// Largest request body the admin listener reads: its endpoints take none.
pub const MAX_BODY_BYTES: usize = 1024;

/// Longest time a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState { metrics, readiness })
        .layer(axum::middleware::from_fn(limit_body))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Refuses a body over [`MAX_BODY_BYTES`], declared or streamed (chunked), with 413.
async fn limit_body(request: Request, next: Next) -> Response {
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(_) => too_large(),
    }
}

async fn metrics_handler(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    let pending = s.readiness.pending();
    if pending.is_empty() {
        (StatusCode::OK, "ok".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for: {}", pending.join(", ")),
        )
    }
}

/// Serves the admin endpoints on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, metrics, readiness, shutdown).await
}

/// [`serve`] on a bound listener (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The TLS acceptor for [`serve_tls_on`] from `dir`/tls.crt and `dir`/tls.key, reloaded when
/// they change (the webhook's certificate machinery; spawns the reload task).
pub fn tls_from_dir(dir: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let store = Arc::new(tls::CertStore::new());
    let files = tls::FileCerts::load(dir.join("tls.crt"), dir.join("tls.key"), &store)?;
    tokio::spawn(files.watch(store.clone(), Duration::from_secs(30)));
    let config = tls::server_config(store)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// [`serve_on`] over TLS: `tls` decides the certificate at each handshake (so a rotated
/// certificate is served without a restart, as on the webhook's listener).
pub async fn serve_tls_on(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    tls: tokio_rustls::TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(metrics, readiness);
    let builder = ConnBuilder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = crate::net::accept(&listener, "admin") => accepted,
        };
        // The watcher is taken before the handshake: shutdown waits for that too.
        let watcher = graceful.watcher();
        tokio::spawn(serve_tls_connection(
            tls.clone(),
            app.clone(),
            builder.clone(),
            watcher,
            (tcp, peer),
        ));
    }
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("admin: open connections did not finish in time");
    }
    Ok(())
}

/// Completes the TLS handshake of one accepted connection (within [`HANDSHAKE_TIMEOUT`]) and
/// serves `app` on it until it ends or shutdown closes it.
async fn serve_tls_connection(
    tls: tokio_rustls::TlsAcceptor,
    app: Router,
    builder: ConnBuilder<TokioExecutor>,
    watcher: Watcher,
    (tcp, peer): (tokio::net::TcpStream, SocketAddr),
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "admin: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "admin: TLS handshake timed out");
            return;
        }
    };
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "admin: connection ended with an error");
    }
}
