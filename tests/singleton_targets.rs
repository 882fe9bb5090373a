//! Registry-level singletons in RegistryTargets (issue #16) on the real kube-apiserver and moto
//! serving several accounts through STS AssumeRole: RegistryPolicy objects merge per target, each
//! registry's policy holds only its own objects' statements, drift in one registry is restored
//! there only, and a target that cannot be reached stops only its own objects, without a call;
//! RegistrySettings are one object per registry, each written in its own registry.

mod common;

use common::targets::{create_target, registry_of};
use common::{Env, create, failed_with, message_of, ready, wait_for};
use ecr_operator::api::{RegistryPolicy, RegistrySettings, RegistryTarget};
use ecr_operator::registry::Registry;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;
use testbed::kube_env::unique_name;

const B: &str = "222222222222";

/// A RegistryPolicy named `name` with one statement `sid`, in `target` (own registry: `None`).
fn policy(name: &str, sid: &str, target: Option<&str>) -> String {
    let registry_ref = target
        .map(|t| format!("registryRef: {{name: {t}}}, "))
        .unwrap_or_default();
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: RegistryPolicy
metadata: {{name: {name}}}
spec: {{{registry_ref}statements: [{{sid: {sid}, effect: Allow, principals: {{aws: ['arn:aws:iam::111122223333:root']}}, actions: [ecr:ReplicateImage], resources: ['*']}}]}}
"
    )
}

/// The statement ids of `registry`'s policy, in order; `None` when it has none.
async fn sids(registry: &dyn Registry) -> Option<Vec<String>> {
    let text = registry.get_registry_policy().await.unwrap()?;
    let doc: Value = serde_json::from_str(&text).unwrap();
    Some(
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap_or_default().to_string())
            .collect(),
    )
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// How many times moto served `op`, all accounts together.
async fn count(env: &Env, op: &str) -> u64 {
    let calls = env.moto.calls().await.unwrap();
    calls.get(op).copied().unwrap_or_default()
}

/// One RegistryPolicy in the own registry and two in target B: each registry's policy holds its
/// own objects' statements only (B's two merged, oldest first); drift in B is restored with one
/// write in B and none in the own registry; registryRef cannot be changed, added or removed.
#[tokio::test]
async fn registry_policies_merge_per_target_and_drift_independently() {
    let env = Env::start().await;
    let b = create_target(&env, B, "us-east-1", "ecr-operator").await;
    let api: Api<RegistryPolicy> = Api::all(env.kube.client());
    let own = unique_name("own");
    let (b1, b2) = (unique_name("b-one"), unique_name("b-two"));
    create(&api, &policy(&own, "Own", None)).await;
    create(&api, &policy(&b1, "BOne", Some(&b))).await;
    for name in [&own, &b1] {
        wait_for(&api, name, "Ready", ready).await;
    }
    create(&api, &policy(&b2, "BTwo", Some(&b))).await;
    let two = wait_for(&api, &b2, "Ready", ready).await;
    let status = two.status.unwrap_or_default();
    assert_eq!(
        (status.first_statement_index, status.statement_count),
        (Some(1), Some(1)),
        "the second object of B comes after the first, whatever the own registry holds"
    );
    let in_b = registry_of(&env, B, "us-east-1").await;
    assert_eq!(sids(env.registry.as_ref()).await, strings(&["Own"]));
    assert_eq!(sids(in_b.as_ref()).await, strings(&["BOne", "BTwo"]));

    // Drift in B: restored in B only (one write there, none in the own registry).
    let before = count(&env, "PutRegistryPolicy").await;
    let outside = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Outside","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"ecr:ReplicateImage","Resource":"*"}]}"#;
    in_b.put_registry_policy(outside).await.unwrap();
    testbed::wait::until("drift restored in B", common::WAIT, || {
        let in_b = in_b.clone();
        async move { (sids(in_b.as_ref()).await == strings(&["BOne", "BTwo"])).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&env, "PutRegistryPolicy").await, before + 2);
    assert_eq!(sids(env.registry.as_ref()).await, strings(&["Own"]));

    // registryRef is fixed: changed, added or removed, the API server refuses.
    let refused = [
        (
            &b1,
            serde_json::json!({"spec": {"registryRef": {"name": "other"}}}),
        ),
        (
            &own,
            serde_json::json!({"spec": {"registryRef": {"name": b.clone()}}}),
        ),
        (&b1, serde_json::json!({"spec": {"registryRef": null}})),
    ];
    for (name, patch) in refused {
        common::assert_patch_rejected(&api, name, &patch, "registryRef is immutable").await;
    }
}

/// A target whose role cannot be assumed: its RegistryPolicy reports TargetNotReady and nothing
/// is read or written for it anywhere, while the own registry's RegistryPolicy converges.
#[tokio::test]
async fn an_unassumable_target_stops_only_its_own_policies() {
    let env = Env::start().await;
    let refuse_everyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole"}]}"#;
    let role = unique_name("locked");
    env.moto
        .create_role(B, &role, refuse_everyone)
        .await
        .unwrap();
    let locked = create_target(&env, B, "us-east-1", &role).await;
    let api: Api<RegistryPolicy> = Api::all(env.kube.client());
    let (mine, theirs) = (unique_name("own"), unique_name("locked"));
    create(&api, &policy(&theirs, "Locked", Some(&locked))).await;
    create(&api, &policy(&mine, "Own", None)).await;
    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    wait_for(
        &targets,
        &locked,
        "AssumeRoleFailed",
        failed_with("AssumeRoleFailed"),
    )
    .await;
    wait_for(&api, &mine, "own Ready", ready).await;
    let p = wait_for(
        &api,
        &theirs,
        "TargetNotReady",
        failed_with("TargetNotReady"),
    )
    .await;
    assert!(message_of(&p).contains(&locked), "{}", message_of(&p));
    // One write, the own registry's: none for the locked target's object, in B or elsewhere.
    assert_eq!(count(&env, "PutRegistryPolicy").await, 1);
    assert_eq!(sids(env.registry.as_ref()).await, strings(&["Own"]));
    assert_eq!(
        sids(registry_of(&env, B, "us-east-1").await.as_ref()).await,
        None
    );
}

/// One RegistrySettings per registry: one in the own registry and one in target B are both
/// Ready (neither a Conflict of the other) and each registers its exclusion in its own registry
/// only; registryRef cannot be added afterwards.
#[tokio::test]
async fn registry_settings_are_one_per_target() {
    let env = Env::start().await;
    let b = create_target(&env, B, "us-east-1", "ecr-operator").await;
    let api: Api<RegistrySettings> = Api::all(env.kube.client());
    let (own, in_b) = (unique_name("own"), unique_name("in-b"));
    let ci = "arn:aws:iam::123456789012:role/ci";
    let scanner = "arn:aws:iam::222222222222:role/scanner";
    let settings = |name: &str, registry_ref: &str, principal: &str| {
        format!(
            "apiVersion: ecr.operator.dev/v1alpha1
kind: RegistrySettings
metadata: {{name: {name}}}
spec: {{{registry_ref}pullTimeUpdateExclusions: ['{principal}']}}
"
        )
    };
    create(&api, &settings(&own, "", ci)).await;
    let b_ref = format!("registryRef: {{name: {b}}}, ");
    create(&api, &settings(&in_b, &b_ref, scanner)).await;
    for name in [&own, &in_b] {
        wait_for(&api, name, "Ready", ready).await;
    }
    let own_set = env
        .registry
        .list_pull_time_update_exclusions()
        .await
        .unwrap();
    let b_set = registry_of(&env, B, "us-east-1")
        .await
        .list_pull_time_update_exclusions()
        .await
        .unwrap();
    assert_eq!(
        own_set.into_iter().collect::<Vec<_>>(),
        vec![ci.to_string()]
    );
    assert_eq!(
        b_set.into_iter().collect::<Vec<_>>(),
        vec![scanner.to_string()]
    );
    let patch = serde_json::json!({"spec": {"registryRef": {"name": b}}});
    match api
        .patch(&own, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422, "{s:?}"),
        other => panic!("registryRef added: {other:?}"),
    }
}
