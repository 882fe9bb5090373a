//! The Kubernetes side of a test, with the operator's CRDs installed: a user's own cluster when
//! `ECR_OPERATOR_TEST_KUBECONFIG` names a kubeconfig, else a real kube-apiserver + etcd when
//! `KUBEBUILDER_ASSETS` names them ([`crate::envtest`]), else the API server double. Under CI
//! (`CI` set) a missing real API server is an error, not a silent fall back to the double.

use std::sync::atomic::{AtomicU32, Ordering};

use apiserver_double::ApiServer;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

use serde::Deserialize;

use crate::{Error, Result, workspace_root};

/// The environment variable that switches tests to a real cluster.
pub const KUBECONFIG_ENV: &str = "ECR_OPERATOR_TEST_KUBECONFIG";

/// A Kubernetes API for one test.
pub struct KubeEnv {
    client: kube::Client,
    server: Option<ApiServer>,
    /// The kubeconfig of a real API server (none for the double).
    kubeconfig: Option<std::path::PathBuf>,
}

static NAME_SEQ: AtomicU32 = AtomicU32::new(0);

/// `PREFIX-PID-N`: unique within this process and across processes, so tests sharing a real
/// API server do not collide (namespaces, cluster-scoped objects, watch scopes).
pub fn unique_name(prefix: &str) -> String {
    let n = NAME_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

impl KubeEnv {
    /// A real API server when one is configured (see the module doc), else the double; `crds/`
    /// installed either way.
    pub async fn start() -> Result<KubeEnv> {
        match Self::real().await? {
            Some(env) => Ok(env),
            None if std::env::var_os("CI").is_some() => Err(Error::EnvTest(format!(
                "CI is set but no real API server is configured: set {} to a folder with \
                 kube-apiserver and etcd (.ci/run unpacks ../shared/envtest into target/envtest)",
                crate::envtest::ASSETS_ENV
            ))),
            None => Self::double().await,
        }
    }

    /// The real API server (`ECR_OPERATOR_TEST_KUBECONFIG`, else `KUBEBUILDER_ASSETS`) with
    /// `crds/` applied, or `None` when neither is set. For tests of what only a real server
    /// does (calling admission webhooks, RBAC, the CEL cost budget).
    pub async fn real() -> Result<Option<KubeEnv>> {
        let kubeconfig = match std::env::var_os(KUBECONFIG_ENV) {
            Some(path) => std::path::PathBuf::from(path),
            None => match crate::envtest::shared().await? {
                Some(envtest) => envtest.kubeconfig(),
                None => return Ok(None),
            },
        };
        let client = crate::envtest::client_from_kubeconfig(&kubeconfig).await?;
        apply_crds(&client).await?;
        Ok(Some(KubeEnv {
            client,
            server: None,
            kubeconfig: Some(kubeconfig),
        }))
    }

    /// Always the double, also when a real cluster is configured (for tests of the double's
    /// own fault hooks: restarts, compaction).
    pub async fn double() -> Result<KubeEnv> {
        let server = ApiServer::start()
            .await
            .map_err(|e| Error::Double(e.to_string()))?;
        server
            .install_crds_from_dir(workspace_root().join("crds"))
            .map_err(|e| Error::Double(e.to_string()))?;
        let client = server.client().map_err(|e| Error::Double(e.to_string()))?;
        Ok(KubeEnv {
            client,
            server: Some(server),
            kubeconfig: None,
        })
    }

    /// The real API server, for tests of what only a real one does; panics with how to get one
    /// when none is configured (such a test must not pass without running).
    pub async fn require_real() -> KubeEnv {
        match Self::real().await {
            Ok(Some(env)) => env,
            Ok(None) => panic!(
                "this test needs a real API server: set {} to a folder with kube-apiserver and \
                 etcd (`bash scripts/test.sh` unpacks ../shared/envtest, or use controller-runtime's \
                 setup-envtest), or {KUBECONFIG_ENV} to a cluster's kubeconfig",
                crate::envtest::ASSETS_ENV
            ),
            Err(e) => panic!("{e}"),
        }
    }

    /// Whether this is a real API server (not the double).
    pub fn is_real(&self) -> bool {
        self.server.is_none()
    }

    /// The kubeconfig of the real API server (for kubectl, or the operator as a process).
    pub fn kubeconfig(&self) -> Option<&std::path::Path> {
        self.kubeconfig.as_deref()
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A client of the real API server (as the cluster admin) whose connections go through a
    /// [`crate::proxy::TcpProxy`] the test can cut: a network partition of this client alone.
    pub async fn partitionable_client(&self) -> Result<(kube::Client, crate::proxy::TcpProxy)> {
        let path = self.kubeconfig.as_deref().ok_or_else(|| {
            Error::EnvTest("a partitionable client needs a real API server".to_string())
        })?;
        let mut kubeconfig = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| Error::EnvTest(format!("{}: {e}", path.display())))?;
        let cluster = kubeconfig
            .clusters
            .iter_mut()
            .find_map(|c| c.cluster.as_mut())
            .ok_or_else(|| Error::EnvTest(format!("{}: no cluster", path.display())))?;
        let server: ::http::Uri = cluster
            .server
            .clone()
            .unwrap_or_default()
            .parse()
            .map_err(|e| Error::EnvTest(format!("{}: server URL: {e}", path.display())))?;
        let target = tokio::net::lookup_host(server.authority().map_or("", |a| a.as_str()))
            .await
            .map_err(|e| Error::EnvTest(format!("{server}: {e}")))?
            .next()
            .ok_or_else(|| Error::EnvTest(format!("{server}: no address")))?;
        let proxy = crate::proxy::TcpProxy::start(target)
            .await
            .map_err(|e| Error::EnvTest(format!("starting a proxy to {target}: {e}")))?;
        // The same IP address (the certificate names it), another port.
        cluster.server = Some(format!("https://{}", proxy.addr()));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| Error::EnvTest(format!("{}: {e}", path.display())))?;
        Ok((kube::Client::try_from(config)?, proxy))
    }

    /// The double, when the test runs against it.
    pub fn server(&self) -> Option<&ApiServer> {
        self.server.as_ref()
    }

    /// Creates a fresh namespace named by [`unique_name`] and returns its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let name = unique_name(prefix);
        self.ensure_namespace(&name).await?;
        Ok(name)
    }

    /// Creates a namespace if it does not exist.
    ///
    /// A real API server without a namespace controller never finishes deleting a namespace,
    /// so tests make fresh ones instead of deleting them; the server goes with the process.
    pub async fn ensure_namespace(&self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Applies every CRD of `crds/` by server-side apply, as `kubectl apply --server-side -f crds/`
/// does, and waits until each is `Established`. A CRD the API server refuses fails here with the
/// server's own message.
pub async fn apply_crds(client: &kube::Client) -> Result<Vec<String>> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for crd in crds_in(&workspace_root().join("crds"))? {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(
            &name,
            &PatchParams::apply("ecr-operator-tests").force(),
            &Patch::Apply(&crd),
        )
        .await?;
        names.push(name);
    }
    for name in &names {
        crate::wait::until(
            &format!("CRD {name} Established"),
            std::time::Duration::from_secs(30),
            || {
                let crds = crds.clone();
                async move {
                    let crd = crds.get(name).await.ok()?;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await?;
    }
    Ok(names)
}

/// The CRDs of every YAML file in `dir` (a file may hold several documents).
pub fn crds_in(dir: &std::path::Path) -> Result<Vec<CustomResourceDefinition>> {
    let io = |path: &std::path::Path, message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e.to_string()))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut crds = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e.to_string()))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value =
                serde_yaml::Value::deserialize(document).map_err(|e| io(&path, e.to_string()))?;
            if value.is_null() {
                continue;
            }
            crds.push(serde_yaml::from_value(value).map_err(|e| io(&path, e.to_string()))?);
        }
    }
    Ok(crds)
}
