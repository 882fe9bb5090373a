//! `crds/` is exactly what `ecr-operator crds` prints, every file is a valid CRD, and every CEL
//! rule in it compiles within the API server's cost budget.

use std::path::Path;

use ecr_operator::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

fn crds_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/crds"))
}

#[test]
fn crds_dir_matches_generated() {
    let generated = api::all_crds();
    for (file, crd) in &generated {
        let want = api::crd_yaml(crd).unwrap();
        let have = std::fs::read_to_string(crds_dir().join(file))
            .unwrap_or_else(|e| panic!("crds/{file}: {e}"));
        assert!(
            have == want,
            "crds/{file} is stale: run `cargo run -- crds --dir crds`"
        );
    }
    let files = std::fs::read_dir(crds_dir()).unwrap().count();
    assert_eq!(
        files,
        generated.len(),
        "crds/ holds files no kind generates"
    );
}

/// A CRD version's `openAPIV3Schema` as JSON.
fn openapi_schema(
    version: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion,
) -> serde_json::Value {
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema.expect("every version has a schema")).unwrap()
}

fn schema_nodes<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            out.push(v);
            for child in map.values() {
                schema_nodes(child, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| schema_nodes(i, out)),
        _ => {}
    }
}

#[test]
fn every_crd_file_deserializes_and_its_cel_compiles() {
    let mut rules_seen = 0;
    for entry in std::fs::read_dir(crds_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(crd.spec.group, "ecr.operator.dev");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["ecr".to_string()][..])
        );
        for version in &crd.spec.versions {
            assert!(
                version
                    .subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some()
            );
            let columns = version
                .additional_printer_columns
                .as_deref()
                .unwrap_or_default();
            assert!(columns.len() >= 2, "{}: printer columns", path.display());
            let schema = openapi_schema(version);
            let compiled = kube_cel::compile_schema(&schema);
            assert!(
                !compiled.has_errors(),
                "{}: CEL compile errors: {:?}",
                path.display(),
                compiled.compilation_errors()
            );
            let mut nodes = Vec::new();
            schema_nodes(&schema, &mut nodes);
            for node in nodes {
                let Some(rules) = node
                    .get("x-kubernetes-validations")
                    .and_then(|r| r.as_array())
                else {
                    continue;
                };
                // Cost is estimated against the schema node the rule is attached to, whose
                // maxItems / maxLength bound the rule's comprehensions.
                let node_schema = kube_cel::compile_schema(node);
                for rule in rules {
                    let text = rule["rule"].as_str().unwrap();
                    rules_seen += 1;
                    let cost: Vec<_> = kube_cel::estimate_rule_cost(text, &node_schema)
                        .into_iter()
                        .filter(|w| w.kind == kube_cel::WarningKind::CostExceeded)
                        .collect();
                    assert!(cost.is_empty(), "{}: rule {text}: {cost:?}", path.display());
                }
            }
            // Status is the subresource's; the schema must be structural (no untyped nodes
            // except explicit preserve-unknown-fields).
            assert!(schema["properties"]["status"].is_object());
        }
    }
    assert!(
        rules_seen >= 20,
        "expected the CEL rules of every kind, saw {rules_seen}"
    );
}

/// Every unbounded string, list or map under `spec`, by JSON path. The API server estimates a
/// CEL rule's cost from the declared bounds of what it reads and refuses a CRD whose rules may
/// exceed its budget; bounding everything keeps that true as rules are added.
fn unbounded(schema: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    let bounded_by = |key: &str| schema.get(key).is_some();
    match schema.get("type").and_then(|t| t.as_str()) {
        Some("string") if !bounded_by("maxLength") && !bounded_by("enum") => {
            out.push(format!("{path}: string without maxLength"))
        }
        Some("array") => {
            if !bounded_by("maxItems") {
                out.push(format!("{path}: list without maxItems"));
            }
            if let Some(items) = schema.get("items") {
                unbounded(items, &format!("{path}[]"), out);
            }
        }
        Some("object") => {
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                if !bounded_by("maxProperties") {
                    out.push(format!("{path}: map without maxProperties"));
                }
                unbounded(values, &format!("{path}{{}}"), out);
            }
            for (name, child) in schema
                .get("properties")
                .and_then(|p| p.as_object())
                .into_iter()
                .flatten()
            {
                unbounded(child, &format!("{path}.{name}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_spec_string_list_and_map_is_bounded() {
    let mut found = Vec::new();
    for (file, crd) in api::all_crds() {
        for version in &crd.spec.versions {
            let schema = openapi_schema(version);
            unbounded(
                &schema["properties"]["spec"],
                &format!("{file}: spec"),
                &mut found,
            );
        }
    }
    assert!(found.is_empty(), "unbounded fields:\n{}", found.join("\n"));
}

/// The CRDs of every manifest that ships them: `crds/`, the chart's `crds/`, and what
/// `kubectl kustomize config/default` renders.
fn shipped_crds() -> Vec<(String, CustomResourceDefinition)> {
    let root = testbed::workspace_root();
    let mut out = Vec::new();
    for dir in ["crds", "charts/ecr-operator/crds"] {
        for crd in testbed::kube_env::crds_in(&root.join(dir)).unwrap() {
            out.push((
                format!("{dir}: {}", crd.metadata.name.clone().unwrap()),
                crd,
            ));
        }
    }
    let kubectl = testbed::venv_tool("kubectl");
    let rendered = std::process::Command::new(&kubectl)
        .args(["kustomize", "config/default"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (bash scripts/setup-venv.sh installs it)",
                kubectl.display()
            )
        });
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    for document in serde_yaml::Deserializer::from_slice(&rendered.stdout) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(document).unwrap();
        if value["kind"] == "CustomResourceDefinition" {
            let crd: CustomResourceDefinition = serde_yaml::from_value(value).unwrap();
            out.push((
                format!(
                    "kustomize config/default: {}",
                    crd.metadata.name.clone().unwrap()
                ),
                crd,
            ));
        }
    }
    out
}

/// What `kubectl apply --server-side` does with each shipped CRD, on a real API server: it
/// must accept every one (it applies the CEL cost budget that the double does not).
#[tokio::test]
async fn every_shipped_crd_installs_on_a_real_api_server() {
    use kube::api::{Api, Patch, PatchParams};
    let kube = testbed::kube_env::KubeEnv::require_real().await;
    let api: Api<CustomResourceDefinition> = Api::all(kube.client());
    let shipped = shipped_crds();
    assert_eq!(
        shipped.len(),
        3 * api::all_crds().len(),
        "every kind in each manifest"
    );
    let mut refused = Vec::new();
    for (source, crd) in &shipped {
        let name = crd.metadata.name.clone().unwrap();
        let params = PatchParams::apply("crd-install-test").force().dry_run();
        if let Err(e) = api.patch(&name, &params, &Patch::Apply(crd)).await {
            refused.push(format!("{source}: {e}"));
        }
    }
    assert!(
        refused.is_empty(),
        "refused by the real API server:\n{}",
        refused.join("\n")
    );
    // And the real install (KubeEnv::real applied crds/): every kind is served.
    for (_, crd) in api::all_crds() {
        let served = api
            .get(crd.metadata.name.as_deref().unwrap())
            .await
            .unwrap();
        let established = served
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(
            established,
            "{} not Established",
            crd.metadata.name.unwrap()
        );
    }
}

/// A CRD over the cost budget is refused by the real API server: the test above can fail.
#[tokio::test]
async fn a_crd_over_the_cel_cost_budget_is_refused_by_the_real_api_server() {
    use kube::api::{Api, Patch, PatchParams};
    let kube = testbed::kube_env::KubeEnv::require_real().await;
    let api: Api<CustomResourceDefinition> = Api::all(kube.client());
    let mut crd = api::Repository::crd();
    let mut schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    // The tag values' bound removed: `matches()` over unbounded values in a map of 49.
    schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["tags"]["additionalProperties"]
        .as_object_mut()
        .unwrap()
        .remove("maxLength");
    crd.spec.versions[0].schema = serde_json::from_value(schema).unwrap();
    let params = PatchParams::apply("crd-install-test").force().dry_run();
    let err = api
        .patch(
            "repositories.ecr.operator.dev",
            &params,
            &Patch::Apply(&crd),
        )
        .await
        .expect_err("an unbounded map under matches() must be refused");
    assert!(err.to_string().contains("cost"), "{err}");
}
