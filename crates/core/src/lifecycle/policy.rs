//! ECR's lifecycle policy JSON text: rendering the model to it, parsing it back, and comparing two
//! texts by meaning (so that a resync does not rewrite a policy ECR merely re-serialized).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::model::{Action, Count, Rule, Selection, StorageClass, TagStatus};
use super::validate::ValidationError;

/// Why a lifecycle policy text could not be read into the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON at all.
    #[error("lifecycle policy is not valid JSON: {0}")]
    Syntax(String),
    /// The text is JSON but not a policy this model can hold: missing or mistyped fields, unknown
    /// fields or values, `countUnit` or `targetStorageClass` where ECR refuses them or missing
    /// where ECR requires them.
    #[error("lifecycle policy does not fit the model: {}", join(.0))]
    Shape(Vec<ValidationError>),
}

fn join(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Renders `rules` as ECR lifecycle policy text, compact, rules in ascending `rulePriority` (the
/// order ECR itself keeps), keys in the order of ECR's documentation, empty lists, a missing
/// description and `storageClass: standard` (ECR's default) left out, e.g.
/// `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`.
pub fn render(rules: &[Rule]) -> String {
    let mut ordered: Vec<&Rule> = rules.iter().collect();
    ordered.sort_by_key(|r| r.rule_priority);
    let rendered: Vec<String> = ordered.into_iter().map(render_rule).collect();
    format!("{{\"rules\":[{}]}}", rendered.join(","))
}

fn render_rule(rule: &Rule) -> String {
    let s = &rule.selection;
    let mut out = format!("{{\"rulePriority\":{}", rule.rule_priority);
    if let Some(description) = &rule.description {
        out.push_str(&format!(",\"description\":{}", json_string(description)));
    }
    out.push_str(&format!(
        ",\"selection\":{{\"tagStatus\":\"{}\"",
        s.tag_status.as_str()
    ));
    for (field, list) in [
        ("tagPrefixList", &s.tag_prefix_list),
        ("tagPatternList", &s.tag_pattern_list),
    ] {
        if !list.is_empty() {
            let items: Vec<String> = list.iter().map(|t| json_string(t)).collect();
            out.push_str(&format!(",\"{field}\":[{}]", items.join(",")));
        }
    }
    if s.storage_class != StorageClass::Standard {
        out.push_str(&format!(
            ",\"storageClass\":\"{}\"",
            s.storage_class.as_str()
        ));
    }
    out.push_str(&format!(",\"countType\":\"{}\"", s.count.count_type()));
    if s.count.has_unit() {
        out.push_str(",\"countUnit\":\"days\"");
    }
    out.push_str(&format!(
        ",\"countNumber\":{}}},\"action\":{{\"type\":\"{}\"",
        s.count.count_number(),
        rule.action.as_str()
    ));
    if rule.action == Action::Transition {
        out.push_str(",\"targetStorageClass\":\"archive\"");
    }
    out.push_str("}}");
    out
}

/// JSON string literal with serde_json's escaping (infallible, unlike `serde_json::to_string`).
fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Parses ECR lifecycle policy text into rules, in the order of the text.
///
/// Only the shape is checked here (every problem is reported, with its path); whether the rules
/// form an acceptable policy is [`super::validate()`]'s job. Unknown fields are rejected, as ECR's
/// own schema does.
pub fn parse(text: &str) -> Result<Vec<Rule>, ParseError> {
    let document: Value =
        serde_json::from_str(text).map_err(|e| ParseError::Syntax(e.to_string()))?;
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    match document.as_object() {
        None => errors.push(ValidationError::new(
            "(policy)",
            "expected a JSON object with a rules array",
        )),
        Some(object) => {
            reject_unknown(object, "", &["rules"], &mut errors);
            match object.get("rules") {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(rule) = parse_rule(item, &format!("rules[{i}]"), &mut errors) {
                            rules.push(rule);
                        }
                    }
                }
                Some(_) => errors.push(ValidationError::new("rules", "expected an array")),
                None => errors.push(ValidationError::new("rules", "is required")),
            }
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(ParseError::Shape(errors))
    }
}

fn parse_rule(value: &Value, path: &str, errors: &mut Vec<ValidationError>) -> Option<Rule> {
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(path, "expected an object"));
        return None;
    };
    let before = errors.len();
    reject_unknown(
        object,
        path,
        &["rulePriority", "description", "selection", "action"],
        errors,
    );
    let rule_priority = required(object, path, "rulePriority", errors)
        .and_then(|v| as_u32(v, &field(path, "rulePriority"), errors));
    let description = match object.get("description") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(ValidationError::new(
                field(path, "description"),
                "expected a string",
            ));
            None
        }
    };
    let selection = required(object, path, "selection", errors)
        .and_then(|v| parse_selection(v, &field(path, "selection"), errors));
    let action = required(object, path, "action", errors)
        .and_then(|v| parse_action(v, &field(path, "action"), errors));
    match (rule_priority, selection, action) {
        (Some(rule_priority), Some(selection), Some(action)) if errors.len() == before => {
            Some(Rule {
                rule_priority,
                description,
                selection,
                action,
            })
        }
        _ => None,
    }
}

/// The fields of a rule's `selection`.
const SELECTION_FIELDS: &[&str] = &[
    "tagStatus",
    "tagPrefixList",
    "tagPatternList",
    "countType",
    "countUnit",
    "countNumber",
    "storageClass",
];

fn parse_selection(
    value: &Value,
    path: &str,
    errors: &mut Vec<ValidationError>,
) -> Option<Selection> {
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(path, "expected an object"));
        return None;
    };
    let before = errors.len();
    reject_unknown(object, path, SELECTION_FIELDS, errors);
    let tag_status = parse_tag_status(object, path, errors);
    let tag_prefix_list = string_list(object, path, "tagPrefixList", errors);
    let tag_pattern_list = string_list(object, path, "tagPatternList", errors);
    // "If you omit this, the value of standard will be used" (Lifecycle policy properties).
    let storage_class = match object.get("storageClass").map(Value::as_str) {
        None | Some(Some("standard")) => Some(StorageClass::Standard),
        Some(Some("archive")) => Some(StorageClass::Archive),
        Some(_) => {
            errors.push(ValidationError::new(
                field(path, "storageClass"),
                "expected standard or archive",
            ));
            None
        }
    };
    let count = parse_count(object, path, errors);
    match (tag_status, storage_class, count) {
        (Some(tag_status), Some(storage_class), Some(count)) if errors.len() == before => {
            Some(Selection {
                tag_status,
                tag_prefix_list: tag_prefix_list.unwrap_or_default(),
                tag_pattern_list: tag_pattern_list.unwrap_or_default(),
                storage_class,
                count,
            })
        }
        _ => None,
    }
}

fn parse_tag_status(
    object: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<ValidationError>,
) -> Option<TagStatus> {
    match required(object, path, "tagStatus", errors)?.as_str() {
        Some("tagged") => Some(TagStatus::Tagged),
        Some("untagged") => Some(TagStatus::Untagged),
        Some("any") => Some(TagStatus::Any),
        _ => {
            errors.push(ValidationError::new(
                field(path, "tagStatus"),
                "expected tagged, untagged or any",
            ));
            None
        }
    }
}

/// `countType` with the `countNumber` and `countUnit` that go with it; `countNumber` is checked
/// first so that its problems are reported before those of the other two.
fn parse_count(
    object: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<ValidationError>,
) -> Option<Count> {
    let count_number = required(object, path, "countNumber", errors)
        .and_then(|v| as_u32(v, &field(path, "countNumber"), errors));
    let make: fn(u32) -> Count = match required(object, path, "countType", errors)?.as_str() {
        Some("imageCountMoreThan") => Count::ImageCountMoreThan,
        Some("sinceImagePushed") => |days| Count::SinceImagePushed { days },
        Some("sinceImagePulled") => |days| Count::SinceImagePulled { days },
        Some("sinceImageTransitioned") => |days| Count::SinceImageTransitioned { days },
        _ => {
            errors.push(ValidationError::new(
                field(path, "countType"),
                "expected imageCountMoreThan, sinceImagePushed, sinceImagePulled or \
                 sinceImageTransitioned",
            ));
            return None;
        }
    };
    // "countUnit ... Required: yes, only if countType is set to sinceImagePushed,
    // sinceImagePulled, or sinceImageTransitioned ... an error will occur if you specify a count
    // unit when countType is any other value" (Lifecycle policy properties).
    let kind = make(0);
    let unit_error = |message: String| ValidationError::new(field(path, "countUnit"), message);
    match (kind.has_unit(), object.get("countUnit")) {
        (false, Some(_)) => errors.push(unit_error(
            "is only allowed with countType sinceImagePushed, sinceImagePulled or \
             sinceImageTransitioned"
                .to_owned(),
        )),
        (true, Some(Value::String(u))) if u == "days" => {}
        (true, Some(_)) => errors.push(unit_error("expected days".to_owned())),
        (true, None) => errors.push(unit_error(format!(
            "is required with countType {}",
            kind.count_type()
        ))),
        (false, None) => {}
    }
    count_number.map(make)
}

fn parse_action(value: &Value, path: &str, errors: &mut Vec<ValidationError>) -> Option<Action> {
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(path, "expected an object"));
        return None;
    };
    reject_unknown(object, path, &["type", "targetStorageClass"], errors);
    let target = object.get("targetStorageClass");
    let target_error =
        |message: &str| ValidationError::new(field(path, "targetStorageClass"), message);
    // targetStorageClass "is only present when the type is TRANSITION" (API model,
    // LifecyclePolicyRuleAction); "Required: yes, if type is transition ... archive is the only
    // supported value" (Lifecycle policy properties).
    match required(object, path, "type", errors)?.as_str() {
        Some("expire") => {
            if target.is_some() {
                errors.push(target_error("is only allowed with type transition"));
                return None;
            }
            Some(Action::Expire)
        }
        Some("transition") => match target.map(Value::as_str) {
            Some(Some("archive")) => Some(Action::Transition),
            Some(_) => {
                errors.push(target_error("expected archive"));
                None
            }
            None => {
                errors.push(target_error("is required with type transition"));
                None
            }
        },
        _ => {
            errors.push(ValidationError::new(
                field(path, "type"),
                "expected expire or transition",
            ));
            None
        }
    }
}

fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn required<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    name: &str,
    errors: &mut Vec<ValidationError>,
) -> Option<&'a Value> {
    let value = object.get(name);
    if value.is_none() {
        errors.push(ValidationError::new(field(path, name), "is required"));
    }
    value
}

fn reject_unknown(
    object: &Map<String, Value>,
    path: &str,
    known: &[&str],
    errors: &mut Vec<ValidationError>,
) {
    // Sorted so that the report does not depend on serde_json's map ordering features.
    let unknown: BTreeSet<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .collect();
    for key in unknown {
        errors.push(ValidationError::new(field(path, key), "unknown field"));
    }
}

fn as_u32(value: &Value, path: &str, errors: &mut Vec<ValidationError>) -> Option<u32> {
    let number = value.as_u64().and_then(|n| u32::try_from(n).ok());
    if number.is_none() {
        errors.push(ValidationError::new(
            path,
            "expected an integer between 0 and 4294967295",
        ));
    }
    number
}

fn string_list(
    object: &Map<String, Value>,
    path: &str,
    name: &str,
    errors: &mut Vec<ValidationError>,
) -> Option<Vec<String>> {
    let items = match object.get(name)? {
        Value::Array(items) => items,
        _ => {
            errors.push(ValidationError::new(
                field(path, name),
                "expected an array of strings",
            ));
            return None;
        }
    };
    let mut list = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) => list.push(s.to_owned()),
            None => errors.push(ValidationError::new(
                format!("{}[{k}]", field(path, name)),
                "expected a string",
            )),
        }
    }
    Some(list)
}

/// Whether two lifecycle policy texts mean the same policy. Whitespace, key order, the order of
/// rules (rules apply by `rulePriority`, not by position), the order of and repeats in
/// `tagPrefixList` / `tagPatternList` (all entries must match, so they form a set) do not matter,
/// nor does an empty description versus none. Anything else, including the description text,
/// does: ECR would store it.
///
/// Texts outside the model (see [`ParseError::Shape`]) are compared as plain JSON values, so a
/// policy with a field this model does not know still compares equal to itself; text that is not
/// JSON equals nothing.
pub fn policies_equivalent(a_json: &str, b_json: &str) -> bool {
    match (parse(a_json), parse(b_json)) {
        (Ok(a), Ok(b)) => normalize(&a) == normalize(&b),
        _ => match (
            serde_json::from_str::<Value>(a_json),
            serde_json::from_str::<Value>(b_json),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
    }
}

/// A rule reduced to what affects its meaning, ordered for comparison.
type NormalRule<'a> = (
    u32,
    &'a str,
    TagStatus,
    BTreeSet<&'a str>,
    BTreeSet<&'a str>,
    StorageClass,
    Count,
    Action,
);

fn normalize(rules: &[Rule]) -> Vec<NormalRule<'_>> {
    let mut normal: Vec<NormalRule<'_>> = rules
        .iter()
        .map(|r| {
            let s = &r.selection;
            (
                r.rule_priority,
                r.description.as_deref().unwrap_or(""),
                s.tag_status,
                s.tag_prefix_list.iter().map(String::as_str).collect(),
                s.tag_pattern_list.iter().map(String::as_str).collect(),
                s.storage_class,
                s.count,
                r.action,
            )
        })
        .collect();
    normal.sort();
    normal
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
