//! Status writing shared by the controllers: the Ready condition, server-side apply on `/status` with
//! one field manager and only when something changed, and events only on transitions.

use std::fmt::Debug;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use std::future::Future;
use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use tracing::warn;

use super::{Context, Error, FINALIZER, MANAGER, from_finalizer, object_key};
use crate::api::common::CommonStatus;
use crate::api::conditions::{self, Reason};

/// A kind whose status carries [`CommonStatus`].
pub trait Reported:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    type Status: Clone + Debug + Default + PartialEq + Serialize + Send + Sync;
    const KIND: &'static str;
    fn status(&self) -> Option<&Self::Status>;
    fn common(status: &Self::Status) -> &CommonStatus;
    fn common_mut(status: &mut Self::Status) -> &mut CommonStatus;
    /// The API for this object (namespaced or cluster-wide).
    fn api_for(&self, client: kube::Client) -> Api<Self>;
}

/// The object's status, or an empty one.
pub fn current<K: Reported>(obj: &K) -> K::Status {
    obj.status().cloned().unwrap_or_default()
}

/// The reason of the Ready condition, if any.
pub fn ready_reason<K: Reported>(obj: &K) -> Option<String> {
    obj.status()
        .and_then(|s| conditions::find_ready(&K::common(s).conditions))
        .map(|c| c.reason.clone())
}

/// Sets Ready (keeping lastTransitionTime while True/False does not change), kstatus's
/// `Reconciling` or `Stalled` while not Ready (so Flux's default health checks read it; see
/// [`conditions::set_ready_conditions`]), and observedGeneration.
pub fn set_ready<K: Reported>(
    status: &mut K::Status,
    obj: &K,
    ready: bool,
    reason: Reason,
    message: impl Into<String>,
) {
    let common = K::common_mut(status);
    conditions::set_ready_conditions(
        &mut common.conditions,
        ready,
        reason,
        message,
        obj.meta().generation,
        Timestamp::now(),
    );
    common.observed_generation = obj.meta().generation;
}

/// Writes status through the status subresource, only when it changed.
pub async fn write<K: Reported>(ctx: &Context, obj: &K, status: &K::Status) -> Result<(), Error> {
    if obj.status() == Some(status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::KIND,
        "status": status,
    });
    obj.api_for(ctx.client.clone())
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

/// A time ECR reported, as the status records it (RFC 3339): one spelling, so that a recorded
/// time compares equal to the same time read again.
pub fn recorded_time(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_string())
}

/// Records a failed reconcile in the Ready condition (other status fields kept), with a Warning
/// event only when the reason changes.
pub async fn write_failure<K: Reported>(ctx: &Context, obj: &K, err: &Error) -> Result<(), Error> {
    write_failure_with(ctx, obj, err, |_| {}).await
}

/// [`write_failure`] that first lets `adjust` correct other status fields the failure makes
/// untrue (a singleton's "applied" field, say).
pub async fn write_failure_with<K: Reported>(
    ctx: &Context,
    obj: &K,
    err: &Error,
    adjust: impl FnOnce(&mut K::Status),
) -> Result<(), Error> {
    let mut status = current(obj);
    adjust(&mut status);
    let reason = err.reason();
    let previous = ready_reason(obj);
    set_ready(&mut status, obj, false, reason, err.to_string());
    if previous.as_deref() != Some(reason.as_str()) {
        ctx.event(
            obj,
            EventType::Warning,
            reason.as_str(),
            "Reconcile",
            err.to_string(),
        )
        .await;
    }
    write(ctx, obj, &status).await
}

/// Writes Ready=True with `message` and the given status fields; a Normal event `event_reason`
/// with `note` when given (callers pass one only on a change).
pub async fn write_ready<K: Reported>(
    ctx: &Context,
    obj: &K,
    mut status: K::Status,
    message: impl Into<String>,
    event: Option<Announcement>,
) -> Result<(), Error> {
    set_ready(&mut status, obj, true, Reason::Synced, message);
    write(ctx, obj, &status).await?;
    if let Some(a) = event {
        a.publish(ctx, obj).await;
    }
    Ok(())
}

/// The Normal event a reconcile decided on (what its plan announces): its reason, the action it
/// names, and the note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

impl Announcement {
    /// Publishes it on `obj`.
    pub async fn publish<K: Resource<DynamicType = ()>>(self, ctx: &Context, obj: &K) {
        ctx.event(obj, EventType::Normal, self.reason, self.action, self.note)
            .await;
    }
}

macro_rules! reported {
    ($kind:ty, $status:ty, $name:literal, namespaced) => {
        reported!(@impl $kind, $status, $name, |obj, client| {
            Api::namespaced(client, &obj.namespace().unwrap_or_default())
        });
    };
    ($kind:ty, $status:ty, $name:literal, cluster) => {
        reported!(@impl $kind, $status, $name, |_, client| Api::all(client));
    };
    (@impl $kind:ty, $status:ty, $name:literal, $api:expr) => {
        impl Reported for $kind {
            type Status = $status;
            const KIND: &'static str = $name;
            fn status(&self) -> Option<&Self::Status> {
                self.status.as_ref()
            }
            fn common(status: &Self::Status) -> &CommonStatus {
                &status.common
            }
            fn common_mut(status: &mut Self::Status) -> &mut CommonStatus {
                &mut status.common
            }
            fn api_for(&self, client: kube::Client) -> Api<Self> {
                let api: fn(&Self, kube::Client) -> Api<Self> = $api;
                api(self, client)
            }
        }
    };
}

use crate::api::lifecycle_policy::LifecyclePolicyStatus;
use crate::api::public_repository::PublicRepositoryStatus;
use crate::api::pull_through_cache_rule::PullThroughCacheRuleStatus;
use crate::api::registry_policy::RegistryPolicyStatus;
use crate::api::registry_settings::RegistrySettingsStatus;
use crate::api::registry_target::RegistryTargetStatus;
use crate::api::replication_config::ReplicationConfigStatus;
use crate::api::repository::RepositoryStatus;
use crate::api::repository_access_policy::RepositoryAccessPolicyStatus;
use crate::api::repository_creation_template::RepositoryCreationTemplateStatus;
use crate::api::scan_policy::ScanPolicyStatus;
use crate::api::{
    LifecyclePolicy, PublicRepository, PullThroughCacheRule, RegistryPolicy, RegistrySettings,
    RegistryTarget, ReplicationConfig, Repository, RepositoryAccessPolicy,
    RepositoryCreationTemplate, ScanPolicy,
};

reported!(Repository, RepositoryStatus, "Repository", namespaced);
reported!(
    PublicRepository,
    PublicRepositoryStatus,
    "PublicRepository",
    namespaced
);
reported!(
    LifecyclePolicy,
    LifecyclePolicyStatus,
    "LifecyclePolicy",
    namespaced
);
reported!(
    PullThroughCacheRule,
    PullThroughCacheRuleStatus,
    "PullThroughCacheRule",
    cluster
);
reported!(
    ReplicationConfig,
    ReplicationConfigStatus,
    "ReplicationConfig",
    cluster
);
reported!(ScanPolicy, ScanPolicyStatus, "ScanPolicy", cluster);
reported!(
    RepositoryCreationTemplate,
    RepositoryCreationTemplateStatus,
    "RepositoryCreationTemplate",
    cluster
);
reported!(
    RegistryPolicy,
    RegistryPolicyStatus,
    "RegistryPolicy",
    cluster
);
reported!(
    RegistrySettings,
    RegistrySettingsStatus,
    "RegistrySettings",
    cluster
);
reported!(
    RegistryTarget,
    RegistryTargetStatus,
    "RegistryTarget",
    cluster
);
reported!(
    RepositoryAccessPolicy,
    RepositoryAccessPolicyStatus,
    "RepositoryAccessPolicy",
    cluster
);

/// Runs `reconcile` inside the finalizer, records a failure in the Ready condition, and decides
/// what happens next: permanent errors wait for a change of the object, others are returned so
/// that [`error_policy`] retries them with backoff.
pub async fn guarded<K, F, Fut>(ctx: &Context, obj: Arc<K>, reconcile: F) -> Result<Action, Error>
where
    K: Reported,
    F: FnOnce(FinalizerEvent<K>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let started = std::time::Instant::now();
    let api = obj.api_for(ctx.client.clone());
    let result = finalizer(&api, FINALIZER, obj.clone(), reconcile)
        .await
        .map_err(from_finalizer);
    // Every per-object controller is counted here, the same way, with the error's own class
    // (also for permanent errors, which end as `await_change` below).
    ctx.observe(&K::KIND.to_ascii_lowercase(), &result, started);
    match result {
        Ok(action) => {
            ctx.reset_backoff(&obj.uid().unwrap_or_default());
            Ok(action)
        }
        Err(e) => {
            if let Err(status_err) = write_failure(ctx, obj.as_ref(), &e).await {
                warn!(error = %status_err, "writing failure status failed");
            }
            if e.is_permanent() {
                Ok(Action::await_change())
            } else {
                Err(e)
            }
        }
    }
}

/// The retry after a failed reconcile: per-object exponential backoff with jitter.
pub fn error_policy<K: Resource>(ctx: &Context, obj: &K, err: &Error) -> Action {
    let wait = ctx.backoff(&obj.uid().unwrap_or_default());
    warn!(object = %object_key(obj), error = %err, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}
