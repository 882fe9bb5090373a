//! `rss-reports`: what one ImageScanReport costs the `ecr-operator run` process (issue #17's
//! `bytes_per_report`), then the whole process at full size (`rss_mib_10k_full`). The process
//! runs with the webhook (files certificate) and leader election on, against the double and
//! moto, as `rss` starts it. Reports with 50 findings each (realistic text: ids, packages,
//! versions, scores, URIs, descriptions in the scan) are created in the double: a first tenth,
//! then the rest; `bytes_per_report` is the slope of VmRSS between the two, each read once the
//! process has settled. The reports name no image the operator manages and carry no managed-by
//! label, so the scan loop leaves them alone: that figure is what the webhook's cache holds per
//! report. Then as many Repositories (all Ready) and a fifth as many Pods running the reports'
//! images; once a deep sweep has checked every repository and a scan refresh has listed the
//! pods, VmRSS is read settled (`rss_mib_10k_full`) and its peak (`rss_peak_mib_10k_full`).

use std::time::Duration;

use ecr_operator::api::image_scan_report::ImageScanReport;
use futures::StreamExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use testbed::moto::{Moto, REGION};

use crate::Sizes;
use crate::figures::Figures;
use crate::rss::{settled_kib, write_kubeconfig};
use crate::util::{BenchError, Result, poll, workspace_root};

/// Findings per report (the realistic report).
const FINDINGS: usize = 50;

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let n = if sizes.quick { 500 } else { 10_000 };
    let moto = Moto::start().await?;
    let (server, client) = crate::util::double().await?;
    let dir = workspace_root().join("target/bench");
    let tls = dir.join("rss-reports-tls");
    std::fs::create_dir_all(&tls).map_err(|e| BenchError::io(&tls, e))?;
    let generated = ecr_operator::admission::tls::generate(&["127.0.0.1".to_string()], 1)
        .map_err(|e| BenchError::Scenario(format!("certificate: {e}")))?;
    for (file, text) in [
        ("tls.crt", &generated.cert_pem),
        ("tls.key", &generated.key_pem),
    ] {
        let path = tls.join(file);
        std::fs::write(&path, text).map_err(|e| BenchError::io(&path, e))?;
    }
    let kubeconfig = dir.join("kubeconfig-rss-reports.yaml");
    write_kubeconfig(&server, &kubeconfig)?;
    let log_path = dir.join("operator-rss-reports.log");
    let mut child = crate::rss::operator_command(&moto, &kubeconfig, &log_path, sizes)?
        .env("ECR_OPERATOR_LEADER_ELECT", "true")
        .env("ECR_OPERATOR_WEBHOOK", "true")
        .env("ECR_OPERATOR_WEBHOOK_CERTIFICATE", "files")
        .env("ECR_OPERATOR_WEBHOOK_CERT_DIR", &tls)
        .env("ECR_OPERATOR_WEBHOOK_ADDR", "127.0.0.1:0")
        .env("ECR_OPERATOR_WEBHOOK_PROBE_SECONDS", "0")
        .env("ECR_OPERATOR_ADMIN_ADDR", "127.0.0.1:0")
        // One deep sweep and scan refreshes within the scenario.
        .env("ECR_OPERATOR_SWEEP_SECONDS", "10")
        .env("ECR_OPERATOR_DEEP_SWEEP_SECONDS", "60")
        // Each refresh reads every Ready repository's images: at 10k, often enough to be seen
        // in the scenario, rarely enough not to make moto the bottleneck.
        .env(
            "ECR_OPERATOR_SCAN_REFRESH_SECONDS",
            if sizes.quick { "30" } else { "120" },
        )
        .spawn()
        .map_err(|e| BenchError::Scenario(format!("starting the operator: {e}")))?;
    let pid = child
        .id()
        .ok_or_else(|| BenchError::Scenario("the operator exited at once".into()))?;
    let watching = |server: &apiserver_double::ApiServer| {
        server.request_count("watch", "imagescanreports") > 0
            && server.request_count("watch", "repositories") > 0
    };
    poll(
        "the operator to watch reports and Repositories (webhook and controllers up)",
        Duration::from_millis(20),
        Duration::from_secs(60),
        || std::future::ready(watching(&server).then_some(())),
    )
    .await?;

    let first = n / 10;
    create_reports(&client, 0..first).await?;
    let (first_kib, _) = settled_kib(pid).await?;
    create_reports(&client, first..n).await?;
    let (all_kib, hwm_kib) = settled_kib(pid).await?;
    eprintln!(
        "   {first} → {n} reports: VmRSS {:.1} → {:.1} MiB (peak {:.1}); now {n} Repositories",
        first_kib as f64 / 1024.0,
        all_kib as f64 / 1024.0,
        hwm_kib as f64 / 1024.0
    );
    let full = full_load(&server, &client, &moto, n, pid).await;
    crate::rss::still_running(&mut child, &log_path)?;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let (full_kib, full_peak_kib) = full?;
    let per_report = (all_kib as f64 - first_kib as f64) * 1024.0 / (n - first) as f64;
    let stored = serde_json::to_vec(&report(0)?)
        .map(|v| v.len())
        .unwrap_or_default();
    eprintln!(
        "   {first} → {n} reports of {FINDINGS} findings ({stored} bytes of JSON each): VmRSS \
         {:.1} → {:.1} MiB (peak {:.1})",
        first_kib as f64 / 1024.0,
        all_kib as f64 / 1024.0,
        hwm_kib as f64 / 1024.0
    );
    figures.add(
        "bytes_per_report",
        per_report,
        "B",
        &format!(
            "VmRSS slope of `ecr-operator run` (webhook and leader election on) between {first} \
             and {n} ImageScanReports of {FINDINGS} findings ({stored} bytes of JSON each; \
             target <= 1024)"
        ),
    );
    let size = if n == 10_000 {
        String::new()
    } else {
        format!(" (measured at {n}, not scaled)")
    };
    figures.add(
        "rss_mib_10k_full",
        full_kib as f64 / 1024.0,
        "MiB",
        &format!(
            "VmRSS settled with N Repositories Ready, N reports, N/5 Pods, webhook and leader \
             election on, after a deep sweep and a scan refresh{size} (target <= 96)"
        ),
    );
    figures.add(
        "rss_peak_mib_10k_full",
        full_peak_kib as f64 / 1024.0,
        "MiB",
        &format!("VmHWM (peak) of the same process{size}"),
    );
    Ok(())
}

/// `n` Repositories to Ready and `n / 5` Pods running the reports' images; then a deep sweep
/// of every repository (moto's ListTagsForResource count) and a scan refresh that listed the
/// pods; returns (settled VmRSS, VmHWM) in KiB.
async fn full_load(
    server: &apiserver_double::ApiServer,
    client: &kube::Client,
    moto: &Moto,
    n: usize,
    pid: u32,
) -> Result<(u64, u64)> {
    crate::repos::create_repository_range(client, 0..n, 64).await?;
    let every = Duration::from_millis(500);
    crate::repos::all_ready(server, n, every, Duration::from_secs(1800)).await?;
    eprintln!("   {n} Repositories Ready; {} Pods", n / 5);
    create_pods(client, n / 5).await?;
    let lists = server.request_count("list", "pods");
    let tags = |calls: &std::collections::BTreeMap<String, u64>| {
        calls
            .get("ListTagsForResource")
            .copied()
            .unwrap_or_default()
    };
    let before = tags(&moto.calls().await?);
    poll(
        "a deep sweep of every repository and a scan refresh listing the pods",
        Duration::from_secs(1),
        Duration::from_secs(600),
        || async {
            let swept = tags(&moto.calls().await.ok()?) >= before + n as u64;
            (swept && server.request_count("list", "pods") > lists).then_some(())
        },
    )
    .await?;
    let (settled, _) = settled_kib(pid).await?;
    let (_, peak) = crate::rss::memory_kib(pid)?;
    Ok((settled, peak))
}

/// `count` Pods in the Repositories' namespace, each running the image of one report.
async fn create_pods(client: &kube::Client, count: usize) -> Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(client.clone(), crate::repos::NAMESPACE);
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let pod = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{i:05}")},
                    "spec": {"containers": [{"name": "app", "image": format!(
                        "123456789012.dkr.ecr.{REGION}.amazonaws.com/team-{}/app@sha256:{i:064x}",
                        i % 100
                    )}]}
                }))
                .map_err(|e| BenchError::Scenario(format!("pod fixture: {e}")))?;
                api.create(&PostParams::default(), &pod).await?;
                Ok(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Creates reports `range` in the double, 64 at a time.
async fn create_reports(client: &kube::Client, range: std::ops::Range<usize>) -> Result<()> {
    let api: Api<ImageScanReport> = Api::all(client.clone());
    let results: Vec<Result<()>> = futures::stream::iter(range)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &report(i)?).await?;
                Ok(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Report `i`: image `i` of one of 100 repositories, a completed scan with `FINDINGS` findings
/// of every severity, as the operator writes them.
fn report(i: usize) -> Result<ImageScanReport> {
    let severities = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"];
    let findings: Vec<Value> = (0..FINDINGS)
        .map(|f| {
            json!({
                "id": format!("CVE-2024-{:05}", (i * 7 + f * 131) % 100_000),
                "severity": severities[f % severities.len()],
                "package": format!("lib{}-{}", ["ssl", "xml2", "curl", "z", "png"][f % 5], f),
                "installedVersion": format!("1.{}.{}", f % 9, i % 17),
                "fixedVersion": format!("1.{}.{}", f % 9 + 1, 0),
                "fixAvailable": true,
                "score": 3.1 + (f % 7) as f64,
                "uri": format!("https://nvd.nist.gov/vuln/detail/CVE-2024-{:05}", (i * 7 + f * 131) % 100_000),
            })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "ImageScanReport",
        "metadata": {"name": format!("bench-report-{i:05}")},
        "spec": {
            "registryId": "123456789012", "region": REGION,
            "repositoryName": format!("team-{}/app", i % 100),
            "imageDigest": format!("sha256:{i:064x}"),
            "imageTags": [format!("v{i}")],
            "scan": {"status": "COMPLETE", "completedAt": "2026-12-01T10:00:00Z",
                "scanType": "BASIC", "vulnerabilitySourceUpdatedAt": "2026-12-01T09:00:00Z",
                "description": "The scan completed successfully."},
            "summary": {"critical": 10, "high": 10, "medium": 10, "low": 10, "informational": 10},
            "findings": findings,
            "truncated": false
        }
    }))
    .map_err(|e| BenchError::Scenario(format!("report fixture: {e}")))
}
