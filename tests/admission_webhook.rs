//! The admission webhook over real HTTPS, with AdmissionReview JSON shaped as the API server
//! sends it: ImageScanReports and ScanPolicies created through the Kubernetes API (a real
//! kube-apiserver when `KUBEBUILDER_ASSETS` is set, else the double) and read by the webhook's
//! reflectors, and moto for tag resolution. Each test's webhook reads only the objects labelled
//! with its own scope (`WebhookConfig::watch`), whose names carry the scope too: tests share
//! one API server. (`tests/webhook_through_apiserver.rs` has the API server call the webhook.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ecr_operator::admission::metrics::{AdmissionMetrics, Outcome};
use ecr_operator::admission::tls::{self, GeneratedCert};
use ecr_operator::admission::{
    CertificateSource, DigestResolver, FailurePolicy, ResolveError, WebhookConfig,
    WebhookReadiness, WebhookServer,
};
use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::api::scan_policy::ScanPolicy;
use ecr_operator::scope::WatchScope;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use testbed::admission::{create_deployment, create_pod, debug_pod, only, spec};
use testbed::kube_env::KubeEnv;
use testbed::moto::{ACCOUNT, FaultKind, FaultScope, Moto, REGION};
use testbed::wait;
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(20);
const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const DIGEST_V1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const DIGEST_V2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const DIGEST_CLEAN: &str =
    "sha256:3333333333333333333333333333333333333333333333333333333333333333";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct Webhook {
    kube: KubeEnv,
    addr: SocketAddr,
    roots: Vec<String>,
    readiness: WebhookReadiness,
    metrics: Arc<AdmissionMetrics>,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Options {
    resolver: Option<Arc<dyn DigestResolver>>,
    cache_unavailable: FailurePolicy,
    certificate: Option<CertificateSource>,
    resolve_timeout: Duration,
    /// `None`: the webhook's defaults.
    limits: Option<(usize, Duration)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            resolver: None,
            cache_unavailable: FailurePolicy::Fail,
            certificate: None,
            resolve_timeout: Duration::from_millis(500),
            limits: None,
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The label that puts a ScanPolicy or ImageScanReport into one test's webhook's scope.
const SCOPE_LABEL: &str = "ecr.operator.dev/test-scope";

thread_local! {
    /// The scope of the webhook the test on this thread started (a `#[tokio::test]` body runs
    /// on its own thread), used by the helpers that create and patch objects.
    static SCOPE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn scope() -> String {
    SCOPE.with(|s| s.borrow().clone())
}

/// `name` made unique to this test's scope.
fn scoped(name: &str) -> String {
    format!("{name}-{}", scope())
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ecr-op-webhook-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn names() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

fn write_pair(dir: &std::path::Path, cert: &GeneratedCert) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
    // Write-then-rename, as the kubelet's atomic writer swaps a Secret volume's files.
    for (path, text) in [(&c, &cert.cert_pem), (&k, &cert.key_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (c, k)
}

impl Webhook {
    async fn start(options: Options) -> Webhook {
        let kube = KubeEnv::start().await.unwrap();
        Self::start_on(kube, options).await
    }

    async fn start_on(kube: KubeEnv, options: Options) -> Webhook {
        let scope = testbed::kube_env::unique_name("scope");
        SCOPE.with(|s| *s.borrow_mut() = scope.clone());
        let dir = temp_dir();
        let mut roots = Vec::new();
        let certificate = match options.certificate {
            Some(c) => c,
            None => {
                let generated = tls::generate(&names(), 30).unwrap();
                roots.push(generated.ca_pem.clone());
                let (cert, key) = write_pair(&dir, &generated);
                CertificateSource::Files {
                    cert,
                    key,
                    reload_interval: Duration::from_millis(100),
                }
            }
        };
        let mut config = WebhookConfig::new(certificate);
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.resolver = options.resolver;
        config.resolve_timeout = options.resolve_timeout;
        config.cache_unavailable = options.cache_unavailable;
        config.timeout = Duration::from_secs(2);
        config.watch = WatchScope::new(&[], Some(&format!("{SCOPE_LABEL}={scope}"))).unwrap();
        if let Some((per_peer, header_read_timeout)) = options.limits {
            config.max_connections_per_peer = per_peer;
            config.header_read_timeout = header_read_timeout;
        }
        let server = WebhookServer::bind(config, kube.client()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let readiness = server.readiness();
        let metrics = server.metrics();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Webhook {
            kube,
            addr,
            roots,
            readiness,
            metrics,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn ready(self) -> Self {
        let r = self.readiness.clone();
        wait::until("webhook ready", WAIT, || {
            let r = r.clone();
            async move { r.ready().then_some(()) }
        })
        .await
        .unwrap();
        self
    }

    fn client(&self) -> kube::Client {
        self.kube.client()
    }

    /// One TLS connection to the webhook, trusting `self.roots`.
    async fn connect(&self) -> Connection {
        Connection::open(self.addr, &self.roots).await
    }

    /// POSTs `body` on a fresh connection.
    async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.connect().await.post(path, body).await
    }

    async fn review(&self, review: &Value) -> Answer {
        let (status, body) = self
            .post_raw("/validate-pods", serde_json::to_vec(review).unwrap())
            .await;
        assert_eq!(status, 200, "HTTP status, body {body}");
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        let response = body["response"].clone();
        assert_eq!(response["uid"], review["request"]["uid"], "uid echoed");
        Answer(response)
    }

    /// Sends `review` until the answer's `allowed` is `allowed` (the cache follows the watch).
    async fn until(&self, what: &str, review: &Value, allowed: bool) -> Answer {
        wait::until(what, WAIT, || async {
            let a = self.review(review).await;
            (a.allowed() == allowed).then_some(a)
        })
        .await
        .unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("webhook stops")
                .unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    peer_cert: Option<CertificateDer<'static>>,
    protocol: Option<rustls::ProtocolVersion>,
}

impl Connection {
    async fn open(addr: SocketAddr, roots_pem: &[String]) -> Connection {
        Self::open_with(addr, roots_pem, None).await.unwrap()
    }

    async fn open_with(
        addr: SocketAddr,
        roots_pem: &[String],
        versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
    ) -> std::io::Result<Connection> {
        let mut roots = rustls::RootCertStore::empty();
        for pem in roots_pem {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(tls::provider());
        let builder = match versions {
            Some(v) => builder.with_protocol_versions(v),
            None => builder.with_safe_default_protocol_versions(),
        }
        .unwrap();
        let mut config = builder.with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await?;
        let (_, session) = stream.get_ref();
        let peer_cert = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned());
        let protocol = session.protocol_version();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection {
            sender,
            peer_cert,
            protocol,
        })
    }

    async fn post(&mut self, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.post_with(path, body, &[]).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = hyper::Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, */*");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }
}

#[derive(Debug, Clone)]
struct Answer(Value);

impl Answer {
    fn allowed(&self) -> bool {
        self.0["allowed"].as_bool().unwrap()
    }
    fn code(&self) -> i64 {
        self.0["status"]["code"].as_i64().unwrap_or(0)
    }
    fn message(&self) -> String {
        self.0["status"]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
    fn warnings(&self) -> Vec<String> {
        self.0["warnings"]
            .as_array()
            .map(|w| w.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures (the AdmissionReview bodies are testbed::admission's, shared with the benchmark)
// ---------------------------------------------------------------------------------------------

fn ecr(repo_tag: &str) -> String {
    format!("{REGISTRY}/{repo_tag}")
}

fn report_name(digest: &str) -> String {
    scoped(&digest.replace(':', "-"))
}

/// Creates the ImageScanReport of `digest` (repository `app`).
async fn create_report(client: &kube::Client, digest: &str, tags: &[&str], critical: &[&str]) {
    let findings: Vec<Value> = critical
        .iter()
        .map(|id| {
            json!({"id": id, "severity": "CRITICAL", "package": "xz-utils",
                   "installedVersion": "5.6.0", "fixedVersion": "5.6.1",
                   "uri": format!("https://nvd.nist.gov/vuln/detail/{id}")})
        })
        .chain(std::iter::once(
            json!({"id": "CVE-2023-0001", "severity": "MEDIUM",
            "package": "zlib", "installedVersion": "1.2.13"}),
        ))
        .collect();
    let report: ImageScanReport = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "ImageScanReport",
        "metadata": {"name": report_name(digest), "labels": {SCOPE_LABEL: scope()}},
        "spec": {
            "registryId": ACCOUNT,
            "repositoryName": "app",
            "imageDigest": digest,
            "imageTags": tags,
            "scan": {"status": "COMPLETE", "completedAt": chrono::Utc::now().to_rfc3339(),
                     "scanType": "BASIC"},
            "summary": {"critical": critical.len(), "medium": 1},
            "findings": findings,
            "truncated": false
        }
    }))
    .unwrap();
    Api::<ImageScanReport>::all(client.clone())
        .create(&PostParams::default(), &report)
        .await
        .unwrap();
}

async fn create_policy(client: &kube::Client, name: &str, enforcement: Value) {
    let policy: ScanPolicy = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "ScanPolicy",
        "metadata": {"name": scoped(name), "labels": {SCOPE_LABEL: scope()}},
        "spec": {"scanType": "BASIC", "rules": [], "enforcement": enforcement}
    }))
    .unwrap();
    Api::<ScanPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
}

async fn patch_policy(client: &kube::Client, name: &str, enforcement: Value) {
    Api::<ScanPolicy>::all(client.clone())
        .patch(
            &scoped(name),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"enforcement": enforcement}})),
        )
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn critical_image_denied_then_allowlisted_then_expired() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let client = w.client();
    let ns = w.kube.namespace("team-a").await.unwrap();
    create_report(&client, DIGEST_V1, &["v1"], &["CVE-2024-3094"]).await;
    create_policy(
        &client,
        "default",
        json!({"mode": "enforce", "severityThreshold": "CRITICAL"}),
    )
    .await;

    let review = create_pod(&ns, "web", &only(&[("app", ecr("app:v1").as_str())]));
    let denied = w.until("CRITICAL image denied", &review, false).await;
    assert_eq!(denied.code(), 403);
    let message = denied.message();
    assert!(message.contains("CVE-2024-3094"), "{message}");
    assert!(message.contains("app:v1"), "{message}");

    // Also denied when pinned by digest.
    let pinned = create_pod(
        &ns,
        "web",
        &only(&[("app", ecr(&format!("app@{DIGEST_V1}")).as_str())]),
    );
    assert!(!w.review(&pinned).await.allowed());

    // Allowlisted until tomorrow: allowed.
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    patch_policy(&client, "default", json!({"allowlist": [
        {"id": "CVE-2024-3094", "reason": "backdoor not reachable: sshd not in image", "expires": tomorrow}
    ]}))
    .await;
    let allowed = w.until("allowlisted CVE allowed", &review, true).await;
    assert!(allowed.warnings().is_empty(), "{:?}", allowed.warnings());

    // The entry expires: denied again.
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    patch_policy(&client, "default", json!({"allowlist": [
        {"id": "CVE-2024-3094", "reason": "backdoor not reachable: sshd not in image", "expires": yesterday}
    ]}))
    .await;
    let again = w
        .until("expired allowlist entry denies", &review, false)
        .await;
    assert_eq!(again.code(), 403);

    // A denial is an event in the pod's namespace (best effort, so waited for).
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    wait::until("denial event", WAIT, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ImageVulnerable"))
    })
    .await
    .unwrap();
    assert!(w.metrics.count(Outcome::Denied) >= 3);
    assert!(
        w.metrics
            .render_prometheus()
            .contains("ecr_operator_admission_decisions_total{decision=\"denied\"}")
    );
    w.stop().await;
}

#[tokio::test]
async fn warn_and_audit_modes_admit() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let client = w.client();
    let ns = w.kube.namespace("team-b").await.unwrap();
    create_report(&client, DIGEST_V1, &["v1"], &["CVE-2024-3094"]).await;
    create_policy(&client, "warn", json!({"mode": "warn"})).await;
    let review = create_pod(&ns, "web", &only(&[("app", ecr("app:v1").as_str())]));
    let warned = wait::until("warning", WAIT, || async {
        let a = w.review(&review).await;
        (!a.warnings().is_empty()).then_some(a)
    })
    .await
    .unwrap();
    assert!(warned.allowed());
    let warnings = warned.warnings();
    assert!(warnings.iter().all(|w| w.len() <= 120), "{warnings:?}");
    assert!(
        warnings[0].contains("CRITICAL") || warnings[0].contains("CVE"),
        "{warnings:?}"
    );

    patch_policy(&client, "warn", json!({"mode": "audit"})).await;
    let audited = wait::until("audit mode: no warning", WAIT, || async {
        let a = w.review(&review).await;
        a.warnings().is_empty().then_some(a)
    })
    .await
    .unwrap();
    assert!(audited.allowed());
    assert!(w.metrics.count(Outcome::Warned) >= 1);
    w.stop().await;
}

#[tokio::test]
async fn exempt_namespace_and_non_ecr_images_are_admitted() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let client = w.client();
    let ns = w.kube.namespace("team-c").await.unwrap();
    let exempt = w.kube.namespace("platform").await.unwrap();
    create_report(&client, DIGEST_V1, &["v1"], &["CVE-2024-3094"]).await;
    create_policy(
        &client,
        "strict",
        json!({"mode": "enforce", "unscanned": "deny",
        "exemptNamespaces": [exempt.clone()]}),
    )
    .await;
    let bad = only(&[("app", ecr("app:v1").as_str())]);
    w.until("policy in force", &create_pod(&ns, "web", &bad), false)
        .await;

    let a = w.review(&create_pod(&exempt, "web", &bad)).await;
    assert!(a.allowed(), "exempt namespace: {:?}", a.0);

    // Docker Hub and other registries are not checked, even under `unscanned: deny`.
    let hub = only(&[
        ("nginx", "nginx:1.27"),
        ("quay", "quay.io/prometheus/node-exporter:v1.8.2"),
    ]);
    let a = w.review(&create_pod(&ns, "web", &hub)).await;
    assert!(a.allowed(), "non-ECR images: {:?}", a.0);
    w.stop().await;
}

#[tokio::test]
async fn unscanned_images_follow_the_unscanned_action() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let client = w.client();
    let ns = w.kube.namespace("team-d").await.unwrap();
    create_policy(
        &client,
        "p",
        json!({"mode": "enforce", "unscanned": "allow"}),
    )
    .await;
    let review = create_pod(
        &ns,
        "web",
        &only(&[("app", ecr("app:never-scanned").as_str())]),
    );
    // Wait until the policy is known: the allow answer carries no records, so wait on the next.
    patch_policy(&client, "p", json!({"unscanned": "deny"})).await;
    let denied = w.until("unscanned: deny", &review, false).await;
    assert!(
        denied.message().contains("app:never-scanned"),
        "{}",
        denied.message()
    );

    patch_policy(&client, "p", json!({"unscanned": "warn"})).await;
    let warned = wait::until("unscanned: warn", WAIT, || async {
        let a = w.review(&review).await;
        (a.allowed() && !a.warnings().is_empty()).then_some(a)
    })
    .await
    .unwrap();
    assert!(
        warned.warnings()[0].contains("scan"),
        "{:?}",
        warned.warnings()
    );

    patch_policy(&client, "p", json!({"unscanned": "allow"})).await;
    wait::until("unscanned: allow", WAIT, || async {
        let a = w.review(&review).await;
        (a.allowed() && a.warnings().is_empty()).then_some(a)
    })
    .await
    .unwrap();
    w.stop().await;
}

#[tokio::test]
async fn init_and_ephemeral_containers_are_checked() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let client = w.client();
    let ns = w.kube.namespace("team-e").await.unwrap();
    create_report(&client, DIGEST_V1, &["v1"], &["CVE-2024-3094"]).await;
    create_report(&client, DIGEST_CLEAN, &["clean"], &[]).await;
    create_policy(&client, "p", json!({"mode": "enforce"})).await;
    let (clean, vulnerable) = (ecr("app:clean"), ecr("app:v1"));

    let init = spec(
        &[("app", clean.as_str())],
        &[("migrate", vulnerable.as_str())],
        &[],
    );
    let denied = w
        .until(
            "init container denied",
            &create_pod(&ns, "web", &init),
            false,
        )
        .await;
    assert!(denied.message().contains("migrate"), "{}", denied.message());

    let running = spec(&[("app", clean.as_str())], &[], &[]);
    assert!(w.review(&create_pod(&ns, "web", &running)).await.allowed());
    let debugged = spec(
        &[("app", clean.as_str())],
        &[],
        &[("debugger", vulnerable.as_str())],
    );
    let a = w.review(&debug_pod(&ns, "web", &running, &debugged)).await;
    assert!(!a.allowed());
    assert!(a.message().contains("debugger"), "{}", a.message());

    // An UPDATE that adds no image (a label change) is not checked, even with a vulnerable image.
    let old = spec(&[("app", vulnerable.as_str())], &[], &[]);
    let a = w.review(&debug_pod(&ns, "web", &old, &old)).await;
    assert!(a.allowed());
    // A clean debug container on a pod whose main image is now known vulnerable: allowed.
    let debug_clean = spec(
        &[("app", vulnerable.as_str())],
        &[],
        &[("debugger", clean.as_str())],
    );
    let a = w.review(&debug_pod(&ns, "web", &old, &debug_clean)).await;
    assert!(a.allowed(), "{:?}", a.0);
    w.stop().await;
}

#[tokio::test]
async fn deployment_template_is_checked() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let client = w.client();
    let ns = w.kube.namespace("team-f").await.unwrap();
    create_report(&client, DIGEST_V1, &["v1"], &["CVE-2024-3094"]).await;
    create_policy(&client, "p", json!({"mode": "enforce"})).await;
    let review = create_deployment(&ns, "web", &only(&[("app", ecr("app:v1").as_str())]));
    let denied = w.until("deployment denied", &review, false).await;
    assert_eq!(denied.code(), 403);
    assert!(denied.message().contains("CVE-2024-3094"));
    w.stop().await;
}

struct MapResolver(std::collections::HashMap<String, String>, AtomicU32);

#[async_trait]
impl DigestResolver for MapResolver {
    async fn resolve(
        &self,
        _account: &str,
        _region: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, ResolveError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(self.0.get(&format!("{repository}:{tag}")).cloned())
    }
}

#[tokio::test]
async fn tag_resolved_to_digest_with_a_map_resolver() {
    let resolver = Arc::new(MapResolver(
        [("app:v2".to_owned(), DIGEST_V2.to_owned())].into(),
        AtomicU32::new(0),
    ));
    let w = Webhook::start(Options {
        resolver: Some(resolver.clone()),
        ..Options::default()
    })
    .await
    .ready()
    .await;
    let client = w.client();
    let ns = w.kube.namespace("team-g").await.unwrap();
    // The report does not list the tag (it was pushed after the scan): only the digest finds it.
    create_report(&client, DIGEST_V2, &[], &["CVE-2024-6387"]).await;
    create_policy(&client, "p", json!({"mode": "enforce"})).await;
    let review = create_pod(&ns, "web", &only(&[("app", ecr("app:v2").as_str())]));
    let denied = w.until("tag resolved and denied", &review, false).await;
    assert!(
        denied.message().contains("CVE-2024-6387"),
        "{}",
        denied.message()
    );
    let calls = resolver.1.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert!(!w.review(&review).await.allowed());
    }
    assert_eq!(
        resolver.1.load(Ordering::SeqCst),
        calls,
        "answers are cached"
    );
    w.stop().await;
}

/// The resolver the operator will build on its registry, here straight on aws-sdk-ecr.
struct EcrResolver(aws_sdk_ecr::Client);

#[async_trait]
impl DigestResolver for EcrResolver {
    async fn resolve(
        &self,
        account: &str,
        _region: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, ResolveError> {
        let out = self
            .0
            .describe_images()
            .registry_id(account)
            .repository_name(repository)
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag(tag)
                    .build(),
            )
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .image_details()
                .first()
                .and_then(|d| d.image_digest())
                .map(str::to_owned)),
            Err(e) => match e.as_service_error() {
                Some(s)
                    if s.is_image_not_found_exception()
                        || s.is_repository_not_found_exception() =>
                {
                    Ok(None)
                }
                _ => Err(ResolveError::Registry(
                    aws_sdk_ecr::error::DisplayErrorContext(e).to_string(),
                )),
            },
        }
    }
}

#[tokio::test]
async fn tag_resolved_to_digest_by_ecr_and_failures_follow_the_mode() {
    let moto = Moto::start().await.unwrap();
    let ecr_client = moto.ecr_client();
    ecr_client
        .create_repository()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    let digest = testbed::images::push_image(&ecr_client, "app", "v3")
        .await
        .unwrap();
    let w = Webhook::start(Options {
        resolver: Some(Arc::new(EcrResolver(ecr_client.clone()))),
        resolve_timeout: Duration::from_millis(800),
        ..Options::default()
    })
    .await
    .ready()
    .await;
    let client = w.client();
    let ns = w.kube.namespace("team-h").await.unwrap();
    create_report(&client, &digest, &[], &["CVE-2024-3094"]).await;
    create_policy(&client, "p", json!({"mode": "enforce"})).await;
    let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app:v3");
    let review = create_pod(&ns, "web", &only(&[("app", image.as_str())]));
    let denied = w
        .until("moto tag resolved and denied", &review, false)
        .await;
    assert_eq!(denied.code(), 403);
    let calls = moto.calls().await.unwrap();
    assert_eq!(calls.get("DescribeImages").copied(), Some(1), "{calls:?}");

    // ECR answers slowly for a tag the cache has never seen: enforce fails closed in time.
    moto.inject(
        "DescribeImages",
        FaultKind::Latency(Duration::from_secs(5)),
        FaultScope::Next(100),
    )
    .await
    .unwrap();
    let slow = create_pod(
        &ns,
        "web",
        &only(&[("app", format!("{REGISTRY}/app:v4").as_str())]),
    );
    let started = Instant::now();
    let a = w.review(&slow).await;
    let took = started.elapsed();
    assert!(!a.allowed(), "{:?}", a.0);
    assert_eq!(a.code(), 503);
    assert!(a.message().contains("digest"), "{}", a.message());
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    // The same in audit mode: fails open.
    patch_policy(&client, "p", json!({"mode": "audit"})).await;
    let other = create_pod(
        &ns,
        "web",
        &only(&[("app", format!("{REGISTRY}/app:v5").as_str())]),
    );
    w.until("audit fails open", &other, true).await;
    moto.clear_faults().await.unwrap();
    w.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_answered_with_errors() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let mut conn = w.connect().await;
    let (status, body) = conn.post("/validate-pods", b"{\"kind\": ".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(body["response"]["status"]["code"], 400);

    // Valid JSON, wrong shape: the uid is salvaged.
    let bad = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "request": {"uid": "abc-123", "kind": "Pod", "operation": "CREATE"}});
    let (status, body) = conn
        .post("/validate-pods", serde_json::to_vec(&bad).unwrap())
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["response"]["uid"], "abc-123");

    // No request at all.
    let (status, _) = conn
        .post(
            "/validate-pods",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 400);

    // 4 MiB: refused without reading it all.
    let mut big = create_pod("default", "web", &only(&[("app", "nginx")]));
    big["request"]["object"]["metadata"]["annotations"]["padding"] =
        "x".repeat(4 * 1024 * 1024).into();
    let (status, body) = w
        .post_raw("/validate-pods", serde_json::to_vec(&big).unwrap())
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["response"]["allowed"], false);

    let (status, _) = w.post_raw("/nope", b"{}".to_vec()).await;
    assert_eq!(status, 404);

    // Still serving.
    let ok = w
        .review(&create_pod("default", "web", &only(&[("app", "nginx")])))
        .await;
    assert!(ok.allowed());
    assert!(w.metrics.count(Outcome::Invalid) >= 4);
    w.stop().await;
}

#[tokio::test]
async fn certificate_rotation_without_restart() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let first = w.connect().await;
    let served = first.peer_cert.clone().unwrap();
    assert!(matches!(
        first.protocol,
        Some(rustls::ProtocolVersion::TLSv1_3)
    ));
    // TLS 1.2 is accepted too.
    let tls12 = Connection::open_with(w.addr, &w.roots, Some(&[&rustls::version::TLS12]))
        .await
        .unwrap();
    assert_eq!(tls12.protocol, Some(rustls::ProtocolVersion::TLSv1_2));

    let rotated = tls::generate(&names(), 30).unwrap();
    write_pair(&w.dir, &rotated);
    let new_der = CertificateDer::from_pem_slice(rotated.cert_pem.as_bytes()).unwrap();
    assert_ne!(served, new_der);
    let mut roots = w.roots.clone();
    roots.push(rotated.ca_pem.clone());
    let addr = w.addr;
    let mut conn = wait::until("new certificate served", WAIT, || {
        let (roots, new_der) = (roots.clone(), new_der.clone());
        async move {
            let c = Connection::open(addr, &roots).await;
            (c.peer_cert.as_ref() == Some(&new_der)).then_some(c)
        }
    })
    .await
    .unwrap();
    let (status, _) = conn
        .post(
            "/validate-pods",
            serde_json::to_vec(&create_pod("default", "web", &only(&[("app", "nginx")]))).unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    // The old CA alone no longer verifies the server.
    assert!(Connection::open_with(addr, &w.roots, None).await.is_err());
    w.stop().await;
}

#[tokio::test]
async fn generated_certificate_is_published_as_ca_bundle() {
    let kube = KubeEnv::start().await.unwrap();
    let configuration = testbed::kube_env::unique_name("ecr-operator");
    let vwc: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": configuration},
        "webhooks": [{
            "name": "pods.ecr.operator.dev",
            "clientConfig": {"service": {"name": "ecr-operator-webhook",
                "namespace": "ecr-operator-system", "path": "/validate-pods", "port": 443}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["pods", "pods/ephemeralcontainers"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
            "failurePolicy": "Fail"
        }]
    }))
    .unwrap();
    let api: Api<ValidatingWebhookConfiguration> = Api::all(kube.client());
    api.create(&PostParams::default(), &vwc).await.unwrap();
    let w = Webhook::start_on(
        kube,
        Options {
            certificate: Some(CertificateSource::Generated {
                dns_names: names(),
                webhook_configuration: Some(configuration.clone()),
                valid_days: 30,
            }),
            ..Options::default()
        },
    )
    .await
    .ready()
    .await;
    let bundle = wait::until("caBundle written", WAIT, || async {
        let got = api.get(&configuration).await.ok()?;
        let hook = got.webhooks?.into_iter().next()?;
        hook.client_config.ca_bundle.map(|b| b.0)
    })
    .await
    .unwrap();
    let ca = String::from_utf8(bundle).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let mut conn = Connection::open(w.addr, &[ca]).await;
    let (status, _) = conn
        .post(
            "/validate-pods",
            serde_json::to_vec(&create_pod("default", "web", &only(&[("app", "nginx")]))).unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    w.stop().await;
}

#[tokio::test]
async fn before_the_cache_syncs_the_failure_policy_answers() {
    // A cluster without the CRDs: the reflectors never list, the cache never syncs. The double:
    // the shared real API server has the CRDs.
    let server = apiserver_double::ApiServer::start().await.unwrap();
    let dir = temp_dir();
    let generated = tls::generate(&names(), 30).unwrap();
    let (cert, key) = write_pair(&dir, &generated);
    for (policy, allowed) in [(FailurePolicy::Fail, false), (FailurePolicy::Ignore, true)] {
        let mut config = WebhookConfig::new(CertificateSource::Files {
            cert: cert.clone(),
            key: key.clone(),
            reload_interval: Duration::from_secs(1),
        });
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.cache_unavailable = policy;
        let webhook = WebhookServer::bind(config, server.client().unwrap())
            .await
            .unwrap();
        let addr = webhook.local_addr().unwrap();
        assert!(!webhook.readiness().ready());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(webhook.run(async move {
            let _ = stopped.await;
        }));
        let review = create_pod("default", "web", &only(&[("app", ecr("app:v1").as_str())]));
        let (status, body) = Connection::open(addr, std::slice::from_ref(&generated.ca_pem))
            .await
            .post("/validate-pods", serde_json::to_vec(&review).unwrap())
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["response"]["allowed"], allowed, "{policy:?}: {body}");
        if !allowed {
            assert_eq!(body["response"]["status"]["code"], 503);
        }
        let _ = stop.send(());
        task.await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn decision_latency_from_the_cache() {
    let w = Webhook::start(Options::default()).await.ready().await;
    let client = w.client();
    let ns = w.kube.namespace("perf").await.unwrap();
    for i in 0..200u32 {
        let digest = format!("sha256:{i:064x}");
        let tag = format!("build-{i}");
        create_report(&client, &digest, &[&tag], &[]).await;
    }
    create_report(&client, DIGEST_V1, &["v1"], &["CVE-2024-3094"]).await;
    create_policy(&client, "p", json!({"mode": "enforce"})).await;
    let review = create_pod(
        &ns,
        "web",
        &spec(
            &[
                ("app", ecr("app:build-7").as_str()),
                ("sidecar", ecr("app:build-150").as_str()),
            ],
            &[("init", "busybox:1.36")],
            &[],
        ),
    );
    let body = serde_json::to_vec(&review).unwrap();
    w.until(
        "cache warm",
        &create_pod(&ns, "x", &only(&[("app", ecr("app:v1").as_str())])),
        false,
    )
    .await;
    let mut conn = w.connect().await;
    let (count_before, time_before) = w.metrics.latency();
    let mut samples = Vec::with_capacity(500);
    for _ in 0..500 {
        let started = Instant::now();
        let (status, answer) = conn.post("/validate-pods", body.clone()).await;
        samples.push(started.elapsed());
        assert_eq!(status, 200);
        assert_eq!(answer["response"]["allowed"], true);
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "admission latency over HTTPS (keep-alive, 3 images, 201 reports, debug build): \
         p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        p(0.50),
        p(0.90),
        p(0.99),
        samples[samples.len() - 1]
    );
    let (count, time) = w.metrics.latency();
    println!(
        "server-side time per request (parse, cache lookup, decision, answer): mean {:?}",
        (time - time_before) / u32::try_from(count - count_before).unwrap()
    );
    w.stop().await;
}

/// Log lines captured in memory (a `MakeWriter` for the test's subscriber).
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

impl LogBuffer {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// The `trace_id` of a JSON log line: its current span's, else the innermost enclosing one's.
fn trace_id_of(line: &Value) -> Option<String> {
    line["span"]["trace_id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            line["spans"]
                .as_array()?
                .iter()
                .rev()
                .find_map(|s| s["trace_id"].as_str().map(str::to_owned))
        })
}

#[tokio::test]
async fn admission_logs_carry_a_trace_id() {
    let logs = LogBuffer::default();
    // Global, not scoped: the other tests of this binary run at the same time, and a callsite
    // they reach first keeps the interest a thread-local subscriber could not change. Lines
    // are told apart by the request's uid, so their logs in the buffer do no harm.
    tracing::subscriber::set_global_default(ecr_operator::telemetry::subscriber(
        "json",
        tracing_subscriber::EnvFilter::new("info"),
        logs.clone(),
    ))
    .expect("no other test of this binary sets a global subscriber");
    let w = Webhook::start(Options::default()).await.ready().await;
    create_policy(
        &w.client(),
        "strict",
        json!({"mode": "enforce", "unscanned": "deny"}),
    )
    .await;
    let review = create_pod("default", "web", &only(&[("app", &ecr("app:v1"))]));
    w.until("policy seen", &review, false).await;

    // An API server with tracing on sends a W3C traceparent: its trace id is reused.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = create_pod("default", "traced", &only(&[("app", &ecr("app:v1"))]));
    let (status, _) = w
        .connect()
        .await
        .post_with(
            "/validate-pods",
            serde_json::to_vec(&traced).unwrap(),
            &[("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01"))],
        )
        .await;
    assert_eq!(status, 200);
    let uid = traced["request"]["uid"].as_str().unwrap().to_owned();
    let line = wait::until("the traced decision is logged", WAIT, || {
        let (logs, uid) = (logs.clone(), uid.clone());
        async move {
            logs.lines()
                .into_iter()
                .find(|l| l["fields"]["uid"].as_str() == Some(uid.as_str()))
        }
    })
    .await
    .unwrap();
    assert_eq!(line["fields"]["message"], "admission decision", "{line}");
    assert_eq!(trace_id_of(&line).as_deref(), Some(trace), "{line}");

    // Without the header every request gets its own fresh id, on every line it logs.
    let decisions: Vec<Value> = logs
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "admission decision")
        .collect();
    assert!(decisions.len() >= 2, "{decisions:?}");
    let mut ids = std::collections::BTreeSet::new();
    for line in &decisions {
        let id = trace_id_of(line).unwrap_or_else(|| panic!("no trace_id: {line}"));
        assert!(
            ecr_operator::telemetry::trace::is_trace_id(&id),
            "{id}: {line}"
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), decisions.len(), "one trace id per request");
    w.stop().await;
}

/// A pod flooding the webhook's port: at most `max_connections_per_peer` of its connections are
/// kept (the rest are closed as they are accepted), an HTTP connection that sends no request is
/// closed after `header_read_timeout`, and requests from another address (the API server's) are
/// still answered within the webhook's timeout meanwhile.
#[tokio::test]
async fn a_connection_flood_is_bounded_and_requests_are_still_answered() {
    use tokio::io::AsyncReadExt;
    const PER_PEER: usize = 8;
    const FLOOD: usize = 40;
    let w = Webhook::start(Options {
        limits: Some((PER_PEER, Duration::from_secs(1))),
        ..Options::default()
    })
    .await
    .ready()
    .await;

    // The flood, from 127.0.0.2: plain TCP connections that never start TLS.
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        flood.push(socket.connect(w.addr).await.unwrap());
    }
    let mut closed = 0;
    for stream in &mut flood {
        let mut byte = [0u8; 1];
        // A closed connection reads end-of-stream at once; a kept one waits for our hello.
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        FLOOD - PER_PEER,
        "connections beyond the per-peer limit are closed"
    );

    // Meanwhile the API server's address is answered, within the timeout (2 s here).
    let review = create_pod("default", "web", &only(&[("app", "nginx")]));
    let started = Instant::now();
    let answer = w.review(&review).await;
    assert!(answer.allowed());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A TLS connection that sends no request is closed after the header read timeout.
    let idle = w.connect().await;
    wait::until(
        "the idle connection closed",
        Duration::from_secs(10),
        || async { idle.sender.is_closed().then_some(()) },
    )
    .await
    .unwrap();
    drop(flood);
    w.stop().await;
}
