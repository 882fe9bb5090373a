//! What a tag that cannot be resolved does to the answer: the failure policy of tag resolution.
//!
//! The webhook looks up the digest of an ECR tag its report cache does not know and passes the
//! outcome in [`PodImage::resolution`]. When the lookup fails (timeout, throttling, access
//! denied, …), the image is judged on its tag alone, which has no report: as unscanned. Then each
//! policy that checks the image answers by its mode: `enforce` fails closed (the pod is denied,
//! code 503, unless a policy denies it anyway), `warn` adds a warning, `audit` fails open and
//! only the log says so.

use super::*;

/// The outcome of looking up the digest an image's tag points at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TagResolution {
    /// Not looked up: the reference pins a digest, is not an ECR tag, the report cache knows the
    /// tag, or no resolver is configured. The report is found from the reference.
    #[default]
    NotLookedUp,
    /// The tag points at this digest: its report counts, whatever the reports say of the tag.
    Resolved(String),
    /// The registry has no such tag (or repository): the report is looked up by tag.
    NotFound,
    /// The lookup failed, for this reason (timeout, throttling, access denied, …).
    Failed(String),
}

/// Tags that could not be resolved, and what that did to the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// `cannot resolve the tag of IMAGE to a digest (WHY)` per image, joined by `; `.
    pub text: String,
    /// How the answer changed.
    pub effect: UnresolvedEffect,
}

/// How tags that could not be resolved change the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnresolvedEffect {
    /// A policy in enforce mode checks such an image and no policy denied the pod: it is denied
    /// (code 503) with a message that suggests pinning a digest.
    FailedClosed,
    /// A policy in warn mode checks such an image: a warning says so. The pod is admitted
    /// (failed open) unless a policy denied it.
    Warned,
    /// No policy in enforce or warn mode checks such an image: only the log says so.
    Logged,
}

/// What the policies concluded about images whose tag could not be resolved, gathered while
/// they judge the pod.
#[derive(Default)]
pub(super) struct UnresolvedTags {
    texts: Vec<String>,
    enforced: bool,
    warned: bool,
}

impl UnresolvedTags {
    /// Notes that a policy in `mode` concluded `verdict` about `image`.
    pub(super) fn judged(&mut self, image: &PodImage, mode: EnforcementMode, verdict: Verdict) {
        let checked = !matches!(verdict, Verdict::Exempt | Verdict::NotChecked);
        if !checked || !matches!(image.resolution, TagResolution::Failed(_)) {
            return;
        }
        match mode {
            EnforcementMode::Enforce => self.enforced = true,
            EnforcementMode::Warn => self.warned = true,
            EnforcementMode::Audit => {}
        }
    }

    /// Notes `image`, once every policy has judged it.
    pub(super) fn done(&mut self, image: &PodImage) {
        if let TagResolution::Failed(why) = &image.resolution {
            self.texts.push(format!(
                "cannot resolve the tag of {} to a digest ({why})",
                image.image
            ));
        }
    }

    /// Applies the failure policy to `decision`, which the policies made as if the tags had no
    /// report.
    pub(super) fn apply(self, decision: &mut Decision) {
        if self.texts.is_empty() {
            return;
        }
        let text = self.texts.join("; ");
        let effect = if self.enforced && decision.allowed {
            let message = format!(
                "ecr-operator webhook: {text}; a ScanPolicy in enforce mode checks {}, so the \
                 request is denied. Retry, or reference the image by digest.",
                if self.texts.len() == 1 { "it" } else { "them" }
            );
            decision.allowed = false;
            decision.summary.clone_from(&message);
            decision.message = Some(message);
            UnresolvedEffect::FailedClosed
        } else if self.warned {
            let warning = clip(&format!("ecr-operator: {text}"), WARNING_MAX_LEN);
            decision.warnings.push(warning);
            UnresolvedEffect::Warned
        } else {
            UnresolvedEffect::Logged
        };
        if !decision.summary.is_empty() {
            decision.summary.push_str("; ");
        }
        decision.summary.push_str(&text);
        decision.unresolved = Some(Unresolved { text, effect });
    }
}
