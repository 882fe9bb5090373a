//! The RepositoryCreationTemplate controller's I/O: observe (the shared view of the templates),
//! apply what `plan.rs` decided, write the status.

use kube::runtime::controller::Action;
use tracing::info;

use super::plan::{self, Removal, Write};
use super::view::Templates;
use super::{Shared, older_claimant};
use crate::api::RepositoryCreationTemplate;
use crate::controllers::{Context, Error, claim, status};
use crate::registry::{CreationTemplate, CreationTemplateInfo, ErrorClass, Registry};

pub(super) async fn apply(
    template: &RepositoryCreationTemplate,
    shared: &Shared,
) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let prefix = &template.spec.prefix;
    plan::refuse_younger(prefix, older_claimant(&shared.store, template))?;
    let desired = plan::desired(&template.spec).map_err(Error::Invalid)?;
    // The target's registry, or TargetNotReady before any call.
    let reach = shared.targets.reach(ctx, template.target()).await?;
    let registry = reach.registry.as_ref();
    let view = shared.views.of(template.target());
    let observed = view.lookup(prefix);
    let status = plan::adopt(
        status::current(template),
        template.spec.adopt,
        observed.as_ref(),
    );
    let spec_changed = status.common.observed_generation != template.metadata.generation;
    let plan = plan::plan(
        &desired,
        observed.as_ref(),
        &status,
        claim::created(template),
        spec_changed,
    )?;
    let info = match (plan.write, observed) {
        (Write::Keep, Some(info)) => info,
        (Write::Update, Some(_)) => {
            let info = registry.update_creation_template(&desired).await?;
            view.record(prefix, Some(info.clone()));
            info
        }
        // The plan creates exactly when no template was observed.
        (Write::Create, _) | (_, None) => create(registry, &view, &desired).await?,
    };
    if let Some(a) = &plan.announcement {
        info!(prefix = %prefix, "{}", a.note);
    }
    let status = plan::synced_status(status, &info);
    status::write_ready(
        ctx,
        template,
        status,
        plan::ready_message(&desired),
        plan.announcement,
    )
    .await?;
    // The sweep reconciles every object again; nothing else is due.
    Ok(Action::await_change())
}

async fn create(
    registry: &dyn Registry,
    view: &Templates,
    desired: &CreationTemplate,
) -> Result<CreationTemplateInfo, Error> {
    match registry.create_creation_template(desired).await {
        Ok(info) => {
            view.record(&desired.prefix, Some(info.clone()));
            Ok(info)
        }
        // Created by someone else since the last sweep, which will show it.
        Err(e) if e.class == ErrorClass::AlreadyExists => {
            Err(plan::foreign_template(&desired.prefix))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn cleanup(
    template: &RepositoryCreationTemplate,
    shared: &Shared,
) -> Result<Action, Error> {
    let ctx: &Context = &shared.ctx;
    let status = status::current(template);
    let prefix = &template.spec.prefix;
    let policy = template.spec.deletion_policy;
    let reads = plan::removal_reads(policy, &status);
    // Kept (with its finalizer) until the target is back: nothing is left behind in it.
    let reach = match reads {
        true => Some(shared.targets.reach(ctx, template.target()).await?),
        false => None,
    };
    // Read afresh: a deletion is rare, and must not act on a sweep's older picture.
    let observed = match &reach {
        Some(reach) => reach
            .registry
            .describe_creation_templates(std::slice::from_ref(prefix))
            .await?
            .into_iter()
            .find(|t| plan::prefix_key(&t.template.prefix) == plan::prefix_key(prefix)),
        None => None,
    };
    let removal = plan::plan_removal(policy, &status, observed.as_ref());
    if let (Removal::Delete, Some(reach)) = (removal, &reach) {
        reach.registry.delete_creation_template(prefix).await?;
        shared.views.of(template.target()).record(prefix, None);
    }
    if let Some(a) = removal.announcement(prefix) {
        a.publish(ctx, template).await;
    }
    Ok(Action::await_change())
}
