//! The decision table, properties and the pieces' own tests.

use super::full_index_tests::FullIndex;
use super::*;
use crate::api::image_scan_report::{ScanState, SeveritySummary};
use crate::api::scan_policy::{AllowlistEntry, ScanPolicySpec};
use crate::image::selector::selector;
use chrono::TimeZone;
use proptest::prelude::*;

const ACCOUNT: &str = "123456789012";
const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const REGION: &str = "us-east-1";
const D_APP: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const D_CLEAN: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const D_HIGH: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const D_TRUNC: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
const CRIT: &str = "CVE-2024-3094";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn days_ago(days: i64) -> String {
    (now() - TimeDelta::days(days)).to_rfc3339()
}

fn ecr(repo_tag: &str) -> String {
    format!("{HOST}/{repo_tag}")
}

fn finding(id: &str, severity: Severity) -> Finding {
    Finding {
        id: id.into(),
        severity,
        package: Some("pkg".into()),
        ..Finding::default()
    }
}

fn summary_of(findings: &[Finding]) -> SeveritySummary {
    let mut s = SeveritySummary::default();
    for f in findings {
        *s.count_mut(Some(f.severity)) += 1;
    }
    s
}

fn report(repo: &str, digest: &str, tags: &[&str], findings: Vec<Finding>) -> ImageScanReportSpec {
    ImageScanReportSpec {
        registry_id: ACCOUNT.into(),
        region: REGION.into(),
        repository_name: repo.into(),
        image_digest: digest.into(),
        image_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        scan: ScanState {
            status: "COMPLETE".into(),
            completed_at: Some(days_ago(1)),
            ..ScanState::default()
        },
        summary: summary_of(&findings),
        findings,
        truncated: false,
    }
}

fn policy(name: &str, f: impl FnOnce(&mut Enforcement)) -> ScanPolicy {
    let mut enforcement = Enforcement::default();
    f(&mut enforcement);
    ScanPolicy::new(
        name,
        ScanPolicySpec {
            registry_ref: None,
            enforcement,
            ..ScanPolicySpec::default()
        },
    )
}

fn allow(id: &str, expires: Option<&str>, images: &[&str]) -> AllowlistEntry {
    AllowlistEntry {
        id: id.into(),
        reason: "accepted by security team".into(),
        expires: expires.map(str::to_owned),
        images: images.iter().map(|i| (*i).to_owned()).collect(),
    }
}

fn container(kind: ContainerKind, name: &str, image: &str) -> PodImage {
    PodImage {
        container: name.into(),
        kind,
        image: image.into(),
        resolution: TagResolution::NotLookedUp,
    }
}

/// A pod in namespace `shop` (labels env=prod) running one ECR image with a CRITICAL
/// finding; reports for a few more images.
#[derive(Clone, Debug)]
struct Scenario {
    namespace: String,
    labels: BTreeMap<String, String>,
    images: Vec<PodImage>,
    policies: Vec<ScanPolicy>,
    reports: Vec<ImageScanReportSpec>,
}

impl Scenario {
    fn new() -> Self {
        let truncated = {
            let mut r = report(
                "trunc",
                D_TRUNC,
                &["v1"],
                vec![finding("CVE-H", Severity::High)],
            );
            r.summary.critical = 2;
            r.truncated = true;
            r
        };
        Self {
            namespace: "shop".into(),
            labels: [("kubernetes.io/metadata.name", "shop"), ("env", "prod")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            images: vec![container(ContainerKind::Container, "app", &ecr("app:v1"))],
            policies: Vec::new(),
            reports: vec![
                report(
                    "app",
                    D_APP,
                    &["v1"],
                    vec![
                        finding(CRIT, Severity::Critical),
                        finding("CVE-2024-0002", Severity::High),
                        finding("CVE-2024-0003", Severity::Medium),
                    ],
                ),
                report(
                    "clean",
                    D_CLEAN,
                    &["v1"],
                    vec![finding("CVE-L", Severity::Low)],
                ),
                report(
                    "high",
                    D_HIGH,
                    &["v1"],
                    vec![finding("CVE-H", Severity::High)],
                ),
                truncated,
            ],
        }
    }

    fn with_policy(mut self, f: impl FnOnce(&mut Enforcement)) -> Self {
        self.policies.push(policy("strict", f));
        self
    }

    fn with_image(mut self, image: &str) -> Self {
        self.images = vec![container(ContainerKind::Container, "app", image)];
        self
    }

    fn decide(&self) -> Decision {
        let index: ReportIndex = self.reports.iter().cloned().collect();
        self.decide_with(&index)
    }

    /// The decision from the whole reports, as the index held them before issue #17.
    fn decide_full(&self) -> Decision {
        let index: FullIndex = self.reports.iter().cloned().collect();
        self.decide_with(&index)
    }

    fn decide_with(&self, index: &dyn ReportLookup) -> Decision {
        decide(&DecisionInput {
            namespace: &self.namespace,
            namespace_labels: &self.labels,
            images: &self.images,
            policies: &self.policies,
            reports: index,
            now: now(),
        })
    }
}

fn verdicts(d: &Decision) -> Vec<Verdict> {
    d.audit.iter().map(|r| r.verdict).collect()
}

#[test]
fn decision_table() {
    use Verdict::*;
    let base = Scenario::new;
    let future = days_ago(-30);
    let past = days_ago(1);
    // (name, scenario, one verdict per (applicable policy, image)); the pod is denied iff a
    // verdict is Deny, with one warning per Warn.
    let cases: Vec<(&str, Scenario, Vec<Verdict>)> = vec![
        ("no policy", base(), vec![]),
        ("CRITICAL denied", base().with_policy(|_| {}), vec![Deny]),
        (
            "allowlisted",
            base().with_policy(|e| e.allowlist = vec![allow(CRIT, None, &[])]),
            vec![Pass],
        ),
        (
            "allowlisted until a future date",
            base().with_policy(|e| e.allowlist = vec![allow(CRIT, Some(&future), &[])]),
            vec![Pass],
        ),
        (
            "allowlist id is case-insensitive",
            base().with_policy(|e| e.allowlist = vec![allow("cve-2024-3094", None, &[])]),
            vec![Pass],
        ),
        (
            "allowlist expired",
            base().with_policy(|e| e.allowlist = vec![allow(CRIT, Some(&past), &[])]),
            vec![Deny],
        ),
        (
            "allowlist expiry that does not parse counts as expired",
            base().with_policy(|e| {
                e.allowlist = vec![allow(CRIT, Some("2099-13-01T00:00:00Z"), &[])]
            }),
            vec![Deny],
        ),
        (
            "allowlist for other images",
            base().with_policy(|e| e.allowlist = vec![allow(CRIT, None, &["*/other:*"])]),
            vec![Deny],
        ),
        (
            "allowlist for this image",
            base().with_policy(|e| e.allowlist = vec![allow(CRIT, None, &[&ecr("app:*")])]),
            vec![Pass],
        ),
        (
            "allowlist for another id",
            base().with_policy(|e| e.allowlist = vec![allow("CVE-2024-0002", None, &[])]),
            vec![Deny],
        ),
        (
            "warn mode",
            base().with_policy(|e| e.mode = EnforcementMode::Warn),
            vec![Warn],
        ),
        (
            "audit mode",
            base().with_policy(|e| e.mode = EnforcementMode::Audit),
            vec![Audit],
        ),
        (
            "exempt namespace",
            base().with_policy(|e| e.exempt_namespaces = vec!["shop".into()]),
            vec![Exempt],
        ),
        (
            "exempt namespace pattern",
            base().with_policy(|e| e.exempt_namespaces = vec!["sh*".into()]),
            vec![Exempt],
        ),
        (
            "other namespace exempt",
            base().with_policy(|e| e.exempt_namespaces = vec!["kube-system".into()]),
            vec![Deny],
        ),
        (
            "exempt image",
            base().with_policy(|e| {
                e.exempt_images = vec![format!("{ACCOUNT}.dkr.ecr.*.amazonaws.com/app:*")]
            }),
            vec![Exempt],
        ),
        (
            "exempt image by repository name",
            base().with_policy(|e| e.exempt_images = vec![ecr("app")]),
            vec![Exempt],
        ),
        (
            "exempt pattern for other images",
            base().with_policy(|e| e.exempt_images = vec!["docker.io/*".into(), ecr("app:v2")]),
            vec![Deny],
        ),
        (
            "unscanned allow",
            base()
                .with_image(&ecr("new:v1"))
                .with_policy(|e| e.unscanned = UnscannedAction::Allow),
            vec![Pass],
        ),
        (
            "unscanned warn",
            base()
                .with_image(&ecr("new:v1"))
                .with_policy(|e| e.unscanned = UnscannedAction::Warn),
            vec![Warn],
        ),
        (
            "unscanned deny",
            base()
                .with_image(&ecr("new:v1"))
                .with_policy(|e| e.unscanned = UnscannedAction::Deny),
            vec![Deny],
        ),
        (
            "unscanned deny in warn mode warns",
            base().with_image(&ecr("new:v1")).with_policy(|e| {
                e.unscanned = UnscannedAction::Deny;
                e.mode = EnforcementMode::Warn;
            }),
            vec![Warn],
        ),
        (
            "unscanned warn in audit mode only records",
            base().with_image(&ecr("new:v1")).with_policy(|e| {
                e.unscanned = UnscannedAction::Warn;
                e.mode = EnforcementMode::Audit;
            }),
            vec![Audit],
        ),
        (
            "failed scan is unscanned",
            {
                let mut s = base().with_image(&ecr("clean:v1"));
                s.reports[1].scan.status = "FAILED".into();
                s.with_policy(|e| e.unscanned = UnscannedAction::Deny)
            },
            vec![Deny],
        ),
        (
            "ACTIVE (enhanced) scan is a scan",
            {
                let mut s = base().with_image(&ecr("clean:v1"));
                s.reports[1].scan.status = "ACTIVE".into();
                s.with_policy(|e| e.unscanned = UnscannedAction::Deny)
            },
            vec![Pass],
        ),
        (
            "scan older than maxScanAgeDays is unscanned",
            {
                let mut s = base().with_image(&ecr("clean:v1"));
                s.reports[1].scan.completed_at = Some(days_ago(40));
                s.with_policy(|e| {
                    e.max_scan_age_days = Some(30);
                    e.unscanned = UnscannedAction::Deny;
                })
            },
            vec![Deny],
        ),
        (
            "scan within maxScanAgeDays",
            {
                let mut s = base().with_image(&ecr("clean:v1"));
                s.reports[1].scan.completed_at = Some(days_ago(29));
                s.with_policy(|e| {
                    e.max_scan_age_days = Some(30);
                    e.unscanned = UnscannedAction::Deny;
                })
            },
            vec![Pass],
        ),
        (
            "scan of unknown age with maxScanAgeDays",
            {
                let mut s = base().with_image(&ecr("clean:v1"));
                s.reports[1].scan.completed_at = None;
                s.with_policy(|e| {
                    e.max_scan_age_days = Some(30);
                    e.unscanned = UnscannedAction::Warn;
                })
            },
            vec![Warn],
        ),
        (
            "old scan's findings still count when unscanned is allowed",
            {
                let mut s = base();
                s.reports[0].scan.completed_at = Some(days_ago(400));
                s.with_policy(|e| e.max_scan_age_days = Some(30))
            },
            vec![Deny],
        ),
        (
            "non-ECR image",
            base()
                .with_image("nginx:1.25")
                .with_policy(|e| e.unscanned = UnscannedAction::Deny),
            vec![NotChecked],
        ),
        (
            "ECR Public is not a private registry",
            base()
                .with_image("public.ecr.aws/nginx/nginx")
                .with_policy(|_| {}),
            vec![NotChecked],
        ),
        (
            "invalid reference is a violation",
            base().with_image("Team/App:v1").with_policy(|_| {}),
            vec![Deny],
        ),
        (
            "init container",
            {
                let mut s = base().with_policy(|_| {});
                s.images = vec![
                    container(ContainerKind::Container, "main", &ecr("clean:v1")),
                    container(ContainerKind::InitContainer, "setup", &ecr("app:v1")),
                ];
                s
            },
            vec![Pass, Deny],
        ),
        (
            "ephemeral container",
            {
                let mut s = base().with_policy(|_| {});
                s.images = vec![
                    container(ContainerKind::Container, "main", &ecr("clean:v1")),
                    container(ContainerKind::EphemeralContainer, "debug", &ecr("app:v1")),
                ];
                s
            },
            vec![Pass, Deny],
        ),
        (
            "namespaceSelector matches",
            base().with_policy(|e| e.namespace_selector = Some(selector(&[("env", "prod")], &[]))),
            vec![Deny],
        ),
        (
            "namespaceSelector does not match",
            base().with_policy(|e| e.namespace_selector = Some(selector(&[("env", "dev")], &[]))),
            vec![],
        ),
        (
            "namespaceSelector expression matches",
            base().with_policy(|e| {
                e.namespace_selector = Some(selector(&[], &[("env", "In", &["prod", "staging"])]))
            }),
            vec![Deny],
        ),
        (
            "namespaceSelector expression does not match",
            base().with_policy(|e| {
                e.namespace_selector = Some(selector(&[], &[("env", "NotIn", &["prod"])]))
            }),
            vec![],
        ),
        (
            "invalid namespaceSelector applies everywhere",
            base().with_policy(|e| {
                e.namespace_selector = Some(selector(&[("env", "dev")], &[("env", "in", &["dev"])]))
            }),
            vec![Deny],
        ),
        (
            "threshold HIGH denies HIGH",
            base()
                .with_image(&ecr("high:v1"))
                .with_policy(|e| e.severity_threshold = Severity::High),
            vec![Deny],
        ),
        (
            "threshold CRITICAL passes HIGH",
            base()
                .with_image(&ecr("high:v1"))
                .with_policy(|e| e.severity_threshold = Severity::Critical),
            vec![Pass],
        ),
        (
            "threshold HIGH passes LOW",
            base()
                .with_image(&ecr("clean:v1"))
                .with_policy(|e| e.severity_threshold = Severity::High),
            vec![Pass],
        ),
        (
            "threshold LOW denies LOW",
            base()
                .with_image(&ecr("clean:v1"))
                .with_policy(|e| e.severity_threshold = Severity::Low),
            vec![Deny],
        ),
        (
            "truncated report: CRITICAL in the summary only",
            base().with_image(&ecr("trunc:v1")).with_policy(|e| {
                e.allowlist = vec![allow("CVE-H", None, &[])];
            }),
            vec![Deny],
        ),
        (
            "summary covering only listed, allowlisted findings",
            {
                let mut s = base();
                s.reports[0].truncated = true;
                s.with_policy(|e| e.allowlist = vec![allow(CRIT, None, &[])])
            },
            vec![Pass],
        ),
        (
            "strictest policy wins",
            {
                let mut s = base();
                s.policies = vec![
                    policy("a-warn", |e| e.mode = EnforcementMode::Warn),
                    policy("b-enforce", |_| {}),
                ];
                s
            },
            vec![Warn, Deny],
        ),
        (
            "an allowlist in one policy does not bind another",
            {
                let mut s = base();
                s.policies = vec![
                    policy("a", |e| e.allowlist = vec![allow(CRIT, None, &[])]),
                    policy("b", |_| {}),
                ];
                s
            },
            vec![Pass, Deny],
        ),
        (
            "digest in the reference selects the report",
            base()
                .with_image(&format!("{HOST}/app:unknown@{D_APP}"))
                .with_policy(|_| {}),
            vec![Deny],
        ),
        (
            "digest wins over tag",
            base()
                .with_image(&format!("{HOST}/app:v1@{D_CLEAN}"))
                .with_policy(|e| {
                    e.unscanned = UnscannedAction::Deny;
                }),
            vec![Deny],
        ),
        (
            "resolved digest selects the report",
            {
                let mut s = base().with_image(&ecr("app:moved")).with_policy(|_| {});
                s.images[0].resolution = TagResolution::Resolved(D_APP.into());
                s
            },
            vec![Deny],
        ),
        (
            "no tag means latest",
            base()
                .with_image(&ecr("app"))
                .with_policy(|e| e.unscanned = UnscannedAction::Deny),
            vec![Deny],
        ),
        (
            "dual-stack endpoint is the same registry",
            base()
                .with_image(&format!("{ACCOUNT}.dkr-ecr.us-east-1.on.aws/app:v1"))
                .with_policy(|_| {}),
            vec![Deny],
        ),
    ];
    for (name, scenario, expected) in cases {
        let d = scenario.decide();
        assert_eq!(verdicts(&d), expected, "{name}: {d:#?}");
        let allowed = !expected.contains(&Deny);
        assert_eq!(d.allowed, allowed, "{name}: {d:#?}");
        assert_eq!(d.message.is_some(), !allowed, "{name}: message iff denied");
        let warnings = expected.iter().filter(|v| **v == Warn).count();
        assert_eq!(d.warnings.len(), warnings, "{name}: {d:#?}");
        assert!(
            d.warnings.iter().all(|w| w.len() <= WARNING_MAX_LEN),
            "{name}"
        );
    }
}

/// A pod running `app:moved`, a tag no report lists, whose lookup gave `resolution`.
fn moved(resolution: TagResolution) -> Scenario {
    image_resolved(&ecr("app:moved"), resolution)
}

/// A pod running `image`, whose lookup gave `resolution`; `app` has a clean image no tag names.
fn image_resolved(image: &str, resolution: TagResolution) -> Scenario {
    let mut s = Scenario::new().with_image(image);
    s.images[0].resolution = resolution;
    let low = vec![finding("CVE-L", Severity::Low)];
    s.reports.push(report("app", D_CLEAN, &[], low));
    s
}

fn failed() -> TagResolution {
    TagResolution::Failed("throttled".into())
}

#[test]
fn tag_resolution_table() {
    use EnforcementMode::{Audit as A, Enforce as E, Warn as W};
    use UnresolvedEffect::*;
    use UnscannedAction::{Allow as UA, Deny as UD, Warn as UW};
    use Verdict::*;
    let critical = || TagResolution::Resolved(D_APP.into());
    let clean = || TagResolution::Resolved(D_CLEAN.into());
    let none = || TagResolution::NotLookedUp;
    let missing = || TagResolution::NotFound;
    // (resolution, unscanned, mode, verdict, what the unresolved tag did). A tag not looked up
    // or not found has no report: unscanned decides. A resolved one is judged by its digest's
    // report. A failed lookup is judged as unscanned, then enforce fails closed unless the pod
    // is denied anyway, warn warns, audit only logs.
    let grid = [
        (none(), UA, E, Pass, None),
        (none(), UA, W, Pass, None),
        (none(), UA, A, Pass, None),
        (none(), UW, E, Warn, None),
        (none(), UW, W, Warn, None),
        (none(), UW, A, Audit, None),
        (none(), UD, E, Deny, None),
        (none(), UD, W, Warn, None),
        (none(), UD, A, Audit, None),
        (missing(), UA, E, Pass, None),
        (missing(), UA, W, Pass, None),
        (missing(), UA, A, Pass, None),
        (missing(), UW, E, Warn, None),
        (missing(), UW, W, Warn, None),
        (missing(), UW, A, Audit, None),
        (missing(), UD, E, Deny, None),
        (missing(), UD, W, Warn, None),
        (missing(), UD, A, Audit, None),
        (critical(), UA, E, Deny, None),
        (critical(), UA, W, Warn, None),
        (critical(), UA, A, Audit, None),
        (critical(), UW, E, Deny, None),
        (critical(), UW, W, Warn, None),
        (critical(), UW, A, Audit, None),
        (critical(), UD, E, Deny, None),
        (critical(), UD, W, Warn, None),
        (critical(), UD, A, Audit, None),
        (clean(), UA, E, Pass, None),
        (clean(), UA, W, Pass, None),
        (clean(), UA, A, Pass, None),
        (clean(), UW, E, Pass, None),
        (clean(), UW, W, Pass, None),
        (clean(), UW, A, Pass, None),
        (clean(), UD, E, Pass, None),
        (clean(), UD, W, Pass, None),
        (clean(), UD, A, Pass, None),
        (failed(), UA, E, Pass, Some(FailedClosed)),
        (failed(), UA, W, Pass, Some(Warned)),
        (failed(), UA, A, Pass, Some(Logged)),
        (failed(), UW, E, Warn, Some(FailedClosed)),
        (failed(), UW, W, Warn, Some(Warned)),
        (failed(), UW, A, Audit, Some(Logged)),
        (failed(), UD, E, Deny, Some(Logged)),
        (failed(), UD, W, Warn, Some(Warned)),
        (failed(), UD, A, Audit, Some(Logged)),
    ];
    let mut cases: Vec<(String, Scenario, Vec<Verdict>, Option<UnresolvedEffect>)> = grid
        .into_iter()
        .map(|(resolution, unscanned, mode, verdict, effect)| {
            let name = format!("{resolution:?}, unscanned {unscanned:?}, {mode:?}");
            let s = moved(resolution).with_policy(|e| {
                e.unscanned = unscanned;
                e.mode = mode;
            });
            (name, s, vec![verdict], effect)
        })
        .collect();
    let more = vec![
        (
            "a digest in the reference wins over a resolved one",
            {
                let s = image_resolved(&format!("{HOST}/app:moved@{D_CLEAN}"), critical());
                s.with_policy(|e| e.unscanned = UnscannedAction::Deny)
            },
            vec![Pass],
            None,
        ),
        (
            "an exempt image is not checked",
            moved(failed()).with_policy(|e| e.exempt_images = vec![ecr("app")]),
            vec![Exempt],
            Some(Logged),
        ),
        (
            "no policy applies",
            moved(failed()).with_policy(|e| {
                e.namespace_selector = Some(selector(&[("env", "dev")], &[]));
            }),
            vec![],
            Some(Logged),
        ),
        (
            "another image denied: the policy's denial stands",
            {
                let mut s = moved(failed()).with_policy(|_| {});
                s.images.insert(
                    0,
                    container(ContainerKind::Container, "web", &ecr("app:v1")),
                );
                s
            },
            vec![Deny, Pass],
            Some(Logged),
        ),
        (
            "another image denied, and a warn policy checks the unresolved one",
            {
                let mut s = moved(failed());
                s.images.insert(
                    0,
                    container(ContainerKind::Container, "web", &ecr("app:v1")),
                );
                s.policies = vec![
                    policy("a-warn", |e| e.mode = EnforcementMode::Warn),
                    policy("b-enforce", |_| {}),
                ];
                s
            },
            vec![Warn, Deny, Pass, Pass],
            Some(Warned),
        ),
        (
            "enforce and warn policies: fails closed, without the resolution warning",
            {
                let mut s = moved(failed());
                s.policies = vec![
                    policy("a-warn", |e| e.mode = EnforcementMode::Warn),
                    policy("b-enforce", |_| {}),
                ];
                s
            },
            vec![Pass, Pass],
            Some(FailedClosed),
        ),
        (
            "an image no policy checks",
            image_resolved("nginx:1.25", failed()).with_policy(|_| {}),
            vec![NotChecked],
            Some(Logged),
        ),
    ];
    cases.extend(
        more.into_iter()
            .map(|(name, s, verdicts, effect)| (name.to_owned(), s, verdicts, effect)),
    );
    for (name, scenario, expected, effect) in cases {
        let d = scenario.decide();
        assert_eq!(verdicts(&d), expected, "{name}: {d:#?}");
        assert_eq!(d.unresolved.as_ref().map(|u| u.effect), effect, "{name}");
        let closed = effect == Some(FailedClosed);
        let allowed = !expected.contains(&Deny) && !closed;
        assert_eq!(d.allowed, allowed, "{name}: {d:#?}");
        assert_eq!(d.failed_closed(), closed, "{name}");
        assert_eq!(d.failed_open(), allowed && effect == Some(Warned), "{name}");
        assert_eq!(d.message.is_some(), !allowed, "{name}: message iff denied");
        let warnings =
            expected.iter().filter(|v| **v == Warn).count() + usize::from(effect == Some(Warned));
        assert_eq!(d.warnings.len(), warnings, "{name}: {d:#?}");
        assert!(
            d.warnings.iter().all(|w| w.len() <= WARNING_MAX_LEN),
            "{name}"
        );
        match &d.unresolved {
            Some(u) => assert!(d.summary.ends_with(&u.text), "{name}: {}", d.summary),
            None => assert!(!d.summary.is_empty(), "{name}"),
        }
    }
}

#[test]
fn an_unresolved_tag_is_explained() {
    let image = ecr("app:moved");
    let text = format!("cannot resolve the tag of {image} to a digest (throttled)");

    let closed = moved(failed()).with_policy(|_| {}).decide();
    let message = format!(
        "ecr-operator webhook: {text}; a ScanPolicy in enforce mode checks it, so the request is \
         denied. Retry, or reference the image by digest."
    );
    assert_eq!(closed.message.as_deref(), Some(message.as_str()));
    assert_eq!(closed.summary, format!("{message}; {text}"));

    let warned = moved(failed())
        .with_policy(|e| e.mode = EnforcementMode::Warn)
        .decide();
    assert_eq!(warned.warnings, vec![format!("ecr-operator: {text}")]);
    assert_eq!(warned.summary, text);

    let mut two = moved(failed()).with_policy(|e| e.unscanned = UnscannedAction::Warn);
    two.images.push(container(
        ContainerKind::InitContainer,
        "setup",
        &ecr("base:v9"),
    ));
    two.images[1].resolution = TagResolution::Failed("access denied".into());
    let two = two.decide();
    let both = format!(
        "{text}; cannot resolve the tag of {} to a digest (access denied)",
        ecr("base:v9")
    );
    let message = two.message.unwrap_or_default();
    assert!(
        message.starts_with(&format!("ecr-operator webhook: {both}; "))
            && message.contains("checks them, so"),
        "{message}"
    );
    // The policies' warnings still reach the client with the denial.
    assert_eq!(two.warnings.len(), 2, "{:?}", two.warnings);
    let long = moved(TagResolution::Failed("x".repeat(200)))
        .with_policy(|e| e.mode = EnforcementMode::Warn)
        .decide();
    assert_eq!(long.warnings[0].len(), WARNING_MAX_LEN);

    let audited = moved(failed())
        .with_policy(|e| e.mode = EnforcementMode::Audit)
        .decide();
    assert!(audited.allowed && audited.warnings.is_empty());
    assert_eq!(audited.summary, text);
}

#[test]
fn the_summary_says_why_or_counts_the_verdicts() {
    assert_eq!(Scenario::new().decide().summary, "no ScanPolicy applies");
    let mut s = Scenario::new().with_policy(|e| e.allowlist = vec![allow(CRIT, None, &[])]);
    s.images.push(container(
        ContainerKind::Container,
        "proxy",
        "envoyproxy/envoy:v1",
    ));
    assert_eq!(s.decide().summary, "1 NotChecked, 1 Pass");
    let denied = Scenario::new().with_policy(|_| {}).decide();
    assert_eq!(Some(denied.summary), denied.message);
    let warned = Scenario::new()
        .with_policy(|e| e.mode = EnforcementMode::Warn)
        .decide();
    assert_eq!(warned.summary, warned.warnings.join("; "));
}

#[test]
fn denial_message_names_images_findings_and_exceptions() {
    let mut s = Scenario::new();
    s.images = vec![
        container(ContainerKind::Container, "web", &ecr("app:v1")),
        container(ContainerKind::InitContainer, "migrate", &ecr("new:v1")),
        container(ContainerKind::EphemeralContainer, "debug", &ecr("trunc:v1")),
    ];
    s.policies = vec![policy("prod-baseline", |e| {
        e.severity_threshold = Severity::High;
        e.unscanned = UnscannedAction::Deny;
    })];
    let d = s.decide();
    assert!(!d.allowed);
    let message = d.message.unwrap_or_default();
    let expected = [
        format!(
            "- container \"web\" ({HOST}/app:v1), ScanPolicy prod-baseline: 1 CRITICAL, 1 HIGH at or above HIGH: CVE-2024-3094 (CRITICAL, pkg), CVE-2024-0002 (HIGH, pkg)"
        ),
        format!(
            "- init container \"migrate\" ({HOST}/new:v1), ScanPolicy prod-baseline: no usable scan (no scan report for this image)"
        ),
        format!(
            "- ephemeral container \"debug\" ({HOST}/trunc:v1), ScanPolicy prod-baseline: 2 CRITICAL, 1 HIGH at or above HIGH: CVE-H (HIGH, pkg); 2 not listed in the truncated scan report"
        ),
        "exception in ScanPolicy prod-baseline".to_owned(),
        "spec.enforcement.allowlist (id, reason, expires".to_owned(),
        "spec.enforcement.exemptImages".to_owned(),
        "only exemptImages covers them".to_owned(),
        "once its ECR scan completes".to_owned(),
    ];
    for e in expected {
        assert!(message.contains(&e), "missing {e:?} in:\n{message}");
    }
}

#[test]
fn denial_message_shows_the_worst_findings_first() {
    let mut s = Scenario::new().with_image(&ecr("many:v1"));
    let mut findings: Vec<Finding> = (0..6)
        .map(|i| finding(&format!("CVE-H{i}"), Severity::High))
        .collect();
    findings.push(finding("CVE-C", Severity::Critical));
    s.reports.push(report("many", D_HIGH, &["v1"], findings));
    s.policies = vec![policy("p", |e| e.severity_threshold = Severity::High)];
    let d = s.decide();
    let message = d.message.unwrap_or_default();
    assert!(
        message.contains("1 CRITICAL, 6 HIGH at or above HIGH: CVE-C (CRITICAL, pkg), CVE-H0 (HIGH, pkg), CVE-H1 (HIGH, pkg) and 4 more"),
        "{message}"
    );
    assert_eq!(
        d.audit[0].reason,
        "1 CRITICAL, 6 HIGH (CVE-C, CVE-H0, CVE-H1, +4 more)"
    );
}

#[test]
fn warnings_fit_the_api_server_limit() {
    let mut s = Scenario::new();
    let long_name = "c".repeat(63);
    s.images = vec![container(
        ContainerKind::EphemeralContainer,
        &long_name,
        &ecr("app:v1"),
    )];
    s.policies = vec![policy(&"p".repeat(253), |e| {
        e.mode = EnforcementMode::Warn;
        e.severity_threshold = Severity::Informational;
    })];
    let d = s.decide();
    assert_eq!(d.warnings.len(), 1);
    assert_eq!(d.warnings[0].len(), WARNING_MAX_LEN);
    assert!(d.warnings[0].ends_with("..."));

    let short = Scenario::new()
        .with_policy(|e| e.mode = EnforcementMode::Warn)
        .decide();
    assert_eq!(
        short.warnings,
        vec!["ScanPolicy strict: container \"app\": 1 CRITICAL (CVE-2024-3094)".to_owned()]
    );
}

#[test]
fn audit_records_explain_each_verdict() {
    let mut s = Scenario::new();
    s.images = vec![
        container(ContainerKind::Container, "app", &ecr("app:v1")),
        container(ContainerKind::Container, "proxy", "envoyproxy/envoy:v1.30"),
    ];
    s.policies = vec![policy("p", |e| e.allowlist = vec![allow(CRIT, None, &[])])];
    let d = s.decide();
    let reasons: Vec<(&str, Verdict, &str)> = d
        .audit
        .iter()
        .map(|r| (r.image.as_str(), r.verdict, r.reason.as_str()))
        .collect();
    let app = ecr("app:v1");
    assert_eq!(
        reasons,
        vec![
            (
                app.as_str(),
                Verdict::Pass,
                "no findings at or above CRITICAL; allowlisted: CVE-2024-3094 (accepted by security team)"
            ),
            (
                "docker.io/envoyproxy/envoy:v1.30",
                Verdict::NotChecked,
                "not an Amazon ECR image; only ECR images are checked"
            ),
        ]
    );
    let json = serde_json::to_value(&d.audit[1]).unwrap_or_default();
    assert_eq!(json["verdict"], "notChecked");
    assert_eq!(json["kind"], "container");
}

#[test]
fn report_index_prefers_the_newest_report_for_a_tag() {
    let mut old = report("app", D_HIGH, &["v1"], vec![]);
    old.scan.completed_at = Some(days_ago(10));
    let new = report("app", D_APP, &["v1"], vec![]);
    for order in [
        vec![old.clone(), new.clone()],
        vec![new.clone(), old.clone()],
    ] {
        let index: ReportIndex = order.into_iter().collect();
        let found = index
            .by_tag(ACCOUNT, REGION, "app", "v1")
            .map(|r| r.digest());
        assert_eq!(found.as_deref(), Some(D_APP));
        assert!(index.by_digest(ACCOUNT, REGION, "app", D_HIGH).is_some());
        assert!(index.by_tag("999999999999", REGION, "app", "v1").is_none());
    }
}

#[test]
fn report_index_keys_reports_by_region_and_reads_region_less_ones_in_any() {
    let mut east = report("app", D_HIGH, &["v1"], vec![]);
    east.region = "us-east-1".into();
    let mut west = report("app", D_APP, &["v1"], vec![]);
    west.region = "eu-west-1".into();
    let mut legacy = report("web", D_HIGH, &["v1"], vec![]);
    legacy.region.clear();
    let index: ReportIndex = [east, west, legacy].into_iter().collect();
    let tag = |region| {
        index
            .by_tag(ACCOUNT, region, "app", "v1")
            .map(|r| r.digest())
    };
    assert_eq!(tag("us-east-1").as_deref(), Some(D_HIGH));
    assert_eq!(tag("eu-west-1").as_deref(), Some(D_APP));
    assert_eq!(
        tag("ap-south-1").as_deref(),
        None,
        "no report in that region"
    );
    assert!(
        index
            .by_digest(ACCOUNT, "eu-west-1", "app", D_HIGH)
            .is_none()
    );
    for region in ["us-east-1", "ap-south-1"] {
        assert!(index.by_digest(ACCOUNT, region, "web", D_HIGH).is_some());
        assert!(index.by_tag(ACCOUNT, region, "web", "v1").is_some());
    }
}

// ---- properties ----

/// Ids the compact reports keep as text and ids they pack (`CVE-YYYY-NNNN`).
const IDS: [&str; 5] = [
    "CVE-1",
    "GHSA-2",
    "CVE-2024-3094",
    "CVE-2021-44228",
    "CVE-2024-0003",
];
const REPOS: [&str; 3] = ["app", "web", "base/img"];

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Informational),
        Just(Severity::Low),
        Just(Severity::Medium),
        Just(Severity::High),
        Just(Severity::Critical),
    ]
}

fn digest_of(repo_index: usize) -> String {
    format!("sha256:{}", format!("{repo_index:x}").repeat(64))
}

fn reports_strategy() -> impl Strategy<Value = Vec<ImageScanReportSpec>> {
    let one = (
        0..REPOS.len(),
        proptest::collection::vec((0..IDS.len(), severity()), 0..6),
        prop_oneof![
            Just("COMPLETE"),
            Just("ACTIVE"),
            Just("FAILED"),
            Just("IN_PROGRESS")
        ],
        proptest::option::of(0i64..90),
        [0i64..2, 0..2, 0..2, 0..2, 0..2],
    )
        .prop_map(|(repo, findings, status, age, extra)| {
            let findings: Vec<Finding> = findings
                .into_iter()
                .map(|(id, s)| finding(IDS[id], s))
                .collect();
            let mut r = report(REPOS[repo], &digest_of(repo), &["v1"], findings);
            r.scan.status = status.into();
            r.scan.completed_at = age.map(days_ago);
            // Extra summary counts stand for findings a truncated list left out.
            r.summary.critical += extra[0];
            r.summary.high += extra[1];
            r.summary.medium += extra[2];
            r.summary.low += extra[3];
            r.summary.informational += extra[4];
            r.truncated = extra.iter().any(|n| *n > 0);
            r
        });
    proptest::collection::vec(one, 0..4)
}

fn allowlist_entry() -> impl Strategy<Value = AllowlistEntry> {
    (
        0..IDS.len(),
        prop_oneof![
            Just(None),
            Just(Some(-5i64)),
            Just(Some(5i64)),
            Just(Some(i64::MAX))
        ],
        proptest::collection::vec(
            prop_oneof![
                Just(format!("{HOST}/app:*")),
                Just("*web*".to_owned()),
                Just("docker.io/*".to_owned())
            ],
            0..2,
        ),
    )
        .prop_map(|(id, expires, images)| AllowlistEntry {
            id: IDS[id].into(),
            reason: "r".into(),
            expires: expires.map(|d| {
                if d == i64::MAX {
                    "not a date".to_owned()
                } else {
                    days_ago(d)
                }
            }),
            images,
        })
}

fn policy_strategy() -> impl Strategy<Value = ScanPolicy> {
    (
        "[a-z]{1,8}",
        prop_oneof![
            Just(EnforcementMode::Enforce),
            Just(EnforcementMode::Warn),
            Just(EnforcementMode::Audit)
        ],
        severity(),
        prop_oneof![
            Just(None),
            Just(Some(selector(&[("env", "prod")], &[]))),
            Just(Some(selector(&[], &[("env", "NotIn", &["prod"])]))),
            Just(Some(selector(&[], &[("env", "bogus", &[])]))),
        ],
        proptest::collection::vec(prop_oneof![Just("shop"), Just("dev*")], 0..2),
        proptest::collection::vec(
            prop_oneof![Just(format!("{HOST}/web*")), Just("*:v2".to_owned())],
            0..2,
        ),
        proptest::collection::vec(allowlist_entry(), 0..3),
        prop_oneof![
            Just(UnscannedAction::Allow),
            Just(UnscannedAction::Warn),
            Just(UnscannedAction::Deny)
        ],
        proptest::option::of(prop_oneof![Just(1), Just(30)]),
    )
        .prop_map(
            |(name, mode, threshold, sel, exempt_ns, exempt_images, allowlist, unscanned, age)| {
                policy(&name, |e| {
                    e.mode = mode;
                    e.severity_threshold = threshold;
                    e.namespace_selector = sel;
                    e.exempt_namespaces = exempt_ns.into_iter().map(str::to_owned).collect();
                    e.exempt_images = exempt_images;
                    e.allowlist = allowlist;
                    e.unscanned = unscanned;
                    e.max_scan_age_days = age;
                })
            },
        )
}

fn images_strategy() -> impl Strategy<Value = Vec<PodImage>> {
    let kind = prop_oneof![
        Just(ContainerKind::Container),
        Just(ContainerKind::InitContainer),
        Just(ContainerKind::EphemeralContainer)
    ];
    let image = prop_oneof![
        (0..REPOS.len()).prop_map(|r| ecr(&format!("{}:v1", REPOS[r]))),
        (0..REPOS.len()).prop_map(|r| format!("{HOST}/{}@{}", REPOS[r], digest_of(r))),
        (0..REPOS.len()).prop_map(|r| ecr(&format!("{}:v2", REPOS[r]))),
        Just("nginx".to_owned()),
        Just("Not/Valid".to_owned()),
        "[a-zA-Z0-9:/@._-]{0,40}",
    ];
    proptest::collection::vec(
        ("[a-z]{1,63}", kind, image).prop_map(|(container, kind, image)| PodImage {
            container,
            kind,
            image,
            resolution: TagResolution::NotLookedUp,
        }),
        0..4,
    )
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just("shop"), Just("dev-1")],
        prop_oneof![Just("prod"), Just("dev")],
        images_strategy(),
        proptest::collection::vec(policy_strategy(), 0..3),
        reports_strategy(),
    )
        .prop_map(|(ns, env, images, policies, reports)| Scenario {
            namespace: ns.into(),
            labels: [("env".to_owned(), env.to_owned())].into_iter().collect(),
            images,
            policies,
            reports,
        })
}

fn stricter(s: Severity) -> Severity {
    match s {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Informational => Severity::Informational,
    }
}

proptest! {
    /// The webhook's cache keeps reports compact (`AdmissionReport`): no decision may depend
    /// on what it drops or on how it stores the rest.
    #[test]
    fn compact_reports_decide_as_the_whole_reports(
        mut s in scenario_strategy(),
        scores in proptest::collection::vec(proptest::option::of(0.0f64..10.0), 6),
    ) {
        for r in &mut s.reports {
            r.scan.description = Some("the scan's own words".into());
            r.scan.vulnerability_source_updated_at = Some(days_ago(2));
            for (i, f) in r.findings.iter_mut().enumerate() {
                f.installed_version = Some(format!("1.{i}"));
                f.fixed_version = Some(format!("2.{i}"));
                f.fix_available = Some(i % 2 == 0);
                f.uri = Some(format!("https://nvd.nist.gov/vuln/detail/{}", f.id));
                f.score = scores[i % scores.len()];
                f.package = (i % 3 != 0).then(|| format!("pkg-{}", i % 2));
            }
        }
        prop_assert_eq!(s.decide_full(), s.decide());
    }

    #[test]
    fn an_allowlist_entry_never_turns_allow_into_deny(
        mut s in scenario_strategy(),
        entry in allowlist_entry(),
        which in any::<prop::sample::Index>(),
    ) {
        let before = s.decide();
        if !s.policies.is_empty() {
            let i = which.index(s.policies.len());
            s.policies[i].spec.enforcement.allowlist.push(entry);
        }
        let after = s.decide();
        prop_assert!(!before.allowed || after.allowed, "before {before:#?}\nafter {after:#?}");
        // Per record, too: an exception never makes any verdict stricter.
        for (b, a) in before.audit.iter().zip(&after.audit) {
            prop_assert!(a.verdict <= b.verdict, "{b:?} -> {a:?}");
        }
    }

    #[test]
    fn a_stricter_threshold_never_turns_deny_into_allow(
        mut s in scenario_strategy(),
        which in any::<prop::sample::Index>(),
    ) {
        let before = s.decide();
        if !s.policies.is_empty() {
            let i = which.index(s.policies.len());
            let e = &mut s.policies[i].spec.enforcement;
            e.severity_threshold = stricter(e.severity_threshold);
        }
        let after = s.decide();
        prop_assert!(before.allowed || !after.allowed, "before {before:#?}\nafter {after:#?}");
        for (b, a) in before.audit.iter().zip(&after.audit) {
            prop_assert!(a.verdict >= b.verdict, "{b:?} -> {a:?}");
        }
    }

    #[test]
    fn warnings_are_short_and_decisions_consistent(s in scenario_strategy()) {
        let d = s.decide();
        for w in &d.warnings {
            prop_assert!(w.len() <= WARNING_MAX_LEN, "{} bytes: {w}", w.len());
        }
        let denied = d.audit.iter().any(|r| r.verdict == Verdict::Deny);
        prop_assert_eq!(d.allowed, !denied);
        prop_assert_eq!(d.message.is_some(), denied);
        let warned = d.audit.iter().any(|r| r.verdict == Verdict::Warn);
        prop_assert_eq!(!d.warnings.is_empty(), warned);
        // One record per (applicable policy, image).
        prop_assert_eq!(d.audit.len() % s.images.len().max(1), 0);
    }

    #[test]
    fn policy_order_does_not_matter(mut s in scenario_strategy()) {
        let before = s.decide();
        s.policies.reverse();
        prop_assert_eq!(before, s.decide());
    }
}

fn indexed_reports() -> impl Strategy<Value = Vec<ImageScanReportSpec>> {
    let one = (
        0..2usize,
        prop_oneof![Just(REGION), Just(""), Just("eu-west-1")],
        0..3usize,
        proptest::collection::vec(prop_oneof![Just("v1"), Just("v2")], 0..3),
        proptest::option::of(prop_oneof![Just(-1i64), Just(1), Just(2), Just(i64::MAX)]),
    );
    proptest::collection::vec(one, 0..8).prop_map(|reports| {
        reports
            .into_iter()
            .enumerate()
            .map(|(i, (repo, region, digest, tags, age))| {
                let mut r = report(REPOS[repo], &digest_of(digest), &tags, vec![]);
                r.region = region.into();
                // The status names the report: which one a lookup found.
                r.scan.status = format!("S{i}");
                r.scan.completed_at = age.map(|d| match d {
                    i64::MAX => "not a date".to_owned(),
                    d => days_ago(d),
                });
                r
            })
            .collect()
    })
}

proptest! {
    /// The compact index finds, for every digest and tag, the report the index over whole
    /// reports found (the same one, not only an equal one): several reports per digest and
    /// per tag, in any region, completed at any time or never.
    #[test]
    fn the_compact_index_finds_what_the_whole_one_found(reports in indexed_reports()) {
        let full: FullIndex = reports.iter().cloned().collect();
        let compact: ReportIndex = reports.into_iter().collect();
        let found = |s: Option<Scan<'_>>| s.map(|s| (s.digest(), s.status().to_owned()));
        for repo in REPOS {
            for region in [REGION, "", "eu-west-1", "ap-south-1"] {
                for tag in ["v1", "v2", "v3"] {
                    prop_assert_eq!(
                        found(full.by_tag(ACCOUNT, region, repo, tag)),
                        found(compact.by_tag(ACCOUNT, region, repo, tag))
                    );
                }
                for d in 0..4 {
                    let digest = digest_of(d);
                    prop_assert_eq!(
                        found(full.by_digest(ACCOUNT, region, repo, &digest)),
                        found(compact.by_digest(ACCOUNT, region, repo, &digest))
                    );
                }
            }
        }
    }
}
