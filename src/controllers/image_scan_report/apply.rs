//! The refresh's I/O: observe (the watched cluster, the reports, the pods, then ECR one target
//! at a time) → the pure decisions of `plan.rs` → apply them: a StartImageScan and a
//! DescribeImageScanFindings only where the plan says, a report written only where it differs,
//! the stale ones deleted once every target is done.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use super::cluster::Cluster;
use super::places::{self, Place};
use super::plan::{self, EventWork, ImagePlan, Managed, Pass, PodImages, Step, Target};
use super::report::{build_spec, label_value};
use super::{MANAGED_BY_LABEL, REPOSITORY_LABEL, observe};
use crate::api::image_scan_report::{ImageScanReport, ImageScanReportSpec};
use crate::controllers::targets::TargetIndex;
use crate::controllers::{Context, Error, MANAGER};
use crate::registry::{ErrorClass, Registry, ScanEvent};

/// ECR refuses a second StartImageScan of an image within a day.
const SCAN_START_QUOTA: Duration = Duration::from_secs(24 * 3600);

/// The registries a pass reads now, and the reports each one's pass decides.
struct Places {
    places: Vec<Place>,
    held: BTreeSet<(String, String)>,
}

impl Places {
    fn now(ctx: &Context, cluster: &Cluster, targets: &TargetIndex) -> Places {
        let own_region = ctx.config.region.clone().unwrap_or_default();
        let named = cluster.named_targets();
        let places = places::places(&own_region, named.iter().map(String::as_str), |t| {
            targets.ready_registry(t)
        });
        let held = cluster.held(|t| targets.is_ready(t));
        Places { places, held }
    }

    fn split(
        &self,
        existing: BTreeMap<String, ImageScanReport>,
    ) -> impl Iterator<Item = (&Place, BTreeMap<String, ImageScanReport>)> {
        let split = places::split_reports(existing, &self.places, &self.held);
        self.places.iter().zip(split)
    }
}

/// One refresh of every report, one registry at a time (the own, then each Ready target a
/// Repository or a ScanPolicy names, through its client). A repository whose images cannot be
/// read keeps its reports until the next refresh; a target that cannot be reached keeps all
/// of its; the others go on.
pub async fn refresh(ctx: &Context, cluster: &Cluster, targets: &TargetIndex) -> Result<(), Error> {
    let places = Places::now(ctx, cluster, targets);
    let existing = observe::reports(ctx).await?;
    let (pods, mut first_error) = match observe::pod_images(ctx).await {
        Ok(pods) => (Some(pods), None),
        Err(e) => {
            warn!(error = %e, "listing pods failed; reports of pod images are kept");
            (None, Some(e))
        }
    };
    for (place, existing) in places.split(existing) {
        let result = match targets.reach(ctx, place.target.as_deref()).await {
            Ok(reach) => {
                let pods = pods.as_ref().map(|p| places::pods_in(p, &place.region));
                let managed = cluster.managed(place);
                refresh_place(ctx, &*reach.registry, &managed, &existing, pods.as_ref()).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One registry's pass: its managed repositories' images, then the images pods run from its
/// other repositories (`None`: the pods could not be listed, their reports stay), then the
/// deletions.
async fn refresh_place(
    ctx: &Context,
    registry: &dyn Registry,
    managed: &Managed,
    existing: &BTreeMap<String, ImageScanReport>,
    pods: Option<&PodImages>,
) -> Result<(), Error> {
    let mut pass = Pass::new(managed, existing);
    let mut first_error = None;
    for target in pass.managed_targets() {
        if let Err(e) = refresh_target(ctx, registry, &mut pass, &target).await {
            warn!(repository = target.repository, error = %e, "refreshing scan reports failed");
            first_error.get_or_insert(e);
        }
    }
    // ECR images that pods run from repositories no Repository object manages.
    match pods {
        Some(pods) => {
            for target in pass.pod_targets(pods) {
                if let Err(e) = refresh_target(ctx, registry, &mut pass, &target).await {
                    let repository = &target.repository;
                    warn!(repository, error = %e, "refreshing scan reports of pod images failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        None => pass.pods_unread(),
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
async fn refresh_target(
    ctx: &Context,
    registry: &dyn Registry,
    pass: &mut Pass<'_>,
    target: &Target,
) -> Result<(), Error> {
    let result = match observe::images(registry, target).await {
        Ok(images) => apply_images(ctx, registry, target, &pass.images(target, &images)).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        pass.failed(&target.repository);
    }
    result
}

/// Refreshes the images scan events name, each in the registry it came from (a Ready target's
/// by its account, else the own): a managed Ready repository is refreshed whole (an event may
/// announce a push or a delete), an image that already has a report alone. Reads the reports of
/// the named repositories only.
pub async fn refresh_events(
    ctx: &Context,
    cluster: &Cluster,
    targets: &TargetIndex,
    events: &BTreeSet<ScanEvent>,
) -> Result<(), Error> {
    let places = Places::now(ctx, cluster, targets);
    let repositories = events.iter().map(|e| e.repository.as_str()).collect();
    let existing = observe::reports_of(ctx, &repositories).await?;
    let mut first_error = None;
    for (place, existing) in places.split(existing) {
        let events = places::events_of(place, &places.places, events);
        if events.is_empty() {
            continue;
        }
        let result = match targets.reach(ctx, place.target.as_deref()).await {
            Ok(reach) => {
                let managed = cluster.managed(place);
                let registry = &*reach.registry;
                refresh_event_images(ctx, registry, &managed, &existing, &events).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One registry's share of an event batch.
async fn refresh_event_images(
    ctx: &Context,
    registry: &dyn Registry,
    managed: &Managed,
    existing: &BTreeMap<String, ImageScanReport>,
    events: &BTreeSet<ScanEvent>,
) -> Result<(), Error> {
    let mut first_error = None;
    for work in plan::plan_events(events, managed, existing) {
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
        let result = match observe::images(registry, target).await {
            Ok(images) => match image.and_then(|i| i.read(&images)) {
                Some(gone) => delete(ctx, &gone).await,
                None => {
                    let plans = plan::plan_images(target, &images, existing, managed);
                    apply_images(ctx, registry, target, &plans).await
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
    registry: &dyn Registry,
    target: &Target,
    plans: &[ImagePlan<'_>],
) -> Result<(), Error> {
    for plan in plans {
        apply_image(ctx, registry, target, plan).await?;
    }
    Ok(())
}

/// Brings one image's report to what its plan says: a scan started and findings read only
/// where it says so, the report written only where it differs.
async fn apply_image(
    ctx: &Context,
    registry: &dyn Registry,
    target: &Target,
    plan: &ImagePlan<'_>,
) -> Result<(), Error> {
    let (registry_id, region) = (target.registry_id.as_str(), target.region.as_str());
    let repository = target.repository.as_str();
    let id = (!registry_id.is_empty()).then_some(registry_id);
    let digest = plan.image.digest.as_str();
    let read = match &plan.step {
        Step::Keep => return Ok(()),
        Step::Write(spec) => return write(ctx, &plan.name, repository, spec).await,
        Step::Read => true,
        // An image that was not just given a scan has none to read: DescribeImages showed it
        // without one.
        Step::Start => start_scan(ctx, registry, id, repository, digest).await?,
    };
    let scan = if read {
        registry
            .describe_image_scan_findings(id, repository, digest)
            .await?
    } else {
        None
    };
    let spec = build_spec(registry_id, region, repository, plan.image, scan.as_ref());
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
    registry: &dyn Registry,
    registry_id: Option<&str>,
    repository: &str,
    digest: &str,
) -> Result<bool, Error> {
    let key = format!("{}/{repository}@{digest}", registry_id.unwrap_or_default());
    if !ctx.claim_scan_start(&key, SCAN_START_QUOTA) {
        return Ok(false);
    }
    match registry
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
