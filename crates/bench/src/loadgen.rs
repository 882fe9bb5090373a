//! An open-loop HTTPS load generator: requests are scheduled at a fixed rate by a dedicated
//! thread (precise sleeps, unlike a 1 ms async timer) and taken by whichever keep-alive
//! connection is free; latency counts from the scheduled send time, so a slow answer delays the
//! requests queued behind it in the figures too (no coordinated omission).
//!
//! Every answer is checked against what the request expects (`response.allowed` of the
//! AdmissionReview): a wrong or unreadable answer counts in [`Outcome::wrong`], which the
//! scenarios treat as a failure. A target can send a different body per request (each request
//! `i` takes `requests[i % len]`) and open a new TLS connection for every `fresh_every`-th one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecr_operator::admission::tls;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::sync::{Mutex, mpsc};
use tokio_rustls::TlsConnector;

use crate::util::{BenchError, Result, ms, quantile};

/// One request body and the answer it must get.
#[derive(Clone, Debug)]
pub struct Request {
    pub body: Bytes,
    /// The `response.allowed` the answer must carry.
    pub allowed: bool,
}

/// Where to send and what.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub path: String,
    /// The body of [`probe`] and of the request that warms each connection before a run.
    pub body: Bytes,
    /// What a run sends: request `i` is `requests[i % len]` (at least one).
    pub requests: Arc<Vec<Request>>,
    /// Every `fresh_every`-th request of a run goes on a new TLS connection (which then
    /// replaces the worker's keep-alive one); 0: never.
    pub fresh_every: usize,
}

impl Target {
    /// A target that sends `body` every time and expects `allowed`.
    pub fn fixed(addr: SocketAddr, ca_pem: String, path: &str, body: Bytes, allowed: bool) -> Self {
        Target {
            addr,
            ca_pem,
            path: path.to_string(),
            requests: Arc::new(vec![Request {
                body: body.clone(),
                allowed,
            }]),
            body,
            fresh_every: 0,
        }
    }
}

/// One load run's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub rate: u32,
    pub sent: usize,
    /// Transport failures and non-200 answers.
    pub errors: usize,
    /// Answers that were not the expected decision (or not an AdmissionReview).
    pub wrong: usize,
    /// Requests sent on a new TLS connection.
    pub fresh: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Completed requests per second over the run.
    pub achieved_rps: f64,
    /// Every request's latency, sorted.
    pub samples: Vec<Duration>,
}

impl Outcome {
    pub fn summary(&self) -> String {
        format!(
            "{} req/s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, achieved {:.0} req/s, {} errors, {} wrong answers of {}",
            self.rate,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.achieved_rps,
            self.errors,
            self.wrong,
            self.sent
        )
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens one TLS connection (HTTP/1.1 keep-alive) trusting `ca_pem`.
async fn connect(target: &Target) -> Result<Sender> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(target.ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| BenchError::Scenario(format!("CA PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| BenchError::Scenario(format!("CA: {e}")))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| BenchError::Scenario(format!("TLS client: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(target.addr)
        .await
        .map_err(|e| BenchError::Scenario(format!("connect {}: {e}", target.addr)))?;
    tcp.set_nodelay(true)
        .map_err(|e| BenchError::Scenario(format!("nodelay: {e}")))?;
    let name = ServerName::try_from("localhost")
        .map_err(|e| BenchError::Scenario(format!("server name: {e}")))?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| BenchError::Scenario(format!("TLS handshake: {e}")))?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| BenchError::Scenario(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// HTTP 200 with an AdmissionReview whose `response.allowed` is this.
    Decided(bool),
    /// HTTP 200 with a body that is not an AdmissionReview answer.
    Unreadable,
    /// No answer, or not HTTP 200.
    Failed,
}

#[derive(serde::Deserialize)]
struct Review {
    response: ReviewResponse,
}

#[derive(serde::Deserialize)]
struct ReviewResponse {
    allowed: bool,
}

/// Sends one request and reads the decision.
async fn send(sender: &mut Sender, target: &Target, body: &Bytes) -> Answer {
    let Ok(request) = hyper::Request::post(target.path.as_str())
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, */*")
        .body(Full::new(body.clone()))
    else {
        return Answer::Failed;
    };
    if sender.ready().await.is_err() {
        return Answer::Failed;
    }
    let Ok(response) = sender.send_request(request).await else {
        return Answer::Failed;
    };
    let ok = response.status() == hyper::StatusCode::OK;
    match response.into_body().collect().await {
        Ok(body) if ok => match serde_json::from_slice::<Review>(&body.to_bytes()) {
            Ok(review) => Answer::Decided(review.response.allowed),
            Err(_) => Answer::Unreadable,
        },
        _ => Answer::Failed,
    }
}

/// Sends `rate` requests per second for `duration` over `connections` keep-alive connections.
pub async fn run(
    target: &Target,
    rate: u32,
    duration: Duration,
    connections: usize,
) -> Result<Outcome> {
    let total = ((f64::from(rate) * duration.as_secs_f64()).round() as usize).max(1);
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(target).await?);
    }
    if target.requests.is_empty() {
        return Err(BenchError::Scenario(
            "a load target without requests".into(),
        ));
    }
    // Warm each connection (first-request costs are not what is measured).
    for s in &mut senders {
        send(s, target, &target.body).await;
    }

    let (tx, rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let queue = Arc::new(Mutex::new(rx));
    let mut workers = Vec::with_capacity(connections);
    for mut sender in senders {
        let queue = queue.clone();
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let (mut errors, mut wrong, mut fresh) = (0usize, 0usize, 0usize);
            let mut last_done = None;
            loop {
                let next = { queue.lock().await.recv().await };
                let Some((i, due)) = next else { break };
                let request = &target.requests[i % target.requests.len()];
                // A new connection for this request: its handshake is part of its latency.
                if target.fresh_every > 0 && i % target.fresh_every == target.fresh_every - 1 {
                    fresh += 1;
                    match connect(&target).await {
                        Ok(s) => sender = s,
                        Err(_) => {
                            errors += 1;
                            samples.push(Instant::now().saturating_duration_since(due));
                            continue;
                        }
                    }
                }
                let answer = send(&mut sender, &target, &request.body).await;
                let done = Instant::now();
                samples.push(done.saturating_duration_since(due));
                last_done = Some(done);
                match answer {
                    Answer::Decided(allowed) if allowed == request.allowed => {}
                    Answer::Decided(_) | Answer::Unreadable => wrong += 1,
                    Answer::Failed => {
                        errors += 1;
                        // Replace a broken connection so one failure does not fail the rest.
                        if let Ok(s) = connect(&target).await {
                            sender = s;
                        }
                    }
                }
            }
            (samples, errors, wrong, fresh, last_done)
        }));
    }

    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now() + Duration::from_millis(5);
    let scheduler = std::thread::spawn(move || {
        for i in 0..total {
            let due = start + period.mul_f64(i as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send((i, due)).is_err() {
                break;
            }
        }
    });

    let mut samples = Vec::with_capacity(total);
    let (mut errors, mut wrong, mut fresh) = (0, 0, 0);
    let mut last = start;
    for w in workers {
        let (s, e, bad, f, l) = w
            .await
            .map_err(|e| BenchError::Scenario(format!("load worker: {e}")))?;
        samples.extend(s);
        errors += e;
        wrong += bad;
        fresh += f;
        if let Some(l) = l {
            last = last.max(l);
        }
    }
    scheduler
        .join()
        .map_err(|_| BenchError::Scenario("load scheduler panicked".into()))?;
    samples.sort();
    let elapsed = last
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);
    Ok(Outcome {
        rate,
        sent: samples.len(),
        errors,
        wrong,
        fresh,
        p50_ms: ms(quantile(&samples, 0.50)),
        p99_ms: ms(quantile(&samples, 0.99)),
        max_ms: ms(samples.last().copied().unwrap_or_default()),
        achieved_rps: samples.len() as f64 / elapsed,
        samples,
    })
}

/// One request on a fresh connection; the answer's JSON.
pub async fn probe(target: &Target) -> Result<serde_json::Value> {
    let mut sender = connect(target).await?;
    let request = hyper::Request::post(target.path.as_str())
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(target.body.clone()))
        .map_err(|e| BenchError::Scenario(format!("request: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| BenchError::Scenario(format!("send: {e}")))?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| BenchError::Scenario(format!("body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| BenchError::Scenario(format!("answer: {e}")))
}
