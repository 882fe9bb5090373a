//! RegistryTargets in tests: creating one, granting targets, and reading a target's registry
//! the way the operator reaches it (an assumed role through moto's STS).

use std::sync::Arc;

use ecr_operator::api::RepositoryAccessPolicy;
use ecr_operator::api::registry_target::{AssumeRole, RegistryTarget, RegistryTargetSpec};
use ecr_operator::registry::{Registry, TargetPool, WRITE_OPERATIONS};
use kube::api::Api;
use testbed::kube_env::unique_name;

use super::{Env, create};

/// A RegistryTarget of `account` in `region` through `role` there (moto grants roles it does
/// not hold); returns its name.
pub async fn create_target(env: &Env, account: &str, region: &str, role: &str) -> String {
    let name = unique_name("target");
    let api: Api<RegistryTarget> = Api::all(env.kube.client());
    create(
        &api,
        &format!(
            "apiVersion: ecr.operator.dev/v1alpha1
kind: RegistryTarget
metadata: {{name: {name}}}
spec:
  registryId: '{account}'
  region: {region}
  assumeRole: {{roleArn: 'arn:aws:iam::{account}:role/{role}'}}
"
        ),
    )
    .await;
    name
}

/// Grants the namespaces of `namespaces` (a selection, as flow YAML) every repository in the
/// RegistryTargets of `targets` (the harness's own policy grants in the operator's own registry
/// only).
pub async fn grant_targets(env: &Env, targets: &str, namespaces: &str) {
    let api: Api<RepositoryAccessPolicy> = Api::all(env.kube.client());
    let name = unique_name("targets");
    create(
        &api,
        &format!(
            "apiVersion: ecr.operator.dev/v1alpha1
kind: RepositoryAccessPolicy
metadata: {{name: {name}}}
spec:
  namespaces: {namespaces}
  repositories: ['*']
  registryTargets: {targets}
"
        ),
    )
    .await;
}

/// The registry of `account` in `region` as the test sees it: its own assumed-role client
/// through moto's STS, independent of the operator's pool.
pub async fn registry_of(env: &Env, account: &str, region: &str) -> Arc<dyn Registry> {
    let pool: TargetPool<()> = TargetPool::new(env.moto.sdk_config(), Arc::default());
    let spec = RegistryTargetSpec {
        registry_id: account.into(),
        region: region.into(),
        assume_role: Some(AssumeRole {
            role_arn: format!("arn:aws:iam::{account}:role/test"),
            external_id: None,
            session_name: None,
        }),
        endpoint_url: None,
    };
    pool.client("view", &spec).await.unwrap().registry.clone()
}

/// Writes moto served, ECR's and ECR Public's, all accounts and regions together.
pub async fn moto_writes(env: &Env) -> u64 {
    let ecr = env.moto.calls_of("ecr").await.unwrap();
    let public = env.moto.calls_of("ecr-public").await.unwrap();
    WRITE_OPERATIONS
        .iter()
        .map(|op| match op.strip_prefix("ecr-public:") {
            Some(op) => public.get(op).copied().unwrap_or_default(),
            None => ecr.get(*op).copied().unwrap_or_default(),
        })
        .sum()
}

/// Pushes an image under `tag` to `repository` in `account` and `region` (created there if
/// missing), as an independent client would: boto3 with an assumed role in that account.
/// Returns the image's digest.
pub async fn push_image_as(
    env: &Env,
    account: &str,
    region: &str,
    repository: &str,
    tag: &str,
) -> String {
    let script = format!(
        "import boto3, json\n\
         c = boto3.client('sts').assume_role(RoleArn='arn:aws:iam::{account}:role/pusher', RoleSessionName='test-push')['Credentials']\n\
         ecr = boto3.client('ecr', region_name='{region}', aws_access_key_id=c['AccessKeyId'],\n\
             aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])\n\
         try:\n    ecr.create_repository(repositoryName='{repository}')\n\
         except ecr.exceptions.RepositoryAlreadyExistsException:\n    pass\n\
         m = json.dumps({{'schemaVersion': 2, 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n\
             'config': {{'mediaType': 'application/vnd.docker.container.image.v1+json', 'size': 1,\n\
                 'digest': 'sha256:' + '{tag}'.encode().hex().rjust(64, '0')}}, 'layers': []}})\n\
         print(ecr.put_image(repositoryName='{repository}', imageTag='{tag}', imageManifest=m)['image']['imageId']['imageDigest'])"
    );
    env.moto.boto3(&script).await.unwrap().trim().to_string()
}
