//! The RepositoryCreationTemplate controller.
//!
//! observe (the shared [`view::Templates`], refreshed by one DescribeRepositoryCreationTemplates,
//! all pages, per sweep for every object) → plan (`plan.rs`, pure: create / update / Conflict
//! with a template this object did not create) → apply only that → status (`apply.rs`).
//!
//! ECR holds one template per prefix, so one object per prefix: the oldest object for a prefix
//! manages it, a younger one reports Conflict. Templates carry no tags of their own, so
//! ownership is the template's creation time recorded in the status: a template the operator
//! did not create is reported as Conflict and never touched.
//!
//! Calls: one DescribeRepositoryCreationTemplates per sweep, and none while no object exists;
//! Create/UpdateRepositoryCreationTemplate only on a change; DeleteRepositoryCreationTemplate on
//! deletion with deletionPolicy Delete.

mod apply;
pub mod plan;
pub mod view;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::Store;
use tracing::instrument;

use super::{Context, Error, claim, object_key, status};
use crate::api::RepositoryCreationTemplate;

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<RepositoryCreationTemplate>,
    pub templates: Arc<view::Templates>,
}

/// Runs the RepositoryCreationTemplate controller and its sweep until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<RepositoryCreationTemplate>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    let templates = Arc::new(view::Templates::default());
    let (sweep_tx, sweep_rx) = tokio::sync::mpsc::channel::<()>(1);
    let sweeper = sweep_loop(ctx.clone(), reader.clone(), templates.clone(), sweep_tx);
    // Aborted with this future: a detached sweeper would keep calling ECR for a dead controller.
    let _sweeper = super::AbortOnDrop(tokio::spawn(sweeper));
    let sweeps = futures::stream::unfold(sweep_rx, |mut rx| async move {
        rx.recv().await.map(|()| ((), rx))
    });
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        store: reader.clone(),
        templates,
    });
    super::drain(
        Controller::for_stream(stream, reader)
            .with_config(super::controller_config(&ctx))
            .reconcile_all_on(sweeps)
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, shared),
    )
    .await;
    Ok(())
}

/// While objects exist: lists every template once per sweep interval and triggers a reconcile
/// of every object. While none exists: reads nothing, and forgets the view.
async fn sweep_loop(
    ctx: Arc<Context>,
    store: Store<RepositoryCreationTemplate>,
    templates: Arc<view::Templates>,
    trigger: tokio::sync::mpsc::Sender<()>,
) {
    let idle = Duration::from_secs(1).min(ctx.config.sweep_interval);
    let mut failures = 0u32;
    loop {
        if store.is_empty() {
            templates.forget();
            tokio::time::sleep(idle).await;
            continue;
        }
        let started = Instant::now();
        let pass = (ctx.registry.describe_creation_templates(&[]).await)
            .map(|list| templates.apply_sweep(started, list));
        let what = "repository creation template";
        super::pace_sweep(&ctx, what, pass, &mut failures, &trigger).await;
    }
}

#[instrument(skip(template, shared), fields(object = %object_key(template.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(
    template: Arc<RepositoryCreationTemplate>,
    shared: Arc<Shared>,
) -> Result<Action, Error> {
    if !shared.templates.is_synced() {
        // The first sweep has not finished; it triggers a reconcile of everything when it does.
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

/// Another object for the same prefix that came first.
fn older_claimant(
    store: &Store<RepositoryCreationTemplate>,
    template: &RepositoryCreationTemplate,
) -> Option<String> {
    let prefix = plan::prefix_key(&template.spec.prefix);
    claim::older_claimants(store, template, |o| {
        plan::prefix_key(&o.spec.prefix) == prefix
    })
    .iter()
    .map(|o| o.name_any())
    .min()
}
