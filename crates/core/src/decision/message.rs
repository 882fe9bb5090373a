//! The denial message and the warnings, within the API server's limits.

use super::*;

/// A denied (policy, image), for the message.
pub(super) struct Denied<'a> {
    pub(super) policy: &'a str,
    pub(super) image: &'a PodImage,
    pub(super) shown: String,
    pub(super) problem: Problem,
}

pub(super) fn denial_message(denied: &[Denied<'_>]) -> String {
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

/// The verdicts of `audit` counted, for the log of an answer with nothing else to say.
pub(super) fn verdict_counts(audit: &[AuditRecord]) -> String {
    if audit.is_empty() {
        return "no ScanPolicy applies".to_owned();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in audit {
        *counts.entry(format!("{:?}", r.verdict)).or_default() += 1;
    }
    counts
        .iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
