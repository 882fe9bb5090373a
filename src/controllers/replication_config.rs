//! The ReplicationConfig controller: every ReplicationConfig object merges, oldest first, into
//! the registry's one replication configuration (see [`super::singleton`]).
//!
//! ECR calls per pass (for all objects together): one DescribeRegistry, and one
//! PutReplicationConfiguration only when the merged document differs from ECR's. No calls while
//! no ReplicationConfig exists.

use async_trait::async_trait;

use super::singleton::{Outcome, Setting, unique};
use super::status::Reported;
use crate::api::ReplicationConfig;
use crate::api::replication_config::ReplicationConfigStatus;
use crate::registry::{Registry, RegistryError, ReplicationRuleInfo, ReplicationSettings};

/// "The replication configuration for a private registry may contain up to 25 unique
/// destinations across all rules, with a maximum of 10 rules total. Each rule may contain up to
/// 100 filters." (ECR user guide, private image replication.)
pub const MAX_RULES: usize = 10;
pub const MAX_UNIQUE_DESTINATIONS: usize = 25;
pub const MAX_FILTERS_PER_RULE: usize = 100;

pub struct Replication;

fn rules_of(obj: &ReplicationConfig) -> Vec<ReplicationRuleInfo> {
    obj.spec
        .rules
        .iter()
        .map(|r| ReplicationRuleInfo {
            destinations: r
                .destinations
                .iter()
                .map(|d| (d.region.clone(), d.registry_id.clone()))
                .collect(),
            filters: r
                .repository_filters
                .iter()
                .map(|f| f.filter.clone())
                .collect(),
            delete_replication: r.delete_replication,
        })
        .collect()
}

/// Merges objects (oldest first) and checks ECR's limits before any call: an object whose
/// rules would break a limit is left out and reported; the objects before it still apply.
pub fn merge(objects: &[&ReplicationConfig]) -> (ReplicationSettings, Vec<Outcome>) {
    let mut doc = ReplicationSettings::default();
    let mut outcomes = Vec::with_capacity(objects.len());
    for obj in objects {
        let rules = rules_of(obj);
        let outcome = match over_limit(&doc, &rules) {
            Some(message) => Outcome::LimitExceeded(message),
            None => {
                let first = doc.rules.len();
                let count = rules.len();
                doc.rules.extend(rules);
                Outcome::Applied { first, count }
            }
        };
        outcomes.push(outcome);
    }
    (doc, outcomes)
}

/// The limit adding `rules` to `doc` would break, if any.
fn over_limit(doc: &ReplicationSettings, rules: &[ReplicationRuleInfo]) -> Option<String> {
    let rule_total = doc.rules.len() + rules.len();
    let destinations = unique(
        doc.rules
            .iter()
            .chain(rules)
            .flat_map(|r| r.destinations.iter().cloned()),
    );
    let too_many_filters = rules
        .iter()
        .position(|r| r.filters.len() > MAX_FILTERS_PER_RULE);
    if rule_total > MAX_RULES {
        Some(format!(
            "this object's {} rules would make {rule_total} replication rules in the registry; ECR allows {MAX_RULES} (older ReplicationConfig objects keep {} rules)",
            rules.len(),
            doc.rules.len()
        ))
    } else if destinations > MAX_UNIQUE_DESTINATIONS {
        Some(format!(
            "this object's rules would make {destinations} unique replication destinations in the registry; ECR allows {MAX_UNIQUE_DESTINATIONS}"
        ))
    } else {
        too_many_filters.map(|i| {
            format!(
                "rules[{i}] has {} repository filters; ECR allows {MAX_FILTERS_PER_RULE} per rule",
                rules[i].filters.len()
            )
        })
    }
}

#[async_trait]
impl Setting for Replication {
    type Object = ReplicationConfig;
    type Doc = ReplicationSettings;
    const WHAT: &'static str = "replication configuration";

    fn validate(obj: &ReplicationConfig) -> Result<(), String> {
        if obj.spec.rules.is_empty() {
            return Err("spec.rules: at least one rule is needed".to_string());
        }
        Ok(())
    }

    fn merge(objects: &[&ReplicationConfig]) -> (ReplicationSettings, Vec<Outcome>) {
        merge(objects)
    }

    fn is_empty(doc: &ReplicationSettings) -> bool {
        doc.rules.is_empty()
    }

    fn equivalent(a: &ReplicationSettings, b: &ReplicationSettings) -> bool {
        a == b
    }

    async fn read(registry: &dyn Registry) -> Result<ReplicationSettings, RegistryError> {
        registry.get_replication().await
    }

    async fn write(
        registry: &dyn Registry,
        doc: &ReplicationSettings,
    ) -> Result<(), RegistryError> {
        registry.put_replication(doc).await
    }

    fn set_applied(status: &mut ReplicationConfigStatus, outcome: &Outcome) {
        match outcome {
            Outcome::Applied { first, count } => {
                status.first_rule_index = Some(*first as i32);
                status.rule_count = Some(*count as i32);
            }
            _ => {
                status.first_rule_index = None;
                status.rule_count = None;
            }
        }
    }

    fn was_applied(obj: &ReplicationConfig) -> bool {
        obj.status().is_some_and(|s| s.first_rule_index.is_some())
    }

    fn target(obj: &ReplicationConfig) -> Option<&str> {
        obj.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }

    fn ready_message(outcome: &Outcome) -> String {
        match outcome {
            Outcome::Applied { first, count } => format!(
                "rules {}..{} of the registry replication configuration",
                first,
                first + count
            ),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::replication_config::{
        ReplicationConfigSpec, ReplicationDestination, ReplicationFilter, ReplicationRule,
    };

    fn obj(name: &str, rules: usize, regions: &[&str]) -> ReplicationConfig {
        let rule = ReplicationRule {
            destinations: regions
                .iter()
                .map(|r| ReplicationDestination {
                    region: r.to_string(),
                    registry_id: "123456789012".into(),
                })
                .collect(),
            repository_filters: vec![ReplicationFilter {
                filter: "team".into(),
                filter_type: Default::default(),
            }],
            delete_replication: false,
        };
        ReplicationConfig::new(
            name,
            ReplicationConfigSpec {
                registry_ref: None,
                rules: vec![rule; rules],
            },
        )
    }

    #[test]
    fn merges_in_order_and_reports_overflow_on_the_later_objects() {
        let a = obj("a", 6, &["eu-west-1"]);
        let b = obj("b", 5, &["eu-west-2"]);
        let c = obj("c", 4, &["eu-west-3"]);
        let (doc, outcomes) = merge(&[&a, &b, &c]);
        assert_eq!(doc.rules.len(), 10);
        assert_eq!(outcomes[0], Outcome::Applied { first: 0, count: 6 });
        assert!(
            matches!(&outcomes[1], Outcome::LimitExceeded(m) if m.contains("11 replication rules"))
        );
        assert_eq!(outcomes[2], Outcome::Applied { first: 6, count: 4 });
    }

    #[test]
    fn delete_replication_is_part_of_the_document() {
        let mut a = obj("a", 2, &["eu-west-1"]);
        a.spec.rules[1].delete_replication = true;
        let (doc, _) = merge(&[&a]);
        let flags: Vec<bool> = doc.rules.iter().map(|r| r.delete_replication).collect();
        assert_eq!(flags, vec![false, true]);
        // ECR holding the same rules without it is drift: the document is written again.
        let mut seen = doc.clone();
        seen.rules[1].delete_replication = false;
        assert!(!Replication::equivalent(&seen, &doc));
        assert!(Replication::equivalent(&doc.clone(), &doc));
    }

    #[test]
    fn unique_destinations_are_limited() {
        let regions: Vec<String> = (0..20).map(|i| format!("region-{i}")).collect();
        let more: Vec<String> = (15..30).map(|i| format!("region-{i}")).collect();
        let a = obj(
            "a",
            1,
            &regions.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let b = obj("b", 1, &more.iter().map(String::as_str).collect::<Vec<_>>());
        let (doc, outcomes) = merge(&[&a, &b]);
        assert_eq!(doc.rules.len(), 1);
        assert!(matches!(&outcomes[1], Outcome::LimitExceeded(m) if m.contains("30 unique")));
    }

    fn with_filters(mut o: ReplicationConfig, n: usize) -> ReplicationConfig {
        let filter = o.spec.rules[0].repository_filters[0].clone();
        o.spec.rules[0].repository_filters = vec![filter; n];
        o
    }

    fn regions(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("region-{i}")).collect()
    }

    /// (what, objects oldest first, rules in the document, per object: Ok((first, count)) or a
    /// fragment of the LimitExceeded message).
    type MergeCase = (
        &'static str,
        Vec<ReplicationConfig>,
        usize,
        Vec<Result<(usize, usize), &'static str>>,
    );

    #[test]
    fn merge_table() {
        let eu = &["eu-west-1"];
        let with_regions = |name: &str, r: &[String]| {
            obj(name, 1, &r.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let cases: Vec<MergeCase> = vec![
            ("nothing", vec![], 0, vec![]),
            ("one object", vec![obj("a", 2, eu)], 2, vec![Ok((0, 2))]),
            (
                "in order, each after the older ones",
                vec![obj("a", 3, eu), obj("b", 2, eu)],
                5,
                vec![Ok((0, 3)), Ok((3, 2))],
            ),
            (
                "exactly the rule limit",
                vec![obj("a", 6, eu), obj("b", 4, eu)],
                MAX_RULES,
                vec![Ok((0, 6)), Ok((6, 4))],
            ),
            (
                "over the rule limit: left out, later objects that fit still apply",
                vec![obj("a", 9, eu), obj("b", 2, eu), obj("c", 1, eu)],
                MAX_RULES,
                vec![
                    Ok((0, 9)),
                    Err("would make 11 replication rules"),
                    Ok((9, 1)),
                ],
            ),
            (
                "exactly the destination limit",
                vec![with_regions("a", &regions(0..25))],
                1,
                vec![Ok((0, 1))],
            ),
            (
                "over the destination limit",
                vec![
                    with_regions("a", &regions(0..20)),
                    with_regions("b", &regions(20..26)),
                ],
                1,
                vec![Ok((0, 1)), Err("26 unique replication destinations")],
            ),
            (
                "a destination counts once",
                vec![
                    with_regions("a", &regions(0..20)),
                    with_regions("b", &regions(0..20)),
                ],
                2,
                vec![Ok((0, 1)), Ok((1, 1))],
            ),
            (
                "exactly the filter limit",
                vec![with_filters(obj("a", 1, eu), MAX_FILTERS_PER_RULE)],
                1,
                vec![Ok((0, 1))],
            ),
            (
                "over the filter limit",
                vec![with_filters(obj("a", 1, eu), MAX_FILTERS_PER_RULE + 1)],
                0,
                vec![Err("rules[0] has 101 repository filters")],
            ),
        ];
        for (what, objects, rules, want) in cases {
            let refs: Vec<&ReplicationConfig> = objects.iter().collect();
            let (doc, outcomes) = merge(&refs);
            assert_eq!(doc.rules.len(), rules, "{what}");
            assert_eq!(outcomes.len(), want.len(), "{what}");
            for (got, want) in outcomes.iter().zip(&want) {
                match (got, want) {
                    (Outcome::Applied { first, count }, Ok(w)) => {
                        assert_eq!((*first, *count), *w, "{what}")
                    }
                    (Outcome::LimitExceeded(m), Err(part)) => {
                        assert!(m.contains(part), "{what}: {m}")
                    }
                    (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
                }
            }
        }
    }
}
