//! Pieces shared by several kinds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The status fields every kind carries.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` is always present once the operator has seen the object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A reference to an object by name, in the referrer's own namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Optional; when set it must be the referrer's own namespace. Cross-namespace references
    /// are refused (a namespace's users must not reach another namespace's repositories). The
    /// field exists so that such a reference is reported instead of silently pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

impl LocalObjectReference {
    /// An error message when the reference leaves `own_namespace`.
    pub fn cross_namespace(&self, field: &str, own_namespace: &str) -> Option<String> {
        self.namespace
            .as_deref()
            .filter(|ns| *ns != own_namespace)
            .map(|ns| {
                format!(
                    "{field}.namespace {ns} is not this object's namespace {own_namespace}: cross-namespace references are refused"
                )
            })
    }
}

/// A Kubernetes label selector's schema with every string, list and map bounded, so that CEL
/// rules around it stay within the API server's cost budget (k8s-openapi's own schema has no
/// bounds). The bounds are Kubernetes' own: label values 63 characters, keys a 253-character
/// prefix, `/` and a 63-character name.
pub fn label_selector_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A label selector: matchLabels and matchExpressions are ANDed; empty selects everything.",
        "type": "object",
        "properties": {
            "matchLabels": {
                "type": "object",
                "maxProperties": 64,
                "additionalProperties": {"type": "string", "maxLength": 63}
            },
            "matchExpressions": {
                "type": "array",
                "maxItems": 64,
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string", "minLength": 1, "maxLength": 317},
                        "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                        "values": {
                            "type": "array",
                            "maxItems": 64,
                            "items": {"type": "string", "maxLength": 63}
                        }
                    }
                }
            }
        }
    })
}
