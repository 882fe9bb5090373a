//! The PullThroughCacheRule controller.
//!
//! validate (`upstream.rs`, pure: the upstream URL is one ECR supports, and the credentials it
//! needs are there) → observe (DescribePullThroughCacheRules for the prefix; the credentials
//! Secret and its mirror in Secrets Manager as `ecr-pullthroughcache/<name>`) → plan (`plan.rs`,
//! pure: create / update credentials / replace when the upstream changed / Conflict with a rule
//! this object did not create) → apply only that → status (`apply.rs`).
//!
//! ECR rules carry no tags, so ownership is recorded in the status (the rule's creation time):
//! a rule that existed before this object is reported as Conflict and never touched.
//!
//! The rule, and the mirrored secret, are in the registry of the RegistryTarget of
//! `spec.registryRef` (the own registry without one): every call goes to that target's client
//! ([`Reach`](super::targets::Reach)), a target missing or not Ready makes the object
//! TargetNotReady without a call, and a change of any target reconciles every object. One
//! object per prefix and registry: the oldest manages the rule, a younger one is Conflict.
//!
//! Calls per reconcile: one DescribePullThroughCacheRules; with credentialsSecretRef one
//! GetSecretValue (plus a DescribeSecret the first time, to check the owner tag); writes
//! (Create/Update/DeletePullThroughCacheRule, CreateSecret/PutSecretValue) only on a change.
//! Secret values are never logged nor put in events or conditions.

mod apply;
pub mod plan;
mod upstream;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use tracing::instrument;

use super::claim;
use super::status;
use super::targets::TargetIndex;
use super::{Context, Error, object_key};
use crate::api::PullThroughCacheRule;

pub use upstream::{SECRET_PREFIX, Upstream, classify, validate};

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<PullThroughCacheRule>,
    pub targets: Arc<TargetIndex>,
}

/// Runs the PullThroughCacheRule controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<PullThroughCacheRule>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    let changes = targets.changes();
    // Before the first list every target would look missing.
    let shutdown = futures::FutureExt::shared(shutdown);
    if !super::ready_unless_shutdown(targets.ready(), shutdown.clone()).await {
        return Ok(());
    }
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        store: reader.clone(),
        targets,
    });
    let store = reader.clone();
    // A change of a credentials Secret (in the operator's namespace) re-mirrors it.
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &ctx.config.operator_namespace);
    super::drain(
        Controller::for_stream(stream, reader)
            .watches(secrets, watcher::Config::default(), move |secret| {
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|r| {
                        r.spec
                            .credentials_secret_ref
                            .as_ref()
                            .is_some_and(|s| s.name == name)
                    })
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect::<Vec<_>>()
            })
            .reconcile_all_on(changes)
            .with_config(super::controller_config(&ctx))
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, shared),
    )
    .await;
    Ok(())
}

#[instrument(skip(rule, shared), fields(object = %object_key(rule.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(rule: Arc<PullThroughCacheRule>, shared: Arc<Shared>) -> Result<Action, Error> {
    status::guarded(&shared.ctx, rule, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply::apply(&o, &shared).await,
            FinalizerEvent::Cleanup(o) => apply::cleanup(&o, &shared).await,
        }
    })
    .await
}

fn error_policy(rule: Arc<PullThroughCacheRule>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, rule.as_ref(), err)
}

/// Another object for the same prefix in the same registry that came first.
fn older_claimant(
    store: &Store<PullThroughCacheRule>,
    rule: &PullThroughCacheRule,
) -> Option<String> {
    claim::older_claimants(store, rule, |o| plan::same_rule(&o.spec, &rule.spec))
        .iter()
        .map(|o| o.name_any())
        .min()
}
