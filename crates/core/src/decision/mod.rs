//! The admission decision for a pod, as a pure function of its images (with what became of
//! their tags' lookups), its namespace, the ScanPolicy objects, the scan reports and the time.
//! The webhook server only gathers these inputs and turns the [`Decision`] into an
//! `AdmissionResponse`.
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
//! - The report is looked up by digest when one is known (in the reference, else the one the tag
//!   resolved to), else by repository and tag. No report, a scan status other than `COMPLETE`/`ACTIVE`, or
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
//! Every (applicable policy, image) yields exactly one [`AuditRecord`]. A tag that could not be
//! resolved then weighs on the answer as [`resolution`] describes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::api::image_scan_report::{Finding, ImageScanReportSpec, ScanState};
use crate::api::scan_policy::{
    Enforcement, EnforcementMode, ScanPolicy, Severity, UnscannedAction,
};
use crate::image::{EcrImage, ImageRef, ImageRefError, selector_matches, wildcard_match};

mod check;
mod compact;
#[cfg(test)]
mod full_index_tests;
mod index;
mod message;
pub mod resolution;
mod scan;
mod symbols;
#[cfg(test)]
mod tests;

use check::*;
pub use compact::AdmissionReport;
pub use index::ReportIndex;
pub use scan::{FindingRef, Scan};
pub use symbols::{Interner, Symbols, SymbolsFull};

use crate::text::clip;
use message::*;
use resolution::UnresolvedTags;
pub use resolution::{TagResolution, Unresolved, UnresolvedEffect};

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
    /// What looking up the digest of the image's tag gave (a digest in the reference wins
    /// over a resolved one).
    pub resolution: TagResolution,
}

/// Access to scan reports, keyed the way an image reference identifies them.
pub trait ReportLookup {
    /// The report for `digest` in repository `repository` of registry (account) `registry_id`
    /// in `region`.
    fn by_digest(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        digest: &str,
    ) -> Option<Scan<'_>>;

    /// The report for the image that currently carries `tag`.
    fn by_tag(
        &self,
        registry_id: &str,
        region: &str,
        repository: &str,
        tag: &str,
    ) -> Option<Scan<'_>>;
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
    /// Set when a tag could not be resolved: why, and what that did to the answer.
    pub unresolved: Option<Unresolved>,
    /// One line for the log and for the Event of a denial: the message or the warnings, then
    /// why tags could not be resolved; when there is nothing to say, the verdicts counted.
    pub summary: String,
}

impl Decision {
    /// Denied because a tag could not be resolved, not by a policy's verdict: the answer is
    /// "cannot verify" (503), not "forbidden" (403).
    pub fn failed_closed(&self) -> bool {
        self.unresolved
            .as_ref()
            .is_some_and(|u| u.effect == UnresolvedEffect::FailedClosed)
    }

    /// Admitted, with a warning that a tag could not be resolved.
    pub fn failed_open(&self) -> bool {
        self.allowed
            && self
                .unresolved
                .as_ref()
                .is_some_and(|u| u.effect == UnresolvedEffect::Warned)
    }
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
    let applicable = applicable(input);
    let mut tally = Tally::default();
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
            tally
                .unresolved
                .judged(image, enforcement.mode, outcome.verdict);
            tally.problems(policy, image, &shown, &outcome);
            tally.decision.audit.push(AuditRecord {
                policy: policy.to_owned(),
                container: image.container.clone(),
                kind: image.kind,
                image: shown.clone(),
                verdict: outcome.verdict,
                reason: format!("{}{}", note.as_deref().unwrap_or(""), outcome.reason),
            });
        }
        tally.unresolved.done(image);
    }
    tally.conclude()
}

/// The verdicts so far, and what they add up to.
#[derive(Default)]
struct Tally<'a> {
    decision: Decision,
    denied: Vec<Denied<'a>>,
    /// Warnings given, unclipped: the same problem of the same container is told once.
    warned: BTreeSet<String>,
    unresolved: UnresolvedTags,
}

impl<'a> Tally<'a> {
    /// Notes the problems `policy` found with `image`, as its verdict makes them count.
    fn problems(&mut self, policy: &'a str, image: &'a PodImage, shown: &str, outcome: &Outcome) {
        for problem in &outcome.problems {
            match outcome.verdict {
                Verdict::Deny => self.denied.push(Denied {
                    policy,
                    image,
                    shown: shown.to_owned(),
                    problem: problem.clone(),
                }),
                Verdict::Warn => {
                    let text = format!(
                        "ScanPolicy {policy}: {} {:?}: {}",
                        image.kind,
                        image.container,
                        problem.summary()
                    );
                    if self.warned.insert(text.clone()) {
                        self.decision.warnings.push(clip(&text, WARNING_MAX_LEN));
                    }
                }
                _ => {}
            }
        }
    }

    /// The decision: denied when a verdict denies; then what unresolved tags do to it.
    fn conclude(self) -> Decision {
        let mut decision = self.decision;
        decision.allowed = self.denied.is_empty();
        if !decision.allowed {
            decision.message = Some(denial_message(&self.denied));
        }
        decision.summary = match &decision.message {
            Some(message) => message.clone(),
            None => decision.warnings.join("; "),
        };
        self.unresolved.apply(&mut decision);
        if decision.summary.is_empty() {
            decision.summary = verdict_counts(&decision.audit);
        }
        decision
    }
}

/// The policies that apply to the pod's namespace, by name, each with a note when its
/// `namespaceSelector` is invalid.
fn applicable<'a>(input: &DecisionInput<'a>) -> Vec<(&'a str, &'a Enforcement, Option<String>)> {
    let mut applicable: Vec<_> = input
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
    applicable
}

fn policy_name(p: &ScanPolicy) -> &str {
    p.metadata.name.as_deref().unwrap_or("<unnamed>")
}
