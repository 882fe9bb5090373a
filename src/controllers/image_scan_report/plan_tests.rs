//! Table tests of the ImageScanReport refresh's decisions (`plan.rs`).

use super::*;
use crate::api::scan_policy::{ScanFilter, ScanRule};
use crate::registry::ScanFindings;
use k8s_openapi::jiff::Timestamp;

const ACCOUNT: &str = "111122223333";
const FOREIGN: &str = "999999999999";
const APP: &str = "team/app";
const BASE: &str = "base/runtime";
const PENDING: &str = "team/pending";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// A Repository of ours, as its watch keeps it.
fn entry(repository: &str, ready: bool, registry_id: &str, scan_on_push: bool) -> RepositoryEntry {
    RepositoryEntry {
        target: None,
        repository: repository.into(),
        ready,
        registry_id: registry_id.into(),
        scan_on_push,
    }
}

fn at(second: i64) -> Option<Timestamp> {
    Timestamp::from_second(second).ok()
}

/// Image `n` with `tags` and the scan DescribeImages shows: (status, completed at).
fn image(n: u8, tags: &[&str], scan: Option<(&str, i64)>) -> ImageInfo {
    ImageInfo {
        digest: digest(n),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: None,
        size_bytes: None,
        scan_status: scan.map(|(s, _)| s.to_string()),
        scan_completed_at: scan.and_then(|(_, t)| at(t)),
        ..Default::default()
    }
}

/// The report the operator writes for `image` as ECR shows it now.
fn report(registry_id: &str, repository: &str, image: &ImageInfo) -> (String, ImageScanReport) {
    let scan = image.scan_status.as_ref().map(|status| ScanFindings {
        status: status.clone(),
        completed_at: image.scan_completed_at,
        ..ScanFindings::default()
    });
    let spec = build_spec(registry_id, "", repository, image, scan.as_ref());
    let name = report_name(registry_id, "", repository, &image.digest);
    let mut r = ImageScanReport::new(&name, spec);
    r.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGER.to_string()),
        (REPOSITORY_LABEL.to_string(), label_value(repository)),
    ]));
    (name, r)
}

fn policy(scan_type: ScanType, filters: &[&str], registry_ids: &[&str]) -> ScanPolicy {
    let mut p = ScanPolicy::new("p", Default::default());
    p.spec.scan_type = scan_type;
    p.spec.rules = vec![ScanRule {
        repository_filters: filters
            .iter()
            .map(|f| ScanFilter {
                filter: f.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }];
    p.spec.registry_ids = registry_ids.iter().map(|r| r.to_string()).collect();
    p
}

/// One refresh pass's observation. The base: a Ready Repository for `team/app`, whose two
/// images (v1 scanned, v2 not) have up-to-date reports; no pod, no ScanPolicy.
#[derive(Clone)]
struct Scenario {
    repositories: Vec<RepositoryEntry>,
    policies: Vec<ScanPolicy>,
    /// `None`: the pods could not be listed.
    pods: Option<PodImages>,
    /// What ECR returns, by repository; a repository missing here cannot be read.
    ecr: BTreeMap<String, Vec<ImageInfo>>,
    reports: BTreeMap<String, ImageScanReport>,
    /// Repositories whose reports cannot be written.
    unwritable: Vec<&'static str>,
}

impl Scenario {
    fn new() -> Self {
        let images = vec![
            image(1, &["v1"], Some(("COMPLETE", 1_700_000_000))),
            image(2, &["v2"], None),
        ];
        Scenario {
            repositories: vec![entry(APP, true, ACCOUNT, false)],
            policies: Vec::new(),
            pods: Some(PodImages::new()),
            reports: images.iter().map(|i| report(ACCOUNT, APP, i)).collect(),
            ecr: BTreeMap::from([(APP.to_string(), images)]),
            unwritable: Vec::new(),
        }
    }

    fn app(mut self, f: impl FnOnce(&mut RepositoryEntry)) -> Self {
        f(&mut self.repositories[0]);
        self
    }

    fn ecr(mut self, repository: &str, f: impl FnOnce(&mut Vec<ImageInfo>)) -> Self {
        f(self.ecr.entry(repository.to_string()).or_default());
        self
    }

    fn pod(mut self, registry_id: &str, repository: &str, image: PodImage) -> Self {
        let pods = self.pods.get_or_insert_with(PodImages::new);
        let key = (registry_id.to_string(), repository.to_string());
        pods.entry(key).or_default().insert(image);
        self
    }

    /// `base/runtime:1.0` (image 5, unscanned) in ECR.
    fn base_image(self) -> Self {
        self.ecr(BASE, |i| i.push(image(5, &["1.0"], None)))
    }

    /// Changes the `n`th existing report (in name order).
    fn report(mut self, n: usize, f: impl FnOnce(&mut ImageScanReport)) -> Self {
        if let Some(r) = self.reports.values_mut().nth(n) {
            f(r);
        }
        self
    }

    fn with_report(mut self, registry_id: &str, repository: &str, image: &ImageInfo) -> Self {
        self.reports
            .extend([report(registry_id, repository, image)]);
        self
    }

    fn with_policy(mut self, p: ScanPolicy) -> Self {
        self.policies.push(p);
        self
    }

    /// What ECR returns for `target`: every image, or those the pods name by digest or tag.
    fn read(&self, target: &Target) -> Option<Vec<ImageInfo>> {
        let images = self.ecr.get(&target.repository)?;
        Some(match &target.images {
            Images::All => images.clone(),
            Images::Only(refs) => images
                .iter()
                .filter(|i| {
                    refs.iter().any(|r| match r {
                        PodImage::Digest(d) => *d == i.digest,
                        PodImage::Tag(t) => i.tags.contains(t),
                    })
                })
                .cloned()
                .collect(),
        })
    }

    /// The pass as `apply::refresh` makes it, without the I/O: one line per report touched or
    /// kept, in the order of the pass.
    fn run(&self) -> Vec<String> {
        let managed = Managed::new(&self.repositories, &self.policies);
        let mut pass = Pass::new(&managed, &self.reports);
        let mut targets = pass.managed_targets();
        match &self.pods {
            Some(pods) => targets.extend(pass.pod_targets(pods)),
            None => pass.pods_unread(),
        }
        let mut out = Vec::new();
        for target in &targets {
            let Some(images) = self.read(target) else {
                pass.failed(&target.repository);
                continue;
            };
            out.extend(pass.images(target, &images).iter().map(|p| line(target, p)));
            if self.unwritable.contains(&target.repository.as_str()) {
                pass.failed(&target.repository);
            }
        }
        let deleted = pass.deletions().into_iter().map(|r| {
            format!(
                "delete {}@{}",
                r.spec.repository_name,
                &r.spec.image_digest[7..9]
            )
        });
        out.extend(deleted);
        out
    }
}

/// `create|refresh|keep <repository>@<digest's first byte>[ start|read|write]`.
fn line(target: &Target, p: &ImagePlan) -> String {
    let what = match (&p.current, &p.step) {
        (None, _) => "create",
        (Some(_), Step::Keep) => "keep",
        (Some(_), _) => "refresh",
    };
    let step = match &p.step {
        Step::Keep => "",
        Step::Write(_) => " write",
        Step::Read => " read",
        Step::Start => " start",
    };
    format!(
        "{what} {}@{}{step}",
        target.repository,
        &p.image.digest[7..9]
    )
}

#[test]
fn pass_table() {
    let base = Scenario::new;
    let later = 1_700_000_100;
    let tag = |t: &str| PodImage::Tag(t.into());
    // (what, scenario, what the pass does: `create|refresh|keep|delete <repo>@<digest>[ step]`).
    let cases: Vec<(&str, Scenario, &str)> = vec![
        (
            "in sync: nothing read or written",
            base(),
            "keep team/app@01, keep team/app@02",
        ),
        // Create.
        (
            "new unscanned image: created without reading findings",
            base().ecr(APP, |i| i.push(image(3, &["v3"], None))),
            "keep team/app@01, keep team/app@02, create team/app@03 write",
        ),
        (
            "new scanned image: created from its findings",
            base().ecr(APP, |i| i.push(image(3, &[], Some(("COMPLETE", later))))),
            "keep team/app@01, keep team/app@02, create team/app@03 read",
        ),
        // Refresh.
        (
            "refresh due: a newer scan",
            base().ecr(APP, |i| i[0].scan_completed_at = at(later)),
            "refresh team/app@01 read, keep team/app@02",
        ),
        (
            "refresh due: a scan under way",
            base().ecr(APP, |i| i[1].scan_status = Some("IN_PROGRESS".into())),
            "keep team/app@01, refresh team/app@02 read",
        ),
        (
            "refresh due: an enhanced scan cannot be told unchanged",
            base().ecr(APP, |i| i[0].scan_status = Some("ACTIVE".into())),
            "refresh team/app@01 read, keep team/app@02",
        ),
        (
            "refresh not due: the same scan, a new tag, written without reading",
            base().ecr(APP, |i| i[0].tags.push("stable".into())),
            "refresh team/app@01 write, keep team/app@02",
        ),
        (
            "refresh not due: lost labels put back",
            base().report(0, |r| r.metadata.labels = None),
            "refresh team/app@01 write, keep team/app@02",
        ),
        // Delete, or keep.
        (
            "image gone: its report deleted",
            base().ecr(APP, |i| i.truncate(1)),
            "keep team/app@01, delete team/app@02",
        ),
        (
            "repository gone: its reports deleted",
            Scenario {
                repositories: vec![],
                ..base()
            },
            "delete team/app@01, delete team/app@02",
        ),
        (
            "repository not Ready: nothing read, reports kept",
            base().app(|r| r.ready = false).ecr(APP, |i| i.truncate(1)),
            "",
        ),
        (
            "repository unreadable: reports kept",
            Scenario {
                ecr: BTreeMap::new(),
                ..base()
            },
            "",
        ),
        (
            "reports not written: the repository's stale ones kept",
            Scenario {
                unwritable: vec![APP],
                ..base().ecr(APP, |i| i.truncate(1))
            },
            "keep team/app@01",
        ),
        (
            "repository gone, pods not listed: reports kept",
            Scenario {
                repositories: vec![],
                pods: None,
                ..base()
            },
            "",
        ),
        // Images pods run.
        (
            "pod image by tag: created, the repository's other images not",
            base()
                .ecr(BASE, |i| {
                    i.extend([image(5, &["1.0"], None), image(6, &["0.9"], None)])
                })
                .pod(ACCOUNT, BASE, tag("1.0")),
            "keep team/app@01, keep team/app@02, create base/runtime@05 write",
        ),
        (
            "pod image by digest",
            base()
                .base_image()
                .pod(ACCOUNT, BASE, PodImage::Digest(digest(5))),
            "keep team/app@01, keep team/app@02, create base/runtime@05 write",
        ),
        (
            "pod image of a managed repository: read once, as the repository",
            base().pod(ACCOUNT, APP, PodImage::Digest(digest(1))),
            "keep team/app@01, keep team/app@02",
        ),
        (
            "pod image of a registry pods may not reach: not read",
            base().base_image().pod(FOREIGN, BASE, tag("1.0")),
            "keep team/app@01, keep team/app@02",
        ),
        (
            "a ScanPolicy's registryIds open a registry",
            base()
                .base_image()
                .pod(FOREIGN, BASE, tag("1.0"))
                .with_policy(policy(ScanType::Basic, &[], &[FOREIGN])),
            "keep team/app@01, keep team/app@02, create base/runtime@05 write",
        ),
        (
            "registry no longer reachable: its pod image's report deleted",
            base()
                .base_image()
                .pod(FOREIGN, BASE, tag("1.0"))
                .with_report(FOREIGN, BASE, &image(5, &["1.0"], None)),
            "keep team/app@01, keep team/app@02, delete base/runtime@05",
        ),
        (
            "no pod runs the image any more: its report deleted",
            base().with_report(ACCOUNT, BASE, &image(5, &["1.0"], None)),
            "keep team/app@01, keep team/app@02, delete base/runtime@05",
        ),
        (
            "pods not listed: pod image reports kept, managed ones refreshed",
            Scenario {
                pods: None,
                ..base()
                    .with_report(ACCOUNT, BASE, &image(5, &["1.0"], None))
                    .ecr(APP, |i| i.truncate(1))
            },
            "keep team/app@01, delete team/app@02",
        ),
        // Scan start.
        (
            "scanOnPush: the unscanned image gets a scan, the scanned one none",
            base().app(|r| r.scan_on_push = true),
            "keep team/app@01, refresh team/app@02 start",
        ),
        (
            "scanOnPush: a new image is created by a scan start",
            base()
                .app(|r| r.scan_on_push = true)
                .ecr(APP, |i| i.push(image(3, &["v3"], None))),
            "keep team/app@01, refresh team/app@02 start, create team/app@03 start",
        ),
        (
            "scan failed: its findings read, no scan started",
            base()
                .app(|r| r.scan_on_push = true)
                .ecr(APP, |i| i[1].scan_status = Some("FAILED".into())),
            "keep team/app@01, refresh team/app@02 read",
        ),
        (
            "BASIC policy filter without wildcard: names that contain it",
            base().with_policy(policy(ScanType::Basic, &["team"], &[])),
            "keep team/app@01, refresh team/app@02 start",
        ),
        (
            "BASIC policy filter for other repositories: no scan",
            base().with_policy(policy(ScanType::Basic, &["base/*"], &[])),
            "keep team/app@01, keep team/app@02",
        ),
        (
            "ENHANCED policy: Inspector scans, no StartImageScan",
            base().with_policy(policy(ScanType::Enhanced, &["team"], &[])),
            "keep team/app@01, keep team/app@02",
        ),
        (
            "policy filter reaches pod images too",
            base()
                .base_image()
                .pod(ACCOUNT, BASE, tag("1.0"))
                .with_policy(policy(ScanType::Basic, &["base/*"], &[])),
            "keep team/app@01, keep team/app@02, create base/runtime@05 start",
        ),
    ];
    for (what, scenario, want) in cases {
        assert_eq!(scenario.run().join(", "), want, "{what}");
    }
}

/// The spec a plan writes without asking ECR again: the report's own scan with today's tags.
#[test]
fn tag_changes_keep_the_scan() {
    let s = Scenario::new().ecr(APP, |i| i[0].tags = vec!["z".into(), "a".into()]);
    let managed = Managed::new(&s.repositories, &s.policies);
    let target = &Pass::new(&managed, &s.reports).managed_targets()[0];
    let plans = plan_images(target, &s.ecr[APP], &s.reports, &managed);
    let (Step::Write(spec), Some(current)) = (&plans[0].step, plans[0].current) else {
        panic!("{:?}", plans[0]);
    };
    assert_eq!(spec.image_tags, vec!["a", "z"]);
    assert_eq!(spec.scan, current.spec.scan);
    assert!(!write_needed(Some(current), &current.spec, APP));
    assert!(write_needed(None, spec, APP));
}

#[test]
fn event_table() {
    let mut base = Scenario::new()
        .with_report(ACCOUNT, BASE, &image(5, &["1.0"], None))
        .with_report(ACCOUNT, PENDING, &image(7, &["1"], None));
    base.repositories
        .push(entry(PENDING, false, ACCOUNT, false));
    let event = |registry_id: Option<&str>, repository: &str, n: u8| ScanEvent {
        registry_id: registry_id.map(String::from),
        repository: repository.into(),
        digest: digest(n),
    };
    // (what, the batch, the work it makes).
    let cases: Vec<(&str, Vec<ScanEvent>, &str)> = vec![
        (
            "a Ready Repository's repository is refreshed whole, once",
            vec![event(Some(ACCOUNT), APP, 1), event(None, APP, 9)],
            "all of team/app in 111122223333",
        ),
        (
            "an image with a report, alone",
            vec![event(Some(ACCOUNT), BASE, 5)],
            "base/runtime@05 in 111122223333",
        ),
        (
            "an event without a registry: the report's",
            vec![event(None, BASE, 5)],
            "base/runtime@05 in 111122223333",
        ),
        (
            "the same image in another registry has no report",
            vec![event(Some(FOREIGN), BASE, 5)],
            "ignore base/runtime@05",
        ),
        (
            "an image without a report waits for the scheduled pass",
            vec![event(Some(ACCOUNT), BASE, 6)],
            "ignore base/runtime@06",
        ),
        (
            "a Repository not Ready: only an image with a report, alone",
            vec![event(None, PENDING, 7), event(None, PENDING, 8)],
            "team/pending@07 in 111122223333, ignore team/pending@08",
        ),
    ];
    let managed = Managed::new(&base.repositories, &base.policies);
    for (what, events, want) in cases {
        let events: BTreeSet<ScanEvent> = events.into_iter().collect();
        let got: Vec<String> = plan_events(&events, &managed, &base.reports)
            .iter()
            .map(|w| match w {
                EventWork::Repository(t) => format!("all of {} in {}", t.repository, t.registry_id),
                EventWork::Image(EventImage { target, report }) => {
                    assert_eq!(
                        target.images,
                        Images::Only(BTreeSet::from([PodImage::Digest(
                            report.spec.image_digest.clone()
                        )]))
                    );
                    let digest = &report.spec.image_digest[7..9];
                    format!("{}@{digest} in {}", target.repository, target.registry_id)
                }
                EventWork::Ignore(e) => format!("ignore {}@{}", e.repository, &e.digest[7..9]),
            })
            .collect();
        assert_eq!(got.join(", "), want, "{what}");
    }
    // The image an event names: deleted when ECR no longer has it, else refreshed.
    let events = BTreeSet::from([event(None, BASE, 5)]);
    let work = plan_events(&events, &managed, &base.reports);
    let [EventWork::Image(one)] = work.as_slice() else {
        panic!("{work:?}");
    };
    let name = report_name(ACCOUNT, "", BASE, &digest(5));
    assert_eq!(one.read(&[]), Some(name));
    assert_eq!(one.read(&[image(5, &["1.0"], None)]), None);
}

#[test]
fn repositories_as_the_refresh_sees_them() {
    let managed = Managed::new(
        &[
            entry(APP, true, ACCOUNT, false),
            entry("team/pending", false, "", false),
            // A second object naming the same repository: the later one counts.
            entry(APP, true, ACCOUNT, true),
        ],
        &[],
    );
    assert_eq!(
        managed.known,
        BTreeSet::from([APP.to_string(), "team/pending".to_string()])
    );
    assert_eq!(managed.ready.keys().collect::<Vec<_>>(), vec![APP]);
    assert!(managed.scan_required(APP));
    assert!(!managed.scan_required("team/pending"));
    assert_eq!(
        managed.pod_registries,
        BTreeSet::from([ACCOUNT.to_string()])
    );
    // A status that names no repository yet: not one the refresh knows.
    let shared = &mut Interned::default();
    let mut r = Repository::new("app", Default::default());
    assert_eq!(RepositoryEntry::of(&r, shared), None);
    r.status = Some(Default::default());
    assert_eq!(RepositoryEntry::of(&r, shared), None);
    // Entries of one registry share its id and their target's name.
    let named = |name: &str| {
        let mut r = Repository::new(name, Default::default());
        r.spec.registry_ref = Some(crate::api::registry_target::RegistryRef {
            name: "prod".into(),
        });
        r.status = Some(crate::api::repository::RepositoryStatus {
            repository_name: Some(format!("team/{name}")),
            registry_id: Some(ACCOUNT.into()),
            ..Default::default()
        });
        r
    };
    let a = RepositoryEntry::of(&named("a"), shared).expect("names a repository");
    let b = RepositoryEntry::of(&named("b"), shared).expect("names a repository");
    assert_eq!(
        (&*a.registry_id, a.target.as_deref()),
        (ACCOUNT, Some("prod"))
    );
    assert_eq!(b.repository, "team/b");
    assert!(Arc::ptr_eq(&a.registry_id, &b.registry_id));
    assert!(Arc::ptr_eq(
        a.target.as_ref().unwrap(),
        b.target.as_ref().unwrap()
    ));
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
fn unchanged_scans_are_not_read_again() {
    fn image(tags: &[&str]) -> ImageInfo {
        ImageInfo {
            digest: format!("sha256:{}", "ab".repeat(32)),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: None,
            size_bytes: None,
            scan_status: None,
            scan_completed_at: None,
            ..Default::default()
        }
    }
    let scan = ScanFindings {
        status: "COMPLETE".to_string(),
        completed_at: Some(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap()),
        ..ScanFindings::default()
    };
    let mut img = image(&["a"]);
    let spec = build_spec("123", "", "app", &img, Some(&scan));
    assert!(!scan_unchanged(&spec, &img), "DescribeImages shows no scan");
    img.scan_status = Some("COMPLETE".to_string());
    img.scan_completed_at = scan.completed_at;
    assert!(scan_unchanged(&spec, &img));
    img.scan_completed_at = Some(k8s_openapi::jiff::Timestamp::from_second(1_700_000_001).unwrap());
    assert!(!scan_unchanged(&spec, &img), "a newer scan");
    img.scan_status = Some("ACTIVE".to_string());
    assert!(!scan_unchanged(&spec, &img));
    let unscanned = build_spec("123", "", "app", &image(&[]), None);
    assert!(scan_unchanged(&unscanned, &image(&[])));
}
