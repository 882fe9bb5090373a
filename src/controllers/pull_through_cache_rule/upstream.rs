//! Validation of a PullThroughCacheRule's spec, pure: the upstream URL must be one ECR supports,
//! with the credentials ECR requires for it and none it refuses, and the ECR-only fields only with
//! an ECR upstream. Decided before any call, with a message that says what is needed.

use crate::api::pull_through_cache_rule::PullThroughCacheRuleSpec;

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
    let upstream = classify(url).ok_or_else(|| unsupported(url))?;
    secret_namespace(spec, operator_namespace)?;
    credentials(spec, &upstream, url, operator_namespace)?;
    ecr_only_fields(spec, &upstream)?;
    Ok(upstream)
}

fn unsupported(url: &str) -> String {
    let hint = if url == "docker.io" || url == "index.docker.io" {
        " (for Docker Hub use registry-1.docker.io)"
    } else if url.contains("://") || url.contains('/') {
        " (give the host name only, without scheme or path)"
    } else {
        ""
    };
    format!(
        "upstreamRegistryUrl {url} is not an upstream registry ECR supports{hint}; use one of {SUPPORTED}"
    )
}

/// Secrets are read only from the operator's namespace: another one is refused, never read.
fn secret_namespace(
    spec: &PullThroughCacheRuleSpec,
    operator_namespace: &str,
) -> Result<(), String> {
    match spec
        .credentials_secret_ref
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .filter(|ns| *ns != operator_namespace)
    {
        Some(ns) => Err(format!(
            "spec.credentialsSecretRef.namespace {ns} is refused: credential Secrets are read only from the operator's namespace {operator_namespace}"
        )),
        None => Ok(()),
    }
}

/// Credentials where ECR requires them, none where it refuses them (Quay takes them or not).
fn credentials(
    spec: &PullThroughCacheRuleSpec,
    upstream: &Upstream,
    url: &str,
    operator_namespace: &str,
) -> Result<(), String> {
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
    Ok(())
}

/// upstreamRepositoryPrefix and customRoleArn mean something only with an ECR upstream.
fn ecr_only_fields(spec: &PullThroughCacheRuleSpec, upstream: &Upstream) -> Result<(), String> {
    let ecr = matches!(upstream, Upstream::Ecr(..));
    if let Some(p) = &spec.upstream_repository_prefix {
        if !ecr {
            return Err(format!(
                "upstreamRepositoryPrefix is only supported with an Amazon ECR upstream, not {}",
                upstream.display()
            ));
        }
        // "You can set the upstream repository prefix only when the Amazon ECR repository
        // prefix has a non-ROOT value" (ECR user guide); the CRD's CEL rule says the same, this
        // covers objects stored under an older CRD.
        if spec.ecr_repository_prefix == "ROOT" && p != "ROOT" {
            return Err(
                "upstreamRepositoryPrefix can only be set when ecrRepositoryPrefix is not ROOT"
                    .to_string(),
            );
        }
    }
    if spec.custom_role_arn.is_some() && !ecr {
        return Err(format!(
            "customRoleArn is only used with an Amazon ECR upstream, not {}",
            upstream.display()
        ));
    }
    Ok(())
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

    /// What the CRD admits since issue #15 (the model's PullThroughCacheRuleRepositoryPrefix)
    /// the controller accepts too: `__`, runs of `-` and a trailing `/` in either prefix, and an
    /// upstream prefix with ROOT only when it is ROOT.
    #[test]
    fn model_prefixes_pass_and_root_takes_only_root() {
        let ecr = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
        for (prefix, upstream) in [
            ("a__b", None),
            ("web--x/", Some("team__a/")),
            ("ROOT", Some("ROOT")),
        ] {
            let mut s = spec(ecr);
            s.ecr_repository_prefix = prefix.into();
            s.upstream_repository_prefix = upstream.map(Into::into);
            assert!(validate(&s, "ops").is_ok(), "{prefix} {upstream:?}");
        }
        let mut root = spec(ecr);
        root.ecr_repository_prefix = "ROOT".into();
        root.upstream_repository_prefix = Some("team".into());
        let err = validate(&root, "ops").unwrap_err();
        assert!(err.contains("not ROOT"), "{err}");
    }
}
