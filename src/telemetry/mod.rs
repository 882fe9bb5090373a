//! Logging, metrics, the admin listener (health, readiness, metrics), the shutdown signal.

pub mod metrics;
pub mod server;
pub mod trace;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// A log subscriber writing to `writer`: `json` (one object per line, with the current span's
/// fields under `span` and every enclosing span's under `spans`, so a line carries the
/// `trace_id` of its reconcile or admission request) or text (spans and their fields before the
/// message). `ecr-operator run` writes to stdout; tests capture a buffer.
pub fn subscriber<W>(
    format: &str,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // No colour codes: the logs go to container log files, not a terminal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer);
    if format == "json" {
        Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        )
    } else {
        Box::new(builder.finish())
    }
}

/// Text or JSON logs on stdout, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Already initialised (tests, embedding): keep the existing subscriber.
    let _ = subscriber(format, filter, std::io::stdout).try_init();
}

/// The span of one reconcile of `object` by `controller`, with a fresh `trace_id`.
pub fn reconcile_span(controller: &'static str, object: &str) -> tracing::Span {
    tracing::info_span!(
        "reconcile",
        controller,
        object,
        trace_id = %trace::new_trace_id()
    )
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn captured(format: &str) -> String {
        let buffer = Buffer::default();
        let subscriber = subscriber(format, EnvFilter::new("info"), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = reconcile_span("repository", "team/app");
            let _entered = span.enter();
            tracing::info!("reconciled");
            // A nested span (an instrumented helper) keeps the reconcile's fields in `spans`.
            let inner = tracing::info_span!("apply");
            let _inner = inner.enter();
            tracing::info!(step = "tags", "applied");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_carry_the_reconcile_trace_id() {
        let text = captured("json");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = &lines[0];
        let id = first["span"]["trace_id"].as_str().unwrap();
        assert!(trace::is_trace_id(id), "{first}");
        assert_eq!(first["span"]["controller"], "repository");
        assert_eq!(first["span"]["object"], "team/app");
        let nested = &lines[1];
        assert_eq!(nested["span"]["name"], "apply");
        assert_eq!(
            nested["spans"][0]["trace_id"].as_str(),
            Some(id),
            "{nested}"
        );
    }

    #[test]
    fn text_lines_show_the_span_fields() {
        let text = captured("text");
        let line = text.lines().next().unwrap();
        assert!(line.contains("reconcile{"), "{line}");
        assert!(line.contains("trace_id="), "{line}");
    }
}
