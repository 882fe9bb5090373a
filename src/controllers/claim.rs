//! Which of several objects naming the same ECR resource holds it: the oldest (by creation
//! time, then namespace/name), so the answer is the same on every replica and every reconcile.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::reflector::Store;

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
