//! `x-kubernetes-validations` CEL rules, evaluated with `kube-cel` (the library behind kube's
//! `cel` feature).
//!
//! Updates ratchet as a real API server does (`CRDValidationRatcheting`, on by default since
//! Kubernetes 1.30): rules below a top-level field whose value did not change are not evaluated
//! again, so a status write or a finalizer patch does not re-run the spec's rules. Rules on the
//! object's root see every update. `matches()` patterns are compiled once per thread, as a real
//! server compiles a rule once (the `cel` crate is patched for it: `vendor/cel/PATCHED.md`).

use serde_json::Value;

use crate::{schema::type_name, status::Cause};

/// The compiled CEL rules of one CRD version's schema.
pub(crate) struct CelRules {
    /// Every rule: creates.
    whole: kube_cel::CompiledSchema,
    /// The root's own rules only (the rest of the schema kept for typing): every update.
    root: Option<kube_cel::CompiledSchema>,
    /// Each top-level property with rules, compiled on its own: updates that change it.
    parts: Vec<(String, kube_cel::CompiledSchema)>,
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
        let whole = kube_cel::compile_schema(schema);
        let errors: Vec<String> = whole
            .compilation_errors()
            .iter()
            .map(|e| e.to_string())
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let root = schema
            .get("x-kubernetes-validations")
            .is_some()
            .then(|| kube_cel::compile_schema(&without_nested_rules(schema)));
        let parts = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(_, sub)| has_rules(sub))
            .map(|(name, sub)| (name.clone(), kube_cel::compile_schema(sub)))
            .collect();
        Ok(Some(Self { whole, root, parts }))
    }

    /// Evaluates the rules on `object` (with `old` for transition rules and ratcheting on
    /// updates).
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        let Some(old) = old else {
            return causes(
                object,
                "",
                kube_cel::validate_compiled(&self.whole, object, None),
            );
        };
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            out.extend(causes(
                object,
                "",
                kube_cel::validate_compiled(root, object, Some(old)),
            ));
        }
        for (name, compiled) in &self.parts {
            let (Some(new_part), old_part) = (object.get(name), old.get(name)) else {
                continue;
            };
            if old_part == Some(new_part) {
                continue;
            }
            out.extend(causes(
                object,
                name,
                kube_cel::validate_compiled(compiled, new_part, old_part),
            ));
        }
        out
    }
}

/// `schema` with the `x-kubernetes-validations` of everything below its root removed.
fn without_nested_rules(schema: &Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("x-kubernetes-validations");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut out = schema.clone();
    if let Value::Object(map) = &mut out {
        map.iter_mut()
            .filter(|(k, _)| *k != "x-kubernetes-validations")
            .for_each(|(_, v)| strip(v));
    }
    out
}

/// The API server's causes for `result`, whose paths are relative to the top-level field
/// `prefix` (empty: the root) of `object`.
fn causes(
    object: &Value,
    prefix: &str,
    result: Result<(), kube_cel::ValidationErrors>,
) -> Vec<Cause> {
    let Err(errors) = result else {
        return Vec::new();
    };
    errors
        .into_iter()
        .map(|e| {
            let field = match e.field_path.as_str() {
                p if prefix.is_empty() => p.to_string(),
                "" => prefix.to_string(),
                p if p.starts_with('[') || p.starts_with('.') => format!("{prefix}{p}"),
                p => format!("{prefix}.{p}"),
            };
            let type_of = value_at(object, &field).map(type_name).unwrap_or("object");
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
                field,
            }
        })
        .collect()
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

    fn ratchet_schema() -> Value {
        json!({
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.metadata.name != 'bad'", "message": "bad name"}
            ],
            "properties": {
                "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
                "spec": {
                    "type": "object",
                    "properties": {
                        "tags": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "x-kubernetes-validations": [{
                                "rule": "self.all(k, k.matches('^[a-z]+$'))",
                                "message": "tag keys are lower-case letters"
                            }]
                        },
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"n": {"type": "integer"}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.n >= 0", "message": "n must not be negative"}
                                ]
                            }
                        }
                    }
                },
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
            }
        })
    }

    /// An update that leaves `spec` as it was does not run the spec's rules again, even where
    /// the stored value would fail them now (a rule added later); the root's rules always run.
    #[test]
    fn unchanged_fields_ratchet_and_root_rules_always_run() {
        let rules = CelRules::compile(&ratchet_schema()).unwrap().unwrap();
        let stored = json!({"metadata": {"name": "a"}, "spec": {"tags": {"Bad": "x"}}});
        let status_write = json!({
            "metadata": {"name": "a"},
            "spec": {"tags": {"Bad": "x"}},
            "status": {"phase": "Ready"}
        });
        assert!(rules.validate(&status_write, Some(&stored)).is_empty());
        assert_eq!(rules.validate(&stored, None).len(), 1);

        let renamed = json!({"metadata": {"name": "bad"}, "spec": {"tags": {"Bad": "x"}}});
        let errs = rules.validate(&renamed, Some(&stored));
        let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["Invalid value: \"object\": bad name"]);
    }

    /// A changed field's rules report the same causes, at the same paths, as on a create.
    #[test]
    fn changed_fields_report_full_paths() {
        let rules = CelRules::compile(&ratchet_schema()).unwrap().unwrap();
        let old = json!({"metadata": {"name": "a"}, "spec": {"tags": {"ok": "x"}}});
        let new = json!({
            "metadata": {"name": "a"},
            "spec": {"tags": {"Bad": "x"}, "items": [{"n": 1}, {"n": -1}]}
        });
        let key = |c: &Cause| (c.field.clone(), c.message.clone(), c.reason.clone());
        let mut on_update: Vec<_> = rules.validate(&new, Some(&old)).iter().map(key).collect();
        let mut on_create: Vec<_> = rules.validate(&new, None).iter().map(key).collect();
        on_update.sort();
        on_create.sort();
        assert_eq!(on_update, on_create);
        let fields: Vec<&str> = on_update.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, ["spec.items[1]", "spec.tags"]);
    }

    #[test]
    fn value_paths() {
        let v = json!({"a": {"b": [{"c": 1}]}});
        assert_eq!(value_at(&v, "a.b[0].c"), Some(&json!(1)));
        assert_eq!(value_at(&v, "a.x"), None);
    }
}
