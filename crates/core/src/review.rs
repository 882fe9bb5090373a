//! Reading an `admission.k8s.io/v1` AdmissionReview and writing the answer: which images a
//! request introduces, and how a [`Decision`] becomes an [`AdmissionResponse`].
//!
//! Only what the decision needs is deserialized from the admitted object: its name, namespace,
//! uid, labels and annotations, and the `name` and `image` of every container, init container
//! and ephemeral container of its pod spec. Every other field (managed fields, volumes, probes,
//! resources, status, …) is skipped by serde without being buffered or allocated.

use std::borrow::Cow;
use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{ApiResource, DynamicResourceScope, Resource, Status};
use serde::{Deserialize, Serialize};

use crate::decision::{ContainerKind, Decision, PodImage, TagResolution};

/// The parts of an admitted object the webhook reads: a Pod, or a workload with a pod template
/// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job: `spec.template`; CronJob:
/// `spec.jobTemplate.spec.template`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmittedObject {
    /// The object's metadata (only the fields `LeanMeta` reads).
    #[serde(default, deserialize_with = "lean_meta")]
    pub metadata: ObjectMeta,
    /// The object's spec, reduced to the pod spec (or the pod template) in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ObjectSpec>,
}

/// The metadata fields the webhook reads; `managedFields`, often most of a request's bytes,
/// is skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

fn lean_meta<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = LeanMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        generate_name: m.generate_name,
        namespace: m.namespace,
        uid: m.uid,
        labels: m.labels,
        annotations: m.annotations,
        ..ObjectMeta::default()
    })
}

/// A spec that is either a pod spec or holds a pod template. The container lists are read
/// in place (no `#[serde(flatten)]`, which would buffer the whole spec first).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSpec {
    /// A Pod's `containers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerImage>,
    /// A Pod's `initContainers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerImage>,
    /// A Pod's `ephemeralContainers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ephemeral_containers: Vec<ContainerImage>,
    /// The pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet or Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
    /// The job template of a CronJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template: Option<JobTemplate>,
}

/// `spec.template` of a workload.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PodTemplate {
    /// The template's pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpecImages>,
}

/// `spec.jobTemplate` of a CronJob.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct JobTemplate {
    /// The job spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<JobSpec>,
}

/// `spec.jobTemplate.spec` of a CronJob.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct JobSpec {
    /// The job's pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

/// The container lists of a pod spec.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecImages {
    /// `containers`.
    #[serde(default)]
    pub containers: Vec<ContainerImage>,
    /// `initContainers`.
    #[serde(default)]
    pub init_containers: Vec<ContainerImage>,
    /// `ephemeralContainers`.
    #[serde(default)]
    pub ephemeral_containers: Vec<ContainerImage>,
}

/// A container's name and image.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ContainerImage {
    /// The container's name.
    #[serde(default)]
    pub name: String,
    /// The image (optional in the API: a workload may leave it to a mutating webhook).
    #[serde(default)]
    pub image: Option<String>,
}

impl Resource for AdmittedObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The kinds whose pod spec the webhook checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `v1` Pod.
    Pod,
    /// `apps/v1` Deployment, StatefulSet, DaemonSet, ReplicaSet; `batch/v1` Job.
    Template,
    /// `batch/v1` CronJob.
    CronJob,
}

impl WorkloadKind {
    /// The kind of a request by its `kind` (group and kind; every served version has the same
    /// shape for the fields we read).
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        match (group, kind) {
            ("", "Pod") => Some(Self::Pod),
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
            | ("batch", "Job") => Some(Self::Template),
            ("batch", "CronJob") => Some(Self::CronJob),
            _ => None,
        }
    }
}

/// A request to admit: the AdmissionRequest with our reduced object.
pub type Request = AdmissionRequest<AdmittedObject>;

/// Why a body is not an AdmissionReview we can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("the body is not an admission.k8s.io/v1 AdmissionReview: {0}")]
    Malformed(#[from] serde_json::Error),
    /// An AdmissionReview without `request`.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// An AdmissionReview of another version.
    #[error("unsupported AdmissionReview apiVersion {0:?}; only admission.k8s.io/v1 is served")]
    Version(String),
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<Request, ReviewError> {
    let review: AdmissionReview<AdmittedObject> = serde_json::from_slice(body)?;
    if review.types.api_version != kube::core::admission::META_API_VERSION_V1 {
        return Err(ReviewError::Version(review.types.api_version));
    }
    review.try_into().map_err(|_| ReviewError::NoRequest)
}

/// The `uid` of a body that does not parse as a whole, so that the answer can still name it.
pub fn salvage_uid(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Uid {
        uid: String,
    }
    #[derive(Deserialize)]
    struct Envelope {
        request: Uid,
    }
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .map(|e| e.request.uid)
}

/// Every image of the object's pod spec, in spec order (containers, init containers, ephemeral
/// containers). Containers without an image are left out.
pub fn images_of(kind: WorkloadKind, object: &AdmittedObject) -> Vec<PodImage> {
    let Some(spec) = &object.spec else {
        return Vec::new();
    };
    let template = match kind {
        WorkloadKind::Pod => None,
        WorkloadKind::Template => spec.template.as_ref(),
        WorkloadKind::CronJob => spec
            .job_template
            .as_ref()
            .and_then(|j| j.spec.as_ref())
            .and_then(|j| j.template.as_ref()),
    };
    let lists = match (kind, template.and_then(|t| t.spec.as_ref())) {
        (WorkloadKind::Pod, _) => [
            &spec.containers,
            &spec.init_containers,
            &spec.ephemeral_containers,
        ],
        (_, Some(pod)) => [
            &pod.containers,
            &pod.init_containers,
            &pod.ephemeral_containers,
        ],
        (_, None) => return Vec::new(),
    };
    let lists = [
        ContainerKind::Container,
        ContainerKind::InitContainer,
        ContainerKind::EphemeralContainer,
    ]
    .into_iter()
    .zip(lists);
    lists
        .into_iter()
        .flat_map(|(kind, list)| {
            list.iter().filter_map(move |c| {
                c.image.as_ref().map(|image| PodImage {
                    container: c.name.clone(),
                    kind,
                    image: image.clone(),
                    resolution: TagResolution::NotLookedUp,
                })
            })
        })
        .collect()
}

/// What a request asks the webhook to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Nothing to check: another operation, another kind, or an UPDATE that changes no image.
    Skip(&'static str),
    /// These images (never empty).
    Images(Vec<PodImage>),
}

/// The images `req` introduces.
///
/// - CREATE: every image of the object.
/// - UPDATE (including the `ephemeralcontainers` subresource): only images that do not appear
///   anywhere in the old object. An image the pod already runs was admitted before; checking it
///   again on, say, `kubectl debug` would block debugging a running pod because of its main
///   container. An UPDATE that changes no image (labels, scale, status) is skipped.
/// - DELETE and CONNECT: skipped.
pub fn subject(req: &Request) -> Subject {
    let Some(kind) = WorkloadKind::of(&req.kind.group, &req.kind.kind) else {
        return Subject::Skip("not a pod or a workload with a pod template");
    };
    let Some(object) = &req.object else {
        return Subject::Skip("no object");
    };
    let images = images_of(kind, object);
    let images = match req.operation {
        Operation::Create => images,
        Operation::Update => {
            let old: BTreeSet<String> = req
                .old_object
                .as_ref()
                .map(|o| images_of(kind, o).into_iter().map(|i| i.image).collect())
                .unwrap_or_default();
            images
                .into_iter()
                .filter(|i| !old.contains(&i.image))
                .collect()
        }
        Operation::Delete | Operation::Connect => return Subject::Skip("not CREATE or UPDATE"),
    };
    if images.is_empty() {
        Subject::Skip("no new image")
    } else {
        Subject::Images(images)
    }
}

/// The annotation that marks the operator's reachability probe: a dry-run create of a Pod whose
/// value (a nonce) the webhook echoes in its refusal, so that the prober can tell its own
/// webhook's answer from the API server skipping the webhook (`failurePolicy: Ignore`) and from
/// a refusal by anything else.
pub const PROBE_ANNOTATION: &str = "ecr.operator.dev/webhook-probe";

/// The probe Pod's image: on an ECR host, so that the webhook configuration's
/// `matchConditions` send it, in an account that does not exist.
pub const PROBE_IMAGE: &str =
    "000000000000.dkr.ecr.us-east-1.amazonaws.com/ecr-operator/webhook-probe:reachability";

/// How every refusal of a probe begins, followed by the probe's nonce.
pub const PROBE_MARKER: &str = "ecr-operator webhook probe";

/// Longest nonce echoed back; longer values are cut, other characters than `[A-Za-z0-9-]`
/// dropped (the refusal must not carry arbitrary text from the request).
const PROBE_NONCE_MAX: usize = 64;

/// The nonce of a probe: a Pod CREATE carrying [`PROBE_ANNOTATION`]. Such a request is always
/// refused ([`probe_refusal`]), dry run or not: the annotation can never get a pod admitted
/// unchecked.
pub fn probe_nonce(req: &Request) -> Option<String> {
    if req.operation != Operation::Create
        || WorkloadKind::of(&req.kind.group, &req.kind.kind) != Some(WorkloadKind::Pod)
    {
        return None;
    }
    let annotations = req.object.as_ref()?.metadata.annotations.as_ref()?;
    let value = annotations.get(PROBE_ANNOTATION)?;
    Some(
        value
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(PROBE_NONCE_MAX)
            .collect(),
    )
}

/// The answer to a probe: refused (nothing is ever created from it) with code 403 and the
/// message `ecr-operator webhook probe <nonce>: ...`.
pub fn probe_refusal(req: &Request, nonce: &str) -> AdmissionResponse {
    let message = format!(
        "{PROBE_MARKER} {nonce}: the webhook is reachable; probes are always refused, so \
         nothing is created"
    );
    deny(req, 403, "Forbidden", &message)
}

/// How the object is named in logs and events: its name, `generateName*` while the API server
/// has not named it yet, or `<unnamed>`.
pub fn object_name(req: &Request) -> String {
    if !req.name.is_empty() {
        return req.name.clone();
    }
    let meta = req.object.as_ref().map(|o| &o.metadata);
    match meta {
        Some(ObjectMeta { name: Some(n), .. }) if !n.is_empty() => n.clone(),
        Some(ObjectMeta {
            generate_name: Some(g),
            ..
        }) if !g.is_empty() => format!("{g}*"),
        _ => "<unnamed>".to_owned(),
    }
}

/// The answer for `req` from `decision`: denied with the decision's message and code 403, or
/// 503 when a tag could not be resolved (the API server shows "cannot verify", not "forbidden");
/// the decision's warnings in both cases.
pub fn respond(req: &Request, decision: &Decision) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(req);
    if !decision.allowed {
        let message = decision
            .message
            .clone()
            .unwrap_or_else(|| "denied by ScanPolicy".to_owned());
        let (code, reason) = if decision.failed_closed() {
            (503, "ServiceUnavailable")
        } else {
            (403, "Forbidden")
        };
        response = response.deny(&message);
        response.result = Status::failure(&message, reason).with_code(code);
    }
    if !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings.clone());
    }
    response
}

/// An allowed answer with optional warnings.
pub fn allow(req: &Request, warnings: Vec<String>) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(req);
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

/// A denial with an explicit code (403 policy, 400 bad request, 503 unavailable).
pub fn deny(req: &Request, code: u16, reason: &str, message: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(req).deny(message);
    response.result = Status::failure(message, reason).with_code(code);
    response
}

/// The answer to a body that could not be read. Names `uid` when it could be salvaged.
pub fn invalid(uid: Option<String>, message: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::invalid(message);
    response.result = Status::failure(message, "BadRequest").with_code(400);
    if let Some(uid) = uid {
        response.uid = uid;
    }
    response
}

/// Serializes `response` as the AdmissionReview the API server expects.
pub fn to_body(response: AdmissionResponse) -> Vec<u8> {
    // An AdmissionReview of strings, numbers and maps always serializes.
    serde_json::to_vec(&response.into_review()).unwrap_or_default()
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
