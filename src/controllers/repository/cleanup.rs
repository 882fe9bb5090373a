//! A deleted Repository: its ECR repository stays (Retain, not granted, not owned) or is
//! deleted, in the registry of the object's target. Only the owner tag, read now, proves the
//! repository is this object's.

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::Shared;
use super::plan::{self, Removal, plan_removal};
use crate::api::repository::{OWNER_TAG, Repository};
use crate::controllers::{Error, owner_id};
use crate::registry::ErrorClass;

/// A deleted Repository: the repository stays (Retain, not granted, not owned) or is deleted.
pub(super) async fn cleanup(repo: &Repository, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let name = repo.ecr_name();
    shared.memory.forget(&repo.uid().unwrap_or_default());
    let namespace = repo.namespace().unwrap_or_default();
    let access = shared.grants.access_on(&namespace, repo.target(), &name);
    let leave = |reason: &'static str, kind: EventType, note: String| async move {
        ctx.event(repo, kind, reason, "Delete", note).await;
        Ok(Action::await_change())
    };
    match plan_removal(repo.spec.deletion_policy, &access) {
        Removal::Retain => {
            let note = format!("Left ECR repository {name} in place (deletionPolicy: Retain)");
            return leave("Retained", EventType::Normal, note).await;
        }
        Removal::Forbidden(message) => {
            let note = format!("Left ECR repository {name} in place: {message}");
            return leave("Forbidden", EventType::Warning, note).await;
        }
        Removal::DeleteIfOwned => {}
    }
    // A missing or unready target keeps the object (and its finalizer) with TargetNotReady.
    let reach = shared.targets.reach(ctx, repo.target()).await?;
    let Some(info) = reach.registry.describe_repository(&name).await? else {
        reach.inventory.record(&name, None);
        return Ok(Action::await_change());
    };
    // Only the owner tag, read now, proves the repository is this object's: never the status.
    let tags = reach.registry.list_tags(&info.arn).await?;
    if tags.get(OWNER_TAG).map(String::as_str) != Some(owner_id(ctx, repo).as_str()) {
        let note = format!("Left ECR repository {name} in place: this object does not own it");
        return leave("NotOwned", EventType::Normal, note).await;
    }
    match reach
        .registry
        .delete_repository(&name, repo.spec.force_delete)
        .await
    {
        Ok(()) => {}
        Err(e) if e.class == ErrorClass::NotFound => {}
        Err(e) if e.class == ErrorClass::NotEmpty => {
            return Err(Error::NotEmpty(plan::not_empty_message(
                &name,
                repo.spec.force_delete,
            )));
        }
        Err(e) => return Err(e.into()),
    }
    reach.inventory.record(&name, None);
    let note = format!("Deleted ECR repository {name}");
    leave("Deleted", EventType::Normal, note).await
}
