//! The Repository controller under faults: throttling, a crash between CreateRepository and the
//! status write, images arriving during a force delete, a crash during deletion, a deleted
//! object's status written onto its successor.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Env, create, is_ready, reason_is, wait_for, wait_gone};
use ecr_operator::api::Repository;
use ecr_operator::api::repository::{OWNER_TAG, Ownership};
use ecr_operator::registry::Registry;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use testbed::moto::{FaultKind, FaultScope};

#[tokio::test]
async fn throttling_is_reported_then_retried_until_ready() {
    let env = Env::start().await;
    let ns = env.kube.namespace("throttle").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    // More throttled answers than the SDK's three attempts, twice over: two reconciles see the
    // error and back off; the third succeeds.
    env.moto
        .inject("CreateRepository", FaultKind::Throttle, FaultScope::Next(7))
        .await
        .unwrap();
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: slow}, spec: {}}").await;
    let ready = wait_for(&api, "slow", "Ready after backoff", is_ready).await;
    assert_eq!(
        env.registry
            .stats()
            .snapshot()
            .get(&("CreateRepository", "throttled")),
        Some(&2),
        "two reconciles saw throttling after the SDK's retries"
    );
    assert_eq!(ready.status.unwrap().ownership, Some(Ownership::Created));
    // Exactly one repository: retries did not duplicate anything.
    assert_eq!(env.registry.list_repositories().await.unwrap().len(), 1);
    // A warning event recorded the throttling, a normal one the creation.
    let events: Api<Event> = Api::namespaced(env.kube.client(), &ns);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "Throttled"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "Created"), "{reasons:?}");
}

#[tokio::test]
async fn crash_after_create_before_status_converges_without_duplicate() {
    let mut env = Env::start().await;
    let ns = env.kube.namespace("crash").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    // CreateRepository succeeds in ECR, but slowly; the operator dies while waiting for it,
    // before it could write status.
    env.moto
        .inject(
            "CreateRepository",
            FaultKind::Latency(Duration::from_millis(1500)),
            FaultScope::Next(1),
        )
        .await
        .unwrap();
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: crashy}, spec: {imageTagMutability: IMMUTABLE}}").await;
    testbed::wait::until("CreateRepository in flight", common::WAIT, || async {
        (env.registry.stats().operation("CreateRepository") == 0
            && env
                .moto
                .calls()
                .await
                .ok()?
                .get("CreateRepository")
                .copied()
                .unwrap_or(0)
                >= 1)
            .then_some(())
    })
    .await
    .unwrap();
    env.kill_operator();
    // moto completes the create after the operator is gone.
    testbed::wait::until("repository exists", common::WAIT, || async {
        env.registry
            .describe_repository("crashy")
            .await
            .ok()?
            .map(|_| ())
    })
    .await
    .unwrap();
    let before = api.get("crashy").await.unwrap();
    assert!(
        before
            .status
            .as_ref()
            .and_then(|s| s.repository_arn.as_ref())
            .is_none()
    );

    env.start_operator();
    let ready = wait_for(&api, "crashy", "Ready after restart", is_ready).await;
    // Recognised as its own by the ownership tag, not as a conflict and not created twice.
    assert_eq!(ready.status.unwrap().ownership, Some(Ownership::Created));
    assert_eq!(env.registry.list_repositories().await.unwrap().len(), 1);
}

#[tokio::test]
async fn images_pushed_during_force_delete_are_retried_until_gone() {
    let env = Env::start().await;
    let ns = env.kube.namespace("race").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: busy}, spec: {deletionPolicy: Delete, forceDelete: true}}").await;
    wait_for(&api, "busy", "Ready", is_ready).await;
    testbed::images::push_image(&env.ecr(), "busy", "v1")
        .await
        .unwrap();
    // ECR answers RepositoryNotEmpty to a force delete when images land mid-delete
    // (terraform-provider-aws#33523): twice here.
    env.moto
        .inject(
            "DeleteRepository",
            FaultKind::Error {
                code: "RepositoryNotEmptyException".into(),
                http_status: 400,
            },
            FaultScope::Next(2),
        )
        .await
        .unwrap();
    api.delete("busy", &DeleteParams::default()).await.unwrap();
    wait_for(
        &api,
        "busy",
        "not-empty reported",
        reason_is("RepositoryNotEmpty"),
    )
    .await;
    wait_gone(&api, "busy").await;
    assert!(
        env.registry
            .describe_repository("busy")
            .await
            .unwrap()
            .is_none()
    );
    assert!(env.registry.stats().operation("DeleteRepository") >= 3);
}

#[tokio::test]
async fn crash_during_deletion_keeps_the_finalizer_until_ecr_confirms() {
    let mut env = Env::start().await;
    let ns = env.kube.namespace("crashdel").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: doomed}, spec: {deletionPolicy: Delete}}").await;
    wait_for(&api, "doomed", "Ready", is_ready).await;
    // Every DeleteRepository fails while the first operator runs, then it dies.
    env.moto
        .inject(
            "DeleteRepository",
            FaultKind::ServerError,
            FaultScope::Next(1000),
        )
        .await
        .unwrap();
    api.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        &api,
        "doomed",
        "delete failing",
        reason_is("TransientError"),
    )
    .await;
    env.kill_operator();
    // The object is still there, guarded by the finalizer; ECR still has the repository.
    let obj = api.get("doomed").await.unwrap();
    assert!(obj.metadata.deletion_timestamp.is_some());
    assert!(
        env.registry
            .describe_repository("doomed")
            .await
            .unwrap()
            .is_some()
    );
    env.moto.clear_faults().await.unwrap();
    env.start_operator();
    wait_gone(&api, "doomed").await;
    assert!(
        env.registry
            .describe_repository("doomed")
            .await
            .unwrap()
            .is_none(),
        "no leaked repository"
    );
}

/// Found by the chaos run (seed 7): a reconcile of a deleted object that runs from a replica's
/// lagging store writes its status by name, so it lands on a new object of the same name (here
/// a Retain object's, whose repository the new object takes back). That status records the
/// repository, with the old object's tag keys, as the new object's: it must not let the new
/// object report in sync over the old object's tags. The new object's first reconcile here is
/// also its first since start, so no deep check is otherwise due.
#[tokio::test]
async fn a_deleted_objects_status_on_its_successor_does_not_skip_the_tag_sync() {
    let mut env = Env::start().await;
    let ns = env.kube.namespace("stale").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: heir}, spec: {tags: {old: '1'}}}").await;
    let old = wait_for(&api, "heir", "Ready", is_ready).await;
    let old_status = old.status.clone().unwrap();
    assert_eq!(old_status.managed_tag_keys, ["old"]);
    api.delete("heir", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "heir").await;

    // The successor is created while no operator runs, and the deleted object's status (as its
    // stale reconcile writes it: server-side apply, the operator's field manager) lands on it.
    env.kill_operator();
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: heir}, spec: {tags: {new: '2'}}}").await;
    let stale = serde_json::json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "Repository",
        "status": old_status,
    });
    api.patch_status(
        "heir",
        &PatchParams::apply("ecr-operator").force(),
        &Patch::Apply(&stale),
    )
    .await
    .unwrap();

    env.start_operator();
    wait_for(&api, "heir", "the new object's own status", |r| {
        is_ready(r)
            && r.status
                .as_ref()
                .is_some_and(|s| s.managed_tag_keys == ["new"])
    })
    .await;
    let info = env
        .registry
        .describe_repository("heir")
        .await
        .unwrap()
        .unwrap();
    let have = env.registry.list_tags(&info.arn).await.unwrap();
    let owner = have.get(OWNER_TAG).cloned().unwrap();
    assert_eq!(
        have,
        BTreeMap::from([
            ("new".to_string(), "2".to_string()),
            (OWNER_TAG.to_string(), owner),
        ]),
        "Ready, so ECR holds exactly the new spec's tags"
    );
}
