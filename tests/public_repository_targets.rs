//! PublicRepositories follow their RegistryTarget (issue #16), on the real kube-apiserver with
//! moto serving ECR Public per account through STS AssumeRole: a PublicRepository naming target
//! B (account B, region eu-west-1) is created, restored after drift and deleted in us-east-1 of
//! account B only (read there by an independent assumed-role boto3 client), never in the
//! operator's own account, where an object of the same name keeps its own repository; a target
//! gone stops every write (a deletion included) until it is back; a namespace not granted the
//! target writes nothing.

mod common;

use common::targets::{create_target, grant_targets, moto_writes};
use common::{Env, create, failed_with, message_of, ready, wait_for};
use ecr_operator::api::{PublicRepository, RegistryTarget};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

const B: &str = "222222222222";
/// The target's region: its ECR Public repository is in us-east-1 all the same.
const REGION: &str = "eu-west-1";

fn public_repository(name: &str, repository: &str, target: Option<&str>, rest: &str) -> String {
    let registry_ref = target
        .map(|t| format!("  registryRef: {{name: {t}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: PublicRepository
metadata: {{name: {name}}}
spec:
  repositoryName: {repository}
{registry_ref}{rest}"
    )
}

/// Runs `body` in Python with `p`, a boto3 ECR Public client in us-east-1 acting as account B
/// (its own AssumeRole through moto's STS, independent of the operator), and `NAME`.
async fn as_b(env: &Env, name: &str, body: &str) -> String {
    let script = format!(
        "import boto3, json\n\
         c = boto3.client('sts').assume_role(RoleArn='arn:aws:iam::{B}:role/reader', RoleSessionName='test-read')['Credentials']\n\
         p = boto3.client('ecr-public', region_name='us-east-1', aws_access_key_id=c['AccessKeyId'],\n\
             aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])\n\
         NAME = '{name}'\n\
         {body}"
    );
    env.moto.boto3(&script).await.unwrap()
}

/// The repository `name` in B's ECR Public: `{registryId, arn, description}`, or null.
async fn in_b(env: &Env, name: &str) -> Value {
    let out = as_b(
        env,
        name,
        "try:\n    r = p.describe_repositories(repositoryNames=[NAME])['repositories'][0]\n\
         except p.exceptions.RepositoryNotFoundException:\n    print('null'); raise SystemExit\n\
         d = p.get_repository_catalog_data(repositoryName=NAME).get('catalogData', {})\n\
         print(json.dumps({'registryId': r['registryId'], 'arn': r['repositoryArn'], 'description': d.get('description')}))",
    )
    .await;
    serde_json::from_str(out.trim()).unwrap()
}

/// The description of `name` in the operator's own account's ECR Public (us-east-1, the
/// operator's credentials), `None` when it does not exist.
async fn in_own(env: &Env, name: &str) -> Option<String> {
    let conf = aws_sdk_ecrpublic::config::Builder::from(&env.moto.sdk_config())
        .region(aws_sdk_ecrpublic::config::Region::new("us-east-1"))
        .build();
    let c = aws_sdk_ecrpublic::Client::from_conf(conf);
    match c
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => assert_eq!(out.repositories().len(), 1),
        Err(e) => {
            let code = aws_sdk_ecrpublic::error::ProvideErrorMetadata::code(&e);
            assert_eq!(code, Some("RepositoryNotFoundException"), "{e:?}");
            return None;
        }
    }
    let out = c
        .get_repository_catalog_data()
        .repository_name(name)
        .send()
        .await
        .unwrap();
    let catalog = out.catalog_data();
    Some(
        catalog
            .and_then(|d| d.description())
            .unwrap_or_default()
            .to_string(),
    )
}

async fn wait_b_description(env: &Env, name: &str, want: &str) {
    let found = testbed::wait::until("B's description", common::WAIT, || async {
        (in_b(env, name).await["description"] == want).then_some(())
    })
    .await;
    if let Err(e) = found {
        panic!("{e}: want {want}, last {}", in_b(env, name).await);
    }
}

/// The whole life of a PublicRepository in account B beside the own account's of the same name.
#[tokio::test]
async fn a_public_repository_lives_in_its_targets_account() {
    let env = Env::start().await;
    let target = create_target(&env, B, REGION, "ecr-operator").await;
    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    let ns = env.kube.namespace("pub-targets").await.unwrap();
    grant_targets(&env, &format!("[{target}]"), &format!("{{names: [{ns}]}}")).await;
    let api: Api<PublicRepository> = env.api(&ns);
    let name = format!("{ns}/app");

    let there = "  deletionPolicy: Delete\n  catalogData: {description: in B}\n";
    create(
        &api,
        &public_repository("there", &name, Some(&target), there),
    )
    .await;
    let obj = wait_for(&api, "there", "Ready in B", ready).await;
    let status = obj.status.clone().unwrap_or_default();
    assert_eq!(status.registry_id.as_deref(), Some(B));
    let arn = format!("arn:aws:ecr-public::{B}:repository/{name}");
    assert_eq!(status.repository_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        in_b(&env, &name).await,
        json!({"registryId": B, "arn": arn, "description": "in B"}),
        "created in us-east-1 of B"
    );
    assert_eq!(in_own(&env, &name).await, None, "not in the own account");

    // The own account's repository of the same name is another repository: no Conflict.
    let own = "  deletionPolicy: Retain\n  catalogData: {description: own}\n";
    create(&api, &public_repository("own", &name, None, own)).await;
    let own_obj = wait_for(&api, "own", "own Ready", ready).await;
    assert_ne!(
        own_obj.status.unwrap_or_default().registry_id.as_deref(),
        Some(B)
    );
    assert_eq!(in_own(&env, &name).await.as_deref(), Some("own"));
    assert_eq!(in_b(&env, &name).await["description"], "in B");
    assert!(ready(&api.get("there").await.unwrap()), "there still Ready");
    registry_ref_is_immutable(&api, &target).await;

    // Drift in B: restored there.
    as_b(
        &env,
        &name,
        "p.put_repository_catalog_data(repositoryName=NAME, catalogData={'description': 'changed outside'})",
    )
    .await;
    wait_b_description(&env, &name, "in B").await;
    assert_eq!(in_own(&env, &name).await.as_deref(), Some("own"));

    no_write_while_the_target_is_gone(&env, &targets, &target, &api).await;
    wait_b_description(&env, &name, "in B v2").await;
    assert_eq!(in_own(&env, &name).await.as_deref(), Some("own"));

    deletion_waits_for_the_target(&env, &targets, &target, &api, &name).await;
    assert_eq!(in_own(&env, &name).await.as_deref(), Some("own"));

    a_namespace_without_the_grant_writes_nothing(&env, &target).await;
}

/// registryRef is fixed: changed, removed or added, the API server refuses (422).
async fn registry_ref_is_immutable(api: &Api<PublicRepository>, target: &str) {
    let refused = [
        ("there", json!({"spec": {"registryRef": {"name": "other"}}})),
        ("there", json!({"spec": {"registryRef": null}})),
        ("own", json!({"spec": {"registryRef": {"name": target}}})),
    ];
    for (name, patch) in refused {
        common::assert_patch_rejected(api, name, &patch, "registryRef is immutable").await;
    }
}

/// The target deleted: `there` reports TargetNotReady, a spec change is seen and waits through
/// more reconciles with no write in any account; the target back, it is applied.
async fn no_write_while_the_target_is_gone(
    env: &Env,
    targets: &Api<RegistryTarget>,
    target: &str,
    api: &Api<PublicRepository>,
) {
    let spec = targets.get(target).await.unwrap().spec;
    targets
        .delete(target, &DeleteParams::default())
        .await
        .unwrap();
    let obj = wait_for(
        api,
        "there",
        "TargetNotReady",
        failed_with("TargetNotReady"),
    )
    .await;
    assert!(
        message_of(&obj).contains("does not exist"),
        "{}",
        message_of(&obj)
    );
    let before = moto_writes(env).await;
    let patch = json!({"spec": {"catalogData": {"description": "in B v2"}}});
    api.patch("there", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let generation = api.get("there").await.unwrap().metadata.generation;
    wait_for(api, "there", "the change seen, still TargetNotReady", |o| {
        failed_with::<PublicRepository>("TargetNotReady")(o)
            && o.status.as_ref().and_then(|s| s.common.observed_generation) == generation
    })
    .await;
    // Three more reconciles (each annotation is an update of the object), and no write.
    let seen = env
        .metrics
        .reconciles("publicrepository", "target_not_ready");
    for i in 1..=3u64 {
        let touch = json!({"metadata": {"annotations": {"test/touch": i.to_string()}}});
        api.patch("there", &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .unwrap();
        testbed::wait::until("one more reconcile", common::WAIT, || async {
            (env.metrics
                .reconciles("publicrepository", "target_not_ready")
                >= seen + i)
                .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(moto_writes(env).await, before, "no write in any account");

    let back = common::in_scope(RegistryTarget::new(target, spec));
    targets.create(&Default::default(), &back).await.unwrap();
    wait_for(api, "there", "Ready again", |o| {
        ready(o) && o.status.as_ref().and_then(|s| s.common.observed_generation) == generation
    })
    .await;
}

/// Deleted (Delete) while its target is gone: the object stays (finalizer) with TargetNotReady
/// and nothing is written anywhere; the target back, the repository is deleted in B and the
/// object goes.
async fn deletion_waits_for_the_target(
    env: &Env,
    targets: &Api<RegistryTarget>,
    target: &str,
    api: &Api<PublicRepository>,
    name: &str,
) {
    let spec = targets.get(target).await.unwrap().spec;
    targets
        .delete(target, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        api,
        "there",
        "TargetNotReady",
        failed_with("TargetNotReady"),
    )
    .await;
    let before = moto_writes(env).await;
    api.delete("there", &DeleteParams::default()).await.unwrap();
    let seen = env
        .metrics
        .reconciles("publicrepository", "target_not_ready");
    testbed::wait::until("the deletion tried twice", common::WAIT, || async {
        (env.metrics
            .reconciles("publicrepository", "target_not_ready")
            >= seen + 2)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let obj = api.get("there").await.unwrap();
    assert!(
        obj.metadata.deletion_timestamp.is_some(),
        "kept by its finalizer"
    );
    assert_eq!(moto_writes(env).await, before, "no write in any account");
    assert_eq!(
        in_b(env, name).await["description"],
        "in B v2",
        "not deleted"
    );

    let back = common::in_scope(RegistryTarget::new(target, spec));
    targets.create(&Default::default(), &back).await.unwrap();
    common::wait_gone(api, "there").await;
    assert_eq!(in_b(env, name).await, Value::Null, "deleted in B");
}

/// A namespace the target's grant does not select: Forbidden, and nothing written anywhere.
async fn a_namespace_without_the_grant_writes_nothing(env: &Env, target: &str) {
    let other = env.kube.namespace("pub-ungranted").await.unwrap();
    let api: Api<PublicRepository> = env.api(&other);
    let name = format!("{other}/app");
    let before = moto_writes(env).await;
    create(&api, &public_repository("x", &name, Some(target), "")).await;
    let obj = wait_for(&api, "x", "Forbidden", failed_with("Forbidden")).await;
    assert!(
        message_of(&obj).contains(&format!("RegistryTarget {target}")),
        "{}",
        message_of(&obj)
    );
    assert_eq!(moto_writes(env).await, before, "no write in any account");
    assert_eq!(in_b(env, &name).await, Value::Null);
    assert_eq!(in_own(env, &name).await, None);
}
