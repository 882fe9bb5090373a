//! The RegistrySettings controller.
//!
//! observe (only the parts the spec sets, or that this object wrote: one GetAccountSetting per
//! declared account setting, one GetSigningConfiguration, one ListPullTimeUpdateExclusions) →
//! plan (`plan.rs`, pure) → apply only the differences → status (`apply.rs`). The object is
//! reconciled again every sweep interval, which is what corrects drift; an object that sets
//! nothing reads nothing.
//!
//! ECR has one set of settings per registry, so one object per registry (the own one, or the
//! RegistryTarget of `spec.registryRef`): the oldest manages it, a younger one reports Conflict.
//! Calls go to the target's registry ([`Reach`]); a target missing or not Ready makes the
//! object TargetNotReady without a call, and a change of any target reconciles every object.

mod apply;
pub mod plan;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use tracing::instrument;

use super::targets::TargetIndex;
use super::{Context, Error, claim, object_key, status};
use crate::api::RegistrySettings;

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<RegistrySettings>,
    pub targets: Arc<TargetIndex>,
}

/// Runs the RegistrySettings controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<RegistrySettings>(&ctx).await?;
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
    super::drain(
        Controller::for_stream(stream, reader)
            .reconcile_all_on(changes)
            .with_config(super::controller_config(&ctx))
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, shared),
    )
    .await;
    Ok(())
}

#[instrument(skip(settings, shared), fields(object = %object_key(settings.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(settings: Arc<RegistrySettings>, shared: Arc<Shared>) -> Result<Action, Error> {
    status::guarded(&shared.ctx, settings, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply::apply(&o, &shared).await,
            FinalizerEvent::Cleanup(o) => apply::cleanup(&o, &shared).await,
        }
    })
    .await
}

fn error_policy(settings: Arc<RegistrySettings>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, settings.as_ref(), err)
}

/// Another RegistrySettings for the same registry that came first.
fn older_claimant(store: &Store<RegistrySettings>, settings: &RegistrySettings) -> Option<String> {
    claim::older_claimants(store, settings, |o| o.target() == settings.target())
        .iter()
        .map(|o| o.name_any())
        .min()
}
