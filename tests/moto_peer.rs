//! The ECR peer: the real aws-sdk-ecr client and our registry boundary against moto.

use std::time::Duration;

use ecr_operator::registry::{EcrRegistry, ErrorClass, NewRepository, Registry};
use testbed::moto::{FaultKind, FaultScope, Moto};

async fn moto() -> Moto {
    Moto::start().await.unwrap_or_else(|e| panic!("{e}"))
}

fn new_repo(name: &str) -> NewRepository {
    NewRepository {
        name: name.to_string(),
        tag_mutability: "IMMUTABLE".into(),
        tag_mutability_exclusions: Vec::new(),
        scan_on_push: true,
        encryption_type: "AES256".into(),
        kms_key: None,
        tags: [("team".to_string(), "platform".to_string())].into(),
    }
}

#[tokio::test]
async fn create_and_describe_through_the_sdk() {
    let moto = moto().await;
    let registry = EcrRegistry::from_client(moto.ecr_client());
    let created = registry
        .create_repository(&new_repo("team/app"))
        .await
        .unwrap();
    assert_eq!(created.name, "team/app");
    assert!(created.uri.ends_with("/team/app"), "{}", created.uri);
    let described = registry
        .describe_repository("team/app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(described.arn, created.arn);
    assert_eq!(described.tag_mutability, "IMMUTABLE");
    assert!(described.scan_on_push);
    assert_eq!(
        registry.list_tags(&created.arn).await.unwrap()["team"],
        "platform"
    );
    assert_eq!(registry.describe_repository("missing").await.unwrap(), None);
    let again = registry
        .create_repository(&new_repo("team/app"))
        .await
        .unwrap_err();
    assert_eq!(again.class, ErrorClass::AlreadyExists);
    assert_eq!(registry.stats().operation("CreateRepository"), 2);
}

#[tokio::test]
async fn pages_through_2500_repositories_in_three_calls() {
    let moto = moto().await;
    let registry = EcrRegistry::from_client(moto.ecr_client());
    let client = moto.ecr_client();
    let mut creates = futures::stream::iter((0..2500).map(|i| {
        let client = client.clone();
        async move {
            client
                .create_repository()
                .repository_name(format!("bulk/repo-{i:04}"))
                .send()
                .await
        }
    }))
    .buffer_unordered(16);
    use futures::StreamExt;
    while let Some(r) = creates.next().await {
        r.unwrap();
    }
    let calls_before = moto
        .calls()
        .await
        .unwrap()
        .get("DescribeRepositories")
        .copied()
        .unwrap_or(0);
    let all = registry.list_repositories().await.unwrap();
    assert_eq!(all.len(), 2500);
    let mut names: Vec<_> = all.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 2500, "no repository listed twice");
    assert_eq!(registry.stats().operation("DescribeRepositories"), 3);
    let calls_after = moto.calls().await.unwrap()["DescribeRepositories"];
    assert_eq!(calls_after - calls_before, 3, "moto saw three pages");
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_classified() {
    let moto = moto().await;
    let registry = EcrRegistry::from_client(moto.ecr_client());
    registry.create_repository(&new_repo("app")).await.unwrap();

    // Two throttled answers: the SDK's standard retry (3 attempts) absorbs them.
    moto.inject(
        "DescribeRepositories",
        FaultKind::Throttle,
        FaultScope::Next(2),
    )
    .await
    .unwrap();
    let listed = registry.list_repositories().await.unwrap();
    assert_eq!(listed.len(), 1);

    // Three throttled answers exhaust the attempts: the error reaches us, classified.
    moto.inject(
        "DescribeRepositories",
        FaultKind::Throttle,
        FaultScope::Next(3),
    )
    .await
    .unwrap();
    let err = registry.list_repositories().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Throttled, "{err}");
    assert_eq!(err.code.as_deref(), Some("ThrottlingException"));

    // Server errors are transient.
    moto.inject(
        "DescribeRepositories",
        FaultKind::ServerError,
        FaultScope::Next(3),
    )
    .await
    .unwrap();
    let err = registry.list_repositories().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    moto.clear_faults().await.unwrap();
    assert!(registry.list_repositories().await.is_ok());
    let stats = registry.stats().snapshot();
    assert_eq!(stats.get(&("DescribeRepositories", "throttled")), Some(&1));
    assert_eq!(stats.get(&("DescribeRepositories", "transient")), Some(&1));
}

#[tokio::test]
async fn not_empty_and_not_found_are_classified() {
    let moto = moto().await;
    let registry = EcrRegistry::from_client(moto.ecr_client());
    registry.create_repository(&new_repo("full")).await.unwrap();
    testbed::images::push_image(&moto.ecr_client(), "full", "v1")
        .await
        .unwrap();
    let err = registry.delete_repository("full", false).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotEmpty, "{err}");
    registry.delete_repository("full", true).await.unwrap();
    let err = registry.delete_repository("full", true).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{err}");
    let _ = Duration::ZERO;
}
