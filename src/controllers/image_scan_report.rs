//! ImageScanReport: one report per image digest of every Ready Repository, and of every ECR
//! image a pod in the cluster runs, refreshed on a schedule and at once on scan events.
//!
//! Not a kube `Controller`: the source of truth is ECR, so this is a loop that, every
//! `Config::scan_refresh_interval`, reads each managed repository's images and their scans
//! and the images pods use from other repositories, computes the reports that should exist
//! (pure, [`build_spec`]), applies only those that differ, and deletes the managed reports
//! whose image is gone (or that no pod uses any more).
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
//! Inspector's EventBridge events refresh the named image at once; the schedule stays the
//! backstop, because EventBridge delivery is best effort.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, warn};

use super::{Context, Error, MANAGER};
use crate::api::Repository;
use crate::api::ScanPolicy;
use crate::api::conditions::is_ready_at;
use crate::api::image_scan_report::{
    Finding, ImageScanReport, ImageScanReportSpec, MAX_TAGS, MAX_TEXT, ScanState, SeveritySummary,
};
use crate::api::scan_policy::{ScanType, Severity};
use crate::image::{EcrImage, ImageRef};
use crate::registry::{
    ErrorClass, ImageInfo, ScanEvent, ScanEventQueue, ScanFinding, ScanFindings,
};

/// Label on every report the operator writes; only these are ever deleted.
pub const MANAGED_BY_LABEL: &str = "ecr.operator.dev/managed-by";
/// The report's repository, sanitized to a label value.
pub const REPOSITORY_LABEL: &str = "ecr.operator.dev/repository";
/// Findings kept per report; the rest are counted in `summary` and flagged by `truncated`.
pub const MAX_FINDINGS: usize = 200;
/// Repositories read per list call of a refresh.
const REPOSITORY_PAGE: u32 = 500;
/// The status of a report for an image ECR holds no scan for.
pub const NOT_SCANNED: &str = "NOT_SCANNED";
/// ECR refuses a second StartImageScan of an image within a day.
const SCAN_START_QUOTA: Duration = Duration::from_secs(24 * 3600);
/// Pods listed per page.
const POD_PAGE: u32 = 500;
/// How long one SQS receive waits for a message (long polling).
const EVENT_WAIT_SECONDS: i32 = 20;

/// Refreshes reports every scan refresh interval, and images named by scan events at once,
/// until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<ImageScanReport>(&ctx).await?;
    tokio::pin!(shutdown);
    let (tx, mut events) = mpsc::channel::<ScanEvent>(1024);
    let consumer = ctx
        .scan_events
        .clone()
        .map(|queue| tokio::spawn(consume(ctx.clone(), queue, tx)));
    let result = loop {
        let started = Instant::now();
        // One refresh pass is one trace.
        let span = crate::telemetry::reconcile_span("ImageScanReport", "*");
        let result = refresh(&ctx).instrument(span).await;
        ctx.observe("imagescanreport", &result, started);
        let wait = match &result {
            Ok(()) => {
                ctx.reset_backoff("imagescanreport");
                ctx.config.scan_refresh_interval
            }
            Err(e) => {
                warn!(error = %e, "refreshing image scan reports failed");
                ctx.backoff("imagescanreport")
                    .min(ctx.config.scan_refresh_interval)
            }
        };
        let next = tokio::time::Instant::now() + wait;
        let stop = loop {
            tokio::select! {
                _ = &mut shutdown => break true,
                _ = tokio::time::sleep_until(next) => break false,
                Some(first) = events.recv() => {
                    let mut batch = BTreeSet::from([first]);
                    while let Ok(more) = events.try_recv() {
                        batch.insert(more);
                    }
                    let started = Instant::now();
                    let span = crate::telemetry::reconcile_span("ImageScanReport", "events");
                    let result = refresh_events(&ctx, &batch).instrument(span).await;
                    if let Err(e) = &result {
                        warn!(error = %e, "refreshing images named by scan events failed");
                    }
                    ctx.observe("imagescanreport", &result, started);
                }
            }
        };
        if stop {
            break Ok(());
        }
    };
    if let Some(consumer) = consumer {
        consumer.abort();
    }
    result
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

/// What the refresh knows of the cluster: the repositories Repository objects name, and
/// which of them are Ready (with their registry id and scan on push).
struct Managed {
    known: BTreeSet<String>,
    ready: BTreeMap<String, ManagedRepository>,
    /// Filters of BASIC registry scanning rules: matching repositories must be scanned.
    scan_filters: Vec<String>,
    /// Registries whose images pods run get reports: see [`pod_registries`].
    pod_registries: BTreeSet<String>,
}

struct ManagedRepository {
    registry_id: String,
    scan_on_push: bool,
}

impl Managed {
    async fn read(ctx: &Context) -> Result<Self, Error> {
        // Read in pages, keeping only what the refresh needs: a list of every Repository at
        // once held all of them (10 000 objects, tens of MB) at every refresh, and the
        // allocator keeps such peaks.
        // Parsed one by one: a Repository this version cannot read must not stop every report
        // (its own controller reports it).
        let scope = &ctx.config.watch;
        let repos_api = scope.api::<Repository>(&ctx.client);
        let mut known = BTreeSet::new();
        let mut ready = BTreeMap::new();
        let mut params = scope.list_params().limit(REPOSITORY_PAGE);
        loop {
            let page = repos_api.list(&params).await?;
            let parsed = page
                .items
                .iter()
                .filter(|o| scope.includes_namespace(o.metadata.namespace.as_deref()))
                .filter_map(|o| super::parse_object::<Repository>(o).ok());
            for r in parsed {
                let Some(status) = &r.status else { continue };
                let Some(name) = status.repository_name.clone() else {
                    continue;
                };
                known.insert(name.clone());
                if is_ready_at(&status.common.conditions, r.metadata.generation) {
                    ready.insert(
                        name,
                        ManagedRepository {
                            registry_id: status.registry_id.clone().unwrap_or_default(),
                            scan_on_push: r.spec.scan_on_push,
                        },
                    );
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        let policies = super::list_parseable::<ScanPolicy>(&ctx.client, scope).await?;
        // Enhanced scanning (Inspector) scans by itself and refuses StartImageScan.
        let enhanced = policies
            .iter()
            .any(|p| p.spec.scan_type == ScanType::Enhanced);
        let scan_filters = if enhanced {
            Vec::new()
        } else {
            policies
                .iter()
                .flat_map(|p| &p.spec.rules)
                .flat_map(|r| &r.repository_filters)
                .map(|f| f.filter.clone())
                .collect()
        };
        let pod_registries =
            pod_registries(ready.values().map(|r| r.registry_id.as_str()), &policies);
        Ok(Managed {
            known,
            ready,
            scan_filters,
            pod_registries,
        })
    }

    /// Whether policy wants images of `repository` scanned.
    fn scan_required(&self, repository: &str) -> bool {
        self.ready.get(repository).is_some_and(|r| r.scan_on_push)
            || self
                .scan_filters
                .iter()
                .any(|f| filter_matches(f, repository))
    }
}

/// The registries whose images get reports when pods run them: those of the Ready Repositories
/// the operator manages and those a ScanPolicy names in `registryIds`. Any other registry a pod
/// names costs no ECR call: a pod must not make the operator read or scan in every account its
/// IAM role reaches.
pub fn pod_registries<'a>(
    managed: impl Iterator<Item = &'a str>,
    policies: &[ScanPolicy],
) -> BTreeSet<String> {
    managed
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .chain(
            policies
                .iter()
                .flat_map(|p| p.spec.registry_ids.iter().cloned()),
        )
        .collect()
}

/// A registry scanning filter (ScanningRepositoryFilter, WILDCARD): "a filter with no wildcard
/// will match all repository names that contain the filter", one with `*` matches whole names.
pub fn filter_matches(filter: &str, repository: &str) -> bool {
    if filter.contains('*') {
        crate::image::wildcard_match(filter, repository)
    } else {
        repository.contains(filter)
    }
}

/// One refresh of every report. A repository whose images cannot be read keeps its reports
/// until the next refresh; the others go on.
pub async fn refresh(ctx: &Context) -> Result<(), Error> {
    let pass = Pass::read(ctx).await?;
    let Pass {
        managed, existing, ..
    } = &pass;

    let mut wanted = BTreeSet::new();
    // Repositories whose reports stay as they are: not Ready, or not readable this time.
    let mut protected: BTreeSet<String> = managed
        .known
        .iter()
        .filter(|r| !managed.ready.contains_key(*r))
        .cloned()
        .collect();
    let mut first_error = None;
    for (repository, repo) in &managed.ready {
        match pass.refresh_repository(repository, &repo.registry_id).await {
            Ok(names) => wanted.extend(names),
            Err(e) => {
                warn!(repository, error = %e, "refreshing scan reports failed");
                protected.insert(repository.clone());
                first_error.get_or_insert(e);
            }
        }
    }

    // ECR images that pods run from repositories no Repository object manages.
    let mut pods_read = true;
    match pod_images(ctx).await {
        Ok(images) => {
            for ((registry_id, repository), refs) in images {
                if managed.known.contains(&repository)
                    || !managed.pod_registries.contains(&registry_id)
                {
                    continue;
                }
                match pass
                    .refresh_pod_images(&registry_id, &repository, &refs)
                    .await
                {
                    Ok(names) => wanted.extend(names),
                    Err(e) => {
                        warn!(repository, error = %e, "refreshing scan reports of pod images failed");
                        protected.insert(repository.clone());
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        Err(e) => {
            warn!(error = %e, "listing pods failed; reports of pod images are kept");
            pods_read = false;
            first_error.get_or_insert(e);
        }
    }

    // Reports of images that are gone, of repositories no Repository object names any more,
    // and of pod images no pod runs.
    for (name, report) in existing {
        let repo = &report.spec.repository_name;
        let pod_image = !managed.known.contains(repo);
        let stale =
            !wanted.contains(name) && !protected.contains(repo) && (pods_read || !pod_image);
        if stale {
            debug!(name, repo, "deleting scan report of a vanished image");
            if let Err(e) = pass.delete(name).await {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Refreshes the images scan events name: a managed Ready repository is refreshed whole (an
/// event may announce a push or a delete), an image that already has a report alone.
pub async fn refresh_events(ctx: &Context, events: &BTreeSet<ScanEvent>) -> Result<(), Error> {
    let pass = Pass::read(ctx).await?;
    let mut first_error = None;
    let mut repositories_done = BTreeSet::new();
    for event in events {
        let result = if let Some(repo) = pass.managed.ready.get(&event.repository) {
            if !repositories_done.insert(event.repository.clone()) {
                continue;
            }
            pass.refresh_repository(&event.repository, &repo.registry_id)
                .await
                .map(drop)
        } else if let Some(report) = pass.existing.values().find(|r| {
            r.spec.repository_name == event.repository
                && r.spec.image_digest == event.digest
                && event
                    .registry_id
                    .as_ref()
                    .is_none_or(|id| *id == r.spec.registry_id)
        }) {
            let registry_id = event
                .registry_id
                .clone()
                .unwrap_or_else(|| report.spec.registry_id.clone());
            let images = ctx
                .registry
                .describe_images(
                    Some(&registry_id),
                    &event.repository,
                    std::slice::from_ref(&event.digest),
                )
                .await;
            match images {
                Ok(images) if images.is_empty() => pass.delete(&report.name_any()).await,
                Ok(images) => {
                    let mut result = Ok(());
                    for image in &images {
                        if let Err(e) = pass
                            .apply_image(&registry_id, &event.repository, image)
                            .await
                        {
                            result = Err(e);
                        }
                    }
                    result
                }
                Err(e) => Err(e.into()),
            }
        } else {
            debug!(
                repository = event.repository,
                digest = event.digest,
                "scan event for an image without a report"
            );
            Ok(())
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// What one refresh pass works from, read once at its start: the Repositories and ScanPolicies,
/// and the reports that exist.
struct Pass<'a> {
    ctx: &'a Context,
    managed: Managed,
    api: Api<ImageScanReport>,
    existing: BTreeMap<String, ImageScanReport>,
}

impl<'a> Pass<'a> {
    async fn read(ctx: &'a Context) -> Result<Self, Error> {
        let managed = Managed::read(ctx).await?;
        let api = Api::<ImageScanReport>::all(ctx.client.clone());
        let mut selector = format!("{MANAGED_BY_LABEL}={MANAGER}");
        if let Some(scope) = ctx.config.watch.label_selector() {
            selector = format!("{selector},{scope}");
        }
        let existing = api
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .into_iter()
            .map(|r| (r.name_any(), r))
            .collect();
        Ok(Self {
            ctx,
            managed,
            api,
            existing,
        })
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies the reports of one repository; returns the names of the reports that should
    /// exist.
    async fn refresh_repository(
        &self,
        repository: &str,
        registry_id: &str,
    ) -> Result<Vec<String>, Error> {
        let images = self.ctx.registry.list_images(repository).await?;
        self.apply_images(registry_id, repository, &images).await
    }

    /// Applies the reports of the images pods run from one unmanaged repository.
    async fn refresh_pod_images(
        &self,
        registry_id: &str,
        repository: &str,
        refs: &BTreeSet<PodImage>,
    ) -> Result<Vec<String>, Error> {
        let registry = &self.ctx.registry;
        let mut digests = BTreeSet::new();
        for r in refs {
            match r {
                PodImage::Digest(d) => {
                    digests.insert(d.clone());
                }
                PodImage::Tag(t) => {
                    if let Some(d) = registry
                        .image_digest(Some(registry_id), repository, t)
                        .await?
                    {
                        digests.insert(d);
                    }
                }
            }
        }
        let digests: Vec<String> = digests.into_iter().collect();
        let images = registry
            .describe_images(Some(registry_id), repository, &digests)
            .await?;
        self.apply_images(registry_id, repository, &images).await
    }

    /// Brings the reports of `images` (all of one repository) up to date; returns their names.
    async fn apply_images(
        &self,
        registry_id: &str,
        repository: &str,
        images: &[ImageInfo],
    ) -> Result<Vec<String>, Error> {
        let mut names = Vec::with_capacity(images.len());
        for image in images {
            names.push(self.apply_image(registry_id, repository, image).await?);
        }
        Ok(names)
    }

    /// Brings one image's report up to date (starting a scan first where policy wants one and
    /// ECR holds none); returns the report's name.
    async fn apply_image(
        &self,
        registry_id: &str,
        repository: &str,
        image: &ImageInfo,
    ) -> Result<String, Error> {
        let ctx = self.ctx;
        let name = report_name(registry_id, repository, &image.digest);
        let current = self.existing.get(&name);
        let registry = (!registry_id.is_empty()).then_some(registry_id);
        let needs_scan = image.scan_status.is_none() && self.managed.scan_required(repository);
        let spec = match current.filter(|r| scan_unchanged(&r.spec, image)) {
            // DescribeImages says the scan is the one the report holds: only tags can differ.
            Some(r) if !needs_scan => {
                let mut spec = r.spec.clone();
                spec.image_tags = sorted(&image.tags);
                spec.registry_id = registry_id.to_string();
                spec
            }
            _ => {
                let started =
                    needs_scan && start_scan(ctx, registry, repository, &image.digest).await?;
                // DescribeImages shows every scan ECR holds: an image it shows none for, and
                // that was not just given one, has no findings to read.
                let scan = if image.scan_status.is_none() && !started {
                    None
                } else {
                    ctx.registry
                        .describe_image_scan_findings(registry, repository, &image.digest)
                        .await?
                };
                build_spec(registry_id, repository, image, scan.as_ref())
            }
        };
        let labels_ok = current.is_some_and(|r| {
            r.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGER)
                && r.labels().get(REPOSITORY_LABEL) == Some(&label_value(repository))
        });
        let unchanged = current.is_some_and(|r| r.spec == spec) && labels_ok;
        if !unchanged {
            // The watch scope's labels too, so that this operator's next pass sees the report.
            let mut labels = ctx.config.watch.labels().clone();
            labels.insert(MANAGED_BY_LABEL.to_string(), MANAGER.to_string());
            labels.insert(REPOSITORY_LABEL.to_string(), label_value(repository));
            let patch = serde_json::json!({
                "apiVersion": "ecr.operator.dev/v1alpha1",
                "kind": "ImageScanReport",
                "metadata": {"name": name, "labels": labels},
                "spec": spec,
            });
            self.api
                .patch(
                    &name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await?;
        }
        Ok(name)
    }
}

/// An ECR image a pod runs: by digest when the kubelet reported the one it pulled (or the
/// reference pins one), else by tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodImage {
    Digest(String),
    Tag(String),
}

/// The ECR images of every pod, by (registry id, repository). Images of other regions than the
/// operator's are left out: its ECR client cannot read them.
async fn pod_images(
    ctx: &Context,
) -> Result<BTreeMap<(String, String), BTreeSet<PodImage>>, Error> {
    let scope = &ctx.config.watch;
    let api = scope.namespaced_api::<Pod>(&ctx.client);
    let mut out: BTreeMap<(String, String), BTreeSet<PodImage>> = BTreeMap::new();
    let mut params = scope.list_params().limit(POD_PAGE);
    loop {
        let page = api.list(&params).await?;
        let in_scope = page
            .items
            .iter()
            .filter(|p| scope.includes_namespace(p.metadata.namespace.as_deref()));
        for pod in in_scope {
            for image in images_of(pod) {
                if ctx
                    .config
                    .region
                    .as_deref()
                    .is_some_and(|r| r != image.region)
                {
                    continue;
                }
                let key = (image.account.clone(), image.repository.clone());
                let id = match (image.digest, image.tag) {
                    (Some(d), _) => PodImage::Digest(d),
                    (None, Some(t)) => PodImage::Tag(t),
                    (None, None) => continue,
                };
                out.entry(key).or_default().insert(id);
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// The ECR images of one pod: for each container, the digest the kubelet reports it runs
/// (`imageID`), else the image of its spec.
pub fn images_of(pod: &Pod) -> Vec<EcrImage> {
    let mut running: BTreeMap<&str, EcrImage> = BTreeMap::new();
    if let Some(status) = &pod.status {
        let statuses = [
            &status.container_statuses,
            &status.init_container_statuses,
            &status.ephemeral_container_statuses,
        ];
        for s in statuses.into_iter().flatten().flatten() {
            // Container runtimes report `[docker-pullable://]HOST/REPO@sha256:...`.
            let id = s.image_id.trim_start_matches("docker-pullable://");
            if let Some(image) = ImageRef::parse(id).ok().and_then(|r| r.ecr())
                && image.digest.is_some()
            {
                running.insert(s.name.as_str(), image);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(spec) = &pod.spec {
        let containers = spec
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.as_deref()))
            .chain(
                spec.init_containers
                    .iter()
                    .flatten()
                    .map(|c| (c.name.as_str(), c.image.as_deref())),
            )
            .chain(
                spec.ephemeral_containers
                    .iter()
                    .flatten()
                    .map(|c| (c.name.as_str(), c.image.as_deref())),
            );
        for (name, image) in containers {
            if let Some(image) = running.remove(name) {
                out.push(image);
            } else if let Some(image) = image
                .and_then(|i| ImageRef::parse(i).ok())
                .and_then(|r| r.ecr())
            {
                out.push(image);
            }
        }
    }
    out
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

/// Whether DescribeImages shows the same scan `spec` holds, so that DescribeImageScanFindings
/// can be skipped: a COMPLETE scan finished at the same time, or no scan at all.
pub fn scan_unchanged(spec: &ImageScanReportSpec, image: &ImageInfo) -> bool {
    if spec.image_digest != image.digest {
        return false;
    }
    match image.scan_status.as_deref() {
        None => spec.scan.status == NOT_SCANNED,
        Some("COMPLETE") => {
            spec.scan.status == "COMPLETE"
                && image.scan_completed_at.is_some()
                && spec.scan.completed_at == image.scan_completed_at.map(|t| t.to_string())
        }
        Some(_) => false,
    }
}

/// The image's tags as a report lists them: sorted, at most `MAX_TAGS` (the schema's bound).
fn sorted(tags: &[String]) -> Vec<String> {
    let mut tags = tags.to_vec();
    tags.sort();
    tags.truncate(MAX_TAGS);
    tags
}

/// ECR's text clipped to the schema's bound (`maxLength` counts characters), so that no
/// report is refused by the API server for one long field.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

/// The report for one image: pure, from what ECR said.
pub fn build_spec(
    registry_id: &str,
    repository: &str,
    image: &ImageInfo,
    scan: Option<&ScanFindings>,
) -> ImageScanReportSpec {
    let tags = sorted(&image.tags);
    let Some(scan) = scan else {
        return ImageScanReportSpec {
            registry_id: registry_id.to_string(),
            repository_name: repository.to_string(),
            image_digest: image.digest.clone(),
            image_tags: tags,
            scan: ScanState {
                status: NOT_SCANNED.to_string(),
                ..ScanState::default()
            },
            ..ImageScanReportSpec::default()
        };
    };
    let scan_type = if scan.enhanced_findings.is_empty() && scan.status != "ACTIVE" {
        "BASIC"
    } else {
        "ENHANCED"
    };
    let all: Vec<&ScanFinding> = scan
        .findings
        .iter()
        .chain(scan.enhanced_findings.iter())
        .collect();
    let summary = if scan.severity_counts.is_empty() {
        count(all.iter().map(|f| f.severity.as_str()))
    } else {
        summary_of(&scan.severity_counts)
    };
    let mut findings: Vec<Finding> = all.iter().map(|f| finding(f)).collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
    });
    let truncated = findings.len() > MAX_FINDINGS;
    findings.truncate(MAX_FINDINGS);
    ImageScanReportSpec {
        registry_id: registry_id.to_string(),
        repository_name: repository.to_string(),
        image_digest: image.digest.clone(),
        image_tags: tags,
        scan: ScanState {
            status: scan.status.clone(),
            description: scan.description.as_deref().map(bounded),
            completed_at: scan.completed_at.map(|t| t.to_string()),
            vulnerability_source_updated_at: scan
                .vulnerability_source_updated_at
                .map(|t| t.to_string()),
            scan_type: Some(scan_type.to_string()),
        },
        summary,
        findings,
        truncated,
    }
}

fn finding(f: &ScanFinding) -> Finding {
    Finding {
        id: bounded(&f.id),
        severity: severity(&f.severity),
        package: f.package.as_deref().map(bounded),
        installed_version: f.installed_version.as_deref().map(bounded),
        fixed_version: f.fixed_version.as_deref().map(bounded),
        fix_available: f.fix_available,
        score: f.score,
        uri: f.uri.as_deref().map(bounded),
    }
}

/// ECR's severity names; UNDEFINED, UNTRIAGED and anything new rank lowest.
fn severity(s: &str) -> Severity {
    match s.to_ascii_uppercase().as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => Severity::Informational,
    }
}

fn summary_of(counts: &BTreeMap<String, i64>) -> SeveritySummary {
    let mut s = SeveritySummary::default();
    for (k, n) in counts {
        add(&mut s, k, *n);
    }
    s
}

fn count<'a>(severities: impl Iterator<Item = &'a str>) -> SeveritySummary {
    let mut s = SeveritySummary::default();
    for sev in severities {
        add(&mut s, sev, 1);
    }
    s
}

fn add(s: &mut SeveritySummary, severity: &str, n: i64) {
    let slot = match severity.to_ascii_uppercase().as_str() {
        "CRITICAL" => &mut s.critical,
        "HIGH" => &mut s.high,
        "MEDIUM" => &mut s.medium,
        "LOW" => &mut s.low,
        "INFORMATIONAL" => &mut s.informational,
        _ => &mut s.undefined,
    };
    *slot += n;
}

/// `<repository, sanitized, ≤ 40>-<8 hex of registry/repository>-<16 hex of the digest>`: a
/// valid DNS-1123 subdomain, stable across restarts and versions (FNV-1a, not std's hasher),
/// distinct for repositories that sanitize alike and for the same repository and digest in two
/// registries (a replicated image has one digest in every account it is copied to).
pub fn report_name(registry_id: &str, repository: &str, digest: &str) -> String {
    let hex: String = digest
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let prefix = sanitize(repository, 40);
    let hash = format!(
        "{:08x}",
        fnv1a(format!("{registry_id}/{repository}").as_bytes())
    );
    if prefix.is_empty() {
        format!("{hash}-{hex}")
    } else {
        format!("{prefix}-{hash}-{hex}")
    }
}

/// The repository as a label value (≤ 63 characters of `[a-z0-9-]`).
pub fn label_value(repository: &str) -> String {
    sanitize(repository, 63)
}

fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_matches('-').to_string()
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str]) -> ImageInfo {
        ImageInfo {
            digest: format!("sha256:{}", "ab".repeat(32)),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: None,
            size_bytes: None,
            scan_status: None,
            scan_completed_at: None,
        }
    }

    fn f(id: &str, sev: &str) -> ScanFinding {
        ScanFinding {
            id: id.to_string(),
            severity: sev.to_string(),
            ..ScanFinding::default()
        }
    }

    #[test]
    fn pods_report_the_digest_they_run() {
        let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let digest = format!("sha256:{}", "cd".repeat(32));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init", "image": format!("{host}/base/init@{digest}")}],
                "containers": [
                    {"name": "app", "image": format!("{host}/team/app:v1")},
                    {"name": "sidecar", "image": "docker.io/library/nginx:1.27"},
                    {"name": "pending", "image": format!("{host}/team/tool:2")},
                ],
            },
            "status": {"containerStatuses": [
                {"name": "app", "image": format!("{host}/team/app:v1"),
                 "imageID": format!("docker-pullable://{host}/team/app@{digest}"),
                 "ready": true, "restartCount": 0},
                {"name": "sidecar", "image": "nginx:1.27",
                 "imageID": format!("docker.io/library/nginx@{digest}"),
                 "ready": true, "restartCount": 0},
            ]},
        }))
        .unwrap();
        let got: Vec<(String, Option<String>, Option<String>)> = images_of(&pod)
            .into_iter()
            .map(|i| (i.repository, i.tag, i.digest))
            .collect();
        assert_eq!(
            got,
            vec![
                // The kubelet's imageID: the digest pulled, without the tag.
                ("team/app".to_string(), None, Some(digest.clone())),
                ("team/tool".to_string(), Some("2".to_string()), None),
                ("base/init".to_string(), None, Some(digest.clone())),
            ]
        );
    }

    #[test]
    fn pods_reach_only_managed_and_named_registries() {
        let mut policy = ScanPolicy::new("p", Default::default());
        policy.spec.registry_ids = vec!["444455556666".into()];
        let got = pod_registries(["111122223333", "", "111122223333"].into_iter(), &[policy]);
        let want: BTreeSet<String> = ["111122223333", "444455556666"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(got, want, "managed accounts and named ones, no empty id");
        assert!(pod_registries(std::iter::empty(), &[]).is_empty());
    }

    #[test]
    fn scanning_filters_follow_ecr() {
        // The examples of the ECR user guide's registry scanning filters.
        assert!(filter_matches("prod", "team/prod-app"));
        assert!(filter_matches("prod*", "prod-app"));
        assert!(!filter_matches("prod*", "app-prod"));
        assert!(filter_matches("*", "anything/at/all"));
        assert!(filter_matches("base/*", "base/runtime"));
        assert!(!filter_matches("base/*", "team/base"));
    }

    #[test]
    fn names_are_dns_1123_and_distinct() {
        let d = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let account = "111122223333";
        let a = report_name(account, "team/app", &d);
        let b = report_name(account, "team-app", &d);
        assert_ne!(a, b);
        // The same image replicated into another account has a report of its own.
        let other_account = report_name("444455556666", "team/app", &d);
        assert_ne!(a, other_account);
        assert!(a.starts_with("team-app-"), "{a}");
        assert!(a.ends_with("-0123456789abcdef"), "{a}");
        let long = report_name(account, &"x/".repeat(200), &d);
        assert!(long.len() <= 253);
        for n in [a, b, other_account, long, report_name("", "__", &d)] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.starts_with('-') && !n.ends_with('-'), "{n}");
        }
    }

    #[test]
    fn capped_findings_keep_the_most_severe_and_all_counts() {
        let mut findings: Vec<ScanFinding> =
            (0..300).map(|i| f(&format!("CVE-L-{i}"), "LOW")).collect();
        findings.push(f("CVE-CRIT", "CRITICAL"));
        findings.push(f("CVE-HIGH", "HIGH"));
        findings.push(f("CVE-NEW", "SOMETHING_NEW"));
        let scan = ScanFindings {
            status: "COMPLETE".to_string(),
            findings,
            ..ScanFindings::default()
        };
        let spec = build_spec("123", "app", &image(&["b", "a"]), Some(&scan));
        assert!(spec.truncated);
        assert_eq!(spec.findings.len(), MAX_FINDINGS);
        assert_eq!(spec.findings[0].id, "CVE-CRIT");
        assert_eq!(spec.findings[1].id, "CVE-HIGH");
        assert_eq!(spec.summary.critical, 1);
        assert_eq!(spec.summary.high, 1);
        assert_eq!(spec.summary.low, 300);
        assert_eq!(spec.summary.undefined, 1);
        assert_eq!(spec.image_tags, vec!["a", "b"]);
        assert_eq!(spec.scan.scan_type.as_deref(), Some("BASIC"));
    }

    #[test]
    fn ecr_counts_win_and_unknown_states_are_kept_raw() {
        let scan = ScanFindings {
            status: "SOME_FUTURE_STATE".to_string(),
            severity_counts: BTreeMap::from([("CRITICAL".to_string(), 7)]),
            enhanced_findings: vec![f("CVE-1", "CRITICAL")],
            ..ScanFindings::default()
        };
        let spec = build_spec("123", "app", &image(&[]), Some(&scan));
        assert_eq!(spec.summary.critical, 7);
        assert!(!spec.truncated);
        assert_eq!(spec.scan.status, "SOME_FUTURE_STATE");
        assert_eq!(spec.scan.scan_type.as_deref(), Some("ENHANCED"));
        let none = build_spec("123", "app", &image(&[]), None);
        assert_eq!(none.scan.status, NOT_SCANNED);
    }

    #[test]
    fn unchanged_scans_are_not_read_again() {
        let scan = ScanFindings {
            status: "COMPLETE".to_string(),
            completed_at: Some(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap()),
            ..ScanFindings::default()
        };
        let mut img = image(&["a"]);
        let spec = build_spec("123", "app", &img, Some(&scan));
        assert!(!scan_unchanged(&spec, &img), "DescribeImages shows no scan");
        img.scan_status = Some("COMPLETE".to_string());
        img.scan_completed_at = scan.completed_at;
        assert!(scan_unchanged(&spec, &img));
        img.scan_completed_at =
            Some(k8s_openapi::jiff::Timestamp::from_second(1_700_000_001).unwrap());
        assert!(!scan_unchanged(&spec, &img), "a newer scan");
        img.scan_status = Some("ACTIVE".to_string());
        assert!(!scan_unchanged(&spec, &img));
        let unscanned = build_spec("123", "app", &image(&[]), None);
        assert!(scan_unchanged(&unscanned, &image(&[])));
    }
}
