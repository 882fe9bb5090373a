//! ImageScanReports end to end: images pushed to a managed repository in moto, realistic
//! findings injected, reports appearing, capped, following tags and image deletion.

mod common;

use common::{Env, create, is_ready, wait_for, wait_gone};
use ecr_operator::api::Repository;
use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::api::scan_policy::Severity;
use ecr_operator::controllers::image_scan_report::{MAX_FINDINGS, report_name};
use ecr_operator::registry::Registry;
use kube::api::Api;
use serde_json::{Value, json};
use testbed::images::push_image;

/// Each test has its own repository: tests sharing one real API server must not write the same
/// report (named by repository and digest, and the images of one tag have one digest).
const REPO: &str = "team/scanned";
const EVENTS_REPO: &str = "team/scanned-events";
const POLICY_REPO: &str = "team/scanned-policy";

fn basic_finding(id: &str, severity: &str, package: &str) -> Value {
    json!({
        "name": id,
        "uri": format!("https://nvd.nist.gov/vuln/detail/{id}"),
        "severity": severity,
        "attributes": [
            {"key": "package_name", "value": package},
            {"key": "package_version", "value": "1.2.3"},
            {"key": "CVSS3_SCORE", "value": "9.8"},
        ],
    })
}

fn basic_result(repo: &str, tag: &str, findings: Vec<Value>, counts: Value) -> Value {
    json!({
        "registryId": "123456789012",
        "repositoryName": repo,
        "imageId": {"imageTag": tag},
        "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
        "imageScanFindings": {
            "imageScanCompletedAt": "2026-01-02T03:04:05Z",
            "vulnerabilitySourceUpdatedAt": "2026-01-01T00:00:00Z",
            "findings": findings,
            "findingSeverityCounts": counts,
        },
    })
}

fn enhanced_result(repo: &str, tag: &str) -> Value {
    json!({
        "registryId": "123456789012",
        "repositoryName": repo,
        "imageId": {"imageTag": tag},
        "imageScanStatus": {"status": "ACTIVE", "description": "Continuous scan is selected."},
        "imageScanFindings": {
            "imageScanCompletedAt": "2026-01-02T03:04:05Z",
            "vulnerabilitySourceUpdatedAt": "2026-01-01T00:00:00Z",
            "enhancedFindings": [{
                "awsAccountId": "123456789012",
                "description": "xz backdoor",
                "findingArn": "arn:aws:inspector2:us-east-1:123456789012:finding/abc",
                "packageVulnerabilityDetails": {
                    "vulnerabilityId": "CVE-2024-3094",
                    "source": "NVD",
                    "sourceUrl": "https://nvd.nist.gov/vuln/detail/CVE-2024-3094",
                    "vulnerablePackages": [{
                        "name": "xz-utils",
                        "version": "5.6.0",
                        "fixedInVersion": "5.6.1",
                        "packageManager": "OS",
                    }],
                },
                "score": 10.0,
                "severity": "CRITICAL",
                "fixAvailable": "YES",
                "status": "ACTIVE",
                "title": "CVE-2024-3094 - xz-utils",
                "type": "PACKAGE_VULNERABILITY",
            }],
            "findingSeverityCounts": {"CRITICAL": 1},
        },
    })
}

async fn start_scan(env: &Env, repo: &str, digest: &str) {
    env.ecr()
        .start_image_scan()
        .repository_name(repo)
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(digest)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartImageScan: {e:?}"));
}

#[tokio::test]
async fn reports_follow_scans_tags_and_deletions() {
    let env = Env::start().await;
    let ns = env.kube.namespace("scan").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    create(
        &repos,
        &format!(
            "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {{name: scanned}}\nspec: {{repositoryName: {REPO}, deletionPolicy: Delete, forceDelete: true}}\n"
        ),
    )
    .await;
    wait_for(&repos, "scanned", "repository Ready", is_ready).await;
    let reports: Api<ImageScanReport> = Api::all(env.kube.client());
    let ecr = env.ecr();

    // Basic scan: one CRITICAL and one HIGH.
    let basic = push_image(&ecr, REPO, "v1").await.unwrap();
    env.moto
        .inject_scan_findings(&json!({"results": [basic_result(REPO, 
            "v1",
            vec![
                basic_finding("CVE-2024-0002", "HIGH", "openssl"),
                basic_finding("CVE-2024-0001", "CRITICAL", "glibc"),
            ],
            json!({"CRITICAL": 1, "HIGH": 1}),
        )], "region": "us-east-1"}))
        .await
        .unwrap();
    // Enhanced scan shape on another image.
    let enhanced = push_image(&ecr, REPO, "v2").await.unwrap();
    env.moto
        .inject_scan_findings(
            &json!({"results": [enhanced_result(REPO, "v2")], "region": "us-east-1"}),
        )
        .await
        .unwrap();
    // More findings than a report keeps: LOWs first in ECR's order, one CRITICAL last.
    let big = push_image(&ecr, REPO, "big").await.unwrap();
    let mut many: Vec<Value> = (0..MAX_FINDINGS + 50)
        .map(|i| basic_finding(&format!("CVE-2023-{i:05}"), "LOW", "zlib"))
        .collect();
    many.push(basic_finding("CVE-2024-9999", "CRITICAL", "curl"));
    many.push(basic_finding("CVE-2024-8888", "HIGH", "curl"));
    env.moto
        .inject_scan_findings(&json!({"results": [basic_result(REPO, 
            "big",
            many,
            json!({"CRITICAL": 1, "HIGH": 1, "LOW": MAX_FINDINGS + 50}),
        )], "region": "us-east-1"}))
        .await
        .unwrap();

    // Before any scan: reports exist, unscanned.
    let basic_name = report_name(testbed::moto::ACCOUNT, "", REPO, &basic);
    let r = wait_for(&reports, &basic_name, "unscanned report", |_| true).await;
    assert_eq!(r.spec.scan.status, "NOT_SCANNED");

    for d in [&basic, &enhanced, &big] {
        start_scan(&env, REPO, d).await;
    }

    let r = wait_for(&reports, &basic_name, "basic scan report", |r| {
        r.spec.scan.status == "COMPLETE"
    })
    .await;
    assert_eq!(r.spec.repository_name, REPO);
    assert_eq!(r.spec.image_digest, basic);
    assert_eq!(r.spec.image_tags, vec!["v1"]);
    assert_eq!((r.spec.summary.critical, r.spec.summary.high), (1, 1));
    assert!(!r.spec.truncated);
    assert_eq!(r.spec.findings.len(), 2);
    assert_eq!(r.spec.findings[0].id, "CVE-2024-0001");
    assert_eq!(r.spec.findings[0].severity, Severity::Critical);
    assert_eq!(r.spec.findings[0].package.as_deref(), Some("glibc"));
    assert_eq!(
        r.spec.findings[0].installed_version.as_deref(),
        Some("1.2.3")
    );
    assert_eq!(r.spec.scan.scan_type.as_deref(), Some("BASIC"));
    assert!(
        r.spec
            .scan
            .completed_at
            .as_deref()
            .is_some_and(|t| t.starts_with("2026-01-02T03:04:05"))
    );
    assert!(r.spec.scan.vulnerability_source_updated_at.is_some());
    assert_eq!(
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("ecr.operator.dev/managed-by"))
            .map(String::as_str),
        Some("ecr-operator")
    );

    let e = wait_for(
        &reports,
        &report_name(testbed::moto::ACCOUNT, "", REPO, &enhanced),
        "enhanced report",
        |r| r.spec.scan.status == "ACTIVE",
    )
    .await;
    assert_eq!(e.spec.summary.critical, 1);
    assert_eq!(e.spec.scan.scan_type.as_deref(), Some("ENHANCED"));
    let f = &e.spec.findings[0];
    assert_eq!(f.id, "CVE-2024-3094");
    assert_eq!(f.package.as_deref(), Some("xz-utils"));
    assert_eq!(f.installed_version.as_deref(), Some("5.6.0"));
    assert_eq!(f.fixed_version.as_deref(), Some("5.6.1"));
    assert_eq!(f.fix_available, Some(true));
    assert_eq!(f.score, Some(10.0));

    let b = wait_for(
        &reports,
        &report_name(testbed::moto::ACCOUNT, "", REPO, &big),
        "capped report",
        |r| r.spec.scan.status == "COMPLETE",
    )
    .await;
    assert!(b.spec.truncated);
    assert_eq!(b.spec.findings.len(), MAX_FINDINGS);
    assert_eq!(b.spec.findings[0].id, "CVE-2024-9999");
    assert_eq!(b.spec.findings[1].id, "CVE-2024-8888");
    assert_eq!(b.spec.summary.low, (MAX_FINDINGS + 50) as i64);
    assert_eq!((b.spec.summary.critical, b.spec.summary.high), (1, 1));

    // A new tag on the same image updates its report on the next refresh.
    let manifest = ecr
        .batch_get_image()
        .repository_name(REPO)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let body = manifest.images()[0].image_manifest().unwrap().to_string();
    ecr.put_image()
        .repository_name(REPO)
        .image_tag("stable")
        .image_manifest(body)
        .send()
        .await
        .unwrap();
    wait_for(&reports, &basic_name, "report to follow the new tag", |r| {
        r.spec.image_tags == vec!["stable", "v1"]
    })
    .await;

    // Deleting the image removes its report, and only its report.
    ecr.batch_delete_image()
        .repository_name(REPO)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&big)
                .build(),
        )
        .send()
        .await
        .unwrap();
    wait_gone(
        &reports,
        &report_name(testbed::moto::ACCOUNT, "", REPO, &big),
    )
    .await;
    let left = reports.list(&env.scoped()).await.unwrap();
    assert_eq!(
        left.items.len(),
        2,
        "{:?}",
        left.items
            .iter()
            .map(|r| &r.spec.image_tags)
            .collect::<Vec<_>>()
    );

    // A refresh where nothing changed writes nothing and reads findings only for the image
    // whose DescribeImages entry cannot tell (the enhanced scan: ACTIVE, no summary).
    let stats = env.registry.stats();
    let (writes, images, scans) = (
        stats.writes(),
        stats.operation("DescribeImages"),
        stats.operation("DescribeImageScanFindings"),
    );
    testbed::wait::until("three more refreshes", common::WAIT, || async {
        (stats.operation("DescribeImages") >= images + 3).then_some(())
    })
    .await
    .unwrap();
    let refreshes = stats.operation("DescribeImages") - images;
    let reads = stats.operation("DescribeImageScanFindings") - scans;
    assert!(
        reads <= refreshes + 1,
        "{reads} findings reads in {refreshes} refreshes"
    );
    assert_eq!(stats.writes(), writes);
}

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn pod_yaml(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - {{name: app, image: '{image}'}}\n"
    )
}

/// With a scan event queue and a refresh interval of an hour, only ECR's events can make the
/// reports follow: a scan on push, then a second scan of the same image.
#[tokio::test]
async fn scan_events_refresh_reports_at_once() {
    let mut env = Env::start_with(ecr_operator::controllers::Config {
        scan_refresh_interval: std::time::Duration::from_secs(3600),
        ..common::test_config()
    })
    .await;
    env.kill_operator();
    env.scan_queue = Some(env.moto.scan_event_queue("ecr-scan-events").await.unwrap());
    env.start_operator();

    let ns = env.kube.namespace("events").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    create(
        &repos,
        &format!(
            "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {{name: scanned}}\nspec: {{repositoryName: {EVENTS_REPO}, scanOnPush: true, deletionPolicy: Delete, forceDelete: true}}\n"
        ),
    )
    .await;
    wait_for(&repos, "scanned", "repository Ready", is_ready).await;
    let reports: Api<ImageScanReport> = Api::all(env.kube.client());

    // Results are bound when the scan is announced, so they go in before the push.
    env.moto
        .inject_scan_findings(&json!({"results": [basic_result(EVENTS_REPO, 
            "v1",
            vec![basic_finding("CVE-2024-0001", "CRITICAL", "glibc")],
            json!({"CRITICAL": 1}),
        )], "region": "us-east-1"}))
        .await
        .unwrap();
    let digest = push_image(&env.ecr(), EVENTS_REPO, "v1").await.unwrap();
    let name = report_name(testbed::moto::ACCOUNT, "", EVENTS_REPO, &digest);
    let first = wait_for(&reports, &name, "report from the scan-on-push event", |r| {
        r.spec.scan.status == "COMPLETE"
    })
    .await;
    assert_eq!(first.spec.summary.critical, 1);
    assert_eq!(first.spec.findings[0].id, "CVE-2024-0001");

    // The same image scanned again, now with a HIGH finding only.
    let mut second = basic_result(
        EVENTS_REPO,
        "v1",
        vec![basic_finding("CVE-2025-0002", "HIGH", "openssl")],
        json!({"HIGH": 1}),
    );
    second["imageScanFindings"]["imageScanCompletedAt"] = json!("2026-02-03T04:05:06Z");
    env.moto
        .inject_scan_findings(&json!({"results": [second], "region": "us-east-1"}))
        .await
        .unwrap();
    env.moto.rescan(EVENTS_REPO, &digest).await.unwrap();
    let r = wait_for(&reports, &name, "report to follow the second scan", |r| {
        r.spec.summary.high == 1
    })
    .await;
    assert_eq!(r.spec.summary.critical, 0);
    assert_eq!(r.spec.findings.len(), 1);
    assert_eq!(r.spec.findings[0].id, "CVE-2025-0002");
    assert_ne!(r.spec.scan.completed_at, first.spec.scan.completed_at);
    // Both events were taken off the queue once handled.
    assert!(env.registry.stats().operation("DeleteMessageBatch") >= 2);
}

/// Images a ScanPolicy wants scanned get one StartImageScan; ECR images that pods run from
/// repositories no Repository manages get reports too, removed when no pod runs them.
#[tokio::test]
async fn policy_starts_scans_and_pod_images_get_reports() {
    let env = Env::start().await;
    let ecr = env.ecr();
    // An unmanaged repository, as a platform team's base images would be.
    ecr.create_repository()
        .repository_name("base/runtime")
        .send()
        .await
        .unwrap();
    let base = push_image(&ecr, "base/runtime", "1.0").await.unwrap();
    let unused = push_image(&ecr, "base/runtime", "0.9").await.unwrap();

    let ns = env.kube.namespace("policy").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    create(
        &repos,
        &format!(
            "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {{name: app}}\nspec: {{repositoryName: {POLICY_REPO}, deletionPolicy: Delete, forceDelete: true}}\n"
        ),
    )
    .await;
    wait_for(&repos, "app", "repository Ready", is_ready).await;
    let app = push_image(&ecr, POLICY_REPO, "v1").await.unwrap();
    let reports: Api<ImageScanReport> = Api::all(env.kube.client());
    let app_name = report_name(testbed::moto::ACCOUNT, "", POLICY_REPO, &app);
    wait_for(&reports, &app_name, "unscanned report", |r| {
        r.spec.scan.status == "NOT_SCANNED"
    })
    .await;

    // A pod running the unmanaged image by tag: its report appears, unscanned (no policy yet).
    let pods: Api<k8s_openapi::api::core::v1::Pod> = env.api(&ns);
    create(
        &pods,
        &pod_yaml("web", &format!("{REGISTRY}/base/runtime:1.0")),
    )
    .await;
    let base_name = report_name(testbed::moto::ACCOUNT, "", "base/runtime", &base);
    let r = wait_for(&reports, &base_name, "report of the pod's image", |r| {
        r.spec.scan.status == "NOT_SCANNED"
    })
    .await;
    assert_eq!(r.spec.image_tags, vec!["1.0"]);
    assert_eq!(r.spec.registry_id, "123456789012");

    // Policy: scan the team's and the base images ("team" has no wildcard: "contains").
    let policies: Api<ecr_operator::api::ScanPolicy> = Api::all(env.kube.client());
    create(
        &policies,
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: ScanPolicy\nmetadata: {name: scan-all}\nspec:\n  scanType: BASIC\n  rules:\n  - scanFrequency: SCAN_ON_PUSH\n    repositoryFilters: [{filter: team}, {filter: 'base/*'}]\n",
    )
    .await;
    for name in [&app_name, &base_name] {
        let r = wait_for(&reports, name, "report of the scan policy started", |r| {
            r.spec.scan.status == "COMPLETE"
        })
        .await;
        // moto's one finding for a scan nobody injected results for.
        assert_eq!(r.spec.summary.high, 1, "{name}");
    }
    assert!(
        reports
            .get_opt(&report_name(
                testbed::moto::ACCOUNT,
                "",
                "base/runtime",
                &unused
            ))
            .await
            .unwrap()
            .is_none(),
        "no pod runs base/runtime:0.9"
    );
    // One StartImageScan per image, however many refreshes pass.
    let stats = env.registry.stats();
    let images = stats.operation("DescribeImages");
    testbed::wait::until("three more refreshes", common::WAIT, || async {
        (stats.operation("DescribeImages") >= images + 6).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        env.moto.calls().await.unwrap().get("StartImageScan"),
        Some(&2)
    );

    // The pod goes: so does the report of its image, and only that one.
    pods.delete("web", &Default::default()).await.unwrap();
    wait_gone(&reports, &base_name).await;
    assert!(reports.get_opt(&app_name).await.unwrap().is_some());
}

/// A pod naming an image of a registry the operator neither manages repositories in nor is told
/// to scan makes it call nothing there (any pod in any namespace could otherwise send it into
/// every account its IAM role reaches); a ScanPolicy naming the registry opens it.
#[tokio::test]
async fn pods_reach_only_registries_the_operator_manages_or_is_told_to_scan() {
    const FOREIGN: &str = "999999999999";
    let env = Env::start().await;
    let ns = env.kube.namespace("foreign").await.unwrap();
    let repos: Api<Repository> = env.api(&ns);
    // A managed repository: every refresh reads its images, which counts the refreshes.
    create(&repos, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: counted}, spec: {repositoryName: team/counted}}").await;
    wait_for(&repos, "counted", "Ready", is_ready).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = env.api(&ns);
    let image = format!("{FOREIGN}.dkr.ecr.us-east-1.amazonaws.com/foreign/thing:1");
    create(&pods, &pod_yaml("intruder", &image)).await;
    let stats = env.registry.stats();
    let not_found = || {
        stats
            .snapshot()
            .get(&("DescribeImages", "not_found"))
            .copied()
            .unwrap_or(0)
    };
    let images = stats.operation("DescribeImages");
    testbed::wait::until("three more refreshes", common::WAIT, || async {
        (stats.operation("DescribeImages") >= images + 3).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(not_found(), 0, "no ECR call for the foreign registry");

    let policies: Api<ecr_operator::api::ScanPolicy> = Api::all(env.kube.client());
    create(
        &policies,
        &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: ScanPolicy, metadata: {{name: foreign}}, spec: {{registryIds: ['{FOREIGN}']}}}}"),
    )
    .await;
    // Now the operator looks the image up there (moto has no such repository: not found).
    testbed::wait::until("a lookup in the named registry", common::WAIT, || async {
        (not_found() > 0).then_some(())
    })
    .await
    .unwrap();
}
