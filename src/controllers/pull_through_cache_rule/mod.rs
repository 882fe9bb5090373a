//! The PullThroughCacheRule controller.
//!
//! validate (pure: the upstream URL is one ECR supports, and the credentials it needs are there)
//! → credentials (a Kubernetes Secret mirrored into Secrets Manager as
//! `ecr-pullthroughcache/<name>`, created, updated and deleted only when tagged as ours) →
//! observe (DescribePullThroughCacheRules for the prefix) → create / update credentials /
//! replace when the upstream changed → status.
//!
//! ECR rules carry no tags, so ownership is recorded in the status (the rule's creation time):
//! a rule that existed before this object is reported as Conflict and never touched.
//!
//! Calls per reconcile: one DescribePullThroughCacheRules; with credentialsSecretRef one
//! GetSecretValue (plus a DescribeSecret the first time, to check the owner tag); writes
//! (Create/Update/DeletePullThroughCacheRule, CreateSecret/PutSecretValue) only on a change.
//! Secret values are never logged nor put in events or conditions.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use tracing::{info, instrument};

use super::status::{self, age_key};
use super::{Context, Error, object_key};
use crate::api::PullThroughCacheRule;
use crate::api::pull_through_cache_rule::{PullThroughCacheRuleSpec, PullThroughCacheRuleStatus};
use crate::api::repository::OWNER_TAG;
use crate::registry::{ErrorClass, NewPullThroughCacheRule, PullThroughCacheRuleInfo};

/// The Secrets Manager name prefix ECR requires for pull-through cache credentials.
pub const SECRET_PREFIX: &str = "ecr-pullthroughcache/";

/// The upstream registries ECR supports, recognised from `upstreamRegistryUrl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    DockerHub,
    GitHub,
    GitLab,
    Azure,
    Chainguard,
    Quay,
    EcrPublic,
    Kubernetes,
    /// Another ECR registry: (account, region).
    Ecr(String, String),
}

impl Upstream {
    /// Upstreams ECR only accepts with a Secrets Manager credential.
    pub fn needs_credentials(&self) -> bool {
        matches!(
            self,
            Upstream::DockerHub
                | Upstream::GitHub
                | Upstream::GitLab
                | Upstream::Azure
                | Upstream::Chainguard
        )
    }

    pub fn display(&self) -> &'static str {
        match self {
            Upstream::DockerHub => "Docker Hub",
            Upstream::GitHub => "GitHub Container Registry",
            Upstream::GitLab => "GitLab Container Registry",
            Upstream::Azure => "Azure Container Registry",
            Upstream::Chainguard => "Chainguard",
            Upstream::Quay => "Quay",
            Upstream::EcrPublic => "ECR Public",
            Upstream::Kubernetes => "the Kubernetes registry",
            Upstream::Ecr(..) => "Amazon ECR",
        }
    }
}

const SUPPORTED: &str = "registry-1.docker.io (Docker Hub), ghcr.io, registry.gitlab.com, \
    <name>.azurecr.io, cgr.dev, quay.io, public.ecr.aws, registry.k8s.io, or \
    <account>.dkr.ecr.<region>.amazonaws.com";

/// Recognises an upstream registry URL the way ECR does (host only, no scheme or path).
pub fn classify(url: &str) -> Option<Upstream> {
    match url {
        "registry-1.docker.io" => return Some(Upstream::DockerHub),
        "ghcr.io" => return Some(Upstream::GitHub),
        "registry.gitlab.com" => return Some(Upstream::GitLab),
        "cgr.dev" => return Some(Upstream::Chainguard),
        "quay.io" => return Some(Upstream::Quay),
        "public.ecr.aws" => return Some(Upstream::EcrPublic),
        "registry.k8s.io" => return Some(Upstream::Kubernetes),
        _ => {}
    }
    if let Some(name) = url.strip_suffix(".azurecr.io") {
        let ok = (5..=50).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        return ok.then_some(Upstream::Azure);
    }
    let host = url
        .strip_suffix(".amazonaws.com.cn")
        .or_else(|| url.strip_suffix(".amazonaws.com"))?;
    let (account, region) = host.split_once(".dkr.ecr.")?;
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (account_ok && region_ok).then(|| Upstream::Ecr(account.to_string(), region.to_string()))
}

/// Checks the upstream and credential combination before anything reaches ECR, with a message
/// that says what is needed.
pub fn validate(
    spec: &PullThroughCacheRuleSpec,
    operator_namespace: &str,
) -> Result<Upstream, String> {
    let url = spec.upstream_registry_url.trim();
    let Some(upstream) = classify(url) else {
        let hint = if url == "docker.io" || url == "index.docker.io" {
            " (for Docker Hub use registry-1.docker.io)"
        } else if url.contains("://") || url.contains('/') {
            " (give the host name only, without scheme or path)"
        } else {
            ""
        };
        return Err(format!(
            "upstreamRegistryUrl {url} is not an upstream registry ECR supports{hint}; use one of {SUPPORTED}"
        ));
    };
    if let Some(ns) = spec
        .credentials_secret_ref
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .filter(|ns| *ns != operator_namespace)
    {
        return Err(format!(
            "spec.credentialsSecretRef.namespace {ns} is refused: credential Secrets are read only from the operator's namespace {operator_namespace}"
        ));
    }
    let has_credentials = spec.credential_arn.is_some() || spec.credentials_secret_ref.is_some();
    if upstream.needs_credentials() && !has_credentials {
        return Err(format!(
            "{} ({url}) requires credentials: set spec.credentialsSecretRef to a Secret in namespace {operator_namespace} with keys username and accessToken, or spec.credentialArn to a Secrets Manager secret named {SECRET_PREFIX}...",
            upstream.display()
        ));
    }
    if !upstream.needs_credentials() && has_credentials && !matches!(upstream, Upstream::Quay) {
        return Err(format!(
            "{} ({url}) takes no credentials; remove spec.credentialArn / spec.credentialsSecretRef",
            upstream.display()
        ));
    }
    if let Some(p) = &spec.upstream_repository_prefix {
        if !matches!(upstream, Upstream::Ecr(..)) {
            return Err(format!(
                "upstreamRepositoryPrefix is only supported with an Amazon ECR upstream, not {}",
                upstream.display()
            ));
        }
        if spec.ecr_repository_prefix == "ROOT" && p != "ROOT" {
            return Err(
                "upstreamRepositoryPrefix can only be set when ecrRepositoryPrefix is not ROOT"
                    .to_string(),
            );
        }
    }
    if spec.custom_role_arn.is_some() && !matches!(upstream, Upstream::Ecr(..)) {
        return Err(format!(
            "customRoleArn is only used with an Amazon ECR upstream, not {}",
            upstream.display()
        ));
    }
    Ok(upstream)
}

/// The prefix as ECR keys it ("There is always an assumed / applied to the end of the prefix").
fn prefix_key(prefix: &str) -> &str {
    if prefix == "ROOT" {
        prefix
    } else {
        prefix.trim_end_matches('/')
    }
}

fn rfc3339(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_string())
}

fn secret_name(rule: &PullThroughCacheRule) -> String {
    format!("{SECRET_PREFIX}{}", rule.name_any())
}

fn owner_id(ctx: &Context, rule: &PullThroughCacheRule) -> String {
    format!("{}/{}", ctx.config.cluster_id, rule.name_any())
}

pub struct Shared {
    pub ctx: Arc<Context>,
    pub store: Store<PullThroughCacheRule>,
}

/// Runs the PullThroughCacheRule controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<PullThroughCacheRule>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        store: reader.clone(),
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
            FinalizerEvent::Apply(o) => apply(&o, &shared).await,
            FinalizerEvent::Cleanup(o) => cleanup(&o, &shared).await,
        }
    })
    .await
}

fn error_policy(rule: Arc<PullThroughCacheRule>, err: &Error, shared: Arc<Shared>) -> Action {
    status::error_policy(&shared.ctx, rule.as_ref(), err)
}

fn older_claimant(
    store: &Store<PullThroughCacheRule>,
    rule: &PullThroughCacheRule,
) -> Option<String> {
    let mine = age_key(rule);
    let prefix = prefix_key(&rule.spec.ecr_repository_prefix);
    store
        .state()
        .into_iter()
        .filter(|o| o.uid() != rule.uid() && o.metadata.deletion_timestamp.is_none())
        .filter(|o| prefix_key(&o.spec.ecr_repository_prefix) == prefix)
        .filter(|o| age_key(o.as_ref()) < mine)
        .map(|o| o.name_any())
        .min()
}

/// The Secret's `username` and `accessToken` as the JSON ECR expects. Never logged.
async fn read_k8s_secret(ctx: &Context, name: &str) -> Result<String, Error> {
    let ns = &ctx.config.operator_namespace;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = api.get_opt(name).await? else {
        return Err(Error::SecretNotFound(format!(
            "Secret {ns}/{name} not found; create it with keys username and accessToken"
        )));
    };
    let value = |key: &str| -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .cloned()
            })
            .filter(|v| !v.is_empty())
    };
    let (username, token) = (value("username"), value("accessToken"));
    let missing: Vec<&str> = [
        ("username", username.is_none()),
        ("accessToken", token.is_none()),
    ]
    .into_iter()
    .filter(|(_, m)| *m)
    .map(|(k, _)| k)
    .collect();
    match (username, token) {
        (Some(u), Some(t)) => {
            Ok(serde_json::json!({ "username": u, "accessToken": t }).to_string())
        }
        _ => Err(Error::SecretNotFound(format!(
            "Secret {ns}/{name} lacks {}; it needs keys username and accessToken",
            missing.join(" and ")
        ))),
    }
}

fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Mirrors the Secret into Secrets Manager and returns the secret's ARN.
async fn mirror_secret(
    ctx: &Context,
    rule: &PullThroughCacheRule,
    k8s_name: &str,
) -> Result<String, Error> {
    let value = read_k8s_secret(ctx, k8s_name).await?;
    let name = secret_name(rule);
    let owner = owner_id(ctx, rule);
    match ctx.registry.get_secret(&name).await? {
        None => {
            let tags = BTreeMap::from([(OWNER_TAG.to_string(), owner)]);
            let arn = ctx.registry.create_secret(&name, &value, &tags).await?;
            ctx.event(
                rule,
                EventType::Normal,
                "SecretMirrored",
                "Update",
                format!("Mirrored Secret {k8s_name} into Secrets Manager as {name}"),
            )
            .await;
            Ok(arn)
        }
        Some(current) => {
            let known = rule
                .status
                .as_ref()
                .and_then(|s| s.credential_arn.as_deref())
                == Some(current.arn.as_str());
            if !known {
                let tags = ctx.registry.secret_tags(&current.arn).await?;
                if tags.get(OWNER_TAG) != Some(&owner) {
                    return Err(Error::Conflict(format!(
                        "Secrets Manager secret {name} exists and is not managed by this object (tag {OWNER_TAG} is {}); it is left untouched",
                        tags.get(OWNER_TAG).map(String::as_str).unwrap_or("absent")
                    )));
                }
            }
            if !same_json(&current.value, &value) {
                ctx.registry.put_secret_value(&current.arn, &value).await?;
                ctx.event(
                    rule,
                    EventType::Normal,
                    "SecretUpdated",
                    "Update",
                    format!("Updated Secrets Manager secret {name} from Secret {k8s_name}"),
                )
                .await;
            }
            Ok(current.arn)
        }
    }
}

/// Deletes the mirrored secret when it exists and carries our owner tag.
async fn delete_mirrored_secret(ctx: &Context, rule: &PullThroughCacheRule) -> Result<(), Error> {
    let name = secret_name(rule);
    if let Some(current) = ctx.registry.get_secret(&name).await? {
        let tags = ctx.registry.secret_tags(&current.arn).await?;
        if tags.get(OWNER_TAG) == Some(&owner_id(ctx, rule)) {
            ctx.registry.delete_secret(&current.arn).await?;
            info!(secret = %name, "deleted mirrored secret");
        }
    }
    Ok(())
}

/// True when `info` is the rule this object's status says it created.
fn status_owns(status: &PullThroughCacheRuleStatus, info: &PullThroughCacheRuleInfo) -> bool {
    status.created_at.is_some() && status.created_at == rfc3339(info.created_at)
}

fn upstream_prefix(p: Option<&str>) -> &str {
    p.unwrap_or("ROOT")
}

async fn apply(rule: &PullThroughCacheRule, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let upstream = validate(&rule.spec, &ctx.config.operator_namespace).map_err(Error::Invalid)?;
    let prefix = rule.spec.ecr_repository_prefix.clone();
    if let Some(other) = older_claimant(&shared.store, rule) {
        return Err(Error::Conflict(format!(
            "PullThroughCacheRule {other} already manages the rule for prefix {prefix}"
        )));
    }
    let mut status = status::current(rule);

    let observed = ctx
        .registry
        .describe_pull_through_cache_rule(&prefix)
        .await?;
    if let Some(info) = &observed
        && !status_owns(&status, info)
        && !created_after(rule, info)
    {
        // Decided before any credential is mirrored for a rule this object cannot manage.
        return Err(foreign_rule(&prefix, info));
    }

    // Credentials next: the rule is created with them.
    let credential_arn = match (&rule.spec.credential_arn, &rule.spec.credentials_secret_ref) {
        (Some(arn), _) => Some(arn.clone()),
        (None, Some(secret)) => Some(mirror_secret(ctx, rule, &secret.name).await?),
        (None, None) => None,
    };
    let desired = NewPullThroughCacheRule {
        prefix: prefix.clone(),
        upstream_registry_url: rule.spec.upstream_registry_url.trim().to_string(),
        upstream_repository_prefix: rule.spec.upstream_repository_prefix.clone(),
        credential_arn: credential_arn.clone(),
        custom_role_arn: rule.spec.custom_role_arn.clone(),
    };

    let mut event = None;
    let info = match observed {
        None => {
            let recreated = status.created_at.is_some();
            let info = create(ctx, &desired).await?;
            event = Some(if recreated {
                (
                    "DriftCorrected",
                    format!(
                        "Re-created pull-through cache rule {prefix}, deleted outside ecr-operator"
                    ),
                )
            } else {
                (
                    "Created",
                    format!(
                        "Created pull-through cache rule {prefix} for {}",
                        desired.upstream_registry_url
                    ),
                )
            });
            info
        }
        Some(info) => {
            if !status_owns(&status, &info) && !claimable(rule, &info, &desired) {
                return Err(foreign_rule(&prefix, &info));
            }
            let upstream_changed = info.upstream_registry_url != desired.upstream_registry_url
                || upstream_prefix(info.upstream_repository_prefix.as_deref())
                    != upstream_prefix(desired.upstream_repository_prefix.as_deref());
            let credentials_removed = (info.credential_arn.is_some()
                && desired.credential_arn.is_none())
                || (info.custom_role_arn.is_some() && desired.custom_role_arn.is_none());
            if upstream_changed || credentials_removed {
                // ECR cannot change a rule's upstream (or drop its credentials): replace it.
                ctx.registry.delete_pull_through_cache_rule(&prefix).await?;
                let fresh = create(ctx, &desired).await?;
                event = Some((
                    "Replaced",
                    format!("Replaced pull-through cache rule {prefix}: the upstream changed"),
                ));
                fresh
            } else if info.credential_arn != desired.credential_arn
                || info.custom_role_arn != desired.custom_role_arn
            {
                ctx.registry
                    .update_pull_through_cache_rule(
                        &prefix,
                        desired.credential_arn.as_deref(),
                        desired.custom_role_arn.as_deref(),
                    )
                    .await?;
                event = Some((
                    "Updated",
                    format!("Updated the credentials of pull-through cache rule {prefix}"),
                ));
                PullThroughCacheRuleInfo {
                    credential_arn: desired.credential_arn.clone(),
                    custom_role_arn: desired.custom_role_arn.clone(),
                    updated_at: Some(Timestamp::now()),
                    ..info
                }
            } else {
                info
            }
        }
    };

    // A mirrored secret no longer used (the spec moved to credentialArn or none) is removed.
    if rule.spec.credentials_secret_ref.is_none()
        && status
            .credential_arn
            .as_deref()
            .is_some_and(|a| a.contains(&format!(":secret:{}-", secret_name(rule))))
    {
        delete_mirrored_secret(ctx, rule).await?;
    }

    let message = format!(
        "pull-through cache rule {prefix} caches {} ({})",
        desired.upstream_registry_url,
        upstream.display()
    );
    status.registry_id = Some(info.registry_id.clone()).filter(|s| !s.is_empty());
    status.upstream_registry = info.upstream_registry.clone();
    status.credential_arn = credential_arn;
    status.created_at = rfc3339(info.created_at);
    status.updated_at = rfc3339(info.updated_at);
    if let Some((_, note)) = &event {
        info!(prefix = %prefix, "{note}");
    }
    status::write_ready(
        ctx,
        rule,
        status,
        message,
        event.map(|(reason, note)| (reason, "Update", note)),
    )
    .await?;
    Ok(Action::requeue(ctx.config.deep_sweep_interval))
}

fn foreign_rule(prefix: &str, info: &PullThroughCacheRuleInfo) -> Error {
    Error::Conflict(format!(
        "a pull-through cache rule for prefix {prefix} (upstream {}) already exists and was not created by this object; it is left untouched",
        info.upstream_registry_url
    ))
}

/// The rule was created after this object (so this object may have created it).
fn created_after(rule: &PullThroughCacheRule, info: &PullThroughCacheRuleInfo) -> bool {
    match (&rule.metadata.creation_timestamp, info.created_at) {
        (Some(created), Some(rule_created)) => rule_created >= created.0,
        _ => false,
    }
}

/// A rule this object most likely created (it was created after the object, with exactly the
/// desired settings) but whose creation the status does not record: a crash between
/// CreatePullThroughCacheRule and the status write.
fn claimable(
    rule: &PullThroughCacheRule,
    info: &PullThroughCacheRuleInfo,
    desired: &NewPullThroughCacheRule,
) -> bool {
    created_after(rule, info)
        && info.upstream_registry_url == desired.upstream_registry_url
        && info.credential_arn == desired.credential_arn
        && info.custom_role_arn == desired.custom_role_arn
        && upstream_prefix(info.upstream_repository_prefix.as_deref())
            == upstream_prefix(desired.upstream_repository_prefix.as_deref())
}

async fn create(
    ctx: &Context,
    desired: &NewPullThroughCacheRule,
) -> Result<PullThroughCacheRuleInfo, Error> {
    match ctx.registry.create_pull_through_cache_rule(desired).await {
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

async fn cleanup(rule: &PullThroughCacheRule, shared: &Shared) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let status = status::current(rule);
    let prefix = &rule.spec.ecr_repository_prefix;
    if status.created_at.is_some() {
        match ctx
            .registry
            .describe_pull_through_cache_rule(prefix)
            .await?
        {
            Some(info) if status_owns(&status, &info) => {
                ctx.registry.delete_pull_through_cache_rule(prefix).await?;
                ctx.event(
                    rule,
                    EventType::Normal,
                    "Deleted",
                    "Delete",
                    format!("Deleted pull-through cache rule {prefix}"),
                )
                .await;
            }
            Some(_) => {
                ctx.event(
                    rule,
                    EventType::Normal,
                    "NotOwned",
                    "Delete",
                    format!("Left pull-through cache rule {prefix} in place: this object did not create it"),
                )
                .await;
            }
            None => {}
        }
    }
    if rule.spec.credentials_secret_ref.is_some() {
        delete_mirrored_secret(ctx, rule).await?;
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pull_through_cache_rule::SecretReference;

    fn spec(url: &str) -> PullThroughCacheRuleSpec {
        PullThroughCacheRuleSpec {
            ecr_repository_prefix: "cache".into(),
            upstream_registry_url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn upstreams_are_recognised() {
        assert_eq!(classify("registry-1.docker.io"), Some(Upstream::DockerHub));
        assert_eq!(classify("myregistry1.azurecr.io"), Some(Upstream::Azure));
        assert_eq!(
            classify("111122223333.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(Upstream::Ecr("111122223333".into(), "eu-west-1".into()))
        );
        assert_eq!(classify("harbor.example.com"), None);
        assert_eq!(classify("docker.io"), None);
    }

    #[test]
    fn credentials_required_where_ecr_requires_them() {
        for url in [
            "registry-1.docker.io",
            "ghcr.io",
            "registry.gitlab.com",
            "myregistry1.azurecr.io",
        ] {
            let err = validate(&spec(url), "ops").unwrap_err();
            assert!(err.contains("requires credentials"), "{url}: {err}");
            assert!(err.contains("credentialsSecretRef"), "{err}");
            assert!(err.contains("namespace ops"), "{err}");
            let mut ok = spec(url);
            ok.credentials_secret_ref = Some(SecretReference {
                name: "s".into(),
                namespace: None,
            });
            assert!(validate(&ok, "ops").is_ok(), "{url}");
        }
        assert!(validate(&spec("quay.io"), "ops").is_ok());
        assert!(validate(&spec("public.ecr.aws"), "ops").is_ok());
        // A Secret in another namespace is refused, never read.
        let mut other = spec("ghcr.io");
        other.credentials_secret_ref = Some(SecretReference {
            name: "s".into(),
            namespace: Some("team-a".into()),
        });
        let err = validate(&other, "ops").unwrap_err();
        assert!(err.contains("team-a") && err.contains("refused"), "{err}");
        other.credentials_secret_ref = Some(SecretReference {
            name: "s".into(),
            namespace: Some("ops".into()),
        });
        assert!(validate(&other, "ops").is_ok());
        let err = validate(&spec("docker.io"), "ops").unwrap_err();
        assert!(err.contains("registry-1.docker.io"), "{err}");
        let mut p = spec("quay.io");
        p.upstream_repository_prefix = Some("x".into());
        assert!(
            validate(&p, "ops")
                .unwrap_err()
                .contains("upstreamRepositoryPrefix")
        );
    }
}
