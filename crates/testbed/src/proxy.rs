//! A TCP proxy in front of one address that a test can cut: a network partition for one client
//! (one operator replica) while others keep talking to the same server.
//!
//! Cut, it closes every open connection and leaves new ones hanging (accepted, never forwarded
//! nor answered), as a dropped route does: the client's requests neither fail fast nor succeed.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy on 127.0.0.1 forwarding to one target until cut.
pub struct TcpProxy {
    addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    _accept: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TcpProxy {
    /// Starts forwarding connections to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let accepting = cut.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut is_cut = accepting.subscribe();
                tokio::spawn(async move {
                    if *is_cut.borrow_and_update() {
                        // Hold the connection open without a byte in either direction.
                        let _held = inbound;
                        let _ = is_cut.wait_for(|c| !*c).await;
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut inbound, mut outbound) = (inbound, outbound);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        // Cut: both sides are dropped, so the connection is closed.
                        _ = is_cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Ok(TcpProxy {
            addr,
            cut,
            _accept: AbortOnDrop(accept),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and leaves new ones hanging.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn forwards_until_cut_then_hangs() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = server.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = server.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4];
                    while s.read_exact(&mut buf).await.is_ok() {
                        let _ = s.write_all(&buf).await;
                    }
                });
            }
        });
        let proxy = TcpProxy::start(target).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        proxy.cut();
        // The open connection is closed: a read ends.
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("closed within 5 s");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        // A new one is accepted but never answered.
        let mut d = TcpStream::connect(proxy.addr()).await.unwrap();
        d.write_all(b"ping").await.unwrap();
        let hung =
            tokio::time::timeout(std::time::Duration::from_millis(500), d.read(&mut buf)).await;
        assert!(hung.is_err(), "no answer while cut: {hung:?}");

        proxy.restore();
        let mut e = TcpStream::connect(proxy.addr()).await.unwrap();
        e.write_all(b"pong").await.unwrap();
        e.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }
}
