//! Repositories in RegistryTargets (issue #16) on the real kube-apiserver, with moto serving
//! several accounts through STS AssumeRole (tests/support/moto_sts_ext.py): each object's calls
//! go to its target's registry and nowhere else, a target that cannot be reached stops only its
//! own objects, and a deleted target stops its objects without a write anywhere.

mod common;

use std::collections::BTreeMap;

use common::targets::{create_target, grant_targets, moto_writes, registry_of};
use common::{Env, create, failed_with, is_ready, message_of, ready, wait_for};
use ecr_operator::api::{RegistryTarget, Repository, RepositoryAccessPolicy};
use ecr_operator::registry::Registry;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use testbed::kube_env::unique_name;

const B: &str = "222222222222";
const C: &str = "333333333333";

fn repository(name: &str, target: Option<&str>, extra: &str) -> String {
    repository_named(name, "shared/app", target, extra)
}

fn repository_named(name: &str, ecr: &str, target: Option<&str>, extra: &str) -> String {
    let registry_ref = target
        .map(|t| format!("  registryRef: {{name: {t}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: Repository
metadata: {{name: {name}}}
spec:
  repositoryName: {ecr}
{registry_ref}{extra}"
    )
}

/// Two accounts x two regions and the operator's own registry, one Repository of the same ECR
/// name in each: each converges in its own registry with that registry's account in its ARN,
/// drift in one registry is corrected there and nowhere else, and a Repository cannot move to
/// another target (the API server refuses it).
#[tokio::test]
async fn the_same_name_in_five_registries_converges_and_drifts_independently() {
    let env = Env::start().await;
    grant_targets(&env, "['*']", "{selector: {}}").await;
    let places = [
        (B, "us-east-1"),
        (B, "us-west-2"),
        (C, "us-east-1"),
        (C, "eu-west-1"),
    ];
    let mut targets = Vec::new();
    for (account, region) in places {
        targets.push(create_target(&env, account, region, "ecr-operator").await);
    }
    let ns = env.kube.namespace("targets").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(
        &api,
        &repository("own", None, "  imageTagMutability: MUTABLE\n"),
    )
    .await;
    for (i, t) in targets.iter().enumerate() {
        let extra = "  imageTagMutability: IMMUTABLE\n  scanOnPush: true\n";
        create(&api, &repository(&format!("in-{i}"), Some(t), extra)).await;
    }
    let own = wait_for(&api, "own", "own Ready", is_ready).await;
    let own_arn = own
        .status
        .unwrap_or_default()
        .repository_arn
        .unwrap_or_default();
    assert!(
        own_arn.contains(&format!(":{}:", testbed::moto::ACCOUNT)),
        "{own_arn}"
    );
    for (i, (account, region)) in places.iter().enumerate() {
        let r = wait_for(&api, &format!("in-{i}"), "target Ready", is_ready).await;
        let status = r.status.unwrap_or_default();
        let arn = status.repository_arn.unwrap_or_default();
        assert_eq!(
            arn,
            format!("arn:aws:ecr:{region}:{account}:repository/shared/app")
        );
        assert_eq!(status.registry_id.as_deref(), Some(*account));
        let info = registry_of(&env, account, region)
            .await
            .describe_repository("shared/app")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("shared/app in {account} {region}"));
        assert_eq!(info.tag_mutability, "IMMUTABLE", "{account} {region}");
    }
    // The own registry's repository is the own object's: MUTABLE, not the targets' IMMUTABLE.
    let own_info = env
        .registry
        .describe_repository("shared/app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own_info.tag_mutability, "MUTABLE");

    // Drift in one registry (account C, eu-west-1): corrected there; the others untouched.
    let drifted = registry_of(&env, C, "eu-west-1").await;
    drifted.put_scan_on_push("shared/app", false).await.unwrap();
    testbed::wait::until("drift corrected in C eu-west-1", common::WAIT, || {
        let drifted = drifted.clone();
        async move {
            let info = drifted.describe_repository("shared/app").await.ok()??;
            info.scan_on_push.then_some(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let own_info = env
        .registry
        .describe_repository("shared/app")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !own_info.scan_on_push,
        "the own registry's repository was not written"
    );

    // registryRef is fixed: changed, added or removed, the API server refuses.
    let refused = [
        (
            "in-0",
            serde_json::json!({"spec": {"registryRef": {"name": targets[1]}}}),
        ),
        (
            "own",
            serde_json::json!({"spec": {"registryRef": {"name": targets[1]}}}),
        ),
        ("in-0", serde_json::json!({"spec": {"registryRef": null}})),
    ];
    for (name, patch) in refused {
        common::assert_patch_rejected(&api, name, &patch, "registryRef is immutable").await;
    }
}

/// A target whose role cannot be assumed reports AssumeRoleFailed and its Repository
/// TargetNotReady, while a Repository in another target converges; a namespace not granted a
/// target is Forbidden. Neither makes a single ECR call for its object.
#[tokio::test]
async fn an_unassumable_role_stops_only_its_own_objects() {
    let env = Env::start().await;
    let refuse_everyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole"}]}"#;
    let role = unique_name("locked");
    env.moto
        .create_role(B, &role, refuse_everyone)
        .await
        .unwrap();
    let locked = create_target(&env, B, "us-east-1", &role).await;
    let open = create_target(&env, C, "us-east-1", "ecr-operator").await;
    let ns = env.kube.namespace("locked").await.unwrap();
    let only_ns = format!("{{names: [{ns}]}}");
    grant_targets(&env, &format!("[{locked}, {open}]"), &only_ns).await;
    let api: Api<Repository> = env.api(&ns);
    create(&api, &repository("locked", Some(&locked), "")).await;
    create(&api, &repository("open", Some(&open), "")).await;

    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    let t = wait_for(
        &targets,
        &locked,
        "AssumeRoleFailed",
        failed_with("AssumeRoleFailed"),
    )
    .await;
    assert!(
        message_of(&t).contains("sts:AssumeRole"),
        "{}",
        message_of(&t)
    );
    wait_for(&api, "open", "open Ready", is_ready).await;
    let r = wait_for(
        &api,
        "locked",
        "TargetNotReady",
        failed_with("TargetNotReady"),
    )
    .await;
    let message = message_of(&r);
    assert!(
        message.contains(&format!(
            "RegistryTarget {locked} is not Ready (AssumeRoleFailed"
        )),
        "{message}"
    );
    assert!(r.status.unwrap_or_default().repository_arn.is_none());
    // Nothing of the locked object anywhere: not in B (by any role), not in the own registry.
    assert!(
        registry_of(&env, B, "us-east-1")
            .await
            .describe_repository("shared/app")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.registry
            .describe_repository("shared/app")
            .await
            .unwrap()
            .is_none()
    );

    // A namespace the grant does not reach: Forbidden, before the target is even looked at.
    let policies: Api<RepositoryAccessPolicy> = Api::all(env.kube.client());
    let narrow = unique_name("narrow");
    create(
        &policies,
        &format!(
            "apiVersion: ecr.operator.dev/v1alpha1
kind: RepositoryAccessPolicy
metadata: {{name: {narrow}}}
spec:
  namespaces: {{names: [nobody]}}
  repositories: ['*']
"
        ),
    )
    .await;
    let other = env.kube.namespace("ungranted").await.unwrap();
    let other_api: Api<Repository> = env.api(&other);
    create(&other_api, &repository("x", Some(&open), "")).await;
    let r = wait_for(&other_api, "x", "Forbidden", failed_with("Forbidden")).await;
    assert!(
        message_of(&r).contains(&format!("RegistryTarget {open}")),
        "{}",
        message_of(&r)
    );
    assert!(!ready(&targets.get(&locked).await.unwrap()));
}

/// A target deleted while a Repository names it: the Repository reports TargetNotReady, and a
/// spec change meanwhile writes nothing, in any registry; the target back, it converges again.
#[tokio::test]
async fn a_deleted_target_stops_its_objects_without_a_write_anywhere() {
    let env = Env::start().await;
    let name = create_target(&env, B, "us-east-1", "ecr-operator").await;
    grant_targets(&env, &format!("[{name}]"), "{selector: {}}").await;
    let ns = env.kube.namespace("gone").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, &repository("app", Some(&name), "  tags: {team: a}\n")).await;
    wait_for(&api, "app", "Ready", is_ready).await;

    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    let spec = targets.get(&name).await.unwrap().spec;
    targets
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let r = wait_for(&api, "app", "TargetNotReady", failed_with("TargetNotReady")).await;
    assert!(
        message_of(&r).contains("does not exist"),
        "{}",
        message_of(&r)
    );
    let before = moto_writes(&env).await;
    let patch = serde_json::json!({"spec": {"tags": {"team": "b"}, "scanOnPush": true}});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let generation = api.get("app").await.unwrap().metadata.generation;
    wait_for(&api, "app", "the change seen, still TargetNotReady", |r| {
        failed_with::<Repository>("TargetNotReady")(r)
            && r.status.as_ref().and_then(|s| s.common.observed_generation) == generation
    })
    .await;
    // Each sweep reconciles the object again: three more such reconciles, and no write.
    let seen = env.metrics.reconciles("repository", "target_not_ready");
    testbed::wait::until("three more reconciles", common::WAIT, || async {
        (env.metrics.reconciles("repository", "target_not_ready") >= seen + 3).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moto_writes(&env).await, before, "no write in any registry");
    let tags: BTreeMap<String, String> = {
        let b = registry_of(&env, B, "us-east-1").await;
        let info = b.describe_repository("shared/app").await.unwrap().unwrap();
        b.list_tags(&info.arn).await.unwrap()
    };
    assert_eq!(tags.get("team").map(String::as_str), Some("a"));

    // The target back: the change is applied in B.
    let mut back = RegistryTarget::new(&name, spec);
    back = common::in_scope(back);
    targets.create(&Default::default(), &back).await.unwrap();
    wait_for(&api, "app", "Ready again", is_ready).await;
    let b = registry_of(&env, B, "us-east-1").await;
    let info = b.describe_repository("shared/app").await.unwrap().unwrap();
    assert!(info.scan_on_push);
    assert_eq!(
        b.list_tags(&info.arn)
            .await
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("b")
    );
}

/// Deletion goes to the object's registry: a Delete Repository in a target removes the
/// repository there and leaves the own registry's repository of the same name; one whose target
/// is gone keeps its finalizer, reports TargetNotReady and deletes nothing anywhere until the
/// target is back.
#[tokio::test]
async fn deletion_follows_the_target_and_waits_for_it() {
    let env = Env::start().await;
    let name = create_target(&env, B, "us-west-2", "ecr-operator").await;
    grant_targets(&env, &format!("[{name}]"), "{selector: {}}").await;
    let ns = env.kube.namespace("delete").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, &repository("own", None, "")).await;
    let delete = "  deletionPolicy: Delete\n";
    create(&api, &repository("there", Some(&name), delete)).await;
    create(
        &api,
        &repository_named("waits", "shared/other", Some(&name), delete),
    )
    .await;
    for r in ["own", "there", "waits"] {
        wait_for(&api, r, "Ready", is_ready).await;
    }
    let b = registry_of(&env, B, "us-west-2").await;

    api.delete("there", &DeleteParams::default()).await.unwrap();
    common::wait_gone(&api, "there").await;
    assert!(
        b.describe_repository("shared/app").await.unwrap().is_none(),
        "deleted in B"
    );
    assert!(
        env.registry
            .describe_repository("shared/app")
            .await
            .unwrap()
            .is_some(),
        "the own registry's repository of the same name stays"
    );

    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    let spec = targets.get(&name).await.unwrap().spec;
    targets
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    api.delete("waits", &DeleteParams::default()).await.unwrap();
    let r = wait_for(
        &api,
        "waits",
        "TargetNotReady",
        failed_with("TargetNotReady"),
    )
    .await;
    assert!(
        r.metadata.deletion_timestamp.is_some(),
        "kept by its finalizer"
    );
    assert!(
        b.describe_repository("shared/other")
            .await
            .unwrap()
            .is_some(),
        "nothing deleted"
    );

    let back = common::in_scope(RegistryTarget::new(&name, spec));
    targets.create(&Default::default(), &back).await.unwrap();
    common::wait_gone(&api, "waits").await;
    assert!(
        b.describe_repository("shared/other")
            .await
            .unwrap()
            .is_none(),
        "deleted in B"
    );
}
