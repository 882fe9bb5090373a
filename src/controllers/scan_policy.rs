//! The ScanPolicy controller: the registry scanning configuration, merged from every ScanPolicy
//! with scanning rules (see [`super::singleton`]), and validation of the enforcement part the
//! admission webhook consumes.
//!
//! The oldest ScanPolicy with rules sets the scan type; later ones with the same scan type add
//! their filters to the rule of the same frequency; later ones with another scan type report
//! Conflict. A ScanPolicy without rules only configures enforcement and takes no part.
//!
//! ECR calls per pass (for all objects together): one GetRegistryScanningConfiguration, and one
//! PutRegistryScanningConfiguration only when the merged configuration differs from ECR's.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::DateTime;

use super::singleton::{Outcome, Setting};
use super::status::Reported;
use crate::api::ScanPolicy;
use crate::api::scan_policy::{ScanFilter, ScanFrequency, ScanPolicyStatus, ScanType};
use crate::image::selector_matches;
use crate::registry::{Registry, RegistryError, ScanningRuleInfo, ScanningSettings};

/// Repository filters per scanning rule (RegistryScanningRule.repositoryFilters: 1..100).
pub const MAX_FILTERS_PER_RULE: usize = 100;

pub struct Scanning;

fn scan_type(t: ScanType) -> &'static str {
    match t {
        ScanType::Basic => "BASIC",
        ScanType::Enhanced => "ENHANCED",
    }
}

fn frequency(f: ScanFrequency) -> &'static str {
    match f {
        ScanFrequency::ScanOnPush => "SCAN_ON_PUSH",
        ScanFrequency::ContinuousScan => "CONTINUOUS_SCAN",
        ScanFrequency::Manual => "MANUAL",
    }
}

/// Problems in the spec the schema cannot catch: a selector Kubernetes would reject, an
/// allowlist expiry that is not a real date, two rules with the same frequency.
pub fn validate(obj: &ScanPolicy) -> Result<(), String> {
    let mut problems = Vec::new();
    let e = &obj.spec.enforcement;
    if let Some(selector) = &e.namespace_selector
        && let Err(err) = selector_matches(selector, &BTreeMap::new())
    {
        problems.push(format!("spec.enforcement.namespaceSelector: {err}"));
    }
    for (i, entry) in e.allowlist.iter().enumerate() {
        if let Some(expires) = &entry.expires
            && DateTime::parse_from_rfc3339(expires).is_err()
        {
            problems.push(format!(
                "spec.enforcement.allowlist[{i}].expires: {expires:?} is not an RFC 3339 date-time"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, rule) in obj.spec.rules.iter().enumerate() {
        if !seen.insert(rule.scan_frequency) {
            problems.push(format!(
                "spec.rules[{i}]: a second rule with scanFrequency {}; ECR allows one rule per frequency",
                frequency(rule.scan_frequency)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Merges objects (oldest first) into one scanning configuration.
pub fn merge(objects: &[&ScanPolicy]) -> (ScanningSettings, Vec<Outcome>) {
    let mut doc = ScanningSettings::default();
    // The oldest object that sets the scan type.
    let mut owner: Option<String> = None;
    let mut outcomes = Vec::with_capacity(objects.len());
    for obj in objects {
        let outcome = match with_rules_of(&doc, owner.as_deref(), obj) {
            Ok(merged) => {
                doc = merged;
                owner.get_or_insert_with(|| obj.metadata.name.clone().unwrap_or_default());
                Outcome::Applied {
                    first: 0,
                    count: obj.spec.rules.len(),
                }
            }
            Err(outcome) => outcome,
        };
        outcomes.push(outcome);
    }
    (doc, outcomes)
}

/// `doc` with the object's rules merged in, or why the object takes no part.
fn with_rules_of(
    doc: &ScanningSettings,
    owner: Option<&str>,
    obj: &ScanPolicy,
) -> Result<ScanningSettings, Outcome> {
    if obj.spec.rules.is_empty() {
        return Err(Outcome::NotParticipating(
            "enforcement settings valid; this ScanPolicy has no scanning rules".to_string(),
        ));
    }
    let wanted = scan_type(obj.spec.scan_type);
    if let Some(first) = owner
        && doc.scan_type != wanted
    {
        return Err(Outcome::Conflict(format!(
            "ScanPolicy {first} sets scanType {}; this ScanPolicy asks for {wanted}, and ECR holds one scan type per registry",
            doc.scan_type
        )));
    }
    let mut merged = doc.clone();
    merged.scan_type = wanted.to_string();
    for rule in &obj.spec.rules {
        add_filters(
            &mut merged,
            frequency(rule.scan_frequency),
            &rule.repository_filters,
        );
    }
    match merged
        .rules
        .iter()
        .find(|r| r.filters.len() > MAX_FILTERS_PER_RULE)
    {
        Some(r) => Err(Outcome::LimitExceeded(format!(
            "this object's filters would make {} filters in the {} rule of the registry; ECR allows {MAX_FILTERS_PER_RULE}",
            r.filters.len(),
            r.frequency
        ))),
        None => Ok(merged),
    }
}

/// Adds filters to the rule of `freq` (created when absent), each filter once.
fn add_filters(doc: &mut ScanningSettings, freq: &str, filters: &[ScanFilter]) {
    let idx = match doc.rules.iter().position(|r| r.frequency == freq) {
        Some(i) => i,
        None => {
            doc.rules.push(ScanningRuleInfo {
                frequency: freq.to_string(),
                filters: Vec::new(),
            });
            doc.rules.len() - 1
        }
    };
    for f in filters {
        if !doc.rules[idx].filters.contains(&f.filter) {
            doc.rules[idx].filters.push(f.filter.clone());
        }
    }
}

fn normalize(doc: &ScanningSettings) -> (String, BTreeMap<String, BTreeSet<String>>) {
    let rules = doc
        .rules
        .iter()
        .filter(|r| !r.filters.is_empty())
        .map(|r| (r.frequency.clone(), r.filters.iter().cloned().collect()))
        .collect();
    (doc.scan_type.clone(), rules)
}

#[async_trait]
impl Setting for Scanning {
    type Object = ScanPolicy;
    type Doc = ScanningSettings;
    const WHAT: &'static str = "scanning configuration";

    fn validate(obj: &ScanPolicy) -> Result<(), String> {
        validate(obj)
    }

    fn merge(objects: &[&ScanPolicy]) -> (ScanningSettings, Vec<Outcome>) {
        merge(objects)
    }

    fn is_empty(doc: &ScanningSettings) -> bool {
        normalize(doc) == normalize(&ScanningSettings::default())
    }

    fn equivalent(a: &ScanningSettings, b: &ScanningSettings) -> bool {
        normalize(a) == normalize(b)
    }

    async fn read(registry: &dyn Registry) -> Result<ScanningSettings, RegistryError> {
        registry.get_registry_scanning().await
    }

    async fn write(registry: &dyn Registry, doc: &ScanningSettings) -> Result<(), RegistryError> {
        registry.put_registry_scanning(doc).await
    }

    fn set_applied(status: &mut ScanPolicyStatus, outcome: &Outcome) {
        status.applied_rules = match outcome {
            Outcome::Applied { count, .. } => Some(*count as i32),
            _ => None,
        };
    }

    fn was_applied(obj: &ScanPolicy) -> bool {
        obj.status().is_some_and(|s| s.applied_rules.is_some())
    }

    fn target(obj: &ScanPolicy) -> Option<&str> {
        obj.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }

    fn ready_message(outcome: &Outcome) -> String {
        match outcome {
            Outcome::Applied { count, .. } => format!(
                "{count} scanning rules merged into the registry scanning configuration; enforcement settings valid"
            ),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::scan_policy::{AllowlistEntry, ScanPolicySpec, ScanRule};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn policy(name: &str, t: ScanType, rules: &[(ScanFrequency, &[&str])]) -> ScanPolicy {
        ScanPolicy::new(
            name,
            ScanPolicySpec {
                registry_ref: None,
                scan_type: t,
                rules: rules
                    .iter()
                    .map(|(f, filters)| ScanRule {
                        scan_frequency: *f,
                        repository_filters: filters
                            .iter()
                            .map(|x| ScanFilter {
                                filter: x.to_string(),
                                filter_type: Default::default(),
                            })
                            .collect(),
                    })
                    .collect(),
                enforcement: Default::default(),
                registry_ids: Vec::new(),
            },
        )
    }

    #[test]
    fn same_scan_type_merges_other_conflicts() {
        let a = policy(
            "a",
            ScanType::Basic,
            &[(ScanFrequency::ScanOnPush, &["team-a/*"])],
        );
        let b = policy(
            "b",
            ScanType::Basic,
            &[(ScanFrequency::ScanOnPush, &["team-b/*", "team-a/*"])],
        );
        let c = policy(
            "c",
            ScanType::Enhanced,
            &[(ScanFrequency::ContinuousScan, &["*"])],
        );
        let d = policy("d", ScanType::Enhanced, &[]);
        let (doc, outcomes) = merge(&[&a, &b, &c, &d]);
        assert_eq!(doc.scan_type, "BASIC");
        assert_eq!(doc.rules.len(), 1);
        assert_eq!(doc.rules[0].filters, vec!["team-a/*", "team-b/*"]);
        assert!(outcomes[0] == Outcome::Applied { first: 0, count: 1 });
        assert!(
            matches!(&outcomes[2], Outcome::Conflict(m) if m.contains("ScanPolicy a sets scanType BASIC"))
        );
        assert!(matches!(&outcomes[3], Outcome::NotParticipating(_)));
    }

    #[test]
    fn enforcement_is_validated() {
        let mut p = policy("a", ScanType::Basic, &[]);
        p.spec.enforcement.namespace_selector = Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "Within".into(),
                values: None,
            }]),
            match_labels: None,
        });
        p.spec.enforcement.allowlist = vec![AllowlistEntry {
            id: "CVE-1".into(),
            reason: "r".into(),
            expires: Some("2026-13-45T00:00:00Z".into()),
            images: vec![],
        }];
        let err = validate(&p).unwrap_err();
        assert!(err.contains("namespaceSelector"), "{err}");
        assert!(err.contains("allowlist[0].expires"), "{err}");
    }

    #[test]
    fn equivalence_ignores_order() {
        let a = ScanningSettings {
            scan_type: "BASIC".into(),
            rules: vec![ScanningRuleInfo {
                frequency: "SCAN_ON_PUSH".into(),
                filters: vec!["a".into(), "b".into()],
            }],
        };
        let mut b = a.clone();
        b.rules[0].filters.reverse();
        assert!(Scanning::equivalent(&a, &b));
        assert!(Scanning::is_empty(&ScanningSettings::default()));
        assert!(!Scanning::is_empty(&a));
    }

    /// An outcome's kind, for tables.
    fn kind(o: &Outcome) -> &'static str {
        match o {
            Outcome::Applied { .. } => "Applied",
            Outcome::NotParticipating(_) => "NotParticipating",
            Outcome::Invalid(_) => "Invalid",
            Outcome::Conflict(_) => "Conflict",
            Outcome::LimitExceeded(_) => "LimitExceeded",
        }
    }

    /// (what, objects oldest first, scan type, rules as (frequency, filters), outcome kinds).
    type MergeCase = (
        &'static str,
        Vec<ScanPolicy>,
        &'static str,
        Vec<(&'static str, Vec<&'static str>)>,
        Vec<&'static str>,
    );

    #[test]
    fn merge_table() {
        use ScanFrequency::*;
        use ScanType::*;
        let many: Vec<String> = (0..=MAX_FILTERS_PER_RULE)
            .map(|i| format!("r{i}/*"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cases: Vec<MergeCase> = vec![
            ("nothing", vec![], "BASIC", vec![], vec![]),
            (
                "one object",
                vec![policy("a", Enhanced, &[(ContinuousScan, &["*"])])],
                "ENHANCED",
                vec![("CONTINUOUS_SCAN", vec!["*"])],
                vec!["Applied"],
            ),
            (
                "same type and frequency: one rule, each filter once",
                vec![
                    policy("a", Basic, &[(ScanOnPush, &["a/*", "b/*"])]),
                    policy("b", Basic, &[(ScanOnPush, &["b/*", "c/*"])]),
                ],
                "BASIC",
                vec![("SCAN_ON_PUSH", vec!["a/*", "b/*", "c/*"])],
                vec!["Applied", "Applied"],
            ),
            (
                "another frequency: another rule",
                vec![
                    policy("a", Enhanced, &[(ScanOnPush, &["a/*"])]),
                    policy("b", Enhanced, &[(ContinuousScan, &["b/*"])]),
                ],
                "ENHANCED",
                vec![
                    ("SCAN_ON_PUSH", vec!["a/*"]),
                    ("CONTINUOUS_SCAN", vec!["b/*"]),
                ],
                vec!["Applied", "Applied"],
            ),
            (
                "another scan type conflicts with the oldest",
                vec![
                    policy("a", Basic, &[(ScanOnPush, &["a/*"])]),
                    policy("b", Enhanced, &[(ScanOnPush, &["b/*"])]),
                ],
                "BASIC",
                vec![("SCAN_ON_PUSH", vec!["a/*"])],
                vec!["Applied", "Conflict"],
            ),
            (
                "an object without rules sets no scan type",
                vec![
                    policy("a", Basic, &[]),
                    policy("b", Enhanced, &[(ScanOnPush, &["b/*"])]),
                ],
                "ENHANCED",
                vec![("SCAN_ON_PUSH", vec!["b/*"])],
                vec!["NotParticipating", "Applied"],
            ),
            (
                "too many filters: left out, the others still apply",
                vec![
                    policy("a", Basic, &[(ScanOnPush, &["a/*"])]),
                    policy("b", Basic, &[(ScanOnPush, &many)]),
                    policy("c", Basic, &[(ScanOnPush, &["c/*"])]),
                ],
                "BASIC",
                vec![("SCAN_ON_PUSH", vec!["a/*", "c/*"])],
                vec!["Applied", "LimitExceeded", "Applied"],
            ),
            (
                "an object left out over a limit sets no scan type",
                vec![
                    policy("a", Basic, &[(ScanOnPush, &many)]),
                    policy("b", Enhanced, &[(ScanOnPush, &["b/*"])]),
                ],
                "ENHANCED",
                vec![("SCAN_ON_PUSH", vec!["b/*"])],
                vec!["LimitExceeded", "Applied"],
            ),
        ];
        for (what, objects, scan_type, rules, kinds) in cases {
            let refs: Vec<&ScanPolicy> = objects.iter().collect();
            let (doc, outcomes) = merge(&refs);
            assert_eq!(doc.scan_type, scan_type, "{what}");
            let got: Vec<(&str, Vec<&str>)> = doc
                .rules
                .iter()
                .map(|r| {
                    (
                        r.frequency.as_str(),
                        r.filters.iter().map(String::as_str).collect(),
                    )
                })
                .collect();
            assert_eq!(got, rules, "{what}");
            assert_eq!(
                outcomes.iter().map(kind).collect::<Vec<_>>(),
                kinds,
                "{what}"
            );
        }
    }

    /// (what, change to a valid ScanPolicy, a fragment of the error or none).
    #[test]
    fn validate_table() {
        type Case = (&'static str, fn(&mut ScanPolicy), Option<&'static str>);
        let cases: Vec<Case> = vec![
            ("valid", |_| {}, None),
            (
                "selector operator Kubernetes rejects",
                |p| {
                    p.spec.enforcement.namespace_selector = Some(LabelSelector {
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: "team".into(),
                            operator: "Within".into(),
                            values: None,
                        }]),
                        match_labels: None,
                    })
                },
                Some("spec.enforcement.namespaceSelector"),
            ),
            (
                "allowlist expiry that is no date",
                |p| p.spec.enforcement.allowlist = vec![entry(Some("next week"))],
                Some("allowlist[0].expires: \"next week\" is not an RFC 3339 date-time"),
            ),
            (
                "allowlist expiry that is a date",
                |p| p.spec.enforcement.allowlist = vec![entry(Some("2030-01-01T00:00:00Z"))],
                None,
            ),
            (
                "allowlist without expiry",
                |p| p.spec.enforcement.allowlist = vec![entry(None)],
                None,
            ),
            (
                "two rules of one frequency",
                |p| p.spec.rules.push(p.spec.rules[0].clone()),
                Some("spec.rules[1]: a second rule with scanFrequency SCAN_ON_PUSH"),
            ),
            (
                "two frequencies",
                |p| {
                    let mut other = p.spec.rules[0].clone();
                    other.scan_frequency = ScanFrequency::ContinuousScan;
                    p.spec.rules.push(other)
                },
                None,
            ),
        ];
        for (what, change, want) in cases {
            let mut p = policy("a", ScanType::Basic, &[(ScanFrequency::ScanOnPush, &["*"])]);
            change(&mut p);
            match (validate(&p), want) {
                (Ok(()), None) => {}
                (Err(e), Some(part)) => assert!(e.contains(part), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn entry(expires: Option<&str>) -> AllowlistEntry {
        AllowlistEntry {
            id: "CVE-1".into(),
            reason: "r".into(),
            expires: expires.map(str::to_string),
            images: vec![],
        }
    }
}
