//! Scan report lag: every controller in this process (as `ecr-operator run` starts them), with
//! the sweep interval (the ImageScanReport loop's poll interval) set to P. For each sample an
//! image is pushed, its unscanned report awaited (so the phase of the refresh loop is known),
//! then, at a different point of the cycle for each sample, the scan runs in ECR
//! (StartImageScan completes at once in moto) and the time until the report shows the
//! completed scan is measured. The figure is the worst sample; it should not exceed P.

use std::time::{Duration, Instant};

use ecr_operator::controllers::{self, image_scan_report::report_name};
use kube::api::{Api, PostParams};
use testbed::images::push_image;
use testbed::moto::Moto;

use crate::Sizes;
use crate::figures::Figures;
use crate::repos::{GROUP, NAMESPACE, Operator};
use crate::util::{self, BenchError, Result, poll};

const REPO: &str = "bench/scanned";

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
        let name = report_name(testbed::moto::ACCOUNT, REPO, &digest);
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
        ecr.start_image_scan()
            .repository_name(REPO)
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(&digest)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| BenchError::ecr("StartImageScan", e))?;
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
    op.stop().await?;
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
        "scan_poll_interval_s",
        interval.as_secs_f64(),
        "s",
        "the configured poll (sweep) interval",
    );
    Ok(())
}
