//! The admission decision for a pod, as a pure function of its images, its namespace, the
//! ScanPolicy objects, the scan reports and the time. The webhook server only gathers these
//! inputs and turns the [`Decision`] into an `AdmissionResponse`.
//!
//! Semantics, per (policy, image):
//!
//! - A policy applies when its `namespaceSelector` selects the pod's namespace (every namespace
//!   when omitted). An invalid selector makes the policy apply everywhere: a typo must not switch
//!   enforcement off. No applicable policy: the pod is admitted without records.
//! - `exemptNamespaces` and `exemptImages` make the image `Exempt`. Patterns may use `*` for any
//!   run of characters (`/` and `:` included). Image patterns are matched against the fully
//!   normalised reference (`docker.io/library/nginx:latest`, `…/app:v1@sha256:…`) and against its
//!   name alone (`docker.io/library/nginx`).
//! - Images outside Amazon ECR are `NotChecked`. A reference that does not parse is a violation
//!   (we cannot tell where it comes from, and the kubelet would not pull it either).
//! - The report is looked up by digest when one is known (in the reference, else the resolved
//!   one), else by repository and tag. No report, a scan status other than `COMPLETE`/`ACTIVE`, or
//!   a scan older than `maxScanAgeDays` (or of unknown age when that is set) is "unscanned", and
//!   `unscanned` decides: `allow` passes, `warn` warns (or only records, in audit mode), `deny` is a
//!   violation. The findings of a report that exists still count when it is unusable; the
//!   stricter of the two outcomes wins.
//! - Findings at or above `severityThreshold` count against the image, minus those matched by an
//!   allowlist entry that has not expired (an entry with `images` covers only matching images; an
//!   `expires` that does not parse as RFC 3339 counts as expired). The `summary` counts findings
//!   the list may have left out: per severity, any excess of the summary over the listed findings
//!   counts as that many violations. They cannot be allowlisted, since their ids are unknown;
//!   `exemptImages` is the exception for them. Whether `truncated` is set does not matter: an
//!   inconsistent report errs on the strict side.
//! - A violation's verdict follows the mode: `enforce` denies, `warn` admits with a warning,
//!   `audit` admits and only records.
//!
//! The pod is denied when any (policy, image) is denied: the strictest applicable policy wins.
//! Every (applicable policy, image) yields exactly one [`AuditRecord`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::api::image_scan_report::{Finding, ImageScanReportSpec, SeveritySummary};
use crate::api::scan_policy::{
    Enforcement, EnforcementMode, ScanPolicy, Severity, UnscannedAction,
};
use crate::image::{EcrImage, ImageRef, ImageRefError, selector_matches, wildcard_match};

/// The longest admission warning we produce: the API server's guidance for warnings.
pub const WARNING_MAX_LEN: usize = 120;

/// Listed findings named per image in a denial message; the rest are counted.
const FINDINGS_SHOWN: usize = 3;

/// Scan statuses that mean "findings are available": BASIC scans end `COMPLETE`, ENHANCED
/// (Inspector) scans stay `ACTIVE`.
const SCANNED_STATUSES: [&str; 2] = ["COMPLETE", "ACTIVE"];

/// Where in the pod spec an image appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerKind {
    /// `spec.containers`.
    Container,
    /// `spec.initContainers`.
    InitContainer,
    /// `spec.ephemeralContainers`.
    EphemeralContainer,
}

impl fmt::Display for ContainerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Container => "container",
            Self::InitContainer => "init container",
            Self::EphemeralContainer => "ephemeral container",
        })
    }
}

/// One image of the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodImage {
    /// The container's name.
    pub container: String,
    /// Which list of the pod spec the container is in.
    pub kind: ContainerKind,
    /// The image reference as written in the pod spec.
    pub image: String,
    /// The digest the image's tag resolves to, when the caller knows it (ignored when the
    /// reference pins a digest itself).
    pub resolved_digest: Option<String>,
}

/// Access to scan reports, keyed the way an image reference identifies them.
pub trait ReportLookup {
    /// The report for `digest` in repository `repository` of registry (account) `registry_id`.
    fn by_digest(
        &self,
        registry_id: &str,
        repository: &str,
        digest: &str,
    ) -> Option<&ImageScanReportSpec>;

    /// The report for the image that currently carries `tag`.
    fn by_tag(
        &self,
        registry_id: &str,
        repository: &str,
        tag: &str,
    ) -> Option<&ImageScanReportSpec>;
}

type Key = (String, String, String);

/// An in-memory [`ReportLookup`] over a set of reports.
///
/// When several reports claim the same tag (a tag moved and an old report still lists it), the
/// one with the latest `completedAt` wins.
#[derive(Clone, Debug, Default)]
pub struct ReportIndex {
    by_digest: BTreeMap<Key, ImageScanReportSpec>,
    tags: BTreeMap<Key, String>,
}

impl ReportIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `report`, replacing any earlier report for the same digest.
    pub fn insert(&mut self, report: ImageScanReportSpec) {
        let registry = report.registry_id.clone();
        let repository = report.repository_name.clone();
        let completed = completed_at(&report);
        for tag in &report.image_tags {
            let key = (registry.clone(), repository.clone(), tag.clone());
            let newer = match self.tags.get(&key) {
                Some(digest) => {
                    let held = (registry.clone(), repository.clone(), digest.clone());
                    completed >= self.by_digest.get(&held).and_then(completed_at)
                }
                None => true,
            };
            if newer {
                self.tags.insert(key, report.image_digest.clone());
            }
        }
        self.by_digest
            .insert((registry, repository, report.image_digest.clone()), report);
    }
}

impl FromIterator<ImageScanReportSpec> for ReportIndex {
    fn from_iter<I: IntoIterator<Item = ImageScanReportSpec>>(iter: I) -> Self {
        let mut index = Self::new();
        for report in iter {
            index.insert(report);
        }
        index
    }
}

impl ReportLookup for ReportIndex {
    fn by_digest(
        &self,
        registry_id: &str,
        repository: &str,
        digest: &str,
    ) -> Option<&ImageScanReportSpec> {
        self.by_digest.get(&(
            registry_id.to_owned(),
            repository.to_owned(),
            digest.to_owned(),
        ))
    }

    fn by_tag(
        &self,
        registry_id: &str,
        repository: &str,
        tag: &str,
    ) -> Option<&ImageScanReportSpec> {
        let digest = self.tags.get(&(
            registry_id.to_owned(),
            repository.to_owned(),
            tag.to_owned(),
        ))?;
        self.by_digest(registry_id, repository, digest)
    }
}

/// Everything the decision depends on.
pub struct DecisionInput<'a> {
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The namespace's labels (including `kubernetes.io/metadata.name`, which the API server sets).
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// Every image of the pod: containers, init containers and ephemeral containers.
    pub images: &'a [PodImage],
    /// All ScanPolicy objects in the cluster.
    pub policies: &'a [ScanPolicy],
    /// The scan reports.
    pub reports: &'a dyn ReportLookup,
    /// The time of the request.
    pub now: DateTime<Utc>,
}

/// What to answer the API server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Admit the pod.
    pub allowed: bool,
    /// Warnings for the client, each at most [`WARNING_MAX_LEN`] bytes.
    pub warnings: Vec<String>,
    /// For a denial: the denied images, their worst findings, and how to get an exception.
    pub message: Option<String>,
    /// One record per (applicable policy, image), for the audit log.
    pub audit: Vec<AuditRecord>,
}

/// What one policy concluded about one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// The ScanPolicy's name.
    pub policy: String,
    /// The container's name.
    pub container: String,
    /// Which list of the pod spec the container is in.
    pub kind: ContainerKind,
    /// The normalised image reference (as written when it does not parse).
    pub image: String,
    /// The outcome.
    pub verdict: Verdict,
    /// Why, in words.
    pub reason: String,
}

/// The outcome for one (policy, image), ordered from most lenient to strictest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Not an ECR image: the policy does not check it.
    NotChecked,
    /// The namespace or the image is exempt.
    Exempt,
    /// Checked and acceptable.
    Pass,
    /// A violation, admitted because the policy is in audit mode.
    Audit,
    /// A violation (or an unscanned image under `unscanned: warn`), admitted with a warning.
    Warn,
    /// A violation in enforce mode: the pod is denied.
    Deny,
}

/// Decides whether to admit the pod described by `input`.
pub fn decide(input: &DecisionInput<'_>) -> Decision {
    let mut applicable: Vec<(&str, &Enforcement, Option<String>)> = input
        .policies
        .iter()
        .filter_map(|p| {
            let enforcement = &p.spec.enforcement;
            let note = match &enforcement.namespace_selector {
                None => None,
                Some(selector) => match selector_matches(selector, input.namespace_labels) {
                    Ok(true) => None,
                    Ok(false) => return None,
                    Err(e) => Some(format!(
                        "namespaceSelector is invalid ({e}), so the policy applies to every \
                         namespace; "
                    )),
                },
            };
            Some((policy_name(p), enforcement, note))
        })
        .collect();
    // Sorted so that records, warnings and messages do not depend on the order of the list.
    applicable.sort_by(|a, b| a.0.cmp(b.0));

    let mut decision = Decision {
        allowed: true,
        ..Decision::default()
    };
    let mut denied = Vec::new();
    let mut warned = BTreeSet::new();
    for image in input.images {
        let parsed = ImageRef::parse(&image.image);
        let shown = match &parsed {
            Ok(r) => r.to_string(),
            Err(_) => image.image.clone(),
        };
        for &(policy, enforcement, ref note) in &applicable {
            let check = Check {
                enforcement,
                reports: input.reports,
                now: input.now,
            };
            let outcome = check.evaluate(input.namespace, &parsed, image);
            for problem in &outcome.problems {
                match outcome.verdict {
                    Verdict::Deny => denied.push(Denied {
                        policy,
                        image,
                        shown: shown.clone(),
                        problem: problem.clone(),
                    }),
                    Verdict::Warn => {
                        let text = format!(
                            "ScanPolicy {policy}: {} {:?}: {}",
                            image.kind,
                            image.container,
                            problem.summary()
                        );
                        if warned.insert(text.clone()) {
                            decision.warnings.push(clip(&text, WARNING_MAX_LEN));
                        }
                    }
                    _ => {}
                }
            }
            decision.audit.push(AuditRecord {
                policy: policy.to_owned(),
                container: image.container.clone(),
                kind: image.kind,
                image: shown.clone(),
                verdict: outcome.verdict,
                reason: format!("{}{}", note.as_deref().unwrap_or(""), outcome.reason),
            });
        }
    }
    if !denied.is_empty() {
        decision.allowed = false;
        decision.message = Some(denial_message(&denied));
    }
    decision
}

fn policy_name(p: &ScanPolicy) -> &str {
    p.metadata.name.as_deref().unwrap_or("<unnamed>")
}

/// One policy's view of the world while it judges one image.
struct Check<'a> {
    enforcement: &'a Enforcement,
    reports: &'a dyn ReportLookup,
    now: DateTime<Utc>,
}

/// What one policy concluded about one image.
struct Outcome {
    verdict: Verdict,
    reason: String,
    /// What is wrong: empty for the lenient verdicts, one or more for `Audit`, `Warn`, `Deny`.
    problems: Vec<Problem>,
}

impl Outcome {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Self {
            verdict,
            reason: reason.into(),
            problems: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
enum Problem {
    Findings(Violations),
    /// Why the image counts as unscanned.
    Unscanned(String),
    InvalidReference(String),
}

impl Problem {
    /// One short line, for warnings and audit reasons.
    fn summary(&self) -> String {
        match self {
            Self::Findings(v) => v.summary(),
            Self::Unscanned(why) => format!("no usable scan ({why})"),
            Self::InvalidReference(e) => format!("invalid image reference: {e}"),
        }
    }
}

/// The findings that count against an image under one policy.
#[derive(Clone, Debug)]
struct Violations {
    threshold: Severity,
    /// Counted findings per severity, most severe first, zero counts left out.
    counts: Vec<(Severity, u64)>,
    /// Listed findings that count, worst first.
    listed: Vec<Finding>,
    /// Findings the summary counts but the list leaves out.
    unlisted: u64,
}

impl Violations {
    fn summary(&self) -> String {
        let ids: Vec<&str> = self
            .listed
            .iter()
            .take(FINDINGS_SHOWN)
            .map(|f| f.id.as_str())
            .collect();
        let mut s = self.counts_text();
        if !ids.is_empty() {
            let more = self.listed.len().saturating_sub(FINDINGS_SHOWN);
            let more = if more > 0 {
                format!(", +{more} more")
            } else {
                String::new()
            };
            s.push_str(&format!(" ({}{more})", ids.join(", ")));
        }
        s
    }

    fn counts_text(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(severity, n)| format!("{n} {}", severity_name(*severity)))
            .collect();
        counts.join(", ")
    }

    /// The counts, the worst listed findings with their packages, and the unlisted ones.
    fn details(&self) -> String {
        let mut s = format!(
            "{} at or above {}",
            self.counts_text(),
            severity_name(self.threshold)
        );
        let shown: Vec<String> = self
            .listed
            .iter()
            .take(FINDINGS_SHOWN)
            .map(|f| match &f.package {
                Some(package) => format!("{} ({}, {package})", f.id, severity_name(f.severity)),
                None => format!("{} ({})", f.id, severity_name(f.severity)),
            })
            .collect();
        if !shown.is_empty() {
            s.push_str(": ");
            s.push_str(&shown.join(", "));
            let more = self.listed.len().saturating_sub(FINDINGS_SHOWN);
            if more > 0 {
                s.push_str(&format!(" and {more} more"));
            }
        }
        if self.unlisted > 0 {
            s.push_str(&format!(
                "; {} not listed in the truncated scan report",
                self.unlisted
            ));
        }
        s
    }
}

impl Check<'_> {
    fn evaluate(
        &self,
        namespace: &str,
        parsed: &Result<ImageRef, ImageRefError>,
        image: &PodImage,
    ) -> Outcome {
        let e = self.enforcement;
        if let Some(p) = e
            .exempt_namespaces
            .iter()
            .find(|p| wildcard_match(p, namespace))
        {
            return Outcome::new(
                Verdict::Exempt,
                format!("namespace {namespace} is exempt (exemptNamespaces: {p})"),
            );
        }
        let reference = match parsed {
            Ok(r) => r,
            Err(err) => return self.violation(Problem::InvalidReference(err.to_string())),
        };
        if let Some(p) = e.exempt_images.iter().find(|p| image_matches(p, reference)) {
            return Outcome::new(
                Verdict::Exempt,
                format!("image is exempt (exemptImages: {p})"),
            );
        }
        let Some(ecr) = reference.ecr() else {
            return Outcome::new(
                Verdict::NotChecked,
                "not an Amazon ECR image; only ECR images are checked",
            );
        };
        let Some(report) = self.find_report(&ecr, image) else {
            return self.unscanned("no scan report for this image".to_owned());
        };
        // A report's findings count even when it is too old or its scan did not complete: what
        // it shows is known; what may be missing is the matter of the unscanned setting.
        let findings = self.judge_findings(report, reference);
        match self.unusable(report) {
            Some(why) => combine(findings, self.unscanned(why)),
            None => findings,
        }
    }

    /// The image's report, by digest when one is known, else by tag.
    fn find_report(&self, ecr: &EcrImage, image: &PodImage) -> Option<&ImageScanReportSpec> {
        // A known digest is what the runtime pulls: a report found by tag may describe another one.
        let digest = ecr.digest.as_deref().or(image.resolved_digest.as_deref());
        match (digest, ecr.tag.as_deref()) {
            (Some(d), _) => self.reports.by_digest(&ecr.account, &ecr.repository, d),
            (None, Some(tag)) => self.reports.by_tag(&ecr.account, &ecr.repository, tag),
            (None, None) => None,
        }
    }

    /// Why `report` does not count as a scan, if it does not.
    fn unusable(&self, report: &ImageScanReportSpec) -> Option<String> {
        let status = report.scan.status.as_str();
        if !SCANNED_STATUSES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(status))
        {
            return Some(format!("scan status is {status}"));
        }
        let days = self.enforcement.max_scan_age_days?;
        let Some(completed) = completed_at(report) else {
            return Some(format!(
                "scan completion time unknown, and maxScanAgeDays is {days}"
            ));
        };
        let limit = TimeDelta::try_days(i64::from(days)).unwrap_or(TimeDelta::MAX);
        let age = self.now.signed_duration_since(completed);
        (age > limit).then(|| {
            format!(
                "last scan is {} days old, over maxScanAgeDays {days}",
                age.num_days()
            )
        })
    }

    fn judge_findings(&self, report: &ImageScanReportSpec, reference: &ImageRef) -> Outcome {
        let threshold = self.enforcement.severity_threshold;
        let mut counts = Vec::new();
        let mut listed = Vec::new();
        let mut unlisted_total = 0;
        let mut allowlisted = BTreeSet::new();
        for severity in SEVERITIES.into_iter().filter(|s| *s >= threshold) {
            let (mut listed_here, mut counted) = (0u64, 0u64);
            for f in report.findings.iter().filter(|f| f.severity == severity) {
                listed_here += 1;
                match self.allowlisted(f, reference) {
                    Some(reason) => {
                        allowlisted.insert(format!("{} ({reason})", f.id));
                    }
                    None => {
                        counted += 1;
                        listed.push(f.clone());
                    }
                }
            }
            let summarised = u64::try_from(summary_count(&report.summary, severity)).unwrap_or(0);
            let unlisted = summarised.saturating_sub(listed_here);
            unlisted_total += unlisted;
            let n = counted + unlisted;
            if n > 0 {
                counts.push((severity, n));
            }
        }
        let allowlisted_note = if allowlisted.is_empty() {
            String::new()
        } else {
            let entries: Vec<String> = allowlisted.into_iter().collect();
            format!("; allowlisted: {}", entries.join(", "))
        };
        if counts.is_empty() {
            return Outcome::new(
                Verdict::Pass,
                format!(
                    "no findings at or above {}{allowlisted_note}",
                    severity_name(threshold)
                ),
            );
        }
        listed.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| {
                    b.score
                        .partial_cmp(&a.score)
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut outcome = self.violation(Problem::Findings(Violations {
            threshold,
            counts,
            listed,
            unlisted: unlisted_total,
        }));
        outcome.reason.push_str(&allowlisted_note);
        outcome
    }

    /// The reason of the allowlist entry that accepts `finding` for this image, if any.
    fn allowlisted(&self, finding: &Finding, reference: &ImageRef) -> Option<&str> {
        self.enforcement
            .allowlist
            .iter()
            .find(|entry| {
                entry.id.trim().eq_ignore_ascii_case(finding.id.trim())
                    && entry
                        .expires
                        .as_deref()
                        .is_none_or(|t| DateTime::parse_from_rfc3339(t).is_ok_and(|t| self.now < t))
                    && (entry.images.is_empty()
                        || entry.images.iter().any(|p| image_matches(p, reference)))
            })
            .map(|entry| entry.reason.as_str())
    }

    fn mode_verdict(&self) -> Verdict {
        match self.enforcement.mode {
            EnforcementMode::Enforce => Verdict::Deny,
            EnforcementMode::Warn => Verdict::Warn,
            EnforcementMode::Audit => Verdict::Audit,
        }
    }

    fn violation(&self, problem: Problem) -> Outcome {
        let verdict = self.mode_verdict();
        Outcome {
            verdict,
            reason: problem.summary(),
            problems: vec![problem],
        }
    }

    fn unscanned(&self, why: String) -> Outcome {
        let verdict = match self.enforcement.unscanned {
            UnscannedAction::Allow => {
                return Outcome::new(
                    Verdict::Pass,
                    format!("{why}; unscanned images are allowed"),
                );
            }
            // Audit mode never talks to the client: a warning becomes a record.
            UnscannedAction::Warn => self.mode_verdict().min(Verdict::Warn),
            UnscannedAction::Deny => self.mode_verdict(),
        };
        let problem = Problem::Unscanned(why);
        Outcome {
            verdict,
            reason: problem.summary(),
            problems: vec![problem],
        }
    }
}

/// The stricter of two outcomes for the same image, with both reasons.
fn combine(a: Outcome, b: Outcome) -> Outcome {
    let verdict = a.verdict.max(b.verdict);
    let reason = format!("{}; {}", a.reason, b.reason);
    let problems = [a, b]
        .into_iter()
        .filter(|o| o.verdict == verdict)
        .flat_map(|o| o.problems)
        .collect();
    Outcome {
        verdict,
        reason,
        problems,
    }
}

const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
];

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
        Severity::Informational => "INFORMATIONAL",
    }
}

/// The summary's count for `s` (ECR's UNDEFINED severity is below every threshold).
fn summary_count(summary: &SeveritySummary, s: Severity) -> i64 {
    match s {
        Severity::Critical => summary.critical,
        Severity::High => summary.high,
        Severity::Medium => summary.medium,
        Severity::Low => summary.low,
        Severity::Informational => summary.informational,
    }
}

fn completed_at(report: &ImageScanReportSpec) -> Option<DateTime<Utc>> {
    let t = report.scan.completed_at.as_deref()?;
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A denied (policy, image), for the message.
struct Denied<'a> {
    policy: &'a str,
    image: &'a PodImage,
    shown: String,
    problem: Problem,
}

fn denial_message(denied: &[Denied<'_>]) -> String {
    let mut lines = vec!["denied by ECR image scan policy:".to_owned()];
    for d in denied {
        let detail = match &d.problem {
            Problem::Findings(v) => v.details(),
            other => other.summary(),
        };
        lines.push(format!(
            "- {} {:?} ({}), ScanPolicy {}: {detail}",
            d.image.kind, d.image.container, d.shown, d.policy
        ));
    }
    let policies: BTreeSet<&str> = denied.iter().map(|d| d.policy).collect();
    for policy in policies {
        let problems = || {
            denied
                .iter()
                .filter(|d| d.policy == policy)
                .map(|d| &d.problem)
        };
        let findings = problems().any(|p| matches!(p, Problem::Findings(_)));
        let unlisted = problems().any(|p| matches!(p, Problem::Findings(v) if v.unlisted > 0));
        let unscanned = problems().any(|p| matches!(p, Problem::Unscanned(_)));
        let invalid = problems().any(|p| matches!(p, Problem::InvalidReference(_)));
        let mut hint =
            format!("To admit such images, fix them, or get an exception in ScanPolicy {policy}:");
        if findings {
            hint.push_str(
                " an allowlist entry per finding in spec.enforcement.allowlist (id, reason, \
                 expires; images to narrow it), or",
            );
        }
        hint.push_str(" a pattern matching the image in spec.enforcement.exemptImages.");
        if unlisted {
            hint.push_str(
                " Findings left out of a truncated report have no id to allowlist: only \
                 exemptImages covers them.",
            );
        }
        if unscanned {
            hint.push_str(" An unscanned image is admitted once its ECR scan completes.");
        }
        if invalid {
            hint.push_str(" An invalid image reference must be corrected.");
        }
        lines.push(hint);
    }
    lines.join("\n")
}

/// Whether an image pattern covers `reference` (see the module docs).
fn image_matches(pattern: &str, reference: &ImageRef) -> bool {
    wildcard_match(pattern, &reference.to_string()) || wildcard_match(pattern, &reference.name())
}

/// `s` cut to at most `max` bytes on a character boundary, ending in `...` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::image_scan_report::ScanState;
    use crate::api::scan_policy::{AllowlistEntry, ScanPolicySpec};
    use crate::image::selector::selector;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const ACCOUNT: &str = "123456789012";
    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
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
            match f.severity {
                Severity::Critical => s.critical += 1,
                Severity::High => s.high += 1,
                Severity::Medium => s.medium += 1,
                Severity::Low => s.low += 1,
                Severity::Informational => s.informational += 1,
            }
        }
        s
    }

    fn report(
        repo: &str,
        digest: &str,
        tags: &[&str],
        findings: Vec<Finding>,
    ) -> ImageScanReportSpec {
        ImageScanReportSpec {
            registry_id: ACCOUNT.into(),
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
            resolved_digest: None,
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
            decide(&DecisionInput {
                namespace: &self.namespace,
                namespace_labels: &self.labels,
                images: &self.images,
                policies: &self.policies,
                reports: &index,
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
                base().with_policy(|e| {
                    e.namespace_selector = Some(selector(&[("env", "prod")], &[]))
                }),
                vec![Deny],
            ),
            (
                "namespaceSelector does not match",
                base()
                    .with_policy(|e| e.namespace_selector = Some(selector(&[("env", "dev")], &[]))),
                vec![],
            ),
            (
                "namespaceSelector expression matches",
                base().with_policy(|e| {
                    e.namespace_selector =
                        Some(selector(&[], &[("env", "In", &["prod", "staging"])]))
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
                    e.namespace_selector =
                        Some(selector(&[("env", "dev")], &[("env", "in", &["dev"])]))
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
                    s.images[0].resolved_digest = Some(D_APP.into());
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
                .by_tag(ACCOUNT, "app", "v1")
                .map(|r| r.image_digest.as_str());
            assert_eq!(found, Some(D_APP));
            assert!(index.by_digest(ACCOUNT, "app", D_HIGH).is_some());
            assert!(index.by_tag("999999999999", "app", "v1").is_none());
        }
    }

    // ---- properties ----

    const IDS: [&str; 5] = ["CVE-1", "CVE-2", "CVE-3", "CVE-4", "CVE-5"];
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
                |(
                    name,
                    mode,
                    threshold,
                    sel,
                    exempt_ns,
                    exempt_images,
                    allowlist,
                    unscanned,
                    age,
                )| {
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
                resolved_digest: None,
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
}
