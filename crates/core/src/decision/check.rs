//! One policy's judgement of one image: exemptions, the report, the findings, the verdict.

use super::*;

/// One policy's view of the world while it judges one image.
pub(super) struct Check<'a> {
    pub(super) enforcement: &'a Enforcement,
    pub(super) reports: &'a dyn ReportLookup,
    pub(super) now: DateTime<Utc>,
}

/// What one policy concluded about one image.
pub(super) struct Outcome {
    pub(super) verdict: Verdict,
    pub(super) reason: String,
    /// What is wrong: empty for the lenient verdicts, one or more for `Audit`, `Warn`, `Deny`.
    pub(super) problems: Vec<Problem>,
}

impl Outcome {
    pub(super) fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Self {
            verdict,
            reason: reason.into(),
            problems: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) enum Problem {
    Findings(Violations),
    /// Why the image counts as unscanned.
    Unscanned(String),
    InvalidReference(String),
}

impl Problem {
    /// One short line, for warnings and audit reasons.
    pub(super) fn summary(&self) -> String {
        match self {
            Self::Findings(v) => v.summary(),
            Self::Unscanned(why) => format!("no usable scan ({why})"),
            Self::InvalidReference(e) => format!("invalid image reference: {e}"),
        }
    }
}

/// The findings that count against an image under one policy.
#[derive(Clone, Debug)]
pub(super) struct Violations {
    pub(super) threshold: Severity,
    /// Counted findings per severity, most severe first, zero counts left out.
    pub(super) counts: Vec<(Severity, u64)>,
    /// Listed findings that count, worst first.
    pub(super) listed: Vec<Finding>,
    /// Findings the summary counts but the list leaves out.
    pub(super) unlisted: u64,
}

impl Violations {
    pub(super) fn summary(&self) -> String {
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

    pub(super) fn counts_text(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(severity, n)| format!("{n} {}", severity.as_ecr()))
            .collect();
        counts.join(", ")
    }

    /// The counts, the worst listed findings with their packages, and the unlisted ones.
    pub(super) fn details(&self) -> String {
        let mut s = format!(
            "{} at or above {}",
            self.counts_text(),
            self.threshold.as_ecr()
        );
        let shown: Vec<String> = self
            .listed
            .iter()
            .take(FINDINGS_SHOWN)
            .map(|f| match &f.package {
                Some(package) => format!("{} ({}, {package})", f.id, f.severity.as_ecr()),
                None => format!("{} ({})", f.id, f.severity.as_ecr()),
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

impl<'a> Check<'a> {
    pub(super) fn evaluate(
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
    pub(super) fn find_report(&self, ecr: &EcrImage, image: &PodImage) -> Option<Scan<'a>> {
        // A known digest is what the runtime pulls: a report found by tag may describe another one.
        let resolved = match &image.resolution {
            TagResolution::Resolved(digest) => Some(digest.as_str()),
            TagResolution::NotLookedUp | TagResolution::NotFound | TagResolution::Failed(_) => None,
        };
        let digest = ecr.digest.as_deref().or(resolved);
        match (digest, ecr.tag.as_deref()) {
            (Some(d), _) => self
                .reports
                .by_digest(&ecr.account, &ecr.region, &ecr.repository, d),
            (None, Some(tag)) => {
                (self.reports).by_tag(&ecr.account, &ecr.region, &ecr.repository, tag)
            }
            (None, None) => None,
        }
    }

    /// Why `report` does not count as a scan, if it does not.
    pub(super) fn unusable(&self, report: Scan<'_>) -> Option<String> {
        let status = report.status();
        if !SCANNED_STATUSES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(status))
        {
            return Some(format!("scan status is {status}"));
        }
        let days = self.enforcement.max_scan_age_days?;
        let Some(completed) = report.completed_at() else {
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

    pub(super) fn judge_findings(&self, report: Scan<'_>, reference: &ImageRef) -> Outcome {
        let threshold = self.enforcement.severity_threshold;
        let mut tally = self.tally(report, reference);
        let allowlisted_note = if tally.allowlisted.is_empty() {
            String::new()
        } else {
            let entries: Vec<String> = tally.allowlisted.into_iter().collect();
            format!("; allowlisted: {}", entries.join(", "))
        };
        if tally.counts.is_empty() {
            return Outcome::new(
                Verdict::Pass,
                format!(
                    "no findings at or above {}{allowlisted_note}",
                    threshold.as_ecr()
                ),
            );
        }
        most_severe_first(&mut tally.listed);
        let mut outcome = self.violation(Problem::Findings(Violations {
            threshold,
            counts: tally.counts,
            listed: tally.listed,
            unlisted: tally.unlisted,
        }));
        outcome.reason.push_str(&allowlisted_note);
        outcome
    }

    /// The findings at or above the threshold that count against the image: listed ones not
    /// allowlisted, plus those the summary counts but the report does not list (a report keeps
    /// only the most severe), which no allowlist entry can accept.
    fn tally(&self, report: Scan<'_>, reference: &ImageRef) -> Tally {
        let mut tally = Tally::default();
        let threshold = self.enforcement.severity_threshold;
        for severity in SEVERITIES.into_iter().filter(|s| *s >= threshold) {
            let (mut listed_here, mut counted) = (0u64, 0u64);
            for f in report.findings().filter(|f| f.severity == severity) {
                listed_here += 1;
                match self.allowlisted(&f, reference) {
                    Some(reason) => {
                        tally.allowlisted.insert(format!("{} ({reason})", f.id));
                    }
                    None => {
                        counted += 1;
                        tally.listed.push(f.to_finding());
                    }
                }
            }
            let summarised = report.count(severity);
            let unlisted = summarised.saturating_sub(listed_here);
            tally.unlisted += unlisted;
            let n = counted + unlisted;
            if n > 0 {
                tally.counts.push((severity, n));
            }
        }
        tally
    }

    /// The reason of the allowlist entry that accepts `finding` for this image, if any.
    pub(super) fn allowlisted(
        &self,
        finding: &FindingRef<'_>,
        reference: &ImageRef,
    ) -> Option<&str> {
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

    pub(super) fn mode_verdict(&self) -> Verdict {
        match self.enforcement.mode {
            EnforcementMode::Enforce => Verdict::Deny,
            EnforcementMode::Warn => Verdict::Warn,
            EnforcementMode::Audit => Verdict::Audit,
        }
    }

    pub(super) fn violation(&self, problem: Problem) -> Outcome {
        let verdict = self.mode_verdict();
        Outcome {
            verdict,
            reason: problem.summary(),
            problems: vec![problem],
        }
    }

    pub(super) fn unscanned(&self, why: String) -> Outcome {
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
pub(super) fn combine(a: Outcome, b: Outcome) -> Outcome {
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

pub(super) const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Informational,
];

pub(super) fn completed_at(scan: &ScanState) -> Option<DateTime<Utc>> {
    let t = scan.completed_at.as_deref()?;
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether an image pattern covers `reference` (see the module docs).
pub(super) fn image_matches(pattern: &str, reference: &ImageRef) -> bool {
    wildcard_match(pattern, &reference.to_string()) || wildcard_match(pattern, &reference.name())
}

/// What [`Check::tally`] counts.
#[derive(Default)]
struct Tally {
    /// Per severity at or above the threshold, the findings that count (zero counts left out).
    counts: Vec<(Severity, u64)>,
    /// The listed findings that count.
    listed: Vec<Finding>,
    /// Findings the summary counts beyond those listed.
    unlisted: u64,
    /// `id (reason)` of each listed finding an allowlist entry accepts.
    allowlisted: BTreeSet<String>,
}

/// Most severe first, then highest score, then by id: the order the message lists them in.
fn most_severe_first(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| {
                b.score
                    .partial_cmp(&a.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| a.id.cmp(&b.id))
    });
}
