//! The request path: HTTP in, the AdmissionReview parsed, the decision's inputs looked up (the
//! report cache, the digest resolver), [`decide`] asked, the answer written, counted and logged.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, StatusCode};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::admission::AdmissionResponse;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::Instrument;

use super::cache::{ScanCache, Snapshot};
use super::decision::{
    Decision, DecisionInput, PodImage, ReportLookup, TagResolution, Verdict, decide,
};
use super::metrics::{AdmissionMetrics, Outcome};
use super::resolver::CachedResolver;
use super::review::{self, Request, Subject};
use super::server::{FailurePolicy, PATHS, WebhookConfig};
use crate::image::{EcrImage, ImageRef};
use crate::telemetry::trace;
use crate::text::clip;

/// The W3C Trace Context header whose trace id an admission request's logs carry.
const TRACEPARENT: &str = "traceparent";

/// Longest event note Kubernetes accepts (1 kB).
const EVENT_NOTE_MAX: usize = 1000;

/// Everything a request needs, shared by all connections.
pub(super) struct Handler {
    pub(super) cache: Arc<ScanCache>,
    resolver: Option<CachedResolver>,
    pub(super) metrics: Arc<AdmissionMetrics>,
    recorder: Option<Recorder>,
    pub(super) timeout: Duration,
    max_body_bytes: usize,
    cache_unavailable: FailurePolicy,
}

type HttpResponse = hyper::Response<Full<Bytes>>;

fn http_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

impl Handler {
    pub(super) fn new(
        config: &WebhookConfig,
        cache: Arc<ScanCache>,
        recorder: Option<Recorder>,
    ) -> Self {
        let resolver = config.resolver.clone().map(|r| {
            CachedResolver::new(
                r,
                config.resolve_timeout.min(config.timeout),
                config.resolve_found_ttl,
                config.resolve_missing_ttl,
            )
        });
        Self {
            cache,
            resolver,
            metrics: Arc::new(AdmissionMetrics::new()),
            recorder,
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
            cache_unavailable: config.cache_unavailable,
        }
    }

    /// Answers one HTTP request inside an `admission` span whose `trace_id` is the caller's
    /// (from a W3C `traceparent` header, as an API server with tracing enabled sends) or new.
    pub(super) async fn http(
        &self,
        req: hyper::Request<Incoming>,
    ) -> Result<HttpResponse, Infallible> {
        let trace_id = req
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(trace::trace_id_from_traceparent)
            .unwrap_or_else(trace::new_trace_id);
        let span = tracing::info_span!("admission", trace_id = %trace_id);
        self.http_in_span(req).instrument(span).await
    }

    async fn http_in_span(
        &self,
        req: hyper::Request<Incoming>,
    ) -> Result<HttpResponse, Infallible> {
        let start = Instant::now();
        if !PATHS.contains(&req.uri().path()) {
            return Ok(http_response(
                StatusCode::NOT_FOUND,
                br#"{"error":"not found"}"#.to_vec(),
            ));
        }
        if req.method() != Method::POST {
            return Ok(http_response(
                StatusCode::METHOD_NOT_ALLOWED,
                br#"{"error":"use POST"}"#.to_vec(),
            ));
        }
        let body = match self.read_body(req, start).await {
            Ok(body) => body,
            Err(refused) => return Ok(refused),
        };
        let (status, response) = self.review(&body, start).await;
        Ok(http_response(status, review::to_body(response)))
    }

    /// The request body, or the answer that refuses it (too large: 413; unreadable: 400).
    async fn read_body(
        &self,
        req: hyper::Request<Incoming>,
        start: Instant,
    ) -> Result<Bytes, HttpResponse> {
        let too_large = || {
            let message = format!("request body larger than {} bytes", self.max_body_bytes);
            self.metrics.record(Outcome::Invalid, start.elapsed());
            tracing::warn!("webhook: {message}");
            http_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                review::to_body(review::invalid(None, &message)),
            )
        };
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        match Limited::new(req.into_body(), self.max_body_bytes)
            .collect()
            .await
        {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => {
                let message = format!("cannot read the request body: {e}");
                self.metrics.record(Outcome::Invalid, start.elapsed());
                Err(http_response(
                    StatusCode::BAD_REQUEST,
                    review::to_body(review::invalid(None, &message)),
                ))
            }
        }
    }

    /// Answers one AdmissionReview body.
    async fn review(&self, body: &[u8], start: Instant) -> (StatusCode, AdmissionResponse) {
        let req = match review::parse(body) {
            Ok(r) => r,
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(error = %message, "webhook: malformed AdmissionReview");
                self.metrics.record(Outcome::Invalid, start.elapsed());
                return (
                    StatusCode::BAD_REQUEST,
                    review::invalid(review::salvage_uid(body), &message),
                );
            }
        };
        // The operator's reachability probe: refused with its nonce, before the cache or any
        // policy is consulted, and not counted as an admission decision.
        if let Some(nonce) = review::probe_nonce(&req) {
            tracing::debug!(uid = %req.uid, %nonce, "admission: reachability probe answered");
            return (StatusCode::OK, review::probe_refusal(&req, &nonce));
        }
        let namespace = req.namespace.clone().unwrap_or_default();
        let name = review::object_name(&req);
        let images = match review::subject(&req) {
            Subject::Skip(why) => {
                self.metrics.record(Outcome::Allowed, start.elapsed());
                tracing::debug!(uid = %req.uid, %namespace, %name, reason = why, "admission: allowed, nothing to check");
                return (StatusCode::OK, review::allow(&req, Vec::new()));
            }
            Subject::Images(images) => images,
        };
        if !self.cache.is_synced() {
            return (StatusCode::OK, self.unavailable(&req, &name, start));
        }
        let snapshot = self.cache.snapshot();
        let labels = self.cache.namespace_labels(&namespace);
        let images = self.resolve(&snapshot, images, start).await;
        let decision = decide(&DecisionInput {
            namespace: &namespace,
            namespace_labels: &labels,
            images: &images,
            policies: &snapshot.policies,
            reports: &snapshot.reports,
            now: Utc::now(),
        });
        let response = self.answer(&req, &namespace, &name, &decision, start);
        (StatusCode::OK, response)
    }

    /// Logs, counts and reports `decision`, and writes the answer.
    fn answer(
        &self,
        req: &Request,
        namespace: &str,
        name: &str,
        decision: &Decision,
        start: Instant,
    ) -> AdmissionResponse {
        for record in decision
            .audit
            .iter()
            .filter(|r| r.verdict == Verdict::Audit)
        {
            tracing::info!(uid = %req.uid, %namespace, %name, policy = %record.policy,
                container = %record.container, image = %record.image, reason = %record.reason,
                "admission: audit-mode violation admitted");
        }
        let outcome = outcome(decision);
        let event = match outcome {
            Outcome::Denied => Some("ImageVulnerable"),
            Outcome::Failed { allowed: false } => Some("ImageNotVerified"),
            _ => None,
        };
        if let Some(reason) = event {
            self.publish_denial(req, namespace, name, reason, &decision.summary);
        }
        self.finish(req, name, outcome, &decision.summary, start);
        review::respond(req, decision)
    }

    /// The answer before the cache has synced: no policy is known, so there is nothing to
    /// decide on, and the configured failure policy answers.
    fn unavailable(&self, req: &Request, name: &str, start: Instant) -> AdmissionResponse {
        let message = "ecr-operator webhook: the scan report cache has not synced yet";
        let allowed = self.cache_unavailable == FailurePolicy::Ignore;
        self.finish(req, name, Outcome::Failed { allowed }, message, start);
        if allowed {
            review::allow(req, vec![message.to_owned()])
        } else {
            review::deny(req, 503, "ServiceUnavailable", message)
        }
    }

    /// Looks up the digests of ECR tags the cache does not know, within what is left of the
    /// request's time; each image's [`TagResolution`] says what came of it.
    async fn resolve(
        &self,
        snapshot: &Snapshot,
        mut images: Vec<PodImage>,
        start: Instant,
    ) -> Vec<PodImage> {
        let Some(resolver) = &self.resolver else {
            return images;
        };
        // Without policies nothing is checked: the lookups would be wasted.
        if snapshot.policies.is_empty() {
            return images;
        }
        let wanted = unknown_tags(&snapshot.reports, &images);
        if wanted.is_empty() {
            return images;
        }
        let budget = self.timeout.saturating_sub(start.elapsed());
        // Only lookups the resolver's own cache cannot answer count as calls.
        let fresh: Vec<bool> = wanted
            .iter()
            .map(|(_, ecr)| resolver.cached(ecr).is_none())
            .collect();
        let calls = futures::future::join_all(wanted.iter().map(|(_, ecr)| resolver.resolve(ecr)));
        let Ok(results) = tokio::time::timeout(budget, calls).await else {
            let why = format!("no answer within the request timeout {:?}", self.timeout);
            for (i, _) in &wanted {
                self.metrics.record_resolve(true);
                images[*i].resolution = TagResolution::Failed(why.clone());
            }
            return images;
        };
        for (((i, _), result), fresh) in wanted.iter().zip(results).zip(fresh) {
            images[*i].resolution = match result {
                Ok(answer) => {
                    if fresh {
                        self.metrics.record_resolve(false);
                    }
                    answer.map_or(TagResolution::NotFound, TagResolution::Resolved)
                }
                Err(e) => {
                    self.metrics.record_resolve(true);
                    TagResolution::Failed(e.to_string())
                }
            };
        }
        images
    }

    fn finish(&self, req: &Request, name: &str, outcome: Outcome, reason: &str, start: Instant) {
        let elapsed = start.elapsed();
        self.metrics.record(outcome, elapsed);
        let decision = match outcome {
            Outcome::Allowed => "allowed",
            Outcome::Warned => "warned",
            Outcome::Denied => "denied",
            Outcome::Failed { allowed: true } => "failed-open",
            Outcome::Failed { allowed: false } => "failed-closed",
            Outcome::Invalid => "invalid",
        };
        tracing::info!(
            uid = %req.uid,
            namespace = req.namespace.as_deref().unwrap_or(""),
            name,
            kind = %req.kind.kind,
            operation = ?req.operation,
            dry_run = req.dry_run,
            decision,
            reason,
            elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "admission decision"
        );
    }

    /// Publishes a `Warning` event about the denied object in its namespace, in the background:
    /// reason `ImageVulnerable` for a policy denial, `ImageNotVerified` for a failure-policy
    /// denial (the tag could not be resolved).
    fn publish_denial(
        &self,
        req: &Request,
        namespace: &str,
        name: &str,
        reason: &str,
        message: &str,
    ) {
        let Some(recorder) = self.recorder.clone() else {
            return;
        };
        if req.dry_run {
            return;
        }
        let reference = ObjectReference {
            api_version: Some(if req.kind.group.is_empty() {
                req.kind.version.clone()
            } else {
                format!("{}/{}", req.kind.group, req.kind.version)
            }),
            kind: Some(req.kind.kind.clone()),
            name: Some(name.trim_end_matches('*').to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: req.object.as_ref().and_then(|o| o.metadata.uid.clone()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(clip(message, EVENT_NOTE_MAX)),
            action: "Admission".to_owned(),
            secondary: None,
        };
        let timeout = self.timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, recorder.publish(&event, &reference)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "webhook: cannot publish the denial event")
                }
                Err(_) => tracing::debug!("webhook: publishing the denial event timed out"),
            }
        });
    }
}

/// ECR images referenced by a tag the cache does not know (with their index): the lookups a
/// request needs. A pinned digest needs none.
fn unknown_tags(reports: &dyn ReportLookup, images: &[PodImage]) -> Vec<(usize, EcrImage)> {
    images
        .iter()
        .enumerate()
        .filter_map(|(i, image)| {
            let ecr = ImageRef::parse(&image.image).ok()?.ecr()?;
            let tag = ecr.tag.as_deref()?;
            let known = reports
                .by_tag(&ecr.account, &ecr.region, &ecr.repository, tag)
                .is_some();
            (ecr.digest.is_none() && !known).then_some((i, ecr))
        })
        .collect()
}

/// How the answer is counted.
fn outcome(decision: &Decision) -> Outcome {
    if decision.failed_closed() {
        Outcome::Failed { allowed: false }
    } else if !decision.allowed {
        Outcome::Denied
    } else if decision.failed_open() {
        Outcome::Failed { allowed: true }
    } else if decision.warnings.is_empty() {
        Outcome::Allowed
    } else {
        Outcome::Warned
    }
}
