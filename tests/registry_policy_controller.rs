//! The RegistryPolicy controller end to end: objects merged into the registry's one permissions
//! policy, against the API server (the real kube-apiserver with `KUBEBUILDER_ASSETS`) and moto.

mod common;

use common::{Env, assert_rejected, create, failed_with, message_of, ready, wait_for, wait_gone};
use ecr_operator::api::RegistryPolicy;
use ecr_operator::registry::Registry;
use ecr_operator::repository_policy::text_equivalent;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams};
use serde_json::Value;

const SOURCE: &str = "arn:aws:iam::111122223333:root";
const REPOSITORIES: &str = "arn:aws:ecr:us-east-1:123456789012:repository/*";

/// A RegistryPolicy with one statement per sid, granting `actions`.
fn policy(name: &str, sids: &[&str], actions: &str) -> String {
    let statements: Vec<String> = sids
        .iter()
        .map(|sid| {
            format!(
                "{{sid: {sid}, effect: Allow, principals: {{aws: ['{SOURCE}']}}, actions: [{actions}], resources: ['{REPOSITORIES}']}}"
            )
        })
        .collect();
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: RegistryPolicy\nmetadata: {{name: {name}}}\nspec: {{statements: [{}]}}\n",
        statements.join(", ")
    )
}

const REPLICATE: &str = "ecr:CreateRepository, ecr:ReplicateImage";

/// The registry policy's statement ids, in order; `None` when the registry has no policy.
async fn sids_in_ecr(env: &Env) -> Option<Vec<String>> {
    let text = env.registry.get_registry_policy().await.unwrap()?;
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

fn part(p: &RegistryPolicy) -> (Option<i32>, Option<i32>) {
    let s = p.status.as_ref().unwrap();
    (s.first_statement_index, s.statement_count)
}

/// Waits for an event `reason` about the RegistryPolicy `obj` (this very object, by uid).
async fn wait_event(env: &Env, obj: &RegistryPolicy, reason: &str) {
    let events: Api<Event> = Api::all(env.kube.client());
    let uid = obj.metadata.uid.clone();
    testbed::wait::until(&format!("{reason} event"), common::WAIT, || {
        let (events, uid) = (events.clone(), uid.clone());
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().is_some_and(|r| {
                            r.kind.as_deref() == Some("RegistryPolicy") && r.uid == uid
                        })
                })
                .then_some(())
        }
    })
    .await
    .unwrap();
}

async fn wait_sids(env: &Env, what: &str, want: Option<Vec<&str>>) {
    let want: Option<Vec<String>> = want.map(|w| w.iter().map(|s| s.to_string()).collect());
    testbed::wait::until(what, common::WAIT, || async {
        (sids_in_ecr(env).await == want).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn objects_merge_drift_is_corrected_and_the_last_delete_removes_the_policy() {
    let env = Env::start().await;
    let api: Api<RegistryPolicy> = Api::all(env.kube.client());
    // Creation times have whole seconds: names that sort like the creations keep the order.
    create(&api, &policy("a-replication", &["Replicate"], REPLICATE)).await;
    let replication = wait_for(&api, "a-replication", "replication Ready", ready).await;
    wait_event(&env, &replication, "Applied").await;
    create(
        &api,
        &policy(
            "b-cache",
            &["PullThroughCache", "Create"],
            "ecr:BatchImportUpstreamImage",
        ),
    )
    .await;
    let cache = wait_for(&api, "b-cache", "cache Ready", ready).await;
    assert_eq!(part(&cache), (Some(1), Some(2)));
    wait_sids(
        &env,
        "both merged, oldest first",
        Some(vec!["Replicate", "PullThroughCache", "Create"]),
    )
    .await;

    // In sync: each pass reads the policy once for all objects and writes nothing.
    let stats = env.registry.stats();
    let (puts, reads) = (
        stats.operation("PutRegistryPolicy"),
        stats.operation("GetRegistryPolicy"),
    );
    testbed::wait::until("three more passes", common::WAIT, || async {
        (stats.operation("GetRegistryPolicy") >= reads + 3).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        stats.operation("PutRegistryPolicy"),
        puts,
        "no write in sync"
    );

    // Drift: a policy changed in the console is restored by the next pass.
    let theirs = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Console","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"ecr:ReplicateImage","Resource":"*"}]}"#;
    env.registry.put_registry_policy(theirs).await.unwrap();
    wait_sids(
        &env,
        "drift restored",
        Some(vec!["Replicate", "PullThroughCache", "Create"]),
    )
    .await;
    wait_event(&env, &cache, "DriftCorrected").await;

    // Deleting the older object: the younger one moves up.
    api.delete("a-replication", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "a-replication").await;
    wait_sids(&env, "only cache", Some(vec!["PullThroughCache", "Create"])).await;
    wait_for(&api, "b-cache", "first now", |p| {
        part(p) == (Some(0), Some(2))
    })
    .await;

    // Deleting the last object removes the policy the operator wrote.
    api.delete("b-cache", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "b-cache").await;
    assert_eq!(sids_in_ecr(&env).await, None);
    assert!(env.registry.stats().operation("DeleteRegistryPolicy") >= 1);
}

#[tokio::test]
async fn a_policy_not_written_by_the_operator_is_left_alone() {
    let env = Env::start().await;
    let api: Api<RegistryPolicy> = Api::all(env.kube.client());
    let theirs = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"ecr:ReplicateImage","Resource":"*"}]}"#;
    env.registry.put_registry_policy(theirs).await.unwrap();
    let writes = env.registry.stats().writes();
    create(&api, &policy("mine", &["Mine"], REPLICATE)).await;
    let c = wait_for(&api, "mine", "Conflict", failed_with("Conflict")).await;
    assert!(
        message_of(&c).contains("registry policy that ecr-operator did not write"),
        "{c:?}"
    );
    assert_eq!(part(&c), (None, None));
    wait_event(&env, &c, "Conflict").await;
    assert_eq!(env.registry.stats().writes(), writes, "no writes");
    api.delete("mine", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "mine").await;
    let kept = env.registry.get_registry_policy().await.unwrap().unwrap();
    assert!(
        text_equivalent(&kept, &serde_json::from_str(theirs).unwrap()),
        "kept: {kept}"
    );
    assert_eq!(env.registry.stats().writes(), writes, "still no writes");
}

#[tokio::test]
async fn sid_conflicts_and_the_size_limit_are_reported_before_any_call() {
    let env = Env::start().await;
    let api: Api<RegistryPolicy> = Api::all(env.kube.client());
    // Creation times have whole seconds: names that sort like the creations keep the order.
    create(&api, &policy("first", &["Shared", "Own"], REPLICATE)).await;
    wait_for(&api, "first", "first Ready", ready).await;
    // A younger object reusing a sid is left out; the older one keeps its statements.
    create(&api, &policy("second", &["Other", "Shared"], REPLICATE)).await;
    let second = wait_for(&api, "second", "Conflict", failed_with("Conflict")).await;
    assert!(
        message_of(&second).contains("statement id Shared is already in the registry policy for the older RegistryPolicy first"),
        "{second:?}"
    );
    wait_sids(&env, "first only", Some(vec!["Shared", "Own"])).await;

    // 100 statements of long actions: over ECR's 10,240 characters, refused before any call.
    let puts = env.registry.stats().operation("PutRegistryPolicy");
    let long = format!("ecr:{}", "A".repeat(100));
    let sids: Vec<String> = (0..100).map(|i| format!("Big{i}")).collect();
    let sids: Vec<&str> = sids.iter().map(String::as_str).collect();
    create(&api, &policy("big", &sids, &long)).await;
    let big = wait_for(&api, "big", "LimitExceeded", failed_with("LimitExceeded")).await;
    assert!(
        message_of(&big).contains("ECR accepts at most 10240 (RegistryPolicyText)"),
        "{big:?}"
    );
    assert_eq!(
        env.registry.stats().operation("PutRegistryPolicy"),
        puts,
        "nothing sent"
    );
    wait_for(&api, "first", "first still Ready", ready).await;

    // Once the older object goes, the younger one's sids are free.
    api.delete("first", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "first").await;
    wait_for(&api, "second", "second Ready", ready).await;
    wait_sids(&env, "second only", Some(vec!["Other", "Shared"])).await;

    // The CRD refuses what ECR would.
    assert_rejected(
        &api,
        &policy("bad", &["A"], "s3:GetObject"),
        "registry policy actions must be ECR actions",
    )
    .await;
    assert_rejected(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: RegistryPolicy\nmetadata: {name: bad}\nspec: {statements: [{effect: Allow, principals: {aws: ['*']}, actions: [ecr:ReplicateImage], resources: []}]}\n",
        "resources",
    )
    .await;
}
