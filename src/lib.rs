//! ecr-operator: manage Amazon ECR declaratively from Kubernetes.
#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod cluster_id;
pub mod controllers;
pub mod image;
pub mod leader;
pub mod lifecycle;
pub mod registry;
pub mod scope;
pub mod telemetry;
pub mod tenancy;
