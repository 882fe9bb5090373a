//! Resolving an ECR tag to its digest when the report cache does not know the tag.
//!
//! The operator implements [`DigestResolver`] with ECR (`DescribeImages` by tag); the webhook
//! calls it through [`CachedResolver`], which bounds every call by a deadline and remembers the
//! answers (found and not found) for a while, so a burst of pods with one image costs one ECR
//! call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::image::EcrImage;

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

/// Resolves tags with the operator's own ECR client (DescribeImages by tag).
pub struct RegistryResolver(pub Arc<dyn crate::registry::Registry>);

#[async_trait]
impl DigestResolver for RegistryResolver {
    async fn resolve(
        &self,
        account: &str,
        _region: &str,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, ResolveError> {
        self.0
            .image_digest(Some(account), repository, tag)
            .await
            .map_err(|e| ResolveError::Registry(e.to_string()))
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
