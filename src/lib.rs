//! ecr-operator: manage Amazon ECR declaratively from Kubernetes.
#![forbid(unsafe_code)]

pub mod admission;
pub mod cluster_id;
pub mod controllers;
pub mod leader;
pub mod net;
pub mod registry;
pub mod scope;
pub mod telemetry;

// The pure core, at the paths the operator has always used.
pub use ecr_operator_core::{
    api, image, lifecycle, registry_policy, repository_policy, tenancy, text,
};
