//! The admission webhook: the (pure) admission decision, the scan-report cache it reads, and the
//! HTTPS server that answers the API server. Image references, patterns and label selectors,
//! which the controllers share, are in [`crate::image`].
//!
//! - [`server`]: the HTTPS server, [`serve`] is the entry point of `ecr-operator run`; it
//!   answers with `handler` (the request path) on the connections of `listener`.
//! - [`review`]: AdmissionReview in, AdmissionResponse out; which images a request introduces.
//! - [`cache`]: watches of ImageScanReports, ScanPolicies and Namespaces, served as snapshots.
//! - [`report_store`]: the ImageScanReports, compact, as the decision and the gauges read them.
//! - [`resolver`]: tag-to-digest resolution for tags the cache does not know.
//! - [`tls`]: serving certificates, from files (reloaded on change) or generated.
//! - [`cert_secret`]: a generated certificate shared by every replica through a Secret.
//! - [`metrics`]: decision counters and the latency histogram.
//! - [`reachability`]: the probe that proves the API server reaches the webhook.
//! - [`decision`]: the pure decision (image references, patterns and selectors are in
//!   [`crate::image`]).

pub mod cache;
pub mod cert_secret;
mod handler;
mod listener;
pub mod metrics;
pub mod reachability;
pub mod report_store;
pub mod resolver;
pub mod server;
pub mod tls;

// The pure parts live in the core crate.
pub use ecr_operator_core::{decision, review};

pub use resolver::{DigestResolver, ResolveError};
pub use server::{
    CertificateSource, FailurePolicy, WebhookConfig, WebhookError, WebhookReadiness, WebhookServer,
    serve,
};
