//! The webhook's serving certificate: loaded from PEM files (a mounted Secret, written by
//! cert-manager or the chart) and reloaded when they change, or generated at start with a
//! private CA whose bundle is written into the ValidatingWebhookConfiguration.
//!
//! Rotation needs no restart: the TLS acceptor asks [`CertStore`] for the certificate on every
//! handshake, and a background task swaps in a new one when the files' modification time or
//! size changes (checked every `reload_interval`). A pair that does not load (a half-written
//! rotation, a key that does not match the certificate) is logged and retried on the next
//! check; the previous certificate stays in service meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube::api::PostParams;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Certificate failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key does not load or does not match the certificate.
    #[error("certificate {cert} with key {key}: {source}")]
    Key {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        source: rustls::Error,
    },
    /// Generating a certificate failed.
    #[error("generating the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider of the whole crate: aws-lc-rs.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The current serving certificate; a [`ResolvesServerCert`] for rustls.
#[derive(Debug, Default)]
pub struct CertStore {
    current: ArcSwapOption<CertifiedKey>,
}

impl CertStore {
    /// An empty store (no handshake succeeds until a certificate is set).
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `key` from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.store(Some(key));
    }

    /// Whether a certificate is loaded.
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// The certificate served now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

/// A rustls server configuration (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN) serving what
/// `certs` holds at each handshake.
pub fn server_config(certs: Arc<CertStore>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Loads a certificate chain and its private key from PEM files.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path, message: String| TlsError::Pem {
        path: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err(cert, "no CERTIFICATE block".to_owned()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e.to_string()))?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|source| TlsError::Key {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source,
    })
}

/// What identifies one version of a file: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Certificate files that are reloaded when they change.
#[derive(Debug)]
pub struct FileCerts {
    cert: PathBuf,
    key: PathBuf,
    loaded: (Stamp, Stamp),
}

impl FileCerts {
    /// Loads `cert` and `key` into `store`; fails when they do not load.
    pub fn load(cert: PathBuf, key: PathBuf, store: &CertStore) -> Result<FileCerts, TlsError> {
        let stamps = (stamp(&cert), stamp(&key));
        store.set(Arc::new(load_pair(&cert, &key)?));
        Ok(FileCerts {
            cert,
            key,
            loaded: stamps,
        })
    }

    /// Reloads the pair into `store` when either file changed since the last load. Returns
    /// whether a new certificate is now served.
    pub fn reload_if_changed(&mut self, store: &CertStore) -> bool {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        if stamps == self.loaded {
            return false;
        }
        match load_pair(&self.cert, &self.key) {
            Ok(key) => {
                store.set(Arc::new(key));
                self.loaded = stamps;
                tracing::info!(cert = %self.cert.display(), "webhook certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "webhook certificate changed but does not load; keeping the previous one");
                false
            }
        }
    }

    /// Checks the files every `interval`, forever.
    pub async fn watch(mut self, store: Arc<CertStore>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.reload_if_changed(&store);
        }
    }
}

/// A generated CA and a serving certificate it signed.
pub struct GeneratedCert {
    /// The CA certificate (PEM): the `caBundle` clients trust.
    pub ca_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The serving certificate and key, ready for rustls.
    pub certified: Arc<CertifiedKey>,
    /// Start of validity of both certificates.
    pub not_before: chrono::DateTime<chrono::Utc>,
    /// End of validity of both certificates.
    pub not_after: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for GeneratedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedCert")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Generates a CA (ECDSA P-256) and a serving certificate for `dns_names` (IP addresses are
/// accepted too), both valid from yesterday for `valid_days`.
pub fn generate(dns_names: &[String], valid_days: i64) -> Result<GeneratedCert, TlsError> {
    let validity = validity(chrono::Utc::now(), valid_days);
    let ca = ca_params(validity)?;
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf_cert = leaf_params(dns_names, validity)?.signed_by(&leaf_key, &issuer)?;
    Ok(GeneratedCert {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        certified: Arc::new(generated_key(&leaf_cert, &leaf_key)?),
        not_before: validity.0,
        not_after: validity.1,
    })
}

/// Start and end of validity.
type Validity = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

/// From yesterday for `valid_days`, at midnight: rcgen takes dates, and the recorded bounds
/// are the midnights it encodes.
fn validity(now: chrono::DateTime<chrono::Utc>, valid_days: i64) -> Validity {
    let midnight = |d: chrono::DateTime<chrono::Utc>| {
        d.date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(d, |m| m.and_utc())
    };
    (
        midnight(now - chrono::TimeDelta::days(1)),
        midnight(now + chrono::TimeDelta::days(valid_days)),
    )
}

fn set_validity(params: &mut rcgen::CertificateParams, (from, until): Validity) {
    let date = |d: chrono::DateTime<chrono::Utc>| {
        use chrono::Datelike;
        rcgen::date_time_ymd(
            d.year(),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    };
    params.not_before = date(from);
    params.not_after = date(until);
}

/// The CA: signs serving certificates only (path length 0).
fn ca_params(validity: Validity) -> Result<rcgen::CertificateParams, TlsError> {
    use rcgen::{BasicConstraints, DnType, IsCa, KeyUsagePurpose};
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "ecr-operator webhook CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca, validity);
    Ok(ca)
}

/// The serving certificate for `dns_names`, named after the first.
fn leaf_params(
    dns_names: &[String],
    validity: Validity,
) -> Result<rcgen::CertificateParams, TlsError> {
    use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose};
    let mut leaf = rcgen::CertificateParams::new(dns_names.to_vec())?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns_names
            .first()
            .map_or("ecr-operator-webhook", |s| s.as_str()),
    );
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    set_validity(&mut leaf, validity);
    Ok(leaf)
}

/// The generated certificate and key, ready for rustls.
fn generated_key(
    cert: &rcgen::Certificate,
    key: &rcgen::KeyPair,
) -> Result<CertifiedKey, TlsError> {
    let der_key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| TlsError::Pem {
        path: "<generated>".to_owned(),
        message: e.to_owned(),
    })?;
    CertifiedKey::from_der(vec![cert.der().clone()], der_key, &provider()).map_err(|source| {
        TlsError::Key {
            cert: "<generated>".to_owned(),
            key: "<generated>".to_owned(),
            source,
        }
    })
}

/// A certificate chain and key from PEM text (`what` names the source in errors).
pub fn pair_from_pem(cert_pem: &str, key_pem: &str, what: &str) -> Result<CertifiedKey, TlsError> {
    let pem_err = |message: String| TlsError::Pem {
        path: what.to_owned(),
        message,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err("no CERTIFICATE block".to_owned()));
    }
    let private =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| pem_err(e.to_string()))?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|source| TlsError::Key {
        cert: what.to_owned(),
        key: what.to_owned(),
        source,
    })
}

/// Writes `ca_pem` as `clientConfig.caBundle` of every webhook of the ValidatingWebhookConfiguration
/// `name`. Returns how many webhooks were updated (0 when they all had it already).
pub async fn write_ca_bundle(
    client: kube::Client,
    name: &str,
    ca_pem: &str,
) -> Result<usize, kube::Error> {
    update_ca_bundles(client, name, |_| ca_pem.as_bytes().to_vec()).await
}

/// Appends `ca_pem` to the `caBundle` of every webhook of `name` that lacks it, keeping what is
/// there: a new CA is trusted before any certificate it signed is served.
pub async fn add_to_ca_bundle(
    client: kube::Client,
    name: &str,
    ca_pem: &str,
) -> Result<usize, kube::Error> {
    update_ca_bundles(client, name, |old| {
        let old = old.unwrap_or_default();
        if String::from_utf8_lossy(old).contains(ca_pem.trim()) {
            return old.to_vec();
        }
        let mut bundle = old.to_vec();
        if !bundle.is_empty() && !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(ca_pem.as_bytes());
        bundle
    })
    .await
}

async fn update_ca_bundles(
    client: kube::Client,
    name: &str,
    bundle: impl Fn(Option<&[u8]>) -> Vec<u8>,
) -> Result<usize, kube::Error> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    // A replace carries the resourceVersion: a concurrent writer makes it fail with 409, and
    // the caller retries with a fresh read.
    let mut config = api.get(name).await?;
    let mut changed = 0;
    for webhook in config.webhooks.iter_mut().flatten() {
        let old = webhook
            .client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.as_slice());
        let new = ByteString(bundle(old));
        if webhook.client_config.ca_bundle.as_ref() != Some(&new) {
            webhook.client_config.ca_bundle = Some(new);
            changed += 1;
        }
    }
    if changed > 0 {
        api.replace(name, &PostParams::default(), &config).await?;
    }
    Ok(changed)
}

/// Retries [`write_ca_bundle`] with backoff (1 s doubling to 60 s) until it succeeds: the
/// configuration may be created after the operator starts (by Helm, in any order).
pub async fn keep_writing_ca_bundle(client: kube::Client, name: String, ca_pem: String) {
    let mut delay = Duration::from_secs(1);
    loop {
        match write_ca_bundle(client.clone(), &name, &ca_pem).await {
            Ok(n) => {
                tracing::info!(webhook_configuration = %name, updated = n, "webhook CA bundle written");
                return;
            }
            Err(e) => {
                tracing::warn!(webhook_configuration = %name, error = %e, retry_in = ?delay, "cannot write the webhook CA bundle");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_round_trips_through_files() {
        let g = generate(&["localhost".to_owned(), "127.0.0.1".to_owned()], 30).unwrap();
        let dir = std::env::temp_dir().join(format!("ecr-op-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&c, &g.cert_pem).unwrap();
        std::fs::write(&k, &g.key_pem).unwrap();
        let store = CertStore::new();
        let mut files = FileCerts::load(c.clone(), k.clone(), &store).unwrap();
        assert!(store.is_loaded());
        assert!(!files.reload_if_changed(&store));
        // A key that does not match is refused; the old certificate stays.
        let other = generate(&["localhost".to_owned()], 30).unwrap();
        std::fs::write(&k, format!("{}\n", other.key_pem)).unwrap();
        assert!(!files.reload_if_changed(&store));
        std::fs::write(&c, format!("{}\n", other.cert_pem)).unwrap();
        assert!(files.reload_if_changed(&store));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(load_pair(&c, &k).is_err());
    }
}
