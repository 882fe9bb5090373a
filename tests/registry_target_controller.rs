//! RegistryTargets on the real kube-apiserver, reached through moto's STS (which serves each
//! account of an assumed role's ARN, and refuses roles whose trust policy does not admit the
//! caller: tests/support/moto_sts_ext.py).

mod common;

use common::{Env, create, failed_with, message_of, ready, wait_for};
use ecr_operator::api::RegistryTarget;
use kube::api::Api;
use testbed::kube_env::unique_name;

const OTHER: &str = "222222222222";

fn target(name: &str, registry_id: &str, extra: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: RegistryTarget
metadata: {{name: {name}}}
spec:
  registryId: '{registry_id}'
  region: us-east-1
{extra}"
    )
}

/// Four targets, each failing or not on its own: a role of another account (Ready, with the
/// account ECR answered for), a role whose trust policy wants an external id the target does not
/// send (AssumeRoleFailed, with STS's refusal), the operator's own credentials named for another
/// account (Invalid: ECR answers for the operator's account), and an endpoint nobody listens on
/// (Unreachable). The faulted ones do not keep the good one from Ready, nor does the good one
/// hide their faults; fixing the external id makes the refused one Ready.
#[tokio::test]
async fn each_target_reports_what_reaching_it_found() {
    let env = Env::start().await;
    let api: Api<RegistryTarget> = Api::all(env.kube.client());
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"right"}}}}}}]}}"#,
        testbed::moto::ACCOUNT
    );
    let guarded_role = unique_name("guarded");
    let guarded_arn = env
        .moto
        .create_role(OTHER, &guarded_role, &trust)
        .await
        .unwrap();
    let (good, refused, wrong, dead) = (
        unique_name("good"),
        unique_name("refused"),
        unique_name("wrong-account"),
        unique_name("dead"),
    );
    let role = |arn: &str, extra: &str| format!("  assumeRole: {{roleArn: '{arn}'{extra}}}\n");
    let any_role = format!("arn:aws:iam::{OTHER}:role/ecr-operator");
    create(&api, &target(&good, OTHER, &role(&any_role, ""))).await;
    let wrong_id = ", externalId: wrong";
    create(
        &api,
        &target(&refused, OTHER, &role(&guarded_arn, wrong_id)),
    )
    .await;
    create(&api, &target(&wrong, OTHER, "")).await;
    let dead_endpoint = "  endpointUrl: 'http://127.0.0.1:1'\n";
    create(&api, &target(&dead, testbed::moto::ACCOUNT, dead_endpoint)).await;

    let t = wait_for(&api, &good, "the good target Ready", ready).await;
    let status = t.status.clone().unwrap_or_default();
    assert_eq!(status.account_id.as_deref(), Some(OTHER));
    assert!(message_of(&t).contains(&any_role), "{}", message_of(&t));

    let t = wait_for(
        &api,
        &refused,
        "AssumeRoleFailed",
        failed_with("AssumeRoleFailed"),
    )
    .await;
    assert!(
        message_of(&t).contains("not authorized to perform: sts:AssumeRole"),
        "{}",
        message_of(&t)
    );
    let t = wait_for(&api, &wrong, "Invalid", failed_with("Invalid")).await;
    let message = message_of(&t);
    assert!(
        message.contains(&format!("for account {}", testbed::moto::ACCOUNT)),
        "{message}"
    );
    wait_for(&api, &dead, "Unreachable", failed_with("Unreachable")).await;
    // The good one stayed Ready throughout.
    assert!(ready(&api.get(&good).await.unwrap()));

    // The trust policy's external id: the refused target becomes Ready without a restart.
    let fixed = serde_json::json!({"spec": {"assumeRole": {"roleArn": guarded_arn, "externalId": "right"}}});
    api.patch(
        &refused,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&fixed),
    )
    .await
    .unwrap();
    let t = wait_for(&api, &refused, "the fixed target Ready", ready).await;
    assert_eq!(
        t.status.unwrap_or_default().account_id.as_deref(),
        Some(OTHER)
    );
}
