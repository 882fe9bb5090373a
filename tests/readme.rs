//! README.md's examples are real: every ```yaml block of its "## Resources" section deserializes
//! into the operator's type without losing a field, and the API server double (with the CRDs
//! from `crds/`, schema and CEL rules) accepts it.

use std::collections::BTreeSet;

use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::api::lifecycle_policy::LifecyclePolicy;
use ecr_operator::api::public_repository::PublicRepository;
use ecr_operator::api::pull_through_cache_rule::PullThroughCacheRule;
use ecr_operator::api::registry_policy::RegistryPolicy;
use ecr_operator::api::registry_settings::RegistrySettings;
use ecr_operator::api::registry_target::RegistryTarget;
use ecr_operator::api::replication_config::ReplicationConfig;
use ecr_operator::api::repository::Repository;
use ecr_operator::api::repository_access_policy::RepositoryAccessPolicy;
use ecr_operator::api::repository_creation_template::RepositoryCreationTemplate;
use ecr_operator::api::scan_policy::ScanPolicy;
use kube::api::{Api, PostParams};
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use testbed::kube_env::KubeEnv;

fn readme_section(title: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README.md has no ## {title}"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// The ```yaml blocks of `text`, each with the `### heading` it is under.
fn yaml_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            Some(block) if line.trim_start() == "```" => {
                blocks.push((heading.clone(), std::mem::take(block)));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.trim_start() == "```yaml" => current = Some(String::new()),
            None => {
                if let Some(h) = line.strip_prefix("### ") {
                    heading = h.trim().to_owned();
                }
            }
        }
    }
    assert!(current.is_none(), "unterminated ```yaml block");
    blocks
}

/// Every leaf of `want` is in `got` with the same value (a typo in a field name would be
/// dropped by serde and missing here).
fn missing(want: &Value, got: &Value, path: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                match g.get(k) {
                    Some(gv) => missing(v, gv, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                missing(wv, gv, &format!("{path}[{i}]"), out);
            }
        }
        (w, g) if w == g => {}
        (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => {}
        _ => out.push(format!("{path}: {want} != {got}")),
    }
}

fn typed<K: DeserializeOwned + Serialize>(value: &Value) -> K {
    let obj: K = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value:#}"));
    let back = serde_json::to_value(&obj).expect("serialize");
    let mut lost = Vec::new();
    missing(value, &back, "", &mut lost);
    assert!(
        lost.is_empty(),
        "fields lost by the Rust type: {lost:?}\n{value:#}"
    );
    obj
}

async fn create_cluster<K>(client: &kube::Client, obj: &K)
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    Api::<K>::all(client.clone())
        .create(&PostParams::default(), obj)
        .await
        .unwrap_or_else(|e| panic!("the API server refused {obj:?}: {e}"));
}

async fn create_namespaced<K>(client: &kube::Client, obj: &K)
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let ns = obj
        .meta()
        .namespace
        .clone()
        .expect("a namespace in the example");
    Api::<K>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), obj)
        .await
        .unwrap_or_else(|e| panic!("the API server refused {obj:?}: {e}"));
}

#[tokio::test]
async fn readme_resource_examples_pass_the_crd_schemas() {
    let blocks = yaml_blocks(&readme_section("Resources"));
    let kube = KubeEnv::start().await.unwrap();
    let client = kube.client();
    kube.ensure_namespace("team-a").await.unwrap();
    let mut kinds = BTreeSet::new();
    for (heading, text) in &blocks {
        let value: Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        assert_eq!(&kind, heading, "the example under ### {heading}");
        assert_eq!(value["apiVersion"], "ecr.operator.dev/v1alpha1");
        match kind.as_str() {
            "Repository" => create_namespaced(&client, &typed::<Repository>(&value)).await,
            "PublicRepository" => {
                create_namespaced(&client, &typed::<PublicRepository>(&value)).await
            }
            "LifecyclePolicy" => {
                create_namespaced(&client, &typed::<LifecyclePolicy>(&value)).await
            }
            "ReplicationConfig" => {
                create_cluster(&client, &typed::<ReplicationConfig>(&value)).await
            }
            "PullThroughCacheRule" => {
                create_cluster(&client, &typed::<PullThroughCacheRule>(&value)).await
            }
            "ScanPolicy" => create_cluster(&client, &typed::<ScanPolicy>(&value)).await,
            "RegistryPolicy" => create_cluster(&client, &typed::<RegistryPolicy>(&value)).await,
            "RegistrySettings" => create_cluster(&client, &typed::<RegistrySettings>(&value)).await,
            "RegistryTarget" => create_cluster(&client, &typed::<RegistryTarget>(&value)).await,
            "RepositoryCreationTemplate" => {
                create_cluster(&client, &typed::<RepositoryCreationTemplate>(&value)).await
            }
            "ImageScanReport" => create_cluster(&client, &typed::<ImageScanReport>(&value)).await,
            "RepositoryAccessPolicy" => {
                create_cluster(&client, &typed::<RepositoryAccessPolicy>(&value)).await
            }
            other => panic!("README example of unknown kind {other:?}"),
        }
        kinds.insert(kind);
    }
    let all: BTreeSet<String> = [
        "Repository",
        "LifecyclePolicy",
        "ReplicationConfig",
        "PullThroughCacheRule",
        "ScanPolicy",
        "ImageScanReport",
        "RepositoryAccessPolicy",
        "RegistryPolicy",
        "RegistrySettings",
        "RegistryTarget",
        "RepositoryCreationTemplate",
        "PublicRepository",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds, all, "one example per kind");
}

#[test]
fn readme_keeps_its_quick_start_and_links_install_docs() {
    let quick = readme_section("Quick start");
    assert!(quick.contains("bash scripts/demo.sh"), "{quick}");
    for title in ["Admission policy", "Metrics", "Troubleshooting"] {
        assert!(!readme_section(title).trim().is_empty());
    }
    assert!(readme_section("Troubleshooting").contains("docs/install.md"));
    assert!(readme_section("Install").contains("docs/install.md"));
}
