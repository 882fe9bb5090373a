//! The admission webhook over HTTPS: the operator's `WebhookServer` (in this process) with a
//! warm cache of ImageScanReports and an enforcing ScanPolicy, answering AdmissionReviews of a
//! realistic 3-container Pod; and, in the same run, a no-op endpoint on the same TLS and HTTP
//! stack (rustls with the same provider and configuration, hyper-util's auto server) that reads
//! the body and answers a fixed AdmissionReview. The load generator shares the two cores.

use std::sync::Arc;
use std::time::Duration;

use ecr_operator::admission::tls::{self, CertStore};
use ecr_operator::admission::{CertificateSource, WebhookConfig, WebhookServer};
use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::api::scan_policy::ScanPolicy;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::api::{Api, PostParams};
use serde_json::json;
use testbed::admission::{create_pod, only};

use crate::Sizes;
use crate::figures::Figures;
use crate::loadgen::{self, Outcome, Target};
use crate::util::{BenchError, Result, poll, workspace_root};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const CRITICAL_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
/// Keep-alive connections of the load generator (the API server keeps a pool alike).
const CONNECTIONS: usize = 16;
/// The p99 a held rate must stay under.
const MAX_RPS_P99_MS: f64 = 10.0;

fn digest(i: usize) -> String {
    format!("sha256:{i:064x}")
}

async fn create_report(
    client: &kube::Client,
    digest: &str,
    tags: &[String],
    critical: bool,
) -> Result<()> {
    let mut findings = vec![json!({"id": "CVE-2023-0001", "severity": "MEDIUM",
        "package": "zlib", "installedVersion": "1.2.13"})];
    if critical {
        findings.insert(
            0,
            json!({"id": "CVE-2024-3094", "severity": "CRITICAL", "package": "xz-utils",
            "installedVersion": "5.6.0", "fixedVersion": "5.6.1"}),
        );
    }
    let report: ImageScanReport = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "ImageScanReport",
        "metadata": {"name": digest.replace(':', "-")},
        "spec": {
            "registryId": "123456789012",
            "repositoryName": "shop/web",
            "imageDigest": digest,
            "imageTags": tags,
            "scan": {"status": "COMPLETE", "completedAt": chrono::Utc::now().to_rfc3339(), "scanType": "BASIC"},
            "summary": {"critical": u32::from(critical), "medium": 1},
            "findings": findings,
            "truncated": false
        }
    }))
    .map_err(|e| BenchError::Scenario(format!("report fixture: {e}")))?;
    Api::<ImageScanReport>::all(client.clone())
        .create(&PostParams::default(), &report)
        .await?;
    Ok(())
}

/// The no-op endpoint: same TLS configuration, same HTTP server, a fixed answer.
async fn noop_server(certs: Arc<CertStore>) -> Result<std::net::SocketAddr> {
    let config =
        tls::server_config(certs).map_err(|e| BenchError::Scenario(format!("TLS: {e}")))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Scenario(format!("bind: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::Scenario(format!("local_addr: {e}")))?;
    let answer = Bytes::from(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": "00000000-0000-0000-0000-000000000000", "allowed": true}})
        .to_string(),
    );
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let answer = answer.clone();
                        async move {
                            // Read the whole body, as any endpoint must.
                            let _ = req.into_body().collect().await;
                            let mut response = hyper::Response::new(Full::new(answer));
                            response.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let (_server, client) = crate::util::double().await?;
    let dir = workspace_root().join("target/bench/webhook-tls");
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
    let generated = tls::generate(&["localhost".to_string(), "127.0.0.1".to_string()], 30)
        .map_err(|e| BenchError::Scenario(format!("certificate: {e}")))?;
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &generated.cert_pem).map_err(|e| BenchError::io(&cert, e))?;
    std::fs::write(&key, &generated.key_pem).map_err(|e| BenchError::io(&key, e))?;

    let mut config = WebhookConfig::new(CertificateSource::Files {
        cert,
        key,
        reload_interval: Duration::from_secs(10),
    });
    config.addr = "127.0.0.1:0"
        .parse()
        .map_err(|e| BenchError::Scenario(format!("address: {e}")))?;
    let server = WebhookServer::bind(config, client.clone())
        .await
        .map_err(|e| BenchError::Scenario(format!("webhook: {e}")))?;
    let addr = server
        .local_addr()
        .ok_or_else(|| BenchError::Scenario("webhook has no address".into()))?;
    let readiness = server.readiness();
    let certs = server.certificates();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    // Reports: a clean one per build, one with a CRITICAL finding, then the policy; the cache
    // is warm when the CRITICAL image is denied (the reports and the policy came in that order).
    let n = sizes.admission_reports;
    for i in 0..n {
        create_report(&client, &digest(i), &[format!("build-{i}")], false).await?;
    }
    create_report(&client, CRITICAL_DIGEST, &["bad".to_string()], true).await?;
    let policy: ScanPolicy = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "ScanPolicy",
        "metadata": {"name": "enforce"},
        "spec": {"scanType": "BASIC", "rules": [], "enforcement": {"mode": "enforce"}}
    }))
    .map_err(|e| BenchError::Scenario(format!("policy fixture: {e}")))?;
    Api::<ScanPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await?;
    let r = readiness.clone();
    poll(
        "webhook ready",
        Duration::from_millis(20),
        Duration::from_secs(60),
        || std::future::ready(r.ready().then_some(())),
    )
    .await?;

    let images = [
        format!("{REGISTRY}/shop/web:build-{}", n / 3),
        format!("{REGISTRY}/shop/web@{}", digest(n / 2)),
        format!("{REGISTRY}/shop/web:build-{}", n - 1),
    ];
    let pod = |images: [&str; 3]| {
        let containers = [
            ("app", images[0]),
            ("proxy", images[1]),
            ("log-agent", images[2]),
        ];
        create_pod("shop", "web-7d9f8b6c5-x2x9k", &only(&containers)).to_string()
    };
    let body = Bytes::from(pod([&images[0], &images[1], &images[2]]));
    let bad = format!("{REGISTRY}/shop/web:bad");
    let bad_body = Bytes::from(pod([&bad, &images[1], &images[2]]));
    let ca_pem = generated.ca_pem.clone();
    let probe = Target {
        addr,
        ca_pem: ca_pem.clone(),
        path: "/validate-pods".to_string(),
        body: bad_body,
    };
    poll(
        "the cache to hold the reports and the policy",
        Duration::from_millis(50),
        Duration::from_secs(60),
        || {
            let probe = probe.clone();
            async move {
                decision(&probe)
                    .await
                    .ok()
                    .filter(|allowed| !allowed)
                    .map(|_| ())
            }
        },
    )
    .await?;
    let good = Target {
        body: body.clone(),
        ..probe.clone()
    };
    if decision(&good).await? {
        eprintln!("   the 3-container pod is admitted ({} bytes)", body.len());
    } else {
        return Err(BenchError::Scenario("the clean pod was denied".into()));
    }

    let noop = Target {
        addr: noop_server(certs).await?,
        ..good.clone()
    };
    let duration = Duration::from_secs_f64(sizes.admission_seconds);
    let rate = sizes.admission_rate;
    let webhook = loadgen::run(&good, rate, duration, CONNECTIONS).await?;
    eprintln!("   webhook {}", webhook.summary());
    let baseline = loadgen::run(&noop, rate, duration, CONNECTIONS).await?;
    eprintln!("   no-op   {}", baseline.summary());
    for o in [&webhook, &baseline] {
        if o.errors > o.sent / 100 {
            return Err(BenchError::Scenario(format!(
                "too many errors: {}",
                o.summary()
            )));
        }
    }

    // Highest rate held, by the webhook and by the no-op endpoint on the same stack: what the
    // two cores allow with the load generator on them, whatever the handler does.
    let step = Duration::from_secs_f64(sizes.admission_step_seconds);
    let steps: &[u32] = if sizes.quick {
        &[500, 1000, 2000]
    } else {
        &[
            1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10_000, 12_000, 15_000,
        ]
    };
    let held = max_rate("webhook", &good, steps, step).await?;
    let noop_held = max_rate("no-op", &noop, steps, step).await?;

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;

    let note = format!(
        "{rate} req/s for {:.0} s, 3-container pods, {CONNECTIONS} connections",
        duration.as_secs_f64()
    );
    figures.add("admission_p50_ms", webhook.p50_ms, "ms", &note);
    figures.add(
        "admission_p99_ms",
        webhook.p99_ms,
        "ms",
        &format!("{note} (target <= 2)"),
    );
    figures.add(
        "admission_max_rps",
        held.as_ref().map_or(0.0, |o| f64::from(o.rate)),
        "req/s",
        "highest stepped rate held with p99 < 10 ms (target >= 5000)",
    );
    figures.add(
        "admission_noop_max_rps",
        noop_held.as_ref().map_or(0.0, |o| f64::from(o.rate)),
        "req/s",
        "the same steps against the no-op endpoint: the ceiling of the TLS and HTTP stack here",
    );
    figures.add(
        "admission_noop_p99_ms",
        baseline.p99_ms,
        "ms",
        "same load, no-op endpoint on the same TLS stack",
    );
    figures.add(
        "admission_overhead_ratio",
        webhook.p99_ms / baseline.p99_ms.max(1e-6),
        "ratio",
        "admission p99 / no-op p99 (target <= 1.5)",
    );
    figures.add(
        "admission_noop_p50_ms",
        baseline.p50_ms,
        "ms",
        "no-op endpoint p50",
    );
    Ok(())
}

/// Sends one review on a fresh connection and returns `response.allowed`.
async fn decision(target: &Target) -> Result<bool> {
    let o = loadgen::probe(target).await?;
    o["response"]["allowed"]
        .as_bool()
        .ok_or_else(|| BenchError::Scenario(format!("not an AdmissionReview answer: {o}")))
}

/// The highest of `steps` (req/s) that `target` holds for `step` with p99 under 10 ms, no
/// errors and at least 95 % of the rate completed. The cores are shared with the load generator
/// (and whatever else runs on the machine): a step that misses is tried once more before it
/// counts as not held.
async fn max_rate(
    what: &str,
    target: &Target,
    steps: &[u32],
    step: Duration,
) -> Result<Option<Outcome>> {
    let mut held = None;
    for &r in steps {
        let mut kept = false;
        for _ in 0..2 {
            let o = loadgen::run(target, r, step, CONNECTIONS).await?;
            kept =
                o.p99_ms < MAX_RPS_P99_MS && o.achieved_rps >= 0.95 * f64::from(r) && o.errors == 0;
            eprintln!(
                "   {what} step {} -> {}",
                o.summary(),
                if kept { "held" } else { "not held" }
            );
            if kept {
                held = Some(o);
                break;
            }
        }
        if !kept {
            break;
        }
    }
    Ok(held)
}
