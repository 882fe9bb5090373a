//! `crds/` is exactly what `ecr-operator crds` prints, every file is a valid CRD, and every CEL
//! rule in it compiles within the API server's cost budget.

use std::path::Path;

use ecr_operator::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

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
            let schema = serde_json::to_value(
                version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .unwrap(),
            )
            .unwrap();
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
