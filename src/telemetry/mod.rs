//! Logging, metrics, the admin listener (health, readiness, metrics), the shutdown signal.

pub mod metrics;
pub mod server;

use tracing_subscriber::EnvFilter;

/// Text or JSON logs, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests, embedding): keep the existing subscriber.
    let _ = result;
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
