//! Scan report lag: every controller in this process (as `ecr-operator run` starts them), with
//! the sweep interval (the ImageScanReport loop's poll interval) set to P. For each sample an
//! image is pushed, its unscanned report awaited (so the phase of the refresh loop is known),
//! then, at a different point of the cycle for each sample, the scan runs in ECR
//! (StartImageScan completes at once in moto) and the time until the report shows the
//! completed scan is measured. The figure is the worst sample; it should not exceed P.
//!
//! Then the worst case of polling, which those samples never hit: the scan placed right after
//! a refresh (as soon as the refresh has written the image's unscanned report), so the report
//! waits a whole interval plus the next refresh's work (`scan_report_lag_poll_max_s`).
//!
//! Last, the largest report: one image whose scan has 5,000 findings (injected into moto
//! before the scan, as the tests do); the report the operator writes is read back from the API
//! server and its serialized JSON, what etcd stores for a custom resource, is the figure
//! (`largest_report_kib`). The report must say `truncated`, hold the 200 most severe findings
//! (highest score first within a severity) and count all 5,000 in its summary, or the scenario
//! fails.

use std::time::{Duration, Instant};

use ecr_operator::controllers::image_scan_report::{MAX_FINDINGS, report_name};
use ecr_operator::controllers::{self};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use testbed::images::push_image;
use testbed::moto::Moto;

use crate::Sizes;
use crate::figures::Figures;
use crate::repos::{GROUP, NAMESPACE, Operator};
use crate::util::{self, BenchError, Result, poll};

const REPO: &str = "bench/scanned";
/// The findings of the largest report's scan (trivy-operator #757: reports that outgrow etcd).
const BIG_FINDINGS: usize = 5000;

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let moto = Moto::start().await?;
    let (server, client) = util::double().await?;
    let interval = Duration::from_secs(sizes.scan_poll_seconds);
    let config = controllers::Config {
        cluster_id: "bench".to_string(),
        sweep_interval: interval,
        scan_refresh_interval: interval,
        deep_sweep_interval: Duration::from_secs(3600),
        concurrency: sizes.concurrency,
        operator_namespace: "ecr-operator-system".to_string(),
        ..controllers::Config::default()
    };
    let op = Operator::start(&client, &moto, config, true);
    let repo: ecr_operator::api::Repository = serde_json::from_value(serde_json::json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "scanned", "namespace": NAMESPACE},
        "spec": {"repositoryName": REPO}
    }))
    .map_err(|e| BenchError::Scenario(format!("fixture: {e}")))?;
    Api::<ecr_operator::api::Repository>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &repo)
        .await?;
    crate::repos::all_ready(
        &server,
        1,
        Duration::from_millis(20),
        Duration::from_secs(60),
    )
    .await?;

    let ecr = moto.ecr_client();
    let report = |name: &str| server.get_object(GROUP, "imagescanreports", None, name);
    let mut lags = Vec::new();
    let timeout = interval * 3 + Duration::from_secs(30);
    for i in 0..sizes.scan_samples {
        let digest = push_image(&ecr, REPO, &format!("s{i}"))
            .await
            .map_err(|e| BenchError::ecr("PutImage", e))?;
        let name = report_name(testbed::moto::ACCOUNT, "", REPO, &digest);
        poll(
            "the unscanned report",
            Duration::from_millis(5),
            timeout,
            || std::future::ready(report(&name).map(|_| ())),
        )
        .await?;
        // A refresh just ran: place this sample's scan at its own point of the cycle.
        let phase = interval.mul_f64((i as f64 + 0.5) / sizes.scan_samples as f64);
        tokio::time::sleep(phase).await;
        let scanned = Instant::now();
        start_scan(&ecr, &digest).await?;
        poll(
            "the report to show the scan",
            Duration::from_millis(5),
            timeout,
            || {
                let done = report(&name).is_some_and(|r| r["spec"]["scan"]["status"] == "COMPLETE");
                std::future::ready(done.then_some(()))
            },
        )
        .await?;
        let lag = scanned.elapsed();
        eprintln!(
            "   sample {i}: scan at {:.0}% of the cycle, report after {:.3} s",
            100.0 * phase.as_secs_f64() / interval.as_secs_f64(),
            lag.as_secs_f64()
        );
        lags.push(lag);
    }

    // The worst case: the scan right after the refresh that wrote the unscanned report.
    let phase = Instant::now();
    let mut worst = Vec::new();
    for i in 0..sizes.scan_worst_samples {
        let digest = push_image(&ecr, REPO, &format!("w{i}"))
            .await
            .map_err(|e| BenchError::ecr("PutImage", e))?;
        let name = report_name(testbed::moto::ACCOUNT, "", REPO, &digest);
        poll(
            "the unscanned report",
            Duration::from_millis(5),
            timeout,
            || std::future::ready(report(&name).map(|_| ())),
        )
        .await?;
        let scanned = Instant::now();
        start_scan(&ecr, &digest).await?;
        poll(
            "the report to show the scan",
            Duration::from_millis(5),
            timeout,
            || {
                let done = report(&name).is_some_and(|r| r["spec"]["scan"]["status"] == "COMPLETE");
                std::future::ready(done.then_some(()))
            },
        )
        .await?;
        let lag = scanned.elapsed();
        eprintln!(
            "   worst-case sample {i}: scan right after a refresh, report after {:.3} s",
            lag.as_secs_f64()
        );
        worst.push(lag);
    }

    eprintln!(
        "   (worst-case samples: {:.1} s)",
        phase.elapsed().as_secs_f64()
    );
    let phase = Instant::now();
    let big = largest_report(&moto, &ecr, &report, timeout).await?;
    eprintln!(
        "   (largest report: {:.1} s)",
        phase.elapsed().as_secs_f64()
    );
    op.stop().await?;
    event_lag(&moto, sizes.scan_event_samples, figures).await?;
    let max = lags.iter().max().copied().unwrap_or_default();
    let mean = lags.iter().map(Duration::as_secs_f64).sum::<f64>() / lags.len().max(1) as f64;
    figures.add(
        "scan_report_lag_s",
        max.as_secs_f64(),
        "s",
        &format!(
            "worst of {} scans, poll interval {} s (target <= poll interval)",
            lags.len(),
            interval.as_secs()
        ),
    );
    figures.add(
        "scan_report_lag_mean_s",
        mean,
        "s",
        "mean of the same samples",
    );
    figures.add(
        "scan_report_lag_poll_max_s",
        worst
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
        "s",
        &format!(
            "worst of {} scans placed right after a refresh (target <= poll interval + 1 = {} s)",
            worst.len(),
            interval.as_secs() + 1
        ),
    );
    figures.add(
        "scan_poll_interval_s",
        interval.as_secs_f64(),
        "s",
        "the configured poll (sweep) interval",
    );
    figures.add(
        "largest_report_kib",
        big as f64 / 1024.0,
        "KiB",
        &format!(
            "the stored ImageScanReport of an image with {BIG_FINDINGS} findings, as JSON \
             (target <= 64)"
        ),
    );
    Ok(())
}

/// The EventBridge path (`scan_report_lag_event_p99_s`): a fresh operator reading scan events
/// from an SQS queue that an EventBridge rule feeds (as docs/install.md sets it up), its
/// scheduled refresh an hour away, so that only an event can bring a scan into a report. Each
/// sample pushes an image and scans it; the lag runs from StartImageScan (moto completes the
/// scan at once and announces it) to the report showing the completed scan.
async fn event_lag(moto: &Moto, samples: usize, figures: &mut Figures) -> Result<()> {
    const EVENTS_REPO: &str = "bench/events";
    let queue = moto.scan_event_queue("bench-scan-events").await?;
    let (server, client) = util::double().await?;
    let config = controllers::Config {
        cluster_id: "bench".to_string(),
        scan_refresh_interval: Duration::from_secs(3600),
        deep_sweep_interval: Duration::from_secs(3600),
        operator_namespace: "ecr-operator-system".to_string(),
        ..controllers::Config::default()
    };
    let op = Operator::start_reading_events(&client, moto, config, &queue);
    let repo: ecr_operator::api::Repository = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "events", "namespace": NAMESPACE},
        "spec": {"repositoryName": EVENTS_REPO}
    }))
    .map_err(|e| BenchError::Scenario(format!("fixture: {e}")))?;
    Api::<ecr_operator::api::Repository>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &repo)
        .await?;
    let timeout = Duration::from_secs(60);
    crate::repos::all_ready(&server, 1, Duration::from_millis(20), timeout).await?;
    let ecr = moto.ecr_client();
    let report = |name: &str| server.get_object(GROUP, "imagescanreports", None, name);
    let mut lags = Vec::new();
    for i in 0..samples {
        let digest = push_image(&ecr, EVENTS_REPO, &format!("e{i}"))
            .await
            .map_err(|e| BenchError::ecr("PutImage", e))?;
        let name = report_name(testbed::moto::ACCOUNT, "", EVENTS_REPO, &digest);
        let scanned = Instant::now();
        start_scan_in(&ecr, EVENTS_REPO, &digest).await?;
        poll(
            "the report to show the scan, from its event",
            Duration::from_millis(5),
            timeout,
            || {
                let done = report(&name).is_some_and(|r| r["spec"]["scan"]["status"] == "COMPLETE");
                std::future::ready(done.then_some(()))
            },
        )
        .await?;
        lags.push(scanned.elapsed());
    }
    op.stop().await?;
    lags.sort();
    let p99 = util::quantile(&lags, 0.99);
    eprintln!(
        "   scan events: {} scans, report after p50 {:.3} s, max {:.3} s",
        lags.len(),
        util::quantile(&lags, 0.5).as_secs_f64(),
        lags.last().copied().unwrap_or_default().as_secs_f64()
    );
    figures.add(
        "scan_report_lag_event_p99_s",
        p99.as_secs_f64(),
        "s",
        &format!(
            "{} scans announced through EventBridge and SQS, the scheduled refresh an hour away \
             (target <= 2)",
            lags.len()
        ),
    );
    Ok(())
}

async fn start_scan(ecr: &aws_sdk_ecr::Client, digest: &str) -> Result<()> {
    start_scan_in(ecr, REPO, digest).await
}

async fn start_scan_in(ecr: &aws_sdk_ecr::Client, repository: &str, digest: &str) -> Result<()> {
    ecr.start_image_scan()
        .repository_name(repository)
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(digest)
                .build(),
        )
        .send()
        .await
        .map_err(|e| BenchError::ecr("StartImageScan", e))?;
    Ok(())
}

/// The severity and CVSS score of finding `i` of the big scan: 25 CRITICAL, 250 HIGH, the rest
/// MEDIUM, LOW and INFORMATIONAL, interleaved (ECR's order is not by severity), scores varying
/// within a severity.
fn big_finding_severity(i: usize) -> (&'static str, f64) {
    let spread = ((i * 37) % 100) as f64 / 100.0;
    if i % 200 == 7 {
        ("CRITICAL", 9.0 + spread)
    } else if i % 20 == 3 {
        ("HIGH", 7.0 + 2.0 * spread)
    } else if i.is_multiple_of(3) {
        ("MEDIUM", 4.0 + 3.0 * spread)
    } else if i % 3 == 1 {
        ("LOW", 0.1 + 3.9 * spread)
    } else {
        ("INFORMATIONAL", 0.0)
    }
}

/// One basic-scan finding as ECR returns it (name, URI, description, package attributes).
fn big_finding(i: usize) -> Value {
    let (severity, score) = big_finding_severity(i);
    let id = format!("CVE-20{:02}-{:05}", 10 + i % 15, 10_000 + i);
    let package = format!(
        "lib{}-{}",
        ["ssl", "xml2", "curl", "png", "sqlite3"][i % 5],
        i % 97
    );
    let mut attributes = vec![
        json!({"key": "package_name", "value": package}),
        json!({"key": "package_version", "value": format!("1.{}.{}-{}ubuntu0.{}", i % 9, i % 31, i % 4, i % 7)}),
    ];
    if score > 0.0 {
        attributes.push(json!({"key": "CVSS3_SCORE", "value": format!("{score:.1}")}));
        attributes.push(
            json!({"key": "CVSS3_VECTOR", "value": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}),
        );
    }
    json!({
        "name": id,
        "uri": format!("https://security-tracker.debian.org/tracker/{id}"),
        "description": format!("A flaw was found in {package}: a crafted input may cause an out-of-bounds read or write, leading to a crash or possibly code execution ({i})."),
        "severity": severity,
        "attributes": attributes,
    })
}

/// The largest report: an image with [`BIG_FINDINGS`] findings; its report, checked, and its
/// size in bytes as stored.
async fn largest_report(
    moto: &Moto,
    ecr: &aws_sdk_ecr::Client,
    report: &impl Fn(&str) -> Option<Value>,
    timeout: Duration,
) -> Result<usize> {
    let tag = "big";
    let digest = push_image(ecr, REPO, tag)
        .await
        .map_err(|e| BenchError::ecr("PutImage", e))?;
    let findings: Vec<Value> = (0..BIG_FINDINGS).map(big_finding).collect();
    let mut counts = std::collections::BTreeMap::<&str, u64>::new();
    for i in 0..BIG_FINDINGS {
        *counts.entry(big_finding_severity(i).0).or_default() += 1;
    }
    moto.inject_scan_findings(&json!({
        "region": "us-east-1",
        "results": [{
            "registryId": testbed::moto::ACCOUNT,
            "repositoryName": REPO,
            "imageId": {"imageTag": tag},
            "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
            "imageScanFindings": {
                "imageScanCompletedAt": chrono::Utc::now().to_rfc3339(),
                "vulnerabilitySourceUpdatedAt": chrono::Utc::now().to_rfc3339(),
                "findings": findings,
                "findingSeverityCounts": counts,
            },
        }],
    }))
    .await?;
    let name = report_name(testbed::moto::ACCOUNT, "", REPO, &digest);
    poll(
        "the big image's unscanned report",
        Duration::from_millis(20),
        timeout,
        || std::future::ready(report(&name).map(|_| ())),
    )
    .await?;
    start_scan(ecr, &digest).await?;
    let stored = poll(
        "the big image's report to show the scan",
        Duration::from_millis(20),
        timeout,
        || {
            let r = report(&name).filter(|r| r["spec"]["scan"]["status"] == "COMPLETE");
            std::future::ready(r)
        },
    )
    .await?;
    check_big_report(&stored, &counts)?;
    let bytes = serde_json::to_vec(&stored)
        .map_err(|e| BenchError::Scenario(format!("serializing the report: {e}")))?
        .len();
    let kept = stored["spec"]["findings"].as_array().map_or(0, Vec::len);
    // Kept for a look at what takes the room.
    let path = crate::util::workspace_root().join("target/bench/largest-report.json");
    let pretty = serde_json::to_string_pretty(&stored)
        .map_err(|e| BenchError::Scenario(format!("serializing the report: {e}")))?;
    std::fs::write(&path, pretty).map_err(|e| BenchError::io(&path, e))?;
    eprintln!(
        "   largest report: {BIG_FINDINGS} findings in ECR, {kept} kept, truncated, {bytes} bytes as stored"
    );
    Ok(bytes)
}

/// The report of the big scan must be truncated to the `MAX_FINDINGS` most severe findings,
/// highest score first within a severity, and count every finding in its summary.
fn check_big_report(stored: &Value, counts: &std::collections::BTreeMap<&str, u64>) -> Result<()> {
    let wrong = |what: String| Err(BenchError::Scenario(format!("the big report: {what}")));
    let spec = &stored["spec"];
    if spec["truncated"] != true {
        return wrong(format!("truncated is {}", spec["truncated"]));
    }
    let Some(findings) = spec["findings"].as_array() else {
        return wrong("no findings".into());
    };
    if findings.len() != MAX_FINDINGS {
        return wrong(format!("{} findings, not {MAX_FINDINGS}", findings.len()));
    }
    for (severity, key) in [
        ("CRITICAL", "critical"),
        ("HIGH", "high"),
        ("MEDIUM", "medium"),
        ("LOW", "low"),
        ("INFORMATIONAL", "informational"),
    ] {
        let want = counts.get(severity).copied().unwrap_or(0);
        let got = spec["summary"][key].as_u64().unwrap_or(0);
        if got != want {
            return wrong(format!("summary.{key} is {got}, ECR counted {want}"));
        }
    }
    // The most severe MAX_FINDINGS of the scan, by (severity, score) descending.
    let rank = |s: &str| match s {
        "CRITICAL" => 4,
        "HIGH" => 3,
        "MEDIUM" => 2,
        "LOW" => 1,
        _ => 0,
    };
    let mut expected: Vec<(u8, f64, String)> = (0..BIG_FINDINGS)
        .map(|i| {
            let (severity, score) = big_finding_severity(i);
            let id = big_finding(i)["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (rank(severity), (score * 10.0).round() / 10.0, id)
        })
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let floor = &expected[MAX_FINDINGS - 1];
    let mut previous = (u8::MAX, f64::MAX);
    for f in findings {
        let severity = f["severity"].as_str().unwrap_or_default();
        let key = (
            rank(&severity.to_uppercase()),
            f["score"].as_f64().unwrap_or(0.0),
        );
        if key.0 > previous.0 || (key.0 == previous.0 && key.1 > previous.1 + 1e-9) {
            return wrong(format!(
                "{} ({severity}) after a less severe finding",
                f["id"]
            ));
        }
        if key.0 < floor.0 || (key.0 == floor.0 && key.1 < floor.1 - 1e-9) {
            return wrong(format!(
                "{} ({severity}, {}) kept while a more severe finding was left out",
                f["id"], key.1
            ));
        }
        previous = key;
    }
    let criticals = findings
        .iter()
        .filter(|f| {
            f["severity"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("CRITICAL"))
        })
        .count() as u64;
    if criticals != counts.get("CRITICAL").copied().unwrap_or(0) {
        return wrong(format!("{criticals} CRITICAL findings kept"));
    }
    Ok(())
}
