//! What the Repository controller remembers about each object between reconciles, by uid, in one
//! map: when its tags and policy are next due, a conflict found by reading tags, the status this
//! process last wrote, and the repository it last saw carry this object's owner tag.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::watcher::Event;

use crate::api::repository::{Repository, RepositoryStatus};
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
    /// The identity (see [`Memory::identity`]) of the repository this process created for the
    /// object or saw carry its owner tag. Only this memory, never the status (which a tenant may
    /// be able to write), lets the deep sync put back an owner tag someone removed.
    verified: Option<u64>,
}

/// An object's uid as a key: the 16 bytes of the UUID the API server assigns (a string of 36
/// would take 48 bytes more an object), any other string as it is.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Uid {
    Uuid([u8; 16]),
    Other(Box<str>),
}

impl Uid {
    fn of(uid: &str) -> Uid {
        parse_uuid(uid).map_or_else(|| Uid::Other(uid.into()), Uid::Uuid)
    }
}

/// The bytes of a UUID in its canonical form, 8-4-4-4-12 hex digits (RFC 9562); `None` for
/// anything else, which `Uid` then keeps whole, so two different strings never share a key.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut digits = b.iter().filter(|&&c| c != b'-');
    let mut out = [0u8; 16];
    for byte in &mut out {
        let mut value = 0u8;
        for _ in 0..2 {
            let c = *digits.next()?;
            // Lower-case only: "A" and "a" are different uids, so only one spelling is packed.
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            value = value << 4 | d;
        }
        *byte = value;
    }
    digits.next().is_none().then_some(out)
}

/// Per-object memory of the Repository controller.
#[derive(Debug, Default)]
pub struct Memory {
    objects: Mutex<HashMap<Uid, ObjectMemory>>,
    /// Keys the identities: a digest instead of the ARN and time (8 bytes instead of ~180 an
    /// object), keyed by this process's random key so that no repository can be made to match
    /// another's.
    keys: RandomState,
}

impl Memory {
    /// The identity of a repository across a delete and re-create: ARN and creation time.
    fn identity(&self, info: &RepositoryInfo) -> u64 {
        self.keys.hash_one((info.arn.as_str(), info.created_at))
    }

    /// Shown every watch event before the store: a status this process wrote is forgotten as
    /// soon as the watch shows it, rather than at the object's next reconcile (a sweep later),
    /// so that it is not held twice for every object that just turned Ready.
    pub fn observe(&self, event: &Event<Repository>) {
        let (Event::Apply(repo) | Event::InitApply(repo)) = event else {
            return;
        };
        let (Some(uid), Some(stored)) = (repo.metadata.uid.as_deref(), repo.status.as_ref()) else {
            return;
        };
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = objects.get_mut(&Uid::of(uid)) {
            let shown = m.written.as_deref().is_some_and(|(generation, mine)| {
                *generation == repo.metadata.generation && caught_up(stored, mine)
            });
            if shown {
                m.written = None;
            }
        }
    }

    fn with<R>(&self, uid: &str, f: impl FnOnce(&mut ObjectMemory) -> R) -> R {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        f(objects.entry(Uid::of(uid)).or_default())
    }

    /// Forgets the object (it is gone).
    pub fn forget(&self, uid: &str) {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Uid::of(uid));
    }

    /// Our own newer status when the stored one lags it; forgets it once the store caught up.
    pub fn newer_than_stored(
        &self,
        uid: &str,
        generation: Option<i64>,
        stored: &RepositoryStatus,
    ) -> Option<RepositoryStatus> {
        self.with(uid, |m| match m.written.as_deref() {
            Some((g, mine)) if *g == generation && !caught_up(stored, mine) => Some(mine.clone()),
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
        let identity = self.identity(info);
        self.with(uid, |m| m.verified = Some(identity));
    }

    /// Whether this process created `info` for the object or saw it carry its owner tag.
    pub fn verified(&self, uid: &str, info: &RepositoryInfo) -> bool {
        let identity = self.identity(info);
        self.with(uid, |m| m.verified == Some(identity))
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

/// Whether the stored status is at least as far as the one this process wrote (timestamps may be
/// rounded on the way through the API server, so whole statuses are not compared).
fn caught_up(stored: &RepositoryStatus, mine: &RepositoryStatus) -> bool {
    stored.common.observed_generation == mine.common.observed_generation
        && stored.repository_arn == mine.repository_arn
        && stored.created_at == mine.created_at
        && stored.ownership == mine.ownership
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repository::{Ownership, RepositorySpec};

    fn info(arn: &str, created_secs: i64) -> RepositoryInfo {
        RepositoryInfo {
            name: "a".into(),
            arn: arn.to_string(),
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/a".into(),
            registry_id: "123456789012".into(),
            created_at: Some(k8s_openapi::jiff::Timestamp::from_second(created_secs).unwrap()),
            tag_mutability: "MUTABLE".into(),
            tag_mutability_exclusions: Vec::new(),
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
        }
    }

    fn status(generation: i64, arn: &str) -> RepositoryStatus {
        let mut s = RepositoryStatus {
            repository_arn: Some(arn.to_string()),
            created_at: Some("2026-12-05T00:00:00Z".into()),
            ownership: Some(Ownership::Created),
            ..Default::default()
        };
        s.common.observed_generation = Some(generation);
        s
    }

    fn seen(generation: i64, status: Option<RepositoryStatus>) -> Event<Repository> {
        let mut repo = Repository::new("a", RepositorySpec::default());
        repo.metadata.uid = Some("u1".into());
        repo.metadata.generation = Some(generation);
        repo.status = status;
        Event::Apply(repo)
    }

    fn written(memory: &Memory) -> bool {
        memory.with("u1", |m| m.written.is_some())
    }

    /// A written status is held while the watch shows an older one, and dropped at the event
    /// that shows it (not at the next reconcile).
    #[test]
    fn a_written_status_is_forgotten_when_the_watch_shows_it() {
        let memory = Memory::default();
        memory.remember_written("u1", Some(2), &status(2, "arn:a"));
        let cases = [
            ("no status yet", seen(2, None), true),
            (
                "the status before ours",
                seen(2, Some(status(1, "arn:a"))),
                true,
            ),
            (
                "another repository",
                seen(2, Some(status(2, "arn:b"))),
                true,
            ),
            (
                "a newer generation",
                seen(3, Some(status(2, "arn:a"))),
                true,
            ),
            ("ours", seen(2, Some(status(2, "arn:a"))), false),
        ];
        for (what, event, still_held) in cases {
            memory.observe(&event);
            assert_eq!(written(&memory), still_held, "{what}");
        }
        let stored = status(2, "arn:a");
        assert_eq!(memory.newer_than_stored("u1", Some(2), &stored), None);
    }

    /// Canonical UUIDs are packed; anything else is kept whole, so no two uids share a key.
    #[test]
    fn uids_are_packed_only_when_that_is_lossless() {
        let uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        assert_eq!(
            Uid::of(uuid),
            Uid::Uuid([
                0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2,
                0xe1, 0xf0
            ])
        );
        for other in [
            "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-",
            "0f1e2d3c-4b5a-6978-8796a-5b4c3d2e1f0",
            "u1",
            "",
        ] {
            assert_eq!(Uid::of(other), Uid::Other(other.into()), "{other}");
        }
        let memory = Memory::default();
        memory.remember_verified(uuid, &info("arn:a", 1));
        assert!(memory.verified(uuid, &info("arn:a", 1)));
        assert!(!memory.verified(&uuid.to_uppercase(), &info("arn:a", 1)));
    }

    /// Events of objects the controller has not reconciled add nothing to the memory.
    #[test]
    fn events_of_unknown_objects_are_not_remembered() {
        let memory = Memory::default();
        memory.observe(&seen(1, Some(status(1, "arn:a"))));
        assert!(memory.objects.lock().unwrap().is_empty());
    }

    /// The identity is the ARN and the creation time: the same name deleted and created again
    /// is another repository.
    #[test]
    fn verified_means_the_same_arn_and_creation_time() {
        let memory = Memory::default();
        memory.remember_verified("u1", &info("arn:a", 100));
        assert!(memory.verified("u1", &info("arn:a", 100)));
        assert!(!memory.verified("u1", &info("arn:a", 101)), "re-created");
        assert!(
            !memory.verified("u1", &info("arn:b", 100)),
            "another repository"
        );
        assert!(
            !memory.verified("u2", &info("arn:a", 100)),
            "another object"
        );
    }
}
