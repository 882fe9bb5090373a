//! Resolving an ECR tag to its digest when the report cache does not know the tag.
//!
//! The operator implements [`DigestResolver`] with ECR (`DescribeImages` by tag); the webhook
//! calls it through [`CachedResolver`], which bounds every call by a deadline and remembers the
//! answers (found and not found) for a while, so a burst of pods with one image costs one ECR
//! call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::reflector::{self, ObjectRef, Store};

use super::cache::parsed_watch;
use crate::api::ScanPolicy;
use crate::api::conditions;
use crate::api::registry_target::RegistryTarget;
use crate::controllers::Targets;
use crate::image::EcrImage;
use crate::registry::Registry;

/// Why a tag could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The registry could not answer (throttled, unreachable, denied, …).
    #[error("{0}")]
    Registry(String),
    /// The call did not finish within the resolver deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Looks up the digest an ECR tag points at.
#[async_trait]
pub trait DigestResolver: Send + Sync {
    /// The digest `tag` of `repository` in registry `account` (region `region`) points at, or
    /// `None` when the tag (or the repository) does not exist.
    async fn resolve(
        &self,
        account: &str,
        region: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, ResolveError>;
}

type Key = (String, String, String, String);

/// A [`DigestResolver`] wrapped with a deadline and a cache of answers.
pub struct CachedResolver {
    inner: Arc<dyn DigestResolver>,
    timeout: Duration,
    found_ttl: Duration,
    missing_ttl: Duration,
    answers: Mutex<HashMap<Key, (Instant, Option<String>)>>,
}

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

impl CachedResolver {
    /// Wraps `inner`: each call is bounded by `timeout`; a found digest is remembered for
    /// `found_ttl`, a missing tag for `missing_ttl`. Errors are not remembered.
    pub fn new(
        inner: Arc<dyn DigestResolver>,
        timeout: Duration,
        found_ttl: Duration,
        missing_ttl: Duration,
    ) -> Self {
        Self {
            inner,
            timeout,
            found_ttl,
            missing_ttl,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// The remembered answer for `image`'s tag, if fresh: `Some(answer)`.
    pub fn cached(&self, image: &EcrImage) -> Option<Option<String>> {
        let key = key(image)?;
        let answers = self.answers.lock().ok()?;
        let (at, answer) = answers.get(&key)?;
        let ttl = if answer.is_some() {
            self.found_ttl
        } else {
            self.missing_ttl
        };
        (at.elapsed() < ttl).then(|| answer.clone())
    }

    /// The digest `image`'s tag points at: from the cache, else from the resolver within the
    /// deadline. Images without a tag, or with a digest already, resolve to `None`.
    pub async fn resolve(&self, image: &EcrImage) -> Result<Option<String>, ResolveError> {
        if image.digest.is_some() {
            return Ok(None);
        }
        let Some(key) = key(image) else {
            return Ok(None);
        };
        if let Some(answer) = self.cached(image) {
            return Ok(answer);
        }
        let call = self.inner.resolve(&key.0, &key.1, &key.2, &key.3);
        let answer = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ResolveError::Timeout(self.timeout))??;
        if let Ok(mut answers) = self.answers.lock() {
            if answers.len() >= SWEEP_AT {
                let (found, missing) = (self.found_ttl, self.missing_ttl);
                answers
                    .retain(|_, (at, a)| at.elapsed() < if a.is_some() { found } else { missing });
            }
            answers.insert(key, (Instant::now(), answer.clone()));
        }
        Ok(answer)
    }
}

fn key(image: &EcrImage) -> Option<Key> {
    Some((
        image.account.clone(),
        image.region.clone(),
        image.repository.clone(),
        image.tag.clone()?,
    ))
}

/// Which client looks up a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The operator's own.
    Own,
    /// The client of the Ready RegistryTarget of this name.
    Target(String),
    /// No registry the operator reaches: nothing is called, and the image is judged on its
    /// reports by tag (there are none: unscanned).
    Unknown,
}

/// The registries the operator reaches, as tag lookups are routed to them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registries {
    /// The own registry's account; `None` when it could not be learned: then the own client
    /// answers for any account (in its region), as cross-account reads through it did.
    pub own_account: Option<String>,
    /// The own client's region; `None` when not told: then it answers for any region.
    pub own_region: Option<String>,
    /// The accounts ScanPolicies of the own registry name in `registryIds`: read through the
    /// own client, as the report refresh reads them.
    pub told: BTreeSet<String>,
    /// The Ready RegistryTargets by (account, region).
    pub targets: BTreeMap<(String, String), String>,
}

impl Registries {
    /// Where a tag of an image in `account` and `region` is looked up.
    pub fn route(&self, account: &str, region: &str) -> Route {
        if let Some(name) = self.targets.get(&(account.to_string(), region.to_string())) {
            return Route::Target(name.clone());
        }
        let own_region = self.own_region.as_deref().is_none_or(|r| r == region);
        let own_account =
            self.own_account.as_deref().is_none_or(|a| a == account) || self.told.contains(account);
        if own_region && own_account {
            Route::Own
        } else {
            Route::Unknown
        }
    }
}

/// Resolves tags with ECR (DescribeImages by tag): through the own client, or the client of
/// the Ready RegistryTarget of the image's account and region; a tag of any other registry is
/// not looked up.
pub struct RegistryResolver {
    own: Arc<dyn Registry>,
    own_account: Option<String>,
    own_region: Option<String>,
    reach: Option<TargetReach>,
    /// The watches of `reach`, stopped with the resolver.
    _watches: tokio::task::JoinSet<()>,
}

/// What routing to targets needs: the RegistryTargets and ScanPolicies as watched, and the
/// pool of target clients the controllers share.
struct TargetReach {
    targets: Store<RegistryTarget>,
    policies: Store<ScanPolicy>,
    pool: Arc<Targets>,
}

impl RegistryResolver {
    /// Every tag through `own`, whatever its account and region.
    pub fn new(own: Arc<dyn Registry>) -> Self {
        RegistryResolver {
            own,
            own_account: None,
            own_region: None,
            reach: None,
            _watches: tokio::task::JoinSet::new(),
        }
    }

    /// The own client answers for `account` in `region` only (each `None`: any).
    pub fn with_own_registry(mut self, account: Option<String>, region: Option<String>) -> Self {
        self.own_account = account;
        self.own_region = region;
        self
    }

    /// Routes tags of Ready RegistryTargets' registries to their clients in `pool`, and reads
    /// `registryIds` of the own registry's ScanPolicies (both watched in `scope`).
    pub fn with_targets(
        mut self,
        client: &kube::Client,
        scope: &crate::scope::WatchScope,
        pool: Arc<Targets>,
    ) -> Self {
        let tasks = &mut self._watches;
        let (targets, writer) = reflector::store::<RegistryTarget>();
        let events = parsed_watch(client.clone(), scope.watcher_config());
        tasks.spawn(reflector::reflector(writer, events).for_each(|_| async {}));
        let (policies, writer) = reflector::store::<ScanPolicy>();
        let events = parsed_watch(client.clone(), scope.watcher_config());
        tasks.spawn(reflector::reflector(writer, events).for_each(|_| async {}));
        self.reach = Some(TargetReach {
            targets,
            policies,
            pool,
        });
        self
    }

    /// The registries as the watches show them now.
    pub fn registries(&self) -> Registries {
        let mut registries = Registries {
            own_account: self.own_account.clone(),
            own_region: self.own_region.clone(),
            ..Registries::default()
        };
        let Some(reach) = &self.reach else {
            return registries;
        };
        for p in reach.policies.state() {
            if p.spec.registry_ref.is_none() {
                registries.told.extend(p.spec.registry_ids.iter().cloned());
            }
        }
        for t in reach.targets.state() {
            let conditions = t.status.as_ref().map(|s| s.common.conditions.as_slice());
            if conditions::is_ready_at(conditions.unwrap_or_default(), t.metadata.generation) {
                let key = (t.spec.registry_id.clone(), t.spec.region.clone());
                registries.targets.insert(key, t.name_any());
            }
        }
        registries
    }
}

#[async_trait]
impl DigestResolver for RegistryResolver {
    async fn resolve(
        &self,
        account: &str,
        region: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, ResolveError> {
        let failed = |e: &dyn std::fmt::Display| ResolveError::Registry(e.to_string());
        let registry = match self.registries().route(account, region) {
            Route::Own => self.own.clone(),
            Route::Unknown => return Ok(None),
            Route::Target(name) => {
                let reach = self
                    .reach
                    .as_ref()
                    .ok_or_else(|| failed(&"no target pool"))?;
                let target = reach.targets.get(&ObjectRef::new(&name));
                let target =
                    target.ok_or_else(|| failed(&format!("RegistryTarget {name} is gone")))?;
                let client = reach.pool.client(&name, &target.spec).await;
                let client = client.map_err(|e| failed(&format!("RegistryTarget {name}: {e}")))?;
                client.registry.clone()
            }
        };
        registry
            .image_digest(Some(account), repository, tag)
            .await
            .map_err(|e| failed(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting {
        calls: AtomicU32,
        delay: Duration,
    }

    #[async_trait]
    impl DigestResolver for Counting {
        async fn resolve(
            &self,
            _: &str,
            _: &str,
            _: &str,
            tag: &str,
        ) -> Result<Option<String>, ResolveError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok((tag != "missing").then(|| format!("sha256:{tag}")))
        }
    }

    fn image(tag: &str) -> EcrImage {
        let r = crate::image::ImageRef::parse(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:{tag}"
        ))
        .unwrap();
        r.ecr().unwrap()
    }

    #[test]
    fn tags_are_looked_up_in_the_registry_that_holds_them_and_nowhere_else() {
        let (own, told, b, unknown) = (
            "111111111111",
            "333333333333",
            "222222222222",
            "999999999999",
        );
        let registries = Registries {
            own_account: Some(own.into()),
            own_region: Some("us-east-1".into()),
            told: BTreeSet::from([told.to_string()]),
            targets: BTreeMap::from([
                ((b.to_string(), "eu-west-1".to_string()), "b-eu".to_string()),
                // A target of the own account in another region.
                (
                    (own.to_string(), "us-west-2".to_string()),
                    "own-west".to_string(),
                ),
            ]),
        };
        let target = |n: &str| Route::Target(n.to_string());
        for (account, region, expected) in [
            (own, "us-east-1", Route::Own),
            (told, "us-east-1", Route::Own),
            (b, "eu-west-1", target("b-eu")),
            (own, "us-west-2", target("own-west")),
            // B in a region no target names; the own account in a region its client is not in.
            (b, "us-east-1", Route::Unknown),
            (own, "ap-south-1", Route::Unknown),
            (told, "eu-west-1", Route::Unknown),
            (unknown, "us-east-1", Route::Unknown),
        ] {
            assert_eq!(
                registries.route(account, region),
                expected,
                "{account} {region}"
            );
        }
        // Not told the own account or region: the own client answers for any (as before
        // targets), but a target's registry still goes to the target.
        let open = Registries {
            targets: registries.targets.clone(),
            ..Registries::default()
        };
        assert_eq!(open.route(unknown, "ap-south-1"), Route::Own);
        assert_eq!(open.route(b, "eu-west-1"), target("b-eu"));
    }

    #[tokio::test]
    async fn answers_are_cached_and_bounded() {
        let inner = Arc::new(Counting {
            calls: AtomicU32::new(0),
            delay: Duration::ZERO,
        });
        let r = CachedResolver::new(
            inner.clone(),
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert_eq!(
            r.resolve(&image("v1")).await.unwrap().as_deref(),
            Some("sha256:v1")
        );
        assert_eq!(
            r.resolve(&image("v1")).await.unwrap().as_deref(),
            Some("sha256:v1")
        );
        assert_eq!(r.resolve(&image("missing")).await.unwrap(), None);
        assert_eq!(r.resolve(&image("missing")).await.unwrap(), None);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);

        let slow = CachedResolver::new(
            Arc::new(Counting {
                calls: AtomicU32::new(0),
                delay: Duration::from_secs(5),
            }),
            Duration::from_millis(20),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert!(matches!(
            slow.resolve(&image("v1")).await,
            Err(ResolveError::Timeout(_))
        ));
    }
}
