//! ImageScanReport: one report per image digest of every Ready Repository, and of every ECR
//! image a pod in the cluster runs, refreshed on a schedule and at once on scan events.
//!
//! Not a kube `Controller`: the source of truth is ECR, so this is a loop that, every
//! `Config::scan_refresh_interval`, observes (the Repositories and ScanPolicies its watches keep,
//! `cluster.rs`; the reports and the pods, then each repository's images and their scans in
//! ECR, `observe.rs`) → plans (`plan.rs`, pure: which reports to create, refresh or delete,
//! which images to start a scan for) → applies only that (`apply.rs`). What a report says and
//! its name are in `report.rs`.
//!
//! ECR calls per refresh: one DescribeImages page per repository (1000 images a page), one
//! DescribeImages per 100 pod images of unmanaged repositories, plus DescribeImageScanFindings
//! (all pages) only for images whose scan differs from their report's (DescribeImages carries
//! each image's scan status and completion time). A refresh where nothing changed writes
//! nothing.
//!
//! Images without a scan that policy wants scanned (their Repository has `scanOnPush`, or a
//! BASIC ScanPolicy rule's filter matches the repository) get one StartImageScan; ECR allows
//! one a day per image, so a start is not retried for a day.
//!
//! With a scan event queue configured ([`crate::registry::ScanEventQueue`]), ECR's and
//! Inspector's EventBridge events refresh the named image at once, reading only the reports of
//! the repositories they name; the schedule stays the backstop, because EventBridge delivery is
//! best effort.

mod apply;
mod cluster;
mod observe;
pub mod places;
pub mod plan;
mod report;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, warn};

use super::targets::TargetIndex;
use super::{AbortOnDrop, Context, Error};
use crate::api::image_scan_report::ImageScanReport;
use crate::registry::{ScanEvent, ScanEventQueue};
use cluster::Cluster;

pub use observe::images_of;
pub use plan::{PodImage, filter_matches, pod_registries, scan_unchanged};
pub use report::{build_spec, label_value, report_name};

/// Label on every report the operator writes; only these are ever deleted.
pub const MANAGED_BY_LABEL: &str = "ecr.operator.dev/managed-by";
/// The report's repository, sanitized to a label value.
pub const REPOSITORY_LABEL: &str = "ecr.operator.dev/repository";
/// Findings kept per report; the rest are counted in `summary` and flagged by `truncated`.
pub const MAX_FINDINGS: usize = 200;
/// The status of a report for an image ECR holds no scan for.
pub const NOT_SCANNED: &str = "NOT_SCANNED";
/// How long one SQS receive waits for a message (long polling).
const EVENT_WAIT_SECONDS: i32 = 20;

/// Refreshes reports every scan refresh interval, and images named by scan events at once,
/// until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<ImageScanReport>(&ctx).await?;
    tokio::pin!(shutdown);
    let cluster = Cluster::start(&ctx);
    let ready = async {
        cluster.ready().await;
        // Before the first list every target would look missing, and its reports stale.
        targets.ready().await;
    };
    if !super::ready_unless_shutdown(ready, &mut shutdown).await {
        return Ok(());
    }
    let (tx, mut events) = mpsc::channel::<ScanEvent>(1024);
    let _consumer = ctx
        .scan_events
        .clone()
        .map(|queue| AbortOnDrop(tokio::spawn(consume(ctx.clone(), queue, tx))));
    // A pass is given up at shutdown, not finished: at 100,000 repositories one takes minutes,
    // and the elector releases the lease only once the term's work has stopped.
    loop {
        let wait = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            wait = scheduled(&ctx, &cluster, &targets) => wait,
        };
        let next = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep_until(next) => break,
                Some(first) = events.recv() => tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    () = on_events(&ctx, &cluster, &targets, first, &mut events) => {}
                },
            }
        }
    }
}

/// One scheduled refresh; how long until the next.
async fn scheduled(ctx: &Context, cluster: &Cluster, targets: &TargetIndex) -> Duration {
    let started = Instant::now();
    // One refresh pass is one trace.
    let span = crate::telemetry::reconcile_span("ImageScanReport", "*");
    let result = apply::refresh(ctx, cluster, targets).instrument(span).await;
    ctx.observe("imagescanreport", &result, started);
    match &result {
        Ok(()) => {
            ctx.reset_backoff("imagescanreport");
            ctx.config.scan_refresh_interval
        }
        Err(e) => {
            warn!(error = %e, "refreshing image scan reports failed");
            ctx.backoff("imagescanreport")
                .min(ctx.config.scan_refresh_interval)
        }
    }
}

/// Refreshes the images named by `first` and every event already waiting behind it.
async fn on_events(
    ctx: &Context,
    cluster: &Cluster,
    targets: &TargetIndex,
    first: ScanEvent,
    events: &mut mpsc::Receiver<ScanEvent>,
) {
    let mut batch = BTreeSet::from([first]);
    while let Ok(more) = events.try_recv() {
        batch.insert(more);
    }
    let started = Instant::now();
    let span = crate::telemetry::reconcile_span("ImageScanReport", "events");
    let result = apply::refresh_events(ctx, cluster, targets, &batch)
        .instrument(span)
        .await;
    if let Err(e) = &result {
        warn!(error = %e, "refreshing images named by scan events failed");
    }
    ctx.observe("imagescanreport", &result, started);
}

/// Moves scan events from the queue to the refresh loop, deleting each message once handed
/// over (an event lost after that is caught by the next scheduled refresh). Stops when the
/// loop is gone.
async fn consume(ctx: Arc<Context>, queue: Arc<ScanEventQueue>, tx: mpsc::Sender<ScanEvent>) {
    info!(queue = queue.queue_url(), "reading scan events");
    loop {
        match queue.receive(EVENT_WAIT_SECONDS).await {
            Ok(messages) => {
                ctx.reset_backoff("scan-events");
                let mut receipts = Vec::with_capacity(messages.len());
                for m in messages {
                    if let Some(event) = m.event {
                        debug!(
                            repository = event.repository,
                            digest = event.digest,
                            "scan event"
                        );
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    // Messages that are not scan events are dropped too: the queue is ours, and
                    // they would otherwise come back forever.
                    receipts.push(m.receipt);
                }
                if let Err(e) = queue.delete(&receipts).await {
                    warn!(error = %e, "deleting scan event messages failed; they will come again");
                }
            }
            Err(e) => {
                let wait = ctx.backoff("scan-events");
                warn!(error = %e, retry_in = ?wait, "reading scan events failed");
                tokio::time::sleep(wait).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}
