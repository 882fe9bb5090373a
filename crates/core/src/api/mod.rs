//! Custom resource types (group `ecr.operator.dev`, version `v1alpha1`).
//!
//! This module depends on nothing else in the crate: types, schema and CEL rules only.

pub mod common;
pub mod conditions;
pub mod image_scan_report;
pub mod lifecycle_policy;
pub mod public_repository;
pub mod pull_through_cache_rule;
pub mod registry_policy;
pub mod registry_settings;
pub mod registry_target;
pub mod replication_config;
pub mod repository;
pub mod repository_access_policy;
pub mod repository_creation_template;
pub mod scan_policy;
pub mod tags;

pub use image_scan_report::ImageScanReport;
pub use lifecycle_policy::LifecyclePolicy;
pub use public_repository::PublicRepository;
pub use pull_through_cache_rule::PullThroughCacheRule;
pub use registry_policy::RegistryPolicy;
pub use registry_settings::RegistrySettings;
pub use registry_target::RegistryTarget;
pub use replication_config::ReplicationConfig;
pub use repository::Repository;
pub use repository_access_policy::RepositoryAccessPolicy;
pub use repository_creation_template::RepositoryCreationTemplate;
pub use scan_policy::ScanPolicy;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD, with the file name it has in `crds/`.
pub fn all_crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("repository.yaml", Repository::crd()),
        ("lifecyclepolicy.yaml", LifecyclePolicy::crd()),
        ("replicationconfig.yaml", ReplicationConfig::crd()),
        ("pullthroughcacherule.yaml", PullThroughCacheRule::crd()),
        ("scanpolicy.yaml", ScanPolicy::crd()),
        ("imagescanreport.yaml", ImageScanReport::crd()),
        ("repositoryaccesspolicy.yaml", RepositoryAccessPolicy::crd()),
        ("registrypolicy.yaml", RegistryPolicy::crd()),
        ("registrysettings.yaml", RegistrySettings::crd()),
        (
            "repositorycreationtemplate.yaml",
            RepositoryCreationTemplate::crd(),
        ),
        ("publicrepository.yaml", PublicRepository::crd()),
        ("registrytarget.yaml", RegistryTarget::crd()),
    ]
}

/// The API resource of one of our kinds by its name (`Repository`, ...): for manifests read as
/// untyped objects (samples, tests, the demo).
pub fn resource_for(kind: &str) -> Option<kube::core::ApiResource> {
    use kube::core::ApiResource;
    Some(match kind {
        "Repository" => ApiResource::erase::<Repository>(&()),
        "LifecyclePolicy" => ApiResource::erase::<LifecyclePolicy>(&()),
        "ReplicationConfig" => ApiResource::erase::<ReplicationConfig>(&()),
        "PullThroughCacheRule" => ApiResource::erase::<PullThroughCacheRule>(&()),
        "ScanPolicy" => ApiResource::erase::<ScanPolicy>(&()),
        "ImageScanReport" => ApiResource::erase::<ImageScanReport>(&()),
        "RepositoryAccessPolicy" => ApiResource::erase::<RepositoryAccessPolicy>(&()),
        "RegistryPolicy" => ApiResource::erase::<RegistryPolicy>(&()),
        "RegistrySettings" => ApiResource::erase::<RegistrySettings>(&()),
        "RepositoryCreationTemplate" => ApiResource::erase::<RepositoryCreationTemplate>(&()),
        "PublicRepository" => ApiResource::erase::<PublicRepository>(&()),
        "RegistryTarget" => ApiResource::erase::<RegistryTarget>(&()),
        _ => return None,
    })
}

/// The YAML that `ecr-operator crds` prints and `crds/` holds for one CRD.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(crd).map(|s| format!("---\n{s}"))
}
