//! PullThroughCacheRules and RepositoryCreationTemplates in RegistryTargets (issue #16), on the
//! real kube-apiserver with moto serving two accounts through STS AssumeRole: an object with
//! `registryRef` writes its rule or template in the target's registry only (read back there with
//! an assumed-role client), next to an own-registry object of the same prefix (no Conflict:
//! another registry, another resource); drift in the target is restored there; with the target
//! deleted a spec change waits (TargetNotReady) without a write anywhere, and is applied once the
//! target is back; deletion removes it in the target only; registryRef cannot be added. A
//! rule's credentials Secret is mirrored into the target's Secrets Manager.

mod common;

use std::collections::BTreeMap;

use common::targets::{create_target, moto_writes, registry_of};
use common::{Env, create, failed_with, message_of, ready, wait_for, wait_gone};
use ecr_operator::api::{PullThroughCacheRule, RegistryTarget, RepositoryCreationTemplate};
use ecr_operator::controllers::status::Reported;
use ecr_operator::registry::{CreationTemplateInfo, PullThroughCacheRuleInfo, Registry};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use testbed::kube_env::unique_name;

const B: &str = "222222222222";
const REGION: &str = "us-east-1";

fn registry_ref(target: Option<&str>) -> String {
    target
        .map(|t| format!("registryRef: {{name: {t}}}, "))
        .unwrap_or_default()
}

fn rule(name: &str, prefix: &str, url: &str, target: Option<&str>) -> String {
    let r = registry_ref(target);
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: PullThroughCacheRule
metadata: {{name: {name}}}
spec: {{{r}ecrRepositoryPrefix: {prefix}, upstreamRegistryUrl: {url}}}
"
    )
}

fn template(name: &str, description: &str, target: Option<&str>) -> String {
    let r = registry_ref(target);
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: RepositoryCreationTemplate
metadata: {{name: {name}}}
spec: {{{r}prefix: prod, appliedFor: [CREATE_ON_PUSH], description: '{description}', deletionPolicy: Delete}}
"
    )
}

async fn rule_in(registry: &dyn Registry, prefix: &str) -> Option<PullThroughCacheRuleInfo> {
    registry
        .describe_pull_through_cache_rule(prefix)
        .await
        .unwrap()
}

/// The upstream of the rule for `prefix` in `registry`.
async fn upstream_in(registry: &dyn Registry, prefix: &str) -> Option<String> {
    rule_in(registry, prefix)
        .await
        .map(|r| r.upstream_registry_url)
}

async fn template_in(registry: &dyn Registry) -> Option<CreationTemplateInfo> {
    let all = registry.describe_creation_templates(&[]).await.unwrap();
    all.into_iter()
        .find(|t| t.template.prefix.trim_end_matches('/') == "prod")
}

async fn description_in(registry: &dyn Registry) -> Option<String> {
    template_in(registry).await?.template.description
}

/// Waits until `registry`'s `read` answers `want`.
async fn wait_registry<T, F, Fut>(what: &str, read: F, want: T)
where
    T: PartialEq + std::fmt::Debug,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    testbed::wait::until(what, common::WAIT, || {
        let seen = read();
        let want = &want;
        async move { (seen.await == *want).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A rule for `hub` in the own registry (public.ecr.aws) and one for `hub` in B
/// (registry.k8s.io) are both Ready, each in its own registry; a B-only prefix is absent from
/// the own registry. B's rule deleted behind the operator's back is re-created in B; with the
/// target gone an upstream change waits, and is made in B once it is back; deleting the object
/// removes B's rules and leaves the own one.
#[tokio::test]
async fn pull_through_cache_rules_live_in_their_target() {
    let env = Env::start().await;
    let target = create_target(&env, B, REGION, "ecr-operator").await;
    let api: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    let (own, there, only) = (
        unique_name("own"),
        unique_name("there"),
        unique_name("only"),
    );
    create(&api, &rule(&own, "hub", "public.ecr.aws", None)).await;
    wait_for(&api, &own, "own Ready", ready).await;
    // Younger, same prefix: another registry's rule, not a Conflict of the own one.
    create(&api, &rule(&there, "hub", "registry.k8s.io", Some(&target))).await;
    create(&api, &rule(&only, "only-b", "quay.io", Some(&target))).await;
    for name in [&there, &only] {
        wait_for(&api, name, "Ready in B", ready).await;
    }
    let status = api.get(&there).await.unwrap().status.unwrap_or_default();
    assert_eq!(status.registry_id.as_deref(), Some(B));
    let b = registry_of(&env, B, REGION).await;
    let own_registry = env.registry.clone();
    assert_eq!(
        upstream_in(b.as_ref(), "hub").await.as_deref(),
        Some("registry.k8s.io")
    );
    assert_eq!(
        upstream_in(own_registry.as_ref(), "hub").await.as_deref(),
        Some("public.ecr.aws"),
        "the own registry's hub is the own object's"
    );
    assert!(upstream_in(b.as_ref(), "only-b").await.is_some());
    assert_eq!(upstream_in(own_registry.as_ref(), "only-b").await, None);

    // Drift in B: the rule deleted there is re-created there.
    b.delete_pull_through_cache_rule("hub").await.unwrap();
    let in_b = || {
        let b = b.clone();
        async move { upstream_in(b.as_ref(), "hub").await }
    };
    wait_registry("hub re-created in B", in_b, Some("registry.k8s.io".into())).await;

    let patch = json!({"spec": {"upstreamRegistryUrl": "quay.io"}});
    while_the_target_is_gone(&env, &target, &api, &there, &patch).await;
    wait_registry("hub replaced in B", in_b, Some("quay.io".into())).await;
    assert_eq!(
        upstream_in(own_registry.as_ref(), "hub").await.as_deref(),
        Some("public.ecr.aws")
    );

    for name in [&there, &only] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
        wait_gone(&api, name).await;
    }
    assert_eq!(upstream_in(b.as_ref(), "hub").await, None, "removed in B");
    assert_eq!(upstream_in(b.as_ref(), "only-b").await, None);
    assert_eq!(
        upstream_in(own_registry.as_ref(), "hub").await.as_deref(),
        Some("public.ecr.aws"),
        "the own registry's rule stays"
    );
    registry_ref_is_fixed(&api, &own, &target).await;
}

/// A rule whose credentials come from a Kubernetes Secret mirrors them into the target's Secrets
/// Manager (a rule takes a secret of its own account), not the own one's; deleting the object
/// removes the rule and the mirror in B.
#[tokio::test]
async fn a_mirrored_secret_lives_in_the_target() {
    let mut env = Env::start().await;
    let ops = env.kube.namespace("ops").await.unwrap();
    common::restart_with_secrets(&mut env, &ops);
    let target = create_target(&env, B, REGION, "ecr-operator").await;
    let secrets: Api<Secret> = Api::namespaced(env.kube.client(), &ops);
    let creds = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("ghcr-creds".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("username".into(), "bot".into()),
            ("accessToken".into(), "token-1".into()),
        ])),
        ..Default::default()
    };
    secrets.create(&Default::default(), &creds).await.unwrap();
    let api: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    let name = unique_name("ghcr");
    let extra = "credentialsSecretRef: {name: ghcr-creds}, ";
    let yaml = rule(&name, "ghcr", "ghcr.io", Some(&target))
        .replace("spec: {", &format!("spec: {{{extra}"));
    create(&api, &yaml).await;
    let r = wait_for(&api, &name, "Ready in B", ready).await;
    let arn = r
        .status
        .unwrap_or_default()
        .credential_arn
        .unwrap_or_default();
    assert!(
        arn.contains(&format!(":{B}:secret:ecr-pullthroughcache/{name}")),
        "{arn}"
    );
    let b = registry_of(&env, B, REGION).await;
    let mirror = format!("ecr-pullthroughcache/{name}");
    assert_eq!(
        b.get_secret(&mirror).await.unwrap().map(|s| s.arn),
        Some(arn.clone())
    );
    assert!(
        env.registry.get_secret(&mirror).await.unwrap().is_none(),
        "not in the own account"
    );
    let info = rule_in(b.as_ref(), "ghcr").await.unwrap();
    assert_eq!(info.credential_arn.as_deref(), Some(arn.as_str()));

    api.delete(&name, &DeleteParams::default()).await.unwrap();
    wait_gone(&api, &name).await;
    assert!(
        rule_in(b.as_ref(), "ghcr").await.is_none(),
        "rule removed in B"
    );
    assert!(
        b.get_secret(&mirror).await.unwrap().is_none(),
        "mirror removed in B"
    );
}

/// A template for `prod` in the own registry and one for `prod` in B are both Ready, each in its
/// own registry; drift in B is restored there; with the target gone a description change waits,
/// and is made in B once it is back; deleting the object (Delete) removes B's template and
/// leaves the own one.
#[tokio::test]
async fn repository_creation_templates_live_in_their_target() {
    let env = Env::start().await;
    let target = create_target(&env, B, REGION, "ecr-operator").await;
    let api: Api<RepositoryCreationTemplate> = Api::all(env.kube.client());
    let (own, there) = (unique_name("own"), unique_name("there"));
    create(&api, &template(&own, "own", None)).await;
    wait_for(&api, &own, "own Ready", ready).await;
    create(&api, &template(&there, "in b", Some(&target))).await;
    wait_for(&api, &there, "Ready in B", ready).await;
    let b = registry_of(&env, B, REGION).await;
    let own_registry = env.registry.clone();
    assert_eq!(description_in(b.as_ref()).await.as_deref(), Some("in b"));
    assert_eq!(
        description_in(own_registry.as_ref()).await.as_deref(),
        Some("own")
    );

    // Drift in B: the description changed there is restored there.
    let mut drifted = template_in(b.as_ref()).await.unwrap().template;
    drifted.description = Some("changed by hand".into());
    b.update_creation_template(&drifted).await.unwrap();
    let in_b = || {
        let b = b.clone();
        async move { description_in(b.as_ref()).await }
    };
    wait_registry("drift restored in B", in_b, Some("in b".into())).await;
    assert_eq!(
        description_in(own_registry.as_ref()).await.as_deref(),
        Some("own")
    );

    let patch = json!({"spec": {"description": "in b, second"}});
    while_the_target_is_gone(&env, &target, &api, &there, &patch).await;
    wait_registry("change made in B", in_b, Some("in b, second".into())).await;

    api.delete(&there, &DeleteParams::default()).await.unwrap();
    wait_gone(&api, &there).await;
    assert!(template_in(b.as_ref()).await.is_none(), "removed in B");
    assert_eq!(
        description_in(own_registry.as_ref()).await.as_deref(),
        Some("own"),
        "the own registry's template stays"
    );
    registry_ref_is_fixed(&api, &own, &target).await;
}

/// The target deleted: `name` reports TargetNotReady; `patch` is seen and waits through three
/// more reconciles with no write in any registry; the target re-created, it is Ready again at
/// the new generation.
async fn while_the_target_is_gone<K: Reported>(
    env: &Env,
    target: &str,
    api: &Api<K>,
    name: &str,
    patch: &serde_json::Value,
) {
    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    let spec = targets.get(target).await.unwrap().spec;
    targets
        .delete(target, &DeleteParams::default())
        .await
        .unwrap();
    let obj = wait_for(api, name, "TargetNotReady", failed_with("TargetNotReady")).await;
    assert!(
        message_of(&obj).contains("does not exist"),
        "{}",
        message_of(&obj)
    );
    let before = moto_writes(env).await;
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let generation = api.get(name).await.unwrap().meta().generation;
    let observed = |o: &K| {
        o.status()
            .and_then(|s| K::common(s).observed_generation)
            .is_some_and(|g| Some(g) == generation)
    };
    wait_for(api, name, "the change seen, still TargetNotReady", |o| {
        failed_with::<K>("TargetNotReady")(o) && observed(o)
    })
    .await;
    let controller = K::KIND.to_ascii_lowercase();
    let seen = env.metrics.reconciles(&controller, "target_not_ready");
    for i in 1..=3u64 {
        let touch = json!({"metadata": {"annotations": {"test/touch": i.to_string()}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .unwrap();
        testbed::wait::until("one more reconcile", common::WAIT, || async {
            (env.metrics.reconciles(&controller, "target_not_ready") >= seen + i).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(moto_writes(env).await, before, "no write in any registry");

    let back = common::in_scope(RegistryTarget::new(target, spec));
    targets.create(&Default::default(), &back).await.unwrap();
    wait_for(api, name, "Ready again", |o| ready(o) && observed(o)).await;
}

/// registryRef cannot be added to an own-registry object (nor, by the same rule, changed).
async fn registry_ref_is_fixed<K: Reported>(api: &Api<K>, name: &str, target: &str) {
    let patch = json!({"spec": {"registryRef": {"name": target}}});
    common::assert_patch_rejected(api, name, &patch, "registryRef is immutable").await;
}
