//! The admin listener over real HTTP: /healthz, /readyz (follows readiness checks), /metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ecr_operator::telemetry::metrics::Metrics;
use ecr_operator::telemetry::server::{Readiness, serve_on};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test]
async fn health_readiness_and_metrics_over_http() {
    let metrics = Arc::new(Metrics::new(Arc::new(|| {
        vec![(
            ("DescribeRepositories".to_string(), "success".to_string()),
            7,
        )]
    })));
    let readiness = Readiness::default();
    let caches = readiness.check("caches");
    let cert = readiness.check("webhook-certificate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(listener, metrics.clone(), readiness, async move {
        let _ = stopped.await;
    }));

    assert_eq!(get(addr, "/healthz").await, (200, "ok".to_string()));
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("caches") && body.contains("webhook-certificate"),
        "{body}"
    );
    caches.store(true, Ordering::SeqCst);
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "waiting for: webhook-certificate")
    );
    cert.store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/readyz").await.0, 200);

    metrics.reconciled("repository", "success", std::time::Duration::from_millis(3));
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(
            r#"ecr_operator_ecr_calls_total{operation="DescribeRepositories",outcome="success"} 7"#
        ),
        "{body}"
    );
    assert!(
        body.contains(
            r#"ecr_operator_reconciles_total{controller="repository",result="success"} 1"#
        ),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"));
    assert_eq!(get(addr, "/nope").await.0, 404);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
