//! `ecr-operator export` round trip (issue #15 part 4): a registry holding every kind is seeded
//! in moto as the console or Terraform would leave it, the binary exports it, the YAML is
//! created in the real API server (`KUBEBUILDER_ASSETS`), and the operator takes it all over.
//!
//! What it pins: every exported object becomes Ready, and the operator writes nothing to ECR
//! but the one thing adoption is (a TagResource per repository that adds the owner tag, and
//! nothing else: the test reads the tags back), then nothing at all over further sweeps. A
//! field the export dropped or rendered differently (a tag, scan on push, an exclusion filter,
//! a policy statement, a lifecycle rule, a replication filter, a scanning rule, a template
//! member, ...) shows as a write of the controller that corrects it (PutImageScanningConfiguration,
//! SetRepositoryPolicy, PutLifecyclePolicy, PutReplicationConfiguration,
//! UpdateRepositoryCreationTemplate, ...) or as an object that is not Ready, and fails the
//! test. As a control, the end of the test changes one exported object and sees the write.

mod common;

use std::collections::BTreeMap;

use common::{Env, in_scope};
use ecr_operator::api::repository::OWNER_TAG;
use ecr_operator::registry::{
    CreationTemplate, NewPullThroughCacheRule, NewRepository, Registry, ReplicationRuleInfo,
    ReplicationSettings, ScanningRuleInfo, ScanningSettings, WRITE_OPERATIONS,
};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

const PULL_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowPull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root"]},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Condition":{"StringEquals":{"aws:PrincipalOrgID":["o-abc123"]}}}]}"#;
/// The user guide's archive example: archive after 30 days without a pull, expire a year later,
/// and keep untagged images in check.
const ARCHIVE_LIFECYCLE: &str = r#"{"rules":[{"rulePriority":1,"description":"untagged","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}},{"rulePriority":3,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}]}"#;
const PREFIX_LIFECYCLE: &str = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["dev"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;
/// A policy no typed form holds (`"Principal": "*"`): exported without it, reported.
const UNTYPED_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#;
const REGISTRY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Replication","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:123456789012:repository/*"}]}"#;

fn repository(name: &str, mode: &str, exclusions: &[&str], tags: &[(&str, &str)]) -> NewRepository {
    NewRepository {
        name: name.to_string(),
        tag_mutability: mode.to_string(),
        tag_mutability_exclusions: exclusions.iter().map(|e| e.to_string()).collect(),
        scan_on_push: name.starts_with("team/"),
        encryption_type: "AES256".to_string(),
        kms_key: None,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The registry as a team leaves it: every kind the export reads. Returns the repositories the
/// export should take over.
async fn seed(registry: &dyn Registry) -> Vec<&'static str> {
    let repositories = [
        repository(
            "team/app",
            "IMMUTABLE_WITH_EXCLUSION",
            &["latest", "dev-*"],
            &[("env", "prod"), ("team", "a")],
        ),
        repository("team/a__b", "MUTABLE", &[], &[]),
        repository("web--frontend", "IMMUTABLE", &[], &[("cost-center", "42")]),
        repository("legacy", "MUTABLE_WITH_EXCLUSION", &["release-*"], &[]),
        // Managed by another cluster's operator: not exported.
        repository(
            "owned",
            "MUTABLE",
            &[],
            &[(OWNER_TAG, "elsewhere/ns/owned")],
        ),
    ];
    for r in &repositories {
        registry.create_repository(r).await.unwrap();
    }
    registry
        .set_repository_policy("team/app", PULL_POLICY)
        .await
        .unwrap();
    registry
        .set_repository_policy("legacy", UNTYPED_POLICY)
        .await
        .unwrap();
    registry
        .put_lifecycle_policy("team/app", ARCHIVE_LIFECYCLE)
        .await
        .unwrap();
    registry
        .put_lifecycle_policy("team/a__b", PREFIX_LIFECYCLE)
        .await
        .unwrap();
    registry
        .put_replication(&ReplicationSettings {
            rules: vec![ReplicationRuleInfo {
                destinations: vec![("eu-west-1".to_string(), "210987654321".to_string())],
                filters: vec!["team".to_string()],
            }],
        })
        .await
        .unwrap();
    registry
        .put_registry_scanning(&ScanningSettings {
            scan_type: "ENHANCED".to_string(),
            rules: vec![
                ScanningRuleInfo {
                    frequency: "CONTINUOUS_SCAN".to_string(),
                    filters: vec!["team/*".to_string()],
                },
                ScanningRuleInfo {
                    frequency: "SCAN_ON_PUSH".to_string(),
                    filters: vec!["*".to_string()],
                },
            ],
        })
        .await
        .unwrap();
    registry.put_registry_policy(REGISTRY_POLICY).await.unwrap();
    registry
        .create_pull_through_cache_rule(&NewPullThroughCacheRule {
            prefix: "quay".to_string(),
            upstream_registry_url: "quay.io".to_string(),
            upstream_repository_prefix: None,
            credential_arn: None,
            custom_role_arn: None,
        })
        .await
        .unwrap();
    registry
        .create_creation_template(&CreationTemplate {
            prefix: "prod".to_string(),
            description: Some("created by replication and the cache".to_string()),
            encryption_type: "AES256".to_string(),
            resource_tags: BTreeMap::from([("team".to_string(), "platform".to_string())]),
            tag_mutability: "IMMUTABLE_WITH_EXCLUSION".to_string(),
            tag_mutability_exclusions: vec!["latest".to_string()],
            repository_policy: Some(PULL_POLICY.to_string()),
            lifecycle_policy: Some(PREFIX_LIFECYCLE.to_string()),
            applied_for: vec!["REPLICATION".to_string(), "PULL_THROUGH_CACHE".to_string()],
            custom_role_arn: Some("arn:aws:iam::123456789012:role/ecr-template".to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    vec!["legacy", "team/a__b", "team/app", "web--frontend"]
}

/// Successful writes so far, by operation.
fn writes(registry: &dyn Registry) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for ((op, outcome), n) in registry.stats().snapshot() {
        if outcome == "success" && WRITE_OPERATIONS.contains(&op) {
            *out.entry(op).or_default() += n;
        }
    }
    out
}

fn since(
    now: &BTreeMap<&'static str, u64>,
    before: &BTreeMap<&'static str, u64>,
) -> BTreeMap<&'static str, u64> {
    now.iter()
        .map(|(op, n)| (*op, n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Runs `ecr-operator export` against moto: (stdout, stderr, exit code).
async fn export(env: &Env, args: &[&str]) -> (String, String, Option<i32>) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ecr-operator"))
        .arg("export")
        .args(args)
        .envs(env.moto.aws_env())
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (text(&out.stdout), text(&out.stderr), out.status.code())
}

fn api_for(env: &Env, doc: &DynamicObject) -> Api<DynamicObject> {
    let kind = doc
        .types
        .as_ref()
        .map(|t| t.kind.as_str())
        .unwrap_or_default();
    let resource = ecr_operator::api::resource_for(kind).unwrap_or_else(|| panic!("kind {kind}"));
    match &doc.metadata.namespace {
        Some(ns) => Api::namespaced_with(env.kube.client(), ns, &resource),
        None => Api::all_with(env.kube.client(), &resource),
    }
}

/// Ready=True at the object's generation, as `kubectl wait --for=condition=Ready` reads it.
fn is_ready(obj: &DynamicObject) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c["type"] == "Ready"
                    && c["status"] == "True"
                    && c["observedGeneration"].as_i64() == obj.metadata.generation
            })
        })
}

async fn wait_all_ready(env: &Env, docs: &[DynamicObject], what: &str) {
    for doc in docs {
        let api = api_for(env, doc);
        let name = doc.metadata.name.clone().unwrap_or_default();
        common::wait_for(&api, &name, &format!("{what}: {name} Ready"), is_ready).await;
    }
}

#[tokio::test]
async fn export_apply_and_the_operator_adopts_without_writing() {
    let env = Env::start_with_default_grants().await;
    let adopted = seed(env.registry.as_ref()).await;
    let ns = env.kube.namespace("imported").await.unwrap();

    // Export: reads only, seen from moto's side.
    let calls_before = env.moto.calls().await.unwrap();
    let (yaml, stderr, code) = export(&env, &["--namespace", &ns]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let calls = env.moto.calls().await.unwrap();
    let export_calls: BTreeMap<&String, u64> = calls
        .iter()
        .map(|(op, n)| (op, n - calls_before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(
        export_calls.keys().all(|op| ["Describe", "Get", "List"]
            .iter()
            .any(|p| op.starts_with(p))),
        "export only reads: {export_calls:?}"
    );
    assert!(
        stderr.contains("repository owned: already managed by ecr-operator"),
        "{stderr}"
    );
    assert!(stderr.contains("repository legacy: policy"), "{stderr}");
    let (_, _, strict) = export(&env, &["--namespace", &ns, "--strict"]).await;
    assert_eq!(strict, Some(2), "--strict fails on what was left out");

    let docs: Vec<DynamicObject> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| d.types.as_ref().unwrap().kind.clone())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    for (kind, n) in [
        ("RepositoryAccessPolicy", 1),
        ("Repository", adopted.len()),
        ("LifecyclePolicy", 2),
        ("ReplicationConfig", 1),
        ("ScanPolicy", 1),
        ("RegistryPolicy", 1),
        ("PullThroughCacheRule", 1),
        ("RepositoryCreationTemplate", 1),
    ] {
        assert_eq!(count(kind), n, "{kind} in {kinds:?}\n{yaml}");
    }

    // Apply, as `kubectl create -f` would, into this test's operator's scope.
    let before = writes(env.registry.as_ref());
    let calls_before_apply = env.registry.stats().total();
    for doc in &docs {
        let obj = in_scope(doc.clone());
        api_for(&env, &obj)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {:?}: {e}", obj.metadata.name));
    }
    wait_all_ready(&env, &docs, "after apply").await;

    // Adoption is the owner tag, and only that.
    let adoption = since(&writes(env.registry.as_ref()), &before);
    assert_eq!(
        adoption,
        BTreeMap::from([("TagResource", adopted.len() as u64)]),
        "writes while taking over"
    );
    for name in &adopted {
        let info = env
            .registry
            .describe_repository(name)
            .await
            .unwrap()
            .unwrap();
        let tags = env.registry.list_tags(&info.arn).await.unwrap();
        assert!(
            tags.get(OWNER_TAG)
                .is_some_and(|o| o.starts_with(&format!("test-cluster/{ns}/"))),
            "{name}: {tags:?}"
        );
    }

    // In sync: sweeps and deep sweeps (every 2 s) write nothing more.
    let settled = writes(env.registry.as_ref());
    let calls_settled = env.registry.stats().total();
    let stats = env.registry.stats();
    let (tag_reads, template_reads) = (
        stats.operation("ListTagsForResource"),
        stats.operation("DescribeRepositoryCreationTemplates"),
    );
    testbed::wait::until("two deep sweeps", common::WAIT, || async {
        let deep = stats.operation("ListTagsForResource") >= tag_reads + 2 * adopted.len() as u64;
        let swept = stats.operation("DescribeRepositoryCreationTemplates") >= template_reads + 3;
        (deep && swept).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        since(&writes(env.registry.as_ref()), &settled),
        BTreeMap::new(),
        "no writes in sync"
    );
    wait_all_ready(&env, &docs, "still").await;
    eprintln!(
        "export round trip: {} objects, {} ECR calls by the export, {} by the operator to take over (writes: {adoption:?}), {} more over the sweeps after (writes: none)",
        docs.len(),
        export_calls.values().sum::<u64>(),
        calls_settled - calls_before_apply,
        env.registry.stats().total() - calls_settled,
    );

    // Control: a spec that differs from ECR is written, so the counts above could see writes.
    let repo = docs
        .iter()
        .find(|d| {
            d.types.as_ref().unwrap().kind == "Repository"
                && d.data["spec"]["repositoryName"] == "web--frontend"
        })
        .unwrap();
    let patch = json!({"spec": {"tags": {"cost-center": "43"}}});
    api_for(&env, repo)
        .patch(
            repo.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    testbed::wait::until("the changed tag written", common::WAIT, || async {
        (since(&writes(env.registry.as_ref()), &settled).get("TagResource") == Some(&1))
            .then_some(())
    })
    .await
    .unwrap();
}
