//! The admission webhook over HTTPS: the operator's `WebhookServer` (in this process) with a
//! warm cache of ImageScanReports and an enforcing ScanPolicy, answering AdmissionReviews of a
//! realistic 3-container Pod; and, in the same run, a no-op endpoint on the same TLS and HTTP
//! stack (rustls with the same provider and configuration, hyper-util's auto server) that reads
//! the body and answers a fixed AdmissionReview. The load generator shares the two cores.
//!
//! Every answer is checked: the warm load mixes clean pods (admitted) with one whose image has
//! a CRITICAL finding (denied); the cold load sends tags no report names, which the webhook
//! resolves through moto (DescribeImages), one in ten to a CRITICAL image. A wrong answer fails
//! the scenario.

use std::sync::Arc;
use std::time::Duration;

use ecr_operator::admission::decision::ReportLookup;
use ecr_operator::admission::resolver::RegistryResolver;
use ecr_operator::admission::tls::{self, CertStore};
use ecr_operator::admission::{CertificateSource, WebhookConfig, WebhookServer};
use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::api::scan_policy::ScanPolicy;
use ecr_operator::registry::{EcrRegistry, Registry};
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::api::{Api, PostParams};
use serde_json::json;
use testbed::admission::{create_pod, only};
use testbed::images::push_image;
use testbed::moto::{ACCOUNT, Moto};

use crate::Sizes;
use crate::figures::Figures;
use crate::loadgen::{self, Outcome, Request, Target};
use crate::util::{BenchError, Result, calls_delta, ms, poll, quantile, workspace_root};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// The region of [`REGISTRY`].
const REGION: &str = "us-east-1";
const REPOSITORY: &str = "shop/web";
/// Distinct pod bodies of the warm load; the last one is denied.
const WARM_BODIES: usize = 10;
const CRITICAL_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
/// Keep-alive connections of the load generator (the API server keeps a pool alike).
const CONNECTIONS: usize = 16;
/// The p99 a held rate must stay under.
const MAX_RPS_P99_MS: f64 = 10.0;

fn digest(i: usize) -> String {
    format!("sha256:{i:064x}")
}

pub(crate) async fn create_report(
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
            "registryId": ACCOUNT,
            "repositoryName": REPOSITORY,
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
    let moto = Moto::start().await?;
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
    // Tags the cache does not know are resolved as `ecr-operator run` does: DescribeImages
    // through the operator's ECR client (here on moto).
    let registry = Arc::new(EcrRegistry::from_client(moto.ecr_client()));
    config.resolver = Some(Arc::new(RegistryResolver::new(registry.clone())));
    let server = WebhookServer::bind(config, client.clone())
        .await
        .map_err(|e| BenchError::Scenario(format!("webhook: {e}")))?;
    let addr = server
        .local_addr()
        .ok_or_else(|| BenchError::Scenario("webhook has no address".into()))?;
    let readiness = server.readiness();
    let certs = server.certificates();
    let cache = server.scan_cache();
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
    // The cold path's images: pushed to moto under tags no report names, with tagless reports
    // by digest, so that only DescribeImages (the resolver) can tell which report a tag means.
    let cold_total = ((f64::from(sizes.admission_cold_rate) * sizes.admission_cold_seconds).round()
        as usize)
        .max(1);
    let phase = std::time::Instant::now();
    let cold = push_cold_images(&moto, &client, cold_total).await?;
    eprintln!(
        "   ({cold_total} cold images pushed with their reports: {:.1} s)",
        phase.elapsed().as_secs_f64()
    );
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
    let last_cold = cold.last().map(|c| c.digest.clone()).unwrap_or_default();
    poll(
        "the cache to hold every report and the policy",
        Duration::from_millis(20),
        Duration::from_secs(60),
        || {
            let s = cache.snapshot();
            let held = !s.policies.is_empty()
                && s.reports
                    .by_digest(ACCOUNT, REGION, REPOSITORY, &last_cold)
                    .is_some()
                && s.reports
                    .by_digest(ACCOUNT, REGION, REPOSITORY, CRITICAL_DIGEST)
                    .is_some()
                && s.reports
                    .by_digest(ACCOUNT, REGION, REPOSITORY, &digest(n - 1))
                    .is_some();
            std::future::ready(held.then_some(()))
        },
    )
    .await?;

    let pod = |images: [&str; 3]| {
        let containers = [
            ("app", images[0]),
            ("proxy", images[1]),
            ("log-agent", images[2]),
        ];
        Bytes::from(create_pod("shop", "web-7d9f8b6c5-x2x9k", &only(&containers)).to_string())
    };
    let pinned = format!("{REGISTRY}/{REPOSITORY}@{}", digest(n / 2));
    let sidecar = format!("{REGISTRY}/{REPOSITORY}:build-{}", n - 1);
    let body = pod([
        &format!("{REGISTRY}/{REPOSITORY}:build-{}", n / 3),
        &pinned,
        &sidecar,
    ]);
    let bad = format!("{REGISTRY}/{REPOSITORY}:bad");
    let bad_body = pod([&bad, &pinned, &sidecar]);
    // The warm load: ten pods, nine clean ones (each its own app image, by tag) admitted and one
    // with the CRITICAL image denied; every answer is checked against that.
    let requests: Vec<Request> = (0..WARM_BODIES)
        .map(|k| {
            if k == WARM_BODIES - 1 {
                Request {
                    body: bad_body.clone(),
                    allowed: false,
                }
            } else {
                let app = format!("{REGISTRY}/{REPOSITORY}:build-{}", (k * 7) % n);
                Request {
                    body: pod([&app, &pinned, &sidecar]),
                    allowed: true,
                }
            }
        })
        .collect();
    let ca_pem = generated.ca_pem.clone();
    let probe = Target::fixed(addr, ca_pem.clone(), "/validate-pods", bad_body, false);
    if decision(&probe).await? {
        return Err(BenchError::Scenario(
            "the pod with a CRITICAL image was admitted".into(),
        ));
    }
    let good = Target {
        body: body.clone(),
        requests: Arc::new(requests),
        ..probe.clone()
    };
    if decision(&good).await? {
        eprintln!("   the 3-container pod is admitted ({} bytes)", body.len());
    } else {
        return Err(BenchError::Scenario("the clean pod was denied".into()));
    }

    // The no-op endpoint admits everything: the same bodies, each expecting `allowed`.
    let noop = Target {
        addr: noop_server(certs).await?,
        requests: Arc::new(
            good.requests
                .iter()
                .map(|r| Request {
                    body: r.body.clone(),
                    allowed: true,
                })
                .collect(),
        ),
        ..good.clone()
    };
    let duration = Duration::from_secs_f64(sizes.admission_seconds);
    let rate = sizes.admission_rate;
    let mut wrong = 0;
    let webhook = loadgen::run(&good, rate, duration, CONNECTIONS).await?;
    eprintln!("   webhook {}", webhook.summary());
    let baseline = loadgen::run(&noop, rate, duration, CONNECTIONS).await?;
    eprintln!("   no-op   {}", baseline.summary());
    for o in [&webhook, &baseline] {
        wrong += o.wrong;
        if o.errors > o.sent / 100 {
            return Err(BenchError::Scenario(format!(
                "too many errors: {}",
                o.summary()
            )));
        }
    }

    // The cold path: every request's app image is a tag never seen before (one DescribeImages
    // through the resolver), one request in ten on a new TLS connection. Beside it, in the same
    // run and at the same rate, DescribeImages by tag straight through the operator's ECR
    // client: what moto alone takes. The two alternate second by second, so that both see the
    // same noise of the shared cores.
    let cold_rate = sizes.admission_cold_rate;
    let cold_duration = Duration::from_secs_f64(sizes.admission_cold_seconds);
    let chunks = (sizes.admission_cold_seconds.round() as usize).max(1);
    let per_chunk = cold.len().div_ceil(chunks).max(1);
    let chunk_duration = Duration::from_secs_f64(per_chunk as f64 / f64::from(cold_rate));
    let mut moto_samples = Vec::with_capacity(cold.len());
    let mut cold_samples = Vec::with_capacity(cold.len());
    let (mut cold_sent, mut cold_errors, mut cold_wrong, mut cold_fresh) = (0, 0, 0, 0);
    let mut describes = 0;
    for part in cold.chunks(per_chunk) {
        moto_samples
            .extend(describe_images_latency(&registry, part, cold_rate, chunk_duration).await?);
        let cold_target = Target {
            requests: Arc::new(
                part.iter()
                    .map(|c| Request {
                        body: pod([
                            &format!("{REGISTRY}/{REPOSITORY}:{}", c.tag),
                            &pinned,
                            &sidecar,
                        ]),
                        allowed: !c.critical,
                    })
                    .collect(),
            ),
            fresh_every: 10,
            ..good.clone()
        };
        let calls0 = moto.calls().await?;
        let o = loadgen::run(&cold_target, cold_rate, chunk_duration, CONNECTIONS).await?;
        let calls = calls_delta(&calls0, &moto.calls().await?);
        describes += calls.get("DescribeImages").copied().unwrap_or(0);
        cold_samples.extend(o.samples);
        cold_sent += o.sent;
        cold_errors += o.errors;
        cold_wrong += o.wrong;
        cold_fresh += o.fresh;
    }
    moto_samples.sort();
    cold_samples.sort();
    let moto_p50 = ms(quantile(&moto_samples, 0.50));
    let moto_p99 = ms(quantile(&moto_samples, 0.99));
    let cold_p50 = ms(quantile(&cold_samples, 0.50));
    let cold_p99 = ms(quantile(&cold_samples, 0.99));
    eprintln!(
        "   moto DescribeImages by tag, {cold_rate} req/s: p50 {moto_p50:.3} ms, p99 {moto_p99:.3} ms, {} calls",
        moto_samples.len()
    );
    eprintln!(
        "   cold    {cold_rate} req/s: p50 {cold_p50:.3} ms, p99 {cold_p99:.3} ms, max {:.3} ms, \
         {cold_errors} errors, {cold_wrong} wrong answers of {cold_sent}, {cold_fresh} on new \
         connections; {describes} DescribeImages (in {chunks} seconds alternating with moto's)",
        ms(cold_samples.last().copied().unwrap_or_default())
    );
    wrong += cold_wrong;
    if cold_errors > 0 {
        return Err(BenchError::Scenario(format!(
            "{cold_errors} errors on the cold path"
        )));
    }
    if describes < cold_sent as u64 {
        return Err(BenchError::Scenario(format!(
            "{cold_sent} cold requests made only {describes} DescribeImages calls: not the cold path"
        )));
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
    let (held, wrong_steps) = max_rate("webhook", &good, steps, step).await?;
    let (noop_held, wrong_noop) = max_rate("no-op", &noop, steps, step).await?;
    wrong += wrong_steps + wrong_noop;

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;

    let note = format!(
        "{rate} req/s for {:.0} s, 3-container pods (1 in {WARM_BODIES} denied), {CONNECTIONS} connections",
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
    let cold_note = format!(
        "{cold_rate} req/s for {:.0} s, each pod's app image a tag never seen before \
         (one DescribeImages on moto), 1 in 10 on a new TLS connection",
        cold_duration.as_secs_f64()
    );
    figures.add("admission_cold_p50_ms", cold_p50, "ms", &cold_note);
    figures.add(
        "admission_cold_p99_ms",
        cold_p99,
        "ms",
        &format!(
            "{cold_note} (target <= moto_describe_images_p99_ms + 2 = {:.3})",
            moto_p99 + 2.0
        ),
    );
    figures.add(
        "moto_describe_images_p99_ms",
        moto_p99,
        "ms",
        &format!(
            "DescribeImages by tag through the operator's ECR client, {cold_rate} req/s, \
             second by second alternating with the cold load"
        ),
    );
    figures.add(
        "moto_describe_images_p50_ms",
        moto_p50,
        "ms",
        "the same calls' median",
    );
    figures.add(
        "admission_answers_checked",
        (webhook.sent + baseline.sent + cold_sent) as f64,
        "answers",
        "answers of the fixed-rate and cold runs checked against the expected decision \
         (the steps' too, not counted here)",
    );
    figures.add(
        "admission_wrong_answers",
        wrong as f64,
        "answers",
        "answers not the decision the targeted reports call for, all runs (must be 0)",
    );
    if wrong > 0 {
        return Err(BenchError::Scenario(format!(
            "{wrong} answers were not the expected decision"
        )));
    }
    Ok(())
}

/// One image of the cold path: its tag, digest, and whether its report has a CRITICAL finding.
struct ColdImage {
    tag: String,
    digest: String,
    critical: bool,
}

/// Pushes `count` images to moto (every tenth with a CRITICAL report) and creates a report for
/// each digest that names no tag.
async fn push_cold_images(
    moto: &Moto,
    client: &kube::Client,
    count: usize,
) -> Result<Vec<ColdImage>> {
    let ecr = moto.ecr_client();
    ecr.create_repository()
        .repository_name(REPOSITORY)
        .send()
        .await
        .map_err(|e| BenchError::ecr("CreateRepository", e))?;
    let pushed: Vec<Result<ColdImage>> = futures::stream::iter(0..count)
        .map(|i| {
            let ecr = ecr.clone();
            async move {
                let tag = format!("cold-{i:05}");
                let digest = push_image(&ecr, REPOSITORY, &tag)
                    .await
                    .map_err(|e| BenchError::ecr("PutImage", e))?;
                Ok(ColdImage {
                    tag,
                    digest,
                    critical: i % 10 == 9,
                })
            }
        })
        .buffered(8)
        .collect()
        .await;
    let images = pushed.into_iter().collect::<Result<Vec<_>>>()?;
    let created: Vec<Result<()>> = futures::stream::iter(&images)
        .map(|c| create_report(client, &c.digest, &[], c.critical))
        .buffer_unordered(16)
        .collect()
        .await;
    created.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(images)
}

/// DescribeImages by tag through the operator's own ECR client (the resolver's call), open
/// loop at `rate` for `duration` over the cold images' tags: latency of each call.
async fn describe_images_latency(
    registry: &Arc<EcrRegistry>,
    images: &[ColdImage],
    rate: u32,
    duration: Duration,
) -> Result<Vec<Duration>> {
    let total = ((f64::from(rate) * duration.as_secs_f64()).round() as usize).max(1);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now() + Duration::from_millis(5);
    let mut calls = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let registry = registry.clone();
        let (tag, digest) = images
            .get(i % images.len().max(1))
            .map(|c| (c.tag.clone(), c.digest.clone()))
            .unwrap_or_default();
        calls.push(tokio::spawn(async move {
            let answer = registry.image_digest(Some(ACCOUNT), REPOSITORY, &tag).await;
            (due.elapsed(), answer.map(|d| d == Some(digest)))
        }));
    }
    let mut samples = Vec::with_capacity(total);
    for call in calls {
        let (took, answer) = call
            .await
            .map_err(|e| BenchError::Scenario(format!("DescribeImages task: {e}")))?;
        match answer {
            Ok(true) => samples.push(took),
            Ok(false) => {
                return Err(BenchError::Scenario(
                    "DescribeImages returned another digest".into(),
                ));
            }
            Err(e) => return Err(BenchError::ecr("DescribeImages", e)),
        }
    }
    samples.sort();
    Ok(samples)
}

/// Sends one review on a fresh connection and returns `response.allowed`.
async fn decision(target: &Target) -> Result<bool> {
    let o = loadgen::probe(target).await?;
    o["response"]["allowed"]
        .as_bool()
        .ok_or_else(|| BenchError::Scenario(format!("not an AdmissionReview answer: {o}")))
}

/// The highest of `steps` (req/s) that `target` holds for `step` with p99 under 10 ms, no
/// errors, no wrong answer and at least 95 % of the rate completed, and the wrong answers seen. The cores are shared with the load generator
/// (and whatever else runs on the machine): a step that misses is tried once more before it
/// counts as not held.
async fn max_rate(
    what: &str,
    target: &Target,
    steps: &[u32],
    step: Duration,
) -> Result<(Option<Outcome>, usize)> {
    let mut held = None;
    let mut wrong = 0;
    for &r in steps {
        let mut kept = false;
        for _ in 0..2 {
            let o = loadgen::run(target, r, step, CONNECTIONS).await?;
            wrong += o.wrong;
            kept = o.p99_ms < MAX_RPS_P99_MS
                && o.achieved_rps >= 0.95 * f64::from(r)
                && o.errors == 0
                && o.wrong == 0;
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
    Ok((held, wrong))
}
