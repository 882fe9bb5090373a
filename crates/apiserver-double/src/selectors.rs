//! Label and field selectors, parsed as the API server parses them.

use serde_json::Value;

use crate::status::ApiError;

#[derive(Clone, Debug, PartialEq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector {
    requirements: Vec<(String, LabelOp)>,
}

fn invalid(sel: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} (selector {sel:?})"
    ))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(sel: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&sel[start..]);
    parts
}

fn parse_set(sel: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| invalid(sel, "expected a parenthesised set of values"))?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if values.iter().any(|v| !valid_value(v)) {
        return Err(invalid(sel, "invalid label value"));
    }
    Ok(values)
}

impl LabelSelector {
    /// Parses a selector string; the empty string selects everything.
    pub fn parse(sel: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        if sel.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for part in split_top_level(sel) {
            let part = part.trim();
            if part.is_empty() {
                return Err(invalid(sel, "empty requirement"));
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), LabelOp::NotExists)
            } else if let Some((key, value)) = part.split_once("!=") {
                (
                    key.trim().to_string(),
                    LabelOp::NotEq(value.trim().to_string()),
                )
            } else if let Some((key, value)) = part.split_once("==") {
                (
                    key.trim().to_string(),
                    LabelOp::Eq(value.trim().to_string()),
                )
            } else if let Some((key, value)) = part.split_once('=') {
                (
                    key.trim().to_string(),
                    LabelOp::Eq(value.trim().to_string()),
                )
            } else if let Some((key, value)) = part.split_once('>') {
                let n = value.trim().parse().map_err(|_| {
                    invalid(
                        sel,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                })?;
                (key.trim().to_string(), LabelOp::Gt(n))
            } else if let Some((key, value)) = part.split_once('<') {
                let n = value.trim().parse().map_err(|_| {
                    invalid(
                        sel,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                })?;
                (key.trim().to_string(), LabelOp::Lt(n))
            } else if let Some(idx) = part.find(" notin ").or_else(|| part.find(" notin(")) {
                let key = part[..idx].trim().to_string();
                (
                    key,
                    LabelOp::NotIn(parse_set(sel, &part[idx + " notin".len()..])?),
                )
            } else if let Some(idx) = part.find(" in ").or_else(|| part.find(" in(")) {
                let key = part[..idx].trim().to_string();
                (
                    key,
                    LabelOp::In(parse_set(sel, &part[idx + " in".len()..])?),
                )
            } else {
                (part.to_string(), LabelOp::Exists)
            };
            if !valid_key(&req.0) {
                return Err(invalid(sel, &format!("invalid label key {:?}", req.0)));
            }
            if let LabelOp::Eq(v) | LabelOp::NotEq(v) = &req.1
                && !valid_value(v)
            {
                return Err(invalid(sel, &format!("invalid label value {v:?}")));
            }
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|(key, op)| {
            let value = get(key);
            match op {
                LabelOp::Eq(v) => value == Some(v.as_str()),
                LabelOp::NotEq(v) => value != Some(v.as_str()),
                LabelOp::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
                LabelOp::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
                LabelOp::Exists => value.is_some(),
                LabelOp::NotExists => value.is_none(),
                LabelOp::Gt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                LabelOp::Lt(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

/// A parsed field selector (`metadata.name=x,metadata.namespace!=y`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

/// Which field labels a resource supports in field selectors.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FieldSupport<'a> {
    /// Any dotted path into the object (built-in kinds: kept simple).
    Any,
    /// `metadata.name`, `metadata.namespace` and these JSON paths (custom resources).
    Only(&'a [String]),
}

impl FieldSelector {
    /// Parses a selector; unsupported field labels give `400 BadRequest` as on the real server.
    pub fn parse(sel: &str, support: FieldSupport<'_>) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        if sel.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for part in split_top_level(sel) {
            let part = part.trim();
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{sel}'; can't understand '{part}'"
                )));
            };
            let field = field.trim().to_string();
            let supported = match support {
                FieldSupport::Any => true,
                FieldSupport::Only(extra) => {
                    field == "metadata.name"
                        || field == "metadata.namespace"
                        || extra.iter().any(|p| p.trim_start_matches('.') == field)
                }
            };
            if !supported {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            requirements.push((field, eq, value.trim().to_string()));
        }
        Ok(Self { requirements })
    }

    /// Whether the object matches every requirement (missing fields compare as "").
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, eq, want)| {
            let mut cur = Some(object);
            for seg in field.split('.') {
                cur = cur.and_then(|v| v.get(seg));
            }
            let got = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

/// Namespace plus selectors: what a list or watch filters on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    /// Whether an object passes the filter.
    pub fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("missing!=x", true),
            ("app=web,tier=back", false),
            ("n>4", true),
            ("n<5", false),
            ("", true),
        ];
        for (sel, want) in cases {
            let parsed = LabelSelector::parse(sel).expect(sel);
            assert_eq!(parsed.matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let none: Vec<String> = Vec::new();
        let sel = FieldSelector::parse(
            "metadata.name=a,metadata.namespace!=x",
            FieldSupport::Only(&none),
        )
        .expect("parse");
        assert!(sel.matches(&o));
        assert!(FieldSelector::parse("spec.x=1", FieldSupport::Only(&none)).is_err());
        assert!(FieldSelector::parse("spec.x=1", FieldSupport::Any).is_ok());
    }
}
