//! ECR's lifecycle policy JSON text: rendering the model to it, parsing it back, and comparing two
//! texts by meaning (so that a resync does not rewrite a policy ECR merely re-serialized).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::model::{Action, Count, Rule, Selection, TagStatus};
use super::validate::ValidationError;

/// Why a lifecycle policy text could not be read into the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON at all.
    #[error("lifecycle policy is not valid JSON: {0}")]
    Syntax(String),
    /// The text is JSON but not a policy this model can hold: missing or mistyped fields, unknown
    /// fields, or ECR features the operator does not model (archive `transition` actions,
    /// `sinceImagePulled`, `sinceImageTransitioned`, the `archive` storage class).
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
/// order ECR itself keeps), keys in the order of ECR's documentation, empty lists and a missing
/// description left out, e.g.
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
    out.push_str(&format!(",\"countType\":\"{}\"", s.count.count_type()));
    if let Count::SinceImagePushed { .. } = s.count {
        out.push_str(",\"countUnit\":\"days\"");
    }
    out.push_str(&format!(
        ",\"countNumber\":{}}},\"action\":{{\"type\":\"{}\"}}}}",
        s.count.count_number(),
        rule.action.as_str()
    ));
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
/// own schema does, except `storageClass: "standard"`, the documented default.
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
    reject_unknown(
        object,
        path,
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "countType",
            "countUnit",
            "countNumber",
            "storageClass",
        ],
        errors,
    );
    let tag_status = required(object, path, "tagStatus", errors).and_then(|v| match v.as_str() {
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
    });
    let tag_prefix_list = string_list(object, path, "tagPrefixList", errors);
    let tag_pattern_list = string_list(object, path, "tagPatternList", errors);
    if let Some(class) = object.get("storageClass")
        && class.as_str() != Some("standard")
    {
        errors.push(ValidationError::new(
            field(path, "storageClass"),
            "only the standard storage class is supported by this operator",
        ));
    }
    let count_number = required(object, path, "countNumber", errors)
        .and_then(|v| as_u32(v, &field(path, "countNumber"), errors));
    let unit = object.get("countUnit");
    let count = match required(object, path, "countType", errors).map(Value::as_str) {
        None => None,
        Some(Some("imageCountMoreThan")) => {
            if unit.is_some() {
                errors.push(ValidationError::new(
                    field(path, "countUnit"),
                    "is only allowed with countType sinceImagePushed",
                ));
            }
            count_number.map(Count::ImageCountMoreThan)
        }
        Some(Some("sinceImagePushed")) => {
            match unit {
                Some(Value::String(u)) if u == "days" => {}
                Some(_) => errors.push(ValidationError::new(
                    field(path, "countUnit"),
                    "expected days",
                )),
                None => errors.push(ValidationError::new(
                    field(path, "countUnit"),
                    "is required with countType sinceImagePushed",
                )),
            }
            count_number.map(|days| Count::SinceImagePushed { days })
        }
        Some(Some(other @ ("sinceImagePulled" | "sinceImageTransitioned"))) => {
            errors.push(ValidationError::new(
                field(path, "countType"),
                format!("{other} (archive lifecycle) is not supported by this operator"),
            ));
            None
        }
        Some(_) => {
            errors.push(ValidationError::new(
                field(path, "countType"),
                "expected imageCountMoreThan or sinceImagePushed",
            ));
            None
        }
    };
    match (tag_status, count) {
        (Some(tag_status), Some(count)) if errors.len() == before => Some(Selection {
            tag_status,
            tag_prefix_list: tag_prefix_list.unwrap_or_default(),
            tag_pattern_list: tag_pattern_list.unwrap_or_default(),
            count,
        }),
        _ => None,
    }
}

fn parse_action(value: &Value, path: &str, errors: &mut Vec<ValidationError>) -> Option<Action> {
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(path, "expected an object"));
        return None;
    };
    reject_unknown(object, path, &["type"], errors);
    match required(object, path, "type", errors)?.as_str() {
        Some("expire") => Some(Action::Expire),
        Some("transition") => {
            errors.push(ValidationError::new(
                field(path, "type"),
                "transition (archive lifecycle) is not supported by this operator",
            ));
            None
        }
        _ => {
            errors.push(ValidationError::new(field(path, "type"), "expected expire"));
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
/// Texts outside the model (see [`ParseError::Shape`]) are compared as plain JSON values, so an
/// archive policy someone set in the console still compares equal to itself; text that is not
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
                s.count,
                r.action,
            )
        })
        .collect();
    normal.sort();
    normal
}

#[cfg(test)]
mod tests {
    use super::super::validate::validate;
    use super::*;
    use proptest::prelude::*;

    const DOC_POLICY: &str = r#"{
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire images older than 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14
                },
                "action": {
                    "type": "expire"
                }
            }
        ]
    }"#;

    fn prod_rule() -> Rule {
        Rule {
            rule_priority: 1,
            description: Some("keep 10 prod".into()),
            selection: Selection {
                tag_status: TagStatus::Tagged,
                tag_prefix_list: vec!["prod".into()],
                tag_pattern_list: vec![],
                count: Count::ImageCountMoreThan(10),
            },
            action: Action::Expire,
        }
    }

    fn shape_paths(result: Result<Vec<Rule>, ParseError>) -> Vec<String> {
        match result {
            Err(ParseError::Shape(errors)) => errors.into_iter().map(|e| e.path).collect(),
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    #[test]
    fn renders_the_documented_shape() {
        assert_eq!(
            render(&[prod_rule()]),
            r#"{"rules":[{"rulePriority":1,"description":"keep 10 prod","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#
        );
        let parsed = parse(DOC_POLICY).expect("doc policy parses");
        assert_eq!(
            render(&parsed),
            r#"{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#
        );
    }

    #[test]
    fn renders_rules_by_priority_and_escapes_strings() {
        let mut second = prod_rule();
        second.rule_priority = 2;
        second.description = Some("quote \" backslash \\ newline \n é".into());
        second.selection.tag_prefix_list = vec![];
        second.selection.tag_pattern_list = vec!["a\"*".into()];
        let text = render(&[second.clone(), prod_rule()]);
        assert!(
            text.starts_with(r#"{"rules":[{"rulePriority":1,"#),
            "{text}"
        );
        assert_eq!(parse(&text), Ok(vec![prod_rule(), second]));
    }

    #[test]
    fn parses_the_documented_policy() {
        let rules = parse(DOC_POLICY).expect("doc policy parses");
        assert_eq!(
            rules,
            [Rule {
                rule_priority: 1,
                description: Some("Expire images older than 14 days".into()),
                selection: Selection {
                    tag_status: TagStatus::Untagged,
                    tag_prefix_list: vec![],
                    tag_pattern_list: vec![],
                    count: Count::SinceImagePushed { days: 14 },
                },
                action: Action::Expire,
            }]
        );
        assert_eq!(validate(&rules), []);
    }

    #[test]
    fn storage_class_standard_is_the_default() {
        let text = render(&[prod_rule()])
            .replace(r#""tagStatus""#, r#""storageClass":"standard","tagStatus""#);
        assert_eq!(parse(&text), Ok(vec![prod_rule()]));
        let archive = text.replace("standard", "archive");
        assert_eq!(
            shape_paths(parse(&archive)),
            ["rules[0].selection.storageClass"]
        );
    }

    #[test]
    fn not_json_is_a_syntax_error() {
        assert!(matches!(parse("{\"rules\": ["), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(""), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn wrong_shapes_are_reported_with_paths() {
        assert_eq!(shape_paths(parse("[]")), ["(policy)"]);
        assert_eq!(shape_paths(parse("{}")), ["rules"]);
        assert_eq!(shape_paths(parse(r#"{"rules":{}}"#)), ["rules"]);
        assert_eq!(
            shape_paths(parse(r#"{"rules":[1],"extra":true}"#)),
            ["extra", "rules[0]"]
        );
        assert_eq!(
            shape_paths(parse(r#"{"rules":[{}]}"#)),
            [
                "rules[0].rulePriority",
                "rules[0].selection",
                "rules[0].action"
            ]
        );
        let bad = r#"{"rules":[{"rulePriority":-1,"description":7,
            "selection":{"tagStatus":"some","tagPrefixList":["a",1],"tagPatternList":"b*",
                         "countType":"imageCountMoreThan","countUnit":"days","countNumber":1.5,"x":null},
            "action":{"type":"delete"}}]}"#;
        assert_eq!(
            shape_paths(parse(bad)),
            [
                "rules[0].rulePriority",
                "rules[0].description",
                "rules[0].selection.x",
                "rules[0].selection.tagStatus",
                "rules[0].selection.tagPrefixList[1]",
                "rules[0].selection.tagPatternList",
                "rules[0].selection.countNumber",
                "rules[0].selection.countUnit",
                "rules[0].action.type",
            ]
        );
    }

    #[test]
    fn count_unit_rules() {
        let missing = DOC_POLICY.replace(r#""countUnit": "days","#, "");
        assert_eq!(
            shape_paths(parse(&missing)),
            ["rules[0].selection.countUnit"]
        );
        let hours = DOC_POLICY.replace(r#""countUnit": "days""#, r#""countUnit": "hours""#);
        assert_eq!(shape_paths(parse(&hours)), ["rules[0].selection.countUnit"]);
        let big = DOC_POLICY.replace("14", "4294967296");
        assert_eq!(shape_paths(parse(&big)), ["rules[0].selection.countNumber"]);
    }

    #[test]
    fn archive_policies_from_the_docs_are_rejected() {
        // "Examples of lifecycle policies": filtering on last pulled time / archive transition time.
        let pulled = r#"{"rules":[{"rulePriority":1,"description":"Archive images not pulled in 90 days",
            "selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},
            "action":{"type":"transition","targetStorageClass":"archive"}}]}"#;
        assert_eq!(
            shape_paths(parse(pulled)),
            [
                "rules[0].selection.countType",
                "rules[0].action.targetStorageClass",
                "rules[0].action.type"
            ]
        );
        let transitioned = r#"{"rules":[{"rulePriority":1,"description":"Expire images archived for more than 365 days",
            "selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},
            "action":{"type":"expire"}}]}"#;
        assert_eq!(
            shape_paths(parse(transitioned)),
            [
                "rules[0].selection.storageClass",
                "rules[0].selection.countType"
            ]
        );
        // Still comparable, as plain JSON.
        assert!(policies_equivalent(pulled, &pulled.replace('\n', " ")));
        assert!(!policies_equivalent(pulled, transitioned));
    }

    #[test]
    fn equivalence_ignores_formatting_order_and_list_order() {
        let a = r#"{"rules":[
            {"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["b","a"],"countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}},
            {"rulePriority":1,"description":"","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}"#;
        let b = r#"{ "rules" : [
            { "action": {"type": "expire"}, "selection": {"countUnit": "days", "countNumber": 7, "countType": "sinceImagePushed", "tagStatus": "untagged"}, "rulePriority": 1 },
            { "selection": {"countNumber": 3, "tagPrefixList": ["a", "b", "a"], "countType": "imageCountMoreThan", "tagStatus": "tagged"}, "action": {"type": "expire"}, "rulePriority": 2 } ] }"#;
        assert!(policies_equivalent(a, b));
        assert!(policies_equivalent(b, a));
    }

    #[test]
    fn equivalence_sees_real_changes() {
        let base = render(&[prod_rule()]);
        let mut changed = prod_rule();
        changed.selection.count = Count::ImageCountMoreThan(11);
        assert!(!policies_equivalent(&base, &render(&[changed])));
        let mut changed = prod_rule();
        changed.selection.count = Count::SinceImagePushed { days: 10 };
        assert!(!policies_equivalent(&base, &render(&[changed])));
        let mut changed = prod_rule();
        changed.rule_priority = 2;
        assert!(!policies_equivalent(&base, &render(&[changed])));
        let mut changed = prod_rule();
        changed.description = Some("other".into());
        assert!(!policies_equivalent(&base, &render(&[changed])));
        let mut changed = prod_rule();
        changed.selection.tag_prefix_list = vec![];
        changed.selection.tag_pattern_list = vec!["prod".into()];
        assert!(
            !policies_equivalent(&base, &render(&[changed])),
            "prefix and pattern lists differ"
        );
        let mut extra = prod_rule();
        extra.rule_priority = 9;
        assert!(!policies_equivalent(&base, &render(&[prod_rule(), extra])));
        assert!(!policies_equivalent(&base, "not json"));
        assert!(!policies_equivalent("not json", "not json"));
    }

    // ---- properties ----

    fn valid_rules() -> impl Strategy<Value = Vec<Rule>> {
        let text = "[a-z0-9 \"\\\\/\u{e9}\u{1F600}\n\t-]{0,12}";
        let rule = (
            1u32..4,
            prop::option::of(text),
            0u8..3,
            prop::collection::vec("[a-z0-9._-]{1,6}", 1..3),
            prop::collection::vec("[a-z0-9*-]{1,8}", 1..3),
            prop_oneof![
                (1u32..1000).prop_map(Count::ImageCountMoreThan),
                (1u32..1000).prop_map(|days| Count::SinceImagePushed { days }),
            ],
        );
        prop::collection::vec(rule, 1..8)
            .prop_map(|specs| {
                let mut priority = 0;
                specs
                    .into_iter()
                    .map(|(step, description, kind, prefixes, patterns, count)| {
                        priority += step;
                        let (tag_prefix_list, tag_pattern_list) = match kind {
                            0 => (prefixes, vec![]),
                            _ => (vec![], patterns),
                        };
                        Rule {
                            rule_priority: priority,
                            description,
                            selection: Selection {
                                tag_status: TagStatus::Tagged,
                                tag_prefix_list,
                                tag_pattern_list,
                                count,
                            },
                            action: Action::Expire,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .prop_map(|mut rules| {
                // Make the last rules `untagged` / `any` now and then, where ECR allows them.
                let n = rules.len();
                if n >= 2 && rules[0].rule_priority % 2 == 0 {
                    rules[n - 2].selection.tag_status = TagStatus::Untagged;
                }
                if rules[n - 1].rule_priority % 3 == 0 {
                    rules[n - 1].selection.tag_status = TagStatus::Any;
                }
                for rule in &mut rules {
                    if rule.selection.tag_status != TagStatus::Tagged {
                        rule.selection.tag_prefix_list.clear();
                        rule.selection.tag_pattern_list.clear();
                    }
                }
                rules
            })
            .prop_filter("ECR would accept it", |rules| validate(rules).is_empty())
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(rules in valid_rules()) {
            prop_assert_eq!(parse(&render(&rules)), Ok(rules));
        }

        #[test]
        fn rendering_is_equivalent_whatever_the_rule_order(rules in valid_rules().prop_shuffle()) {
            let mut sorted = rules.clone();
            sorted.sort_by_key(|r| r.rule_priority);
            prop_assert_eq!(render(&rules), render(&sorted));
            prop_assert!(policies_equivalent(&render(&rules), &render(&sorted)));
        }

        #[test]
        fn pretty_printing_keeps_equivalence(rules in valid_rules()) {
            let text = render(&rules);
            let pretty = serde_json::from_str::<Value>(&text).map(|v| format!("{v:#}")).unwrap_or_default();
            prop_assert!(policies_equivalent(&text, &pretty));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,64}") {
            let _ = parse(&text);
        }
    }
}
