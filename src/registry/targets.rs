//! One ECR client per RegistryTarget, shared by every object that names the target.
//!
//! A client is built on first use from the target's spec: its region, its endpoint override, and
//! for an `assumeRole` aws-config's STS [`AssumeRoleProvider`] (external id, session name)
//! behind a lazy identity cache that refreshes the assumed credentials [`REFRESH_BEFORE_EXPIRY`]
//! before they expire, so calls never wait on STS but the first. The base configuration (the
//! operator's own identity, retries, timeouts) is the one the operator's own registry uses.
//! A changed spec builds a new client; a target no object uses any more is dropped
//! ([`TargetPool::retain`]). Every client, its ECR Public client included (us-east-1 of the
//! target's account, with the same credentials and endpoint), counts its calls into the
//! operator's one [`CallStats`] and sits behind the leader fence. Beside each client the pool
//! keeps the caller's per-target state `S` (the controllers' repository inventory), made afresh
//! with each new client, so that what was seen through an old client is never taken for the new.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;

use super::{CallStats, EcrRegistry};
use crate::api::registry_target::{DEFAULT_SESSION_NAME, RegistryTargetSpec};
use crate::leader::Fence;

/// Assumed credentials are renewed this long before they expire (the SDK's default is 10 s,
/// which a slow STS can miss).
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// What a target's client is built from: the parts of the spec that reach the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    region: String,
    endpoint_url: Option<String>,
    role: Option<(String, Option<String>, String)>,
}

impl Key {
    fn of(spec: &RegistryTargetSpec) -> Key {
        Key {
            region: spec.region.clone(),
            endpoint_url: spec.endpoint_url.clone(),
            role: spec.assume_role.as_ref().map(|r| {
                let session = r.session_name.as_deref().unwrap_or(DEFAULT_SESSION_NAME);
                (
                    r.role_arn.clone(),
                    r.external_id.clone(),
                    session.to_string(),
                )
            }),
        }
    }
}

/// One target's client and the caller's state for it.
#[derive(Debug)]
pub struct TargetClient<S> {
    pub registry: Arc<EcrRegistry>,
    pub state: S,
}

#[derive(Debug)]
struct Entry<S> {
    key: Key,
    client: Arc<TargetClient<S>>,
    /// When a caller last asked for this client.
    used: std::time::Instant,
}

/// The clients of the RegistryTargets in use, by target name.
#[derive(Debug)]
pub struct TargetPool<S> {
    /// The operator's own AWS configuration; `None` where the operator runs without one (a
    /// registry handed in by a test): then no target can be reached.
    base: Option<SdkConfig>,
    stats: Arc<CallStats>,
    fence: Option<Fence>,
    clients: Mutex<HashMap<String, Entry<S>>>,
}

/// Why a target has no client.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Permanent until the operator is started with an AWS configuration.
    #[error("the operator has no AWS configuration to reach registry targets with")]
    Unconfigured,
}

impl<S: Default> TargetPool<S> {
    /// Clients built from `base`, counting calls into `stats`.
    pub fn new(base: SdkConfig, stats: Arc<CallStats>) -> Self {
        TargetPool {
            base: Some(with_clock(base)),
            stats,
            fence: None,
            clients: Mutex::default(),
        }
    }

    /// A pool that reaches no target (see [`TargetError::Unconfigured`]).
    pub fn unconfigured() -> Self {
        TargetPool {
            base: None,
            stats: Arc::default(),
            fence: None,
            clients: Mutex::default(),
        }
    }

    /// Every client refuses writes while `fence` is shut (see [`crate::leader`]).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// The client of target `name` as `spec` says: the pooled one, or a new one when there is
    /// none or the spec changed how the registry is reached (its inventory starts empty then).
    pub async fn client(
        &self,
        name: &str,
        spec: &RegistryTargetSpec,
    ) -> Result<Arc<TargetClient<S>>, TargetError> {
        let key = Key::of(spec);
        if let Some(entry) = self.lock().get_mut(name).filter(|e| e.key == key) {
            entry.used = std::time::Instant::now();
            return Ok(entry.client.clone());
        }
        let base = self.base.as_ref().ok_or(TargetError::Unconfigured)?;
        let registry = build(base, &key, self.stats.clone(), self.fence.clone()).await;
        let client = Arc::new(TargetClient {
            registry: Arc::new(registry),
            state: S::default(),
        });
        let mut clients = self.lock();
        // Another reconcile may have built one meanwhile: the first stays, so that every
        // object of the target shares one state.
        let entry = clients
            .entry(name.to_string())
            .and_modify(|e| {
                if e.key != key {
                    *e = Entry {
                        key: key.clone(),
                        client: client.clone(),
                        used: std::time::Instant::now(),
                    };
                }
            })
            .or_insert(Entry {
                key,
                client,
                used: std::time::Instant::now(),
            });
        Ok(entry.client.clone())
    }

    /// The pooled client of `name`, without building one.
    pub fn get(&self, name: &str) -> Option<Arc<TargetClient<S>>> {
        self.lock().get(name).map(|e| e.client.clone())
    }

    /// The names of the pooled targets.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Drops the clients of the targets `keep` says no object uses; returns how many went.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> usize {
        self.retain_used(keep, Duration::ZERO)
    }

    /// Drops the clients `keep` says no and no caller asked for within `idle`: a target that
    /// only some kinds' objects (or the webhook) use keeps its client, and its credentials,
    /// between their calls; one nothing uses any more goes. Returns how many went.
    pub fn retain_used(&self, keep: impl Fn(&str) -> bool, idle: Duration) -> usize {
        let mut clients = self.lock();
        let before = clients.len();
        clients.retain(|name, e| keep(name) || e.used.elapsed() < idle);
        before - clients.len()
    }

    /// Drops one target's client (the target was deleted, or changed).
    pub fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<S>>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still whole.
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `base` with a clock and a sleep: what `aws_config::load` gives and a configuration built by
/// hand may lack. The STS provider panics without a clock, and retries need a sleep.
fn with_clock(base: SdkConfig) -> SdkConfig {
    let mut conf = base.to_builder();
    if base.time_source().is_none() {
        conf.set_time_source(Some(aws_smithy_async::time::SharedTimeSource::new(
            aws_smithy_async::time::SystemTimeSource::new(),
        )));
    }
    if base.sleep_impl().is_none() {
        conf.set_sleep_impl(Some(aws_smithy_async::rt::sleep::SharedAsyncSleep::new(
            aws_smithy_async::rt::sleep::TokioSleep::new(),
        )));
    }
    conf.build()
}

/// The client of one target: the base configuration in the target's region and endpoint, with
/// the assumed role's credentials (STS called at the base configuration's STS endpoint, with
/// the operator's own credentials) when the target names a role.
async fn build(
    base: &SdkConfig,
    key: &Key,
    stats: Arc<CallStats>,
    fence: Option<Fence>,
) -> EcrRegistry {
    let region = aws_config::Region::new(key.region.clone());
    let mut conf = base.to_builder();
    conf.set_region(Some(region.clone()));
    if let Some(endpoint) = &key.endpoint_url {
        conf.set_endpoint_url(Some(endpoint.clone()));
    }
    if let Some((role_arn, external_id, session)) = &key.role {
        let mut assume = AssumeRoleProvider::builder(role_arn.clone())
            .configure(base)
            .region(region)
            .session_name(session.clone());
        if let Some(id) = external_id {
            assume = assume.external_id(id.clone());
        }
        let provider = assume.build().await;
        conf.set_credentials_provider(Some(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        ));
        conf.set_identity_cache(Some(
            aws_config::identity::IdentityCache::lazy()
                .buffer_time(REFRESH_BEFORE_EXPIRY)
                .build(),
        ));
    }
    let registry = EcrRegistry::from_sdk_config(&conf.build()).with_stats(stats);
    match fence {
        Some(fence) => registry.with_fence(fence),
        None => registry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry_target::AssumeRole;

    fn base() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("a", "b", None, None, "test"),
                ),
            )
            .build()
    }

    fn spec(region: &str, role: Option<&str>) -> RegistryTargetSpec {
        RegistryTargetSpec {
            registry_id: "222222222222".into(),
            region: region.into(),
            assume_role: role.map(|arn| AssumeRole {
                role_arn: arn.into(),
                external_id: Some("ext".into()),
                session_name: None,
            }),
            endpoint_url: None,
        }
    }

    /// One client per target, shared until the spec changes how the registry is reached; its
    /// state goes with it; unused targets are dropped.
    #[tokio::test]
    async fn clients_are_shared_rebuilt_on_change_and_dropped() {
        let pool: TargetPool<Arc<std::sync::atomic::AtomicU32>> =
            TargetPool::new(base(), Arc::default());
        let role = Some("arn:aws:iam::222222222222:role/r");
        let a = pool.client("a", &spec("eu-west-1", role)).await.unwrap();
        a.state.store(7, std::sync::atomic::Ordering::Relaxed);
        let again = pool.client("a", &spec("eu-west-1", role)).await.unwrap();
        assert!(Arc::ptr_eq(&a, &again), "one client per target");
        assert_eq!(a.registry.region().as_deref(), Some("eu-west-1"));
        // A new role is a new client, with fresh state.
        let other = Some("arn:aws:iam::222222222222:role/other");
        let b = pool.client("a", &spec("eu-west-1", other)).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(b.state.load(std::sync::atomic::Ordering::Relaxed), 0);
        pool.client("c", &spec("us-west-2", None)).await.unwrap();
        assert_eq!(pool.names(), ["a", "c"]);
        // Used a moment ago: kept by an idle period, dropped without one.
        assert_eq!(
            pool.retain_used(|name| name == "c", Duration::from_secs(600)),
            0
        );
        assert_eq!(pool.names(), ["a", "c"]);
        assert_eq!(pool.retain(|name| name == "c"), 1);
        assert_eq!(pool.names(), ["c"]);
        assert!(pool.get("a").is_none());
    }

    /// A role that cannot be assumed fails the call as Credentials (what the target reports as
    /// AssumeRoleFailed), before anything is sent to ECR; without a role the same dead endpoint
    /// is a transient failure. Nothing listens on port 1.
    #[tokio::test]
    async fn a_role_that_cannot_be_assumed_is_a_credentials_failure() {
        let dead = base()
            .into_builder()
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let pool: TargetPool<()> = TargetPool::new(dead, Arc::default());
        let role = Some("arn:aws:iam::222222222222:role/r");
        let with_role = pool.client("a", &spec("eu-west-1", role)).await.unwrap();
        let err = with_role.registry.registry_id().await.unwrap_err();
        assert_eq!(err.class, super::super::ErrorClass::Credentials, "{err}");
        let own = pool.client("b", &spec("eu-west-1", None)).await.unwrap();
        let err = own.registry.registry_id().await.unwrap_err();
        assert_eq!(err.class, super::super::ErrorClass::Transient, "{err}");
    }

    /// Answers one HTTP request with an empty DescribeRepositories and returns its head.
    async fn answer_one(listener: tokio::net::TcpListener) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            head.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"repositories":[]}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&head).to_lowercase()
    }

    /// A target's registry has ECR Public too, as the own registry has: at the target's
    /// endpoint override, signed for us-east-1 whatever the target's region (ECR Public answers
    /// nowhere else), with the target's assumed-role credentials, counted in the pool's stats and
    /// behind its fence.
    #[tokio::test]
    async fn a_target_reaches_ecr_public_in_us_east_1_as_the_target() {
        use super::super::{ErrorClass, NewPublicRepository, Registry};
        let dead = base()
            .into_builder()
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let stats = Arc::new(CallStats::default());
        let pool: TargetPool<()> =
            TargetPool::new(dead, stats.clone()).with_fence(crate::leader::Fence::shut());

        // The endpoint override is the target's, the signing region us-east-1.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut plain = spec("eu-west-1", None);
        plain.endpoint_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        let server = tokio::spawn(answer_one(listener));
        let c = pool.client("c", &plain).await.unwrap();
        assert_eq!(c.registry.region().as_deref(), Some("eu-west-1"));
        assert_eq!(c.registry.public_region().as_deref(), Some("us-east-1"));
        let public = c.registry.ecr_public().expect("an ECR Public client");
        assert_eq!(
            public.describe_public_repository("app").await.unwrap(),
            None
        );
        let head = server.await.unwrap();
        assert!(
            head.contains("/us-east-1/ecr-public/aws4_request"),
            "{head}"
        );
        assert!(
            head.contains("spencerfrontendservice.describerepositories"),
            "{head}"
        );

        // With a role, calls go as the assumed role: STS is unreachable, so Credentials (the
        // base's own credentials would have reached the dead endpoint: Transient).
        let role = Some("arn:aws:iam::222222222222:role/r");
        let b = pool.client("b", &spec("eu-west-1", role)).await.unwrap();
        assert_eq!(b.registry.public_region().as_deref(), Some("us-east-1"));
        let public = b.registry.ecr_public().expect("an ECR Public client");
        let err = public.describe_public_repository("app").await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Credentials, "{err}");
        // A write is refused by the shut fence before anything is sent.
        let input = NewPublicRepository {
            name: "app".into(),
            catalog: None,
            logo: None,
            tags: Default::default(),
        };
        let err = public.create_public_repository(&input).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Fenced, "{err}");
        // Every one counted in the pool's stats.
        assert_eq!(stats.operation("ecr-public:DescribeRepositories"), 2);
        assert_eq!(stats.operation("ecr-public:CreateRepository"), 1);
    }

    #[tokio::test]
    async fn an_unconfigured_pool_reaches_nothing() {
        let pool: TargetPool<()> = TargetPool::unconfigured();
        let err = pool
            .client("a", &spec("eu-west-1", None))
            .await
            .unwrap_err();
        assert!(matches!(err, TargetError::Unconfigured));
        assert!(pool.names().is_empty());
    }
}
