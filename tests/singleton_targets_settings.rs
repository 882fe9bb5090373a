//! ReplicationConfig and ScanPolicy in RegistryTargets (issue #16) on the real kube-apiserver and
//! moto serving several accounts and regions through STS AssumeRole: two accounts × two regions,
//! each registry's replication and scanning configuration written from its own objects only,
//! drift in one registry restored there only.

mod common;

use common::targets::{create_target, registry_of};
use common::{Env, create, ready, wait_for};
use ecr_operator::api::{ReplicationConfig, ScanPolicy};
use ecr_operator::registry::{Registry, ReplicationSettings, ScanningSettings};
use kube::api::Api;
use testbed::kube_env::unique_name;

const B: &str = "222222222222";
const C: &str = "333333333333";

fn registry_ref(target: Option<&str>) -> String {
    target
        .map(|t| format!("registryRef: {{name: {t}}}, "))
        .unwrap_or_default()
}

/// A ReplicationConfig replicating `prefix` to `destination_region` of the same account.
fn replication(name: &str, target: Option<&str>, prefix: &str, destination: &str) -> String {
    let registry_ref = registry_ref(target);
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: ReplicationConfig
metadata: {{name: {name}}}
spec: {{{registry_ref}rules: [{{destinations: [{{region: {destination}, registryId: '444455556666'}}], repositoryFilters: [{{filter: {prefix}}}]}}]}}
"
    )
}

/// A ScanPolicy scanning repositories matching `filter` on push, with `scan_type`.
fn scanning(name: &str, target: Option<&str>, scan_type: &str, filter: &str) -> String {
    let registry_ref = registry_ref(target);
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: ScanPolicy
metadata: {{name: {name}}}
spec: {{{registry_ref}scanType: {scan_type}, rules: [{{scanFrequency: SCAN_ON_PUSH, repositoryFilters: [{{filter: '{filter}'}}]}}]}}
"
    )
}

/// (destination regions, filters) of each rule.
fn rules(settings: &ReplicationSettings) -> Vec<(Vec<String>, Vec<String>)> {
    let rules = settings.rules.iter();
    rules
        .map(|r| {
            let regions = r.destinations.iter().map(|(region, _)| region.clone());
            (regions.collect(), r.filters.clone())
        })
        .collect()
}

/// (scan type, filters of each rule).
fn scans(settings: &ScanningSettings) -> (String, Vec<Vec<String>>) {
    let filters = settings.rules.iter().map(|r| r.filters.clone()).collect();
    (settings.scan_type.clone(), filters)
}

fn one(regions: &[&str], filters: &[&str]) -> Vec<(Vec<String>, Vec<String>)> {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    vec![(strings(regions), strings(filters))]
}

/// Four registries: the own (us-east-1), B in us-east-1 and eu-west-1, C in eu-west-1. Each
/// gets its own replication rule and scanning configuration; drift of B eu-west-1's is restored
/// there, the three others untouched.
#[tokio::test]
async fn replication_and_scanning_are_written_per_registry() {
    let env = Env::start().await;
    let places = [
        (None, "us-east-1", "own"),
        (
            Some(create_target(&env, B, "us-east-1", "ecr-operator").await),
            "us-east-1",
            "b-east",
        ),
        (
            Some(create_target(&env, B, "eu-west-1", "ecr-operator").await),
            "eu-west-1",
            "b-west",
        ),
        (
            Some(create_target(&env, C, "eu-west-1", "ecr-operator").await),
            "eu-west-1",
            "c-west",
        ),
    ];
    let replications: Api<ReplicationConfig> = Api::all(env.kube.client());
    let policies: Api<ScanPolicy> = Api::all(env.kube.client());
    let mut names = Vec::new();
    for (i, (target, _, label)) in places.iter().enumerate() {
        let (r, s) = (
            unique_name(&format!("r-{label}")),
            unique_name(&format!("s-{label}")),
        );
        let scan_type = if i % 2 == 0 { "BASIC" } else { "ENHANCED" };
        create(
            &replications,
            &replication(&r, target.as_deref(), label, "ap-south-1"),
        )
        .await;
        create(
            &policies,
            &scanning(&s, target.as_deref(), scan_type, label),
        )
        .await;
        names.push((r, s, scan_type));
    }
    for (r, s, _) in &names {
        wait_for(&replications, r, "ReplicationConfig Ready", ready).await;
        wait_for(&policies, s, "ScanPolicy Ready", ready).await;
    }
    let registries = [
        env.registry.clone() as std::sync::Arc<dyn Registry>,
        registry_of(&env, B, "us-east-1").await,
        registry_of(&env, B, "eu-west-1").await,
        registry_of(&env, C, "eu-west-1").await,
    ];
    for ((_, _, label), (registry, (_, _, scan_type))) in
        places.iter().zip(registries.iter().zip(&names))
    {
        let replication = registry.get_replication().await.unwrap();
        assert_eq!(
            rules(&replication),
            one(&["ap-south-1"], &[label]),
            "{label}"
        );
        let scanning = registry.get_registry_scanning().await.unwrap();
        let expected = (scan_type.to_string(), vec![vec![label.to_string()]]);
        assert_eq!(scans(&scanning), expected, "{label}");
    }

    // Drift in B eu-west-1 only: restored there; the other registries keep theirs.
    let b_west = &registries[2];
    b_west
        .put_replication(&ReplicationSettings::default())
        .await
        .unwrap();
    testbed::wait::until("drift restored in B eu-west-1", common::WAIT, || async {
        let now = b_west.get_replication().await.unwrap();
        (rules(&now) == one(&["ap-south-1"], &["b-west"])).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for (i, label) in [(0, "own"), (1, "b-east"), (3, "c-west")] {
        let replication = registries[i].get_replication().await.unwrap();
        assert_eq!(
            rules(&replication),
            one(&["ap-south-1"], &[label]),
            "{label}"
        );
    }
}
