//! Validation of a rule set the way ECR validates a lifecycle policy on `PutLifecyclePolicy`,
//! reporting every problem at once so the controller can show them all in one condition.

use std::collections::{BTreeSet, HashMap};

use super::model::{Action, Count, Rule, Selection, StorageClass, TagStatus};
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
/// "Archived images have a minimum storage duration of 90 days. You cannot configure lifecycle
/// policies that delete images that have been in archive for less than 90 days" ("Archiving an
/// image"; "Images must be in archive storage for a minimum of 90 days before deletion",
/// "Examples of lifecycle policies"): the least `countNumber` of a `sinceImageTransitioned` rule.
pub const MIN_ARCHIVE_DAYS: u32 = 90;

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
/// - archive rules (see [`validate_archive`]): `storageClass: archive` exactly with
///   `countType: sinceImageTransitioned`, which needs `action: expire` and at least
///   [`MIN_ARCHIVE_DAYS`]; `sinceImagePulled` only with `action: transition`;
/// - among the rules of one storage class: the `any` rule has the highest `rulePriority` (so
///   there is at most one), only one rule selects untagged images, and no two rules share the
///   same set of tag prefixes (or of tag patterns);
/// - the rendered policy is at most [`MAX_POLICY_CHARS`] characters.
///
/// The evaluation rules say "The set of all rules selecting a specific storage class must contain
/// a unique set of prefixes" and "Only one rule selecting a specific storage class is allowed to
/// select untagged images". The properties page says "A rule with a tagStatus value of any must
/// have the highest value for rulePriority", yet the guide's own "Combining archive and expire
/// rules" example has an `any` rule at priority 1 (standard) and another at 2 (archive), so that
/// rule too holds per storage class here.
///
/// `countUnit: days` exactly with the `since*` count types and `targetStorageClass: archive`
/// exactly with `transition` hold by construction of the model; [`super::parse`] enforces them on
/// JSON text.
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
    validate_archive(i, rule, errors);
}

/// How the archive fields combine, per rule:
///
/// - "When using a countType of imageCountMoreThan, sinceImagePushed, or sinceImagePulled, the
///   only supported value is standard. When using a count type of sinceImageTransitioned, this is
///   required, and the only supported value is archive" (Lifecycle policy properties,
///   `storageClass`);
/// - "The sinceImagePulled count type must be used with the transition action. It cannot be used
///   with the expire action" and "The sinceImageTransitioned count type must be used with the
///   expire action and the archive storage class. Images must be in archive storage for a
///   minimum of 90 days before deletion" (Examples of lifecycle policies).
///
/// So a `transition` rule always selects `standard` images (archive is its only target).
fn validate_archive(i: usize, rule: &Rule, errors: &mut Vec<ValidationError>) {
    let at = |field: &str| format!("rules[{i}].{field}");
    let selection = &rule.selection;
    let transitioned = matches!(selection.count, Count::SinceImageTransitioned { .. });
    match (selection.storage_class, transitioned) {
        (StorageClass::Archive, false) => errors.push(ValidationError::new(
            at("selection.storageClass"),
            format!(
                "storageClass archive is only allowed with countType sinceImageTransitioned, not {}",
                selection.count.count_type()
            ),
        )),
        (StorageClass::Standard, true) => errors.push(ValidationError::new(
            at("selection.storageClass"),
            "countType sinceImageTransitioned requires storageClass archive",
        )),
        _ => {}
    }
    match (selection.count, rule.action) {
        (Count::SinceImagePulled { .. }, Action::Expire) => errors.push(ValidationError::new(
            at("action.type"),
            "countType sinceImagePulled must be used with action transition, not expire",
        )),
        (Count::SinceImageTransitioned { .. }, Action::Transition) => {
            errors.push(ValidationError::new(
                at("action.type"),
                "countType sinceImageTransitioned must be used with action expire, not transition",
            ))
        }
        (Count::SinceImageTransitioned { days }, _) if (1..MIN_ARCHIVE_DAYS).contains(&days) => {
            errors.push(ValidationError::new(
                at("selection.countNumber"),
                format!(
                    "images must stay in the archive at least {MIN_ARCHIVE_DAYS} days before they \
                     expire; countNumber {days} is less"
                ),
            ))
        }
        _ => {}
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

/// The first rule (by position) to use each priority, and per storage class each untagged
/// selection and tag set, so that later duplicates are reported pointing back at it.
#[derive(Default)]
struct FirstUse<'a> {
    priority: HashMap<u32, usize>,
    untagged: HashMap<StorageClass, usize>,
    prefixes: HashMap<(StorageClass, BTreeSet<&'a str>), usize>,
    patterns: HashMap<(StorageClass, BTreeSet<&'a str>), usize>,
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
            TagStatus::Untagged => match first.untagged.get(&rule.selection.storage_class) {
                Some(&earlier) => errors.push(ValidationError::new(
                    format!("rules[{i}].selection.tagStatus"),
                    format!(
                        "only one rule of a storage class may select untagged images; \
                         rules[{earlier}] already does for {}",
                        rule.selection.storage_class.as_str()
                    ),
                )),
                None => {
                    first.untagged.insert(rule.selection.storage_class, i);
                }
            },
            TagStatus::Tagged => validate_unique_tag_sets(i, &rule.selection, &mut first, errors),
        }
    }
}

fn validate_any_is_last(rules: &[Rule], i: usize, errors: &mut Vec<ValidationError>) {
    let rule = &rules[i];
    let class = rule.selection.storage_class;
    let same_class = || rules.iter().filter(|r| r.selection.storage_class == class);
    // "Highest" must be strict: with two `any` rules of a class at most one can be last.
    let outranked = rules.iter().enumerate().any(|(j, other)| {
        j != i
            && other.selection.storage_class == class
            && other.rule_priority >= rule.rule_priority
    });
    if outranked {
        let highest = same_class().map(|r| r.rule_priority).max().unwrap_or(0);
        errors.push(ValidationError::new(
            format!("rules[{i}].rulePriority"),
            format!(
                "a rule with tagStatus any must have the highest rulePriority of the rules \
                 selecting {} images; {} is not above every other one's (highest: {highest})",
                class.as_str(),
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
        let key = (selection.storage_class, set);
        match seen.get(&key) {
            Some(&earlier) => errors.push(ValidationError::new(
                format!("rules[{i}].selection.{field}"),
                format!(
                    "rules[{earlier}] has the same {field}; each rule needs a unique set of tags"
                ),
            )),
            None => {
                seen.insert(key, i);
            }
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
