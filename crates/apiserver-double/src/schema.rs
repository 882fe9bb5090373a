//! Structural OpenAPI v3 schemas of custom resources: pruning, defaulting and validation with
//! the API server's error messages.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::status::Cause;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonType {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl JsonType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "object" => Self::Object,
            "array" => Self::Array,
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::Array => "array",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            Self::Object => value.is_object(),
            Self::Array => value.is_array(),
            Self::String => value.is_string(),
            Self::Integer => is_integer(value),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
        }
    }
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// The JSON type name of a value, as the API server prints it.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(value) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[derive(Debug)]
enum Additional {
    Allowed(bool),
    Schema(Box<SchemaNode>),
}

#[derive(Debug, Default, PartialEq)]
enum ListType {
    #[default]
    Atomic,
    Set,
    Map(Vec<String>),
}

/// One node of a compiled structural schema.
#[derive(Debug, Default)]
pub(crate) struct SchemaNode {
    ty: Option<JsonType>,
    nullable: bool,
    int_or_string: bool,
    preserve_unknown: bool,
    embedded: bool,
    properties: BTreeMap<String, SchemaNode>,
    additional: Option<Additional>,
    items: Option<Box<SchemaNode>>,
    required: Vec<String>,
    enum_values: Option<Vec<Value>>,
    pattern: Option<(String, Regex)>,
    format: Option<String>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: bool,
    exclusive_maximum: bool,
    multiple_of: Option<f64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    list_type: ListType,
    default: Option<Value>,
    all_of: Vec<SchemaNode>,
    any_of: Vec<SchemaNode>,
    one_of: Vec<SchemaNode>,
    not: Option<Box<SchemaNode>>,
}

fn u64_of(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

fn f64_of(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn bool_of(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn compile_list(schema: &Value, key: &str, path: &str) -> Result<Vec<SchemaNode>, String> {
    match schema.get(key).and_then(Value::as_array) {
        Some(branches) => branches
            .iter()
            .map(|b| SchemaNode::compile_at(b, path))
            .collect(),
        None => Ok(Vec::new()),
    }
}

impl SchemaNode {
    /// Compiles an `openAPIV3Schema`; errors name the offending schema path.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        Self::compile_at(schema, "openAPIV3Schema")
    }

    fn compile_at(schema: &Value, path: &str) -> Result<Self, String> {
        let Some(obj) = schema.as_object() else {
            return Ok(Self::default());
        };
        let ty = match obj.get("type").and_then(Value::as_str) {
            Some(t) => Some(
                JsonType::parse(t)
                    .ok_or_else(|| format!("{path}.type: Unsupported value: {t:?}"))?,
            ),
            None => None,
        };
        let mut properties = BTreeMap::new();
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                properties.insert(
                    name.clone(),
                    Self::compile_at(sub, &format!("{path}.properties[{name}]"))?,
                );
            }
        }
        let additional = match obj.get("additionalProperties") {
            Some(Value::Bool(b)) => Some(Additional::Allowed(*b)),
            Some(sub @ Value::Object(_)) => Some(Additional::Schema(Box::new(Self::compile_at(
                sub,
                &format!("{path}.additionalProperties"),
            )?))),
            _ => None,
        };
        let items = match obj.get("items") {
            Some(sub @ Value::Object(_)) => {
                Some(Box::new(Self::compile_at(sub, &format!("{path}.items"))?))
            }
            _ => None,
        };
        let pattern = match obj.get("pattern").and_then(Value::as_str) {
            Some(p) => Some((
                p.to_string(),
                Regex::new(p).map_err(|e| format!("{path}.pattern: Invalid value: {p:?}: {e}"))?,
            )),
            None => None,
        };
        let list_type = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                obj.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        };
        Ok(Self {
            ty,
            nullable: bool_of(schema, "nullable"),
            int_or_string: bool_of(schema, "x-kubernetes-int-or-string"),
            preserve_unknown: bool_of(schema, "x-kubernetes-preserve-unknown-fields"),
            embedded: bool_of(schema, "x-kubernetes-embedded-resource"),
            properties,
            additional,
            items,
            required: obj
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            enum_values: obj.get("enum").and_then(Value::as_array).cloned(),
            pattern,
            format: obj
                .get("format")
                .and_then(Value::as_str)
                .map(str::to_string),
            min_length: u64_of(schema, "minLength"),
            max_length: u64_of(schema, "maxLength"),
            minimum: f64_of(schema, "minimum"),
            maximum: f64_of(schema, "maximum"),
            exclusive_minimum: bool_of(schema, "exclusiveMinimum"),
            exclusive_maximum: bool_of(schema, "exclusiveMaximum"),
            multiple_of: f64_of(schema, "multipleOf"),
            min_items: u64_of(schema, "minItems"),
            max_items: u64_of(schema, "maxItems"),
            unique_items: bool_of(schema, "uniqueItems"),
            min_properties: u64_of(schema, "minProperties"),
            max_properties: u64_of(schema, "maxProperties"),
            list_type,
            default: obj.get("default").cloned(),
            all_of: compile_list(schema, "allOf", path)?,
            any_of: compile_list(schema, "anyOf", path)?,
            one_of: compile_list(schema, "oneOf", path)?,
            not: match obj.get("not") {
                Some(sub @ Value::Object(_)) => {
                    Some(Box::new(Self::compile_at(sub, &format!("{path}.not"))?))
                }
                _ => None,
            },
        })
    }

    /// Removes fields the schema does not know, as the API server prunes structural schemas.
    /// `apiVersion`, `kind` and `metadata` of the root and of embedded resources are kept.
    pub fn prune_root(&self, value: &mut Value) {
        self.prune(value, true);
    }

    fn prune(&self, value: &mut Value, keep_meta: bool) {
        match value {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    if keep_meta && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    if let Some(child) = self.properties.get(&key) {
                        if let Some(v) = map.get_mut(&key) {
                            child.prune(v, child.embedded);
                        }
                    } else if let Some(Additional::Schema(child)) = &self.additional {
                        if let Some(v) = map.get_mut(&key) {
                            child.prune(v, child.embedded);
                        }
                    } else if self.preserve_unknown
                        || matches!(self.additional, Some(Additional::Allowed(true)))
                    {
                        // kept as is
                    } else {
                        map.remove(&key);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = &self.items {
                    for item in items {
                        item_schema.prune(item, item_schema.embedded);
                    }
                }
            }
            _ => {}
        }
    }

    /// Applies `default`s to absent fields (and to `null` in non-nullable fields).
    pub fn apply_defaults(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in &self.properties {
                    let missing = match map.get(key) {
                        None => true,
                        Some(Value::Null) => !child.nullable,
                        Some(_) => false,
                    };
                    if missing && let Some(default) = &child.default {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(v) = map.get_mut(key) {
                        child.apply_defaults(v);
                    }
                }
                if let Some(Additional::Schema(child)) = &self.additional {
                    for (key, v) in map.iter_mut() {
                        if !self.properties.contains_key(key) {
                            child.apply_defaults(v);
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = &self.items {
                    for item in items {
                        item_schema.apply_defaults(item);
                    }
                }
            }
            _ => {}
        }
    }

    /// Validates a whole custom resource; `metadata`, `apiVersion` and `kind` of the root are
    /// validated elsewhere.
    pub fn validate_root(&self, value: &Value) -> Vec<Cause> {
        let mut errors = Vec::new();
        if let Some(map) = value.as_object() {
            for key in &self.required {
                if !map.contains_key(key) {
                    errors.push(required(key));
                }
            }
            for (key, v) in map {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(child) = self.properties.get(key) {
                    child.validate(v, key, &mut errors);
                } else if let Some(Additional::Schema(child)) = &self.additional {
                    child.validate(v, key, &mut errors);
                }
            }
        }
        errors
    }

    fn validate(&self, value: &Value, path: &str, errors: &mut Vec<Cause>) {
        if value.is_null() {
            if self.nullable || (self.ty.is_none() && !self.int_or_string) {
                return;
            }
            let expected = if self.int_or_string {
                "integer,string"
            } else {
                self.ty.map(JsonType::name).unwrap_or("object")
            };
            errors.push(type_invalid(path, expected, value));
            return;
        }
        if self.int_or_string {
            if !(is_integer(value) || value.is_string()) {
                errors.push(type_invalid(path, "integer,string", value));
                return;
            }
        } else if let Some(ty) = self.ty
            && !ty.accepts(value)
        {
            errors.push(type_invalid(path, ty.name(), value));
            return;
        }

        if let Some(values) = &self.enum_values
            && !values.iter().any(|v| json_eq(v, value))
        {
            let supported: Vec<String> = values.iter().map(render_value).collect();
            errors.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    render_value(value),
                    supported.join(", ")
                ),
                field: path.to_string(),
            });
        }

        match value {
            Value::String(s) => self.validate_string(s, value, path, errors),
            Value::Number(_) => self.validate_number(value, path, errors),
            Value::Array(items) => self.validate_array(items, value, path, errors),
            Value::Object(map) => self.validate_object(map, value, path, errors),
            _ => {}
        }

        for branch in &self.all_of {
            branch.validate(value, path, errors);
        }
        if !self.any_of.is_empty() && !self.any_of.iter().any(|b| b.passes(value, path)) {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body must validate at least one schema (anyOf)"),
            ));
        }
        if !self.one_of.is_empty() {
            let passing = self.one_of.iter().filter(|b| b.passes(value, path)).count();
            if passing != 1 {
                errors.push(invalid(
                    path,
                    value,
                    format!("{path} in body must validate one and only one schema (oneOf)"),
                ));
            }
        }
        if let Some(not) = &self.not
            && not.passes(value, path)
        {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body must not validate the schema (not)"),
            ));
        }
    }

    fn passes(&self, value: &Value, path: &str) -> bool {
        let mut scratch = Vec::new();
        self.validate(value, path, &mut scratch);
        scratch.is_empty()
    }

    fn validate_string(&self, s: &str, value: &Value, path: &str, errors: &mut Vec<Cause>) {
        let len = s.chars().count() as u64;
        if let Some(min) = self.min_length
            && len < min
        {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(max) = self.max_length
            && len > max
        {
            let unit = if max == 1 { "byte" } else { "bytes" };
            errors.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {max} {unit}"),
                field: path.to_string(),
            });
        }
        if let Some((source, regex)) = &self.pattern
            && !regex.is_match(s)
        {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should match '{source}'"),
            ));
        }
        if let Some(format) = &self.format
            && !format_ok(format, s)
        {
            errors.push(invalid(
                path,
                value,
                format!(
                    "{path} in body must be of type {format}: {}",
                    render_value(value)
                ),
            ));
        }
    }

    fn validate_number(&self, value: &Value, path: &str, errors: &mut Vec<Cause>) {
        let Some(n) = value.as_f64() else { return };
        if let Some(min) = self.minimum {
            let (bad, word) = if self.exclusive_minimum {
                (n <= min, "greater than")
            } else {
                (n < min, "greater than or equal to")
            };
            if bad {
                errors.push(invalid(
                    path,
                    value,
                    format!("{path} in body should be {word} {}", render_f64(min)),
                ));
            }
        }
        if let Some(max) = self.maximum {
            let (bad, word) = if self.exclusive_maximum {
                (n >= max, "less than")
            } else {
                (n > max, "less than or equal to")
            };
            if bad {
                errors.push(invalid(
                    path,
                    value,
                    format!("{path} in body should be {word} {}", render_f64(max)),
                ));
            }
        }
        if let Some(m) = self.multiple_of
            && m != 0.0
            && (n / m).fract() != 0.0
        {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should be a multiple of {}", render_f64(m)),
            ));
        }
    }

    fn validate_array(&self, items: &[Value], value: &Value, path: &str, errors: &mut Vec<Cause>) {
        let len = items.len() as u64;
        if let Some(min) = self.min_items
            && len < min
        {
            errors.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {len}: {path} in body should have at least {min} items"
                ),
                field: path.to_string(),
            });
        }
        if let Some(max) = self.max_items
            && len > max
        {
            errors.push(Cause {
                reason: "FieldValueTooMany".into(),
                message: format!("Too many: {len}: must have at most {max} items"),
                field: path.to_string(),
            });
        }
        if self.unique_items && has_duplicates(items) {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body shouldn't contain duplicates"),
            ));
        }
        match &self.list_type {
            ListType::Atomic => {}
            ListType::Set => {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].iter().any(|prev| json_eq(prev, item)) {
                        errors.push(duplicate(&format!("{path}[{i}]"), render_value(item)));
                    }
                }
            }
            ListType::Map(keys) => {
                let key_of = |item: &Value| -> Value {
                    let mut m = serde_json::Map::new();
                    for k in keys {
                        if let Some(v) = item.get(k) {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    Value::Object(m)
                };
                for (i, item) in items.iter().enumerate() {
                    let key = key_of(item);
                    if items[..i].iter().any(|prev| key_of(prev) == key) {
                        errors.push(duplicate(&format!("{path}[{i}]"), key.to_string()));
                    }
                }
            }
        }
        if let Some(item_schema) = &self.items {
            for (i, item) in items.iter().enumerate() {
                item_schema.validate(item, &format!("{path}[{i}]"), errors);
            }
        }
    }

    fn validate_object(
        &self,
        map: &serde_json::Map<String, Value>,
        value: &Value,
        path: &str,
        errors: &mut Vec<Cause>,
    ) {
        for key in &self.required {
            if !map.contains_key(key) {
                errors.push(required(&format!("{path}.{key}")));
            }
        }
        let len = map.len() as u64;
        if let Some(min) = self.min_properties
            && len < min
        {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should have at least {min} properties"),
            ));
        }
        if let Some(max) = self.max_properties
            && len > max
        {
            errors.push(Cause {
                reason: "FieldValueTooMany".into(),
                message: format!("Too many: {len}: must have at most {max} items"),
                field: path.to_string(),
            });
        }
        if self.embedded {
            for key in ["apiVersion", "kind"] {
                if !map.contains_key(key) {
                    errors.push(required(&format!("{path}.{key}")));
                }
            }
        }
        for (key, v) in map {
            let child_path = format!("{path}.{key}");
            if let Some(child) = self.properties.get(key) {
                child.validate(v, &child_path, errors);
            } else if let Some(Additional::Schema(child)) = &self.additional {
                child.validate(v, &child_path, errors);
            }
        }
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, item)| items[..i].iter().any(|prev| json_eq(prev, item)))
}

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "byte" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "uuid" => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.len() == 5
                && [8, 4, 4, 4, 12]
                    .iter()
                    .zip(&parts)
                    .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
        }
        _ => true,
    }
}

/// Renders a value as Go's `%#v`-ish form the API server prints: strings quoted, others JSON.
pub(crate) fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Number(_) => value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            .map(render_f64)
            .unwrap_or_else(|| value.to_string()),
        other => other.to_string(),
    }
}

fn render_f64(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn invalid(path: &str, value: &Value, detail: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {detail}", render_value(value)),
        field: path.to_string(),
    }
}

fn type_invalid(path: &str, expected: &str, value: &Value) -> Cause {
    let actual = type_name(value);
    Cause {
        reason: "FieldValueTypeInvalid".into(),
        message: format!(
            "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
        ),
        field: path.to_string(),
    }
}

pub(crate) fn required(path: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: path.to_string(),
    }
}

fn duplicate(path: &str, rendered: String) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {rendered}"),
        field: path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> SchemaNode {
        SchemaNode::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                        "replicas": {"type": "integer", "minimum": 1, "default": 1},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2,
                                 "x-kubernetes-list-type": "set"},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "opt": {"type": "string", "nullable": true}
                    }
                }
            }
        }))
        .expect("compiles")
    }

    #[test]
    fn prunes_defaults_and_validates() {
        let s = schema();
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "junk": 1},
            "spec": {"name": "abc", "unknown": 1, "free": {"any": {"thing": 1}}, "labels": {"k": "v"}, "opt": null},
            "other": true
        });
        s.prune_root(&mut obj);
        s.apply_defaults(&mut obj);
        assert_eq!(obj["spec"]["replicas"], json!(1));
        assert!(obj["spec"].get("unknown").is_none());
        assert!(obj.get("other").is_none());
        assert_eq!(obj["metadata"]["junk"], json!(1));
        assert_eq!(obj["spec"]["free"]["any"]["thing"], json!(1));
        assert!(
            s.validate_root(&obj).is_empty(),
            "{:?}",
            s.validate_root(&obj)
        );
    }

    #[test]
    fn error_messages() {
        let s = schema();
        let obj =
            json!({"spec": {"name": "Bad", "replicas": 1.5, "mode": "c", "tags": ["x", "x", "y"]}});
        let errs = s.validate_root(&obj);
        let msgs: Vec<String> = errs
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        assert!(
            msgs.contains(
                &"spec.name: Invalid value: \"Bad\": spec.name in body should match '^[a-z]+$'"
                    .to_string()
            ),
            "{msgs:?}"
        );
        assert!(msgs.contains(&"spec.replicas: Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\"".to_string()), "{msgs:?}");
        assert!(
            msgs.contains(
                &"spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"".to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"spec.tags: Too many: 3: must have at most 2 items".to_string()),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"spec.tags[1]: Duplicate value: \"x\"".to_string()),
            "{msgs:?}"
        );
        let missing = s.validate_root(&json!({"spec": {}}));
        assert_eq!(missing[0].field, "spec.name");
        assert_eq!(missing[0].reason, "FieldValueRequired");
    }
}
