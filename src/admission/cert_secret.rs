//! A generated webhook certificate shared by every replica through one Secret.
//!
//! The API server sends an admission request to any replica behind the Service and trusts one
//! `caBundle`, so every replica must serve a certificate signed by a CA in that bundle. The
//! first replica to start generates a CA and a serving certificate and creates the Secret
//! (a concurrent creator gets 409 and reads the winner's); every replica serves from the Secret,
//! watches it and swaps the certificate in without restart when it changes, and writes the
//! Secret's CA bundle into the ValidatingWebhookConfiguration.
//!
//! Renewal: when less than a third of the certificate's lifetime is left, any replica generates
//! a new CA and certificate, first adds the new CA to the webhook configuration's bundle (so it
//! is trusted before anyone serves what it signed), then replaces the Secret with the
//! resourceVersion it read. Replicas racing to renew all but one get 409 and take the winner's.
//! The Secret's bundle keeps the previous CA while it is valid, so a replica that has not yet
//! seen the new Secret is still trusted during the hand-over.
//!
//! The CA's private key is never stored: renewal makes a new CA rather than re-signing.
//! Validity is read from annotations the operator writes (`ecr.operator.dev/not-before`,
//! `ecr.operator.dev/not-after`); a Secret without them, or whose certificate does not load,
//! is replaced.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use rustls::sign::CertifiedKey;
use tokio::time::Instant;

use super::tls::{self, CertStore, TlsError};

/// Annotation: start of validity (RFC 3339).
pub const NOT_BEFORE_ANNOTATION: &str = "ecr.operator.dev/not-before";
/// Annotation: end of validity (RFC 3339).
pub const NOT_AFTER_ANNOTATION: &str = "ecr.operator.dev/not-after";
/// Data key: the CA that signed `tls.crt`.
pub const CA_KEY: &str = "ca.crt";
/// Data key: the CAs to trust (current, and the previous one while it is valid).
pub const CA_BUNDLE_KEY: &str = "ca-bundle.crt";

/// First retry after a failed step; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Where the shared certificate lives and how it is made.
#[derive(Clone, Debug)]
pub struct SharedCertificate {
    /// The operator's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub secret_name: String,
    /// The names the serving certificate is valid for (`SERVICE.NAMESPACE.svc`, ...).
    pub dns_names: Vec<String>,
    /// The ValidatingWebhookConfiguration whose webhooks get the CA bundle, if any.
    pub webhook_configuration: Option<String>,
    /// Validity of a new certificate, in days.
    pub valid_days: i64,
    /// How often expiry and the webhook configuration's bundle are checked (besides every
    /// change of the Secret).
    pub check_interval: Duration,
}

/// Why the shared certificate could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CertSecretError {
    /// The Secret lacks a key or holds something unusable.
    #[error("Secret {secret}: {message}")]
    Invalid {
        /// `namespace/name`.
        secret: String,
        /// What is wrong.
        message: String,
    },
    /// Generating or loading a certificate.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The Kubernetes API.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// What the Secret holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Material {
    /// The CA that signed the serving certificate (PEM).
    pub ca_pem: String,
    /// The CAs to trust (PEM): this CA, then the previous one during a hand-over.
    pub ca_bundle_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving certificate's key (PKCS#8 PEM).
    pub key_pem: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

impl Material {
    /// A new CA and serving certificate. The bundle also holds `previous`'s CA while it is
    /// valid at `now`.
    pub fn generate(
        dns_names: &[String],
        valid_days: i64,
        previous: Option<&Material>,
        now: DateTime<Utc>,
    ) -> Result<Material, TlsError> {
        let g = tls::generate(dns_names, valid_days)?;
        let mut bundle = g.ca_pem.clone();
        if let Some(prev) = previous.filter(|p| p.not_after > now && p.ca_pem != g.ca_pem) {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(&prev.ca_pem);
        }
        Ok(Material {
            ca_pem: g.ca_pem,
            ca_bundle_pem: bundle,
            cert_pem: g.cert_pem,
            key_pem: g.key_pem,
            not_before: g.not_before,
            not_after: g.not_after,
        })
    }

    /// Whether less than a third of the lifetime is left at `now` (or it is already expired).
    pub fn needs_renewal(&self, now: DateTime<Utc>) -> bool {
        let lifetime = self.not_after - self.not_before;
        self.not_after - now < lifetime / 3
    }

    /// The serving certificate and key for rustls.
    pub fn certified(&self) -> Result<CertifiedKey, TlsError> {
        tls::pair_from_pem(&self.cert_pem, &self.key_pem, "<Secret tls.crt/tls.key>")
    }

    /// The Secret `config` names, holding this material (no resourceVersion).
    pub fn to_secret(&self, config: &SharedCertificate) -> Secret {
        let data = [
            ("tls.crt", &self.cert_pem),
            ("tls.key", &self.key_pem),
            (CA_KEY, &self.ca_pem),
            (CA_BUNDLE_KEY, &self.ca_bundle_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
        Secret {
            metadata: ObjectMeta {
                name: Some(config.secret_name.clone()),
                namespace: Some(config.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "ecr-operator".to_owned(),
                )])),
                annotations: Some(BTreeMap::from([
                    (
                        NOT_BEFORE_ANNOTATION.to_owned(),
                        self.not_before.to_rfc3339(),
                    ),
                    (NOT_AFTER_ANNOTATION.to_owned(), self.not_after.to_rfc3339()),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }

    /// Reads the material back from a Secret written by [`Material::to_secret`].
    pub fn from_secret(secret: &Secret) -> Result<Material, CertSecretError> {
        let name = format!(
            "{}/{}",
            secret.metadata.namespace.as_deref().unwrap_or_default(),
            secret.metadata.name.as_deref().unwrap_or_default()
        );
        let invalid = |message: String| CertSecretError::Invalid {
            secret: name.clone(),
            message,
        };
        let data = secret.data.clone().unwrap_or_default();
        let text = |key: &str| -> Result<String, CertSecretError> {
            let bytes = data.get(key).ok_or_else(|| invalid(format!("no {key}")))?;
            String::from_utf8(bytes.0.clone()).map_err(|_| invalid(format!("{key} is not PEM")))
        };
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let time = |key: &str| -> Result<DateTime<Utc>, CertSecretError> {
            let value = annotations
                .get(key)
                .ok_or_else(|| invalid(format!("no annotation {key}")))?;
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| invalid(format!("annotation {key}: {e}")))
        };
        let material = Material {
            ca_pem: text(CA_KEY)?,
            ca_bundle_pem: text(CA_BUNDLE_KEY)?,
            cert_pem: text("tls.crt")?,
            key_pem: text("tls.key")?,
            not_before: time(NOT_BEFORE_ANNOTATION)?,
            not_after: time(NOT_AFTER_ANNOTATION)?,
        };
        if material.not_after <= material.not_before {
            return Err(invalid("not-after is not after not-before".to_owned()));
        }
        if !material.ca_bundle_pem.contains(material.ca_pem.trim()) {
            return Err(invalid(format!("{CA_BUNDLE_KEY} lacks {CA_KEY}")));
        }
        Ok(material)
    }
}

/// What one replica knows between steps.
#[derive(Default)]
struct State {
    /// The Secret as last seen (watch, create, replace or get).
    current: Option<Secret>,
    /// The resourceVersion of the Secret whose certificate is served.
    loaded: Option<String>,
}

/// Keeps `store` serving the shared certificate, forever: creates the Secret when missing,
/// follows its changes, renews it near expiry, and keeps the webhook configuration's CA bundle
/// equal to the Secret's. Errors are logged and retried with backoff; the certificate already
/// served stays in service meanwhile.
pub async fn run(client: kube::Client, config: SharedCertificate, store: Arc<CertStore>) {
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let selector = format!("metadata.name={}", config.secret_name);
    let stream = watcher::watcher(api.clone(), watcher::Config::default().fields(&selector))
        .default_backoff();
    futures::pin_mut!(stream);
    let mut state = State::default();
    let mut retry = RETRY_MIN;
    let mut next = Instant::now();
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(Event::Apply(s) | Event::InitApply(s))) => state.current = Some(s),
                Some(Ok(Event::Delete(_))) => state.current = None,
                Some(Ok(Event::Init | Event::InitDone)) => continue,
                Some(Err(e)) => {
                    tracing::warn!(secret = %config.secret_name, error = %e, "webhook certificate: watch error");
                    continue;
                }
                None => return,
            },
            () = tokio::time::sleep_until(next) => {}
        }
        match step(&api, &client, &config, &store, &mut state).await {
            Ok(()) => {
                retry = RETRY_MIN;
                next = Instant::now() + config.check_interval;
            }
            Err(e) => {
                tracing::warn!(secret = %config.secret_name, error = %e, retry_in = ?retry,
                    "webhook certificate: cannot sync with its Secret");
                // A failed create or replace may have been seen by nobody: read again.
                state.current = None;
                next = Instant::now() + retry;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

async fn step(
    api: &Api<Secret>,
    client: &kube::Client,
    config: &SharedCertificate,
    store: &CertStore,
    state: &mut State,
) -> Result<(), CertSecretError> {
    let now = Utc::now();
    let secret = match state.current.clone() {
        Some(s) => s,
        None => get_or_create(api, config, now).await?,
    };
    let material = match Material::from_secret(&secret) {
        Ok(m) if !m.needs_renewal(now) => (secret, m),
        found => {
            let previous = match found {
                Ok(m) => {
                    tracing::info!(secret = %config.secret_name, not_after = %m.not_after,
                        "webhook certificate: renewing (less than a third of its lifetime left)");
                    Some(m)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook certificate: replacing an unusable Secret");
                    None
                }
            };
            renew(api, client, config, &secret, previous.as_ref(), now).await?
        }
    };
    let (secret, material) = material;
    let version = secret.metadata.resource_version.clone();
    state.current = Some(secret);
    if state.loaded != version || !store.is_loaded() {
        store.set(Arc::new(material.certified()?));
        state.loaded = version;
        tracing::info!(secret = %config.secret_name, not_after = %material.not_after,
            "webhook certificate loaded from its Secret");
    }
    if let Some(name) = &config.webhook_configuration {
        // Also on every check: `helm upgrade` re-applies the configuration without a bundle.
        let n = tls::write_ca_bundle(client.clone(), name, &material.ca_bundle_pem).await?;
        if n > 0 {
            tracing::info!(webhook_configuration = %name, updated = n, "webhook CA bundle written");
        }
    }
    Ok(())
}

/// Reads the Secret, or creates it; a concurrent creator's Secret wins.
async fn get_or_create(
    api: &Api<Secret>,
    config: &SharedCertificate,
    now: DateTime<Utc>,
) -> Result<Secret, CertSecretError> {
    if let Some(s) = api.get_opt(&config.secret_name).await? {
        return Ok(s);
    }
    let material = Material::generate(&config.dns_names, config.valid_days, None, now)?;
    match api
        .create(&PostParams::default(), &material.to_secret(config))
        .await
    {
        Ok(s) => {
            tracing::info!(secret = %config.secret_name, "webhook certificate generated");
            Ok(s)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(api.get(&config.secret_name).await?),
        Err(e) => Err(e.into()),
    }
}

/// Replaces `secret` with a new certificate, unless another replica changed it first (then
/// theirs is returned).
async fn renew(
    api: &Api<Secret>,
    client: &kube::Client,
    config: &SharedCertificate,
    secret: &Secret,
    previous: Option<&Material>,
    now: DateTime<Utc>,
) -> Result<(Secret, Material), CertSecretError> {
    let material = Material::generate(&config.dns_names, config.valid_days, previous, now)?;
    if let Some(name) = &config.webhook_configuration {
        tls::add_to_ca_bundle(client.clone(), name, &material.ca_pem).await?;
    }
    let mut replacement = material.to_secret(config);
    replacement.metadata.resource_version = secret.metadata.resource_version.clone();
    match api
        .replace(&config.secret_name, &PostParams::default(), &replacement)
        .await
    {
        Ok(s) => {
            tracing::info!(secret = %config.secret_name, not_after = %material.not_after,
                "webhook certificate renewed");
            Ok((s, material))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let theirs = api.get(&config.secret_name).await?;
            let material = Material::from_secret(&theirs)?;
            Ok((theirs, material))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SharedCertificate {
        SharedCertificate {
            namespace: "ecr-system".to_owned(),
            secret_name: "ecr-operator-webhook-generated".to_owned(),
            dns_names: vec!["localhost".to_owned()],
            webhook_configuration: None,
            valid_days: 30,
            check_interval: Duration::from_secs(60),
        }
    }

    #[test]
    fn material_round_trips_through_a_secret() {
        let now = Utc::now();
        let m = Material::generate(&config().dns_names, 30, None, now).unwrap();
        assert_eq!(m.ca_bundle_pem, m.ca_pem);
        let secret = m.to_secret(&config());
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(Material::from_secret(&secret).unwrap(), m);
        assert!(m.certified().is_ok());
        assert!(!m.needs_renewal(now));

        // The successor's bundle keeps the old CA during the hand-over.
        let next = Material::generate(&config().dns_names, 30, Some(&m), now).unwrap();
        assert!(next.ca_bundle_pem.starts_with(&next.ca_pem));
        assert!(next.ca_bundle_pem.contains(m.ca_pem.trim()));
        // An expired predecessor is not kept.
        let later = m.not_after + chrono::TimeDelta::days(1);
        let after = Material::generate(&config().dns_names, 30, Some(&m), later).unwrap();
        assert_eq!(after.ca_bundle_pem, after.ca_pem);
    }

    #[test]
    fn renewal_window_is_the_last_third() {
        let now = Utc::now();
        let mut m = Material::generate(&config().dns_names, 30, None, now).unwrap();
        m.not_before = now - chrono::TimeDelta::days(20);
        m.not_after = now + chrono::TimeDelta::days(11);
        assert!(!m.needs_renewal(now));
        m.not_after = now + chrono::TimeDelta::days(9);
        assert!(m.needs_renewal(now));
        m.not_after = now - chrono::TimeDelta::days(1);
        assert!(m.needs_renewal(now));
    }

    #[test]
    fn unusable_secrets_are_reported() {
        let m = Material::generate(&config().dns_names, 30, None, Utc::now()).unwrap();
        let mut secret = m.to_secret(&config());
        secret.metadata.annotations = None;
        assert!(matches!(
            Material::from_secret(&secret),
            Err(CertSecretError::Invalid { .. })
        ));
        let mut secret = m.to_secret(&config());
        secret.data.as_mut().unwrap().remove("tls.key");
        let err = Material::from_secret(&secret).unwrap_err().to_string();
        assert!(err.contains("no tls.key"), "{err}");
    }
}
