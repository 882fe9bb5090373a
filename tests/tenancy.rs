//! Tenancy, as an attacker with rights in one namespace would test it: the operator touches only
//! the ECR repositories a RepositoryAccessPolicy grants the object's namespace (by default those
//! under `<namespace>/`, without adoption), and proves ownership by reading the owner tag in ECR,
//! never by trusting a status a tenant may be able to write.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Env, create, failed_with, is_ready, message_of, reason_is, wait_for, wait_gone};
use ecr_operator::api::repository::OWNER_TAG;
use ecr_operator::api::{LifecyclePolicy, Repository, RepositoryAccessPolicy};
use ecr_operator::controllers::{self, Context};
use ecr_operator::registry::{EcrRegistry, Registry};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// A repository policy granting everyone everything: valid for ECR, and what an attacker would
/// put on a repository it took over.
const OPEN_TO_ALL: &str = "policy: {statements: [{sid: all, effect: Allow, principals: {aws: ['*']}, actions: ['ecr:*']}]}";

async fn tags(env: &Env, name: &str) -> BTreeMap<String, String> {
    let info = env
        .registry
        .describe_repository(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("ECR repository {name} is gone"));
    env.registry.list_tags(&info.arn).await.unwrap()
}

/// A repository made outside the operator (Terraform, the console), without an owner tag, with
/// a policy of its own.
async fn foreign_repository(env: &Env, name: &str) -> String {
    env.ecr()
        .create_repository()
        .repository_name(name)
        .send()
        .await
        .unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ci","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/ci"},"Action":["ecr:BatchGetImage"]}]}"#;
    env.ecr()
        .set_repository_policy()
        .repository_name(name)
        .policy_text(policy)
        .send()
        .await
        .unwrap();
    env.registry
        .get_repository_policy(name)
        .await
        .unwrap()
        .unwrap()
}

async fn grant(env: &Env, yaml: &str) -> RepositoryAccessPolicy {
    let api: Api<RepositoryAccessPolicy> = Api::all(env.kube.client());
    let mut policy: RepositoryAccessPolicy = serde_yaml::from_str(yaml).unwrap();
    let base = policy.metadata.name.clone().unwrap_or_default();
    policy.metadata.name = Some(testbed::kube_env::unique_name(&base));
    let policy = api
        .create(&PostParams::default(), &common::in_scope(policy))
        .await
        .unwrap_or_else(|e| panic!("creating the RepositoryAccessPolicy: {e}"));
    wait_for(
        &api,
        &policy.metadata.name.clone().unwrap(),
        "Ready",
        common::ready,
    )
    .await
}

#[tokio::test]
async fn by_default_a_tenant_cannot_take_over_a_repository_outside_its_prefix() {
    let env = Env::start_with_default_grants().await;
    let ns = env.kube.namespace("tenant").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    let policy_before = foreign_repository(&env, "billing").await;
    let writes_before = env.registry.stats().writes();

    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: grab}}, spec: {{repositoryName: billing, adopt: true, deletionPolicy: Delete, forceDelete: true, {OPEN_TO_ALL}}}}}")).await;
    let refused = wait_for(&api, "grab", "Forbidden", reason_is("Forbidden")).await;
    let message = message_of(&refused);
    assert!(
        message.contains("billing")
            && message.contains(&ns)
            && message.contains("no RepositoryAccessPolicy selects"),
        "{message}"
    );
    assert_eq!(env.registry.stats().writes(), writes_before, "no ECR write");
    assert!(!tags(&env, "billing").await.contains_key(OWNER_TAG));
    assert_eq!(
        env.registry.get_repository_policy("billing").await.unwrap(),
        Some(policy_before.clone())
    );

    // Deleting it deletes nothing in ECR.
    api.delete("grab", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "grab").await;
    assert_eq!(env.registry.stats().writes(), writes_before, "no ECR write");
    assert!(
        env.registry
            .describe_repository("billing")
            .await
            .unwrap()
            .is_some()
    );

    // Its own prefix works without any policy...
    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: app}}, spec: {{repositoryName: {ns}/app}}}}")).await;
    wait_for(&api, "app", "Ready", is_ready).await;
    assert_eq!(
        tags(&env, &format!("{ns}/app")).await[OWNER_TAG],
        format!("test-cluster/{ns}/app")
    );
    // ...but adopting there is not allowed by default either.
    foreign_repository(&env, &format!("{ns}/legacy")).await;
    let writes_before = env.registry.stats().writes();
    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: legacy}}, spec: {{repositoryName: {ns}/legacy, adopt: true}}}}")).await;
    let refused = wait_for(&api, "legacy", "Forbidden", reason_is("Forbidden")).await;
    assert!(
        message_of(&refused).contains("default grant allows no adoption"),
        "{}",
        message_of(&refused)
    );
    assert_eq!(env.registry.stats().writes(), writes_before, "no ECR write");
    assert!(
        !tags(&env, &format!("{ns}/legacy"))
            .await
            .contains_key(OWNER_TAG)
    );
}

#[tokio::test]
async fn a_policy_grants_names_and_adoption_and_a_change_of_it_takes_effect() {
    let env = Env::start_with_default_grants().await;
    let ns = env.kube.namespace("granted").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    foreign_repository(&env, "legacy-billing").await;
    foreign_repository(&env, "shared-base").await;
    let adopting = grant(
        &env,
        &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: RepositoryAccessPolicy, metadata: {{name: legacy}}, spec: {{namespaces: {{names: [{ns}]}}, repositories: ['legacy-*', '{{namespace}}/*'], allowAdoption: true}}}}"),
    )
    .await;
    let plain = grant(
        &env,
        &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: RepositoryAccessPolicy, metadata: {{name: shared}}, spec: {{namespaces: {{names: [{ns}]}}, repositories: ['shared-*']}}}}"),
    )
    .await;

    // Adoption inside the allowing policy works.
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: billing}, spec: {repositoryName: legacy-billing, adopt: true}}").await;
    let adopted = wait_for(&api, "billing", "Ready", is_ready).await;
    assert_eq!(
        adopted.status.unwrap().ownership,
        Some(ecr_operator::api::repository::Ownership::Adopted)
    );
    assert_eq!(
        tags(&env, "legacy-billing").await[OWNER_TAG],
        format!("test-cluster/{ns}/billing")
    );

    // A policy that grants the name without adoption refuses to adopt, and says which policy.
    let writes_before = env.registry.stats().writes();
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: base}, spec: {repositoryName: shared-base, adopt: true}}").await;
    let refused = wait_for(&api, "base", "Forbidden", reason_is("Forbidden")).await;
    let plain_name = plain.metadata.name.clone().unwrap();
    assert!(
        message_of(&refused).contains(&format!(
            "RepositoryAccessPolicy {plain_name} grants it without allowAdoption"
        )),
        "{}",
        message_of(&refused)
    );
    // A name no selecting policy grants: the default no longer applies, and both policies are
    // named with what they allow.
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: other}, spec: {repositoryName: other/thing}}").await;
    let refused = wait_for(&api, "other", "Forbidden", reason_is("Forbidden")).await;
    let message = message_of(&refused);
    let adopting_name = adopting.metadata.name.clone().unwrap();
    assert!(
        message.contains(&format!(
            "RepositoryAccessPolicy {adopting_name} allows legacy-*, {ns}/*"
        )) && message.contains(&format!(
            "RepositoryAccessPolicy {plain_name} allows shared-*"
        )),
        "{message}"
    );
    assert_eq!(env.registry.stats().writes(), writes_before, "no ECR write");

    // Widening the grant is picked up without touching the Repository.
    let policies: Api<RepositoryAccessPolicy> = Api::all(env.kube.client());
    policies
        .patch(
            &plain_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"repositories": ["shared-*", "other/*"]}})),
        )
        .await
        .unwrap();
    wait_for(&api, "other", "Ready after the grant widened", is_ready).await;
    assert!(
        env.registry
            .describe_repository("other/thing")
            .await
            .unwrap()
            .is_some()
    );
}

/// Forged status: a tenant who may write `repositories/status` points its Ready Repository at
/// another namespace's ECR repository, then lets a LifecyclePolicy and a deletion follow it.
#[tokio::test]
async fn a_forged_status_leads_to_no_write_and_no_delete() {
    // Slow sweeps: the forged status must stay in place while the attack runs.
    let mut config = common::test_config();
    config.sweep_interval = std::time::Duration::from_secs(3600);
    config.deep_sweep_interval = std::time::Duration::from_secs(3600);
    let env = Env::start_with(config).await;
    let victim_ns = env.kube.namespace("victim").await.unwrap();
    let attacker_ns = env.kube.namespace("attacker").await.unwrap();
    let victims: Api<Repository> = env.api(&victim_ns);
    let attackers: Api<Repository> = env.api(&attacker_ns);

    create(&victims, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: app}, spec: {repositoryName: shared/app}}").await;
    let victim = wait_for(&victims, "app", "Ready", is_ready).await;
    let victim_status = victim.status.clone().unwrap();
    create(&attackers, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: mine}}, spec: {{repositoryName: {attacker_ns}/mine}}}}")).await;
    wait_for(&attackers, "mine", "Ready", is_ready).await;
    let writes_before = env.registry.stats().writes();

    // 1. A LifecyclePolicy through a forged status.repositoryName.
    attackers
        .patch_status(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "repositoryName": "shared/app",
                "repositoryArn": victim_status.repository_arn,
            }})),
        )
        .await
        .unwrap();
    let lifecycle: Api<LifecyclePolicy> = env.api(&attacker_ns);
    create(&lifecycle, "{apiVersion: ecr.operator.dev/v1alpha1, kind: LifecyclePolicy, metadata: {name: wipe}, spec: {repositoryRef: {name: mine}, rules: [{rulePriority: 1, selection: {tagStatus: any, countType: imageCountMoreThan, countNumber: 1}}]}}").await;
    let refused = wait_for(&lifecycle, "wipe", "refused", failed_with("Conflict")).await;
    assert!(
        message_of(&refused).contains(&format!("Repository {attacker_ns}/mine")),
        "{}",
        message_of(&refused)
    );
    assert!(
        env.registry
            .get_lifecycle_policy("shared/app")
            .await
            .unwrap()
            .is_none(),
        "nothing was put on the victim's repository"
    );

    // 2. A deletion through a forged status.repositoryArn and createdAt.
    create(&attackers, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: grab}, spec: {repositoryName: shared/app, deletionPolicy: Delete, forceDelete: true}}").await;
    wait_for(&attackers, "grab", "Conflict", reason_is("Conflict")).await;
    attackers
        .patch_status(
            "grab",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "repositoryName": "shared/app",
                "repositoryArn": victim_status.repository_arn,
                "createdAt": victim_status.created_at,
                "ownership": "Created",
            }})),
        )
        .await
        .unwrap();
    attackers
        .delete("grab", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&attackers, "grab").await;
    assert!(
        env.registry
            .describe_repository("shared/app")
            .await
            .unwrap()
            .is_some(),
        "the victim's repository is still there"
    );
    assert_eq!(
        tags(&env, "shared/app").await[OWNER_TAG],
        format!("test-cluster/{victim_ns}/app")
    );
    assert_eq!(
        env.registry.stats().writes(),
        writes_before,
        "no ECR write: {:?}",
        env.registry.stats().snapshot()
    );
}

/// Two clusters with different ids on one registry, each with a Repository of the same
/// namespace and name: the second sees the first's repository as someone else's and neither
/// modifies nor deletes it. The second cluster is the API server double, so that both can hold
/// an object of the very same namespace and name.
#[tokio::test]
async fn two_clusters_with_different_ids_never_touch_each_others_repositories() {
    let env = Env::start().await;
    let ns = env.kube.namespace("both").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: app}}, spec: {{repositoryName: {ns}/app, imageTagMutability: IMMUTABLE}}}}")).await;
    wait_for(&api, "app", "Ready", is_ready).await;

    // Cluster B: its own API server and operator, the same moto, another cluster id.
    let other = testbed::kube_env::KubeEnv::double().await.unwrap();
    other.ensure_namespace(&ns).await.unwrap();
    let registry_b = Arc::new(EcrRegistry::from_client(env.moto.ecr_client()));
    let mut config_b = common::test_config();
    config_b.cluster_id = "cluster-b".to_string();
    let ctx_b = Arc::new(Context::new(other.client(), registry_b.clone(), config_b));
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let operator_b = tokio::spawn(controllers::run(ctx_b, async move {
        let _ = stopped_b.await;
    }));
    let api_b: Api<Repository> = Api::namespaced(other.client(), &ns);
    let repo_b: Repository = serde_yaml::from_str(&format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: app}}, spec: {{repositoryName: {ns}/app, imageTagMutability: MUTABLE, adopt: true, deletionPolicy: Delete, forceDelete: true, {OPEN_TO_ALL}}}}}")).unwrap();
    api_b.create(&PostParams::default(), &repo_b).await.unwrap();
    let conflict = wait_for(&api_b, "app", "Conflict", reason_is("Conflict")).await;
    assert!(
        message_of(&conflict).contains(&format!("test-cluster/{ns}/app")),
        "{}",
        message_of(&conflict)
    );
    api_b.delete("app", &DeleteParams::default()).await.unwrap();
    wait_gone(&api_b, "app").await;
    assert_eq!(registry_b.stats().writes(), 0, "cluster B wrote nothing");
    let info = env
        .registry
        .describe_repository(&format!("{ns}/app"))
        .await
        .unwrap()
        .expect("cluster A's repository is still there");
    assert_eq!(info.tag_mutability, "IMMUTABLE");
    assert_eq!(
        env.registry
            .get_repository_policy(&format!("{ns}/app"))
            .await
            .unwrap(),
        None
    );
    let _ = stop_b.send(());
    operator_b.await.unwrap().unwrap();
}
