//! Validation of a rule set the way ECR validates a lifecycle policy on `PutLifecyclePolicy`,
//! reporting every problem at once so the controller can show them all in one condition.

use std::collections::{BTreeSet, HashMap};

use super::model::{Rule, Selection, TagStatus};
use super::policy::render;

/// ECR quota "Rules per lifecycle policy".
pub const MAX_RULES: usize = 50;
/// ECR quota "Lifecycle policy length" (characters of the policy text), also the maximum length of
/// `lifecyclePolicyText` in the `PutLifecyclePolicy` API: shape LifecyclePolicyText (`min: 100`,
/// `max: 30720`) in the ECR API model (botocore `data/ecr/2015-09-21/service-2.json`). The
/// minimum never binds: the shortest policy [`render`] can produce is 138 characters.
pub const MAX_POLICY_CHARS: usize = 30_720;
/// "There is a maximum limit of four wildcards (`*`) per string" in `tagPatternList`.
pub const MAX_PATTERN_WILDCARDS: usize = 4;

/// One problem in a rule set, located by a path into the policy document, such as
/// `rules[2].selection.tagPrefixList`. Rule indices are positions in the slice given to
/// [`validate`], i.e. in the user's spec, not rule priorities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    /// Where the problem is, e.g. `rules[0].selection.countNumber`.
    pub path: String,
    /// What is wrong, in ECR's terms.
    pub message: String,
}

impl ValidationError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Checks `rules` against ECR's documented constraints and returns every violation (empty when
/// the policy is acceptable):
///
/// - at least one rule and at most [`MAX_RULES`];
/// - `rulePriority` at least 1 and unique;
/// - `tagStatus: tagged` needs exactly one of `tagPrefixList` / `tagPatternList` (ECR: "may specify
///   either `tagPatternList` or `tagPrefixList`, but not both"); `untagged` and `any` take neither;
/// - at most [`MAX_PATTERN_WILDCARDS`] `*` per pattern;
/// - `countNumber` at least 1 ("`0` is not an accepted value");
/// - the `any` rule has the highest `rulePriority` (so there is at most one);
/// - only one rule selects untagged images (`tagStatus: untagged`);
/// - no two rules share the same set of tag prefixes (or of tag patterns);
/// - the rendered policy is at most [`MAX_POLICY_CHARS`] characters.
///
/// `countUnit` only with `sinceImagePushed` and `action.type: expire` hold by construction of the
/// model; [`super::parse`] enforces them on JSON text.
pub fn validate(rules: &[Rule]) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    if rules.is_empty() {
        errors.push(ValidationError::new(
            "rules",
            "a lifecycle policy needs at least one rule",
        ));
        return errors;
    }
    if rules.len() > MAX_RULES {
        errors.push(ValidationError::new(
            "rules",
            format!(
                "{} rules exceed ECR's limit of {MAX_RULES} rules per lifecycle policy",
                rules.len()
            ),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        validate_rule(i, rule, &mut errors);
    }
    validate_across_rules(rules, &mut errors);

    let chars = render(rules).chars().count();
    if chars > MAX_POLICY_CHARS {
        errors.push(ValidationError::new(
            "rules",
            format!(
                "the policy text is {chars} characters; ECR accepts at most {MAX_POLICY_CHARS}"
            ),
        ));
    }
    errors
}

fn validate_rule(i: usize, rule: &Rule, errors: &mut Vec<ValidationError>) {
    let at = |field: &str| format!("rules[{i}].{field}");
    let selection = &rule.selection;
    if rule.rule_priority == 0 {
        errors.push(ValidationError::new(
            at("rulePriority"),
            "must be at least 1",
        ));
    }
    validate_tag_lists(i, selection, errors);
    for (k, pattern) in selection.tag_pattern_list.iter().enumerate() {
        let wildcards = pattern.matches('*').count();
        if wildcards > MAX_PATTERN_WILDCARDS {
            errors.push(ValidationError::new(
                at(&format!("selection.tagPatternList[{k}]")),
                format!(
                    "pattern {pattern:?} has {wildcards} wildcards (*); ECR allows at most {MAX_PATTERN_WILDCARDS}"
                ),
            ));
        }
    }
    if selection.count.count_number() == 0 {
        errors.push(ValidationError::new(
            at("selection.countNumber"),
            "must be a positive integer (0 is not accepted)",
        ));
    }
}

/// A tagged rule filters by exactly one of its lists; the other statuses take neither.
fn validate_tag_lists(i: usize, selection: &Selection, errors: &mut Vec<ValidationError>) {
    let at = |field: &str| format!("rules[{i}].{field}");
    let has_prefixes = !selection.tag_prefix_list.is_empty();
    let has_patterns = !selection.tag_pattern_list.is_empty();
    match selection.tag_status {
        TagStatus::Tagged if has_prefixes && has_patterns => errors.push(ValidationError::new(
            at("selection"),
            "a tagged rule must specify only one of tagPrefixList or tagPatternList",
        )),
        TagStatus::Tagged if !has_prefixes && !has_patterns => errors.push(ValidationError::new(
            at("selection"),
            "tagStatus tagged requires tagPrefixList or tagPatternList",
        )),
        TagStatus::Tagged => {}
        TagStatus::Untagged | TagStatus::Any => {
            let status = selection.tag_status.as_str();
            for (present, field) in [
                (has_prefixes, "tagPrefixList"),
                (has_patterns, "tagPatternList"),
            ] {
                if present {
                    errors.push(ValidationError::new(
                        at(&format!("selection.{field}")),
                        format!("only allowed with tagStatus tagged, not {status}"),
                    ));
                }
            }
        }
    }
}

/// The first rule (by position) to use each priority, untagged selection and tag set, so that
/// later duplicates are reported pointing back at it.
#[derive(Default)]
struct FirstUse<'a> {
    priority: HashMap<u32, usize>,
    untagged: Option<usize>,
    prefixes: HashMap<BTreeSet<&'a str>, usize>,
    patterns: HashMap<BTreeSet<&'a str>, usize>,
}

/// One pass in spec order, so each rule's problems stay together in the report.
fn validate_across_rules(rules: &[Rule], errors: &mut Vec<ValidationError>) {
    let mut first = FirstUse::default();
    for (i, rule) in rules.iter().enumerate() {
        match first.priority.get(&rule.rule_priority) {
            Some(&earlier) => errors.push(ValidationError::new(
                format!("rules[{i}].rulePriority"),
                format!(
                    "rulePriority {} is already used by rules[{earlier}]; priorities must be unique",
                    rule.rule_priority
                ),
            )),
            None => {
                first.priority.insert(rule.rule_priority, i);
            }
        }
        match rule.selection.tag_status {
            TagStatus::Any => validate_any_is_last(rules, i, errors),
            TagStatus::Untagged => match first.untagged {
                Some(earlier) => errors.push(ValidationError::new(
                    format!("rules[{i}].selection.tagStatus"),
                    format!(
                        "only one rule may select untagged images; rules[{earlier}] already does"
                    ),
                )),
                None => first.untagged = Some(i),
            },
            TagStatus::Tagged => validate_unique_tag_sets(i, &rule.selection, &mut first, errors),
        }
    }
}

fn validate_any_is_last(rules: &[Rule], i: usize, errors: &mut Vec<ValidationError>) {
    let rule = &rules[i];
    // "Highest" must be strict: with two `any` rules at most one can be last.
    let outranked = rules
        .iter()
        .enumerate()
        .any(|(j, other)| j != i && other.rule_priority >= rule.rule_priority);
    if outranked {
        let highest = rules.iter().map(|r| r.rule_priority).max().unwrap_or(0);
        errors.push(ValidationError::new(
            format!("rules[{i}].rulePriority"),
            format!(
                "a rule with tagStatus any must have the highest rulePriority; {} is \
                 not above every other rule's (highest: {highest})",
                rule.rule_priority
            ),
        ));
    }
}

fn validate_unique_tag_sets<'a>(
    i: usize,
    selection: &'a Selection,
    first: &mut FirstUse<'a>,
    errors: &mut Vec<ValidationError>,
) {
    for (list, field, seen) in [
        (
            &selection.tag_prefix_list,
            "tagPrefixList",
            &mut first.prefixes,
        ),
        (
            &selection.tag_pattern_list,
            "tagPatternList",
            &mut first.patterns,
        ),
    ] {
        if list.is_empty() {
            continue;
        }
        let set: BTreeSet<&str> = list.iter().map(String::as_str).collect();
        match seen.get(&set) {
            Some(&earlier) => errors.push(ValidationError::new(
                format!("rules[{i}].selection.{field}"),
                format!(
                    "rules[{earlier}] has the same {field}; each rule needs a unique set of tags"
                ),
            )),
            None => {
                seen.insert(set, i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{Action, Count};
    use super::*;

    fn rule(
        priority: u32,
        tag_status: TagStatus,
        prefixes: &[&str],
        patterns: &[&str],
        count: Count,
    ) -> Rule {
        Rule {
            rule_priority: priority,
            description: None,
            selection: Selection {
                tag_status,
                tag_prefix_list: prefixes.iter().map(|s| s.to_string()).collect(),
                tag_pattern_list: patterns.iter().map(|s| s.to_string()).collect(),
                count,
            },
            action: Action::Expire,
        }
    }

    fn tagged(priority: u32, prefixes: &[&str]) -> Rule {
        rule(
            priority,
            TagStatus::Tagged,
            prefixes,
            &[],
            Count::ImageCountMoreThan(10),
        )
    }

    fn paths(errors: &[ValidationError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn a_typical_policy_is_valid() {
        let rules = [
            tagged(1, &["prod"]),
            rule(
                2,
                TagStatus::Tagged,
                &[],
                &["release-*"],
                Count::SinceImagePushed { days: 90 },
            ),
            rule(
                5,
                TagStatus::Untagged,
                &[],
                &[],
                Count::SinceImagePushed { days: 1 },
            ),
            rule(10, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(100)),
        ];
        assert_eq!(validate(&rules), []);
    }

    #[test]
    fn at_least_one_rule() {
        assert_eq!(paths(&validate(&[])), ["rules"]);
    }

    #[test]
    fn at_most_fifty_rules() {
        let prefixes: Vec<String> = (0..=MAX_RULES).map(|i| format!("p{i}")).collect();
        let mut rules: Vec<Rule> = (0..MAX_RULES)
            .map(|i| tagged(i as u32 + 1, &[prefixes[i].as_str()]))
            .collect();
        assert_eq!(validate(&rules), []);
        rules.push(tagged(
            MAX_RULES as u32 + 1,
            &[prefixes[MAX_RULES].as_str()],
        ));
        let errors = validate(&rules);
        assert_eq!(paths(&errors), ["rules"]);
        assert!(errors[0].message.contains("51 rules"), "{}", errors[0]);
    }

    #[test]
    fn priority_must_be_positive() {
        assert_eq!(
            paths(&validate(&[tagged(0, &["a"])])),
            ["rules[0].rulePriority"]
        );
    }

    #[test]
    fn priorities_must_be_unique() {
        let errors = validate(&[tagged(3, &["a"]), tagged(1, &["b"]), tagged(3, &["c"])]);
        assert_eq!(paths(&errors), ["rules[2].rulePriority"]);
        assert!(errors[0].message.contains("rules[0]"), "{}", errors[0]);
    }

    #[test]
    fn tagged_needs_exactly_one_list() {
        let neither = rule(1, TagStatus::Tagged, &[], &[], Count::ImageCountMoreThan(1));
        let both = rule(
            1,
            TagStatus::Tagged,
            &["a"],
            &["a*"],
            Count::ImageCountMoreThan(1),
        );
        assert_eq!(paths(&validate(&[neither])), ["rules[0].selection"]);
        let errors = validate(&[both]);
        assert_eq!(paths(&errors), ["rules[0].selection"]);
        assert!(errors[0].message.contains("only one of"), "{}", errors[0]);
    }

    #[test]
    fn lists_only_with_tagged() {
        let untagged = rule(
            1,
            TagStatus::Untagged,
            &["a"],
            &[],
            Count::ImageCountMoreThan(1),
        );
        let any = rule(
            1,
            TagStatus::Any,
            &["a"],
            &["b*"],
            Count::ImageCountMoreThan(1),
        );
        assert_eq!(
            paths(&validate(&[untagged])),
            ["rules[0].selection.tagPrefixList"]
        );
        assert_eq!(
            paths(&validate(&[any])),
            [
                "rules[0].selection.tagPrefixList",
                "rules[0].selection.tagPatternList"
            ]
        );
    }

    #[test]
    fn at_most_four_wildcards_per_pattern() {
        // The docs' own examples: valid and invalid.
        let ok = rule(
            1,
            TagStatus::Tagged,
            &[],
            &["*test*1*2*3", "test*1*2*3*"],
            Count::ImageCountMoreThan(1),
        );
        assert_eq!(validate(&[ok]), []);
        let bad = rule(
            1,
            TagStatus::Tagged,
            &[],
            &["ok*", "test*1*2*3*4*5*6"],
            Count::ImageCountMoreThan(1),
        );
        let errors = validate(&[bad]);
        assert_eq!(paths(&errors), ["rules[0].selection.tagPatternList[1]"]);
        assert!(errors[0].message.contains("6 wildcards"), "{}", errors[0]);
    }

    #[test]
    fn count_number_must_be_positive() {
        let count = rule(
            1,
            TagStatus::Untagged,
            &[],
            &[],
            Count::ImageCountMoreThan(0),
        );
        let age = rule(
            1,
            TagStatus::Untagged,
            &[],
            &[],
            Count::SinceImagePushed { days: 0 },
        );
        assert_eq!(
            paths(&validate(&[count])),
            ["rules[0].selection.countNumber"]
        );
        assert_eq!(paths(&validate(&[age])), ["rules[0].selection.countNumber"]);
    }

    #[test]
    fn any_rule_must_have_the_highest_priority() {
        let any = |p| rule(p, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1));
        assert_eq!(validate(&[any(9), tagged(2, &["a"])]), []);
        assert_eq!(
            paths(&validate(&[any(1), tagged(2, &["a"])])),
            ["rules[0].rulePriority"]
        );
        // Two `any` rules: only the last one can be highest.
        assert_eq!(
            paths(&validate(&[any(4), any(3)])),
            ["rules[1].rulePriority"]
        );
    }

    #[test]
    fn only_one_untagged_rule() {
        let untagged = |p| {
            rule(
                p,
                TagStatus::Untagged,
                &[],
                &[],
                Count::ImageCountMoreThan(1),
            )
        };
        assert_eq!(
            paths(&validate(&[untagged(1), untagged(2)])),
            ["rules[1].selection.tagStatus"]
        );
    }

    #[test]
    fn tag_sets_must_be_unique() {
        let errors = validate(&[
            tagged(1, &["a", "b"]),
            tagged(2, &["b", "a"]),
            tagged(3, &["a"]),
        ]);
        assert_eq!(paths(&errors), ["rules[1].selection.tagPrefixList"]);
        let pattern = |p, pats: &[&str]| {
            rule(
                p,
                TagStatus::Tagged,
                &[],
                pats,
                Count::ImageCountMoreThan(1),
            )
        };
        // A prefix list and a pattern list with the same text are different filters.
        assert_eq!(validate(&[tagged(1, &["a"]), pattern(2, &["a"])]), []);
        assert_eq!(
            paths(&validate(&[pattern(1, &["a*"]), pattern(2, &["a*"])])),
            ["rules[1].selection.tagPatternList"]
        );
    }

    #[test]
    fn rendered_length_is_limited() {
        let mut long = tagged(1, &["a"]);
        long.description = Some("x".repeat(MAX_POLICY_CHARS));
        let errors = validate(&[long]);
        assert_eq!(paths(&errors), ["rules"]);
        assert!(errors[0].message.contains("characters"), "{}", errors[0]);
    }

    /// Issue #15: the limit is LifecyclePolicyText's, met exactly at its edge; and no valid rule
    /// set renders shorter than the model's minimum.
    #[test]
    fn rendered_length_edges_are_the_models() {
        let padded = |chars: usize| {
            let mut r = tagged(1, &["a"]);
            r.description = Some(String::new());
            let base = render(std::slice::from_ref(&r)).chars().count();
            r.description = Some("é".repeat(chars - base));
            r
        };
        let at_limit = padded(MAX_POLICY_CHARS);
        assert_eq!(
            render(std::slice::from_ref(&at_limit)).chars().count(),
            MAX_POLICY_CHARS
        );
        assert_eq!(validate(&[at_limit]), []);
        let errors = validate(&[padded(MAX_POLICY_CHARS + 1)]);
        assert_eq!(paths(&errors), ["rules"]);
        assert!(
            errors[0].message.contains("30721 characters") && errors[0].message.contains("30720"),
            "{}",
            errors[0]
        );
        let shortest = rule(1, TagStatus::Any, &[], &[], Count::ImageCountMoreThan(1));
        let shortest = render(&[shortest]).chars().count();
        assert_eq!(shortest, 138);
        assert!(shortest >= 100, "LifecyclePolicyText min is 100");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let rules = [
            rule(0, TagStatus::Any, &["x"], &[], Count::ImageCountMoreThan(0)),
            rule(
                2,
                TagStatus::Tagged,
                &[],
                &[],
                Count::SinceImagePushed { days: 3 },
            ),
        ];
        assert_eq!(
            paths(&validate(&rules)),
            [
                "rules[0].rulePriority",
                "rules[0].selection.tagPrefixList",
                "rules[0].selection.countNumber",
                "rules[1].selection",
                "rules[0].rulePriority",
            ]
        );
    }

    #[test]
    fn display_is_path_then_message() {
        let e = ValidationError::new("rules[1].selection", "broken");
        assert_eq!(e.to_string(), "rules[1].selection: broken");
    }
}
