//! The RegistrySettings controller's I/O: read what `plan::reads` names, apply what
//! `plan::plan` decided, write the status.

use kube::runtime::controller::Action;
use tracing::info;

use super::plan::{self, Observed, Plan, Reads, SigningWrite};
use super::{Shared, older_claimant};
use crate::api::RegistrySettings;
use crate::controllers::{Error, status};
use crate::registry::Registry;

pub(super) async fn apply(settings: &RegistrySettings, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    plan::refuse_younger(older_claimant(&shared.store, settings))?;
    let reach = shared.targets.reach(ctx, settings.target()).await?;
    let registry = reach.registry.as_ref();
    let status = status::current(settings);
    let spec = &settings.spec;
    let observed = observe(registry, &plan::reads(spec, &status)).await?;
    let plan = plan::plan(spec, &status, &observed)?;
    write(registry, &plan).await?;
    let spec_changed = status.common.observed_generation != settings.metadata.generation;
    let announcement = plan::announcement(&plan, spec_changed);
    if let Some(a) = &announcement {
        info!("{}", a.note);
    }
    let status = plan::synced_status(status, spec, &observed, &plan);
    status::write_ready(
        ctx,
        settings,
        status,
        plan::ready_message(spec),
        announcement,
    )
    .await?;
    Ok(Action::requeue(ctx.config.sweep_interval))
}

async fn observe(registry: &dyn Registry, reads: &Reads) -> Result<Observed, Error> {
    let mut observed = Observed::default();
    for name in &reads.account_settings {
        let value = registry.get_account_setting(name).await?;
        observed.account_settings.insert(name.to_string(), value);
    }
    if reads.signing {
        observed.signing = Some(registry.get_signing_configuration().await?);
    }
    if reads.exclusions {
        observed.exclusions = Some(registry.list_pull_time_update_exclusions().await?);
    }
    Ok(observed)
}

async fn write(registry: &dyn Registry, plan: &Plan) -> Result<(), Error> {
    for (name, value) in &plan.account_settings {
        registry.put_account_setting(name, value).await?;
    }
    match &plan.signing {
        SigningWrite::Keep => {}
        SigningWrite::Put(rules) => registry.put_signing_configuration(rules).await?,
        SigningWrite::Delete => registry.delete_signing_configuration().await?,
    }
    for principal in &plan.register {
        registry
            .register_pull_time_update_exclusion(principal)
            .await?;
    }
    for principal in &plan.deregister {
        registry
            .deregister_pull_time_update_exclusion(principal)
            .await?;
    }
    Ok(())
}

pub(super) async fn cleanup(settings: &RegistrySettings, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let policy = settings.spec.deletion_policy;
    // A younger object never wrote anything: the older one's settings stay.
    if older_claimant(&shared.store, settings).is_some() {
        return Ok(Action::await_change());
    }
    let removal = plan::plan_removal(policy, &status::current(settings));
    if removal.delete_signing || !removal.deregister.is_empty() {
        // Kept (with its finalizer) until the target is back: nothing is left behind.
        let reach = shared.targets.reach(ctx, settings.target()).await?;
        write_removal(reach.registry.as_ref(), &removal).await?;
    }
    removal.announcement(policy).publish(ctx, settings).await;
    Ok(Action::await_change())
}

async fn write_removal(registry: &dyn Registry, removal: &plan::Removal) -> Result<(), Error> {
    if removal.delete_signing {
        registry.delete_signing_configuration().await?;
    }
    for principal in &removal.deregister {
        registry
            .deregister_pull_time_update_exclusion(principal)
            .await?;
    }
    Ok(())
}
