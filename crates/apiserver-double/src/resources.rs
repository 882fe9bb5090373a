//! The resources the double serves: built-in kinds and those of installed CRDs.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

use crate::{
    cel::CelRules,
    schema::SchemaNode,
    status::{ApiError, Cause},
};

/// Behaviour that differs between kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    /// Nothing special.
    None,
    /// `v1 Namespace`: gets `status.phase: Active`.
    Namespace,
    /// `v1 Secret`: `stringData` folded into `data`.
    Secret,
    /// `v1 Pod`: starts with `status.phase: Pending`.
    Pod,
    /// `apiextensions.k8s.io/v1 CustomResourceDefinition`: installs resources.
    Crd,
    /// A custom resource.
    Custom,
}

/// The compiled schema of one CRD version.
#[derive(Debug)]
pub(crate) struct CrSchema {
    pub node: SchemaNode,
    pub cel: Option<CelRules>,
}

/// One served resource in one version.
#[derive(Debug)]
pub(crate) struct ResourceDef {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub has_generation: bool,
    pub special: Special,
    pub schema: Option<CrSchema>,
    pub selectable_fields: Vec<String>,
    /// The version objects are stored in (CRD storage version).
    pub storage_version: String,
}

impl ResourceDef {
    /// `group/version` or `version` for the core group.
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    /// The apiVersion objects are stored with.
    pub fn storage_api_version(&self) -> String {
        api_version(&self.group, &self.storage_version)
    }

    /// The key of the object collection shared by all versions.
    pub fn collection_key(&self) -> String {
        collection_key(&self.group, &self.plural)
    }

    /// Whether objects must be rewritten (apiVersion) when served in this version.
    pub fn needs_conversion(&self) -> bool {
        self.version != self.storage_version
    }

    fn discovery_entry(&self) -> Value {
        let mut entry = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            entry["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            entry["categories"] = json!(self.categories);
        }
        entry
    }
}

pub(crate) fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

pub(crate) fn collection_key(group: &str, plural: &str) -> String {
    crate::status::group_resource(group, plural)
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    generation: bool,
    special: Special,
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status: true,
        generation: false,
        special: Special::Namespace,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        status: true,
        generation: false,
        special: Special::Pod,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        special: Special::Secret,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        status: false,
        generation: false,
        special: Special::None,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        generation: false,
        special: Special::None,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        status: false,
        generation: false,
        special: Special::None,
    },
    Builtin {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        status: true,
        generation: false,
        special: Special::None,
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        generation: false,
        special: Special::None,
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        special: Special::None,
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "validatingwebhookconfigurations",
        kind: "ValidatingWebhookConfiguration",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        status: false,
        generation: true,
        special: Special::None,
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: "mutatingwebhookconfigurations",
        kind: "MutatingWebhookConfiguration",
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        status: false,
        generation: true,
        special: Special::None,
    },
    Builtin {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        status: true,
        generation: true,
        special: Special::None,
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        generation: true,
        special: Special::Crd,
    },
];

fn builtin_def(b: &Builtin) -> ResourceDef {
    ResourceDef {
        group: b.group.into(),
        version: b.version.into(),
        plural: b.plural.into(),
        singular: b.kind.to_ascii_lowercase(),
        kind: b.kind.into(),
        list_kind: format!("{}List", b.kind),
        namespaced: b.namespaced,
        short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
        categories: b.categories.iter().map(|s| s.to_string()).collect(),
        status_subresource: b.status,
        has_generation: b.generation,
        special: b.special,
        schema: None,
        selectable_fields: Vec::new(),
        storage_version: b.version.into(),
    }
}

/// Kubernetes version priority: GA before beta before alpha, higher numbers first, then others
/// alphabetically.
pub(crate) fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (2, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (1, n)
        } else {
            return None;
        };
        Some((level, major, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn crd_invalid(name: &str, field: &str, message: String) -> ApiError {
    ApiError::invalid(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    )
}

/// Builds the resource definitions (one per served version) of a CRD, validating it as far as
/// the double needs.
pub(crate) fn defs_from_crd(crd_value: &Value) -> Result<Vec<ResourceDef>, ApiError> {
    let crd: CustomResourceDefinition = serde_json::from_value(crd_value.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid CustomResourceDefinition: {e}")))?;
    let name = crd.metadata.name.clone().unwrap_or_default();
    let spec = &crd.spec;
    let names = &spec.names;
    let expected = format!("{}.{}", names.plural, spec.group);
    if name != expected {
        return Err(crd_invalid(
            &name,
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if spec.versions.is_empty() {
        return Err(crd_invalid(&name, "spec.versions", "Required value".into()));
    }
    let storage: Vec<&str> = spec
        .versions
        .iter()
        .filter(|v| v.storage)
        .map(|v| v.name.as_str())
        .collect();
    let [storage_version] = storage.as_slice() else {
        return Err(crd_invalid(
            &name,
            "spec.versions",
            "Invalid value: \"array\": must have exactly one version marked as storage version"
                .into(),
        ));
    };
    let namespaced = match spec.scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(crd_invalid(
                &name,
                "spec.scope",
                format!(
                    "Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
                ),
            ));
        }
    };
    let mut defs = Vec::new();
    for (i, version) in spec.versions.iter().enumerate() {
        if !version.served {
            continue;
        }
        let schema_value = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("invalid schema: {e}")))?;
        let schema = match schema_value {
            Some(schema_value) => {
                let field = format!("spec.versions[{i}].schema.openAPIV3Schema");
                let node = SchemaNode::compile(&schema_value)
                    .map_err(|e| crd_invalid(&name, &field, e))?;
                let cel = CelRules::compile(&schema_value).map_err(|errors| {
                    crd_invalid(
                        &name,
                        &field,
                        format!("Invalid value: \"object\": {}", errors.join("; ")),
                    )
                })?;
                Some(CrSchema { node, cel })
            }
            None => None,
        };
        defs.push(ResourceDef {
            group: spec.group.clone(),
            version: version.name.clone(),
            plural: names.plural.clone(),
            singular: names
                .singular
                .clone()
                .unwrap_or_else(|| names.kind.to_ascii_lowercase()),
            kind: names.kind.clone(),
            list_kind: names
                .list_kind
                .clone()
                .unwrap_or_else(|| format!("{}List", names.kind)),
            namespaced,
            short_names: names.short_names.clone().unwrap_or_default(),
            categories: names.categories.clone().unwrap_or_default(),
            status_subresource: version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            has_generation: true,
            special: Special::Custom,
            schema,
            selectable_fields: version
                .selectable_fields
                .as_ref()
                .map(|f| f.iter().map(|f| f.json_path.clone()).collect())
                .unwrap_or_default(),
            storage_version: (*storage_version).to_string(),
        });
    }
    Ok(defs)
}

/// All served resources, by (group, version, plural).
#[derive(Debug)]
pub(crate) struct Registry {
    defs: BTreeMap<(String, String, String), Arc<ResourceDef>>,
}

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Self {
        let defs = BUILTINS
            .iter()
            .map(|b| {
                (
                    (
                        b.group.to_string(),
                        b.version.to_string(),
                        b.plural.to_string(),
                    ),
                    Arc::new(builtin_def(b)),
                )
            })
            .collect();
        Self { defs }
    }

    /// Looks a resource up.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The served version of a collection that objects are stored in.
    pub fn storage_def(&self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .values()
            .find(|d| d.group == group && d.plural == plural && !d.needs_conversion())
            .or_else(|| {
                self.defs
                    .values()
                    .find(|d| d.group == group && d.plural == plural)
            })
            .cloned()
    }

    /// Replaces every version of the (group, plural) with `defs`.
    pub fn install(&mut self, group: &str, plural: &str, defs: Vec<ResourceDef>) {
        self.uninstall(group, plural);
        for def in defs {
            self.defs.insert(
                (def.group.clone(), def.version.clone(), def.plural.clone()),
                Arc::new(def),
            );
        }
    }

    /// Removes every version of (group, plural).
    pub fn uninstall(&mut self, group: &str, plural: &str) {
        self.defs
            .retain(|(g, _, p), _| !(g == group && p == plural));
    }

    /// Non-core groups with their versions, preferred first.
    fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (group, version, _) in self.defs.keys() {
            if !group.is_empty() {
                groups
                    .entry(group.clone())
                    .or_default()
                    .insert(version.clone());
            }
        }
        groups
            .into_iter()
            .map(|(g, versions)| {
                let mut versions: Vec<String> = versions.into_iter().collect();
                versions.sort_by(|a, b| version_priority(a, b));
                (g, versions)
            })
            .collect()
    }

    fn resources_in(&self, group: &str, version: &str) -> Vec<&Arc<ResourceDef>> {
        self.defs
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, d)| d)
            .collect()
    }

    /// Whether a group/version is served.
    pub fn serves(&self, group: &str, version: &str) -> bool {
        !self.resources_in(group, version).is_empty()
    }

    /// `/api/v1` or `/apis/{group}/{version}`: an `APIResourceList`.
    pub fn resource_list(&self, group: &str, version: &str) -> Value {
        let mut resources = Vec::new();
        for def in self.resources_in(group, version) {
            resources.push(def.discovery_entry());
            if def.status_subresource {
                resources.push(json!({
                    "name": format!("{}/status", def.plural),
                    "singularName": "",
                    "namespaced": def.namespaced,
                    "kind": def.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version(group, version),
            "resources": resources,
        })
    }

    fn group_entry(group: &str, versions: &[String]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        let preferred = versions.first().cloned().unwrap_or(Value::Null);
        json!({"name": group, "versions": versions, "preferredVersion": preferred})
    }

    /// `/apis`: an `APIGroupList`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, versions)| Self::group_entry(g, versions))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/{group}`: an `APIGroup`.
    pub fn group(&self, group: &str) -> Option<Value> {
        let groups = self.groups();
        let versions = groups.get(group)?;
        let mut entry = Self::group_entry(group, versions);
        entry["kind"] = json!("APIGroup");
        entry["apiVersion"] = json!("v1");
        Some(entry)
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2`) of the core group or of all other groups.
    pub fn aggregated(&self, core: bool) -> Value {
        let mut groups: Vec<(String, Vec<String>)> = if core {
            vec![(String::new(), vec!["v1".to_string()])]
        } else {
            self.groups().into_iter().collect()
        };
        groups.retain(|(g, _)| core || !g.is_empty());
        let items: Vec<Value> = groups
            .iter()
            .map(|(group, versions)| {
                let versions: Vec<Value> = versions
                    .iter()
                    .map(|version| {
                        let resources: Vec<Value> = self
                            .resources_in(group, version)
                            .iter()
                            .map(|d| {
                                let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
                                let subresources: Vec<Value> = if d.status_subresource {
                                    vec![json!({"subresource": "status", "responseKind": gvk, "verbs": ["get", "patch", "update"]})]
                                } else {
                                    Vec::new()
                                };
                                json!({
                                    "resource": d.plural,
                                    "responseKind": gvk,
                                    "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                                    "singularResource": d.singular,
                                    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                                    "shortNames": d.short_names,
                                    "categories": d.categories,
                                    "subresources": subresources,
                                })
                            })
                            .collect();
                        json!({"version": version, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": group}, "versions": versions})
            })
            .collect();
        json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        })
    }
}

impl Registry {
    /// Calls `f` for every served resource version.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<ResourceDef>)) {
        for def in self.defs.values() {
            f(def);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_order() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "foo", "v1beta1"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }

    #[test]
    fn builtin_discovery() {
        let r = Registry::builtin();
        let list = r.resource_list("", "v1");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert!(names.contains(&"pods/status"));
        assert!(r.group("apps").is_some());
    }
}
