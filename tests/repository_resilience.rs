//! The Repository controller under faults: throttling, a crash between CreateRepository and the
//! status write, images arriving during a force delete, a crash during deletion.

mod common;

use std::time::Duration;

use common::{Env, create, is_ready, reason_is, wait_for, wait_gone};
use ecr_operator::api::Repository;
use ecr_operator::api::repository::Ownership;
use ecr_operator::registry::Registry;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams};
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
