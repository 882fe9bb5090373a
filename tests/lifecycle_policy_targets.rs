//! LifecyclePolicies follow their Repository into its RegistryTarget (issue #16), on the real
//! kube-apiserver with moto serving two accounts through STS AssumeRole: the policy is written,
//! read back, restored after drift and removed in the target's registry (checked there with an
//! assumed-role client, by the account in the ARN), never in the operator's own registry's
//! repository of the same name; a target gone stops every write until it is back.

mod common;

use std::sync::Arc;

use common::targets::{create_target, grant_targets, moto_writes, registry_of};
use common::{Env, create, failed_with, message_of, ready, wait_for};
use ecr_operator::api::{LifecyclePolicy, RegistryTarget, Repository};
use ecr_operator::controllers::lifecycle_policy::render_spec;
use ecr_operator::lifecycle::policies_equivalent;
use ecr_operator::registry::Registry;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

const B: &str = "222222222222";
const REGION: &str = "us-west-2";

fn policy(name: &str, repository: &str, count: i32) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: LifecyclePolicy
metadata: {{name: {name}}}
spec:
  repositoryRef: {{name: {repository}}}
  rules: [{{rulePriority: 1, selection: {{tagStatus: any, countType: imageCountMoreThan, countNumber: {count}}}}}]
"
    )
}

fn repository(name: &str, target: Option<&str>) -> String {
    let registry_ref = target
        .map(|t| format!("  registryRef: {{name: {t}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: Repository
metadata: {{name: {name}}}
spec:
  repositoryName: shared/app
  deletionPolicy: Retain
{registry_ref}"
    )
}

/// Whether `text` is the policy `lp` renders.
fn renders(lp: &LifecyclePolicy, text: Option<&str>) -> bool {
    let rendered = render_spec(&lp.spec).map(|(_, t)| t).unwrap_or_default();
    text.is_some_and(|t| policies_equivalent(t, &rendered))
}

async fn policy_in(registry: &dyn Registry) -> Option<String> {
    registry.get_lifecycle_policy("shared/app").await.unwrap()
}

/// The whole life of a LifecyclePolicy on a Repository in account B, next to one on the own
/// registry's repository of the same name: put in B only (its preview lists B's images, not
/// the own registry's), drift in B restored, no write anywhere while the target is gone (a spec
/// change waits, TargetNotReady), applied once it is back, removed in B on deletion while the
/// own registry's policy stays.
#[tokio::test]
async fn a_policy_follows_its_repository_into_another_account() {
    let env = Env::start().await;
    let target = create_target(&env, B, REGION, "ecr-operator").await;
    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    grant_targets(&env, &format!("[{target}]"), "{selector: {}}").await;
    let ns = env.kube.namespace("lp-targets").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    let api: Api<LifecyclePolicy> = env.api(&ns);
    create(&repos, &repository("own", None)).await;
    create(&repos, &repository("there", Some(&target))).await;
    for r in ["own", "there"] {
        wait_for(&repos, r, "Repository Ready", common::is_ready).await;
    }
    // Two images in the own registry's shared/app, none in B's.
    for tag in ["a", "b"] {
        testbed::images::push_image(&env.ecr(), "shared/app", tag)
            .await
            .unwrap();
    }
    let b = registry_of(&env, B, REGION).await;
    let arn = b
        .describe_repository("shared/app")
        .await
        .unwrap()
        .unwrap()
        .arn;
    assert_eq!(
        arn,
        format!("arn:aws:ecr:{REGION}:{B}:repository/shared/app")
    );

    create(&api, &policy("own-keep", "own", 7)).await;
    create(&api, &policy("keep", "there", 5)).await;
    let own = wait_for(&api, "own-keep", "own Ready", ready).await;
    let lp = wait_for(&api, "keep", "Ready in B", ready).await;
    let status = lp.status.clone().unwrap_or_default();
    assert_eq!(status.registry_target.as_deref(), Some(target.as_str()));
    assert_eq!(status.repository_name.as_deref(), Some("shared/app"));
    let preview = status.preview.unwrap_or_default();
    assert_eq!(
        preview.image_count, 0,
        "B's images, not the own registry's two"
    );
    let own_preview = own
        .status
        .clone()
        .unwrap_or_default()
        .preview
        .unwrap_or_default();
    assert_eq!(own_preview.image_count, 2);
    assert!(
        renders(&lp, policy_in(b.as_ref()).await.as_deref()),
        "keep's policy in B"
    );
    assert!(
        renders(&own, policy_in(env.registry.as_ref()).await.as_deref()),
        "the own registry's shared/app holds own-keep's policy, not keep's"
    );

    drift_in_b_is_restored(&env, &b, &lp).await;
    let lp = no_write_while_the_target_is_gone(&env, &targets, &target, &api).await;
    assert!(
        renders(&lp, policy_in(b.as_ref()).await.as_deref()),
        "the change applied in B"
    );

    api.delete("keep", &DeleteParams::default()).await.unwrap();
    common::wait_gone(&api, "keep").await;
    assert_eq!(policy_in(b.as_ref()).await, None, "removed in B");
    assert!(
        renders(&own, policy_in(env.registry.as_ref()).await.as_deref()),
        "the own registry's policy stays"
    );
}

/// Someone replaces the policy in B: the resync puts keep's back there.
async fn drift_in_b_is_restored(env: &Env, b: &Arc<dyn Registry>, lp: &LifecyclePolicy) {
    let foreign = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    b.put_lifecycle_policy("shared/app", foreign).await.unwrap();
    testbed::wait::until("drift restored in B", common::WAIT, || async {
        renders(lp, policy_in(b.as_ref()).await.as_deref()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !renders(lp, policy_in(env.registry.as_ref()).await.as_deref()),
        "not put in the own registry"
    );
}

/// The target deleted: keep reports TargetNotReady, a change of its rules is seen and waits
/// through more reconciles without a write in any registry; the target back, it is applied.
/// Returns the object once Ready again.
async fn no_write_while_the_target_is_gone(
    env: &Env,
    targets: &Api<RegistryTarget>,
    target: &str,
    api: &Api<LifecyclePolicy>,
) -> LifecyclePolicy {
    let spec = targets.get(target).await.unwrap().spec;
    targets
        .delete(target, &DeleteParams::default())
        .await
        .unwrap();
    let lp = wait_for(api, "keep", "TargetNotReady", failed_with("TargetNotReady")).await;
    assert!(
        message_of(&lp).contains("does not exist"),
        "{}",
        message_of(&lp)
    );
    let before = moto_writes(env).await;
    let patch = serde_json::json!({"spec": {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3}}]}});
    api.patch("keep", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let generation = api.get("keep").await.unwrap().metadata.generation;
    wait_for(api, "keep", "the change seen, still TargetNotReady", |o| {
        failed_with::<LifecyclePolicy>("TargetNotReady")(o)
            && o.status.as_ref().and_then(|s| s.common.observed_generation) == generation
    })
    .await;
    // Three more reconciles (each annotation is an update of the object), and no write.
    let seen = env
        .metrics
        .reconciles("lifecyclepolicy", "target_not_ready");
    for i in 1..=3u64 {
        let touch = serde_json::json!({"metadata": {"annotations": {"test/touch": i.to_string()}}});
        api.patch("keep", &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .unwrap();
        testbed::wait::until("one more reconcile", common::WAIT, || async {
            (env.metrics
                .reconciles("lifecyclepolicy", "target_not_ready")
                >= seen + i)
                .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(moto_writes(env).await, before, "no write in any registry");

    let back = common::in_scope(RegistryTarget::new(target, spec));
    targets.create(&Default::default(), &back).await.unwrap();
    wait_for(api, "keep", "Ready again", |o| {
        ready(o) && o.status.as_ref().and_then(|s| s.common.observed_generation) == generation
    })
    .await
}
