//! The Repository controller end to end: the real controller against the API server double and
//! moto, started exactly as `ecr-operator run` starts it.

mod common;

use std::collections::BTreeMap;

use common::{Env, create, is_ready, ready_of, reason_is, wait_for, wait_gone};
use ecr_operator::api::Repository;
use ecr_operator::api::repository::OWNER_TAG;
use ecr_operator::registry::Registry;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

async fn tags(env: &Env, name: &str) -> BTreeMap<String, String> {
    let info = env
        .registry
        .describe_repository(name)
        .await
        .unwrap()
        .unwrap();
    env.registry.list_tags(&info.arn).await.unwrap()
}

async fn merge(api: &Api<Repository>, name: &str, patch: serde_json::Value) {
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patch {name}: {e}"));
}

#[tokio::test]
async fn create_update_drift_and_foreign_tags() {
    let env = Env::start().await;
    let ns = env.kube.namespace("repo").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(
        &api,
        r#"
apiVersion: ecr.operator.dev/v1alpha1
kind: Repository
metadata: {name: web}
spec:
  repositoryName: team/web
  imageTagMutability: IMMUTABLE
  scanOnPush: true
  tags: {team: a, tier: frontend}
  policy:
    statements:
      - sid: Pull
        effect: Allow
        principals: {aws: ["arn:aws:iam::111122223333:root"]}
        actions: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer]
"#,
    )
    .await;
    let ready = wait_for(&api, "web", "web Ready", is_ready).await;
    let status = ready.status.unwrap();
    assert!(
        status
            .repository_uri
            .unwrap()
            .ends_with(".amazonaws.com/team/web")
    );
    assert!(
        status
            .repository_arn
            .unwrap()
            .ends_with(":repository/team/web")
    );
    assert_eq!(status.registry_id.as_deref(), Some(testbed::moto::ACCOUNT));

    let info = env
        .registry
        .describe_repository("team/web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.tag_mutability, "IMMUTABLE");
    assert!(info.scan_on_push);
    let t = tags(&env, "team/web").await;
    assert_eq!(t["team"], "a");
    assert_eq!(t[OWNER_TAG], format!("test-cluster/{ns}/web"));
    let policy = env
        .registry
        .get_repository_policy("team/web")
        .await
        .unwrap()
        .unwrap();
    assert!(policy.contains("111122223333"), "{policy}");
    // One CreateRepository and one SetRepositoryPolicy: the settings and tags went in one call.
    assert_eq!(env.registry.stats().operation("CreateRepository"), 1);
    assert_eq!(env.registry.stats().operation("SetRepositoryPolicy"), 1);

    // Someone adds a tag in the console; it must survive every later change.
    let ecr = env.ecr();
    ecr.tag_resource()
        .resource_arn(&info.arn)
        .tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("owner-console")
                .value("ops")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // Spec change: mutability, a tag changed, a tag removed, the policy removed.
    merge(
        &api,
        "web",
        json!({"spec": {"imageTagMutability": "MUTABLE", "tags": {"team": "b", "tier": null}, "policy": null}}),
    )
    .await;
    let updated = wait_for(&api, "web", "spec change applied", |r| {
        is_ready(r) && r.metadata.generation == Some(2)
    })
    .await;
    assert_eq!(updated.status.unwrap().common.observed_generation, Some(2));
    let info = env
        .registry
        .describe_repository("team/web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.tag_mutability, "MUTABLE");
    let t = tags(&env, "team/web").await;
    assert_eq!(t.get("team").map(String::as_str), Some("b"));
    assert!(!t.contains_key("tier"), "removed spec tag is gone: {t:?}");
    assert_eq!(
        t.get("owner-console").map(String::as_str),
        Some("ops"),
        "foreign tag survives"
    );
    assert_eq!(
        env.registry
            .get_repository_policy("team/web")
            .await
            .unwrap(),
        None
    );

    // Drift: mutability changed behind the operator's back is restored by a sweep.
    ecr.put_image_tag_mutability()
        .repository_name("team/web")
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    testbed::wait::until("drift corrected", common::WAIT, || async {
        let info = env.registry.describe_repository("team/web").await.ok()??;
        (info.tag_mutability == "MUTABLE").then_some(())
    })
    .await
    .unwrap();
    // Drift in tags (not in DescribeRepositories) is restored by the deep sweep, the owner tag
    // too: the repository is still the one the object created.
    let owner = tags(&env, "team/web").await[OWNER_TAG].clone();
    ecr.untag_resource()
        .resource_arn(&info.arn)
        .tag_keys("team")
        .tag_keys(OWNER_TAG)
        .send()
        .await
        .unwrap();
    testbed::wait::until("tag drift corrected", common::WAIT, || async {
        let t = tags(&env, "team/web").await;
        (t.get("team").map(String::as_str) == Some("b") && t.get(OWNER_TAG) == Some(&owner))
            .then_some(())
    })
    .await
    .unwrap();
    assert!(is_ready(&api.get("web").await.unwrap()));
    assert_eq!(
        tags(&env, "team/web")
            .await
            .get("owner-console")
            .map(String::as_str),
        Some("ops")
    );
}

/// kstatus's conditions on `r` (what Flux reads): (type, reason) of each `Reconciling` or
/// `Stalled`, each checked True with Ready's message at the object's generation.
fn kstatus_of(r: &Repository) -> Vec<(String, String)> {
    let conditions = r.status.as_ref().map(|s| s.common.conditions.clone());
    let conditions = conditions.unwrap_or_default();
    let ready_message = ready_of(&conditions).map(|(_, _, message)| message);
    conditions
        .iter()
        .filter(|c| c.type_ == "Reconciling" || c.type_ == "Stalled")
        .map(|c| {
            let got = (c.status.as_str(), Some(&c.message), c.observed_generation);
            let want = ("True", ready_message.as_ref(), r.metadata.generation);
            assert_eq!(got, want, "{c:?}");
            (c.type_.clone(), c.reason.clone())
        })
        .collect()
}

#[tokio::test]
async fn resync_of_unchanged_repositories_makes_no_writes() {
    let env = Env::start().await;
    let ns = env.kube.namespace("noop").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    for i in 0..5 {
        create(
            &api,
            &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: r{i}}}, spec: {{tags: {{n: \"{i}\"}}}}}}"),
        )
        .await;
    }
    for i in 0..5 {
        let ready = wait_for(&api, &format!("r{i}"), "Ready", is_ready).await;
        assert_eq!(
            kstatus_of(&ready),
            vec![],
            "Ready: neither Reconciling nor Stalled"
        );
    }
    let writes = env.registry.stats().writes();
    let sweeps = env.registry.stats().operation("DescribeRepositories");
    // Let several sweeps and at least one deep sweep (2 s) pass.
    testbed::wait::until("three more sweeps", common::WAIT, || async {
        (env.registry.stats().operation("DescribeRepositories") >= sweeps + 3
            && env.registry.stats().operation("ListTagsForResource") >= 5)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.registry.stats().writes(),
        writes,
        "no writes for unchanged objects"
    );
    // A deep check reads the tags; the policy only where the spec has one or the operator put
    // one there, and none of these has.
    assert!(env.registry.stats().operation("ListTagsForResource") >= 5);
    assert_eq!(env.registry.stats().operation("GetRepositoryPolicy"), 0);
}

#[tokio::test]
async fn retain_and_delete_policies() {
    let env = Env::start().await;
    let ns = env.kube.namespace("del").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: kept}, spec: {}}").await;
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: full}, spec: {deletionPolicy: Delete}}").await;
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: empty}, spec: {deletionPolicy: Delete}}").await;
    for n in ["kept", "full", "empty"] {
        wait_for(&api, n, "Ready", is_ready).await;
    }
    testbed::images::push_image(&env.ecr(), "full", "v1")
        .await
        .unwrap();

    // Retain: the object goes, the repository stays.
    api.delete("kept", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "kept").await;
    assert!(
        env.registry
            .describe_repository("kept")
            .await
            .unwrap()
            .is_some()
    );

    // Delete on an empty repository removes both.
    api.delete("empty", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "empty").await;
    assert!(
        env.registry
            .describe_repository("empty")
            .await
            .unwrap()
            .is_none()
    );

    // Delete without force on a repository with an image: the object stays and says why.
    api.delete("full", &DeleteParams::default()).await.unwrap();
    let stuck = wait_for(
        &api,
        "full",
        "RepositoryNotEmpty",
        reason_is("RepositoryNotEmpty"),
    )
    .await;
    let (_, _, message) = ready_of(&stuck.status.unwrap().common.conditions).unwrap();
    assert!(message.contains("forceDelete"), "{message}");
    assert!(
        env.registry
            .describe_repository("full")
            .await
            .unwrap()
            .is_some()
    );
    // With force: both go.
    merge(&api, "full", json!({"spec": {"forceDelete": true}})).await;
    wait_gone(&api, "full").await;
    assert!(
        env.registry
            .describe_repository("full")
            .await
            .unwrap()
            .is_none()
    );
}

/// Found by the chaos run (seed 3): an object deleted with Retain leaves its owner tag, so a new
/// object of the same namespace and name takes the repository back. It must then make tags and
/// policy match its own spec, not report "in sync" over the old object's tags and a policy
/// that grants what the new spec does not.
#[tokio::test]
async fn retained_repository_taken_back_matches_the_new_spec() {
    let env = Env::start().await;
    let ns = env.kube.namespace("back").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    let old = r#"
apiVersion: ecr.operator.dev/v1alpha1
kind: Repository
metadata: {name: again}
spec:
  tags: {old: "1", kept: a}
  policy:
    statements:
      - sid: Pull
        effect: Allow
        principals: {aws: ["arn:aws:iam::111122223333:root"]}
        actions: [ecr:BatchGetImage]
"#;
    create(&api, old).await;
    wait_for(&api, "again", "Ready", is_ready).await;
    api.delete("again", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "again").await;
    assert!(tags(&env, "again").await.contains_key("old"));
    assert!(
        env.registry
            .get_repository_policy("again")
            .await
            .unwrap()
            .is_some()
    );

    create(
        &api,
        "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: again}, spec: {tags: {kept: b, new: '2'}}}",
    )
    .await;
    wait_for(&api, "again", "Ready", is_ready).await;
    let have = tags(&env, "again").await;
    let owner = have.get(OWNER_TAG).cloned().unwrap();
    assert_eq!(
        have,
        BTreeMap::from([
            ("kept".to_string(), "b".to_string()),
            ("new".to_string(), "2".to_string()),
            (OWNER_TAG.to_string(), owner),
        ])
    );
    assert_eq!(
        env.registry.get_repository_policy("again").await.unwrap(),
        None
    );
}

/// Found by the chaos run (seed 11, a moto restart): a repository deleted and created again
/// outside the operator between two sweeps has the same name and ARN, and the object's status
/// matched the sweep's older view of it. The operator wrote its tags, owner tag included, and
/// policy onto someone else's repository. Nothing may be written before the tags show it is ours.
#[tokio::test]
async fn repository_replaced_between_sweeps_is_not_written() {
    let env = Env::start_with(ecr_operator::controllers::Config {
        sweep_interval: std::time::Duration::from_secs(3600),
        ..common::test_config()
    })
    .await;
    let ns = env.kube.namespace("replaced").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(
        &api,
        "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: swap}, spec: {scanOnPush: true, tags: {a: '1'}}}",
    )
    .await;
    wait_for(&api, "swap", "Ready", is_ready).await;

    // Someone deletes it and creates their own under the same name.
    let ecr = env.ecr();
    ecr.delete_repository()
        .repository_name("swap")
        .force(true)
        .send()
        .await
        .unwrap();
    ecr.create_repository()
        .repository_name("swap")
        .tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("team")
                .value("other")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let theirs = tags(&env, "swap").await;

    // A spec change wants every kind of write: settings, tags, policy.
    merge(
        &api,
        "swap",
        json!({"spec": {"scanOnPush": false, "tags": {"a": "2"}, "policy": {"statements": [
            {"sid": "Pull", "effect": "Allow", "principals": {"aws": ["arn:aws:iam::111122223333:root"]},
             "actions": ["ecr:BatchGetImage"]}]}}}),
    )
    .await;
    let c = wait_for(&api, "swap", "Conflict", reason_is("Conflict")).await;
    let (_, _, message) = ready_of(&c.status.unwrap().common.conditions).unwrap();
    assert!(message.contains("owner tag"), "{message}");
    assert_eq!(tags(&env, "swap").await, theirs);
    assert_eq!(
        env.registry.get_repository_policy("swap").await.unwrap(),
        None
    );
    let info = env
        .registry
        .describe_repository("swap")
        .await
        .unwrap()
        .unwrap();
    assert!(!info.scan_on_push);
    assert_eq!(
        env.registry
            .stats()
            .operation("PutImageScanningConfiguration"),
        0
    );
}

#[tokio::test]
async fn adoption_and_conflicts() {
    let env = Env::start().await;
    let ns = env.kube.namespace("adopt").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    // A repository that exists before the operator sees it, created by someone else.
    env.ecr()
        .create_repository()
        .repository_name("legacy")
        .send()
        .await
        .unwrap();
    let writes_before = env.registry.stats().writes();
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: legacy}, spec: {imageTagMutability: IMMUTABLE, deletionPolicy: Delete}}").await;
    let conflict = wait_for(&api, "legacy", "Conflict", reason_is("Conflict")).await;
    let (_, _, message) = ready_of(&conflict.status.unwrap().common.conditions).unwrap();
    assert!(message.contains("spec.adopt"), "{message}");
    assert_eq!(
        env.registry.stats().writes(),
        writes_before,
        "no writes on conflict"
    );
    let info = env
        .registry
        .describe_repository("legacy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.tag_mutability, "MUTABLE", "untouched");

    // Deleting the conflicting object must not delete the repository it does not own.
    merge(&api, "legacy", json!({"spec": {"adopt": true}})).await;
    let adopted = wait_for(&api, "legacy", "adopted", is_ready).await;
    assert_eq!(
        adopted.status.unwrap().ownership,
        Some(ecr_operator::api::repository::Ownership::Adopted)
    );
    assert_eq!(
        tags(&env, "legacy").await[OWNER_TAG],
        format!("test-cluster/{ns}/legacy")
    );
    assert_eq!(
        env.registry
            .describe_repository("legacy")
            .await
            .unwrap()
            .unwrap()
            .tag_mutability,
        "IMMUTABLE"
    );

    // A second object naming the same repository is the newer one: Conflict, no writes.
    let ns2 = env.kube.namespace("adopt2").await.unwrap();
    let api2: Api<Repository> = env.api(&ns2);
    let writes = env.registry.stats().writes();
    create(&api2, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: legacy}, spec: {imageTagMutability: MUTABLE, adopt: true, deletionPolicy: Delete}}").await;
    wait_for(
        &api2,
        "legacy",
        "second object Conflict",
        reason_is("Conflict"),
    )
    .await;
    assert_eq!(env.registry.stats().writes(), writes);
    // Deleting the newer object leaves the repository (it never owned it).
    api2.delete("legacy", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api2, "legacy").await;
    assert!(
        env.registry
            .describe_repository("legacy")
            .await
            .unwrap()
            .is_some()
    );
    // The first object is still in charge.
    wait_for(&api, "legacy", "still Ready", is_ready).await;
}

#[tokio::test]
async fn repository_owned_by_another_cluster_is_never_touched() {
    let env = Env::start().await;
    let ns = env.kube.namespace("foreign").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    env.ecr()
        .create_repository()
        .repository_name("shared")
        .tags(
            aws_sdk_ecr::types::Tag::builder()
                .key(OWNER_TAG)
                .value("other-cluster/x/shared")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: shared}, spec: {adopt: true, deletionPolicy: Delete, forceDelete: true}}").await;
    let c = wait_for(&api, "shared", "Conflict", reason_is("Conflict")).await;
    let (_, _, message) = ready_of(&c.status.unwrap().common.conditions).unwrap();
    assert!(message.contains("other-cluster/x/shared"), "{message}");
    api.delete("shared", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "shared").await;
    assert!(
        env.registry
            .describe_repository("shared")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn encryption_that_ecr_cannot_change_is_reported_invalid() {
    let env = Env::start().await;
    let ns = env.kube.namespace("enc").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    env.ecr()
        .create_repository()
        .repository_name("kms-repo")
        .encryption_configuration(
            aws_sdk_ecr::types::EncryptionConfiguration::builder()
                .encryption_type(aws_sdk_ecr::types::EncryptionType::Kms)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: kms-repo}, spec: {adopt: true, encryption: {encryptionType: AES256}}}").await;
    let invalid = wait_for(&api, "kms-repo", "Invalid", reason_is("Invalid")).await;
    let stalled = vec![("Stalled".to_string(), "Invalid".to_string())];
    assert_eq!(kstatus_of(&invalid), stalled, "Invalid waits for a person");
    let (_, _, message) = ready_of(&invalid.status.unwrap().common.conditions).unwrap();
    assert!(message.contains("cannot change encryption"), "{message}");
    // Invalid waits for a spec change: no retry loop hammering ECR.
    let calls = env.registry.stats().total();
    let sweeps = env.registry.stats().operation("DescribeRepositories");
    testbed::wait::until("two more sweeps", common::WAIT, || async {
        (env.registry.stats().operation("DescribeRepositories") >= sweeps + 2).then_some(())
    })
    .await
    .unwrap();
    let other_calls =
        env.registry.stats().total() - env.registry.stats().operation("DescribeRepositories");
    assert_eq!(
        other_calls,
        calls - sweeps,
        "no calls besides the shared sweep"
    );
    // Nothing was written: not even the adoption tag.
    assert!(!tags(&env, "kms-repo").await.contains_key(OWNER_TAG));
}

/// ECR refuses a repository policy text over 10,240 characters (the API model's
/// RepositoryPolicyText). Such a spec is Invalid before any ECR call: the repository is not
/// even created, so a half-applied object never exists.
#[tokio::test]
async fn a_policy_over_ecr_size_limit_is_invalid_before_any_call() {
    let env = Env::start().await;
    let ns = env.kube.namespace("bigpolicy").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    // 100 actions (the schema's maximum) of 110 characters: over 11,000 characters rendered.
    let actions: Vec<String> = (0..100)
        .map(|i| format!("ecr:{i:03}{}", "A".repeat(103)))
        .collect();
    let name = format!("{ns}/big");
    let obj: Repository = serde_json::from_value(serde_json::json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "big"},
        "spec": {
            "repositoryName": name,
            "policy": {"statements": [{
                "effect": "Allow",
                "principals": {"aws": ["123456789012"]},
                "actions": actions,
            }]},
        },
    }))
    .unwrap();
    let creates = env.registry.stats().operation("CreateRepository");
    api.create(&kube::api::PostParams::default(), &common::in_scope(obj))
        .await
        .unwrap();
    let invalid = wait_for(&api, "big", "Invalid", reason_is("Invalid")).await;
    let (_, _, message) = ready_of(&invalid.status.unwrap().common.conditions).unwrap();
    assert!(message.contains("10240"), "{message}");
    assert_eq!(
        env.registry.stats().operation("CreateRepository"),
        creates,
        "no CreateRepository for an invalid spec"
    );
    assert!(
        env.registry
            .describe_repository(&name)
            .await
            .unwrap()
            .is_none(),
        "nothing was created in ECR"
    );
}

/// Found by the chaos run: scan on push could be turned on but not off (the SDK sends `{}` for
/// false, which moto ignored), and the operator then rewrote it on every sweep while reporting
/// Ready. Off must stick, with one write, and no write on later sweeps.
#[tokio::test]
async fn scan_on_push_turned_off_sticks_without_a_write_loop() {
    let env = Env::start().await;
    let ns = env.kube.namespace("scanoff").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(
        &api,
        "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: scans}, spec: {scanOnPush: true}}",
    )
    .await;
    wait_for(&api, "scans", "Ready", is_ready).await;
    merge(&api, "scans", json!({"spec": {"scanOnPush": false}})).await;
    wait_for(&api, "scans", "scanOnPush off applied", |r| {
        is_ready(r) && r.metadata.generation == Some(2)
    })
    .await;
    let info = env
        .registry
        .describe_repository("scans")
        .await
        .unwrap()
        .unwrap();
    assert!(!info.scan_on_push);
    let stats = env.registry.stats();
    let writes = stats.operation("PutImageScanningConfiguration");
    assert_eq!(writes, 1);
    // Several sweeps later, still one write.
    let sweeps = stats.operation("DescribeRepositories");
    testbed::wait::until("four more sweeps", common::WAIT, || async {
        (stats.operation("DescribeRepositories") >= sweeps + 4).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(stats.operation("PutImageScanningConfiguration"), writes);
}

/// The exclusion filters ECR holds for `name`, as a set.
async fn exclusions(env: &Env, name: &str) -> (String, std::collections::BTreeSet<String>) {
    let info = env
        .registry
        .describe_repository(name)
        .await
        .unwrap()
        .unwrap();
    (
        info.tag_mutability,
        info.tag_mutability_exclusions.into_iter().collect(),
    )
}

fn set(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Issue #15: tag-mutability exclusions go into ECR with the repository (one CreateRepository,
/// a name of ECR's current model), follow the spec when its filters change, and are restored by
/// the sweep when changed in ECR behind the operator's back, without a write loop afterwards.
#[tokio::test]
async fn tag_mutability_exclusions_created_updated_and_restored() {
    let env = Env::start().await;
    let ns = env.kube.namespace("exclusions").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    let name = "team/web--frontend";
    create(
        &api,
        r#"
apiVersion: ecr.operator.dev/v1alpha1
kind: Repository
metadata: {name: web--frontend}
spec:
  repositoryName: team/web--frontend
  imageTagMutability: IMMUTABLE_WITH_EXCLUSION
  imageTagMutabilityExclusionFilters:
    - filter: latest
    - {filterType: WILDCARD, filter: "dev-*"}
"#,
    )
    .await;
    wait_for(&api, "web--frontend", "Ready", is_ready).await;
    assert_eq!(
        exclusions(&env, name).await,
        ("IMMUTABLE_WITH_EXCLUSION".into(), set(&["latest", "dev-*"]))
    );
    let stats = env.registry.stats();
    assert_eq!(stats.operation("CreateRepository"), 1);
    assert_eq!(
        stats.operation("PutImageTagMutability"),
        0,
        "all in the create"
    );

    // The spec changes its filters and its mode: one PutImageTagMutability with both.
    merge(
        &api,
        "web--frontend",
        json!({"spec": {"imageTagMutability": "MUTABLE_WITH_EXCLUSION",
                        "imageTagMutabilityExclusionFilters": [{"filter": "release-*"}]}}),
    )
    .await;
    wait_for(&api, "web--frontend", "filters applied", |r| {
        is_ready(r) && r.status.as_ref().and_then(|s| s.common.observed_generation) == Some(2)
    })
    .await;
    assert_eq!(
        exclusions(&env, name).await,
        ("MUTABLE_WITH_EXCLUSION".into(), set(&["release-*"]))
    );
    assert_eq!(stats.operation("PutImageTagMutability"), 1);

    // Behind the operator's back: other filters, then none at all. The sweep restores both.
    let ecr = env.ecr();
    let filter = |f: &str| {
        aws_sdk_ecr::types::ImageTagMutabilityExclusionFilter::builder()
            .filter_type(aws_sdk_ecr::types::ImageTagMutabilityExclusionFilterType::Wildcard)
            .filter(f)
            .build()
            .unwrap()
    };
    ecr.put_image_tag_mutability()
        .repository_name(name)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::MutableWithExclusion)
        .image_tag_mutability_exclusion_filters(filter("release-*"))
        .image_tag_mutability_exclusion_filters(filter("*"))
        .send()
        .await
        .unwrap();
    let want = ("MUTABLE_WITH_EXCLUSION".to_string(), set(&["release-*"]));
    testbed::wait::until("filter drift corrected", common::WAIT, || async {
        (exclusions(&env, name).await == want).then_some(())
    })
    .await
    .unwrap();
    ecr.put_image_tag_mutability()
        .repository_name(name)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Mutable)
        .send()
        .await
        .unwrap();
    testbed::wait::until("filters removed in ECR restored", common::WAIT, || async {
        (exclusions(&env, name).await == want).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(stats.operation("PutImageTagMutability"), 3);
    // In sync: several sweeps later, no further write.
    let sweeps = stats.operation("DescribeRepositories");
    testbed::wait::until("three more sweeps", common::WAIT, || async {
        (stats.operation("DescribeRepositories") >= sweeps + 3).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(stats.operation("PutImageTagMutability"), 3, "no write loop");
    assert!(is_ready(&api.get("web--frontend").await.unwrap()));
}

/// Issue #15: adopting a repository that uses exclusions keeps them when the spec says the same
/// (before, the adoption rewrote the repository to a plain mode and its filters were lost), in
/// whatever order the spec lists them.
#[tokio::test]
async fn adoption_keeps_tag_mutability_exclusions() {
    let env = Env::start().await;
    let ns = env.kube.namespace("adoptexcl").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    let filter = |f: &str| {
        aws_sdk_ecr::types::ImageTagMutabilityExclusionFilter::builder()
            .filter_type(aws_sdk_ecr::types::ImageTagMutabilityExclusionFilterType::Wildcard)
            .filter(f)
            .build()
            .unwrap()
    };
    env.ecr()
        .create_repository()
        .repository_name("legacy__app")
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::ImmutableWithExclusion)
        .image_tag_mutability_exclusion_filters(filter("latest"))
        .image_tag_mutability_exclusion_filters(filter("nightly-*"))
        .send()
        .await
        .unwrap();
    create(
        &api,
        r#"
apiVersion: ecr.operator.dev/v1alpha1
kind: Repository
metadata: {name: legacy}
spec:
  repositoryName: legacy__app
  adopt: true
  imageTagMutability: IMMUTABLE_WITH_EXCLUSION
  imageTagMutabilityExclusionFilters: [{filter: "nightly-*"}, {filter: latest}]
"#,
    )
    .await;
    let adopted = wait_for(&api, "legacy", "adopted", is_ready).await;
    assert_eq!(
        adopted.status.unwrap().ownership,
        Some(ecr_operator::api::repository::Ownership::Adopted)
    );
    assert_eq!(
        exclusions(&env, "legacy__app").await,
        (
            "IMMUTABLE_WITH_EXCLUSION".into(),
            set(&["latest", "nightly-*"])
        )
    );
    assert_eq!(
        env.registry.stats().operation("PutImageTagMutability"),
        0,
        "kept, not rewritten"
    );
}
