//! Which watch events trigger a reconcile: those that change an object's [`trigger_hash`]
//! (spec, deletion, finalizers, annotations), not status writes, our own included.
//!
//! kube's `predicate_filter` does this with a cache keyed by each object's name, namespace and
//! uid as strings (~250 bytes an object with the hash table's room); this one keeps two 8-byte
//! digests an object, and forgets an object at its deletion and, after a re-list, every object
//! the re-list no longer shows.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use kube::Resource;
use kube::runtime::watcher::Event;

use super::trigger_hash;

/// The trigger hash last seen of every object, by a digest of its identity.
#[derive(Debug, Default)]
pub struct Triggers {
    seen: HashMap<u64, u64>,
    /// The objects of a re-list in progress (between `Init` and `InitDone`): replaces `seen`
    /// when it is done, so that objects deleted while the watch was away are forgotten.
    relisted: Option<HashMap<u64, u64>>,
    /// Keys the identity digests (a random key per process).
    keys: RandomState,
}

impl Triggers {
    /// The object `event` shows, when it is to be reconciled: applied, and its trigger hash is
    /// not the one last seen.
    pub fn changed<K: Resource>(&mut self, event: Event<K>) -> Option<K> {
        match event {
            Event::Init => {
                self.relisted = Some(HashMap::with_capacity(self.seen.len()));
                None
            }
            Event::InitApply(obj) => {
                let (identity, hash) = self.digests(&obj);
                let changed = self.seen.get(&identity) != Some(&hash);
                self.relisted.get_or_insert_default().insert(identity, hash);
                changed.then_some(obj)
            }
            Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    self.seen = relisted;
                }
                None
            }
            Event::Apply(obj) => {
                let (identity, hash) = self.digests(&obj);
                let changed = self.seen.insert(identity, hash) != Some(hash);
                changed.then_some(obj)
            }
            Event::Delete(obj) => {
                let (identity, _) = self.digests(&obj);
                self.seen.remove(&identity);
                None
            }
        }
    }

    /// (identity, trigger hash): the identity is namespace, name and uid, so that an object
    /// deleted and created again under the same name is a new one.
    fn digests<K: Resource>(&self, obj: &K) -> (u64, u64) {
        let meta = obj.meta();
        let identity = self.keys.hash_one((&meta.namespace, &meta.name, &meta.uid));
        (identity, trigger_hash(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn cm(name: &str, uid: &str, generation: i64) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team-a".into()),
                uid: Some(uid.into()),
                generation: Some(generation),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn with_status_change(mut obj: ConfigMap) -> ConfigMap {
        obj.metadata.resource_version = Some("2".into());
        obj.data = Some([("status".to_string(), "written".to_string())].into());
        obj
    }

    fn passes(t: &mut Triggers, event: Event<ConfigMap>) -> bool {
        t.changed(event).is_some()
    }

    /// (what, event, reconciled), in order on one watch.
    #[test]
    fn only_changes_of_the_trigger_hash_pass() {
        let mut t = Triggers::default();
        let mut finalized = cm("a", "u1", 1);
        finalized.metadata.finalizers = Some(vec!["ecr.operator.dev/cleanup".into()]);
        let mut deleting = finalized.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(1_764_892_800).unwrap(),
            ));
        let cases = [
            ("initial list", Event::InitApply(cm("a", "u1", 1)), true),
            ("list done", Event::InitDone, false),
            (
                "the same object again",
                Event::Apply(cm("a", "u1", 1)),
                false,
            ),
            (
                "a status write",
                Event::Apply(with_status_change(cm("a", "u1", 1))),
                false,
            ),
            ("a finalizer added", Event::Apply(finalized), true),
            ("deletion started", Event::Apply(deleting), true),
            ("a spec change", Event::Apply(cm("a", "u1", 2)), true),
            ("another object", Event::Apply(cm("b", "u2", 1)), true),
            ("deleted", Event::Delete(cm("a", "u1", 2)), false),
            (
                "created again, same name",
                Event::Apply(cm("a", "u3", 1)),
                true,
            ),
        ];
        for (what, event, want) in cases {
            assert_eq!(passes(&mut t, event), want, "{what}");
        }
    }

    /// A re-list passes what changed while the watch was away and forgets what it no longer
    /// shows.
    #[test]
    fn a_relist_passes_changes_and_forgets_the_deleted() {
        let mut t = Triggers::default();
        for event in [
            Event::Init,
            Event::InitApply(cm("a", "u1", 1)),
            Event::InitApply(cm("b", "u2", 1)),
            Event::InitDone,
        ] {
            t.changed(event);
        }
        assert_eq!(t.seen.len(), 2);
        assert!(!passes(&mut t, Event::Init));
        assert!(
            !passes(&mut t, Event::InitApply(cm("a", "u1", 1))),
            "unchanged"
        );
        assert!(passes(&mut t, Event::InitApply(cm("c", "u3", 1))), "new");
        t.changed(Event::<ConfigMap>::InitDone);
        assert_eq!(t.seen.len(), 2, "b, gone during the outage, is forgotten");
        assert!(
            passes(&mut t, Event::Apply(cm("b", "u2", 1))),
            "b is new again"
        );
    }
}
