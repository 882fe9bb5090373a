//! ECR's rules in the CRDs: the API server (the double, or a real one with
//! ECR_OPERATOR_TEST_KUBECONFIG) rejects with 422 what ECR would reject, with a message that
//! names the field or the rule.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use testbed::kube_env::KubeEnv;

fn resource(kind: &str) -> ApiResource {
    ecr_operator::api::resource_for(kind).unwrap_or_else(|| panic!("unknown kind {kind}"))
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
            // Whatever the rule's own words, the message names the field it is about.
            assert!(
                s.message.contains("spec.") || s.message.contains("spec:"),
                "{case}: message {:?} names no field",
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
const ACCESS: &str =
    "apiVersion: ecr.operator.dev/v1alpha1\nkind: RepositoryAccessPolicy\nmetadata: {name: x}\n";
const REPL: &str =
    "apiVersion: ecr.operator.dev/v1alpha1\nkind: ReplicationConfig\nmetadata: {name: x}\n";
const ISR: &str =
    "apiVersion: ecr.operator.dev/v1alpha1\nkind: ImageScanReport\nmetadata: {name: x}\n";
const REGPOL: &str =
    "apiVersion: ecr.operator.dev/v1alpha1\nkind: RegistryPolicy\nmetadata: {name: x}\n";

/// A RegistryPolicy of the given statements, each a flow map whose fields override those of a
/// valid statement (`field: ~` drops one).
fn registry_policy(statements: &[&str]) -> String {
    let statements: Vec<String> = statements
        .iter()
        .map(|over| {
            let mut st: std::collections::BTreeMap<&str, &str> = [
                ("effect", "Allow"),
                ("principals", "{aws: ['arn:aws:iam::111122223333:root']}"),
                ("actions", "[ecr:ReplicateImage]"),
                (
                    "resources",
                    "['arn:aws:ecr:us-east-1:123456789012:repository/*']",
                ),
            ]
            .into_iter()
            .collect();
            for field in over.split("; ").filter(|f| !f.is_empty()) {
                let (k, v) = field.split_once(": ").unwrap_or((field, "~"));
                if v == "~" {
                    st.remove(k);
                } else {
                    st.insert(k, v);
                }
            }
            let fields: Vec<String> = st.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{{{}}}", fields.join(", "))
        })
        .collect();
    format!("{REGPOL}spec: {{statements: [{}]}}", statements.join(", "))
}

/// A complete ImageScanReport spec with one field replaced.
fn report(field: &str) -> String {
    let mut spec: std::collections::BTreeMap<&str, String> = [
        ("registryId", "'123456789012'".to_string()),
        ("repositoryName", "app".to_string()),
        ("imageDigest", format!("'sha256:{}'", "a".repeat(64))),
        ("scan", "{status: COMPLETE}".to_string()),
        ("summary", "{}".to_string()),
    ]
    .into_iter()
    .collect();
    let (k, v) = field.split_once(": ").unwrap_or((field, ""));
    if v.is_empty() {
        spec.remove(k);
    } else {
        spec.insert(k, v.to_string());
    }
    let body: Vec<String> = spec.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{ISR}spec: {{{}}}", body.join(", "))
}

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
        ("repo name with triple underscore", format!("{REPO}spec: {{repositoryName: a___b}}"), "spec.repositoryName"),
        ("repo name with mixed separators", format!("{REPO}spec: {{repositoryName: a-_b}}"), "spec.repositoryName"),
        ("repo name with trailing slash", format!("{REPO}spec: {{repositoryName: team/}}"), "spec.repositoryName"),
        ("repo name starting with a separator", format!("{REPO}spec: {{repositoryName: _ab}}"), "spec.repositoryName"),
        ("repo name too long", format!("{REPO}spec: {{repositoryName: {}}}", "a".repeat(257)), "spec.repositoryName"),
        ("metadata.name too short for ECR", "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {name: a}\nspec: {}".to_string(), "set spec.repositoryName"),
        ("exclusion mode without filters", format!("{REPO}spec: {{imageTagMutability: IMMUTABLE_WITH_EXCLUSION}}"), "requires imageTagMutabilityExclusionFilters (1 to 5 filters)"),
        ("mutable exclusion mode without filters", format!("{REPO}spec: {{imageTagMutability: MUTABLE_WITH_EXCLUSION}}"), "requires imageTagMutabilityExclusionFilters (1 to 5 filters)"),
        ("exclusion filters with MUTABLE", format!("{REPO}spec: {{imageTagMutabilityExclusionFilters: [{{filter: latest}}]}}"), "imageTagMutabilityExclusionFilters requires imageTagMutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION"),
        ("exclusion filters with IMMUTABLE", format!("{REPO}spec: {{imageTagMutability: IMMUTABLE, imageTagMutabilityExclusionFilters: [{{filter: latest}}]}}"), "imageTagMutabilityExclusionFilters requires imageTagMutability"),
        ("exclusion filters empty", format!("{REPO}spec: {{imageTagMutability: IMMUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: []}}"), "spec.imageTagMutabilityExclusionFilters"),
        ("six exclusion filters", format!("{REPO}spec: {{imageTagMutability: IMMUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{}]}}", ["{filter: a}"; 6].join(", ")), "spec.imageTagMutabilityExclusionFilters"),
        ("exclusion filter with a slash", format!("{REPO}spec: {{imageTagMutability: IMMUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filter: 'dev/*'}}]}}"), "spec.imageTagMutabilityExclusionFilters[0].filter"),
        ("exclusion filter empty", format!("{REPO}spec: {{imageTagMutability: IMMUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filter: ''}}]}}"), "spec.imageTagMutabilityExclusionFilters[0].filter"),
        ("exclusion filter too long", format!("{REPO}spec: {{imageTagMutability: MUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filter: {}}}]}}", "t".repeat(129)), "spec.imageTagMutabilityExclusionFilters[0].filter"),
        ("exclusion filter bad type", format!("{REPO}spec: {{imageTagMutability: MUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filterType: REGEX, filter: latest}}]}}"), "spec.imageTagMutabilityExclusionFilters[0].filterType"),
        ("exclusion filter without filter", format!("{REPO}spec: {{imageTagMutability: MUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filterType: WILDCARD}}]}}"), "spec.imageTagMutabilityExclusionFilters[0].filter"),
        ("bad tag mutability", format!("{REPO}spec: {{imageTagMutability: SOMETIMES}}"), "spec.imageTagMutability"),
        ("bad encryption type", format!("{REPO}spec: {{encryption: {{encryptionType: ROT13}}}}"), "spec.encryption.encryptionType"),
        ("kms key with AES256", format!("{REPO}spec: {{encryption: {{encryptionType: AES256, kmsKey: k}}}}"), "kmsKey requires encryptionType KMS"),
        ("forceDelete with Retain", format!("{REPO}spec: {{forceDelete: true}}"), "forceDelete requires deletionPolicy: Delete"),
        ("bad deletion policy", format!("{REPO}spec: {{deletionPolicy: Orphan}}"), "spec.deletionPolicy"),
        ("tag key reserved by AWS", format!("{REPO}spec: {{tags: {{'aws:x': y}}}}"), "must not start with 'aws:'"),
        ("tag key too long", format!("{REPO}spec: {{tags: {{{}: y}}}}", "k".repeat(129)), "tag keys must be 1 to 128 characters"),
        ("tag value too long", format!("{REPO}spec: {{tags: {{k: {}}}}}", "v".repeat(257)), "spec.tags.k"),
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
        ("scan registry id not an account", format!("{SCAN}spec: {{registryIds: ['12345']}}"), "spec.registryIds[0]"),
        ("access without namespaces", format!("{ACCESS}spec: {{namespaces: {{}}, repositories: ['team/*']}}"), "namespaces needs names or a selector"),
        ("access without repositories", format!("{ACCESS}spec: {{namespaces: {{names: [team]}}, repositories: []}}"), "spec.repositories"),
        ("access pattern not an ECR name", format!("{ACCESS}spec: {{namespaces: {{names: [team]}}, repositories: ['Team/*']}}"), "spec.repositories[0]"),
        ("access unknown placeholder", format!("{ACCESS}spec: {{namespaces: {{names: [team]}}, repositories: ['{{name}}/*']}}"), "spec.repositories[0]"),
        ("access namespace not a name", format!("{ACCESS}spec: {{namespaces: {{names: [Team_A]}}, repositories: ['*']}}"), "spec.namespaces.names[0]"),
        ("scan rule without filters", format!("{SCAN}spec: {{rules: [{{scanFrequency: SCAN_ON_PUSH, repositoryFilters: []}}]}}"), "repositoryFilters"),
        ("scan bad mode", format!("{SCAN}spec: {{enforcement: {{mode: block}}}}"), "spec.enforcement.mode"),
        ("scan bad threshold", format!("{SCAN}spec: {{enforcement: {{severityThreshold: SEVERE}}}}"), "spec.enforcement.severityThreshold"),
        ("scan allowlist bad expiry", format!("{SCAN}spec: {{enforcement: {{allowlist: [{{id: CVE-1, reason: r, expires: tomorrow}}]}}}}"), "RFC 3339"),
        ("scan allowlist without reason", format!("{SCAN}spec: {{enforcement: {{allowlist: [{{id: CVE-1}}]}}}}"), "reason"),
        ("replication bad registry id", format!("{REPL}spec: {{rules: [{{destinations: [{{region: eu-west-1, registryId: '12'}}]}}]}}"), "registryId"),
        ("replication no destinations", format!("{REPL}spec: {{rules: [{{destinations: []}}]}}"), "destinations"),
        ("replication too many rules", format!("{REPL}spec: {{rules: [{}]}}", ["{destinations: [{region: eu-west-1, registryId: '123456789012'}]}"; 11].join(", ")), "spec.rules"),
        ("replication bad filter type", format!("{REPL}spec: {{rules: [{{destinations: [{{region: eu-west-1, registryId: '123456789012'}}], repositoryFilters: [{{filter: ab, filterType: SUFFIX}}]}}]}}"), "filterType"),
        ("replication bad region", format!("{REPL}spec: {{rules: [{{destinations: [{{region: EU_WEST_1, registryId: '123456789012'}}]}}]}}"), "spec.rules[0].destinations[0].region"),
        ("replication no rules", format!("{REPL}spec: {{rules: []}}"), "spec.rules"),
        ("repo kms key empty", format!("{REPO}spec: {{encryption: {{encryptionType: KMS, kmsKey: ''}}}}"), "spec.encryption.kmsKey"),
        ("policy sid with spaces", format!("{REPO}spec: {{policy: {{statements: [{{sid: 'a b', effect: Allow, principals: {{aws: ['*']}}, actions: ['ecr:*']}}]}}}}"), "spec.policy.statements[0].sid"),
        ("policy bad version", format!("{REPO}spec: {{policy: {{version: '2020-01-01', statements: [{{effect: Allow, principals: {{aws: ['*']}}, actions: ['ecr:*']}}]}}}}"), "spec.policy.version"),
        ("policy statement without actions", format!("{REPO}spec: {{policy: {{statements: [{{effect: Allow, principals: {{aws: ['*']}}, actions: []}}]}}}}"), "at least one action"),
        ("tag value with bad characters", format!("{REPO}spec: {{tags: {{k: 'a*b'}}}}"), "tag values may contain only"),
        ("lifecycle description too long", format!("{LCP}spec:\n  repositoryRef: {{name: r}}\n  rules:\n  - rulePriority: 1\n    description: {}\n    selection: {{tagStatus: any, countType: imageCountMoreThan, countNumber: 1}}\n", "d".repeat(257)), "spec.rules[0].description"),
        ("lifecycle empty tag prefix", format!("{LCP}{}", rule("{tagStatus: tagged, tagPrefixList: [''], countType: imageCountMoreThan, countNumber: 1}")), "tag prefixes must be 1 to 255 characters"),
        ("lifecycle empty repositoryRef", format!("{LCP}spec: {{repositoryRef: {{name: ''}}, rules: [{{rulePriority: 1, selection: {{tagStatus: any, countType: imageCountMoreThan, countNumber: 1}}}}]}}"), "spec.repositoryRef.name"),
        ("lifecycle bad action", format!("{LCP}spec: {{repositoryRef: {{name: r}}, rules: [{{rulePriority: 1, selection: {{tagStatus: any, countType: imageCountMoreThan, countNumber: 1}}, action: {{type: archive}}}}]}}"), "spec.rules[0].action.type"),
        ("pull-through bad custom role", format!("{PTC}spec: {{ecrRepositoryPrefix: hub, upstreamRegistryUrl: quay.io, customRoleArn: 'arn:aws:iam::12:role/x'}}"), "spec.customRoleArn"),
        ("pull-through upstream prefix too short", format!("{PTC}spec: {{ecrRepositoryPrefix: hub, upstreamRegistryUrl: quay.io, upstreamRepositoryPrefix: a}}"), "spec.upstreamRepositoryPrefix"),
        ("pull-through empty upstream", format!("{PTC}spec: {{ecrRepositoryPrefix: hub, upstreamRegistryUrl: ''}}"), "spec.upstreamRegistryUrl"),
        ("pull-through empty secret name", format!("{PTC}spec: {{ecrRepositoryPrefix: hub, upstreamRegistryUrl: ghcr.io, credentialsSecretRef: {{name: ''}}}}"), "spec.credentialsSecretRef.name"),
        ("scan max age zero", format!("{SCAN}spec: {{enforcement: {{maxScanAgeDays: 0}}}}"), "spec.enforcement.maxScanAgeDays"),
        ("scan too many rules", format!("{SCAN}spec: {{rules: [{}]}}", ["{scanFrequency: SCAN_ON_PUSH, repositoryFilters: [{filter: '*'}]}"; 3].join(", ")), "spec.rules"),
        ("scan bad frequency", format!("{SCAN}spec: {{rules: [{{scanFrequency: HOURLY, repositoryFilters: [{{filter: '*'}}]}}]}}"), "spec.rules[0].scanFrequency"),
        ("scan bad unscanned action", format!("{SCAN}spec: {{enforcement: {{unscanned: ignore}}}}"), "spec.enforcement.unscanned"),
        ("scan report bad digest", report("imageDigest: 'md5:xyz'"), "spec.imageDigest"),
        ("scan report without scan", report("scan"), "spec.scan"),
        ("scan report bad severity", report("findings: [{id: CVE-1, severity: SEVERE}]"), "spec.findings[0].severity"),
        ("scan report without repository", report("repositoryName"), "spec.repositoryName"),
        ("registry policy no statements", format!("{REGPOL}spec: {{statements: []}}"), "spec.statements"),
        ("registry policy without spec", REGPOL.to_string(), "spec"),
        ("registry policy another service's action", registry_policy(&["actions: [ecr:ReplicateImage, s3:GetObject]"]), "registry policy actions must be ECR actions"),
        ("registry policy every action", registry_policy(&["actions: ['*']"]), "registry policy actions must be ECR actions"),
        ("registry policy no actions", registry_policy(&["actions: []"]), "at least one action"),
        ("registry policy no resources", registry_policy(&["resources: []"]), "spec.statements[0].resources"),
        ("registry policy without resources", registry_policy(&["resources: ~"]), "resources"),
        ("registry policy resource not an ARN", registry_policy(&["resources: [repository/app]"]), "resources must be ARNs"),
        ("registry policy no principal", registry_policy(&["principals: {}"]), "at least one principal"),
        ("registry policy bad effect", registry_policy(&["effect: Permit"]), "spec.statements[0].effect"),
        ("registry policy sid with spaces", registry_policy(&["sid: 'a b'"]), "spec.statements[0].sid"),
        ("registry policy sid twice", registry_policy(&["sid: Same", "sid: Same"]), "statement ids (sid) must be unique"),
        ("registry policy too many statements", registry_policy(&[""; 101]), "spec.statements"),
    ];
    for (case, yaml, expect) in &cases {
        let obj = object(yaml);
        let kind = obj.types.as_ref().unwrap().kind.clone();
        let result = api(&env, &kind, &ns)
            .create(&PostParams::default(), &obj)
            .await;
        assert_invalid(result, case, expect);
    }
    // Issue #9: at least 50 distinct invalid objects, every kind represented.
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for kind in [
        "Repository",
        "LifecyclePolicy",
        "ReplicationConfig",
        "PullThroughCacheRule",
        "ScanPolicy",
        "ImageScanReport",
        "RepositoryAccessPolicy",
        "RegistryPolicy",
    ] {
        let n = cases
            .iter()
            .filter(|(_, yaml, _)| yaml.contains(&format!("kind: {kind}\n")))
            .count();
        assert!(n > 0, "no invalid {kind}");
        println!("figure invalid_objects_{kind} {n}");
    }
    println!("figure invalid_objects {}", cases.len());
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

/// What ECR's model accepts, the CRD accepts: the repository names of the current model
/// (`__`, runs of `-`) and every exclusion mode with 1 to 5 filters of the model's alphabet.
#[tokio::test]
async fn what_ecr_accepts_is_admitted() {
    let env = KubeEnv::start().await.unwrap();
    let ns = env.namespace("accepted").await.unwrap();
    let repos = api(&env, "Repository", &ns);
    let long_filter = "t".repeat(128);
    let cases: Vec<(&str, String)> = vec![
        ("a__b", format!("{REPO}spec: {{repositoryName: a__b}}").replace("name: x", "name: r1")),
        ("web--frontend", format!("{REPO}spec: {{repositoryName: web--frontend}}").replace("name: x", "name: r2")),
        ("nested separators", format!("{REPO}spec: {{repositoryName: team__a/web---frontend/a.b_c-d}}").replace("name: x", "name: r3")),
        ("metadata.name with a run of dashes", "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {name: web--frontend}\nspec: {}".to_string()),
        ("two-character name", "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {name: ab}\nspec: {}".to_string()),
        ("immutable with five filters", format!("{REPO}spec: {{imageTagMutability: IMMUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filter: latest}}, {{filter: 'dev-*'}}, {{filter: '*'}}, {{filter: 'v1.*-rc_*'}}, {{filter: {long_filter}}}]}}").replace("name: x", "name: r4")),
        ("mutable with one filter", format!("{REPO}spec: {{imageTagMutability: MUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filterType: WILDCARD, filter: 'release-*'}}]}}").replace("name: x", "name: r5")),
    ];
    for (case, yaml) in &cases {
        repos
            .create(&PostParams::default(), &object(yaml))
            .await
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
    }
    // filterType defaults to the model's only type.
    let r4 = repos.get("r4").await.unwrap();
    assert_eq!(
        r4.data["spec"]["imageTagMutabilityExclusionFilters"][0]["filterType"],
        "WILDCARD"
    );
    // Leaving the exclusion mode means dropping the filters in the same change.
    let pp = PatchParams::default();
    let r = repos
        .patch(
            "r5",
            &pp,
            &Patch::Merge(serde_json::json!({"spec": {"imageTagMutability": "IMMUTABLE"}})),
        )
        .await;
    assert_invalid(
        r,
        "mode changed, filters kept",
        "imageTagMutabilityExclusionFilters requires",
    );
    repos
        .patch(
            "r5",
            &pp,
            &Patch::Merge(serde_json::json!({"spec": {
                "imageTagMutability": "IMMUTABLE", "imageTagMutabilityExclusionFilters": null}})),
        )
        .await
        .unwrap();
    println!("figure accepted_repository_specs {}", cases.len());
}

/// A PullThroughCacheRule spec in flow YAML, `extra` appended to the two required fields.
fn ptc(prefix: &str, url: &str, extra: &str) -> String {
    format!("{{ecrRepositoryPrefix: '{prefix}', upstreamRegistryUrl: '{url}'{extra}}}")
}

/// Issue #15: PullThroughCacheRule's bounds are the ECR API model's
/// (CreatePullThroughCacheRuleRequest in botocore's `ecr/2015-09-21/service-2.json`): each is
/// accepted at its edge and refused just past it, with a message naming the field.
#[tokio::test]
async fn pull_through_cache_rule_bounds_follow_the_ecr_model() {
    let env = KubeEnv::start().await.unwrap();
    let api = api(&env, "PullThroughCacheRule", "");
    let ecr = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
    let secret = |name: &str| {
        format!(
            ", credentialArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/{name}'"
        )
    };
    // The longest credentialArn (612) and customRoleArn (2048) the model allows.
    let arn_612 = secret(&"n".repeat(612 - 74));
    let role = |len: usize| {
        let head = "arn:aws:iam::123456789012:role/";
        format!(", customRoleArn: '{head}{}'", "r".repeat(len - head.len()))
    };
    let accepted: Vec<(&str, String)> = vec![
        (
            "prefix with __ (PullThroughCacheRuleRepositoryPrefix)",
            ptc("a__b", "quay.io", ""),
        ),
        ("prefix with a run of -", ptc("web--x", "quay.io", "")),
        (
            "prefix with every separator and a trailing /",
            ptc("a.b_c__d---e/f-g/", "quay.io", ""),
        ),
        ("prefix of 2 characters", ptc("ab", "quay.io", "")),
        (
            "prefix of 30 characters",
            ptc(&"p".repeat(30), "quay.io", ""),
        ),
        ("ROOT prefix", ptc("ROOT", "quay.io", "")),
        (
            "upstream prefix with __ and a trailing /",
            ptc("ecr", ecr, ", upstreamRepositoryPrefix: 'team__a/'"),
        ),
        (
            "upstream prefix of 30 characters",
            ptc(
                "ecr",
                ecr,
                &format!(", upstreamRepositoryPrefix: '{}'", "u".repeat(30)),
            ),
        ),
        (
            "ROOT with upstream prefix ROOT",
            ptc("ROOT", ecr, ", upstreamRepositoryPrefix: ROOT"),
        ),
        (
            "credentialArn of 612 characters",
            ptc("hub", "registry-1.docker.io", &arn_612),
        ),
        (
            "shortest credentialArn the pattern allows (54)",
            ptc(
                "hub",
                "registry-1.docker.io",
                ", credentialArn: 'arn:aws:secretsmanager:x:secret:ecr-pullthroughcache/a'",
            ),
        ),
        (
            "credentialArn in another partition, upper case and a suffix",
            ptc(
                "hub",
                "ghcr.io",
                ", credentialArn: 'arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:ecr-pullthroughcache/Hub/x_y+z=.@-AbC123'",
            ),
        ),
        (
            "customRoleArn of 2048 characters",
            ptc("ecr", ecr, &role(2048)),
        ),
        (
            "upstreamRegistryUrl of 256 characters",
            ptc("hub", &"u".repeat(256), ""),
        ),
    ];
    for (i, (case, spec)) in accepted.iter().enumerate() {
        let yaml = format!(
            "apiVersion: ecr.operator.dev/v1alpha1\nkind: PullThroughCacheRule\nmetadata: {{name: edge-{i}}}\nspec: {spec}"
        );
        api.create(&PostParams::default(), &object(&yaml))
            .await
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
        api.delete(&format!("edge-{i}"), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{case}: delete: {e}"));
    }
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "prefix with ___",
            ptc("a___b", "quay.io", ""),
            "spec.ecrRepositoryPrefix",
        ),
        (
            "prefix with _-",
            ptc("a_-b", "quay.io", ""),
            "spec.ecrRepositoryPrefix",
        ),
        (
            "prefix with two trailing /",
            ptc("ab//", "quay.io", ""),
            "spec.ecrRepositoryPrefix",
        ),
        (
            "prefix starting with -",
            ptc("-ab", "quay.io", ""),
            "spec.ecrRepositoryPrefix",
        ),
        (
            "prefix of 1 character",
            ptc("a", "quay.io", ""),
            "spec.ecrRepositoryPrefix",
        ),
        (
            "prefix of 31 characters",
            ptc(&"p".repeat(31), "quay.io", ""),
            "spec.ecrRepositoryPrefix",
        ),
        (
            "upstream prefix with upper case",
            ptc("ecr", ecr, ", upstreamRepositoryPrefix: Team"),
            "spec.upstreamRepositoryPrefix",
        ),
        (
            "upstream prefix with ___",
            ptc("ecr", ecr, ", upstreamRepositoryPrefix: 'a___b'"),
            "spec.upstreamRepositoryPrefix",
        ),
        (
            "upstream prefix of 31 characters",
            ptc(
                "ecr",
                ecr,
                &format!(", upstreamRepositoryPrefix: '{}'", "u".repeat(31)),
            ),
            "spec.upstreamRepositoryPrefix",
        ),
        (
            "upstream prefix with ROOT",
            ptc("ROOT", ecr, ", upstreamRepositoryPrefix: team"),
            "upstreamRepositoryPrefix can only be set when ecrRepositoryPrefix is not ROOT",
        ),
        (
            "credentialArn of 613 characters",
            ptc(
                "hub",
                "registry-1.docker.io",
                &secret(&"n".repeat(613 - 74)),
            ),
            "spec.credentialArn",
        ),
        (
            "credentialArn of 49 characters",
            ptc(
                "hub",
                "registry-1.docker.io",
                ", credentialArn: 'arn:aws:secretsmanager:x:secret:ecr-pullthroughca'",
            ),
            "spec.credentialArn",
        ),
        (
            "credentialArn not a secret",
            ptc(
                "hub",
                "registry-1.docker.io",
                ", credentialArn: 'arn:aws:secretsmanager:us-east-1:123456789012:other:ecr-pullthroughcache/hub'",
            ),
            "spec.credentialArn",
        ),
        (
            "credentialArn with a space in the name",
            ptc("hub", "registry-1.docker.io", &secret("a b")),
            "spec.credentialArn",
        ),
        (
            "customRoleArn of 2049 characters",
            ptc("ecr", ecr, &role(2049)),
            "spec.customRoleArn",
        ),
        (
            "customRoleArn not a role",
            ptc(
                "ecr",
                ecr,
                ", customRoleArn: 'arn:aws:iam::123456789012:user/x'",
            ),
            "spec.customRoleArn",
        ),
        (
            "upstreamRegistryUrl of 257 characters",
            ptc("hub", &"u".repeat(257), ""),
            "spec.upstreamRegistryUrl",
        ),
    ];
    for (case, spec, expect) in &refused {
        let yaml = format!("{PTC}spec: {spec}");
        assert_invalid(
            api.create(&PostParams::default(), &object(&yaml)).await,
            case,
            expect,
        );
    }
    // The length bounds' messages name the bound.
    for (spec, bound) in [
        (
            ptc(
                "hub",
                "registry-1.docker.io",
                &secret(&"n".repeat(613 - 74)),
            ),
            "612",
        ),
        (
            ptc(
                "hub",
                "registry-1.docker.io",
                ", credentialArn: 'arn:aws:secretsmanager:x:secret:ecr-pullthroughca'",
            ),
            "50",
        ),
        (ptc("ecr", ecr, &role(2049)), "2048"),
        (ptc(&"p".repeat(31), "quay.io", ""), "30"),
    ] {
        let yaml = format!("{PTC}spec: {spec}");
        assert_invalid(
            api.create(&PostParams::default(), &object(&yaml)).await,
            bound,
            bound,
        );
    }
}

/// A ReplicationConfig spec of one rule in flow YAML.
fn repl(destinations: &[(&str, &str)], filters: &[String]) -> String {
    let destinations: Vec<String> = destinations
        .iter()
        .map(|(region, id)| format!("{{region: '{region}', registryId: '{id}'}}"))
        .collect();
    let filters: Vec<String> = filters
        .iter()
        .map(|f| format!("{{filter: '{f}'}}"))
        .collect();
    format!(
        "{{rules: [{{destinations: [{}], repositoryFilters: [{}]}}]}}",
        destinations.join(", "),
        filters.join(", ")
    )
}

/// Issue #15: ReplicationConfig's bounds are the ECR API model's shapes (Region, RegistryId,
/// RepositoryFilterValue, RepositoryFilterList) or the tighter documented quotas (10 rules, 25
/// destinations): each accepted at its edge, refused just past it.
#[tokio::test]
async fn replication_config_bounds_follow_the_ecr_model() {
    let env = KubeEnv::start().await.unwrap();
    let api = api(&env, "ReplicationConfig", "");
    let id = "123456789012";
    let one = |region: &str| repl(&[(region, id)], &[]);
    let filters = |f: &[&str]| {
        repl(
            &[("eu-west-1", id)],
            &f.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    let many_filters = |n: usize| {
        let f: Vec<String> = (0..n).map(|i| format!("f{i:03}")).collect();
        repl(&[("eu-west-1", id)], &f)
    };
    let accounts: Vec<String> = (1..=26).map(|n| format!("{n:012}")).collect();
    let destinations = |n: usize| {
        let d: Vec<(&str, &str)> = accounts[..n]
            .iter()
            .map(|a| ("eu-west-1", a.as_str()))
            .collect();
        repl(&d, &[])
    };
    let rules = |n: usize| {
        let rule = format!("{{destinations: [{{region: eu-west-1, registryId: '{id}'}}]}}");
        format!("{{rules: [{}]}}", vec![rule; n].join(", "))
    };
    let long_filter = |n: usize| "f".repeat(n);
    let accepted: Vec<(&str, String)> = vec![
        ("region of 2 characters", one("ab")),
        ("region of 25 characters", one(&"a".repeat(25))),
        ("filter of 2 characters", filters(&["ab"])),
        ("filter of 256 characters", filters(&[&long_filter(256)])),
        (
            "filter the model's pattern allows",
            filters(&["team__a/web--x_", "a."]),
        ),
        ("100 filters", many_filters(100)),
        ("25 destinations", destinations(25)),
        ("10 rules", rules(10)),
    ];
    for (i, (case, spec)) in accepted.iter().enumerate() {
        let yaml = format!(
            "apiVersion: ecr.operator.dev/v1alpha1\nkind: ReplicationConfig\nmetadata: {{name: edge-{i}}}\nspec: {spec}"
        );
        api.create(&PostParams::default(), &object(&yaml))
            .await
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
        api.delete(&format!("edge-{i}"), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{case}: delete: {e}"));
    }
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "region of 1 character",
            one("a"),
            "spec.rules[0].destinations[0].region",
        ),
        (
            "region of 26 characters",
            one(&"a".repeat(26)),
            "spec.rules[0].destinations[0].region",
        ),
        (
            "registryId of 11 digits",
            repl(&[("eu-west-1", "12345678901")], &[]),
            "spec.rules[0].destinations[0].registryId",
        ),
        (
            "registryId of 13 digits",
            repl(&[("eu-west-1", "1234567890123")], &[]),
            "spec.rules[0].destinations[0].registryId",
        ),
        (
            "filter of 1 character",
            filters(&["a"]),
            "spec.rules[0].repositoryFilters[0].filter",
        ),
        (
            "filter of 257 characters",
            filters(&[&long_filter(257)]),
            "spec.rules[0].repositoryFilters[0].filter",
        ),
        (
            "filter with upper case",
            filters(&["Team"]),
            "spec.rules[0].repositoryFilters[0].filter",
        ),
        (
            "101 filters",
            many_filters(101),
            "spec.rules[0].repositoryFilters",
        ),
        (
            "26 destinations",
            destinations(26),
            "spec.rules[0].destinations",
        ),
        ("11 rules", rules(11), "spec.rules"),
    ];
    for (case, spec, expect) in &refused {
        let yaml = format!("{REPL}spec: {spec}");
        assert_invalid(
            api.create(&PostParams::default(), &object(&yaml)).await,
            case,
            expect,
        );
    }
}

/// A LifecyclePolicy named `name` with the given rules, each `(rulePriority, selection, action)`
/// in flow YAML (`action` empty: none).
fn lcp_rules(name: &str, rules: &[(u32, &str, &str)]) -> String {
    let mut out = format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: LifecyclePolicy\nmetadata: {{name: {name}}}\nspec:\n  repositoryRef: {{name: r}}\n  rules:\n"
    );
    for (priority, selection, action) in rules {
        out.push_str(&format!(
            "  - rulePriority: {priority}\n    selection: {selection}\n"
        ));
        if !action.is_empty() {
            out.push_str(&format!("    action: {action}\n"));
        }
    }
    out
}

const PULLED_90: &str =
    "{tagStatus: any, countType: sinceImagePulled, countUnit: days, countNumber: 90}";
const PUSHED_30: &str =
    "{tagStatus: any, countType: sinceImagePushed, countUnit: days, countNumber: 30}";
const ARCHIVED_365: &str = "{tagStatus: any, storageClass: archive, countType: sinceImageTransitioned, countUnit: days, countNumber: 365}";
const TRANSITION: &str = "{type: transition, targetStorageClass: archive}";
const EXPIRE: &str = "{type: expire}";

/// Issue #15: archive rules. Every combination rule of the ECR user guide ("Lifecycle policy
/// properties", "Examples of lifecycle policies", "Automate the cleanup of images by using
/// lifecycle policies") is refused by the real API server, and the guide's archive examples are
/// accepted.
#[tokio::test]
async fn lifecycle_archive_rules_follow_ecr() {
    let env = KubeEnv::start().await.unwrap();
    let ns = env.namespace("archive").await.unwrap();
    let lcp = api(&env, "LifecyclePolicy", &ns);
    let untagged_archived = "{tagStatus: untagged, storageClass: archive, countType: sinceImageTransitioned, countUnit: days, countNumber: 90}";
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "sinceImagePulled with expire",
            lcp_rules("x", &[(1, PULLED_90, EXPIRE)]),
            "sinceImagePulled must be used with action type transition",
        ),
        (
            "sinceImagePulled without action",
            lcp_rules("x", &[(1, PULLED_90, "")]),
            "sinceImagePulled must be used with action type transition",
        ),
        (
            "sinceImageTransitioned with transition",
            lcp_rules("x", &[(1, ARCHIVED_365, TRANSITION)]),
            "sinceImageTransitioned must be used with action type expire",
        ),
        (
            "sinceImageTransitioned without archive",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, countType: sinceImageTransitioned, countUnit: days, countNumber: 365}",
                    EXPIRE,
                )],
            ),
            "storageClass archive goes exactly with countType sinceImageTransitioned",
        ),
        (
            "sinceImageTransitioned with standard",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, storageClass: standard, countType: sinceImageTransitioned, countUnit: days, countNumber: 365}",
                    EXPIRE,
                )],
            ),
            "storageClass archive goes exactly with countType sinceImageTransitioned",
        ),
        (
            "archive with imageCountMoreThan",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, storageClass: archive, countType: imageCountMoreThan, countNumber: 5}",
                    EXPIRE,
                )],
            ),
            "storageClass archive goes exactly",
        ),
        (
            "archive with sinceImagePulled",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, storageClass: archive, countType: sinceImagePulled, countUnit: days, countNumber: 90}",
                    TRANSITION,
                )],
            ),
            "storageClass archive goes exactly",
        ),
        (
            "less than 90 days in the archive",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, storageClass: archive, countType: sinceImageTransitioned, countUnit: days, countNumber: 89}",
                    EXPIRE,
                )],
            ),
            "at least 90 days",
        ),
        (
            "sinceImagePulled without unit",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, countType: sinceImagePulled, countNumber: 90}",
                    TRANSITION,
                )],
            ),
            "requires countUnit",
        ),
        (
            "sinceImageTransitioned without unit",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, storageClass: archive, countType: sinceImageTransitioned, countNumber: 90}",
                    EXPIRE,
                )],
            ),
            "requires countUnit",
        ),
        (
            "transition without target",
            lcp_rules("x", &[(1, PULLED_90, "{type: transition}")]),
            "targetStorageClass archive is required with type transition",
        ),
        (
            "target with expire",
            lcp_rules(
                "x",
                &[(1, PUSHED_30, "{type: expire, targetStorageClass: archive}")],
            ),
            "only allowed with it",
        ),
        (
            "target standard",
            lcp_rules(
                "x",
                &[(
                    1,
                    PULLED_90,
                    "{type: transition, targetStorageClass: standard}",
                )],
            ),
            "targetStorageClass",
        ),
        (
            "storage class glacier",
            lcp_rules(
                "x",
                &[(
                    1,
                    "{tagStatus: any, storageClass: glacier, countType: imageCountMoreThan, countNumber: 1}",
                    EXPIRE,
                )],
            ),
            "storageClass",
        ),
        (
            "two untagged archive rules",
            lcp_rules(
                "x",
                &[
                    (1, untagged_archived, EXPIRE),
                    (2, &untagged_archived.replace("90}", "100}"), EXPIRE),
                ],
            ),
            "only one rule of a storageClass may select untagged images",
        ),
        (
            "archive any rule not last of its class",
            lcp_rules(
                "x",
                &[(1, ARCHIVED_365, EXPIRE), (2, untagged_archived, EXPIRE)],
            ),
            "highest rulePriority of the rules of its storageClass",
        ),
        (
            "standard any rule not last of its class",
            lcp_rules(
                "x",
                &[
                    (1, PUSHED_30, TRANSITION),
                    (
                        2,
                        "{tagStatus: untagged, countType: imageCountMoreThan, countNumber: 1}",
                        EXPIRE,
                    ),
                    (3, ARCHIVED_365, EXPIRE),
                ],
            ),
            "highest rulePriority of the rules of its storageClass",
        ),
    ];
    for (case, yaml, expect) in &refused {
        let result = lcp.create(&PostParams::default(), &object(yaml)).await;
        assert_invalid(result, case, expect);
    }
    let untagged_standard = "{tagStatus: untagged, countType: imageCountMoreThan, countNumber: 1}";
    let accepted: Vec<(&str, String)> = vec![
        (
            "archiving images not pulled in 90 days",
            lcp_rules("a1", &[(1, PULLED_90, TRANSITION)]),
        ),
        (
            "expiring images archived for 365 days",
            lcp_rules("a2", &[(1, ARCHIVED_365, EXPIRE)]),
        ),
        (
            "archiving prod images older than 30 days",
            lcp_rules(
                "a3",
                &[(
                    1,
                    "{tagStatus: tagged, tagPatternList: ['prod*'], countType: sinceImagePushed, countUnit: days, countNumber: 30}",
                    TRANSITION,
                )],
            ),
        ),
        (
            "combining archive and expire rules",
            lcp_rules(
                "a4",
                &[(1, PUSHED_30, TRANSITION), (2, ARCHIVED_365, EXPIRE)],
            ),
        ),
        (
            "one untagged rule per class, 90 days exactly",
            lcp_rules(
                "a5",
                &[
                    (1, untagged_standard, TRANSITION),
                    (2, untagged_archived, EXPIRE),
                ],
            ),
        ),
        (
            "standard any rule above an archive rule",
            lcp_rules(
                "a6",
                &[
                    (1, PULLED_90, TRANSITION),
                    (2, untagged_archived, EXPIRE),
                    (3, ARCHIVED_365, EXPIRE),
                ],
            ),
        ),
        (
            "storageClass standard written out",
            lcp_rules(
                "a7",
                &[(
                    1,
                    "{tagStatus: any, storageClass: standard, countType: imageCountMoreThan, countNumber: 3}",
                    TRANSITION,
                )],
            ),
        ),
    ];
    for (case, yaml) in &accepted {
        lcp.create(&PostParams::default(), &object(yaml))
            .await
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
    }
    println!("figure lifecycle_archive_refused {}", refused.len());
    println!("figure lifecycle_archive_accepted {}", accepted.len());
}

/// Issue #15: what a registry policy may hold that ECR accepts (scope V2: every ECR action,
/// ECR's own wildcards, statements without sids, 100 statements, conditions and service
/// principals) passes the RegistryPolicy schema.
#[tokio::test]
async fn registry_policy_takes_what_ecr_takes() {
    let env = KubeEnv::start().await.unwrap();
    let api = api(&env, "RegistryPolicy", "");
    let hundred: Vec<String> = (0..100).map(|i| format!("sid: S{i}")).collect();
    let hundred: Vec<&str> = hundred.iter().map(String::as_str).collect();
    let cases: Vec<(&str, String)> = vec![
        (
            "replication",
            registry_policy(&[
                "sid: Replicate; actions: [ecr:CreateRepository, ecr:ReplicateImage]",
            ]),
        ),
        (
            "pull-through cache",
            registry_policy(&["actions: [ecr:BatchImportUpstreamImage, ecr:CreateRepository]"]),
        ),
        ("every ECR action", registry_policy(&["actions: ['ecr:*']"])),
        (
            "ECR wildcards and V2 actions",
            registry_policy(&["actions: ['ecr:Batch*', ecr:DescribeImages]"]),
        ),
        ("no sids", registry_policy(&["", ""])),
        ("100 statements", registry_policy(&hundred)),
        ("any resource", registry_policy(&["resources: ['*']"])),
        (
            "conditions and a service principal",
            registry_policy(&[
                "principals: {service: [ecr.amazonaws.com]}; conditions: {StringEquals: {'aws:SourceAccount': ['111122223333']}}",
            ]),
        ),
        ("deny", registry_policy(&["effect: Deny"])),
    ];
    for (i, (case, yaml)) in cases.iter().enumerate() {
        let yaml = yaml.replace("name: x", &format!("name: accepted-{i}"));
        api.create(&PostParams::default(), &object(&yaml))
            .await
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
    }
    println!("figure accepted_registry_policy_specs {}", cases.len());
}

/// A RepositoryCreationTemplate named `name` with `spec` (a flow map's members).
fn rct(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: RepositoryCreationTemplate\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"
    )
}

/// Issue #15 item 3: the RepositoryCreationTemplate schema refuses what
/// CreateRepositoryCreationTemplate refuses (the model's Prefix, RCTAppliedFor,
/// RepositoryTemplateDescription, KmsKeyForRepositoryCreationTemplate, exclusion filters with
/// their mode, CustomRoleArn, tag bounds), the lifecycle rules ECR forbids (as a
/// LifecyclePolicy's), and a change of prefix; it admits what ECR takes.
#[tokio::test]
async fn repository_creation_template_follows_the_ecr_model() {
    let env = KubeEnv::start().await.unwrap();
    let api = api(&env, "RepositoryCreationTemplate", "");
    const OK: &str = "prefix: prod, appliedFor: [REPLICATION]";
    let kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let rule = |priority: u32, tag_status: &str| {
        format!(
            "{{rulePriority: {priority}, selection: {{tagStatus: {tag_status}, countType: imageCountMoreThan, countNumber: 1}}}}"
        )
    };
    let long_prefix = format!("prefix: {}, appliedFor: [REPLICATION]", "a".repeat(257));
    let refused: Vec<(&str, String, &str)> = vec![
        ("no prefix", "appliedFor: [REPLICATION]".into(), "prefix"),
        ("no appliedFor", "prefix: prod".into(), "appliedFor"),
        (
            "empty appliedFor",
            "prefix: prod, appliedFor: []".into(),
            "appliedFor",
        ),
        (
            "unknown appliedFor",
            "prefix: prod, appliedFor: [PUSH]".into(),
            "appliedFor",
        ),
        (
            "repeated appliedFor",
            "prefix: prod, appliedFor: [REPLICATION, REPLICATION]".into(),
            "appliedFor",
        ),
        (
            "upper case prefix",
            "prefix: Prod, appliedFor: [REPLICATION]".into(),
            "spec.prefix",
        ),
        ("prefix of 257", long_prefix, "spec.prefix"),
        (
            "double slash",
            "prefix: a//b, appliedFor: [REPLICATION]".into(),
            "spec.prefix",
        ),
        (
            "description of 257",
            format!("{OK}, description: {}", "d".repeat(257)),
            "spec.description",
        ),
        (
            "kms key id",
            format!("{OK}, encryption: {{encryptionType: KMS, kmsKey: 1234abcd}}"),
            "kmsKey must be a KMS key ARN",
        ),
        (
            "kms key with AES256",
            format!("{OK}, encryption: {{encryptionType: AES256, kmsKey: '{kms}'}}"),
            "kmsKey requires encryptionType",
        ),
        (
            "filters without an exclusion mode",
            format!(
                "{OK}, imageTagMutability: IMMUTABLE, imageTagMutabilityExclusionFilters: [{{filter: latest}}]"
            ),
            "requires imageTagMutability",
        ),
        (
            "exclusion mode without filters",
            format!("{OK}, imageTagMutability: MUTABLE_WITH_EXCLUSION"),
            "requires imageTagMutabilityExclusionFilters",
        ),
        (
            "bad filter",
            format!(
                "{OK}, imageTagMutability: IMMUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filter: 'a b'}}]"
            ),
            "filter",
        ),
        (
            "role that is not a role",
            format!("{OK}, customRoleArn: 'arn:aws:iam::123456789012:user/me'"),
            "customRoleArn",
        ),
        (
            "tag key of 129",
            format!("{OK}, resourceTags: {{{}: v}}", "k".repeat(129)),
            "tag keys must be 1 to 128",
        ),
        (
            "aws: tag key",
            format!("{OK}, resourceTags: {{'aws:x': v}}"),
            "reserved by AWS",
        ),
        (
            "tag key with a comma",
            format!("{OK}, resourceTags: {{'a,b': v}}"),
            "tag keys may contain only",
        ),
        (
            "tag value with a star",
            format!("{OK}, resourceTags: {{k: 'v*'}}"),
            "tag values may contain only",
        ),
        (
            "owner tag",
            format!("{OK}, resourceTags: {{'ecr.operator.dev/owner': me}}"),
            "reserved for the operator",
        ),
        (
            "tag value of 257",
            format!("{OK}, resourceTags: {{k: {}}}", "v".repeat(257)),
            "resourceTags",
        ),
        (
            "two untagged rules",
            format!(
                "{OK}, lifecycleRules: [{}, {}]",
                rule(1, "untagged"),
                rule(2, "untagged")
            ),
            "only one rule of a storageClass may select untagged",
        ),
        (
            "any rule not last",
            format!(
                "{OK}, lifecycleRules: [{}, {}]",
                rule(1, "any"),
                rule(2, "untagged")
            ),
            "tagStatus any must have the highest rulePriority",
        ),
        (
            "duplicate priority",
            format!(
                "{OK}, lifecycleRules: [{}, {}]",
                rule(1, "untagged"),
                rule(1, "any")
            ),
            "lifecycleRules",
        ),
        (
            "policy without actions",
            format!(
                "{OK}, repositoryPolicy: {{statements: [{{effect: Allow, principals: {{aws: ['*']}}, actions: []}}]}}"
            ),
            "at least one action",
        ),
        (
            "unknown deletionPolicy",
            format!("{OK}, deletionPolicy: Orphan"),
            "deletionPolicy",
        ),
    ];
    for (i, (case, spec, expect)) in refused.iter().enumerate() {
        let yaml = rct(&format!("rct-refused-{i}"), spec);
        assert_invalid(
            api.create(&PostParams::default(), &object(&yaml)).await,
            case,
            expect,
        );
    }
    let accepted: Vec<(&str, String)> = vec![
        ("minimal", OK.into()),
        (
            "ROOT",
            "prefix: ROOT, appliedFor: [PULL_THROUGH_CACHE, REPLICATION, CREATE_ON_PUSH]".into(),
        ),
        (
            "separators and trailing slash",
            "prefix: a__b/web--x.y/, appliedFor: [CREATE_ON_PUSH]".into(),
        ),
        (
            "prefix of 256",
            format!("prefix: {}, appliedFor: [REPLICATION]", "a".repeat(256)),
        ),
        (
            "everything",
            format!(
                "{OK}, description: d, imageTagMutability: MUTABLE_WITH_EXCLUSION, imageTagMutabilityExclusionFilters: [{{filter: 'dev-*'}}], encryption: {{encryptionType: KMS_DSSE, kmsKey: '{kms}'}}, resourceTags: {{team: a}}, customRoleArn: 'arn:aws:iam::123456789012:role/r', lifecycleRules: [{}, {}], repositoryPolicy: {{statements: [{{effect: Allow, principals: {{aws: ['*']}}, actions: ['ecr:BatchGetImage']}}]}}, deletionPolicy: Delete",
                rule(1, "untagged"),
                rule(2, "any")
            ),
        ),
    ];
    for (i, (case, spec)) in accepted.iter().enumerate() {
        let yaml = rct(&format!("rct-accepted-{i}"), spec);
        api.create(&PostParams::default(), &object(&yaml))
            .await
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
    }
    let patch = serde_json::json!({"spec": {"prefix": "other"}});
    assert_invalid(
        api.patch(
            "rct-accepted-0",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await,
        "prefix change",
        "prefix is immutable",
    );
    println!("figure rct_refused {}", refused.len());
    println!("figure rct_accepted {}", accepted.len());
}

/// A RegistryTarget named `name` with `spec` (a flow map's members).
fn target(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: RegistryTarget\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"
    )
}

/// Issue #16: a RegistryTarget takes an account id of 12 digits, a region name, a role ARN of
/// any partition in that account, and STS AssumeRole's bounds on the external id (2 to 1224 of
/// `[\w+=,.@:/-]`) and the session name (2 to 64 of `[\w+=,.@-]`); account and region are fixed
/// at creation, the role is not.
#[tokio::test]
async fn registry_target_follows_sts_and_ecr() {
    let env = KubeEnv::start().await.unwrap();
    let api = api(&env, "RegistryTarget", "");
    const OK: &str = "registryId: '222222222222', region: us-east-1";
    let role = |arn: &str, extra: &str| format!("{OK}, assumeRole: {{roleArn: '{arn}'{extra}}}");
    let own_role = "arn:aws:iam::222222222222:role/ecr-operator";
    let refused: Vec<(&str, String, &str)> = vec![
        ("no registryId", "region: us-east-1".into(), "registryId"),
        ("no region", "registryId: '222222222222'".into(), "region"),
        (
            "11 digits",
            "registryId: '22222222222', region: us-east-1".into(),
            "spec.registryId",
        ),
        (
            "letters in registryId",
            "registryId: '22222222222a', region: us-east-1".into(),
            "spec.registryId",
        ),
        (
            "region without a number",
            "registryId: '222222222222', region: us-east".into(),
            "spec.region",
        ),
        (
            "upper case region",
            "registryId: '222222222222', region: US-EAST-1".into(),
            "spec.region",
        ),
        (
            "a user, not a role",
            role("arn:aws:iam::222222222222:user/x", ""),
            "spec.assumeRole.roleArn",
        ),
        (
            "an STS ARN",
            role("arn:aws:sts::222222222222:role/x", ""),
            "spec.assumeRole.roleArn",
        ),
        (
            "a space in the role name",
            role("arn:aws:iam::222222222222:role/a b", ""),
            "spec.assumeRole.roleArn",
        ),
        (
            "a role of another account",
            role("arn:aws:iam::333333333333:role/x", ""),
            "assumeRole.roleArn must be a role of the account registryId",
        ),
        (
            "external id of 1",
            role(own_role, ", externalId: a"),
            "spec.assumeRole.externalId",
        ),
        (
            "external id with a space",
            role(own_role, ", externalId: 'a b'"),
            "spec.assumeRole.externalId",
        ),
        (
            "external id of 1225",
            role(own_role, &format!(", externalId: {}", "a".repeat(1225))),
            "spec.assumeRole.externalId",
        ),
        (
            "session name of 65",
            role(own_role, &format!(", sessionName: {}", "s".repeat(65))),
            "spec.assumeRole.sessionName",
        ),
        (
            "session name with a colon",
            role(own_role, ", sessionName: 'a:b'"),
            "spec.assumeRole.sessionName",
        ),
        (
            "endpoint without a scheme",
            format!("{OK}, endpointUrl: ecr.example.com"),
            "spec.endpointUrl",
        ),
    ];
    for (i, (case, spec, expect)) in refused.iter().enumerate() {
        let yaml = target(&format!("target-refused-{i}"), spec);
        assert_invalid(
            api.create(&PostParams::default(), &object(&yaml)).await,
            case,
            expect,
        );
    }
    let accepted: Vec<(&str, String)> = vec![
        ("own identity", OK.into()),
        ("GovCloud", "registryId: '222222222222', region: us-gov-west-1".into()),
        (
            "China partition",
            "registryId: '222222222222', region: cn-north-1, assumeRole: {roleArn: 'arn:aws-cn:iam::222222222222:role/x'}"
                .into(),
        ),
        (
            "everything",
            role(
                "arn:aws:iam::222222222222:role/path/to/ecr+op=a,b.c@d-e",
                &format!(
                    ", externalId: 'a+=,.@:/-_{}', sessionName: 'op+=,.@-_{}'",
                    "x".repeat(1200),
                    "y".repeat(40)
                ),
            ) + ", endpointUrl: 'https://vpce-1.api.ecr.us-east-1.vpce.amazonaws.com'",
        ),
    ];
    for (i, (case, spec)) in accepted.iter().enumerate() {
        let yaml = target(&format!("target-accepted-{i}"), spec);
        api.create(&PostParams::default(), &object(&yaml))
            .await
            .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
    }
    for (field, value, expect) in [
        ("registryId", "333333333333", "registryId is immutable"),
        ("region", "eu-west-1", "region is immutable"),
    ] {
        let patch = serde_json::json!({"spec": {field: value}});
        assert_invalid(
            api.patch(
                "target-accepted-0",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await,
            field,
            expect,
        );
    }
    // The role may change: a rotation of roles keeps the target.
    let patch = serde_json::json!({"spec": {"assumeRole": {"roleArn": own_role}}});
    api.patch(
        "target-accepted-0",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap_or_else(|e| panic!("adding a role: {e}"));
    println!("figure registry_target_refused {}", refused.len());
    println!("figure registry_target_accepted {}", accepted.len());
}
