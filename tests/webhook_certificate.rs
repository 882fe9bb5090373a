//! The generated webhook certificate shared by replicas through a Secret, against the API server
//! double: two webhook servers, one Secret, one CA in the webhook configuration's `caBundle`;
//! renewal near expiry picked up by both servers without restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ecr_operator::admission::cert_secret::{
    CA_BUNDLE_KEY, CA_KEY, NOT_AFTER_ANNOTATION, NOT_BEFORE_ANNOTATION, SharedCertificate,
};
use ecr_operator::admission::tls;
use ecr_operator::admission::{CertificateSource, WebhookConfig, WebhookServer};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use testbed::kube_env::KubeEnv;
use testbed::wait;
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "ecr-operator-webhook-generated";

thread_local! {
    /// The operator's namespace and the webhook configuration of the test on this thread (a
    /// `#[tokio::test]` body runs on its own thread): tests share one API server.
    static NAMES: std::cell::RefCell<(String, String)> = const { std::cell::RefCell::new((String::new(), String::new())) };
}

/// This test's operator namespace (where the shared certificate's Secret lives).
fn namespace() -> String {
    NAMES.with(|n| n.borrow().0.clone())
}

/// This test's ValidatingWebhookConfiguration.
fn configuration() -> String {
    NAMES.with(|n| n.borrow().1.clone())
}

async fn cluster() -> KubeEnv {
    let kube = KubeEnv::start().await.unwrap();
    let ns = kube.namespace("ecr-system").await.unwrap();
    let vwc_name = testbed::kube_env::unique_name("ecr-operator");
    NAMES.with(|n| *n.borrow_mut() = (ns, vwc_name));
    let hook = |name: &str, path: &str| {
        json!({
            "name": name,
            "clientConfig": {"service": {"name": "ecr-operator", "namespace": namespace(),
                "path": path, "port": 443}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5
        })
    };
    let vwc: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": configuration()},
        "webhooks": [hook("pods.ecr.operator.dev", "/validate-pods"),
                     hook("workloads.ecr.operator.dev", "/validate-workloads")]
    }))
    .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(kube.client())
        .create(&PostParams::default(), &vwc)
        .await
        .unwrap();
    kube
}

struct Replica {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(client: kube::Client) -> Replica {
        let mut config = WebhookConfig::new(CertificateSource::Shared(SharedCertificate {
            namespace: namespace(),
            secret_name: SECRET.to_owned(),
            dns_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            webhook_configuration: Some(configuration()),
            valid_days: 30,
            check_interval: Duration::from_millis(200),
        }));
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.events = false;
        let server = WebhookServer::bind(config, client).await.unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Replica { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("webhook stops")
            .unwrap();
    }
}

/// The certificate `addr` serves, if it verifies against `roots_pem` for `localhost`.
async fn served(addr: SocketAddr, roots_pem: &str) -> Option<CertificateDer<'static>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(cert.ok()?).ok()?;
    }
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
}

/// The `caBundle` of the configuration's webhooks, once they all carry the same one.
async fn ca_bundle(client: &kube::Client) -> Option<String> {
    let vwc = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(&configuration())
        .await
        .ok()?;
    let bundles: Vec<Option<Vec<u8>>> = vwc
        .webhooks
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.client_config.ca_bundle.map(|b| b.0))
        .collect();
    let first = bundles.first()?.clone()?;
    bundles
        .iter()
        .all(|b| b.as_ref() == Some(&first))
        .then(|| String::from_utf8(first).ok())
        .flatten()
}

fn data(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Waits until both replicas serve the Secret's current certificate, verified against the
/// webhook configuration's `caBundle`, and that bundle is the Secret's; returns the Secret.
async fn converged(client: &kube::Client, replicas: &[&Replica], not: Option<&str>) -> Secret {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace());
    wait::until("replicas serve the Secret's certificate", WAIT, || async {
        let secret = secrets.get_opt(SECRET).await.ok()??;
        let cert = data(&secret, "tls.crt");
        if Some(cert.as_str()) == not {
            return None;
        }
        let bundle = ca_bundle(client).await?;
        if bundle != data(&secret, CA_BUNDLE_KEY) {
            return None;
        }
        for r in replicas {
            if served(r.addr, &bundle).await? != der(&cert) {
                return None;
            }
        }
        Some(secret)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_generated_certificate() {
    let kube = cluster().await;
    let client = kube.client();
    // Started together: both find no Secret, one create wins, the other reads the winner's.
    let (a, b) = tokio::join!(
        Replica::start(client.clone()),
        Replica::start(client.clone())
    );
    let secret = converged(&client, &[&a, &b], None).await;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let bundle = ca_bundle(&client).await.unwrap();
    // One CA, the Secret's, and both replicas chain to it.
    assert_eq!(bundle, data(&secret, CA_KEY));
    let (ca, cb) = (
        served(a.addr, &bundle).await.unwrap(),
        served(b.addr, &bundle).await.unwrap(),
    );
    assert_eq!(ca, cb);
    // A certificate from another CA is not what they serve.
    let stranger = tls::generate(&["localhost".to_owned()], 1).unwrap();
    assert!(served(a.addr, &stranger.ca_pem).await.is_none());

    // A third replica (a restart) serves the same Secret instead of making its own.
    let c = Replica::start(client.clone()).await;
    let again = converged(&client, &[&a, &b, &c], None).await;
    assert_eq!(data(&again, "tls.crt"), data(&secret, "tls.crt"));
    for r in [a, b, c] {
        r.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_expiry_certificate_is_renewed_and_served_without_restart() {
    let kube = cluster().await;
    let client = kube.client();
    let a = Replica::start(client.clone()).await;
    let b = Replica::start(client.clone()).await;
    let first = converged(&client, &[&a, &b], None).await;
    let old_cert = data(&first, "tls.crt");
    let old_ca = data(&first, CA_KEY);

    // Less than a third of its lifetime left.
    let now = chrono::Utc::now();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace());
    secrets
        .patch(
            SECRET,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                NOT_BEFORE_ANNOTATION: (now - chrono::TimeDelta::days(29)).to_rfc3339(),
                NOT_AFTER_ANNOTATION: (now + chrono::TimeDelta::days(1)).to_rfc3339(),
            }}})),
        )
        .await
        .unwrap();

    let renewed = converged(&client, &[&a, &b], Some(&old_cert)).await;
    let new_ca = data(&renewed, CA_KEY);
    assert_ne!(new_ca, old_ca);
    // The bundle keeps the old CA during the hand-over, after the new one.
    let bundle = data(&renewed, CA_BUNDLE_KEY);
    assert!(bundle.starts_with(&new_ca), "{bundle}");
    assert!(bundle.contains(old_ca.trim()), "{bundle}");
    assert_eq!(ca_bundle(&client).await.unwrap(), bundle);
    // The new certificate is trusted by the new CA alone; the old CA no longer verifies it.
    assert!(served(a.addr, &new_ca).await.is_some());
    assert!(served(b.addr, &old_ca).await.is_none());
    let annotations = renewed.metadata.annotations.clone().unwrap_or_default();
    let not_after = chrono::DateTime::parse_from_rfc3339(&annotations[NOT_AFTER_ANNOTATION])
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(not_after > now + chrono::TimeDelta::days(25), "{not_after}");

    a.stop().await;
    b.stop().await;
}
