//! What the API server's answer to the probe means: a pure function of the answer, tested
//! with a table.
//!
//! The probe is a dry-run create of a Pod the webhook recognises ([`PROBE_ANNOTATION`]) and
//! always refuses with [`PROBE_MARKER`] and the probe's nonce. So:
//!
//! - refused with the marker and this probe's nonce: our webhook answered (**reachable**);
//! - admitted: no webhook refused it, so ours was not asked or its call failed and
//!   `failurePolicy: Ignore` let the request through (**unreachable**). The same answer comes
//!   when the probe namespace is excluded by the webhook configuration's `namespaceSelector`,
//!   or from a webhook too old to know the probe: the message says so;
//! - refused with code 500 "failed calling webhook", or a timeout: the API server could not
//!   call the webhook and `failurePolicy: Fail` refused (**failing**: pods are refused too);
//! - anything else (forbidden to create pods, refused by another admission plugin or webhook,
//!   the namespace missing, the API server unreachable): the probe cannot tell (**unknown**).
//!
//! The API server reports a failed webhook call only as an `InternalError` (500) whose message
//! begins with `failed calling webhook`: there is no structured field to read, so that one
//! case is recognised by its message. Every other case is decided by code and by our own marker.
//!
//! [`PROBE_ANNOTATION`]: crate::admission::review::PROBE_ANNOTATION

use crate::admission::review::PROBE_MARKER;

/// The API server's answer to the dry-run create of the probe Pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Created (dry run: nothing persisted): no admission step refused it.
    Admitted,
    /// Refused, with the Status the API server sent.
    Refused {
        code: u16,
        reason: String,
        message: String,
    },
    /// No answer from the API server (connection, TLS, client timeout).
    NoAnswer(String),
}

/// Whether the API server reaches the webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// Our webhook answered the probe.
    Reachable,
    /// The API server admitted the probe without our webhook's answer (`Ignore`).
    Unreachable,
    /// The API server could not call the webhook and refused (`Fail`, timeout).
    Failing,
    /// The probe could not tell.
    Unknown,
}

impl Reachability {
    /// The `outcome` label of `ecr_operator_webhook_probes_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Reachable => "reachable",
            Self::Unreachable => "unreachable",
            Self::Failing => "failing",
            Self::Unknown => "unknown",
        }
    }

    /// The status of the `WebhookReachable` condition.
    pub fn condition_status(self) -> &'static str {
        match self {
            Self::Reachable => "True",
            Self::Unreachable | Self::Failing => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// What one probe concluded: the condition's status, reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub reachability: Reachability,
    /// The condition's reason (CamelCase, part of the API).
    pub reason: &'static str,
    /// What happened and what to do, stable from one probe to the next (no nonce, no time).
    pub message: String,
}

/// What `answer` to the probe with `nonce`, sent into `namespace`, means.
pub fn classify(answer: &Answer, nonce: &str, namespace: &str) -> Verdict {
    let (code, reason, message) = match answer {
        Answer::Admitted => return skipped(namespace),
        Answer::NoAnswer(why) => {
            return verdict(
                Reachability::Unknown,
                "ApiServerUnreachable",
                format!("the probe got no answer from the API server: {why}"),
            );
        }
        Answer::Refused {
            code,
            reason,
            message,
        } => (*code, reason.as_str(), message.as_str()),
    };
    if !nonce.is_empty() && message.contains(&format!("{PROBE_MARKER} {nonce}:")) {
        return verdict(
            Reachability::Reachable,
            "WebhookAnswered",
            "the API server called the admission webhook with a dry-run probe Pod and the \
             webhook answered"
                .to_owned(),
        );
    }
    refused(code, reason, message, namespace)
}

/// The verdict on a refusal that is not our webhook's answer.
fn refused(code: u16, reason: &str, message: &str, namespace: &str) -> Verdict {
    let from_webhook = message.starts_with("admission webhook");
    match code {
        500 if message.contains("failed calling webhook") => verdict(
            Reachability::Failing,
            "WebhookCallFailed",
            format!(
                "the API server cannot call the admission webhook and refuses pods \
                 (failurePolicy Fail): {message}"
            ),
        ),
        504 => verdict(
            Reachability::Failing,
            "WebhookTimeout",
            format!("the API server timed out admitting the probe: {message}"),
        ),
        _ if reason == "Timeout" => verdict(
            Reachability::Failing,
            "WebhookTimeout",
            format!("the API server timed out admitting the probe: {message}"),
        ),
        _ if from_webhook => verdict(
            Reachability::Unknown,
            "ProbeDenied",
            format!("another admission webhook refused the probe before ours answered: {message}"),
        ),
        401 | 403 => verdict(
            Reachability::Unknown,
            "ProbeForbidden",
            format!(
                "the API server refused the probe before the webhook was asked (the operator \
                 needs create on pods in namespace {namespace}; or an admission policy such as \
                 PodSecurity refused it): {message}"
            ),
        ),
        404 => verdict(
            Reachability::Unknown,
            "ProbeNamespaceNotFound",
            format!("the probe namespace {namespace} does not exist: {message}"),
        ),
        _ => verdict(
            Reachability::Unknown,
            "ProbeFailed",
            format!("the API server refused the probe with code {code} ({reason}): {message}"),
        ),
    }
}

/// The verdict on a probe admitted without our webhook's refusal.
fn skipped(namespace: &str) -> Verdict {
    verdict(
        Reachability::Unreachable,
        "WebhookSkipped",
        format!(
            "the API server admitted a dry-run probe Pod in namespace {namespace} without the \
             webhook's answer: it cannot reach the webhook and failurePolicy Ignore admits pods \
             unchecked (check the webhook Service, its endpoints and the caBundle), or \
             {namespace} is excluded by the webhook configuration's namespaceSelector"
        ),
    )
}

fn verdict(reachability: Reachability, reason: &'static str, message: String) -> Verdict {
    Verdict {
        reachability,
        reason,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u16, reason: &str, message: &str) -> Answer {
        Answer::Refused {
            code,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }
    }

    /// Every answer the API server gives, as it words them, and what each means.
    #[test]
    fn answers_are_classified() {
        let ours = format!(
            "admission webhook \"pods.ecr.operator.dev\" denied the request: {PROBE_MARKER} \
             n-1: the webhook is reachable"
        );
        let stale = ours.replace("n-1", "n-0");
        let cases: Vec<(&str, Answer, Reachability, &str)> = vec![
            (
                "our refusal, this nonce",
                refused(403, "Forbidden", &ours),
                Reachability::Reachable,
                "WebhookAnswered",
            ),
            (
                "our refusal, another code",
                refused(400, "BadRequest", &ours),
                Reachability::Reachable,
                "WebhookAnswered",
            ),
            (
                "admitted: skipped under Ignore",
                Answer::Admitted,
                Reachability::Unreachable,
                "WebhookSkipped",
            ),
            (
                "another probe's nonce",
                refused(403, "Forbidden", &stale),
                Reachability::Unknown,
                "ProbeDenied",
            ),
            (
                "Fail, connection refused",
                refused(
                    500,
                    "InternalError",
                    "Internal error occurred: failed calling webhook \"pods.ecr.operator.dev\": failed to call webhook: Post \"https://127.0.0.1:9/validate-pods?timeout=5s\": dial tcp 127.0.0.1:9: connect: connection refused",
                ),
                Reachability::Failing,
                "WebhookCallFailed",
            ),
            (
                "Fail, webhook timeout",
                refused(
                    500,
                    "InternalError",
                    "Internal error occurred: failed calling webhook \"pods.ecr.operator.dev\": failed to call webhook: Post \"https://x/validate-pods?timeout=5s\": context deadline exceeded",
                ),
                Reachability::Failing,
                "WebhookCallFailed",
            ),
            (
                "gateway timeout",
                refused(
                    504,
                    "Timeout",
                    "Timeout: request did not complete within 60s",
                ),
                Reachability::Failing,
                "WebhookTimeout",
            ),
            (
                "timeout reason",
                refused(
                    500,
                    "Timeout",
                    "the server was unable to return a response in the time allotted",
                ),
                Reachability::Failing,
                "WebhookTimeout",
            ),
            (
                "other 500",
                refused(
                    500,
                    "InternalError",
                    "Internal error occurred: etcdserver: leader changed",
                ),
                Reachability::Unknown,
                "ProbeFailed",
            ),
            (
                "RBAC",
                refused(
                    403,
                    "Forbidden",
                    "pods is forbidden: User \"system:serviceaccount:ecr-system:ecr-operator\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\"",
                ),
                Reachability::Unknown,
                "ProbeForbidden",
            ),
            (
                "PodSecurity",
                refused(
                    403,
                    "Forbidden",
                    "pods \"ecr-operator-webhook-probe-x\" is forbidden: violates PodSecurity \"restricted:latest\"",
                ),
                Reachability::Unknown,
                "ProbeForbidden",
            ),
            (
                "another webhook",
                refused(
                    403,
                    "Forbidden",
                    "admission webhook \"validate.kyverno.svc\" denied the request: no",
                ),
                Reachability::Unknown,
                "ProbeDenied",
            ),
            (
                "unauthorized",
                refused(401, "Unauthorized", "Unauthorized"),
                Reachability::Unknown,
                "ProbeForbidden",
            ),
            (
                "namespace missing",
                refused(404, "NotFound", "namespaces \"probe\" not found"),
                Reachability::Unknown,
                "ProbeNamespaceNotFound",
            ),
            (
                "throttled",
                refused(429, "TooManyRequests", "rate limited"),
                Reachability::Unknown,
                "ProbeFailed",
            ),
            (
                "no answer",
                Answer::NoAnswer("connection refused".into()),
                Reachability::Unknown,
                "ApiServerUnreachable",
            ),
        ];
        for (what, answer, reachability, reason) in cases {
            let v = classify(&answer, "n-1", "default");
            assert_eq!(
                (v.reachability, v.reason),
                (reachability, reason),
                "{what}: {v:?}"
            );
            assert!(
                !v.message.contains("n-1"),
                "{what}: the nonce stays out of the message"
            );
        }
    }

    /// An empty nonce (a probe that carried none) never matches a refusal.
    #[test]
    fn an_empty_nonce_matches_nothing() {
        let message = format!("admission webhook \"p\" denied the request: {PROBE_MARKER} : x");
        let v = classify(&refused(403, "Forbidden", &message), "", "default");
        assert_eq!(v.reachability, Reachability::Unknown);
    }

    #[test]
    fn statuses_and_labels() {
        let table = [
            (Reachability::Reachable, "True", "reachable"),
            (Reachability::Unreachable, "False", "unreachable"),
            (Reachability::Failing, "False", "failing"),
            (Reachability::Unknown, "Unknown", "unknown"),
        ];
        for (r, status, label) in table {
            assert_eq!((r.condition_status(), r.metric_label()), (status, label));
        }
    }
}
