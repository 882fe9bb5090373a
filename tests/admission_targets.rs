//! The webhook's tag lookups across accounts, on the real API server and moto: a tag of a Ready
//! RegistryTarget's registry is looked up through that target's client (an assumed role in
//! account B), a tag of the own registry through the own client, and a tag of an account no
//! target names is not looked up at all (no ECR call; the image is judged as unscanned).

mod common;

use std::sync::Arc;

use common::targets::{create_target, push_image_as};
use common::{Env, ready, wait_for};
use ecr_operator::admission::DigestResolver;
use ecr_operator::admission::resolver::RegistryResolver;
use ecr_operator::api::RegistryTarget;
use ecr_operator::registry::TargetPool;
use kube::api::Api;

const B: &str = "222222222222";
const REGION: &str = "eu-west-1";
const REPO: &str = "team/app";
const UNKNOWN: &str = "999999999999";

#[tokio::test]
async fn tags_are_looked_up_through_the_client_of_their_registry() {
    let env = Env::start().await;
    let target = create_target(&env, B, REGION, "ecr-operator").await;
    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    wait_for(&targets, &target, "target Ready", ready).await;
    let in_b = push_image_as(&env, B, REGION, REPO, "v1").await;
    let ecr = env.ecr();
    ecr.create_repository()
        .repository_name(REPO)
        .send()
        .await
        .unwrap();
    let own = testbed::images::push_image(&ecr, REPO, "v1").await.unwrap();
    assert_ne!(own, in_b);

    let pool = Arc::new(TargetPool::new(env.moto.sdk_config(), Arc::default()));
    let resolver = RegistryResolver::new(env.registry.clone())
        .with_own_registry(
            Some(testbed::moto::ACCOUNT.into()),
            Some("us-east-1".into()),
        )
        .with_targets(&env.kube.client(), &env.config.watch, pool);
    // The resolver's own watch sees the target Ready.
    testbed::wait::until("resolver sees the target", common::WAIT, || async {
        (!resolver.registries().targets.is_empty()).then_some(())
    })
    .await
    .unwrap();

    let resolve = |account: &'static str, region: &'static str| {
        let resolver = &resolver;
        async move { resolver.resolve(account, region, REPO, "v1").await.unwrap() }
    };
    assert_eq!(resolve(B, REGION).await, Some(in_b), "B's tag, read in B");
    assert_eq!(
        resolve(testbed::moto::ACCOUNT, "us-east-1").await,
        Some(own),
        "the own tag, read in the own registry"
    );
    let before = env.moto.calls().await.unwrap();
    assert_eq!(resolve(UNKNOWN, "us-east-1").await, None);
    assert_eq!(
        resolve(B, "us-east-1").await,
        None,
        "B in a region no target names"
    );
    assert_eq!(
        env.moto.calls().await.unwrap().get("DescribeImages"),
        before.get("DescribeImages"),
        "no lookup in a registry no target names"
    );
}
