//! An in-process Kubernetes API server double for tests, benchmarks and demos.
//!
//! It serves real HTTP on `127.0.0.1` to the unmodified [`kube::Client`]: discovery, CRUD,
//! merge / JSON / apply patches, the `status` subresource, generations, finalizers, label and
//! field selectors, paging, and watches with history replay, bookmarks and `410 Gone`.
//! Custom resources are pruned, defaulted and validated against their CRD's structural schema
//! and its `x-kubernetes-validations` CEL rules.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = apiserver_double::ApiServer::start().await?;
//! server.install_crds_from_dir("crds/")?;
//! let client: kube::Client = server.client()?;
//! // ... run the code under test against `client` ...
//! server.expire_watches(); // every watcher re-lists
//! server.stop().await;     // clients see connection errors
//! server.restart().await?; // same port, same state
//! # Ok(())
//! # }
//! ```
//!
//! See the crate's README for what the double does not implement.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apply;
mod cel;
mod error;
mod meta;
mod ops;
mod patch;
mod render;
mod resources;
mod routes;
mod schema;
mod selectors;
mod server;
mod status;
mod store;
mod watch;

pub use error::Error;
pub use server::{ApiServer, ApiServerBuilder, FaultsLanded};
