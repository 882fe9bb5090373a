//! The PullThroughCacheRule controller's I/O: observe (DescribePullThroughCacheRules, the
//! credential Secret and its mirror), apply what `plan.rs` decided, write the status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tracing::info;

use super::plan::{self, RuleWrite, SecretWrite};
use super::upstream::validate;
use super::{Shared, older_claimant};
use crate::api::PullThroughCacheRule;
use crate::api::repository::OWNER_TAG;
use crate::controllers::owner_id;
use crate::controllers::{Context, Error, claim, status};
use crate::registry::{ErrorClass, NewPullThroughCacheRule, PullThroughCacheRuleInfo, Registry};

fn secret_name(rule: &PullThroughCacheRule) -> String {
    plan::secret_name(&rule.name_any())
}

pub(super) async fn apply(rule: &PullThroughCacheRule, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let upstream = validate(&rule.spec, &ctx.config.operator_namespace).map_err(Error::Invalid)?;
    let prefix = &rule.spec.ecr_repository_prefix;
    if let Some(other) = older_claimant(&shared.store, rule) {
        return Err(Error::Conflict(format!(
            "PullThroughCacheRule {other} already manages the rule for prefix {prefix}"
        )));
    }
    // The target's registry, or TargetNotReady before any call.
    let reach = shared.targets.reach(ctx, rule.target()).await?;
    let registry = reach.registry.as_ref();
    let observed = registry.describe_pull_through_cache_rule(prefix).await?;
    let status = plan::adopt(status::current(rule), rule.spec.adopt, observed.as_ref());
    plan::refuse_foreign(prefix, observed.as_ref(), &status, claim::created(rule))?;
    // Credentials next: the rule is created with them.
    let credential_arn = credential_arn(ctx, registry, rule).await?;
    let desired = plan::desired(&rule.spec, credential_arn.clone());
    let plan = plan::plan(&desired, observed.as_ref(), &status, claim::created(rule))?;
    let info = write_rule(registry, plan.write, &desired, observed).await?;
    if plan::mirrored_secret_unused(&rule.spec, &status, &secret_name(rule)) {
        delete_mirrored_secret(ctx, registry, rule).await?;
    }
    let message = plan::ready_message(&desired, &upstream);
    let status = plan::synced_status(status, &info, credential_arn);
    if let Some(a) = &plan.announcement {
        info!(prefix = %prefix, "{}", a.note);
    }
    status::write_ready(ctx, rule, status, message, plan.announcement).await?;
    Ok(Action::requeue(ctx.config.deep_sweep_interval))
}

/// Makes the planned write; returns the rule as it now is.
async fn write_rule(
    registry: &dyn Registry,
    write: RuleWrite,
    desired: &NewPullThroughCacheRule,
    observed: Option<PullThroughCacheRuleInfo>,
) -> Result<PullThroughCacheRuleInfo, Error> {
    match (write, observed) {
        (RuleWrite::Keep, Some(info)) => Ok(info),
        (RuleWrite::UpdateCredentials, Some(info)) => {
            registry
                .update_pull_through_cache_rule(
                    &desired.prefix,
                    desired.credential_arn.as_deref(),
                    desired.custom_role_arn.as_deref(),
                )
                .await?;
            Ok(plan::updated(info, desired, Timestamp::now()))
        }
        (RuleWrite::Replace, Some(_)) => {
            registry
                .delete_pull_through_cache_rule(&desired.prefix)
                .await?;
            create(registry, desired).await
        }
        // The plan creates exactly when no rule was observed.
        (RuleWrite::Create, _) | (_, None) => create(registry, desired).await,
    }
}

async fn create(
    registry: &dyn Registry,
    desired: &NewPullThroughCacheRule,
) -> Result<PullThroughCacheRuleInfo, Error> {
    match registry.create_pull_through_cache_rule(desired).await {
        Ok(info) => Ok(info),
        Err(e) if e.class == ErrorClass::AlreadyExists => {
            // Created by someone else since our describe.
            Err(Error::Conflict(format!(
                "a pull-through cache rule for prefix {} already exists and was not created by this object; it is left untouched",
                desired.prefix
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The credential ARN the rule is to use: the spec's, or that of the Secret's mirror.
async fn credential_arn(
    ctx: &Context,
    registry: &dyn Registry,
    rule: &PullThroughCacheRule,
) -> Result<Option<String>, Error> {
    Ok(
        match (&rule.spec.credential_arn, &rule.spec.credentials_secret_ref) {
            (Some(arn), _) => Some(arn.clone()),
            (None, Some(secret)) => Some(mirror_secret(ctx, registry, rule, &secret.name).await?),
            (None, None) => None,
        },
    )
}

/// The Secret's credentials as the JSON ECR expects. Never logged.
async fn read_k8s_secret(ctx: &Context, name: &str) -> Result<String, Error> {
    let ns = &ctx.config.operator_namespace;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = api.get_opt(name).await? else {
        return Err(Error::SecretNotFound(format!(
            "Secret {ns}/{name} not found; create it with keys username and accessToken"
        )));
    };
    plan::credentials_json(&secret).map_err(|missing| {
        Error::SecretNotFound(format!(
            "Secret {ns}/{name} lacks {missing}; it needs keys username and accessToken"
        ))
    })
}

/// Mirrors the Secret into the rule's registry's Secrets Manager (a rule takes a secret of its
/// own account and region) and returns the secret's ARN.
async fn mirror_secret(
    ctx: &Context,
    registry: &dyn Registry,
    rule: &PullThroughCacheRule,
    k8s_name: &str,
) -> Result<String, Error> {
    let value = read_k8s_secret(ctx, k8s_name).await?;
    let name = secret_name(rule);
    let owner = owner_id(ctx, rule);
    let status = status::current(rule);
    let current = registry.get_secret(&name).await?;
    let owner_tag = match &current {
        Some(c) if plan::secret_owner_unproven(&status, &c.arn) => {
            registry.secret_tags(&c.arn).await?.remove(OWNER_TAG)
        }
        _ => None,
    };
    let write = plan::plan_secret(
        &name,
        current.as_ref(),
        &status,
        owner_tag.as_deref(),
        &owner,
        &value,
    )?;
    let (arn, event) = match write {
        SecretWrite::Keep(arn) => return Ok(arn),
        SecretWrite::Create => {
            let tags = BTreeMap::from([(OWNER_TAG.to_string(), owner)]);
            let arn = registry.create_secret(&name, &value, &tags).await?;
            let note = format!("Mirrored Secret {k8s_name} into Secrets Manager as {name}");
            (arn, ("SecretMirrored", note))
        }
        SecretWrite::Put(arn) => {
            registry.put_secret_value(&arn, &value).await?;
            let note = format!("Updated Secrets Manager secret {name} from Secret {k8s_name}");
            (arn, ("SecretUpdated", note))
        }
    };
    ctx.event(rule, EventType::Normal, event.0, "Update", event.1)
        .await;
    Ok(arn)
}

/// Deletes the mirrored secret when it exists and carries our owner tag.
async fn delete_mirrored_secret(
    ctx: &Context,
    registry: &dyn Registry,
    rule: &PullThroughCacheRule,
) -> Result<(), Error> {
    let name = secret_name(rule);
    if let Some(current) = registry.get_secret(&name).await? {
        let tags = registry.secret_tags(&current.arn).await?;
        if tags.get(OWNER_TAG) == Some(&owner_id(ctx, rule)) {
            registry.delete_secret(&current.arn).await?;
            info!(secret = %name, "deleted mirrored secret");
        }
    }
    Ok(())
}

pub(super) async fn cleanup(rule: &PullThroughCacheRule, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let status = status::current(rule);
    let prefix = &rule.spec.ecr_repository_prefix;
    let reads = plan::removal_reads(&status);
    let mirrored = rule.spec.credentials_secret_ref.is_some();
    if !reads && !mirrored {
        return Ok(Action::await_change());
    }
    // Kept (with its finalizer) until the target is back: nothing is left behind in it.
    let reach = shared.targets.reach(ctx, rule.target()).await?;
    let registry = reach.registry.as_ref();
    let observed = if reads {
        registry.describe_pull_through_cache_rule(prefix).await?
    } else {
        None
    };
    let removal = plan::plan_removal(&status, observed.as_ref());
    if removal == plan::Removal::Delete {
        registry.delete_pull_through_cache_rule(prefix).await?;
    }
    if let Some(a) = removal.announcement(prefix) {
        a.publish(ctx, rule).await;
    }
    if mirrored {
        delete_mirrored_secret(ctx, registry, rule).await?;
    }
    Ok(Action::await_change())
}
