//! The PublicRepository controller's I/O: observe (the repository by name, its tags, and the
//! catalog data and policy where the spec or the status calls for them; the logo from its
//! ConfigMap or Secret) → the pure decisions of `plan.rs` → apply only the difference → status
//! and one event. Every write to an existing repository and every delete follows a read of its
//! owner tag in the same reconcile. Every call goes to the ECR Public of the object's account:
//! the operator's own, or its RegistryTarget's ([`Reach`]).

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::info;

use super::plan::{self, Claim, Desired, Logo, Observed, Plan};
use super::{Shared, older_claimant};
use crate::api::PublicRepository;
use crate::api::conditions::Reason;
use crate::api::public_repository::{KeyRef, PublicRepositoryStatus};
use crate::api::repository::{OWNER_TAG, Ownership};
use crate::controllers::repository::plan::{PolicyAction, Removal, plan_removal};
use crate::controllers::targets::Reach;
use crate::controllers::{Context, Error, owner_id, status};
use crate::registry::{
    ErrorClass, NewPublicRepository, PublicCatalogInfo, PublicRegistry, PublicRepositoryInfo,
    RegistryError,
};
use crate::tenancy::Access;

/// The repository this reconcile ends with and how it came to it.
struct Outcome {
    info: PublicRepositoryInfo,
    ownership: Ownership,
    created: bool,
    adopted: bool,
    changes: Vec<&'static str>,
    logo_url: Option<String>,
}

/// The ECR Public client of the object's account, or Invalid when its registry has none.
fn public_of(reach: &Reach) -> Result<&dyn PublicRegistry, Error> {
    reach.registry.ecr_public().ok_or_else(|| {
        let whose = match &reach.target {
            Some(target) => format!("RegistryTarget {target}'s registry has"),
            None => "the operator has".to_string(),
        };
        Error::Invalid(format!("{whose} no Amazon ECR Public client configured"))
    })
}

pub(super) async fn apply(repo: &PublicRepository, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let name = &repo.spec.repository_name;
    let access = granted(repo, shared)?;
    if let Some(other) = older_claimant(&shared.store, repo) {
        return Err(Error::Conflict(format!(
            "PublicRepository {other} already manages ECR Public repository {name}{}",
            in_target(repo)
        )));
    }
    // A missing or unready target: TargetNotReady before any call, in any account.
    let reach = shared.targets.reach(ctx, repo.target()).await?;
    let public = public_of(&reach)?;
    let logo = read_logo(ctx, repo).await?;
    let desired = Desired::from_spec(repo, &owner_id(ctx, repo), logo);
    if let Some(policy) = &desired.policy {
        crate::repository_policy::check_size(&policy.to_string())
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    let status = status::current(repo);
    let outcome = match public.describe_public_repository(name).await? {
        None => create(public, repo, &desired, &status, &access).await?,
        Some(info) => converge(public, repo, &desired, &status, &access, info).await?,
    };
    report(ctx, repo, status, &desired, outcome).await?;
    Ok(Action::requeue(ctx.config.sweep_interval))
}

/// ` in RegistryTarget <name>` for an object in a target, nothing for the own account.
fn in_target(repo: &PublicRepository) -> String {
    repo.target()
        .map(|t| format!(" in RegistryTarget {t}"))
        .unwrap_or_default()
}

/// The namespace's access to the repository's name in the object's target; Forbidden before
/// any call.
fn granted(repo: &PublicRepository, shared: &Shared) -> Result<Access, Error> {
    let namespace = repo.namespace().unwrap_or_default();
    let name = &repo.spec.repository_name;
    let access = shared.grants.access_on(&namespace, repo.target(), name);
    match access {
        Access::Forbidden(message) => Err(Error::Forbidden(message)),
        granted => Ok(granted),
    }
}

/// The logo's bytes from the ConfigMap or Secret key the spec names (in the object's
/// namespace); a missing object or key is reported and nothing is written.
async fn read_logo(ctx: &Context, repo: &PublicRepository) -> Result<Option<Logo>, Error> {
    let Some(source) = (repo.spec.catalog_data.as_ref()).and_then(|c| c.logo_image.as_ref()) else {
        return Ok(None);
    };
    let namespace = repo.namespace().unwrap_or_default();
    let client = ctx.client.clone();
    let (what, found) = match (&source.config_map_key_ref, &source.secret_key_ref) {
        (Some(r), _) => {
            let api = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client, &namespace);
            let bytes = api.get_opt(&r.name).await?.map(|cm| {
                let binary = cm
                    .binary_data
                    .and_then(|d| d.get(&r.key).map(|b| b.0.clone()));
                binary.or_else(|| {
                    cm.data
                        .and_then(|d| d.get(&r.key).map(|s| s.clone().into_bytes()))
                })
            });
            (("ConfigMap", r), bytes)
        }
        (None, Some(r)) => {
            let api = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client, &namespace);
            let bytes = api
                .get_opt(&r.name)
                .await?
                .map(|s| s.data.and_then(|d| d.get(&r.key).map(|b| b.0.clone())));
            (("Secret", r), bytes)
        }
        (None, None) => return Ok(None),
    };
    let ((kind, KeyRef { name, key }), found) = (what, found);
    let source = format!("{kind} {namespace}/{name} key {key}");
    match found {
        Some(Some(bytes)) => Logo::new(bytes, &source).map(Some),
        Some(None) => Err(Error::SecretNotFound(format!(
            "{kind} {namespace}/{name} has no key {key} (spec.catalogData.logoImage); nothing is written until it has"
        ))),
        None => Err(Error::SecretNotFound(format!(
            "{kind} {namespace}/{name} (spec.catalogData.logoImage) does not exist; nothing is written until it does"
        ))),
    }
}

/// Creates the repository with its catalog data, logo and tags in one call, then its policy.
/// When it exists already (a race, a crash before the status write, someone else), claims it.
async fn create(
    public: &dyn PublicRegistry,
    repo: &PublicRepository,
    desired: &Desired,
    status: &PublicRepositoryStatus,
    access: &Access,
) -> Result<Outcome, Error> {
    let input = NewPublicRepository {
        name: desired.name.clone(),
        catalog: desired.catalog.clone(),
        logo: desired.logo.as_ref().map(|l| l.bytes.clone()),
        tags: desired.tags.clone(),
    };
    let (info, catalog) = match public.create_public_repository(&input).await {
        Ok(created) => created,
        Err(e) if e.class == ErrorClass::AlreadyExists => {
            let Some(info) = public.describe_public_repository(&desired.name).await? else {
                return Err(Error::Registry(RegistryError::new(
                    ErrorClass::Transient,
                    "ecr-public:DescribeRepositories",
                    "repository exists but is not visible yet",
                )));
            };
            return converge(public, repo, desired, status, access, info).await;
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(policy) = &desired.policy {
        public
            .set_public_policy(&desired.name, &policy.to_string())
            .await?;
    }
    Ok(Outcome {
        info,
        ownership: Ownership::Created,
        created: true,
        adopted: false,
        changes: Vec::new(),
        logo_url: catalog.logo_url,
    })
}

/// Brings an existing repository to the spec once its owner tag, read now, allows it.
async fn converge(
    public: &dyn PublicRegistry,
    repo: &PublicRepository,
    desired: &Desired,
    status: &PublicRepositoryStatus,
    access: &Access,
    info: PublicRepositoryInfo,
) -> Result<Outcome, Error> {
    let tags = match public.list_public_tags(&info.arn).await {
        Ok(tags) => tags,
        Err(e) if e.class == ErrorClass::NotFound => {
            return Err(Error::Registry(RegistryError::new(
                ErrorClass::Transient,
                "ecr-public:ListTagsForResource",
                format!("ECR Public repository {} was deleted meanwhile", info.name),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let found = tags.get(OWNER_TAG).map(String::as_str);
    let owner = desired
        .tags
        .get(OWNER_TAG)
        .map(String::as_str)
        .unwrap_or_default();
    let (taken_back, adopted) = match plan::decide_claim(&info, found, owner, repo, status, access)
    {
        Claim::Owned { taken_back } => (taken_back, false),
        Claim::Adopt => (false, true),
        Claim::Refuse(e) => return Err(e),
    };
    let observed = observe(public, desired, status, &info, tags, taken_back).await?;
    let plan = plan::plan(desired, &observed, status, taken_back);
    let written = write(public, desired, &info, &plan).await?;
    let logo_url = match written {
        Some(catalog) => catalog.logo_url,
        None => observed.catalog.and_then(|c| c.logo_url),
    };
    let ownership = if adopted {
        Ownership::Adopted
    } else {
        status.ownership.unwrap_or(Ownership::Created)
    };
    Ok(Outcome {
        info,
        ownership,
        created: false,
        adopted,
        changes: plan.changes(),
        logo_url,
    })
}

/// Reads the catalog data and the policy where the plan needs them.
async fn observe(
    public: &dyn PublicRegistry,
    desired: &Desired,
    status: &PublicRepositoryStatus,
    info: &PublicRepositoryInfo,
    tags: std::collections::BTreeMap<String, String>,
    taken_back: bool,
) -> Result<Observed, Error> {
    let catalog = if plan::catalog_read_needed(desired, status) {
        Some(public.get_public_catalog(&info.name).await?)
    } else {
        None
    };
    let policy = if plan::policy_read(desired, status, taken_back) {
        Some(public.get_public_policy(&info.name).await?)
    } else {
        None
    };
    Ok(Observed {
        tags,
        catalog,
        policy,
    })
}

/// Applies the plan; returns the catalog data ECR Public answered a catalog write with.
async fn write(
    public: &dyn PublicRegistry,
    desired: &Desired,
    info: &PublicRepositoryInfo,
    plan: &Plan,
) -> Result<Option<PublicCatalogInfo>, Error> {
    if !plan.tags_set.is_empty() {
        public
            .tag_public_repository(&info.arn, &plan.tags_set)
            .await?;
    }
    if !plan.tags_remove.is_empty() {
        public
            .untag_public_repository(&info.arn, &plan.tags_remove)
            .await?;
    }
    let mut written = None;
    if plan.catalog.is_some() {
        let catalog = desired.catalog.clone().unwrap_or_default();
        let logo = desired.logo.as_ref().map(|l| l.bytes.as_slice());
        written = Some(
            public
                .put_public_catalog(&info.name, &catalog, logo)
                .await?,
        );
    }
    match &plan.policy {
        Some(PolicyAction::Put(text)) => public.set_public_policy(&info.name, text).await?,
        Some(PolicyAction::Delete) => public.delete_public_policy(&info.name).await?,
        Some(PolicyAction::Keep) | None => {}
    }
    Ok(written)
}

/// Writes Ready with what the reconcile found and changed, and the one event it calls for.
async fn report(
    ctx: &Context,
    repo: &PublicRepository,
    status: PublicRepositoryStatus,
    desired: &Desired,
    outcome: Outcome,
) -> Result<(), Error> {
    let spec_changed = status.common.observed_generation != repo.metadata.generation;
    let info = &outcome.info;
    if !outcome.changes.is_empty() {
        info!(repository = %info.name, changes = ?outcome.changes, "applied changes");
    }
    let announcement = plan::announce(
        &info.name,
        outcome.created,
        outcome.adopted,
        &outcome.changes,
        spec_changed,
    );
    let status = plan::synced_status(
        status,
        repo,
        desired,
        info,
        outcome.ownership,
        outcome.logo_url,
    );
    let message = format!("ECR Public repository {} is in sync", info.uri);
    status::write_ready(ctx, repo, status, message, announcement).await
}

/// A deleted PublicRepository: the repository stays (Retain, not granted, not owned) or is
/// deleted with its images.
pub(super) async fn cleanup(repo: &PublicRepository, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let name = &repo.spec.repository_name;
    let namespace = repo.namespace().unwrap_or_default();
    let access = shared.grants.access_on(&namespace, repo.target(), name);
    let leave = |reason: &'static str, kind: EventType, note: String| async move {
        ctx.event(repo, kind, reason, "Delete", note).await;
        Ok(Action::await_change())
    };
    match plan_removal(repo.spec.deletion_policy, &access) {
        Removal::Retain => {
            let note =
                format!("Left ECR Public repository {name} in place (deletionPolicy: Retain)");
            return leave("Retained", EventType::Normal, note).await;
        }
        Removal::Forbidden(message) => {
            let note = format!("Left ECR Public repository {name} in place: {message}");
            return leave(Reason::Forbidden.as_str(), EventType::Warning, note).await;
        }
        Removal::DeleteIfOwned => {}
    }
    // A missing or unready target keeps the object (and its finalizer) with TargetNotReady.
    let reach = shared.targets.reach(ctx, repo.target()).await?;
    let public = public_of(&reach)?;
    let Some(info) = public.describe_public_repository(name).await? else {
        return Ok(Action::await_change());
    };
    // Only the owner tag, read now, proves the repository is this object's: never the status.
    let tags = public.list_public_tags(&info.arn).await?;
    if tags.get(OWNER_TAG).map(String::as_str) != Some(owner_id(ctx, repo).as_str()) {
        let note =
            format!("Left ECR Public repository {name} in place: this object does not own it");
        return leave("NotOwned", EventType::Normal, note).await;
    }
    public.delete_public_repository(name).await?;
    let note = format!("Deleted ECR Public repository {name}");
    leave("Deleted", EventType::Normal, note).await
}
