//! What the Repository controller remembers about each object between reconciles, by uid, in one
//! map: when its tags and policy are next due, a conflict found by reading tags, the status this
//! process last wrote, and the repository it last saw carry this object's owner tag.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::repository::RepositoryStatus;
use crate::controllers::status::recorded_time;
use crate::registry::RepositoryInfo;

/// A conflict found by reading tags, remembered until the object changes or its next deep
/// check, so a conflicting object costs no ECR call per sweep.
#[derive(Clone, Debug)]
pub struct KnownConflict {
    pub generation: Option<i64>,
    pub arn: String,
    pub until: Instant,
    pub message: String,
}

#[derive(Debug, Default)]
struct ObjectMemory {
    /// When this object's tags and policy are next checked; `None` until its first reconcile.
    deep_due: Option<Instant>,
    /// Boxed, as `written`: rare, and an entry is kept for every object.
    conflict: Option<Box<KnownConflict>>,
    /// The status this process last wrote and the generation it was for, kept only until the
    /// watch shows it: a reconcile from a store that lags our own write (a sweep's reconcile-all
    /// just after a create) would otherwise take the repository for one it does not own yet.
    written: Option<Box<(Option<i64>, RepositoryStatus)>>,
    /// The repository (ARN, creation time) this process created for the object or saw carry its
    /// owner tag. Only this memory, never the status (which a tenant may be able to write), lets
    /// the deep sync put back an owner tag someone removed.
    verified: Option<(String, Option<String>)>,
}

/// Per-object memory of the Repository controller.
#[derive(Debug, Default)]
pub struct Memory {
    objects: Mutex<HashMap<String, ObjectMemory>>,
}

/// The identity of a repository across a delete and re-create: ARN and creation time.
fn identity(info: &RepositoryInfo) -> (String, Option<String>) {
    (info.arn.clone(), recorded_time(info.created_at))
}

impl Memory {
    fn with<R>(&self, uid: &str, f: impl FnOnce(&mut ObjectMemory) -> R) -> R {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        match objects.get_mut(uid) {
            Some(memory) => f(memory),
            None => f(objects.entry(uid.to_string()).or_default()),
        }
    }

    /// Forgets the object (it is gone).
    pub fn forget(&self, uid: &str) {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    /// Our own newer status when the stored one lags it; forgets it once the store caught up.
    pub fn newer_than_stored(
        &self,
        uid: &str,
        generation: Option<i64>,
        stored: &RepositoryStatus,
    ) -> Option<RepositoryStatus> {
        // Caught up: the stored status is at least as far as ours (timestamps may be rounded on
        // the way through the API server, so whole statuses are not compared).
        let caught_up = |mine: &RepositoryStatus| {
            stored.common.observed_generation == mine.common.observed_generation
                && stored.repository_arn == mine.repository_arn
                && stored.created_at == mine.created_at
                && stored.ownership == mine.ownership
        };
        self.with(uid, |m| match m.written.as_deref() {
            Some((g, mine)) if *g == generation && !caught_up(mine) => Some(mine.clone()),
            Some(_) => {
                m.written = None;
                None
            }
            None => None,
        })
    }

    pub fn remember_written(&self, uid: &str, generation: Option<i64>, status: &RepositoryStatus) {
        self.with(uid, |m| {
            m.written = Some(Box::new((generation, status.clone())))
        });
    }

    pub fn remember_verified(&self, uid: &str, info: &RepositoryInfo) {
        self.with(uid, |m| m.verified = Some(identity(info)));
    }

    /// Whether this process created `info` for the object or saw it carry its owner tag.
    pub fn verified(&self, uid: &str, info: &RepositoryInfo) -> bool {
        self.with(uid, |m| m.verified.as_ref() == Some(&identity(info)))
    }

    /// The remembered conflict's message, while it still holds for this generation and
    /// repository.
    pub fn known_conflict(&self, uid: &str, generation: Option<i64>, arn: &str) -> Option<String> {
        self.with(uid, |m| {
            m.conflict
                .as_ref()
                .filter(|c| c.generation == generation && c.arn == arn && Instant::now() < c.until)
                .map(|c| c.message.clone())
        })
    }

    pub fn set_conflict(&self, uid: &str, conflict: Option<KnownConflict>) {
        self.with(uid, |m| m.conflict = conflict.map(Box::new));
    }

    /// (due now, first sight): whether the object's tag and policy check is due, and whether
    /// this is its first reconcile since start (no slot assigned yet).
    pub fn deep_due(&self, uid: &str) -> (bool, bool) {
        self.with(uid, |m| match m.deep_due {
            Some(at) => (Instant::now() >= at, false),
            None => (true, true),
        })
    }

    pub fn schedule_deep_check(&self, uid: &str, after: Duration) {
        self.with(uid, |m| m.deep_due = Some(Instant::now() + after));
    }

    /// Time until the next tag and policy check, between 100 ms and one `period`.
    pub fn until_deep_check(&self, uid: &str, period: Duration) -> Duration {
        self.with(uid, |m| {
            m.deep_due.map_or(period, |due| {
                due.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(100), period)
            })
        })
    }
}
