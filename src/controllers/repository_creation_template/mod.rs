//! The RepositoryCreationTemplate controller.
//!
//! observe (the registry's shared [`view::Templates`], refreshed by one
//! DescribeRepositoryCreationTemplates, all pages, per sweep for its objects) → plan (`plan.rs`, pure: create / update / Conflict
//! with a template this object did not create) → apply only that → status (`apply.rs`).
//!
//! ECR holds one template per prefix, so one object per prefix (and registry): the oldest object
//! for a prefix manages it, a younger one reports Conflict. Templates carry no tags of their own, so
//! ownership is the template's creation time recorded in the status: a template the operator
//! did not create is reported as Conflict and never touched.
//!
//! Templates are in the registry of the RegistryTarget of `spec.registryRef` (the own registry
//! without one): each registry some object names has its own view and is swept through its
//! target's client ([`Reach`](super::targets::Reach)); a target missing or not Ready is not
//! swept and its objects report TargetNotReady without a call. One object per prefix and
//! registry: the same prefix in another registry is another template.
//!
//! Calls: one DescribeRepositoryCreationTemplates per sweep for each registry objects name, none
//! while no object exists; Create/UpdateRepositoryCreationTemplate only on a change;
//! DeleteRepositoryCreationTemplate on deletion with deletionPolicy Delete.

mod apply;
pub mod plan;
pub mod view;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use tracing::instrument;

use super::targets::TargetIndex;
use super::{Context, Error, claim, object_key, status};
use crate::api::RepositoryCreationTemplate;
use crate::registry::RegistryError;

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<RepositoryCreationTemplate>,
    pub views: Arc<view::Views>,
    pub targets: Arc<TargetIndex>,
}

/// Runs the RepositoryCreationTemplate controller and its sweep until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<RepositoryCreationTemplate>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    let changes = targets.changes();
    // Before the first list every target would look missing.
    let shutdown = futures::FutureExt::shared(shutdown);
    if !super::ready_unless_shutdown(targets.ready(), shutdown.clone()).await {
        return Ok(());
    }
    let views = Arc::new(view::Views::default());
    let (sweep_tx, sweep_rx) = tokio::sync::mpsc::channel::<()>(1);
    let sweeper = Sweeper {
        ctx: ctx.clone(),
        store: reader.clone(),
        views: views.clone(),
        targets: targets.clone(),
    };
    let sweeper = sweeper.run(sweep_tx);
    // Aborted with this future: a detached sweeper would keep calling ECR for a dead controller.
    let _sweeper = super::AbortOnDrop(tokio::spawn(sweeper));
    let sweeps = futures::stream::unfold(sweep_rx, |mut rx| async move {
        rx.recv().await.map(|()| ((), rx))
    });
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        store: reader.clone(),
        views,
        targets,
    });
    super::drain(
        Controller::for_stream(stream, reader)
            .with_config(super::controller_config(&ctx))
            .reconcile_all_on(sweeps)
            .reconcile_all_on(changes)
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, shared),
    )
    .await;
    Ok(())
}

struct Sweeper {
    ctx: Arc<Context>,
    store: Store<RepositoryCreationTemplate>,
    views: Arc<view::Views>,
    targets: Arc<TargetIndex>,
}

impl Sweeper {
    /// While objects exist: lists every template of each registry they name once per sweep
    /// interval and triggers a reconcile of every object. While none exists: reads nothing,
    /// and forgets the views. A change of a target sweeps at once (one back is served now,
    /// not a sweep interval later).
    async fn run(self, trigger: tokio::sync::mpsc::Sender<()>) {
        let idle = Duration::from_secs(1).min(self.ctx.config.sweep_interval);
        let mut failures = 0u32;
        let mut changes = Box::pin(self.targets.changes());
        loop {
            let named = view::registries(self.store.state().iter().map(|o| o.as_ref()));
            self.views.retain(&named);
            if named.is_empty() {
                tokio::time::sleep(idle).await;
                continue;
            }
            let pass = self.sweep(&named).await;
            let what = "repository creation template";
            tokio::select! {
                () = super::pace_sweep(&self.ctx, what, pass, &mut failures, &trigger) => {}
                Some(()) = changes.next() => {}
            }
        }
    }

    /// Lists the templates of each registry of `named`. A target missing or not Ready is not
    /// called and its view forgotten (its objects report TargetNotReady; back, it is swept
    /// afresh). Fails only when no registry could be listed: one failing target must not stop
    /// the others' reconciles.
    async fn sweep(
        &self,
        named: &std::collections::BTreeSet<view::RegistryKey>,
    ) -> Result<(), RegistryError> {
        let mut first_failure = None;
        let mut listed = false;
        for target in named {
            let target = target.as_deref();
            let view = self.views.of(target);
            let Ok(reach) = self.targets.reach(&self.ctx, target).await else {
                view.forget();
                continue;
            };
            let started = Instant::now();
            match reach.registry.describe_creation_templates(&[]).await {
                Ok(list) => {
                    view.apply_sweep(started, list);
                    listed = true;
                }
                Err(e) => {
                    tracing::warn!(target, error = %e, "repository creation template sweep failed");
                    first_failure.get_or_insert(e);
                }
            }
        }
        match first_failure {
            Some(e) if !listed => Err(e),
            _ => Ok(()),
        }
    }
}

#[instrument(skip(template, shared), fields(object = %object_key(template.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(
    template: Arc<RepositoryCreationTemplate>,
    shared: Arc<Shared>,
) -> Result<Action, Error> {
    let target = template.target();
    // A target not Ready is reported (TargetNotReady) by apply/cleanup without a call.
    let reachable = target.is_none_or(|t| shared.targets.is_ready(t));
    if reachable && !shared.views.is_synced(target) {
        // The first sweep of its registry has not finished; it triggers a reconcile of
        // everything when it does.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    status::guarded(&shared.ctx, template, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply::apply(&o, &shared).await,
            FinalizerEvent::Cleanup(o) => apply::cleanup(&o, &shared).await,
        }
    })
    .await
}

fn error_policy(
    template: Arc<RepositoryCreationTemplate>,
    err: &Error,
    shared: Arc<Shared>,
) -> Action {
    status::error_policy(&shared.ctx, template.as_ref(), err)
}

/// Another object for the same prefix in the same registry that came first.
fn older_claimant(
    store: &Store<RepositoryCreationTemplate>,
    template: &RepositoryCreationTemplate,
) -> Option<String> {
    claim::older_claimants(store, template, |o| {
        plan::same_template(&o.spec, &template.spec)
    })
    .iter()
    .map(|o| o.name_any())
    .min()
}
