//! How stored objects are served: in the requested version, in full or as metadata only.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use crate::{resources::ResourceDef, store::Obj};

/// Full objects, or `meta.k8s.io/v1` `PartialObjectMetadata`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rendering {
    Full,
    Metadata,
}

impl Rendering {
    /// From the `Accept` header.
    pub fn from_accept(accept: &str) -> Self {
        if accept.contains("as=PartialObjectMetadata") {
            Self::Metadata
        } else {
            Self::Full
        }
    }
}

/// One object as served by `def`.
pub(crate) fn render_object<'a>(
    def: &ResourceDef,
    object: &'a Value,
    rendering: Rendering,
) -> Cow<'a, Value> {
    match rendering {
        Rendering::Metadata => Cow::Owned(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
        Rendering::Full if def.needs_conversion() => {
            let mut converted = object.clone();
            if let Some(map) = converted.as_object_mut() {
                map.insert("apiVersion".into(), Value::String(def.api_version()));
            }
            Cow::Owned(converted)
        }
        Rendering::Full => Cow::Borrowed(object),
    }
}

#[derive(Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Value,
    items: Vec<Cow<'a, Value>>,
}

/// A list body (`FooList` or `PartialObjectMetadataList`).
pub(crate) fn list_body(
    def: &ResourceDef,
    items: &[Obj],
    rv: u64,
    continue_token: Option<String>,
    rendering: Rendering,
) -> Vec<u8> {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = Value::String(token);
    }
    let (kind, api_version) = match rendering {
        Rendering::Full => (def.list_kind.clone(), def.api_version()),
        Rendering::Metadata => (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        ),
    };
    let body = ListBody {
        kind,
        api_version,
        metadata,
        items: items
            .iter()
            .map(|o| render_object(def, o, rendering))
            .collect(),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}
