//! The ImageScanReport refresh's decisions, pure. The I/O around them is in `apply.rs`; table
//! tests in `plan_tests.rs`.
//!
//! - **What is read** ([`Pass::managed_targets`], [`Pass::pod_targets`]): every image of each
//!   Ready Repository's ECR repository; and, from repositories no Repository object names, the
//!   images pods run, only in the registries of [`pod_registries`] (a pod must not send the
//!   operator into every account its IAM role reaches).
//! - **Per image** ([`plan_image`]): a report is created for an image without one. An existing
//!   report is refreshed when ECR shows another scan than the one it holds (its findings are read
//!   again) or the image's tags changed (written without reading findings); otherwise nothing is
//!   read or written ([`scan_unchanged`]).
//! - **Scan start**: an image ECR holds no scan for gets a StartImageScan when policy wants it
//!   scanned ([`Managed::scan_required`]: its Repository has `scanOnPush`, or a BASIC ScanPolicy
//!   rule's filter matches the repository; an ENHANCED policy scans by itself). An image with a
//!   scan, failed ones included, gets none.
//! - **Delete** ([`Pass::deletions`]): a report no image of this pass wants, that is of an image
//!   gone from its repository, of a repository no Repository object names and no pod runs, or of
//!   a registry pods may no longer reach. Kept: the reports of a repository whose Repository is
//!   not Ready, or that could not be read or written this pass; and, when the pods could not be
//!   listed, those of repositories no Repository names.
//! - **Scan events** ([`plan_events`]): an event for a Ready Repository's repository refreshes
//!   all its images (once per batch; deletions wait for the scheduled pass); one for an image
//!   that has a report refreshes that image alone, or deletes the report when ECR no longer has
//!   the image ([`EventImage::read`]); any other is ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::ResourceExt;

use super::report::{build_spec, label_value, report_name, sorted};
use super::{MANAGED_BY_LABEL, NOT_SCANNED, REPOSITORY_LABEL};
use crate::api::conditions::is_ready_at;
use crate::api::image_scan_report::{ImageScanReport, ImageScanReportSpec};
use crate::api::scan_policy::ScanType;
use crate::api::{Repository, ScanPolicy};
use crate::controllers::MANAGER;
use crate::controllers::interned::Interned;
use crate::controllers::status::recorded_time;
use crate::registry::{ImageInfo, ScanEvent};

/// A Repository object as the refresh needs it: all its watch keeps of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryEntry {
    /// `spec.registryRef`: the RegistryTarget whose registry holds it, `None` for the own.
    /// Shared, as the registry id, with the other entries that name the same one.
    pub target: Option<Arc<str>>,
    /// `status.repositoryName`: the ECR repository the object manages.
    pub repository: String,
    pub ready: bool,
    pub registry_id: Arc<str>,
    pub scan_on_push: bool,
}

impl RepositoryEntry {
    /// `None` for an object whose status names no ECR repository yet; `shared` holds the
    /// strings entries share.
    pub fn of(r: &Repository, shared: &mut Interned) -> Option<Self> {
        let status = r.status.as_ref()?;
        Some(RepositoryEntry {
            target: r.target().map(|t| shared.share(t)),
            repository: status.repository_name.clone()?,
            ready: is_ready_at(&status.common.conditions, r.metadata.generation),
            registry_id: shared.share(status.registry_id.as_deref().unwrap_or_default()),
            scan_on_push: r.spec.scan_on_push,
        })
    }
}

/// What the refresh knows of the cluster: the repositories Repository objects name, and
/// which of them are Ready (with their registry id and scan on push).
#[derive(Debug, Default)]
pub struct Managed {
    pub known: BTreeSet<String>,
    pub ready: BTreeMap<String, ManagedRepository>,
    /// Filters of BASIC registry scanning rules: matching repositories must be scanned.
    pub scan_filters: Vec<String>,
    /// Registries whose images pods run get reports: see [`pod_registries`].
    pub pod_registries: BTreeSet<String>,
    /// The region of the registry these repositories are in (empty: the operator's own, when
    /// it was not told its region).
    pub region: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedRepository {
    pub registry_id: String,
    pub scan_on_push: bool,
}

impl Managed {
    /// From the Repositories (where two name one ECR repository, the later one counts) and the
    /// ScanPolicies.
    pub fn new<'a>(
        repositories: impl IntoIterator<Item = &'a RepositoryEntry>,
        policies: &[ScanPolicy],
    ) -> Self {
        let mut known = BTreeSet::new();
        let mut ready = BTreeMap::new();
        for r in repositories {
            known.insert(r.repository.clone());
            if r.ready {
                let managed = ManagedRepository {
                    registry_id: r.registry_id.to_string(),
                    scan_on_push: r.scan_on_push,
                };
                ready.insert(r.repository.clone(), managed);
            }
        }
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
            pod_registries(ready.values().map(|r| r.registry_id.as_str()), policies);
        Managed {
            known,
            ready,
            scan_filters,
            pod_registries,
            region: String::new(),
        }
    }

    /// Whether policy wants images of `repository` scanned.
    pub fn scan_required(&self, repository: &str) -> bool {
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

/// An ECR image a pod runs: by digest when the kubelet reported the one it pulled (or the
/// reference pins one), else by tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodImage {
    Digest(String),
    Tag(String),
}

/// The ECR images pods run, by (registry id, repository).
pub type PodImages = BTreeMap<(String, String), BTreeSet<PodImage>>;

/// One ECR repository a pass reads, and which of its images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub registry_id: String,
    /// The registry's region, empty when the operator was not told its own.
    pub region: String,
    pub repository: String,
    pub images: Images,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Images {
    /// Every image (a managed repository, of the operator's own registry).
    All,
    /// Only these (images pods run, or the one a scan event names).
    Only(BTreeSet<PodImage>),
}

/// What to do for one image's report.
#[derive(Debug)]
pub struct ImagePlan<'a> {
    /// The report's name.
    pub name: String,
    pub image: &'a ImageInfo,
    /// The report as it is, if there is one.
    pub current: Option<&'a ImageScanReport>,
    pub step: Step,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The report is up to date: no ECR call, no write.
    Keep,
    /// Write this spec, known without another ECR call: the report's own scan with the image's
    /// tags now, or no scan.
    Write(Box<ImageScanReportSpec>),
    /// ECR shows a scan the report does not hold: read its findings, write what differs.
    Read,
    /// Policy wants the image scanned and ECR holds no scan: start one (at most once a day),
    /// read its findings if it started, write what differs.
    Start,
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
                && spec.scan.completed_at == recorded_time(image.scan_completed_at)
        }
        Some(_) => false,
    }
}

/// The step for one image of `target`, given its report (if any) and whether policy wants it
/// scanned.
pub fn plan_image(
    target: &Target,
    image: &ImageInfo,
    current: Option<&ImageScanReport>,
    scan_required: bool,
) -> Step {
    let (registry_id, region) = (target.registry_id.as_str(), target.region.as_str());
    let repository = target.repository.as_str();
    let needs_scan = image.scan_status.is_none() && scan_required;
    let spec = match current.filter(|r| scan_unchanged(&r.spec, image)) {
        // DescribeImages says the scan is the one the report holds: only tags can differ.
        Some(r) if !needs_scan => {
            let mut spec = r.spec.clone();
            spec.image_tags = sorted(&image.tags);
            spec.registry_id = registry_id.to_string();
            spec.region = region.to_string();
            spec
        }
        _ if needs_scan => return Step::Start,
        // DescribeImages shows every scan ECR holds: an image it shows none for has no
        // findings to read.
        _ if image.scan_status.is_none() => {
            build_spec(registry_id, region, repository, image, None)
        }
        _ => return Step::Read,
    };
    if write_needed(current, &spec, repository) {
        Step::Write(Box::new(spec))
    } else {
        Step::Keep
    }
}

/// Whether the report must be written for it to hold `spec` and the labels it is found by.
pub fn write_needed(
    current: Option<&ImageScanReport>,
    spec: &ImageScanReportSpec,
    repository: &str,
) -> bool {
    let labels_ok = current.is_some_and(|r| {
        r.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGER)
            && r.labels().get(REPOSITORY_LABEL) == Some(&label_value(repository))
    });
    !(current.is_some_and(|r| r.spec == *spec) && labels_ok)
}

/// The plans for the images ECR returned for `target`.
pub fn plan_images<'a>(
    target: &Target,
    images: &'a [ImageInfo],
    existing: &'a BTreeMap<String, ImageScanReport>,
    managed: &Managed,
) -> Vec<ImagePlan<'a>> {
    let scan_required = managed.scan_required(&target.repository);
    images
        .iter()
        .map(|image| {
            let name = report_name(
                &target.registry_id,
                &target.region,
                &target.repository,
                &image.digest,
            );
            let current = existing.get(&name);
            let step = plan_image(target, image, current, scan_required);
            ImagePlan {
                name,
                image,
                current,
                step,
            }
        })
        .collect()
}

/// One refresh pass's decisions, made as its observation comes in: what Kubernetes holds at its
/// start, then what ECR holds, one repository at a time (so that no more than one
/// repository's images are held at once).
pub struct Pass<'a> {
    managed: &'a Managed,
    existing: &'a BTreeMap<String, ImageScanReport>,
    /// The reports that should exist.
    wanted: BTreeSet<String>,
    /// Repositories whose reports stay as they are: not Ready, or not readable this time.
    kept: BTreeSet<String>,
    /// Whether the pods were listed; if not, the reports of pod images stay.
    pods_read: bool,
}

impl<'a> Pass<'a> {
    pub fn new(managed: &'a Managed, existing: &'a BTreeMap<String, ImageScanReport>) -> Self {
        let kept = managed
            .known
            .iter()
            .filter(|r| !managed.ready.contains_key(*r))
            .cloned()
            .collect();
        Pass {
            managed,
            existing,
            wanted: BTreeSet::new(),
            kept,
            pods_read: true,
        }
    }

    /// Every image of each Ready Repository's repository.
    pub fn managed_targets(&self) -> Vec<Target> {
        let ready = &self.managed.ready;
        ready
            .iter()
            .map(|(repository, r)| Target {
                registry_id: r.registry_id.clone(),
                region: self.managed.region.clone(),
                repository: repository.clone(),
                images: Images::All,
            })
            .collect()
    }

    /// The images pods run from repositories no Repository object names, in the registries
    /// pods may reach.
    pub fn pod_targets(&self, pods: &PodImages) -> Vec<Target> {
        let managed = self.managed;
        pods.iter()
            .filter(|((registry_id, repository), _)| {
                !managed.known.contains(repository) && managed.pod_registries.contains(registry_id)
            })
            .map(|((registry_id, repository), refs)| Target {
                registry_id: registry_id.clone(),
                region: managed.region.clone(),
                repository: repository.clone(),
                images: Images::Only(refs.clone()),
            })
            .collect()
    }

    /// The pods could not be listed.
    pub fn pods_unread(&mut self) {
        self.pods_read = false;
    }

    /// The plans for the images ECR returned for `target`; their reports are wanted.
    pub fn images<'i>(&mut self, target: &Target, images: &'i [ImageInfo]) -> Vec<ImagePlan<'i>>
    where
        'a: 'i,
    {
        let plans = plan_images(target, images, self.existing, self.managed);
        self.wanted.extend(plans.iter().map(|p| p.name.clone()));
        plans
    }

    /// `repository` could not be read, or its reports not written: they all stay.
    pub fn failed(&mut self, repository: &str) {
        self.kept.insert(repository.to_string());
    }

    /// The reports to delete once every target is done.
    pub fn deletions(&self) -> Vec<&'a ImageScanReport> {
        let known = &self.managed.known;
        self.existing
            .iter()
            .filter(|(name, report)| {
                let repo = &report.spec.repository_name;
                let pod_image = !known.contains(repo);
                !self.wanted.contains(*name)
                    && !self.kept.contains(repo)
                    && (self.pods_read || !pod_image)
            })
            .map(|(_, report)| report)
            .collect()
    }
}

/// The work one scan event makes.
#[derive(Debug)]
pub enum EventWork<'a> {
    /// A Ready Repository's repository: all its images.
    Repository(Target),
    /// One image with a report: that image alone (see [`EventImage::read`]).
    Image(EventImage<'a>),
    /// Neither: the scheduled pass decides whether the image gets a report.
    Ignore(&'a ScanEvent),
}

#[derive(Debug)]
pub struct EventImage<'a> {
    pub target: Target,
    pub report: &'a ImageScanReport,
}

impl EventImage<'_> {
    /// After DescribeImages of the image: its report is deleted when ECR no longer has it.
    pub fn read(&self, images: &[ImageInfo]) -> Option<String> {
        images.is_empty().then(|| self.report.name_any())
    }
}

/// The work a batch of scan events makes, in the events' order; a repository refreshed whole
/// once.
pub fn plan_events<'a>(
    events: &'a BTreeSet<ScanEvent>,
    managed: &Managed,
    existing: &'a BTreeMap<String, ImageScanReport>,
) -> Vec<EventWork<'a>> {
    let mut whole = BTreeSet::new();
    let mut work = Vec::new();
    for event in events {
        if let Some(repo) = managed.ready.get(&event.repository) {
            if whole.insert(&event.repository) {
                work.push(EventWork::Repository(Target {
                    registry_id: repo.registry_id.clone(),
                    region: managed.region.clone(),
                    repository: event.repository.clone(),
                    images: Images::All,
                }));
            }
        } else if let Some(report) = report_of(event, existing) {
            let registry_id = event
                .registry_id
                .clone()
                .unwrap_or_else(|| report.spec.registry_id.clone());
            let target = Target {
                registry_id,
                region: managed.region.clone(),
                repository: event.repository.clone(),
                images: Images::Only(BTreeSet::from([PodImage::Digest(event.digest.clone())])),
            };
            work.push(EventWork::Image(EventImage { target, report }));
        } else {
            work.push(EventWork::Ignore(event));
        }
    }
    work
}

/// The report of the image an event names (of the registry it names, if it does).
fn report_of<'a>(
    event: &ScanEvent,
    existing: &'a BTreeMap<String, ImageScanReport>,
) -> Option<&'a ImageScanReport> {
    existing.values().find(|r| {
        r.spec.repository_name == event.repository
            && r.spec.image_digest == event.digest
            && event
                .registry_id
                .as_ref()
                .is_none_or(|id| *id == r.spec.registry_id)
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
