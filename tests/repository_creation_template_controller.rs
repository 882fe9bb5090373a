//! The RepositoryCreationTemplate controller end to end, against the API server (the real
//! kube-apiserver with `KUBEBUILDER_ASSETS`) and moto (templates added by
//! tests/support/moto_ecr_templates.py).

mod common;

use common::{Env, create, failed_with, message_of, ready, wait_for, wait_gone};
use ecr_operator::api::RepositoryCreationTemplate;
use ecr_operator::registry::{CreationTemplate, CreationTemplateInfo, Registry};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

const KMS: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ROLE: &str = "arn:aws:iam::123456789012:role/ecr-template";

/// A template with every field set, for `prefix`.
fn full(name: &str, prefix: &str, deletion: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: RepositoryCreationTemplate
metadata: {{name: {name}}}
spec:
  prefix: {prefix}
  appliedFor: [PULL_THROUGH_CACHE, REPLICATION]
  description: first
  imageTagMutability: IMMUTABLE_WITH_EXCLUSION
  imageTagMutabilityExclusionFilters: [{{filter: latest}}]
  encryption: {{encryptionType: KMS, kmsKey: '{KMS}'}}
  resourceTags: {{team: platform}}
  customRoleArn: '{ROLE}'
  lifecycleRules:
    - rulePriority: 1
      selection: {{tagStatus: untagged, countType: sinceImagePushed, countUnit: days, countNumber: 14}}
  repositoryPolicy:
    statements:
      - {{sid: Pull, effect: Allow, principals: {{aws: ['123456789012']}}, actions: ['ecr:BatchGetImage']}}
  deletionPolicy: {deletion}
"
    )
}

fn bare(name: &str, prefix: &str, deletion: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: RepositoryCreationTemplate
metadata: {{name: {name}}}
spec: {{prefix: {prefix}, appliedFor: [CREATE_ON_PUSH], deletionPolicy: {deletion}}}
"
    )
}

async fn in_ecr(env: &Env, prefix: &str) -> Option<CreationTemplateInfo> {
    env.registry
        .describe_creation_templates(&[prefix.to_string()])
        .await
        .unwrap()
        .into_iter()
        .next()
}

async fn wait_ecr(
    env: &Env,
    what: &str,
    prefix: &str,
    check: impl Fn(Option<&CreationTemplate>) -> bool,
) {
    testbed::wait::until(what, common::WAIT, || async {
        let t = in_ecr(env, prefix).await;
        check(t.as_ref().map(|t| &t.template)).then_some(())
    })
    .await
    .unwrap();
}

/// Waits for an event `reason` about `obj` (this very object, by uid).
async fn wait_event(env: &Env, obj: &RepositoryCreationTemplate, reason: &str) {
    let events: Api<Event> = Api::all(env.kube.client());
    let uid = obj.metadata.uid.clone();
    testbed::wait::until(&format!("{reason} event"), common::WAIT, || {
        let (events, uid) = (events.clone(), uid.clone());
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().is_some_and(|r| {
                            r.kind.as_deref() == Some("RepositoryCreationTemplate") && r.uid == uid
                        })
                })
                .then_some(())
        }
    })
    .await
    .unwrap();
}

fn template_writes(env: &Env) -> u64 {
    let stats = env.registry.stats();
    stats.operation("CreateRepositoryCreationTemplate")
        + stats.operation("UpdateRepositoryCreationTemplate")
        + stats.operation("DeleteRepositoryCreationTemplate")
}

/// Waits for `n` more sweeps (DescribeRepositoryCreationTemplates calls).
async fn sweeps(env: &Env, n: u64) {
    let stats = env.registry.stats();
    let seen = stats.operation("DescribeRepositoryCreationTemplates");
    testbed::wait::until("more sweeps", common::WAIT, || async {
        (stats.operation("DescribeRepositoryCreationTemplates") >= seen + n).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn create_update_drift_and_retain() {
    let env = Env::start().await;
    let api: Api<RepositoryCreationTemplate> = Api::all(env.kube.client());
    create(&api, &full("rct-prod", "prod", "Retain")).await;
    let obj = wait_for(&api, "rct-prod", "Ready", ready).await;
    wait_event(&env, &obj, "Created").await;
    let held = in_ecr(&env, "prod").await.expect("the template in ECR");
    let t = &held.template;
    assert_eq!(t.description.as_deref(), Some("first"));
    assert_eq!(t.applied_for, vec!["PULL_THROUGH_CACHE", "REPLICATION"]);
    assert_eq!(
        (t.encryption_type.as_str(), t.kms_key.as_deref()),
        ("KMS", Some(KMS))
    );
    assert_eq!(t.tag_mutability, "IMMUTABLE_WITH_EXCLUSION");
    assert_eq!(t.tag_mutability_exclusions, vec!["latest"]);
    assert_eq!(
        t.resource_tags.get("team").map(String::as_str),
        Some("platform")
    );
    assert_eq!(t.custom_role_arn.as_deref(), Some(ROLE));
    assert!(
        t.lifecycle_policy
            .as_deref()
            .unwrap()
            .contains("sinceImagePushed")
    );
    assert!(
        t.repository_policy
            .as_deref()
            .unwrap()
            .contains("ecr:BatchGetImage")
    );
    let status = obj.status.clone().unwrap();
    assert_eq!(status.created_at, held.created_at.map(|t| t.to_string()));

    // In sync: sweeps read, nothing is written.
    let writes = template_writes(&env);
    sweeps(&env, 3).await;
    assert_eq!(template_writes(&env), writes, "no write while in sync");

    // A spec change is written.
    let patch = json!({"spec": {"description": "second", "appliedFor": ["REPLICATION"], "lifecycleRules": []}});
    api.patch("rct-prod", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_ecr(&env, "updated", "prod", |t| {
        t.is_some_and(|t| {
            t.description.as_deref() == Some("second")
                && t.applied_for == ["REPLICATION"]
                && t.lifecycle_policy.is_none()
        })
    })
    .await;
    wait_event(&env, &obj, "Updated").await;

    // Changed in the console: restored at the sweep.
    let mut console = in_ecr(&env, "prod").await.unwrap().template;
    console.description = Some("console".into());
    console.custom_role_arn = None;
    env.registry
        .update_creation_template(&console)
        .await
        .unwrap();
    wait_ecr(&env, "drift restored", "prod", |t| {
        t.is_some_and(|t| {
            t.description.as_deref() == Some("second") && t.custom_role_arn.as_deref() == Some(ROLE)
        })
    })
    .await;
    wait_event(&env, &obj, "DriftCorrected").await;

    // Deleted in the console: re-created.
    env.registry.delete_creation_template("prod").await.unwrap();
    wait_ecr(&env, "re-created", "prod", |t| t.is_some()).await;

    // Retain: the object goes, the template stays.
    api.delete("rct-prod", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "rct-prod").await;
    assert!(in_ecr(&env, "prod").await.is_some(), "retained");
}

#[tokio::test]
async fn foreign_templates_and_younger_objects_conflict_and_delete_removes_ours() {
    let env = Env::start().await;
    let api: Api<RepositoryCreationTemplate> = Api::all(env.kube.client());
    // A template the operator did not create: Conflict, untouched, kept after the object goes.
    let theirs = CreationTemplate {
        prefix: "theirs".into(),
        description: Some("made by hand".into()),
        encryption_type: "AES256".into(),
        tag_mutability: "MUTABLE".into(),
        applied_for: vec!["CREATE_ON_PUSH".into()],
        ..Default::default()
    };
    env.registry
        .create_creation_template(&theirs)
        .await
        .unwrap();
    let writes = template_writes(&env);
    create(&api, &bare("rct-theirs", "theirs", "Delete")).await;
    let c = wait_for(&api, "rct-theirs", "Conflict", failed_with("Conflict")).await;
    assert!(
        message_of(&c).contains("not created by this object"),
        "{c:?}"
    );
    sweeps(&env, 2).await;
    assert_eq!(
        template_writes(&env),
        writes,
        "the foreign template is not written"
    );
    api.delete("rct-theirs", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "rct-theirs").await;
    let kept = in_ecr(&env, "theirs").await.expect("kept");
    assert_eq!(kept.template.description.as_deref(), Some("made by hand"));
    assert_eq!(template_writes(&env), writes, "nor deleted");

    // One object per prefix: the younger one reports Conflict.
    create(&api, &bare("rct-mine", "mine", "Delete")).await;
    wait_for(&api, "rct-mine", "Ready", ready).await;
    create(&api, &bare("rct-mine-too", "mine/", "Delete")).await;
    let younger = wait_for(&api, "rct-mine-too", "Conflict", failed_with("Conflict")).await;
    assert!(
        message_of(&younger).contains("rct-mine already manages"),
        "{younger:?}"
    );
    api.delete("rct-mine-too", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "rct-mine-too").await;
    assert!(
        in_ecr(&env, "mine").await.is_some(),
        "the older object's template stays"
    );

    // Delete: the template goes with the object.
    api.delete("rct-mine", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "rct-mine").await;
    assert!(in_ecr(&env, "mine").await.is_none(), "deleted");
}
