//! What the scenarios share: errors, waiting on conditions, counting calls, percentiles.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Testbed(#[from] testbed::Error),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("API server double: {0}")]
    Double(#[from] apiserver_double::Error),
    #[error("ECR {operation}: {message}")]
    Ecr { operation: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("timed out after {seconds:.0} s waiting for {what}")]
    Timeout { what: String, seconds: f64 },
    #[error("{0}")]
    Scenario(String),
}

impl BenchError {
    pub fn io(path: &Path, e: impl std::fmt::Display) -> BenchError {
        BenchError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn ecr(operation: &str, e: impl std::fmt::Debug) -> BenchError {
        BenchError::Ecr {
            operation: operation.to_string(),
            message: format!("{e:?}"),
        }
    }
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

pub fn workspace_root() -> PathBuf {
    testbed::workspace_root()
}

/// The API server double with the CRDs and the namespaces the scenarios use. Its watch history
/// holds every event of a 10 000-object run (creates, finalizers, status), so no watcher has to
/// re-list for lack of history.
pub async fn double() -> Result<(apiserver_double::ApiServer, kube::Client)> {
    let server = apiserver_double::ApiServer::builder()
        .history_capacity(200_000)
        .namespace(crate::repos::NAMESPACE)
        .namespace("ecr-operator-system")
        .start()
        .await?;
    server.install_crds_from_dir(workspace_root().join("crds"))?;
    let client = server.client()?;
    grant_everything(&client).await?;
    Ok((server, client))
}

/// A RepositoryAccessPolicy granting every namespace every repository name, as the cluster admin
/// of a single-team cluster would write: the benchmarks measure convergence, not tenancy, and
/// name their repositories freely.
pub async fn grant_everything(client: &kube::Client) -> Result<()> {
    let policy: ecr_operator::api::RepositoryAccessPolicy =
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ecr.operator.dev/v1alpha1",
            "kind": "RepositoryAccessPolicy",
            "metadata": {"name": "bench-everything"},
            "spec": {
                "namespaces": {"selector": {}},
                "repositories": ["*"],
                "allowAdoption": true,
            },
        }))
        .map_err(|e| BenchError::Scenario(format!("the bench's access policy: {e}")))?;
    let api = kube::Api::<ecr_operator::api::RepositoryAccessPolicy>::all(client.clone());
    match api.create(&Default::default(), &policy).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(BenchError::Scenario(format!(
            "creating the bench's access policy: {e}"
        ))),
    }
}

/// Polls `check` every `every` until it yields `Some`; fails after `timeout`. Timing waits poll
/// often (a few ms) so the measured moment is the moment the condition became true.
pub async fn poll<T, F, Fut>(
    what: &str,
    every: Duration,
    timeout: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Timeout {
                what: what.to_string(),
                seconds: timeout.as_secs_f64(),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Server-side ECR call counts (moto's), by operation.
pub type Calls = BTreeMap<String, u64>;

pub fn calls_delta(before: &Calls, after: &Calls) -> Calls {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n.saturating_sub(*before.get(op).unwrap_or(&0))))
        .filter(|(_, n)| *n > 0)
        .collect()
}

pub fn total(calls: &Calls) -> u64 {
    calls.values().sum()
}

/// Successful-or-not calls of operations that change state, by moto's count.
pub fn writes(calls: &Calls) -> u64 {
    calls
        .iter()
        .filter(|(op, _)| ecr_operator::registry::WRITE_OPERATIONS.contains(&op.as_str()))
        .map(|(_, n)| n)
        .sum()
}

pub fn describe(calls: &Calls) -> String {
    calls
        .iter()
        .map(|(op, n)| format!("{op}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ready=True at the current generation, read from the stored JSON.
pub fn is_ready(obj: &Value) -> bool {
    let generation = obj["metadata"]["generation"].as_i64();
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == "Ready"
                && c["status"] == "True"
                && (generation.is_none() || c["observedGeneration"].as_i64() == generation)
        })
    })
}

/// The `q` quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
