//! Waiting on conditions with deadlines, never on fixed sleeps.

use std::future::Future;
use std::time::Duration;

use crate::{Error, Result};

/// Polls `check` until it yields `Some`, or fails after `timeout`. Polling backs off from 20 ms
/// to 500 ms so fast conditions are seen at once and slow ones do not spin.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}
