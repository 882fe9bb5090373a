//! The Kubernetes side of a test: the API server double with the operator's CRDs, or a real
//! cluster when `ECR_OPERATOR_TEST_KUBECONFIG` names a kubeconfig.

use std::sync::atomic::{AtomicU32, Ordering};

use apiserver_double::ApiServer;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

use crate::{Error, Result, workspace_root};

/// The environment variable that switches tests to a real cluster.
pub const KUBECONFIG_ENV: &str = "ECR_OPERATOR_TEST_KUBECONFIG";

/// A Kubernetes API for one test.
pub struct KubeEnv {
    client: kube::Client,
    server: Option<ApiServer>,
}

static NAMESPACE_SEQ: AtomicU32 = AtomicU32::new(0);

impl KubeEnv {
    /// Starts the double with `crds/` installed, or connects to the real cluster named by
    /// `ECR_OPERATOR_TEST_KUBECONFIG` and applies `crds/` there.
    pub async fn start() -> Result<KubeEnv> {
        match std::env::var_os(KUBECONFIG_ENV) {
            Some(path) => Self::real_cluster(&path.to_string_lossy()).await,
            None => Self::double().await,
        }
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
        })
    }

    async fn real_cluster(path: &str) -> Result<KubeEnv> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| Error::Double(format!("{KUBECONFIG_ENV}={path}: {e}")))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| Error::Double(format!("{KUBECONFIG_ENV}={path}: {e}")))?;
        let client = kube::Client::try_from(config)?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let dir = workspace_root().join("crds");
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        for entry in entries.filter_map(std::result::Result::ok) {
            let path = entry.path();
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let crd: CustomResourceDefinition =
                serde_yaml::from_str(&text).map_err(|e| Error::Io {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(
                &name,
                &PatchParams::apply("ecr-operator-tests").force(),
                &Patch::Apply(&crd),
            )
            .await?;
        }
        Ok(KubeEnv {
            client,
            server: None,
        })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The double, when the test runs against it.
    pub fn server(&self) -> Option<&ApiServer> {
        self.server.as_ref()
    }

    /// Creates a fresh namespace `PREFIX-N` (unique per process, so tests sharing a real
    /// cluster do not collide) and returns its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let n = NAMESPACE_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        self.ensure_namespace(&name).await?;
        Ok(name)
    }

    /// Creates a namespace if it does not exist.
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
