//! The LifecyclePolicy controller end to end against the API server double and moto, started
//! exactly as `ecr-operator run` starts it; the preview checked against pushed images.

mod common;

use common::{Env, assert_rejected, create, failed_with, message_of, ready, wait_for, wait_gone};
use ecr_operator::api::{LifecyclePolicy, Repository};
use ecr_operator::lifecycle::policies_equivalent;
use ecr_operator::registry::Registry;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

const REPO: &str = "apiVersion: ecr.operator.dev/v1alpha1
kind: Repository
metadata: {name: app}
spec: {repositoryName: team/app, deletionPolicy: Delete, forceDelete: true}
";

/// Keep the newest `keep` images tagged dev*, and expire untagged images after a day.
fn policy(name: &str, keep: i32, extra: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1
kind: LifecyclePolicy
metadata: {{name: {name}}}
spec:
  repositoryRef: {{name: app}}
  {extra}
  rules:
    - rulePriority: 1
      description: keep the newest dev builds
      selection: {{tagStatus: tagged, tagPrefixList: [dev], countType: imageCountMoreThan, countNumber: {keep}}}
    - rulePriority: 2
      selection: {{tagStatus: untagged, countType: sinceImagePushed, countUnit: days, countNumber: 1}}
"
    )
}

async fn ecr_policy(env: &Env) -> Option<String> {
    env.registry.get_lifecycle_policy("team/app").await.unwrap()
}

fn preview_counts(lp: &LifecyclePolicy) -> Option<(i64, i64)> {
    let p = lp.status.as_ref()?.preview.as_ref()?;
    Some((p.image_count, p.expiring_count))
}

async fn push(env: &Env, tags: &[&str]) -> Vec<String> {
    let mut digests = Vec::new();
    for t in tags {
        digests.push(
            testbed::images::push_image(&env.ecr(), "team/app", t)
                .await
                .unwrap(),
        );
    }
    digests
}

#[tokio::test]
async fn apply_preview_change_drift_and_delete() {
    let env = Env::start().await;
    let ns = env.kube.namespace("lcp").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    let api: Api<LifecyclePolicy> = env.api(&ns);
    create(&repos, REPO).await;
    wait_for(&repos, "app", "Repository Ready", |r| {
        r.status.as_ref().is_some_and(|s| {
            ecr_operator::api::conditions::is_ready_at(&s.common.conditions, r.metadata.generation)
        })
    })
    .await;
    let digests = push(&env, &["dev1", "dev2", "dev3", "prod1"]).await;

    create(&api, &policy("cleanup", 1, "")).await;
    let lp = wait_for(&api, "cleanup", "Ready with a preview", |p| {
        ready(p) && preview_counts(p) == Some((4, 2))
    })
    .await;
    let status = lp.status.clone().unwrap();
    assert!(status.applied);
    assert_eq!(status.repository_name.as_deref(), Some("team/app"));
    // Every controller records its reconciles, as the README's metrics table says.
    for controller in ["repository", "lifecyclepolicy", "repositoryaccesspolicy"] {
        assert!(
            env.metrics.reconciles(controller, "success") > 0,
            "no successful {controller} reconcile recorded:\n{}",
            env.metrics.render()
        );
    }
    assert_eq!(status.rule_count, Some(2));
    let preview = status.preview.unwrap();
    assert!(!preview.truncated);
    for image in &preview.images {
        assert_eq!(image.rule_priority, 1);
        assert!(image.tags.iter().all(|t| t.starts_with("dev")), "{image:?}");
        assert!(digests.contains(&image.digest));
    }
    let text = ecr_policy(&env).await.expect("policy in ECR");
    let (_, rendered) = ecr_operator::controllers::lifecycle_policy::render_spec(&lp.spec).unwrap();
    assert!(policies_equivalent(&text, &rendered), "{text}");
    assert_eq!(env.registry.stats().operation("PutLifecyclePolicy"), 1);

    // A new image shows in the preview on the next resync, without another put.
    push(&env, &["dev4"]).await;
    wait_for(&api, "cleanup", "preview refreshed", |p| {
        preview_counts(p) == Some((5, 3))
    })
    .await;
    assert_eq!(env.registry.stats().operation("PutLifecyclePolicy"), 1);

    // Change: keep two; updated in place.
    api.patch(
        "cleanup",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"rules": [
            {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["dev"], "countType": "imageCountMoreThan", "countNumber": 2}},
        ]}})),
    )
    .await
    .unwrap();
    wait_for(&api, "cleanup", "change applied", |p| {
        ready(p) && p.metadata.generation == Some(2) && preview_counts(p) == Some((5, 2))
    })
    .await;
    let text = ecr_policy(&env).await.unwrap();
    assert!(text.contains("\"countNumber\":2"), "{text}");
    assert!(!text.contains("untagged"), "{text}");

    // Drift: someone replaces the policy in the console; the resync restores it.
    let foreign = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    env.ecr()
        .put_lifecycle_policy()
        .repository_name("team/app")
        .lifecycle_policy_text(foreign)
        .send()
        .await
        .unwrap();
    testbed::wait::until("drift restored", common::WAIT, || async {
        let text = ecr_policy(&env).await?;
        text.contains("\"countNumber\":2").then_some(())
    })
    .await
    .unwrap();

    // Resyncs of an unchanged policy write nothing.
    let puts = env.registry.stats().operation("PutLifecyclePolicy");
    let gets = env.registry.stats().operation("GetLifecyclePolicy");
    testbed::wait::until("two more resyncs", common::WAIT, || async {
        (env.registry.stats().operation("GetLifecyclePolicy") >= gets + 2).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(env.registry.stats().operation("PutLifecyclePolicy"), puts);

    // Delete: the policy leaves ECR with the object.
    api.delete("cleanup", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "cleanup").await;
    assert_eq!(ecr_policy(&env).await, None);
}

#[tokio::test]
async fn waits_for_its_repository_and_one_policy_per_repository() {
    let env = Env::start().await;
    let ns = env.kube.namespace("lcp-wait").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    let api: Api<LifecyclePolicy> = env.api(&ns);
    create(&api, &policy("first", 1, "")).await;
    let waiting = wait_for(
        &api,
        "first",
        "RepositoryNotReady",
        failed_with("RepositoryNotReady"),
    )
    .await;
    assert!(message_of(&waiting).contains("app"), "{waiting:?}");
    create(&repos, REPO).await;
    wait_for(&api, "first", "Ready once the Repository is", ready).await;

    // A second policy for the same repository is newer: Conflict, nothing written.
    let puts = env.registry.stats().operation("PutLifecyclePolicy");
    create(&api, &policy("second", 5, "")).await;
    let conflict = wait_for(&api, "second", "Conflict", failed_with("Conflict")).await;
    assert!(message_of(&conflict).contains("first"), "{conflict:?}");
    assert_eq!(env.registry.stats().operation("PutLifecyclePolicy"), puts);
    // Deleting it leaves the first one's policy in ECR.
    api.delete("second", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "second").await;
    assert!(
        ecr_policy(&env)
            .await
            .unwrap()
            .contains("\"countNumber\":1")
    );
}

#[tokio::test]
async fn dry_run_previews_without_applying() {
    let env = Env::start().await;
    let ns = env.kube.namespace("lcp-dry").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    let api: Api<LifecyclePolicy> = env.api(&ns);
    create(&repos, REPO).await;
    wait_for(&repos, "app", "Repository Ready", |r| {
        r.status.as_ref().is_some_and(|s| {
            ecr_operator::api::conditions::is_ready_at(&s.common.conditions, r.metadata.generation)
        })
    })
    .await;
    push(&env, &["dev1", "dev2", "dev3"]).await;
    create(&api, &policy("dry", 1, "dryRun: true")).await;
    let lp = wait_for(&api, "dry", "Ready (dry run)", |p| {
        ready(p) && preview_counts(p) == Some((3, 2))
    })
    .await;
    assert!(!lp.status.unwrap().applied);
    assert_eq!(ecr_policy(&env).await, None);
    assert_eq!(env.registry.stats().operation("PutLifecyclePolicy"), 0);

    // Leaving dry run applies it; going back removes it again.
    api.patch(
        "dry",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"dryRun": false}})),
    )
    .await
    .unwrap();
    wait_for(&api, "dry", "applied", |p| {
        ready(p) && p.status.as_ref().is_some_and(|s| s.applied)
    })
    .await;
    assert!(ecr_policy(&env).await.is_some());
    api.patch(
        "dry",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"dryRun": true}})),
    )
    .await
    .unwrap();
    wait_for(&api, "dry", "dry again", |p| {
        ready(p) && p.status.as_ref().is_some_and(|s| !s.applied)
    })
    .await;
    assert_eq!(ecr_policy(&env).await, None);
}

#[tokio::test]
async fn invalid_rules_are_rejected_or_reported() {
    let env = Env::start().await;
    let ns = env.kube.namespace("lcp-invalid").await.unwrap();
    let api: Api<LifecyclePolicy> = env.api(&ns);
    // The CRD rejects what its rules can see, with the rule's message.
    assert_rejected(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1
kind: LifecyclePolicy
metadata: {name: bad-any}
spec:
  repositoryRef: {name: app}
  rules:
    - {rulePriority: 1, selection: {tagStatus: any, countType: imageCountMoreThan, countNumber: 1}}
    - {rulePriority: 2, selection: {tagStatus: untagged, countType: imageCountMoreThan, countNumber: 1}}
",
        "a rule with tagStatus any must have the highest rulePriority",
    )
    .await;
    assert_rejected(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1
kind: LifecyclePolicy
metadata: {name: bad-tagged}
spec:
  repositoryRef: {name: app}
  rules:
    - {rulePriority: 1, selection: {tagStatus: tagged, countType: imageCountMoreThan, countNumber: 1}}
",
        "tagStatus tagged requires tagPrefixList or tagPatternList",
    )
    .await;
    // What only ECR's validation catches (two rules with the same prefixes) is reported by the
    // controller as Invalid, before any call to ECR.
    create(
        &api,
        "apiVersion: ecr.operator.dev/v1alpha1
kind: LifecyclePolicy
metadata: {name: same-prefix}
spec:
  repositoryRef: {name: app}
  rules:
    - {rulePriority: 1, selection: {tagStatus: tagged, tagPrefixList: [v], countType: imageCountMoreThan, countNumber: 1}}
    - {rulePriority: 2, selection: {tagStatus: tagged, tagPrefixList: [v], countType: imageCountMoreThan, countNumber: 5}}
",
    )
    .await;
    let invalid = wait_for(&api, "same-prefix", "Invalid", failed_with("Invalid")).await;
    assert!(
        message_of(&invalid).starts_with("invalid lifecycle rules"),
        "{invalid:?}"
    );
    assert_eq!(env.registry.stats().operation("PutLifecyclePolicy"), 0);
}

#[tokio::test]
async fn preview_subcommand_prints_the_same_preview() {
    let env = Env::start().await;
    env.ecr()
        .create_repository()
        .repository_name("cli/app")
        .send()
        .await
        .unwrap();
    for t in ["dev1", "dev2", "dev3", "prod"] {
        testbed::images::push_image(&env.ecr(), "cli/app", t)
            .await
            .unwrap();
    }
    let dir = std::env::temp_dir().join(format!("lcp-preview-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(&file, policy("cli", 1, "")).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ecr-operator"))
        .args(["lifecycle", "preview", "--repository", "cli/app", "-f"])
        .arg(&file)
        .envs(env.moto.aws_env())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("DIGEST"), "{stdout}");
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[1..3].iter().all(|l| l.contains("dev")), "{stdout}");
    assert_eq!(
        lines[3], "2 of 4 images in cli/app would expire",
        "{stdout}"
    );

    // An invalid policy is refused before ECR is asked.
    std::fs::write(&file, "repositoryRef: {name: x}\nrules: []\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ecr-operator"))
        .args(["lifecycle", "preview", "--repository", "cli/app", "-f"])
        .arg(&file)
        .envs(env.moto.aws_env())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least one rule"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reference to a Repository of another namespace is refused with a condition (issue #9),
/// even where the Repository exists; nothing reaches ECR.
#[tokio::test]
async fn cross_namespace_reference_is_refused() {
    let env = Env::start().await;
    let mine = env.kube.namespace("lcp-mine").await.unwrap();
    let theirs = env.kube.namespace("lcp-theirs").await.unwrap();
    let repos: Api<Repository> = env.api(&theirs);
    create(&repos, REPO).await;
    wait_for(&repos, "app", "Ready", ready).await;
    let api: Api<LifecyclePolicy> = env.api(&mine);
    let yaml = policy("steal", 5, "").replace(
        "repositoryRef: {name: app}",
        &format!("repositoryRef: {{name: app, namespace: {theirs}}}"),
    );
    create(&api, &yaml).await;
    let lp = wait_for(&api, "steal", "Invalid", failed_with("Invalid")).await;
    let msg = message_of(&lp);
    assert!(
        msg.contains("cross-namespace references are refused"),
        "{msg}"
    );
    assert!(ecr_policy(&env).await.is_none());
    assert_eq!(env.registry.stats().operation("PutLifecyclePolicy"), 0);
    // Naming its own namespace is allowed, and the refused policy, older and first by name,
    // does not hold the name `app` against it.
    let own = policy("valid", 5, "").replace(
        "repositoryRef: {name: app}",
        &format!("repositoryRef: {{name: app, namespace: {mine}}}"),
    );
    create(&api, &own).await;
    let lp = wait_for(
        &api,
        "valid",
        "waiting for its Repository",
        |l: &LifecyclePolicy| message_of(l).contains("does not exist in namespace"),
    )
    .await;
    assert!(!ready(&lp));
}

/// Found by the chaos run: a policy whose reference moved to a Repository that is not Ready
/// (here: does not exist) stayed on the old repository, orphaned; and one whose put was not
/// recorded in status (a crash, or an error after the put) stayed after the object was deleted.
#[tokio::test]
async fn moved_or_unrecorded_policies_are_not_orphaned() {
    let mut env = Env::start().await;
    let ns = env.kube.namespace("lcp-orphan").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    create(&repos, REPO).await;
    wait_for(&repos, "app", "Ready", ready).await;
    let api: Api<LifecyclePolicy> = env.api(&ns);
    create(&api, &policy("keep", 5, "")).await;
    wait_for(&api, "keep", "applied", ready).await;
    assert!(ecr_policy(&env).await.is_some());

    // The reference moves to a Repository that does not exist: off the old one at once.
    api.patch(
        "keep",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"repositoryRef": {"name": "elsewhere"}}})),
    )
    .await
    .unwrap();
    wait_for(
        &api,
        "keep",
        "waiting for elsewhere",
        failed_with("RepositoryNotReady"),
    )
    .await;
    testbed::wait::until("old policy removed", common::WAIT, || async {
        ecr_policy(&env).await.is_none().then_some(())
    })
    .await
    .unwrap();

    // Back to app: applied again. Then the status forgets the put (as after a crash between
    // the put and the status write), and the object is deleted.
    api.patch(
        "keep",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"repositoryRef": {"name": "app"}}})),
    )
    .await
    .unwrap();
    wait_for(&api, "keep", "applied again", |l: &LifecyclePolicy| {
        ready(l) && l.status.as_ref().is_some_and(|s| s.applied)
    })
    .await;
    env.kill_operator();
    api.patch_status(
        "keep",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"applied": false, "repositoryName": null}})),
    )
    .await
    .unwrap();
    api.delete("keep", &DeleteParams::default()).await.unwrap();
    env.start_operator();
    wait_gone(&api, "keep").await;
    assert!(
        ecr_policy(&env).await.is_none(),
        "unrecorded policy left behind"
    );
}

/// Issue #15: archive the older dev builds (keep the newest), and expire what has been in the
/// archive for 90 days.
const ARCHIVE_POLICY: &str = "apiVersion: ecr.operator.dev/v1alpha1
kind: LifecyclePolicy
metadata: {name: cold}
spec:
  repositoryRef: {name: app}
  rules:
    - rulePriority: 1
      selection: {tagStatus: tagged, tagPrefixList: [dev], countType: imageCountMoreThan, countNumber: 1}
      action: {type: transition, targetStorageClass: archive}
    - rulePriority: 2
      selection: {tagStatus: any, storageClass: archive, countType: sinceImageTransitioned, countUnit: days, countNumber: 90}
      action: {type: expire}
";

/// Archive rules end to end: the CRD takes them, ECR (moto, which checks them as ECR does) gets
/// the policy text, and the preview sees archived images through DescribeImages' imageStatus ANY
/// and says which images would be archived, as moto's own preview of the stored policy does.
#[tokio::test]
async fn archive_rules_are_applied_and_previewed() {
    use aws_sdk_ecr::types::{ImageIdentifier, TargetStorageClass};
    use ecr_operator::api::lifecycle_policy::{LifecycleActionType, LifecycleStorageClass};

    let env = Env::start().await;
    let ns = env.kube.namespace("lcp-archive").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    let api: Api<LifecyclePolicy> = env.api(&ns);
    create(&repos, REPO).await;
    wait_for(&repos, "app", "Repository Ready", |r| {
        r.status.as_ref().is_some_and(|s| {
            ecr_operator::api::conditions::is_ready_at(&s.common.conditions, r.metadata.generation)
        })
    })
    .await;
    let digests = push(&env, &["dev1", "dev2", "dev3", "prod1"]).await;
    // prod1 is in the archive already (put there by hand, or by an earlier rule).
    env.ecr()
        .update_image_storage_class()
        .repository_name("team/app")
        .image_id(ImageIdentifier::builder().image_tag("prod1").build())
        .target_storage_class(TargetStorageClass::Archive)
        .send()
        .await
        .unwrap();

    create(&api, ARCHIVE_POLICY).await;
    let lp = wait_for(&api, "cold", "Ready with an archive preview", |p| {
        ready(p)
            && p.status
                .as_ref()
                .and_then(|s| s.preview.as_ref())
                .is_some_and(|p| p.archiving_count == 2)
    })
    .await;
    let status = lp.status.clone().unwrap();
    assert!(status.applied);
    let preview = status.preview.unwrap();
    // The archived image is counted, but only the archive rule could act on it, and it has not
    // been there for 90 days.
    assert_eq!((preview.image_count, preview.expiring_count), (4, 0));
    let ours: Vec<&str> = preview.images.iter().map(|i| i.digest.as_str()).collect();
    assert_eq!(ours.len(), 2);
    for image in &preview.images {
        assert!(digests[..3].contains(&image.digest), "{image:?}");
        assert_eq!(image.action, LifecycleActionType::Transition);
        assert_eq!(image.storage_class, LifecycleStorageClass::Standard);
        assert_eq!(image.rule_priority, 1);
    }
    assert!(
        message_of(&lp).contains("0 of 4 images would expire, 2 would be archived"),
        "{}",
        message_of(&lp)
    );

    // ECR holds the policy as ECR writes it.
    let text = ecr_policy(&env).await.expect("policy in ECR");
    assert!(
        policies_equivalent(
            &text,
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["dev"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}},{"rulePriority":2,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90},"action":{"type":"expire"}}]}"#
        ),
        "{text}"
    );
    // moto's own preview of the stored policy agrees: two dev builds archived, none expired.
    env.ecr()
        .start_lifecycle_policy_preview()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let theirs = env
        .ecr()
        .get_lifecycle_policy_preview()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let summary = theirs.summary().unwrap();
    assert_eq!(summary.expiring_image_total_count(), Some(0));
    assert_eq!(
        summary.transitioning_image_total_counts()[0].image_total_count(),
        Some(2)
    );
    for r in theirs.preview_results() {
        assert!(
            digests[..3]
                .iter()
                .any(|d| Some(d.as_str()) == r.image_digest())
        );
        assert_eq!(r.applied_rule_priority(), Some(1));
        assert_eq!(
            r.action().and_then(|a| a.r#type()),
            Some(&aws_sdk_ecr::types::ImageActionType::Transition)
        );
    }
}
