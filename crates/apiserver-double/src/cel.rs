//! `x-kubernetes-validations` CEL rules, evaluated with `kube-cel` (the library behind kube's
//! `cel` feature).

use serde_json::Value;

use crate::{schema::type_name, status::Cause};

/// The compiled CEL rules of one CRD version's schema.
pub(crate) struct CelRules {
    compiled: kube_cel::CompiledSchema,
}

impl std::fmt::Debug for CelRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelRules").finish_non_exhaustive()
    }
}

fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => {
            map.contains_key("x-kubernetes-validations") || map.values().any(has_rules)
        }
        Value::Array(items) => items.iter().any(has_rules),
        _ => false,
    }
}

impl CelRules {
    /// Compiles every rule of the schema; `Ok(None)` when it has none. Errors are the messages
    /// of rules (or `messageExpression`s) that do not compile, as the real server rejects such a
    /// CRD at registration.
    pub fn compile(schema: &Value) -> Result<Option<Self>, Vec<String>> {
        if !has_rules(schema) {
            return Ok(None);
        }
        let compiled = kube_cel::compile_schema(schema);
        let errors: Vec<String> = compiled
            .compilation_errors()
            .iter()
            .map(|e| e.to_string())
            .collect();
        if errors.is_empty() {
            Ok(Some(Self { compiled }))
        } else {
            Err(errors)
        }
    }

    /// Evaluates the rules on `object` (with `old` for transition rules on updates).
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        match kube_cel::validate_compiled(&self.compiled, object, old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .into_iter()
                .map(|e| {
                    let type_of = value_at(object, &e.field_path)
                        .map(type_name)
                        .unwrap_or("object");
                    let reason = e.reason.unwrap_or_else(|| "FieldValueInvalid".to_string());
                    let message = match reason.as_str() {
                        "FieldValueForbidden" => format!("Forbidden: {}", e.message),
                        "FieldValueRequired" => format!("Required value: {}", e.message),
                        "FieldValueDuplicate" => format!("Duplicate value: \"{type_of}\""),
                        _ => format!("Invalid value: \"{type_of}\": {}", e.message),
                    };
                    Cause {
                        reason,
                        message,
                        field: e.field_path,
                    }
                })
                .collect(),
        }
    }
}

/// Finds the value at a field path such as `spec.items[0].name`.
fn value_at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = object;
    if path.is_empty() {
        return Some(cur);
    }
    for seg in path.split('.') {
        let (name, indexes) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let idx = idx.trim_end_matches(']');
            cur = match idx.parse::<usize>() {
                Ok(i) => cur.get(i)?,
                Err(_) => cur.get(idx.trim_matches('"'))?,
            };
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn rules_are_shareable() {
        assert_send_sync::<CelRules>();
    }

    #[test]
    fn transition_rule_and_message() {
        let schema = json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": {"enc": {"type": "string"}, "n": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.n >= 0", "message": "n must not be negative"},
                    {"rule": "self.enc == oldSelf.enc", "message": "enc is immutable"}
                ]
            }}
        });
        let rules = CelRules::compile(&schema)
            .expect("compiles")
            .expect("has rules");
        let old = json!({"spec": {"enc": "AES256", "n": 1}});
        assert!(rules.validate(&old, None).is_empty());
        let new = json!({"spec": {"enc": "KMS", "n": -1}});
        let errs = rules.validate(&new, Some(&old));
        let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert!(
            msgs.contains(&"Invalid value: \"object\": n must not be negative"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"Invalid value: \"object\": enc is immutable"),
            "{msgs:?}"
        );
        assert!(errs.iter().all(|e| e.field == "spec"));
    }

    #[test]
    fn value_paths() {
        let v = json!({"a": {"b": [{"c": 1}]}});
        assert_eq!(value_at(&v, "a.b[0].c"), Some(&json!(1)));
        assert_eq!(value_at(&v, "a.x"), None);
    }
}
