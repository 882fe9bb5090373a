//! The operator as `ecr-operator run` starts it, against the API server double (or a real
//! cluster) and moto.
#![allow(dead_code)] // each test binary uses a different part of this harness

pub mod targets;

use std::sync::Arc;
use std::time::Duration;

use ecr_operator::controllers::{self, Context};
use ecr_operator::registry::EcrRegistry;
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use testbed::kube_env::KubeEnv;
use testbed::moto::Moto;

pub const WAIT: Duration = Duration::from_secs(60);

pub struct Env {
    pub kube: KubeEnv,
    pub moto: Moto,
    pub registry: Arc<EcrRegistry>,
    pub config: controllers::Config,
    /// SQS queue of scan events the operator reads, once set (see `Moto::scan_event_queue`).
    pub scan_queue: Option<String>,
    /// This test's watch scope (the value of [`SCOPE_LABEL`]).
    pub scope: String,
    /// The operator's metrics, as `/metrics` serves them.
    pub metrics: Arc<ecr_operator::telemetry::metrics::Metrics>,
    operator: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

/// Fast sweeps so drift tests finish in seconds.
pub fn test_config() -> controllers::Config {
    controllers::Config {
        cluster_id: "test-cluster".to_string(),
        sweep_interval: Duration::from_millis(500),
        deep_sweep_interval: Duration::from_secs(2),
        concurrency: 8,
        operator_namespace: "ecr-operator-system".to_string(),
        scan_refresh_interval: Duration::from_millis(500),
        region: None,
        // Set by `Env` to the test's own scope.
        watch: controllers::WatchScope::all(),
    }
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(test_config()).await
    }

    /// Starts moto, the Kubernetes API (real or double, see [`KubeEnv::start`]) and the
    /// operator. The operator watches only objects labelled with this test's scope, and
    /// [`create`] labels what this test creates: tests sharing one real API server each see
    /// only their own objects (namespaced and cluster-scoped alike).
    pub async fn start_with(config: controllers::Config) -> Env {
        let kube = KubeEnv::start().await.unwrap_or_else(|e| panic!("{e}"));
        Self::start_on(kube, config, Grants::Everything).await
    }

    /// Like [`Env::start`], but with no RepositoryAccessPolicy: every namespace has the default
    /// grant (its own `<namespace>/` prefix, no adoption), as on a fresh install.
    pub async fn start_with_default_grants() -> Env {
        let kube = KubeEnv::start().await.unwrap_or_else(|e| panic!("{e}"));
        Self::start_on(kube, test_config(), Grants::Default).await
    }

    /// On the API server double, also when a real API server is configured: for tests of what
    /// only the double can do on demand (restarts, dropped watches, `410 Gone`).
    pub async fn start_on_double() -> Env {
        let kube = KubeEnv::double().await.unwrap_or_else(|e| panic!("{e}"));
        Self::start_on(kube, test_config(), Grants::Everything).await
    }

    async fn start_on(kube: KubeEnv, mut config: controllers::Config, grants: Grants) -> Env {
        ecr_operator::telemetry::init_logging("text");
        let moto = Moto::start().await.unwrap_or_else(|e| panic!("{e}"));
        let scope = testbed::kube_env::unique_name("scope");
        config.watch =
            controllers::WatchScope::new(&[], Some(&format!("{SCOPE_LABEL}={scope}"))).unwrap();
        TEST_SCOPE.with(|s| *s.borrow_mut() = Some(scope.clone()));
        let registry = Arc::new(
            EcrRegistry::from_client(moto.ecr_client()).with_ecr_public(&moto.sdk_config()),
        );
        let mut env = Env {
            kube,
            moto,
            registry,
            config,
            scan_queue: None,
            scope,
            metrics: Arc::new(ecr_operator::telemetry::metrics::Metrics::new(Arc::new(
                Default::default,
            ))),
            operator: None,
        };
        if grants == Grants::Everything {
            env.grant_everything().await;
        }
        env.start_operator();
        env
    }

    /// A RepositoryAccessPolicy in this test's scope that grants every namespace every
    /// repository, adoption included: the tests of everything but tenancy name repositories
    /// freely, as a cluster admin would allow on a single-team cluster.
    async fn grant_everything(&self) {
        let policy: ecr_operator::api::RepositoryAccessPolicy = serde_yaml::from_str(
            "apiVersion: ecr.operator.dev/v1alpha1
kind: RepositoryAccessPolicy
metadata:
  name: everything
spec:
  namespaces:
    selector: {}
  repositories: ['*']
  allowAdoption: true
",
        )
        .unwrap();
        let mut policy = in_scope(policy);
        policy.metadata.name = Some(format!("everything-{}", self.scope));
        Api::<ecr_operator::api::RepositoryAccessPolicy>::all(self.kube.client())
            .create(&PostParams::default(), &policy)
            .await
            .unwrap_or_else(|e| panic!("granting every repository: {e}"));
    }

    /// Starts the controllers exactly as `ecr-operator run` does (same entry point).
    pub fn start_operator(&mut self) {
        // RegistryTargets are reached through moto's STS, from the same dummy credentials.
        let targets = ecr_operator::registry::TargetPool::new(
            self.moto.sdk_config(),
            self.registry.shared_stats(),
        );
        let mut ctx = Context::new(
            self.kube.client(),
            self.registry.clone(),
            self.config.clone(),
        )
        .with_metrics(self.metrics.clone())
        .with_targets(Arc::new(targets));
        if let Some(url) = &self.scan_queue {
            ctx = ctx.with_scan_events(ecr_operator::registry::ScanEventQueue::new(
                self.moto.sqs_client(),
                url.clone(),
                self.registry.shared_stats(),
            ));
        }
        let ctx = Arc::new(ctx);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = controllers::run(ctx, shutdown).await {
                panic!("operator stopped: {e}");
            }
        });
        self.operator = Some((handle, tx));
    }

    /// Kills the operator at once (as a crash would), without a graceful shutdown.
    pub fn kill_operator(&mut self) {
        if let Some((handle, _tx)) = self.operator.take() {
            handle.abort();
        }
    }

    pub fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.kube.client(), ns)
    }

    /// List parameters selecting this test's objects (what its operator sees), for lists of
    /// cluster-scoped kinds on an API server other tests share.
    pub fn scoped(&self) -> kube::api::ListParams {
        kube::api::ListParams::default().labels(&format!("{SCOPE_LABEL}={}", self.scope))
    }

    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        self.moto.ecr_client()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_operator();
    }
}

/// Which RepositoryAccessPolicy a test starts with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grants {
    /// One granting every repository to every namespace, adoption included.
    Everything,
    /// None: the default grant.
    Default,
}

/// The label that puts an object into one test's operator's watch scope.
pub const SCOPE_LABEL: &str = "ecr.operator.dev/test-scope";

thread_local! {
    /// The scope of the operator the test on this thread started. A test's body runs on its
    /// own thread (`#[tokio::test]` blocks on it there), so [`create`] finds its test's scope.
    static TEST_SCOPE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// `obj` labelled into the scope of this test's operator (unchanged before any [`Env`]).
pub fn in_scope<K: Resource>(mut obj: K) -> K {
    if let Some(scope) = TEST_SCOPE.with(|s| s.borrow().clone()) {
        obj.meta_mut()
            .labels
            .get_or_insert_default()
            .insert(SCOPE_LABEL.to_string(), scope);
    }
    obj
}

/// Creates an object from YAML, in this test's operator's scope.
pub async fn create<K>(api: &Api<K>, yaml: &str) -> K
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad test YAML: {e}"));
    let obj = in_scope(obj);
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", obj.name_any()))
}

/// Waits until `check` accepts the object.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, check: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let last = std::sync::Mutex::new(None);
    let found = testbed::wait::until(what, WAIT, || {
        let api = api.clone();
        let check = &check;
        let last = &last;
        async move {
            let obj = api.get_opt(name).await.ok().flatten()?;
            let ok = check(&obj);
            *last.lock().unwrap() = Some(obj.clone());
            ok.then_some(obj)
        }
    })
    .await;
    let last = last.into_inner().unwrap();
    match found {
        Ok(o) => o,
        Err(e) => panic!("{e}; last seen: {last:#?}"),
    }
}

/// Waits until the object no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    testbed::wait::until(&format!("{name} to be deleted"), WAIT, || {
        let api = api.clone();
        async move { matches!(api.get_opt(name).await, Ok(None)).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The Ready condition's (status, reason, message).
pub fn ready_of(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Option<(String, String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Ready=True at the Repository's current generation.
pub fn is_ready(r: &ecr_operator::api::Repository) -> bool {
    r.status.as_ref().is_some_and(|s| {
        ecr_operator::api::conditions::is_ready_at(&s.common.conditions, r.metadata.generation)
    })
}

/// The Ready condition has this reason.
pub fn reason_is(reason: &'static str) -> impl Fn(&ecr_operator::api::Repository) -> bool {
    move |r| {
        r.status
            .as_ref()
            .and_then(|s| ready_of(&s.common.conditions))
            .is_some_and(|(_, re, _)| re == reason)
    }
}
/// Ready=True at the object's generation (any kind the operator reports on).
pub fn ready<K: ecr_operator::controllers::status::Reported>(obj: &K) -> bool {
    obj.status().is_some_and(|s| {
        ecr_operator::api::conditions::is_ready_at(&K::common(s).conditions, obj.meta().generation)
    })
}

/// Ready=False with `reason`.
pub fn failed_with<K: ecr_operator::controllers::status::Reported>(
    reason: &'static str,
) -> impl Fn(&K) -> bool {
    move |obj| {
        obj.status()
            .and_then(|s| ready_of(&K::common(s).conditions))
            .is_some_and(|(st, re, _)| st == "False" && re == reason)
    }
}

/// The Ready condition's message.
pub fn message_of<K: ecr_operator::controllers::status::Reported>(obj: &K) -> String {
    obj.status()
        .and_then(|s| ready_of(&K::common(s).conditions))
        .map(|(_, _, m)| m)
        .unwrap_or_default()
}

/// Merge-patching object `name` with `patch` fails with 422 and a message containing `expect`.
pub async fn assert_patch_rejected<K>(
    api: &Api<K>,
    name: &str,
    patch: &serde_json::Value,
    expect: &str,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    use kube::api::{Patch, PatchParams};
    let result = api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await;
    assert_invalid(result, expect, &format!("{name}: {patch} was not refused"));
}

/// `result` is the API server's 422 with a message containing `expect`; else panics with
/// `otherwise` and what came instead.
fn assert_invalid<T: std::fmt::Debug>(result: kube::Result<T>, expect: &str, otherwise: &str) {
    match result {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(
                s.message.contains(expect),
                "message {:?} should contain {expect:?}",
                s.message
            );
        }
        other => panic!("{otherwise}: {other:?}"),
    }
}

/// Creating the object fails with 422 and a message containing `expect`.
pub async fn assert_rejected<K>(api: &Api<K>, yaml: &str, expect: &str)
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad test YAML: {e}"));
    let result = api.create(&PostParams::default(), &obj).await;
    assert_invalid(result, expect, &format!("expected 422 for {yaml}"));
}

/// Restarts the operator with a registry that also reaches moto's Secrets Manager, and with
/// `operator_namespace` as the namespace of credential Secrets.
pub fn restart_with_secrets(env: &mut Env, operator_namespace: &str) {
    env.kill_operator();
    env.registry = Arc::new(
        EcrRegistry::from_client(env.moto.ecr_client())
            .with_secrets(aws_sdk_secretsmanager::Client::new(&env.moto.sdk_config()))
            .with_ecr_public(&env.moto.sdk_config()),
    );
    env.config.operator_namespace = operator_namespace.to_string();
    env.start_operator();
}

/// The admission webhook serving on `addr` with a generated certificate for `127.0.0.1` whose CA
/// it writes into the ValidatingWebhookConfiguration `configuration`, Ready within `wait`;
/// stopped by the returned sender, ended when the returned task completes.
pub async fn start_generated_webhook(
    client: &kube::Client,
    addr: std::net::SocketAddr,
    configuration: &str,
    wait: Duration,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    use ecr_operator::admission::{CertificateSource, WebhookConfig, WebhookServer};
    let mut config = WebhookConfig::new(CertificateSource::Generated {
        dns_names: vec!["127.0.0.1".to_string()],
        webhook_configuration: Some(configuration.to_string()),
        valid_days: 1,
    });
    config.addr = addr;
    let server = WebhookServer::bind(config, client.clone()).await.unwrap();
    let readiness = server.readiness();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    testbed::wait::until("webhook ready", wait, || {
        let r = readiness.clone();
        async move { r.ready().then_some(()) }
    })
    .await
    .unwrap();
    (stop, task)
}
