//! The PullThroughCacheRule controller end to end against the API server double and moto
//! (our pull-through cache extension, and moto's real Secrets Manager for mirrored credentials).

mod common;

use std::collections::BTreeMap;

use common::{
    Env, assert_rejected, create, failed_with, message_of, ready, restart_with_secrets, wait_for,
    wait_gone,
};
use ecr_operator::api::PullThroughCacheRule;
use ecr_operator::registry::Registry;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn rule(name: &str, prefix: &str, url: &str, extra: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: PullThroughCacheRule\nmetadata: {{name: {name}}}\nspec: {{ecrRepositoryPrefix: {prefix}, upstreamRegistryUrl: {url}{extra}}}\n"
    )
}

fn secret(name: &str, username: &str, token: &str) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                "username".to_string(),
                ByteString(username.as_bytes().to_vec()),
            ),
            (
                "accessToken".to_string(),
                ByteString(token.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

fn secrets_manager(env: &Env) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&env.moto.sdk_config())
}

#[tokio::test]
async fn create_drift_and_delete_without_credentials() {
    let env = Env::start().await;
    let api: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    create(&api, &rule("quay", "quay", "quay.io", "")).await;
    let r = wait_for(&api, "quay", "Ready", ready).await;
    let status = r.status.unwrap();
    assert_eq!(status.upstream_registry.as_deref(), Some("quay"));
    assert_eq!(status.registry_id.as_deref(), Some(testbed::moto::ACCOUNT));
    assert!(status.created_at.is_some());
    let info = env
        .registry
        .describe_pull_through_cache_rule("quay")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.upstream_registry_url, "quay.io");
    assert_eq!(
        env.registry.stats().operation("CreatePullThroughCacheRule"),
        1
    );

    // Drift: the rule deleted in the console is re-created by the resync.
    env.ecr()
        .delete_pull_through_cache_rule()
        .ecr_repository_prefix("quay")
        .send()
        .await
        .unwrap();
    testbed::wait::until("rule re-created", common::WAIT, || async {
        env.registry
            .describe_pull_through_cache_rule("quay")
            .await
            .ok()?
            .map(|_| ())
    })
    .await
    .unwrap();
    // Resyncs write nothing.
    wait_for(&api, "quay", "Ready after drift", ready).await;
    let writes = env.registry.stats().writes();
    let reads = env
        .registry
        .stats()
        .operation("DescribePullThroughCacheRules");
    testbed::wait::until("two more resyncs", common::WAIT, || async {
        (env.registry
            .stats()
            .operation("DescribePullThroughCacheRules")
            >= reads + 2)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(env.registry.stats().writes(), writes);

    // Change of upstream: ECR cannot update it, so the rule is replaced.
    api.patch(
        "quay",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"upstreamRegistryUrl": "public.ecr.aws"}})),
    )
    .await
    .unwrap();
    wait_for(&api, "quay", "replaced", |r| {
        ready(r) && r.metadata.generation == Some(2)
    })
    .await;
    let info = env
        .registry
        .describe_pull_through_cache_rule("quay")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.upstream_registry_url, "public.ecr.aws");

    api.delete("quay", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "quay").await;
    assert!(
        env.registry
            .describe_pull_through_cache_rule("quay")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn upstreams_needing_credentials_are_refused_before_ecr() {
    let env = Env::start().await;
    let api: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    create(&api, &rule("hub", "docker-hub", "registry-1.docker.io", "")).await;
    let invalid = wait_for(&api, "hub", "Invalid", failed_with("Invalid")).await;
    let msg = message_of(&invalid);
    assert!(
        msg.contains("Docker Hub (registry-1.docker.io) requires credentials"),
        "{msg}"
    );
    assert!(
        msg.contains("credentialsSecretRef") && msg.contains("credentialArn"),
        "{msg}"
    );
    // A credential Secret in another namespace is refused, never read (issue #9).
    create(
        &api,
        &rule(
            "crossns",
            "crossns",
            "ghcr.io",
            ", credentialsSecretRef: {name: x, namespace: team-a}",
        ),
    )
    .await;
    let invalid = wait_for(&api, "crossns", "Invalid", failed_with("Invalid")).await;
    let msg = message_of(&invalid);
    assert!(
        msg.contains("credentialsSecretRef.namespace team-a is refused"),
        "{msg}"
    );
    create(&api, &rule("harbor", "harbor", "harbor.example.com", "")).await;
    let invalid = wait_for(&api, "harbor", "Invalid", failed_with("Invalid")).await;
    assert!(message_of(&invalid).contains("not an upstream registry ECR supports"));
    assert_eq!(
        env.registry.stats().operation("CreatePullThroughCacheRule"),
        0
    );

    // The CRD rejects the rest, with its messages.
    assert_rejected(
        &api,
        &rule(
            "both",
            "both",
            "ghcr.io",
            ", credentialArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/x', credentialsSecretRef: {name: x}",
        ),
        "set credentialArn or credentialsSecretRef, not both",
    )
    .await;
    // Cluster-scoped names are unique per test: tests share one real API server.
    create(&api, &rule("quay-immutable", "quay", "quay.io", "")).await;
    let err = api
        .patch(
            "quay-immutable",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"ecrRepositoryPrefix": "other"}})),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message.contains("ecrRepositoryPrefix is immutable"),
                "{}",
                s.message
            );
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn secret_is_mirrored_kept_in_sync_and_removed() {
    let mut env = Env::start().await;
    let ops = env.kube.namespace("ops").await.unwrap();
    restart_with_secrets(&mut env, &ops);
    let api: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    let secrets: Api<Secret> = Api::namespaced(env.kube.client(), &ops);

    create(
        &api,
        &rule(
            "ghcr",
            "ghcr",
            "ghcr.io",
            ", credentialsSecretRef: {name: ghcr-creds}",
        ),
    )
    .await;
    let waiting = wait_for(
        &api,
        "ghcr",
        "SecretNotFound",
        failed_with("SecretNotFound"),
    )
    .await;
    assert!(message_of(&waiting).contains("ghcr-creds"), "{waiting:?}");
    secrets
        .create(
            &PostParams::default(),
            &secret("ghcr-creds", "bot", "token-1"),
        )
        .await
        .unwrap();
    let r = wait_for(&api, "ghcr", "Ready once the Secret exists", ready).await;
    let arn = r.status.unwrap().credential_arn.unwrap();
    assert!(arn.contains(":secret:ecr-pullthroughcache/ghcr"), "{arn}");
    let sm = secrets_manager(&env);
    let value = sm
        .get_secret_value()
        .secret_id("ecr-pullthroughcache/ghcr")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
    assert_eq!(v, json!({"username": "bot", "accessToken": "token-1"}));
    let info = env
        .registry
        .describe_pull_through_cache_rule("ghcr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.credential_arn.as_deref(), Some(arn.as_str()));

    // The token rotates in Kubernetes: Secrets Manager follows.
    secrets
        .replace(
            "ghcr-creds",
            &PostParams::default(),
            &secret("ghcr-creds", "bot", "token-2"),
        )
        .await
        .unwrap();
    testbed::wait::until("secret updated", common::WAIT, || {
        let sm = sm.clone();
        async move {
            let out = sm
                .get_secret_value()
                .secret_id("ecr-pullthroughcache/ghcr")
                .send()
                .await
                .ok()?;
            out.secret_string()?.contains("token-2").then_some(())
        }
    })
    .await
    .unwrap();
    // Events say what happened, and never carry the secret value.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(env.kube.client());
    let list = testbed::wait::until("SecretUpdated event", common::WAIT, || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some("SecretUpdated"))
                .then_some(list)
        }
    })
    .await
    .unwrap();
    for e in list.items {
        let text = serde_json::to_string(&e).unwrap();
        assert!(!text.contains("token-"), "{text}");
    }

    // Delete: the rule and the mirrored secret go.
    api.delete("ghcr", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "ghcr").await;
    assert!(
        env.registry
            .describe_pull_through_cache_rule("ghcr")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sm.describe_secret()
            .secret_id("ecr-pullthroughcache/ghcr")
            .send()
            .await
            .is_err(),
        "mirrored secret deleted"
    );
}

#[tokio::test]
async fn a_rule_created_by_someone_else_is_never_touched() {
    let env = Env::start().await;
    let api: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    env.ecr()
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("legacy")
        .upstream_registry_url("quay.io")
        .send()
        .await
        .unwrap();
    // Created before the object, with another upstream: not ours.
    create(&api, &rule("legacy", "legacy", "public.ecr.aws", "")).await;
    let c = wait_for(&api, "legacy", "Conflict", failed_with("Conflict")).await;
    assert!(
        message_of(&c).contains("not created by this object"),
        "{c:?}"
    );
    // A second object for a prefix another object manages is the newer one.
    create(&api, &rule("k8s", "k8s", "registry.k8s.io", "")).await;
    wait_for(&api, "k8s", "Ready", ready).await;
    create(&api, &rule("k8s-again", "k8s", "registry.k8s.io", "")).await;
    wait_for(&api, "k8s-again", "Conflict", failed_with("Conflict")).await;

    let writes = env.registry.stats().writes();
    for name in ["legacy", "k8s-again"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
        wait_gone(&api, name).await;
    }
    assert_eq!(env.registry.stats().writes(), writes, "nothing deleted");
    let kept = env
        .registry
        .describe_pull_through_cache_rule("legacy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.upstream_registry_url, "quay.io");
    assert!(
        env.registry
            .describe_pull_through_cache_rule("k8s")
            .await
            .unwrap()
            .is_some()
    );
}

/// Issue #15: prefixes the CRD now admits because ECR's model accepts them (`__`, runs of `-`, a
/// trailing `/`, and an upstream prefix) reach ECR as written, and a resync of them writes
/// nothing: the trailing `/` ECR assumes anyway does not read as drift.
#[tokio::test]
async fn prefixes_of_the_ecr_model_reach_ecr_and_stay_in_sync() {
    let env = Env::start().await;
    let api: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    let same_account = format!(
        "{}.dkr.ecr.{}.amazonaws.com",
        testbed::moto::ACCOUNT,
        testbed::moto::REGION
    );
    create(&api, &rule("dashes", "'web--x/'", "quay.io", "")).await;
    create(
        &api,
        &rule(
            "underscores",
            "a__b",
            &same_account,
            ", upstreamRepositoryPrefix: 'team__a/'",
        ),
    )
    .await;
    wait_for(&api, "dashes", "Ready", ready).await;
    wait_for(&api, "underscores", "Ready", ready).await;
    let dashes = env
        .registry
        .describe_pull_through_cache_rule("web--x")
        .await;
    assert_eq!(dashes.unwrap().unwrap().upstream_registry_url, "quay.io");
    let underscores = env.registry.describe_pull_through_cache_rule("a__b").await;
    let underscores = underscores.unwrap().unwrap();
    assert_eq!(underscores.upstream_registry.as_deref(), Some("ecr"));
    assert_eq!(
        underscores.upstream_repository_prefix.as_deref(),
        Some("team__a/")
    );
    assert_eq!(
        env.registry.stats().operation("CreatePullThroughCacheRule"),
        2
    );

    let writes = env.registry.stats().writes();
    let reads = env
        .registry
        .stats()
        .operation("DescribePullThroughCacheRules");
    testbed::wait::until("two more resyncs of each", common::WAIT, || async {
        (env.registry
            .stats()
            .operation("DescribePullThroughCacheRules")
            >= reads + 4)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(env.registry.stats().writes(), writes);

    for name in ["dashes", "underscores"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
        wait_gone(&api, name).await;
    }
    for prefix in ["web--x", "a__b"] {
        let gone = env.registry.describe_pull_through_cache_rule(prefix).await;
        assert!(gone.unwrap().is_none(), "{prefix}");
    }
}
