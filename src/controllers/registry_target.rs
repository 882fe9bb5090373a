//! The RegistryTarget controller: reaches each target's registry through its pooled client
//! (assuming its role) with one cheap read, DescribeRegistry, and reports what it found.
//!
//! observe (one DescribeRegistry) → plan ([`plan`], pure) → status: Ready with the account id,
//! or Ready=False with AssumeRoleFailed, AccessDenied, Unreachable or Invalid (credentials of
//! another account). A target that cannot be reached fails alone: each target is its own
//! reconcile with its own backoff, and no other target waits on it. Objects that name a target
//! read its Ready condition before any call (see [`super::targets`]).

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use tracing::instrument;

use super::{Context, Error, object_key, status};
use crate::api::conditions::Reason;
use crate::api::registry_target::{RegistryTarget, RegistryTargetSpec};
use crate::registry::{ErrorClass, RegistryError, TargetError};

/// Runs the controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<RegistryTarget>(&ctx).await?;
    let (reader, stream) = super::watched::<RegistryTarget>(&ctx);
    super::drain(
        Controller::for_stream(stream, reader)
            .with_config(super::controller_config(&ctx))
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, ctx),
    )
    .await;
    Ok(())
}

/// What one DescribeRegistry through the target's client came to.
#[derive(Debug)]
pub enum Probe {
    /// ECR answered for this account.
    Reached { account: String },
    /// The call failed (credentials included: an assumed role's failure is a call's failure).
    Failed(RegistryError),
    /// The operator has no AWS configuration for targets.
    Unconfigured(String),
}

/// The status a probe calls for.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    /// The account ECR answered for, when it answered.
    pub account_id: Option<String>,
}

/// From what a probe found to the target's Ready condition: pure, so that the vocabulary is
/// tested by table.
pub fn plan(name: &str, spec: &RegistryTargetSpec, probe: &Probe) -> Verdict {
    let registry = format!("registry {} in {}", spec.registry_id, spec.region);
    let how = match &spec.assume_role {
        Some(role) => format!("as role {}", role.role_arn),
        None => "with the operator's own credentials".to_string(),
    };
    let failed = |reason, message: String| Verdict {
        ready: false,
        reason,
        message,
        account_id: None,
    };
    match probe {
        Probe::Reached { account } if *account == spec.registry_id => Verdict {
            ready: true,
            reason: Reason::Synced,
            message: format!("reached {registry} {how}"),
            account_id: Some(account.clone()),
        },
        Probe::Reached { account } => Verdict {
            account_id: Some(account.clone()),
            ..failed(
                Reason::Invalid,
                format!(
                    "RegistryTarget {name}: ECR answered {how} for account {account}, not \
                     registryId {}: the credentials are of another account",
                    spec.registry_id
                ),
            )
        },
        Probe::Failed(e) => {
            let reason = match e.class {
                ErrorClass::Credentials => Reason::AssumeRoleFailed,
                ErrorClass::AccessDenied => Reason::AccessDenied,
                ErrorClass::Throttled => Reason::Throttled,
                _ => Reason::Unreachable,
            };
            failed(reason, format!("cannot reach {registry} {how}: {e}"))
        }
        Probe::Unconfigured(message) => failed(Reason::Unreachable, message.clone()),
    }
}

/// How often a Ready target is probed again: a revoked role or a closed endpoint shows within
/// this time (objects that call it meanwhile report their own failures).
fn recheck(ctx: &Context) -> Duration {
    ctx.config.sweep_interval * 5
}

#[instrument(skip(target, ctx), fields(object = %object_key(target.as_ref()), trace_id = %crate::telemetry::trace::new_trace_id()))]
async fn reconcile(target: Arc<RegistryTarget>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = probe_and_report(&target, &ctx).await;
    ctx.observe("registrytarget", &result, started);
    result
}

async fn probe_and_report(target: &RegistryTarget, ctx: &Context) -> Result<Action, Error> {
    let name = target.name_any();
    let probe = match ctx.targets.client(&name, &target.spec).await {
        Ok(client) => match client.registry.registry_id().await {
            Ok(account) => Probe::Reached { account },
            Err(e) => Probe::Failed(e),
        },
        Err(e @ TargetError::Unconfigured) => Probe::Unconfigured(e.to_string()),
    };
    let verdict = plan(&name, &target.spec, &probe);
    let mut status = status::current(target);
    if verdict.account_id.is_some() {
        status.account_id = verdict.account_id.clone();
    }
    let previous = status::ready_reason(target);
    status::set_ready(
        &mut status,
        target,
        verdict.ready,
        verdict.reason,
        verdict.message.clone(),
    );
    status::write(ctx, target, &status).await?;
    let key = object_key(target);
    if verdict.ready {
        ctx.reset_backoff(&key);
        return Ok(Action::requeue(recheck(ctx)));
    }
    if previous.as_deref() != Some(verdict.reason.as_str()) {
        let kind = kube::runtime::events::EventType::Warning;
        let reason = verdict.reason.as_str();
        ctx.event(target, kind, reason, "Reconcile", verdict.message)
            .await;
    }
    Ok(Action::requeue(ctx.backoff(&key).min(recheck(ctx))))
}

fn error_policy(target: Arc<RegistryTarget>, err: &Error, ctx: Arc<Context>) -> Action {
    status::error_policy(&ctx, target.as_ref(), err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry_target::AssumeRole;

    fn spec(role: bool) -> RegistryTargetSpec {
        RegistryTargetSpec {
            registry_id: "222222222222".into(),
            region: "eu-west-1".into(),
            assume_role: role.then(|| AssumeRole {
                role_arn: "arn:aws:iam::222222222222:role/ecr".into(),
                external_id: None,
                session_name: None,
            }),
            endpoint_url: None,
        }
    }

    fn failed(class: ErrorClass) -> Probe {
        Probe::Failed(RegistryError::new(class, "DescribeRegistry", "boom"))
    }

    /// (what, role, probe, ready, reason, piece of the message, account recorded).
    type Case = (
        &'static str,
        bool,
        Probe,
        bool,
        Reason,
        &'static str,
        Option<&'static str>,
    );

    #[test]
    fn verdicts() {
        let reached = |a: &str| Probe::Reached { account: a.into() };
        let cases: Vec<Case> = vec![
            (
                "own identity",
                false,
                reached("222222222222"),
                true,
                Reason::Synced,
                "with the operator's own credentials",
                Some("222222222222"),
            ),
            (
                "assumed role",
                true,
                reached("222222222222"),
                true,
                Reason::Synced,
                "as role arn:aws:iam::222222222222:role/ecr",
                Some("222222222222"),
            ),
            (
                "another account",
                false,
                reached("123456789012"),
                false,
                Reason::Invalid,
                "for account 123456789012, not registryId 222222222222",
                Some("123456789012"),
            ),
            (
                "role refused",
                true,
                failed(ErrorClass::Credentials),
                false,
                Reason::AssumeRoleFailed,
                "cannot reach registry 222222222222 in eu-west-1 as role",
                None,
            ),
            (
                "ECR denies the role",
                true,
                failed(ErrorClass::AccessDenied),
                false,
                Reason::AccessDenied,
                "boom",
                None,
            ),
            (
                "no answer",
                false,
                failed(ErrorClass::Transient),
                false,
                Reason::Unreachable,
                "cannot reach",
                None,
            ),
            (
                "throttled",
                false,
                failed(ErrorClass::Throttled),
                false,
                Reason::Throttled,
                "cannot reach",
                None,
            ),
            (
                "no AWS configuration",
                false,
                Probe::Unconfigured("no configuration".into()),
                false,
                Reason::Unreachable,
                "no configuration",
                None,
            ),
        ];
        for (what, role, probe, ready, reason, piece, account) in cases {
            let v = plan("t", &spec(role), &probe);
            assert_eq!((v.ready, v.reason), (ready, reason), "{what}");
            assert!(v.message.contains(piece), "{what}: {}", v.message);
            assert_eq!(v.account_id.as_deref(), account, "{what}");
        }
    }
}
