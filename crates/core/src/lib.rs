//! ecr-operator's pure core: what the operator decides, without the I/O it decides about.
//!
//! Everything here is a function of its inputs (the clock is passed in): the custom resource
//! types ([`api`]), the lifecycle evaluator ([`lifecycle`]), image references, patterns and label
//! selectors ([`image`]), the namespace-to-repository grants ([`tenancy`]), repository and
//! registry policy documents ([`repository_policy`], [`registry_policy`]) and the admission
//! decision ([`decision`], [`review`]). The operator crate adds Kubernetes and ECR I/O around it; the fuzzers and the bench build it
//! without the AWS SDK.
#![forbid(unsafe_code)]

pub mod api;
pub mod decision;
pub mod image;
pub mod lifecycle;
pub mod registry_policy;
pub mod repository_policy;
pub mod review;
pub mod tenancy;
pub mod text;
