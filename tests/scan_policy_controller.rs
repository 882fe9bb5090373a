//! The ScanPolicy controller end to end: registry scanning merged from the objects that agree on
//! the scan type, and validation of the enforcement part, against the API server double and moto.

mod common;

use common::{Env, assert_rejected, create, failed_with, message_of, ready, wait_for, wait_gone};
use ecr_operator::api::ScanPolicy;
use ecr_operator::registry::{Registry, ScanningSettings};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

fn policy(name: &str, scan_type: &str, filters: &[&str]) -> String {
    let rules = if filters.is_empty() {
        "[]".to_string()
    } else {
        let frequency = if scan_type == "ENHANCED" {
            "CONTINUOUS_SCAN"
        } else {
            "SCAN_ON_PUSH"
        };
        let fs: Vec<String> = filters
            .iter()
            .map(|f| format!("{{filter: '{f}'}}"))
            .collect();
        format!(
            "[{{scanFrequency: {frequency}, repositoryFilters: [{}]}}]",
            fs.join(", ")
        )
    };
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ScanPolicy\nmetadata: {{name: {name}}}\nspec: {{scanType: {scan_type}, rules: {rules}, enforcement: {{mode: warn, severityThreshold: HIGH}}}}\n"
    )
}

async fn ecr(env: &Env) -> ScanningSettings {
    env.registry.get_registry_scanning().await.unwrap()
}

fn filters(s: &ScanningSettings) -> Vec<String> {
    let mut f: Vec<String> = s.rules.iter().flat_map(|r| r.filters.clone()).collect();
    f.sort();
    f
}

#[tokio::test]
async fn merge_conflict_change_drift_and_delete() {
    let env = Env::start().await;
    let api: Api<ScanPolicy> = Api::all(env.kube.client());
    create(&api, &policy("team-a", "BASIC", &["team-a/*"])).await;
    wait_for(&api, "team-a", "team-a Ready", ready).await;
    create(&api, &policy("team-b", "BASIC", &["team-b/*", "team-a/*"])).await;
    wait_for(&api, "team-b", "team-b Ready", ready).await;
    let doc = ecr(&env).await;
    assert_eq!(doc.scan_type, "BASIC");
    assert_eq!(doc.rules.len(), 1);
    assert_eq!(filters(&doc), ["team-a/*", "team-b/*"]);

    // Another scan type is newer: Conflict, the registry keeps BASIC. (Named to sort last too:
    // creationTimestamp has second precision and ties are broken by name.)
    create(&api, &policy("z-inspector", "ENHANCED", &["*"])).await;
    let c = wait_for(&api, "z-inspector", "Conflict", failed_with("Conflict")).await;
    assert!(message_of(&c).contains("team-a"), "{c:?}");
    // Enforcement only: takes no part, Ready.
    create(&api, &policy("enforce-only", "ENHANCED", &[])).await;
    wait_for(&api, "enforce-only", "Ready", ready).await;
    assert_eq!(ecr(&env).await.scan_type, "BASIC");

    // Change: team-b's filter changes.
    api.patch(
        "team-b",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "team-b/prod-*"}]}]}})),
    )
    .await
    .unwrap();
    wait_for(&api, "team-b", "change applied", |o| {
        ready(o) && o.metadata.generation == Some(2)
    })
    .await;
    assert_eq!(filters(&ecr(&env).await), ["team-a/*", "team-b/prod-*"]);

    // Drift: scanning switched off in the console comes back.
    env.ecr()
        .put_registry_scanning_configuration()
        .scan_type(aws_sdk_ecr::types::ScanType::Basic)
        .set_rules(Some(vec![]))
        .send()
        .await
        .unwrap();
    testbed::wait::until("drift restored", common::WAIT, || async {
        (filters(&ecr(&env).await).len() == 2).then_some(())
    })
    .await
    .unwrap();
    let puts = env
        .registry
        .stats()
        .operation("PutRegistryScanningConfiguration");
    let reads = env
        .registry
        .stats()
        .operation("GetRegistryScanningConfiguration");
    testbed::wait::until("three more passes", common::WAIT, || async {
        (env.registry
            .stats()
            .operation("GetRegistryScanningConfiguration")
            >= reads + 3)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.registry
            .stats()
            .operation("PutRegistryScanningConfiguration"),
        puts,
        "no writes on resync"
    );

    // Delete: the conflicting object first (nothing changes), then the contributors; the last
    // one restores the registry default.
    for name in ["z-inspector", "enforce-only", "team-a"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
        wait_gone(&api, name).await;
    }
    assert_eq!(filters(&ecr(&env).await), ["team-b/prod-*"]);
    api.delete("team-b", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "team-b").await;
    assert_eq!(ecr(&env).await, ScanningSettings::default());
}

#[tokio::test]
async fn invalid_enforcement_and_foreign_configuration() {
    let env = Env::start().await;
    let api: Api<ScanPolicy> = Api::all(env.kube.client());
    // The CRD rejects what it can see.
    assert_rejected(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ScanPolicy\nmetadata: {name: bad}\nspec: {scanType: BASIC, rules: [{scanFrequency: CONTINUOUS_SCAN, repositoryFilters: [{filter: '*'}]}]}\n",
        "CONTINUOUS_SCAN requires scanType ENHANCED",
    )
    .await;
    // Selector operators are Kubernetes' four (the schema's enum).
    assert_rejected(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ScanPolicy\nmetadata: {name: bad}\nspec: {enforcement: {namespaceSelector: {matchExpressions: [{key: team, operator: Within, values: [a]}]}}}\n",
        "spec.enforcement.namespaceSelector.matchExpressions[0].operator",
    )
    .await;
    // The controller reports what only it checks: real dates.
    create(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1
kind: ScanPolicy
metadata: {name: selector}
spec:
  enforcement:
    allowlist: [{id: CVE-2024-3094, reason: vendor fix pending, expires: '2026-02-30T00:00:00Z'}]
",
    )
    .await;
    let invalid = wait_for(&api, "selector", "Invalid", failed_with("Invalid")).await;
    let msg = message_of(&invalid);
    assert!(msg.contains("allowlist[0].expires"), "{msg}");

    // A scanning configuration someone else set is not overwritten.
    env.ecr()
        .put_registry_scanning_configuration()
        .scan_type(aws_sdk_ecr::types::ScanType::Enhanced)
        .rules(
            aws_sdk_ecr::types::RegistryScanningRule::builder()
                .scan_frequency(aws_sdk_ecr::types::ScanFrequency::ContinuousScan)
                .repository_filters(
                    aws_sdk_ecr::types::ScanningRepositoryFilter::builder()
                        .filter("*")
                        .filter_type(aws_sdk_ecr::types::ScanningRepositoryFilterType::Wildcard)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let before = ecr(&env).await;
    create(&api, &policy("mine", "BASIC", &["x/*"])).await;
    let c = wait_for(&api, "mine", "Conflict", failed_with("Conflict")).await;
    assert!(message_of(&c).contains("did not write"), "{c:?}");
    api.delete("mine", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "mine").await;
    assert_eq!(ecr(&env).await, before);
    assert_eq!(
        env.registry
            .stats()
            .operation("PutRegistryScanningConfiguration"),
        0
    );
}

/// Found by the chaos run (seed 11): when the last objects with scanning rules dropped them by
/// a spec change (not by deletion), their rules stayed in ECR forever. They must come out.
#[tokio::test]
async fn rules_withdrawn_by_a_spec_change_are_removed() {
    let env = Env::start().await;
    let api: Api<ScanPolicy> = Api::all(env.kube.client());
    create(&api, &policy("withdraw", "BASIC", &["app/*"])).await;
    wait_for(&api, "withdraw", "Ready", ready).await;
    assert_eq!(filters(&ecr(&env).await), ["app/*"]);
    api.patch(
        "withdraw",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"rules": []}})),
    )
    .await
    .unwrap();
    wait_for(&api, "withdraw", "enforcement only", |p: &ScanPolicy| {
        ready(p) && message_of(p).contains("no scanning rules")
    })
    .await;
    testbed::wait::until("rules removed from ECR", common::WAIT, || async {
        ecr(&env).await.rules.is_empty().then_some(())
    })
    .await
    .unwrap();
}

/// Found by the chaos run (seed 11): a policy whose spec changed after its rules were written,
/// and that was deleted before the new spec reached ECR, left its old rules in ECR for good
/// (the operator compared ECR with the changed spec, found them different, and called the
/// document someone else's). The operator wrote it, so it goes.
#[tokio::test]
async fn rules_of_a_policy_deleted_before_its_change_reached_ecr_are_removed() {
    use testbed::moto::{FaultKind, FaultScope};
    let env = Env::start().await;
    let api: Api<ScanPolicy> = Api::all(env.kube.client());
    create(&api, &policy("moving", "BASIC", &["app/*"])).await;
    wait_for(&api, "moving", "Ready", ready).await;
    assert_eq!(filters(&ecr(&env).await), ["app/*"]);

    // ECR refuses every write for now: the change cannot reach it.
    env.moto
        .inject(
            "PutRegistryScanningConfiguration",
            FaultKind::ServerError,
            FaultScope::Fraction {
                fraction: 1.0,
                seed: 1,
            },
        )
        .await
        .unwrap();
    api.patch(
        "moving",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"rules": [
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "web/*"}]}
        ]}})),
    )
    .await
    .unwrap();
    wait_for(&api, "moving", "the write failing", |p: &ScanPolicy| {
        !ready(p)
            && p.metadata.generation == p.status.as_ref().and_then(|s| s.common.observed_generation)
    })
    .await;
    api.delete("moving", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(filters(&ecr(&env).await), ["app/*"]);

    env.moto.clear_faults().await.unwrap();
    wait_gone(&api, "moving").await;
    assert_eq!(ecr(&env).await, ScanningSettings::default());
}
