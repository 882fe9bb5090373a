//! What the operator's two listeners (the webhook and the admin endpoints) share.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// The next connection on `listener`. A failed accept (out of file descriptors, say) is logged
/// under `who` and retried after 50 ms rather than ending the listener: the condition passes,
/// and a spinning retry would make it worse.
pub async fn accept(listener: &TcpListener, who: &'static str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, "{who}: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
