//! ImageScanReports of Repositories in a RegistryTarget, on the real API server and moto: the
//! images are read through the target's client (account B, another region), the report names
//! B's account and region, the own registry's repository of the same name keeps its own
//! reports, and while the target is gone B's reports stay as they are.

mod common;

use common::targets::{create_target, grant_targets, push_image_as, registry_of};
use common::{Env, create, is_ready, wait_for};
use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::api::{RegistryTarget, Repository};
use ecr_operator::controllers::image_scan_report::report_name;
use ecr_operator::registry::Registry;
use kube::api::{Api, DeleteParams};

const B: &str = "222222222222";
const REGION: &str = "eu-west-1";
const REPO: &str = "shared/scanned";

fn repository(name: &str, target: Option<&str>) -> String {
    let registry_ref = target
        .map(|t| format!(", registryRef: {{name: {t}}}"))
        .unwrap_or_default();
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {{name: {name}}}\n\
         spec: {{repositoryName: {REPO}{registry_ref}}}\n"
    )
}

#[tokio::test]
async fn reports_of_a_target_repository_are_read_through_the_target() {
    let env = Env::start().await;
    let target = create_target(&env, B, REGION, "ecr-operator").await;
    grant_targets(&env, &format!("[{target}]"), "{selector: {}}").await;
    let ns = env.kube.namespace("scan-targets").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    create(&repos, &repository("own", None)).await;
    create(&repos, &repository("there", Some(&target))).await;
    for r in ["own", "there"] {
        wait_for(&repos, r, "Repository Ready", is_ready).await;
    }
    let in_b = push_image_as(&env, B, REGION, REPO, "b1").await;
    let in_own = testbed::images::push_image(&env.ecr(), REPO, "own1")
        .await
        .unwrap();
    // The image really is B's only: B's registry has it, the own one does not.
    let b = registry_of(&env, B, REGION).await;
    let digests = |images: Vec<ecr_operator::registry::ImageInfo>| {
        images.into_iter().map(|i| i.digest).collect::<Vec<_>>()
    };
    assert_eq!(
        digests(b.list_images(REPO).await.unwrap()),
        vec![in_b.clone()]
    );
    assert_eq!(
        digests(env.registry.list_images(REPO).await.unwrap()),
        vec![in_own.clone()]
    );

    let reports: Api<ImageScanReport> = Api::all(env.kube.client());
    let b_name = report_name(B, REGION, REPO, &in_b);
    let r = wait_for(&reports, &b_name, "B's image reported", |_| true).await;
    assert_eq!(r.spec.registry_id, B);
    assert_eq!(r.spec.region, REGION);
    assert_eq!(r.spec.repository_name, REPO);
    assert_eq!(r.spec.image_digest, in_b);
    assert_eq!(r.spec.image_tags, ["b1"]);
    assert_eq!(r.spec.scan.status, "NOT_SCANNED");
    // The own registry's repository of the same name: its image, under the own account (the
    // test operator is not told its region), and never B's image under the own account.
    let own_name = report_name(testbed::moto::ACCOUNT, "", REPO, &in_own);
    let own = wait_for(&reports, &own_name, "own image reported", |_| true).await;
    assert_eq!(own.spec.registry_id, testbed::moto::ACCOUNT);
    let b_as_own = report_name(testbed::moto::ACCOUNT, "", REPO, &in_b);
    assert!(reports.get_opt(&b_as_own).await.unwrap().is_none());

    // The target goes: B cannot be read, its reports stay through later passes (shown by a
    // new own image reported after the deletion).
    let targets: Api<RegistryTarget> = Api::all(env.kube.client());
    targets
        .delete(&target, &DeleteParams::default())
        .await
        .unwrap();
    common::wait_gone(&targets, &target).await;
    wait_for(&repos, "there", "TargetNotReady", |r: &Repository| {
        !is_ready(r)
    })
    .await;
    let later = testbed::images::push_image(&env.ecr(), REPO, "own2")
        .await
        .unwrap();
    let later_name = report_name(testbed::moto::ACCOUNT, "", REPO, &later);
    wait_for(&reports, &later_name, "a pass after the deletion", |_| true).await;
    let kept = reports.get_opt(&b_name).await.unwrap();
    assert!(kept.is_some(), "B's report kept while B cannot be read");
}
