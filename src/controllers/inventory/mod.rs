//! A shared, batch-read view of the registry's repositories.
//!
//! One DescribeRepositories sweep (pages of 1000) serves every Repository reconcile, so a
//! resync of N unchanged objects costs ceil(N/1000) calls instead of N. The operator's own
//! writes update the view at once (write-through), and a sweep never overwrites an entry
//! written after the sweep started, nor forgets a repository created moments ago that ECR's
//! eventually consistent DescribeRepositories does not list yet.

mod compact;

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::registry::RepositoryInfo;
use compact::{Compact, Profiles};

/// What the inventory knows about one repository name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No sweep has completed yet.
    Unknown,
    Absent,
    /// Boxed: a repository's description is large next to the other variants.
    Present(Box<RepositoryInfo>),
}

#[derive(Debug)]
struct Entry {
    /// 40 bytes: a pointer to the shared profile, the creation time and a flag.
    info: Option<Compact>,
    written_at: Instant,
    /// Set when the operator itself wrote the entry (create, update, delete).
    local: bool,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    profiles: Profiles,
    swept: bool,
}

#[derive(Debug)]
pub struct Inventory {
    state: RwLock<State>,
    /// How long a repository the operator created is trusted to exist although a sweep did not
    /// list it (ECR's read-after-create lag).
    consistency_grace: Duration,
    /// Completed sweeps: a cheap signal for benchmarks and tests that wait for the next one.
    sweeps: AtomicU64,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory::new(Duration::from_secs(30))
    }
}

impl Inventory {
    pub fn new(consistency_grace: Duration) -> Self {
        Inventory {
            state: RwLock::default(),
            consistency_grace,
            sweeps: AtomicU64::new(0),
        }
    }

    /// How many sweeps have been applied since start.
    pub fn sweeps(&self) -> u64 {
        self.sweeps.load(Ordering::Acquire)
    }

    pub fn lookup(&self, name: &str) -> Lookup {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        match state.entries.get(name) {
            Some(Entry { info: Some(i), .. }) => Lookup::Present(Box::new(i.expand(name))),
            Some(Entry { info: None, .. }) => Lookup::Absent,
            None if state.swept => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    /// Forgets everything, until the next sweep: what this replica saw before (while another
    /// replica led and wrote) is no basis for decisions.
    pub fn forget_all(&self) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = State::default();
    }

    pub fn is_synced(&self) -> bool {
        self.state.read().unwrap_or_else(|e| e.into_inner()).swept
    }

    /// Records the operator's own write: the repository now looks like `info` (or is gone).
    pub fn record(&self, name: &str, info: Option<RepositoryInfo>) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let info = info.map(|i| state.profiles.compact(i));
        state.entries.insert(
            name.to_string(),
            Entry {
                info,
                written_at: Instant::now(),
                local: true,
            },
        );
    }

    /// Applies a full sweep that started at `started`, in place: the listed repositories are
    /// moved into the map one by one (at 100,000 a second map of them, built first, was the
    /// largest part of the operator's peak memory).
    pub fn apply_sweep(&self, started: Instant, repositories: Vec<RepositoryInfo>) {
        let now = Instant::now();
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        let missing = repositories.len().saturating_sub(state.entries.len());
        state.entries.reserve(missing);
        for info in repositories {
            if let Some(entry) = state.entries.get_mut(&info.name) {
                // Our write is newer than what the sweep saw: it stays.
                if entry.written_at <= started {
                    *entry = Entry::listed(state.profiles.compact(info), started);
                }
            } else {
                let name = info.name.clone();
                let entry = Entry::listed(state.profiles.compact(info), started);
                state.entries.insert(name, entry);
            }
        }
        let grace = self.consistency_grace;
        state.entries.retain(|_, entry| {
            let listed = entry.written_at == started && !entry.local;
            // Not listed: keep a just-created repository through the consistency grace.
            let just_created =
                entry.local && entry.info.is_some() && now.duration_since(entry.written_at) < grace;
            listed || entry.written_at > started || just_created
        });
        state.swept = true;
        drop(guard);
        self.sweeps.fetch_add(1, Ordering::Release);
    }
}

impl Entry {
    /// An entry from the sweep that started at `started`: its `written_at` is that instant,
    /// which no earlier sweep had, so the sweep tells its own entries from older ones.
    fn listed(info: Compact, started: Instant) -> Entry {
        Entry {
            info: Some(info),
            written_at: started,
            local: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, mutability: &str) -> RepositoryInfo {
        RepositoryInfo {
            name: name.into(),
            arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{name}"),
            uri: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}"),
            registry_id: "123456789012".into(),
            created_at: None,
            tag_mutability: mutability.into(),
            tag_mutability_exclusions: Vec::new(),
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
        }
    }

    #[test]
    fn unknown_until_first_sweep() {
        let inv = Inventory::default();
        assert_eq!(inv.lookup("a"), Lookup::Unknown);
        inv.apply_sweep(Instant::now(), vec![repo("a", "MUTABLE")]);
        assert!(matches!(inv.lookup("a"), Lookup::Present(_)));
        assert_eq!(inv.lookup("b"), Lookup::Absent);
    }

    #[test]
    fn sweep_started_before_a_write_does_not_overwrite_it() {
        let inv = Inventory::default();
        let started = Instant::now();
        inv.record("a", Some(repo("a", "IMMUTABLE")));
        inv.apply_sweep(started, vec![repo("a", "MUTABLE")]);
        assert_eq!(
            inv.lookup("a"),
            Lookup::Present(Box::new(repo("a", "IMMUTABLE")))
        );
        // A later sweep sees the drift.
        inv.apply_sweep(Instant::now(), vec![repo("a", "MUTABLE")]);
        assert_eq!(
            inv.lookup("a"),
            Lookup::Present(Box::new(repo("a", "MUTABLE")))
        );
    }

    #[test]
    fn just_created_repository_survives_a_lagging_sweep() {
        let inv = Inventory::new(Duration::from_secs(30));
        inv.record("new", Some(repo("new", "MUTABLE")));
        inv.apply_sweep(Instant::now(), vec![]);
        assert!(matches!(inv.lookup("new"), Lookup::Present(_)));
        let inv = Inventory::new(Duration::ZERO);
        inv.record("new", Some(repo("new", "MUTABLE")));
        inv.apply_sweep(Instant::now(), vec![]);
        assert_eq!(inv.lookup("new"), Lookup::Absent);
    }

    #[test]
    fn repository_deleted_behind_our_back_disappears() {
        let inv = Inventory::default();
        inv.apply_sweep(Instant::now(), vec![repo("a", "MUTABLE")]);
        inv.apply_sweep(Instant::now(), vec![]);
        assert_eq!(inv.lookup("a"), Lookup::Absent);
    }

    #[test]
    fn a_delete_after_the_sweep_started_stays_deleted() {
        let inv = Inventory::default();
        inv.apply_sweep(
            Instant::now(),
            vec![repo("a", "MUTABLE"), repo("b", "MUTABLE")],
        );
        let started = Instant::now();
        inv.record("a", None);
        // The sweep read "a" before the delete, and "b" no more.
        inv.apply_sweep(started, vec![repo("a", "MUTABLE")]);
        assert_eq!(inv.lookup("a"), Lookup::Absent);
        assert_eq!(inv.lookup("b"), Lookup::Absent);
        // The next sweep, started after the delete, is believed.
        inv.apply_sweep(Instant::now(), vec![repo("a", "IMMUTABLE")]);
        assert_eq!(
            inv.lookup("a"),
            Lookup::Present(Box::new(repo("a", "IMMUTABLE")))
        );
    }

    #[test]
    fn each_sweep_replaces_what_the_last_one_listed() {
        let inv = Inventory::default();
        let names = |n: std::ops::Range<usize>| n.map(|i| repo(&format!("r{i}"), "MUTABLE"));
        inv.apply_sweep(Instant::now(), names(0..100).collect());
        inv.apply_sweep(Instant::now(), names(50..150).collect());
        let present = |i: usize| matches!(inv.lookup(&format!("r{i}")), Lookup::Present(_));
        assert!((0..50).all(|i| !present(i)), "dropped from the listing");
        assert!((50..150).all(present), "listed");
        assert_eq!(inv.sweeps(), 2);
    }
}
