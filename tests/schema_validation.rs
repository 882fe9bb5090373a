//! ECR's rules in the CRDs: the API server (the double, or a real one with
//! ECR_OPERATOR_TEST_KUBECONFIG) rejects with 422 what ECR would reject, with a message that
//! names the field or the rule.

use ecr_operator::api::{
    LifecyclePolicy, PullThroughCacheRule, ReplicationConfig, Repository, ScanPolicy,
};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use testbed::kube_env::KubeEnv;

fn resource(kind: &str) -> ApiResource {
    match kind {
        "Repository" => ApiResource::erase::<Repository>(&()),
        "LifecyclePolicy" => ApiResource::erase::<LifecyclePolicy>(&()),
        "ReplicationConfig" => ApiResource::erase::<ReplicationConfig>(&()),
        "PullThroughCacheRule" => ApiResource::erase::<PullThroughCacheRule>(&()),
        "ScanPolicy" => ApiResource::erase::<ScanPolicy>(&()),
        other => panic!("unknown kind {other}"),
    }
}

fn api(env: &KubeEnv, kind: &str, ns: &str) -> Api<DynamicObject> {
    let ar = resource(kind);
    if kind == "Repository" || kind == "LifecyclePolicy" {
        Api::namespaced_with(env.client(), ns, &ar)
    } else {
        Api::all_with(env.client(), &ar)
    }
}

fn object(yaml: &str) -> DynamicObject {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad test YAML {yaml}: {e}"))
}

/// Asserts a 422 whose message contains `expect`.
fn assert_invalid(result: Result<DynamicObject, kube::Error>, case: &str, expect: &str) {
    match result {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{case}: {s:?}");
            assert!(
                s.message.contains(expect),
                "{case}: message {:?} should contain {expect:?}",
                s.message
            );
        }
        Ok(o) => panic!("{case}: accepted {o:?}"),
        Err(e) => panic!("{case}: unexpected error {e}"),
    }
}

const REPO: &str = "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {name: x}\n";
const LCP: &str =
    "apiVersion: ecr.operator.dev/v1alpha1\nkind: LifecyclePolicy\nmetadata: {name: x}\n";
const PTC: &str =
    "apiVersion: ecr.operator.dev/v1alpha1\nkind: PullThroughCacheRule\nmetadata: {name: x}\n";
const SCAN: &str = "apiVersion: ecr.operator.dev/v1alpha1\nkind: ScanPolicy\nmetadata: {name: x}\n";
const REPL: &str =
    "apiVersion: ecr.operator.dev/v1alpha1\nkind: ReplicationConfig\nmetadata: {name: x}\n";

fn rule(selection: &str) -> String {
    format!(
        "spec:\n  repositoryRef: {{name: r}}\n  rules:\n  - rulePriority: 1\n    selection: {selection}\n"
    )
}

#[tokio::test]
async fn invalid_objects_are_rejected_on_create() {
    let env = KubeEnv::start().await.unwrap();
    let ns = env.namespace("schema").await.unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("repo name with uppercase", format!("{REPO}spec: {{repositoryName: Team/App}}"), "spec.repositoryName"),
        ("repo name too short", format!("{REPO}spec: {{repositoryName: a}}"), "spec.repositoryName"),
        ("repo name with double separator", format!("{REPO}spec: {{repositoryName: a--b}}"), "spec.repositoryName"),
        ("repo name too long", format!("{REPO}spec: {{repositoryName: {}}}", "a".repeat(257)), "spec.repositoryName"),
        ("metadata.name not an ECR name", "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {name: a--b}\nspec: {}".to_string(), "set spec.repositoryName"),
        ("bad tag mutability", format!("{REPO}spec: {{imageTagMutability: SOMETIMES}}"), "spec.imageTagMutability"),
        ("bad encryption type", format!("{REPO}spec: {{encryption: {{encryptionType: ROT13}}}}"), "spec.encryption.encryptionType"),
        ("kms key with AES256", format!("{REPO}spec: {{encryption: {{encryptionType: AES256, kmsKey: k}}}}"), "kmsKey requires encryptionType KMS"),
        ("forceDelete with Retain", format!("{REPO}spec: {{forceDelete: true}}"), "forceDelete requires deletionPolicy: Delete"),
        ("bad deletion policy", format!("{REPO}spec: {{deletionPolicy: Orphan}}"), "spec.deletionPolicy"),
        ("tag key reserved by AWS", format!("{REPO}spec: {{tags: {{'aws:x': y}}}}"), "must not start with 'aws:'"),
        ("tag key too long", format!("{REPO}spec: {{tags: {{{}: y}}}}", "k".repeat(129)), "tag keys must be 1 to 128 characters"),
        ("tag value too long", format!("{REPO}spec: {{tags: {{k: {}}}}}", "v".repeat(257)), "tag values must be at most 256 characters"),
        ("tag key with bad characters", format!("{REPO}spec: {{tags: {{'a*b': y}}}}"), "tag keys may contain only"),
        ("owner tag reserved", format!("{REPO}spec: {{tags: {{'ecr.operator.dev/owner': y}}}}"), "reserved for the operator"),
        ("policy without statements", format!("{REPO}spec: {{policy: {{statements: []}}}}"), "spec.policy.statements"),
        ("policy statement without principal", format!("{REPO}spec: {{policy: {{statements: [{{effect: Allow, principals: {{}}, actions: ['ecr:*']}}]}}}}"), "at least one principal"),
        ("policy with non-ECR action", format!("{REPO}spec: {{policy: {{statements: [{{effect: Allow, principals: {{aws: ['*']}}, actions: ['s3:GetObject']}}]}}}}"), "ecr:* actions"),
        ("policy with bad effect", format!("{REPO}spec: {{policy: {{statements: [{{effect: Maybe, principals: {{aws: ['*']}}, actions: ['ecr:*']}}]}}}}"), "effect"),
        ("lifecycle tagged without prefix", format!("{LCP}{}", rule("{tagStatus: tagged, countType: imageCountMoreThan, countNumber: 1}")), "requires tagPrefixList or tagPatternList"),
        ("lifecycle prefix on untagged", format!("{LCP}{}", rule("{tagStatus: untagged, tagPrefixList: [v], countType: imageCountMoreThan, countNumber: 1}")), "only allowed with tagStatus tagged"),
        ("lifecycle prefix and pattern", format!("{LCP}{}", rule("{tagStatus: tagged, tagPrefixList: [v], tagPatternList: ['v*'], countType: imageCountMoreThan, countNumber: 1}")), "not both"),
        ("lifecycle countUnit with count", format!("{LCP}{}", rule("{tagStatus: any, countType: imageCountMoreThan, countUnit: days, countNumber: 1}")), "countUnit is only allowed"),
        ("lifecycle sinceImagePushed without unit", format!("{LCP}{}", rule("{tagStatus: any, countType: sinceImagePushed, countNumber: 1}")), "requires countUnit"),
        ("lifecycle countNumber zero", format!("{LCP}{}", rule("{tagStatus: any, countType: imageCountMoreThan, countNumber: 0}")), "countNumber"),
        ("lifecycle bad tagStatus", format!("{LCP}{}", rule("{tagStatus: some, countType: imageCountMoreThan, countNumber: 1}")), "tagStatus"),
        ("lifecycle bad countType", format!("{LCP}{}", rule("{tagStatus: any, countType: sinceForever, countNumber: 1}")), "countType"),
        ("lifecycle five wildcards", format!("{LCP}{}", rule("{tagStatus: tagged, tagPatternList: ['*a*b*c*d*'], countType: imageCountMoreThan, countNumber: 1}")), "at most four"),
        ("lifecycle any not last", format!("{LCP}spec:\n  repositoryRef: {{name: r}}\n  rules:\n  - rulePriority: 1\n    selection: {{tagStatus: any, countType: imageCountMoreThan, countNumber: 1}}\n  - rulePriority: 2\n    selection: {{tagStatus: untagged, countType: imageCountMoreThan, countNumber: 1}}\n"), "highest rulePriority"),
        ("lifecycle no rules", format!("{LCP}spec: {{repositoryRef: {{name: r}}, rules: []}}"), "spec.rules"),
        ("lifecycle priority zero", format!("{LCP}spec:\n  repositoryRef: {{name: r}}\n  rules:\n  - rulePriority: 0\n    selection: {{tagStatus: any, countType: imageCountMoreThan, countNumber: 1}}\n"), "rulePriority"),
        ("pull-through prefix with uppercase", format!("{PTC}spec: {{ecrRepositoryPrefix: Hub, upstreamRegistryUrl: registry-1.docker.io}}"), "spec.ecrRepositoryPrefix"),
        ("pull-through prefix too long", format!("{PTC}spec: {{ecrRepositoryPrefix: {}, upstreamRegistryUrl: quay.io}}", "p".repeat(31)), "spec.ecrRepositoryPrefix"),
        ("pull-through both credentials", format!("{PTC}spec: {{ecrRepositoryPrefix: hub, upstreamRegistryUrl: registry-1.docker.io, credentialArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub', credentialsSecretRef: {{name: s}}}}"), "not both"),
        ("pull-through credential not ecr-pullthroughcache/", format!("{PTC}spec: {{ecrRepositoryPrefix: hub, upstreamRegistryUrl: registry-1.docker.io, credentialArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:other/hub'}}"), "spec.credentialArn"),
        ("scan continuous with basic", format!("{SCAN}spec: {{scanType: BASIC, rules: [{{scanFrequency: CONTINUOUS_SCAN, repositoryFilters: [{{filter: '*'}}]}}]}}"), "CONTINUOUS_SCAN requires scanType ENHANCED"),
        ("scan bad type", format!("{SCAN}spec: {{scanType: DEEP}}"), "spec.scanType"),
        ("scan rule without filters", format!("{SCAN}spec: {{rules: [{{scanFrequency: SCAN_ON_PUSH, repositoryFilters: []}}]}}"), "repositoryFilters"),
        ("scan bad mode", format!("{SCAN}spec: {{enforcement: {{mode: block}}}}"), "spec.enforcement.mode"),
        ("scan bad threshold", format!("{SCAN}spec: {{enforcement: {{severityThreshold: SEVERE}}}}"), "spec.enforcement.severityThreshold"),
        ("scan allowlist bad expiry", format!("{SCAN}spec: {{enforcement: {{allowlist: [{{id: CVE-1, reason: r, expires: tomorrow}}]}}}}"), "RFC 3339"),
        ("scan allowlist without reason", format!("{SCAN}spec: {{enforcement: {{allowlist: [{{id: CVE-1}}]}}}}"), "reason"),
        ("replication bad registry id", format!("{REPL}spec: {{rules: [{{destinations: [{{region: eu-west-1, registryId: '12'}}]}}]}}"), "registryId"),
        ("replication no destinations", format!("{REPL}spec: {{rules: [{{destinations: []}}]}}"), "destinations"),
        ("replication too many rules", format!("{REPL}spec: {{rules: [{}]}}", ["{destinations: [{region: eu-west-1, registryId: '123456789012'}]}"; 11].join(", ")), "spec.rules"),
        ("replication bad filter type", format!("{REPL}spec: {{rules: [{{destinations: [{{region: eu-west-1, registryId: '123456789012'}}], repositoryFilters: [{{filter: ab, filterType: SUFFIX}}]}}]}}"), "filterType"),
    ];
    for (case, yaml, expect) in &cases {
        let obj = object(yaml);
        let kind = obj.types.as_ref().unwrap().kind.clone();
        let result = api(&env, &kind, &ns)
            .create(&PostParams::default(), &obj)
            .await;
        assert_invalid(result, case, expect);
    }
    assert!(cases.len() >= 45);
}

#[tokio::test]
async fn immutable_fields_and_unique_priorities() {
    let env = KubeEnv::start().await.unwrap();
    let ns = env.namespace("immutable").await.unwrap();
    let pp = PatchParams::default();
    let repos = api(&env, "Repository", &ns);
    repos
        .create(
            &PostParams::default(),
            &object(&format!(
                "{REPO}spec: {{repositoryName: team/x, encryption: {{encryptionType: KMS}}}}"
            )),
        )
        .await
        .unwrap();
    let r = repos
        .patch(
            "x",
            &pp,
            &Patch::Merge(serde_json::json!({"spec": {"repositoryName": "team/y"}})),
        )
        .await;
    assert_invalid(r, "repositoryName change", "repositoryName is immutable");
    let r = repos
        .patch(
            "x",
            &pp,
            &Patch::Merge(
                serde_json::json!({"spec": {"encryption": {"encryptionType": "AES256"}}}),
            ),
        )
        .await;
    assert_invalid(r, "encryption change", "encryption is immutable");
    let r = repos
        .patch(
            "x",
            &pp,
            &Patch::Merge(serde_json::json!({"spec": {"encryption": null}})),
        )
        .await;
    assert_invalid(r, "encryption removed", "encryption is immutable");
    // Mutable fields still change.
    repos
        .patch(
            "x",
            &pp,
            &Patch::Merge(serde_json::json!({"spec": {"scanOnPush": true}})),
        )
        .await
        .unwrap();

    let ptc = api(&env, "PullThroughCacheRule", &ns);
    ptc.create(
        &PostParams::default(),
        &object(&format!(
            "{PTC}spec: {{ecrRepositoryPrefix: quay, upstreamRegistryUrl: quay.io}}"
        )),
    )
    .await
    .unwrap();
    let r = ptc
        .patch(
            "x",
            &pp,
            &Patch::Merge(serde_json::json!({"spec": {"ecrRepositoryPrefix": "quay2"}})),
        )
        .await;
    assert_invalid(r, "prefix change", "ecrRepositoryPrefix is immutable");

    // rulePriority is the rules list's map key: duplicates are refused by the server itself.
    let lcp = api(&env, "LifecyclePolicy", &ns);
    let dup = format!(
        "{LCP}spec:\n  repositoryRef: {{name: r}}\n  rules:\n  - rulePriority: 1\n    selection: {{tagStatus: untagged, countType: imageCountMoreThan, countNumber: 1}}\n  - rulePriority: 1\n    selection: {{tagStatus: any, countType: imageCountMoreThan, countNumber: 2}}\n"
    );
    let r = lcp.create(&PostParams::default(), &object(&dup)).await;
    assert_invalid(r, "duplicate rulePriority", "spec.rules[1]");
}
