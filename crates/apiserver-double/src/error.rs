//! Errors of the server handle (start, stop, installing CRDs, building a client).

use std::{net::SocketAddr, path::PathBuf};

/// An error of the [`ApiServer`](crate::ApiServer) handle itself.
///
/// Errors that a client sees over HTTP are Kubernetes `Status` objects, not this type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound.
    #[error("failed to bind the API server double on {addr}: {source}")]
    Bind {
        /// The address that was tried.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CRD file or directory could not be read.
    #[error("failed to read {path}: {source}")]
    ReadFile {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CRD file is not valid YAML or JSON.
    #[error("failed to parse {path}: {source}")]
    ParseYaml {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_yaml::Error,
    },
    /// A CustomResourceDefinition was rejected (the message is the API server's).
    #[error("CustomResourceDefinition rejected: {0}")]
    InvalidCrd(String),
    /// An object given to [`seed`](crate::ApiServer::seed) was refused (the message is the
    /// API server's, as a create or a status update through HTTP would have it).
    #[error("{name} refused: {message}")]
    Refused {
        /// The object's name.
        name: String,
        /// Why.
        message: String,
    },
    /// A value could not be converted to or from JSON.
    #[error("JSON conversion failed: {0}")]
    Json(#[from] serde_json::Error),
    /// The server URL could not be parsed (should not happen).
    #[error("invalid server URL: {0}")]
    Url(#[from] http::uri::InvalidUri),
    /// The kube client could not be built.
    #[error("failed to build a kube client: {0}")]
    Client(#[from] kube::Error),
    /// `restart()` was called while the server is running.
    #[error("the API server double is already running")]
    AlreadyRunning,
}
