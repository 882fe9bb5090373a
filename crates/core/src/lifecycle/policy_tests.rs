//! Tests of rendering, parsing and comparing lifecycle policy texts (`policy.rs`).

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
            storage_class: StorageClass::Standard,
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
                storage_class: StorageClass::Standard,
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
    // Parsed as written; whether archive goes with this countType is validate's question.
    let archive = parse(&text.replace("standard", "archive")).expect("parses");
    assert_eq!(archive[0].selection.storage_class, StorageClass::Archive);
    assert_eq!(
        shape_paths(parse(&text.replace("standard", "glacier"))),
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

/// "Examples of lifecycle policies": filtering on last pulled time / on archive transition time.
const PULLED: &str = r#"{"rules":[{"rulePriority":1,"description":"Archive images not pulled in 90 days",
            "selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},
            "action":{"type":"transition","targetStorageClass":"archive"}}]}"#;
const TRANSITIONED: &str = r#"{"rules":[{"rulePriority":1,"description":"Expire images archived for more than 365 days",
            "selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},
            "action":{"type":"expire"}}]}"#;

#[test]
fn archive_policies_from_the_docs_parse_and_render_back() {
    let pulled = parse(PULLED).expect("parses");
    assert_eq!(
        pulled[0].selection.count,
        Count::SinceImagePulled { days: 90 }
    );
    assert_eq!(pulled[0].action, Action::Transition);
    assert_eq!(
        render(&pulled),
        r#"{"rules":[{"rulePriority":1,"description":"Archive images not pulled in 90 days","selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#
    );
    let transitioned = parse(TRANSITIONED).expect("parses");
    assert_eq!(
        render(&transitioned),
        r#"{"rules":[{"rulePriority":1,"description":"Expire images archived for more than 365 days","selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}]}"#
    );
    assert!(policies_equivalent(PULLED, &render(&pulled)));
    assert!(!policies_equivalent(PULLED, TRANSITIONED));
    // The storage class is part of the meaning; standard written out or left out is not.
    let standard = TRANSITIONED.replace(r#""storageClass":"archive","#, "");
    assert!(!policies_equivalent(TRANSITIONED, &standard));
}

#[test]
fn archive_fields_are_shaped_as_ecr_wants() {
    let unitless = PULLED.replace(r#""countUnit":"days","#, "");
    assert_eq!(
        shape_paths(parse(&unitless)),
        ["rules[0].selection.countUnit"]
    );
    let no_target = PULLED.replace(r#","targetStorageClass":"archive""#, "");
    assert_eq!(
        shape_paths(parse(&no_target)),
        ["rules[0].action.targetStorageClass"]
    );
    let standard_target = PULLED.replace(
        r#""targetStorageClass":"archive""#,
        r#""targetStorageClass":"standard""#,
    );
    assert_eq!(
        shape_paths(parse(&standard_target)),
        ["rules[0].action.targetStorageClass"]
    );
    let expire_with_target = TRANSITIONED.replace(
        r#"{"type":"expire"}"#,
        r#"{"type":"expire","targetStorageClass":"archive"}"#,
    );
    assert_eq!(
        shape_paths(parse(&expire_with_target)),
        ["rules[0].action.targetStorageClass"]
    );
    let archive_action = PULLED.replace(r#""type":"transition""#, r#""type":"archive""#);
    assert_eq!(
        shape_paths(parse(&archive_action)),
        ["rules[0].action.type"]
    );
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

/// A rule for tagged images with the given (prefix list, pattern list).
fn tagged_rule(
    rule_priority: u32,
    description: Option<String>,
    (tag_prefix_list, tag_pattern_list): (Vec<String>, Vec<String>),
    count: Count,
) -> Rule {
    Rule {
        rule_priority,
        description,
        selection: Selection {
            tag_status: TagStatus::Tagged,
            tag_prefix_list,
            tag_pattern_list,
            storage_class: StorageClass::Standard,
            count,
        },
        action: Action::Expire,
    }
}

/// Makes the last rules `untagged` / `any` now and then, where ECR allows them.
fn untag_the_last_rules(mut rules: Vec<Rule>) -> Vec<Rule> {
    let n = rules.len();
    if n >= 2 && rules[0].rule_priority.is_multiple_of(2) {
        rules[n - 2].selection.tag_status = TagStatus::Untagged;
    }
    if rules[n - 1].rule_priority.is_multiple_of(3) {
        rules[n - 1].selection.tag_status = TagStatus::Any;
    }
    for rule in &mut rules {
        if rule.selection.tag_status != TagStatus::Tagged {
            rule.selection.tag_prefix_list.clear();
            rule.selection.tag_pattern_list.clear();
        }
    }
    rules
}

fn valid_rules() -> impl Strategy<Value = Vec<Rule>> {
    let text = "[a-z0-9 \"\\\\/\u{e9}\u{1F600}\n\t-]{0,12}";
    let rule = (
        1u32..4,
        prop::option::of(text),
        0u8..3,
        prop::collection::vec("[a-z0-9._-]{1,6}", 1..3),
        prop::collection::vec("[a-z0-9*-]{1,8}", 1..3),
        prop_oneof![
            (1u32..1000).prop_map(|n| (Count::ImageCountMoreThan(n), Action::Expire)),
            (1u32..1000).prop_map(|days| (Count::SinceImagePushed { days }, Action::Expire)),
            (1u32..1000).prop_map(|n| (Count::ImageCountMoreThan(n), Action::Transition)),
            (1u32..1000).prop_map(|days| (Count::SinceImagePushed { days }, Action::Transition)),
            (1u32..1000).prop_map(|days| (Count::SinceImagePulled { days }, Action::Transition)),
            (90u32..1000).prop_map(|days| (Count::SinceImageTransitioned { days }, Action::Expire)),
        ],
    );
    prop::collection::vec(rule, 1..8)
        .prop_map(|specs| {
            let mut priority = 0;
            specs
                .into_iter()
                .map(
                    |(step, description, kind, prefixes, patterns, (count, action))| {
                        priority += step;
                        let lists = match kind {
                            0 => (prefixes, vec![]),
                            _ => (vec![], patterns),
                        };
                        let mut rule = tagged_rule(priority, description, lists, count);
                        rule.action = action;
                        if let Count::SinceImageTransitioned { .. } = count {
                            rule.selection.storage_class = StorageClass::Archive;
                        }
                        rule
                    },
                )
                .collect::<Vec<_>>()
        })
        .prop_map(untag_the_last_rules)
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
