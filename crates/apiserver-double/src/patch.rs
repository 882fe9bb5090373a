//! Patch flavours: JSON merge patch, JSON patch, strategic merge (as merge) and server-side apply
//! (as a merge of the applied fields).

use serde_json::Value;

use crate::status::ApiError;

/// The patch types the API server accepts, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`, applied as a merge patch.
    StrategicMerge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchType {
    /// From a `Content-Type` header.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::StrategicMerge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// RFC 7386 merge: objects merge recursively, `null` removes, everything else replaces.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch_map) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(target_map) = target {
                for (key, value) in patch_map {
                    if value.is_null() {
                        target_map.remove(key);
                    } else {
                        merge(target_map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Parses a request body for a patch type (apply bodies may be YAML).
pub(crate) fn parse_body(patch_type: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            if patch_type == PatchType::Apply {
                serde_yaml::from_slice::<Value>(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
            } else {
                Err(ApiError::bad_request(format!(
                    "error decoding patch: {json_err}"
                )))
            }
        }
    }
}

/// Applies `patch` of `patch_type` to a copy of `current`.
pub(crate) fn apply_patch(
    patch_type: PatchType,
    current: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let mut target = current.clone();
    match patch_type {
        PatchType::Merge | PatchType::StrategicMerge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            merge(&mut target, patch);
        }
        PatchType::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("apply body must be an object"));
            }
            merge(&mut target, patch);
        }
        PatchType::Json => {
            let ops: json_patch::Patch =
                serde_json::from_value(kubernetes_json_patch(current, patch))
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut target, &ops)
                .map_err(|e| ApiError::unprocessable(e.to_string()))?;
        }
    }
    Ok(target)
}

/// The API server's JSON patch library lets `{"op": "test", "value": null}` pass on a missing
/// member of an existing object (kube's finalizer helper relies on it); RFC 6902 does not. Such
/// ops are dropped before applying the patch.
fn kubernetes_json_patch(current: &Value, patch: &Value) -> Value {
    let Some(ops) = patch.as_array() else {
        return patch.clone();
    };
    let passes_as_missing = |op: &Value| -> bool {
        if op.get("op").and_then(Value::as_str) != Some("test")
            || !op.get("value").is_some_and(Value::is_null)
        {
            return false;
        }
        let Some(path) = op.get("path").and_then(Value::as_str) else {
            return false;
        };
        if current.pointer(path).is_some() {
            return false;
        }
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        current.pointer(parent).is_some_and(Value::is_object)
    };
    Value::Array(
        ops.iter()
            .filter(|op| !passes_as_missing(op))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_semantics() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_test_failure_is_422() {
        let doc = json!({"metadata": {"finalizers": ["a"]}});
        let patch = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "b"}]);
        let err = apply_patch(PatchType::Json, &doc, &patch).expect_err("test op must fail");
        assert_eq!(err.code, 422);
    }

    #[test]
    fn test_null_on_missing_member_passes() {
        let doc = json!({"metadata": {"name": "x"}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
        ]);
        let out = apply_patch(PatchType::Json, &doc, &patch).expect("applies");
        assert_eq!(out["metadata"]["finalizers"], json!(["f"]));
        let patch = json!([{"op": "test", "path": "/missing/finalizers", "value": null}]);
        assert!(apply_patch(PatchType::Json, &doc, &patch).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml").ok(),
            Some(PatchType::Apply)
        );
        assert!(PatchType::from_content_type("text/plain").is_err());
    }
}
