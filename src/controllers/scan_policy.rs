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
use crate::api::scan_policy::{ScanFrequency, ScanPolicyStatus, ScanType};
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
    let mut owner: Option<String> = None;
    let mut outcomes = Vec::with_capacity(objects.len());
    for obj in objects {
        if obj.spec.rules.is_empty() {
            outcomes.push(Outcome::NotParticipating(
                "enforcement settings valid; this ScanPolicy has no scanning rules".to_string(),
            ));
            continue;
        }
        let wanted = scan_type(obj.spec.scan_type);
        if let Some(first) = &owner
            && doc.scan_type != wanted
        {
            outcomes.push(Outcome::Conflict(format!(
                "ScanPolicy {first} sets scanType {}; this ScanPolicy asks for {wanted}, and ECR holds one scan type per registry",
                doc.scan_type
            )));
            continue;
        }
        let mut candidate = doc.clone();
        candidate.scan_type = wanted.to_string();
        for rule in &obj.spec.rules {
            let freq = frequency(rule.scan_frequency);
            let idx = match candidate.rules.iter().position(|r| r.frequency == freq) {
                Some(i) => i,
                None => {
                    candidate.rules.push(ScanningRuleInfo {
                        frequency: freq.to_string(),
                        filters: Vec::new(),
                    });
                    candidate.rules.len() - 1
                }
            };
            for f in &rule.repository_filters {
                if !candidate.rules[idx].filters.contains(&f.filter) {
                    candidate.rules[idx].filters.push(f.filter.clone());
                }
            }
        }
        if let Some(r) = candidate
            .rules
            .iter()
            .find(|r| r.filters.len() > MAX_FILTERS_PER_RULE)
        {
            outcomes.push(Outcome::LimitExceeded(format!(
                "this object's filters would make {} filters in the {} rule of the registry; ECR allows {MAX_FILTERS_PER_RULE}",
                r.filters.len(),
                r.frequency
            )));
            continue;
        }
        doc = candidate;
        owner.get_or_insert_with(|| obj.metadata.name.clone().unwrap_or_default());
        outcomes.push(Outcome::Applied {
            first: 0,
            count: obj.spec.rules.len(),
        });
    }
    (doc, outcomes)
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
    use crate::api::scan_policy::{AllowlistEntry, ScanFilter, ScanPolicySpec, ScanRule};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn policy(name: &str, t: ScanType, rules: &[(ScanFrequency, &[&str])]) -> ScanPolicy {
        ScanPolicy::new(
            name,
            ScanPolicySpec {
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
}
