//! Which of several objects naming the same ECR resource holds it: the oldest (by creation
//! time, then namespace/name), so the answer is the same on every replica and every reconcile.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::Event;

use super::object_key;

/// When the API server created `obj`.
pub fn created<K: Resource>(obj: &K) -> Option<Timestamp> {
    obj.meta().creation_timestamp.as_ref().map(|t| t.0)
}

/// Creation time then namespace/name: the stable order in which objects that share an ECR
/// resource are ranked (older first).
pub fn age_key<K: Resource>(obj: &K) -> (Option<Timestamp>, String) {
    (created(obj), object_key(obj))
}

/// The other live objects of `store` that `same_target` says name what `obj` names and that
/// came before it: `obj` conflicts with them.
///
/// Runs on every reconcile, so the store is filtered in place and only the (rare) objects
/// naming the same target are copied and ranked: with 10 000 objects, a copy of the whole
/// store and two strings per object on each reconcile cost seconds of CPU per sweep.
pub fn older_claimants<K>(
    store: &Store<K>,
    obj: &K,
    same_target: impl Fn(&K) -> bool,
) -> Vec<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let uid = obj.meta().uid.as_deref();
    let candidates = store.state_filter(|o| {
        o.meta().uid.as_deref() != uid && o.meta().deletion_timestamp.is_none() && same_target(o)
    });
    if candidates.is_empty() {
        return candidates;
    }
    let mine = age_key(obj);
    candidates
        .into_iter()
        .filter(|o| age_key(o.as_ref()) < mine)
        .collect()
}

/// The hash of what an object names (its ECR target), or of its uid.
fn hashed(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// How many objects name each target, kept from the watch events (before the store applies
/// them), so that [`older_claimants`]' scan of the whole store runs only where another object
/// may name the same target: on every reconcile, that scan makes a resync O(n²), minutes at
/// 100,000 objects. Targets and uids are kept as 64-bit hashes (16 bytes an object); a
/// collision can only cause a needless scan, never a missed one.
pub struct TargetCounts<K> {
    target_of: Box<dyn Fn(&K) -> u64 + Send + Sync>,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    /// Target hash → objects naming it.
    by_target: HashMap<u64, u32>,
    /// Uid hash → the target hash it was counted under.
    of_object: HashMap<u64, u64>,
    /// A re-list in progress: what it has listed so far.
    relisting: Option<HashMap<u64, u64>>,
}

impl Counts {
    fn uncount(&mut self, target: u64) {
        if let Some(n) = self.by_target.get_mut(&target) {
            *n -= 1;
            if *n == 0 {
                self.by_target.remove(&target);
            }
        }
    }

    fn set(&mut self, uid: u64, target: u64) {
        match self.of_object.insert(uid, target) {
            Some(old) if old == target => return,
            Some(old) => self.uncount(old),
            None => {}
        }
        *self.by_target.entry(target).or_default() += 1;
    }

    fn remove(&mut self, uid: u64) {
        if let Some(old) = self.of_object.remove(&uid) {
            self.uncount(old);
        }
    }

    fn replace_all(&mut self, listed: HashMap<u64, u64>) {
        self.by_target.clear();
        for target in listed.values() {
            *self.by_target.entry(*target).or_default() += 1;
        }
        self.of_object = listed;
    }
}

impl<K: Resource> TargetCounts<K> {
    /// Counts keyed by `target`: a value two objects share exactly when they name the same
    /// ECR resource.
    pub fn new<T: Hash>(target: impl Fn(&K) -> T + Send + Sync + 'static) -> Self {
        TargetCounts {
            target_of: Box::new(move |k| hashed(target(k))),
            state: Mutex::new(Counts::default()),
        }
    }

    fn uid(obj: &K) -> u64 {
        hashed(obj.meta().uid.as_deref().unwrap_or_default())
    }

    /// Takes in one watch event, before the store does.
    pub fn observe(&self, event: &Event<K>) {
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Apply(o) => counts.set(Self::uid(o), (self.target_of)(o)),
            Event::Delete(o) => counts.remove(Self::uid(o)),
            Event::Init => counts.relisting = Some(HashMap::new()),
            Event::InitApply(o) => {
                let (uid, target) = (Self::uid(o), (self.target_of)(o));
                counts.relisting.get_or_insert_default().insert(uid, target);
            }
            Event::InitDone => {
                let listed = counts.relisting.take().unwrap_or_default();
                counts.replace_all(listed);
            }
        }
    }

    /// Whether an object other than `obj` may name what `obj` names (always, for an object
    /// not counted yet).
    pub fn may_be_shared(&self, obj: &K) -> bool {
        let counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let target = (self.target_of)(obj);
        match counts.of_object.get(&Self::uid(obj)) {
            Some(counted) if *counted == target => counts.by_target.get(&target) > Some(&1),
            _ => true,
        }
    }
}

#[cfg(test)]
mod target_counts_tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    /// A ConfigMap naming `target` in its data, as a Repository names its ECR repository.
    fn cm(uid: &str, target: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(uid.to_string());
        cm.metadata.uid = Some(uid.to_string());
        cm.data = Some([("target".to_string(), target.to_string())].into());
        cm
    }

    fn counts() -> TargetCounts<ConfigMap> {
        TargetCounts::new(|c: &ConfigMap| c.data.as_ref().and_then(|d| d.get("target").cloned()))
    }

    #[test]
    fn shared_only_while_two_objects_name_the_same_target() {
        let counts = counts();
        let (a, b) = (cm("a", "x"), cm("b", "x"));
        assert!(counts.may_be_shared(&a), "not counted yet: assume shared");
        counts.observe(&Event::Apply(a.clone()));
        assert!(!counts.may_be_shared(&a));
        counts.observe(&Event::Apply(b.clone()));
        assert!(counts.may_be_shared(&a) && counts.may_be_shared(&b));
        // b moves to another target: neither is shared; twice the same event changes nothing.
        counts.observe(&Event::Apply(cm("b", "y")));
        counts.observe(&Event::Apply(cm("b", "y")));
        assert!(!counts.may_be_shared(&a) && !counts.may_be_shared(&cm("b", "y")));
        // The object as the reconcile sees it names another target than counted: assume shared.
        assert!(counts.may_be_shared(&b));
        counts.observe(&Event::Apply(cm("b", "x")));
        counts.observe(&Event::Delete(cm("b", "x")));
        assert!(!counts.may_be_shared(&a));
        counts.observe(&Event::Delete(a.clone()));
        assert!(counts.may_be_shared(&a), "deleted: no longer counted");
    }

    #[test]
    fn a_relist_replaces_every_count() {
        let counts = counts();
        counts.observe(&Event::Apply(cm("a", "x")));
        counts.observe(&Event::Apply(cm("b", "x")));
        counts.observe(&Event::Init);
        counts.observe(&Event::InitApply(cm("a", "x")));
        counts.observe(&Event::InitApply(cm("c", "z")));
        // Until the relist is done, the old counts answer.
        assert!(counts.may_be_shared(&cm("a", "x")));
        counts.observe(&Event::InitDone);
        assert!(
            !counts.may_be_shared(&cm("a", "x")),
            "b was gone from the relist"
        );
        assert!(!counts.may_be_shared(&cm("c", "z")));
        assert!(
            counts.may_be_shared(&cm("b", "x")),
            "b is not counted any more"
        );
        counts.observe(&Event::Apply(cm("d", "z")));
        assert!(counts.may_be_shared(&cm("c", "z")));
    }
}
