//! The refresh's I/O: observe (the watched cluster, the reports, the pods, then ECR one target
//! at a time) → the pure decisions of `plan.rs` → apply them: a StartImageScan and a
//! DescribeImageScanFindings only where the plan says, a report written only where it differs,
//! the stale ones deleted once every target is done.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::cluster::Cluster;
use super::plan::{self, EventWork, ImagePlan, Pass, Step, Target};
use super::report::{build_spec, label_value};
use super::{MANAGED_BY_LABEL, REPOSITORY_LABEL, observe};
use crate::api::image_scan_report::{ImageScanReport, ImageScanReportSpec};
use crate::controllers::{Context, Error, MANAGER};
use crate::registry::{ErrorClass, ScanEvent};

/// ECR refuses a second StartImageScan of an image within a day.
const SCAN_START_QUOTA: Duration = Duration::from_secs(24 * 3600);

/// One refresh of every report. A repository whose images cannot be read keeps its reports
/// until the next refresh; the others go on.
pub async fn refresh(ctx: &Context, cluster: &Cluster) -> Result<(), Error> {
    let managed = cluster.managed();
    let existing = observe::reports(ctx).await?;
    let mut pass = Pass::new(&managed, &existing);
    let mut first_error = None;
    for target in pass.managed_targets() {
        if let Err(e) = refresh_target(ctx, &mut pass, &target).await {
            warn!(repository = target.repository, error = %e, "refreshing scan reports failed");
            first_error.get_or_insert(e);
        }
    }
    // ECR images that pods run from repositories no Repository object manages.
    match observe::pod_images(ctx).await {
        Ok(pods) => {
            for target in pass.pod_targets(&pods) {
                if let Err(e) = refresh_target(ctx, &mut pass, &target).await {
                    let repository = &target.repository;
                    warn!(repository, error = %e, "refreshing scan reports of pod images failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(e) => {
            warn!(error = %e, "listing pods failed; reports of pod images are kept");
            pass.pods_unread();
            first_error.get_or_insert(e);
        }
    }
    for report in pass.deletions() {
        let (name, repo) = (report.name_any(), &report.spec.repository_name);
        debug!(name, repo, "deleting scan report of a vanished image");
        if let Err(e) = delete(ctx, &name).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Reads `target`'s images in ECR and applies their plans; when that fails, the repository's
/// reports all stay until the next pass.
async fn refresh_target(ctx: &Context, pass: &mut Pass<'_>, target: &Target) -> Result<(), Error> {
    let result = match observe::images(ctx, target).await {
        Ok(images) => apply_images(ctx, target, &pass.images(target, &images)).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        pass.failed(&target.repository);
    }
    result
}

/// Refreshes the images scan events name: a managed Ready repository is refreshed whole (an
/// event may announce a push or a delete), an image that already has a report alone. Reads the
/// reports of the named repositories only.
pub async fn refresh_events(
    ctx: &Context,
    cluster: &Cluster,
    events: &BTreeSet<ScanEvent>,
) -> Result<(), Error> {
    let managed = cluster.managed();
    let repositories = events.iter().map(|e| e.repository.as_str()).collect();
    let existing = observe::reports_of(ctx, &repositories).await?;
    let mut first_error = None;
    for work in plan::plan_events(events, &managed, &existing) {
        let (target, image) = match &work {
            EventWork::Repository(target) => (target, None),
            EventWork::Image(image) => (&image.target, Some(image)),
            EventWork::Ignore(event) => {
                debug!(
                    repository = event.repository,
                    digest = event.digest,
                    "scan event for an image without a report"
                );
                continue;
            }
        };
        let result = match observe::images(ctx, target).await {
            Ok(images) => match image.and_then(|i| i.read(&images)) {
                Some(gone) => delete(ctx, &gone).await,
                None => {
                    let plans = plan::plan_images(target, &images, &existing, &managed);
                    apply_images(ctx, target, &plans).await
                }
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Applies the plans of one target's images, stopping at the first failure.
async fn apply_images(
    ctx: &Context,
    target: &Target,
    plans: &[ImagePlan<'_>],
) -> Result<(), Error> {
    for plan in plans {
        apply_image(ctx, target, plan).await?;
    }
    Ok(())
}

/// Brings one image's report to what its plan says: a scan started and findings read only
/// where it says so, the report written only where it differs.
async fn apply_image(ctx: &Context, target: &Target, plan: &ImagePlan<'_>) -> Result<(), Error> {
    let (registry_id, repository) = (target.registry_id.as_str(), target.repository.as_str());
    let registry = (!registry_id.is_empty()).then_some(registry_id);
    let digest = plan.image.digest.as_str();
    let read = match &plan.step {
        Step::Keep => return Ok(()),
        Step::Write(spec) => return write(ctx, &plan.name, repository, spec).await,
        Step::Read => true,
        // An image that was not just given a scan has none to read: DescribeImages showed it
        // without one.
        Step::Start => start_scan(ctx, registry, repository, digest).await?,
    };
    let scan = if read {
        ctx.registry
            .describe_image_scan_findings(registry, repository, digest)
            .await?
    } else {
        None
    };
    let spec = build_spec(registry_id, repository, plan.image, scan.as_ref());
    if plan::write_needed(plan.current, &spec, repository) {
        write(ctx, &plan.name, repository, &spec).await?;
    }
    Ok(())
}

/// Writes a report by server-side apply, with the labels it is found by and the watch scope's
/// (so that this operator's next pass sees it).
async fn write(
    ctx: &Context,
    name: &str,
    repository: &str,
    spec: &ImageScanReportSpec,
) -> Result<(), Error> {
    let mut labels = ctx.config.watch.labels().clone();
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGER.to_string());
    labels.insert(REPOSITORY_LABEL.to_string(), label_value(repository));
    let patch = serde_json::json!({
        "apiVersion": ImageScanReport::api_version(&()),
        "kind": ImageScanReport::kind(&()),
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    });
    Api::<ImageScanReport>::all(ctx.client.clone())
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

async fn delete(ctx: &Context, name: &str) -> Result<(), Error> {
    let api = Api::<ImageScanReport>::all(ctx.client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One StartImageScan per image a day (ECR's quota); whether a scan was started now. A refused
/// start (the quota, or an image ECR cannot scan) is remembered like a started one, and is not
/// an error of the refresh.
async fn start_scan(
    ctx: &Context,
    registry_id: Option<&str>,
    repository: &str,
    digest: &str,
) -> Result<bool, Error> {
    let key = format!("{}/{repository}@{digest}", registry_id.unwrap_or_default());
    if !ctx.claim_scan_start(&key, SCAN_START_QUOTA) {
        return Ok(false);
    }
    match ctx
        .registry
        .start_image_scan(registry_id, repository, digest)
        .await
    {
        Ok(()) => {
            info!(
                repository,
                digest, "started an image scan that policy requires"
            );
            Ok(true)
        }
        Err(e)
            if matches!(
                e.class,
                ErrorClass::Invalid | ErrorClass::LimitExceeded | ErrorClass::NotFound
            ) =>
        {
            warn!(repository, digest, error = %e, "ECR refused to start an image scan");
            Ok(false)
        }
        Err(e) => {
            ctx.release_scan_start(&key);
            Err(e.into())
        }
    }
}
