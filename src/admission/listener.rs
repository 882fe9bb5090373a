//! The webhook's listener: connections accepted within limits, the TLS handshake, then HTTP/1
//! or HTTP/2 on each until shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::handler::Handler;

/// Longest time a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections held at once, the API server's included: the webhook port is reachable
/// from pods, and a flood of connections must not take what the API server needs (with
/// `failurePolicy: Ignore`, a webhook that does not answer admits everything).
#[derive(Debug)]
pub(super) struct ConnectionLimits {
    open: Arc<Semaphore>,
    per_peer: std::sync::Mutex<HashMap<IpAddr, usize>>,
    max_per_peer: usize,
}

/// One accepted connection's place within [`ConnectionLimits`], given back on drop.
struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    peer: IpAddr,
    _open: OwnedSemaphorePermit,
}

impl ConnectionLimits {
    pub(super) fn new(max_open: usize, max_per_peer: usize) -> Arc<Self> {
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

/// What serving a connection takes, shared by all of them.
#[derive(Clone)]
pub(super) struct Connections {
    acceptor: TlsAcceptor,
    handler: Arc<Handler>,
    limits: Arc<ConnectionLimits>,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    /// Set on shutdown: a handshake that completes after it is not served.
    stopping: Arc<AtomicBool>,
}

impl Connections {
    pub(super) fn new(
        acceptor: TlsAcceptor,
        handler: Arc<Handler>,
        limits: Arc<ConnectionLimits>,
        header_read_timeout: Duration,
    ) -> Self {
        // The protocol is the one TLS negotiated (ALPN), not sniffed from the first bytes: a
        // sniffing server waits for those bytes without a deadline. An HTTP/1 connection that
        // sends no request headers in time, first request or kept alive, is then closed.
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2.timer(TokioTimer::new());
        Self {
            acceptor,
            handler,
            limits,
            http1,
            http2,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Accepts connections on `listener` until `shutdown` completes, then lets open ones
    /// finish for at most `grace`.
    pub(super) async fn serve_until(
        self,
        listener: &TcpListener,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) {
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = crate::net::accept(listener, "webhook") => accepted,
            };
            let Some(slot) = self.limits.admit(peer.ip()) else {
                tracing::debug!(%peer, "webhook: connection limit reached, connection closed");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(self.clone().serve(tcp, peer, slot, graceful.watcher()));
        }
        self.stopping.store(true, Ordering::Relaxed);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("webhook: open connections did not finish in time");
        }
    }

    /// Serves one connection: the TLS handshake, then its requests until it closes.
    async fn serve(self, tcp: TcpStream, peer: SocketAddr, slot: ConnectionSlot, watcher: Watcher) {
        let _slot = slot;
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
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
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        let handler = self.handler.clone();
        let service = hyper::service::service_fn(move |req| {
            let handler = handler.clone();
            async move { handler.http(req).await }
        });
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let io = TokioIo::new(tls);
        let served = if h2 {
            watcher
                .watch(self.http2.serve_connection(io, service))
                .await
        } else {
            watcher
                .watch(self.http1.serve_connection(io, service))
                .await
        };
        if let Err(e) = served {
            tracing::debug!(%peer, error = %e, "webhook: connection ended with an error");
        }
    }
}
