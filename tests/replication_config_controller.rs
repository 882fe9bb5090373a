//! The ReplicationConfig controller end to end: many objects merged into the registry's one
//! replication configuration, against the API server double and moto.

mod common;

use common::{Env, assert_rejected, create, failed_with, message_of, ready, wait_for, wait_gone};
use ecr_operator::api::ReplicationConfig;
use ecr_operator::registry::{Registry, ReplicationSettings};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

const OTHER_ACCOUNT: &str = "210987654321";

fn config(name: &str, rules: &[(&str, &str)]) -> String {
    let rules: Vec<String> = rules
        .iter()
        .map(|(region, filter)| {
            format!(
                "{{destinations: [{{region: {region}, registryId: '{OTHER_ACCOUNT}'}}], repositoryFilters: [{{filter: {filter}}}]}}"
            )
        })
        .collect();
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ReplicationConfig\nmetadata: {{name: {name}}}\nspec: {{rules: [{}]}}\n",
        rules.join(", ")
    )
}

async fn ecr(env: &Env) -> ReplicationSettings {
    env.registry.get_replication().await.unwrap()
}

fn regions(s: &ReplicationSettings) -> Vec<String> {
    s.rules
        .iter()
        .map(|r| {
            r.destinations
                .iter()
                .map(|d| d.0.clone())
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect()
}

#[tokio::test]
async fn objects_merge_in_order_change_drift_and_delete() {
    let env = Env::start().await;
    let api: Api<ReplicationConfig> = Api::all(env.kube.client());
    create(&api, &config("team-a", &[("eu-west-1", "team-a")])).await;
    wait_for(&api, "team-a", "team-a Ready", ready).await;
    create(&api, &config("team-b", &[("eu-west-2", "team-b")])).await;
    let b = wait_for(&api, "team-b", "team-b Ready", ready).await;
    assert_eq!(b.status.as_ref().unwrap().first_rule_index, Some(1));
    assert_eq!(b.status.as_ref().unwrap().rule_count, Some(1));
    let doc = ecr(&env).await;
    assert_eq!(regions(&doc), ["eu-west-1", "eu-west-2"]);
    assert_eq!(doc.rules[0].filters, ["team-a"]);

    // Change: team-b adds a destination.
    api.patch(
        "team-b",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"rules": [{"destinations": [
            {"region": "eu-west-2", "registryId": OTHER_ACCOUNT},
            {"region": "ap-south-1", "registryId": OTHER_ACCOUNT},
        ], "repositoryFilters": [{"filter": "team-b"}]}]}})),
    )
    .await
    .unwrap();
    wait_for(&api, "team-b", "change applied", |o| {
        ready(o) && o.metadata.generation == Some(2)
    })
    .await;
    assert_eq!(
        regions(&ecr(&env).await),
        ["eu-west-1", "eu-west-2+ap-south-1"]
    );

    // Drift: replication cleared in the console is restored by the resync.
    env.ecr()
        .put_replication_configuration()
        .replication_configuration(
            aws_sdk_ecr::types::ReplicationConfiguration::builder()
                .set_rules(Some(vec![]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    testbed::wait::until("drift restored", common::WAIT, || async {
        (ecr(&env).await.rules.len() == 2).then_some(())
    })
    .await
    .unwrap();

    // Resyncs of unchanged objects: one DescribeRegistry per pass for all objects, no writes.
    let puts = env
        .registry
        .stats()
        .operation("PutReplicationConfiguration");
    let reads = env.registry.stats().operation("DescribeRegistry");
    testbed::wait::until("three more passes", common::WAIT, || async {
        (env.registry.stats().operation("DescribeRegistry") >= reads + 3).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.registry
            .stats()
            .operation("PutReplicationConfiguration"),
        puts
    );

    // Deleting one object removes its rules; the other moves up.
    api.delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "team-a").await;
    assert_eq!(regions(&ecr(&env).await), ["eu-west-2+ap-south-1"]);
    wait_for(&api, "team-b", "first now", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| s.first_rule_index == Some(0))
    })
    .await;
    // Deleting the last object clears what the operator wrote.
    api.delete("team-b", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "team-b").await;
    assert!(ecr(&env).await.rules.is_empty());
}

#[tokio::test]
async fn limits_are_reported_on_the_objects_that_exceed_them() {
    let env = Env::start().await;
    let api: Api<ReplicationConfig> = Api::all(env.kube.client());
    let six: Vec<(&str, &str)> = vec![("eu-west-1", "team-a"); 6];
    let five: Vec<(&str, &str)> = vec![("eu-west-2", "team-b"); 5];
    create(&api, &config("big", &six)).await;
    wait_for(&api, "big", "big Ready", ready).await;
    create(&api, &config("more", &five)).await;
    let over = wait_for(&api, "more", "LimitExceeded", failed_with("LimitExceeded")).await;
    assert!(message_of(&over).contains("ECR allows 10"), "{over:?}");
    assert_eq!(
        ecr(&env).await.rules.len(),
        6,
        "the earlier object still applies"
    );
    wait_for(&api, "big", "big still Ready", ready).await;

    // Once the first goes, the second fits.
    api.delete("big", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "big").await;
    wait_for(&api, "more", "more Ready", ready).await;
    assert_eq!(regions(&ecr(&env).await), vec!["eu-west-2"; 5]);
}

/// Each rule's `deleteReplication.enabled` as boto3 reads it from moto: botocore models the
/// member, aws-sdk-ecr 1.138 does not, so this is a reader independent of the operator's.
async fn delete_replication_in_ecr(env: &Env) -> Vec<bool> {
    let out = env
        .moto
        .boto3(
            "import boto3, json\n\
             rules = boto3.client('ecr').describe_registry().get('replicationConfiguration', {}).get('rules', [])\n\
             print(json.dumps([r.get('deleteReplication', {}).get('enabled', False) for r in rules]))",
        )
        .await
        .unwrap();
    serde_json::from_str(out.trim()).unwrap()
}

#[tokio::test]
async fn delete_replication_is_written_kept_and_restored() {
    let env = Env::start().await;
    let api: Api<ReplicationConfig> = Api::all(env.kube.client());
    let yaml = format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ReplicationConfig\nmetadata: {{name: deletions}}\nspec: {{rules: [\
         {{destinations: [{{region: eu-west-1, registryId: '{OTHER_ACCOUNT}'}}], deleteReplication: true}}, \
         {{destinations: [{{region: eu-west-2, registryId: '{OTHER_ACCOUNT}'}}]}}]}}\n"
    );
    create(&api, &yaml).await;
    wait_for(&api, "deletions", "Ready", ready).await;
    assert_eq!(delete_replication_in_ecr(&env).await, vec![true, false]);
    let puts = || {
        env.registry
            .stats()
            .operation("PutReplicationConfiguration")
    };
    let (written, reads) = (puts(), env.registry.stats().operation("DescribeRegistry"));
    testbed::wait::until("three more passes", common::WAIT, || async {
        (env.registry.stats().operation("DescribeRegistry") >= reads + 3).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(puts(), written, "in sync: read back as written");

    // A console write without the member (as an older SDK or CLI sends it) is drift.
    env.moto
        .boto3(&format!(
            "import boto3\n\
             boto3.client('ecr').put_replication_configuration(replicationConfiguration={{'rules': [\
             {{'destinations': [{{'region': 'eu-west-1', 'registryId': '{OTHER_ACCOUNT}'}}]}}, \
             {{'destinations': [{{'region': 'eu-west-2', 'registryId': '{OTHER_ACCOUNT}'}}]}}]}})"
        ))
        .await
        .unwrap();
    testbed::wait::until("deleteReplication restored", common::WAIT, || async {
        (delete_replication_in_ecr(&env).await == vec![true, false]).then_some(())
    })
    .await
    .unwrap();
    assert!(puts() > written);
}

#[tokio::test]
async fn a_configuration_not_written_by_the_operator_is_left_alone() {
    let env = Env::start().await;
    let api: Api<ReplicationConfig> = Api::all(env.kube.client());
    let theirs = ReplicationSettings {
        rules: vec![ecr_operator::registry::ReplicationRuleInfo {
            destinations: vec![("us-west-2".into(), OTHER_ACCOUNT.into())],
            filters: vec![],
            // Read back although the SDK does not model it: "kept" below compares it too.
            delete_replication: true,
        }],
    };
    env.registry.put_replication(&theirs).await.unwrap();
    let writes = env.registry.stats().writes();
    create(&api, &config("mine", &[("eu-west-1", "team")])).await;
    let c = wait_for(&api, "mine", "Conflict", failed_with("Conflict")).await;
    assert!(message_of(&c).contains("did not write"), "{c:?}");
    assert_eq!(env.registry.stats().writes(), writes, "no writes");
    api.delete("mine", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "mine").await;
    assert_eq!(ecr(&env).await, theirs, "kept");

    // The CRD rejects what ECR would, with its message.
    assert_rejected(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ReplicationConfig\nmetadata: {name: bad}\nspec: {rules: [{destinations: [{region: eu-west-1, registryId: '12'}]}]}\n",
        "registryId",
    )
    .await;
    assert_rejected(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ReplicationConfig\nmetadata: {name: bad}\nspec: {rules: []}\n",
        "spec.rules",
    )
    .await;
}

#[tokio::test]
async fn throttling_is_reported_and_retried() {
    use testbed::moto::{FaultKind, FaultScope};
    let env = Env::start().await;
    let api: Api<ReplicationConfig> = Api::all(env.kube.client());
    // More throttles than the SDK's three attempts: the first passes fail.
    env.moto
        .inject(
            "PutReplicationConfiguration",
            FaultKind::Throttle,
            FaultScope::Next(7),
        )
        .await
        .unwrap();
    create(&api, &config("slow", &[("eu-west-1", "team")])).await;
    let throttled = wait_for(&api, "slow", "Throttled", failed_with("Throttled")).await;
    assert!(message_of(&throttled).contains("PutReplicationConfiguration"));
    let r = wait_for(&api, "slow", "Ready after backoff", ready).await;
    assert_eq!(r.status.unwrap().first_rule_index, Some(0));
    assert_eq!(regions(&ecr(&env).await), ["eu-west-1"]);
}
