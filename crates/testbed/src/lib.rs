//! Test harness shared by the integration tests, the demo and the benchmarks.
//!
//! - [`moto::Moto`]: moto in server mode, started through our launcher
//!   (`tests/support/moto_launcher.py`), which adds paging, pull-through cache rules and a
//!   runtime fault switch to moto's ECR backend.
//! - [`kube_env::KubeEnv`]: the in-process API server double with the operator's CRDs installed,
//!   or a real cluster when `ECR_OPERATOR_TEST_KUBECONFIG` is set.
//! - [`envtest::EnvTest`]: a real kube-apiserver and etcd when `KUBEBUILDER_ASSETS` names them
//!   (shared by a process's tests, or one of a test's own, e.g. with an audit log: [`audit`]).
//! - [`wait`]: waiting on conditions with deadlines.
//! - [`proxy::TcpProxy`]: a TCP proxy a test can cut, to partition one client from a server.
//! - [`admission`]: AdmissionReview bodies as the API server sends them.
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod envtest;
mod http;
pub mod images;
pub mod kube_env;
pub mod moto;
pub mod proxy;
pub mod wait;

use std::path::PathBuf;

/// The repository root (this crate lives in `crates/testbed`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool from `.venv/bin` (what `scripts/setup-venv.sh` installs: kubectl, go), else the
/// name alone, found on PATH.
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = workspace_root().join(".venv/bin").join(name);
    if venv.exists() {
        venv
    } else {
        PathBuf::from(name)
    }
}

/// Harness failures; tests turn them into panics with the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "moto is not installed: run `bash scripts/setup-venv.sh` (creates .venv with moto[server]) \
         or set ECR_OPERATOR_PYTHON to a python that has moto[server] ({0})"
    )]
    MotoMissing(String),
    #[error("moto launcher failed: {0}")]
    MotoStart(String),
    #[error("HTTP call to {url} failed: {message}")]
    Http { url: String, message: String },
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("real API server (envtest): {0}")]
    EnvTest(String),
    /// etcd or the API server exited at start: its port was taken after it was chosen.
    #[error("real API server (envtest): a port was taken before the server bound it: {0}")]
    EnvTestPortTaken(String),
    #[error("API server double: {0}")]
    Double(String),
    #[error("reading {path}: {message}")]
    Io { path: String, message: String },
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
