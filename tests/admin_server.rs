//! The admin listener over real HTTP and HTTPS: /healthz, /readyz (follows readiness checks),
//! /metrics, body limits, the scan findings gauges fed by the webhook's report cache, and the
//! README's list of metrics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ecr_operator::admission::cache::{ScanCache, Snapshot};
use ecr_operator::admission::metrics::AdmissionMetrics;
use ecr_operator::admission::tls;
use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::telemetry::metrics::Metrics;
use ecr_operator::telemetry::server::{MAX_BODY_BYTES, Readiness, serve_on, serve_tls_on};
use kube::api::{Api, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use testbed::kube_env::KubeEnv;
use testbed::wait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(20);

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    exchange(stream, request.as_bytes()).await
}

/// Sends raw request bytes and reads the whole response (the server closes the connection).
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &[u8],
) -> (u16, String) {
    // The server may answer (413) and close before the whole body is sent.
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let response = String::from_utf8_lossy(&raw).to_string();
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

// ---------------------------------------------------------------------------------------------
// Scan findings by severity, and the README's list of metric families

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const DIGEST_C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/// The admin listener on a random port; stops when the returned sender is dropped.
async fn admin(metrics: Arc<Metrics>) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_on(
        listener,
        metrics,
        Readiness::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

async fn create_report(client: &kube::Client, digest: &str, status: &str, summary: Value) {
    let report: ImageScanReport = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "ImageScanReport",
        "metadata": {"name": digest.replace(':', "-")},
        "spec": {
            "registryId": "123456789012",
            "repositoryName": "app",
            "imageDigest": digest,
            "scan": {"status": status},
            "summary": summary,
        }
    }))
    .unwrap();
    Api::<ImageScanReport>::all(client.clone())
        .create(&PostParams::default(), &report)
        .await
        .unwrap();
}

#[tokio::test]
async fn scan_findings_by_severity_over_http() {
    let kube = KubeEnv::start().await.unwrap();
    let client = kube.client();
    let mut tasks = tokio::task::JoinSet::new();
    let cache = ScanCache::start(client.clone(), &Default::default(), &mut tasks);
    let metrics = Arc::new(Metrics::new(Arc::new(Vec::new)));
    let source = cache.clone();
    metrics.add_text_source(Box::new(move || source.render_prometheus()));
    let (addr, _stop) = admin(metrics).await;

    // Before the cache has listed, no numbers (a zero would claim a clean cluster).
    if !cache.is_synced() {
        let (_, body) = get(addr, "/metrics").await;
        assert!(
            body.contains("# TYPE ecr_operator_scan_findings gauge"),
            "{body}"
        );
    }
    let synced = cache.clone();
    wait::until("cache synced", WAIT, || {
        let c = synced.clone();
        async move { c.is_synced().then_some(()) }
    })
    .await
    .unwrap();
    let (_, body) = get(addr, "/metrics").await;
    assert!(
        body.contains(r#"ecr_operator_scan_findings{severity="critical"} 0"#),
        "{body}"
    );

    create_report(
        &client,
        DIGEST_A,
        "COMPLETE",
        json!({"critical": 2, "high": 3, "low": 1}),
    )
    .await;
    create_report(
        &client,
        DIGEST_B,
        "COMPLETE",
        json!({"critical": 1, "medium": 4, "informational": 5}),
    )
    .await;
    create_report(&client, DIGEST_C, "IN_PROGRESS", json!({})).await;
    let want = [
        r#"ecr_operator_scan_findings{severity="critical"} 3"#,
        r#"ecr_operator_scan_findings{severity="high"} 3"#,
        r#"ecr_operator_scan_findings{severity="medium"} 4"#,
        r#"ecr_operator_scan_findings{severity="low"} 1"#,
        r#"ecr_operator_scan_findings{severity="informational"} 5"#,
        r#"ecr_operator_scan_findings{severity="undefined"} 0"#,
        r#"ecr_operator_scan_reports{status="COMPLETE"} 2"#,
        r#"ecr_operator_scan_reports{status="IN_PROGRESS"} 1"#,
    ];
    let body = wait::until("findings on /metrics", WAIT, || async {
        let (_, body) = get(addr, "/metrics").await;
        want.iter().all(|w| body.contains(w)).then_some(body)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: want {want:#?}"));
    assert!(body.trim_end().ends_with("# EOF"));

    // A deleted report leaves the sums.
    Api::<ImageScanReport>::all(client.clone())
        .delete(&DIGEST_A.replace(':', "-"), &Default::default())
        .await
        .unwrap();
    wait::until("deletion reflected", WAIT, || async {
        let (_, body) = get(addr, "/metrics").await;
        (body.contains(r#"ecr_operator_scan_findings{severity="critical"} 1"#)
            && body.contains(r#"ecr_operator_scan_reports{status="COMPLETE"} 1"#))
        .then_some(())
    })
    .await
    .unwrap();
    tasks.shutdown().await;
}

/// Metric family names: `# TYPE` lines of a scrape, or `ecr_operator_*` names in backticks in
/// README's "## Metrics" section; counters compared without their `_total` suffix.
fn family(name: &str) -> String {
    name.strip_suffix("_total").unwrap_or(name).to_owned()
}

fn scraped_families(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(family)
        .collect()
}

fn readme_families() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README has a ## Metrics section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("ecr_operator_"))
        .map(|s| family(s.split('{').next().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn readme_lists_every_metric_family_and_no_other() {
    // Every source `ecr-operator run` adds to /metrics (src/main.rs).
    let metrics = Arc::new(Metrics::new(Arc::new(Vec::new)));
    // Label families appear with their first sample.
    metrics.reconciled("repository", "success", Duration::from_millis(3));
    let admission = Arc::new(AdmissionMetrics::new());
    metrics.add_text_source(Box::new(move || admission.render_prometheus()));
    let cache = ScanCache::fixed(Snapshot::default(), Vec::new());
    metrics.add_text_source(Box::new(move || cache.render_prometheus()));
    let (addr, _stop) = admin(metrics).await;
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let scraped = scraped_families(&body);
    let documented = readme_families();
    assert!(scraped.len() >= 9, "{scraped:?}");
    let undocumented: Vec<_> = scraped.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&scraped).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "README.md ## Metrics and /metrics differ\n  served, not in the README: {undocumented:?}\n  in the README, not served: {unknown:?}"
    );
}

async fn tls_stream(
    addr: std::net::SocketAddr,
    ca_pem: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// With a certificate, every endpoint is HTTPS only; bodies over the limit are refused (413)
/// on both listeners, declared or chunked.
#[tokio::test]
async fn https_admin_listener_and_body_limit() {
    let metrics = Arc::new(Metrics::new(Arc::new(Vec::new)));
    let generated = tls::generate(&["localhost".to_string()], 1).unwrap();
    let store = Arc::new(tls::CertStore::new());
    store.set(generated.certified.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(store).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tls_on(
        listener,
        metrics,
        Readiness::default(),
        acceptor,
        async move {
            let _ = stopped.await;
        },
    ));

    let get = |path: &'static str| {
        let ca = generated.ca_pem.clone();
        async move {
            let s = tls_stream(addr, &ca).await.unwrap();
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            exchange(s, req.as_bytes()).await
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok".to_string()));
    assert_eq!(get("/readyz").await.0, 200);
    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    // Plain HTTP on the TLS port gets no answer.
    let plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (status, _) =
        tokio::time::timeout(std::time::Duration::from_secs(15), exchange_status(plain))
            .await
            .unwrap();
    assert_eq!(status, None);
    // A certificate from another CA is not trusted: the handshake fails.
    let other = tls::generate(&["localhost".to_string()], 1).unwrap();
    assert!(tls_stream(addr, &other.ca_pem).await.is_err());

    // Bodies: declared too large, and chunked too large.
    let big = "x".repeat(MAX_BODY_BYTES + 1);
    let declared = format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let s = tls_stream(addr, &generated.ca_pem).await.unwrap();
    assert_eq!(exchange(s, declared.as_bytes()).await.0, 413);
    let chunked = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let s = tls_stream(addr, &generated.ca_pem).await.unwrap();
    assert_eq!(exchange(s, chunked.as_bytes()).await.0, 413);
    // A small body is read and ignored.
    let small = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    let s = tls_stream(addr, &generated.ca_pem).await.unwrap();
    assert_eq!(exchange(s, small.as_bytes()).await.0, 200);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// The plain listener refuses large bodies too.
#[tokio::test]
async fn plain_admin_listener_refuses_large_bodies() {
    let metrics = Arc::new(Metrics::new(Arc::new(Vec::new)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(
        listener,
        metrics,
        Readiness::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let big = "x".repeat(64 * 1024);
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(exchange(stream, request.as_bytes()).await.0, 413);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// The HTTP status of whatever comes back, if anything parses as HTTP.
async fn exchange_status(mut stream: tokio::net::TcpStream) -> (Option<u16>, Vec<u8>) {
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    (status, raw)
}
