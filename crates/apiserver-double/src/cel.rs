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

/// Functions that read a string's characters: their cost grows with its length.
const STRING_SCANS: [&str; 6] = [
    ".matches(",
    ".contains(",
    ".startsWith(",
    ".endsWith(",
    ".find(",
    ".findAll(",
];
/// Macros that visit every element of a list or map.
const COMPREHENSIONS: [&str; 5] = [".all(", ".exists(", ".exists_one(", ".map(", ".filter("];

fn unbounded_string(node: &Value) -> bool {
    node.get("type").and_then(Value::as_str) == Some("string")
        && node.get("maxLength").is_none()
        && node.get("enum").is_none()
}

/// The rules a real API server refuses at registration for their estimated cost, approximated:
/// a rule that scans strings (`matches()`, `contains()`, ...) of unbounded length, or scans the
/// strings of a list or map without a bound on its size. The real server estimates every rule's
/// worst case from `maxLength` / `maxItems` / `maxProperties` and refuses rules over its
/// per-rule budget; these are the shapes that exceed it. Messages use the real server's words.
fn over_cost_budget(node: &Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(map) = node else { return };
    if let Some(rules) = map
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        let elements = node
            .get("items")
            .or_else(|| node.get("additionalProperties").filter(|v| v.is_object()));
        let collection_unbounded = match node.get("type").and_then(Value::as_str) {
            Some("array") => node.get("maxItems").is_none(),
            Some("object") => elements.is_some() && node.get("maxProperties").is_none(),
            _ => false,
        };
        for (i, rule) in rules.iter().enumerate() {
            let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
            let scans = STRING_SCANS.iter().any(|f| text.contains(f));
            let visits = COMPREHENSIONS.iter().any(|m| text.contains(m));
            let over = scans
                && (unbounded_string(node)
                    || (visits
                        && (collection_unbounded || elements.is_some_and(unbounded_string))));
            if over {
                out.push(format!(
                    "{path}.x-kubernetes-validations[{i}].rule: Forbidden: estimated rule cost exceeds budget \
                     (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, \
                     maps, and strings are declared)"
                ));
            }
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            over_cost_budget(child, &format!("{path}.properties[{name}]"), out);
        }
    }
    if let Some(items) = map.get("items") {
        over_cost_budget(items, &format!("{path}.items"), out);
    }
    if let Some(values) = map.get("additionalProperties").filter(|v| v.is_object()) {
        over_cost_budget(values, &format!("{path}.additionalProperties"), out);
    }
}

impl CelRules {
    /// Compiles every rule of the schema; `Ok(None)` when it has none. Errors are the messages
    /// of rules (or `messageExpression`s) that do not compile, or that scan unbounded data (see
    /// [`over_cost_budget`]), as the real server rejects such a CRD at registration.
    pub fn compile(schema: &Value) -> Result<Option<Self>, Vec<String>> {
        if !has_rules(schema) {
            return Ok(None);
        }
        let mut over = Vec::new();
        over_cost_budget(schema, "openAPIV3Schema", &mut over);
        if !over.is_empty() {
            return Err(over);
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

    /// The three rules a real kube-apiserver (v1.36) refused for their cost, and the same rules
    /// accepted once what they scan is bounded.
    #[test]
    fn rules_scanning_unbounded_data_are_refused_as_over_budget() {
        let string = |bound: Option<u64>| match bound {
            Some(n) => json!({"type": "string", "maxLength": n}),
            None => json!({"type": "string"}),
        };
        let refused_then_accepted = |make: &dyn Fn(Option<u64>) -> Value| {
            let refused = CelRules::compile(&make(None)).expect_err("unbounded: refused");
            assert!(
                refused[0].contains("estimated rule cost exceeds budget"),
                "{refused:?}"
            );
            assert!(CelRules::compile(&make(Some(256))).is_ok());
        };
        // A map's values scanned by matches() (Repository spec.tags).
        refused_then_accepted(&|b| {
            json!({"type": "object", "properties": {"tags": {
            "type": "object", "maxProperties": 49, "additionalProperties": string(b),
            "x-kubernetes-validations": [{"rule": "self.all(k, self[k].matches('^[a-z]*$'))"}]}}})
        });
        // A list's items scanned (LifecyclePolicy tagPatternList).
        refused_then_accepted(&|b| {
            json!({"type": "object", "properties": {"patterns": {
            "type": "array", "maxItems": 100, "items": string(b),
            "x-kubernetes-validations": [{"rule": "self.all(p, !p.matches('^([^*]*[*]){5}'))"}]}}})
        });
        // A string scanned (ScanPolicy allowlist expires).
        refused_then_accepted(&|b| {
            let mut expires = string(b);
            expires["x-kubernetes-validations"] = json!([{"rule": "self.matches('^[0-9]{4}-')"}]);
            json!({"type": "object", "properties": {"expires": expires}})
        });
        // Sizes and equality cost nothing per character: accepted over unbounded data.
        let cheap = json!({"type": "object", "properties": {"names": {
            "type": "array", "items": {"type": "string"},
            "x-kubernetes-validations": [{"rule": "size(self) > 0"}, {"rule": "self == oldSelf"}]}}});
        assert!(CelRules::compile(&cheap).is_ok());
    }

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
                            "maxProperties": 16,
                            "additionalProperties": {"type": "string", "maxLength": 64},
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
