//! Object storage and the watch event history.
//!
//! One mutex guards every collection and the global resource version, so resource versions are
//! issued and published in one order. Each collection keeps its objects in a `BTreeMap` (ordered
//! keys give cheap paging) and a bounded ring of recent events; watchers read the ring from their
//! cursor when a `tokio::sync::watch` channel tells them there is something new, so a write does
//! O(1) work whatever the number of objects or watchers.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    ops::Bound,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

use crate::{
    meta,
    resources::{Registry, ResourceDef, collection_key},
    selectors::Filter,
};

/// A stored object.
pub(crate) type Obj = Arc<Value>;

/// A watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change of one object, as kept in the history ring.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub rv: u64,
    pub ty: EventType,
    pub object: Obj,
    pub old: Option<Obj>,
    line: OnceLock<Bytes>,
}

impl StoredEvent {
    /// The newline-terminated JSON line of this event as stored, serialized once for all
    /// watchers that need it unchanged.
    pub fn line(&self) -> Bytes {
        self.line
            .get_or_init(|| crate::watch::event_line(self.ty.as_str(), &self.object))
            .clone()
    }
}

struct Collection {
    objects: BTreeMap<String, Obj>,
    history: VecDeque<Arc<StoredEvent>>,
    /// A new watch from a resource version below this gets `410 Gone`.
    floor: u64,
    /// An open watch whose cursor is below this has missed events.
    lost_upto: u64,
    notify: watch::Sender<u64>,
}

impl Collection {
    fn new(rv: u64) -> Self {
        Self {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            floor: rv,
            lost_upto: 0,
            notify: watch::Sender::new(rv),
        }
    }
}

struct Inner {
    rv: u64,
    registry: Registry,
    collections: HashMap<String, Collection>,
}

/// The key of an object in its collection: `namespace/name` or `name`.
pub(crate) fn object_key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// A write to commit.
pub(crate) enum WriteOp {
    /// Insert a new object.
    Create(Value),
    /// Replace the object whose current resource version is `expected_rv`.
    Update { expected_rv: u64, object: Value },
    /// Remove the object whose current resource version is `expected_rv`; `last` is its final state.
    Delete { expected_rv: u64, last: Value },
}

/// Why a write was not committed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteError {
    AlreadyExists,
    NotFound,
    /// The object changed since it was read: read again and retry.
    Changed,
    /// The namespace does not exist.
    NamespaceNotFound(String),
    /// The resource is no longer served.
    NoCollection,
}

/// One page of a list.
pub(crate) struct Page {
    pub items: Vec<Obj>,
    pub rv: u64,
    /// The key to continue after, when more keys follow.
    pub last_key: Option<String>,
}

/// How a watch starts.
pub(crate) struct WatchStart {
    /// Synthetic ADDED events (for watches without a resource version).
    pub initial: Vec<Obj>,
    pub cursor: u64,
    pub notify: watch::Receiver<u64>,
}

/// Why a watch cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WatchError {
    /// The requested resource version is older than the history.
    Gone { floor: u64 },
    /// The resource is no longer served.
    NoCollection,
}

/// Events read for a watcher.
pub(crate) struct Pull {
    pub events: Vec<Arc<StoredEvent>>,
    /// The global resource version when read: a watcher with nothing pending may bookmark it.
    pub global_rv: u64,
    pub more: bool,
}

/// Everything the server stores.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    history_capacity: usize,
    /// What each field manager last applied (server-side apply), per object.
    pub applied: crate::apply::AppliedFields,
}

impl Store {
    /// An empty store with the built-in kinds.
    pub fn new(history_capacity: usize) -> Self {
        let registry = Registry::builtin();
        let mut collections = HashMap::new();
        let rv = 1;
        for def in registry_defs(&registry) {
            collections
                .entry(def.collection_key())
                .or_insert_with(|| Collection::new(rv));
        }
        Self {
            inner: Mutex::new(Inner {
                rv,
                registry,
                collections,
            }),
            history_capacity: history_capacity.max(1),
            applied: crate::apply::AppliedFields::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves a served resource.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.lock().registry.get(group, version, plural)
    }

    /// The storage-version definition of a collection.
    pub fn storage_def(&self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.lock().registry.storage_def(group, plural)
    }

    /// Runs `f` on the registry (discovery).
    pub fn with_registry<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        f(&self.lock().registry)
    }

    /// Installs (or replaces) every version of a CRD's resource.
    pub fn install(&self, group: &str, plural: &str, defs: Vec<ResourceDef>) {
        let mut inner = self.lock();
        let rv = inner.rv;
        inner.registry.install(group, plural, defs);
        inner
            .collections
            .entry(collection_key(group, plural))
            .or_insert_with(|| Collection::new(rv));
    }

    /// Removes a CRD's resource and its objects; open watches on it end.
    pub fn uninstall(&self, group: &str, plural: &str) {
        let mut inner = self.lock();
        inner.registry.uninstall(group, plural);
        inner.collections.remove(&collection_key(group, plural));
    }

    /// The current global resource version.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, def: &ResourceDef, key: &str) -> Option<Obj> {
        self.lock()
            .collections
            .get(&def.collection_key())?
            .objects
            .get(key)
            .cloned()
    }

    /// Every object of a collection (for assertions).
    pub fn all(&self, collection: &str) -> Vec<Obj> {
        self.lock()
            .collections
            .get(collection)
            .map(|c| c.objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A page of matching objects after `after` (exclusive), at most `limit` of them.
    pub fn list(
        &self,
        def: &ResourceDef,
        filter: &Filter,
        limit: Option<usize>,
        after: Option<&str>,
    ) -> Page {
        let inner = self.lock();
        let rv = inner.rv;
        let Some(coll) = inner.collections.get(&def.collection_key()) else {
            return Page {
                items: Vec::new(),
                rv,
                last_key: None,
            };
        };
        let (lower, upper) = match (&filter.namespace, def.namespaced) {
            (Some(ns), true) => (format!("{ns}/"), Some(format!("{ns}0"))),
            _ => (String::new(), None),
        };
        if let (Some(after), Some(upper)) = (after, &upper)
            && after >= upper.as_str()
        {
            // A continue key past this namespace: nothing left (and no inverted range).
            return Page {
                items: Vec::new(),
                rv,
                last_key: None,
            };
        }
        let lower = match after {
            Some(key) if key >= lower.as_str() => Bound::Excluded(key.to_string()),
            _ => Bound::Included(lower),
        };
        let upper = upper.map_or(Bound::Unbounded, Bound::Excluded);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut range = coll.objects.range((lower, upper));
        for (key, obj) in range.by_ref() {
            if filter.matches(obj) {
                items.push(obj.clone());
                if limit.is_some_and(|l| items.len() >= l) {
                    last_key = Some(key.clone());
                    break;
                }
            }
        }
        if last_key.is_some() && range.next().is_none() {
            last_key = None;
        }
        Page {
            items,
            rv,
            last_key,
        }
    }

    /// Commits a write: assigns the next resource version, stores, records and announces the
    /// event. Returns the stored object (for deletes: the final state with the deletion's
    /// resource version).
    pub fn write(
        &self,
        def: &ResourceDef,
        key: &str,
        op: WriteOp,
        require_namespace: Option<&str>,
    ) -> Result<Obj, WriteError> {
        let mut inner = self.lock();
        if let Some(ns) = require_namespace
            && !inner
                .collections
                .get("namespaces")
                .is_some_and(|c| c.objects.contains_key(ns))
        {
            return Err(WriteError::NamespaceNotFound(ns.to_string()));
        }
        let next_rv = inner.rv + 1;
        let capacity = self.history_capacity;
        let coll = inner
            .collections
            .get_mut(&def.collection_key())
            .ok_or(WriteError::NoCollection)?;
        let current_rv = coll
            .objects
            .get(key)
            .map(|o| meta::resource_version(o).unwrap_or(0));
        let (ty, mut object, old) = match op {
            WriteOp::Create(object) => {
                if current_rv.is_some() {
                    return Err(WriteError::AlreadyExists);
                }
                (EventType::Added, object, None)
            }
            WriteOp::Update {
                expected_rv,
                object,
            } => match current_rv {
                None => return Err(WriteError::NotFound),
                Some(rv) if rv != expected_rv => return Err(WriteError::Changed),
                Some(_) => (EventType::Modified, object, coll.objects.get(key).cloned()),
            },
            WriteOp::Delete { expected_rv, last } => match current_rv {
                None => return Err(WriteError::NotFound),
                Some(rv) if rv != expected_rv => return Err(WriteError::Changed),
                Some(_) => (EventType::Deleted, last, coll.objects.get(key).cloned()),
            },
        };
        meta::set_meta(
            &mut object,
            "resourceVersion",
            Value::String(next_rv.to_string()),
        );
        let object = Arc::new(object);
        if ty == EventType::Deleted {
            coll.objects.remove(key);
        } else {
            coll.objects.insert(key.to_string(), object.clone());
        }
        coll.history.push_back(Arc::new(StoredEvent {
            rv: next_rv,
            ty,
            object: object.clone(),
            old,
            line: OnceLock::new(),
        }));
        while coll.history.len() > capacity {
            if let Some(dropped) = coll.history.pop_front() {
                coll.floor = coll.floor.max(dropped.rv);
                coll.lost_upto = coll.lost_upto.max(dropped.rv);
            }
        }
        coll.notify.send_replace(next_rv);
        inner.rv = next_rv;
        Ok(object)
    }

    /// Starts a watch: from a resource version (replaying history), or with the current state
    /// as synthetic ADDED events when `from` is `None`.
    pub fn start_watch(
        &self,
        def: &ResourceDef,
        filter: &Filter,
        from: Option<u64>,
    ) -> Result<WatchStart, WatchError> {
        let inner = self.lock();
        let coll = inner
            .collections
            .get(&def.collection_key())
            .ok_or(WatchError::NoCollection)?;
        match from {
            Some(rv) if rv < coll.floor => Err(WatchError::Gone { floor: coll.floor }),
            Some(rv) => Ok(WatchStart {
                initial: Vec::new(),
                cursor: rv,
                notify: coll.notify.subscribe(),
            }),
            None => {
                let initial = coll
                    .objects
                    .values()
                    .filter(|o| filter.matches(o))
                    .cloned()
                    .collect();
                Ok(WatchStart {
                    initial,
                    cursor: inner.rv,
                    notify: coll.notify.subscribe(),
                })
            }
        }
    }

    /// Up to `max` events after `cursor`.
    pub fn pull(&self, def: &ResourceDef, cursor: u64, max: usize) -> Result<Pull, WatchError> {
        let inner = self.lock();
        let coll = inner
            .collections
            .get(&def.collection_key())
            .ok_or(WatchError::NoCollection)?;
        if cursor < coll.lost_upto {
            return Err(WatchError::Gone {
                floor: coll.lost_upto,
            });
        }
        let start = coll.history.partition_point(|e| e.rv <= cursor);
        let end = (start + max).min(coll.history.len());
        let events = coll.history.range(start..end).cloned().collect();
        Ok(Pull {
            events,
            global_rv: inner.rv,
            more: end < coll.history.len(),
        })
    }

    /// Simulates etcd compaction: every resource version issued so far becomes too old to
    /// start a watch from. Open watches go on unless they had not yet read the dropped events.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.rv += 1;
        let rv = inner.rv;
        for coll in inner.collections.values_mut() {
            if let Some(last) = coll.history.back() {
                coll.lost_upto = coll.lost_upto.max(last.rv);
            }
            coll.history.clear();
            coll.floor = rv;
        }
    }
}

fn registry_defs(registry: &Registry) -> Vec<Arc<ResourceDef>> {
    let mut defs = Vec::new();
    registry.for_each(|d| defs.push(d.clone()));
    defs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn setup() -> (Store, Arc<ResourceDef>) {
        let store = Store::new(3);
        let def = store.resolve("", "v1", "configmaps").expect("configmaps");
        (store, def)
    }

    fn cm(ns: &str, name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns}})
    }

    #[test]
    fn continue_keys_outside_the_namespace_do_not_panic() {
        let (store, def) = setup();
        for (ns, name) in [("a", "x"), ("b", "y")] {
            store
                .write(
                    &def,
                    &object_key(Some(ns), name),
                    WriteOp::Create(cm(ns, name)),
                    None,
                )
                .expect("create");
        }
        let filter = Filter {
            namespace: Some("a".into()),
            ..Filter::default()
        };
        assert!(
            store
                .list(&def, &filter, Some(1), Some("z/z"))
                .items
                .is_empty()
        );
        assert_eq!(
            store.list(&def, &filter, Some(1), Some("0/0")).items.len(),
            1
        );
        assert_eq!(store.list(&def, &filter, None, Some("a/x")).items.len(), 0);
    }

    #[test]
    fn history_ring_and_compaction() {
        let (store, def) = setup();
        let start = store.current_rv();
        for i in 0..5 {
            let name = format!("c{i}");
            store
                .write(
                    &def,
                    &object_key(Some("a"), &name),
                    WriteOp::Create(cm("a", &name)),
                    None,
                )
                .expect("create");
        }
        let filter = Filter::default();
        // The ring holds 3 events: starting before them is gone.
        assert!(matches!(
            store.start_watch(&def, &filter, Some(start)),
            Err(WatchError::Gone { .. })
        ));
        let recent = store.current_rv() - 2;
        let start_ok = store
            .start_watch(&def, &filter, Some(recent))
            .expect("recent");
        let pull = store.pull(&def, start_ok.cursor, 10).expect("pull");
        assert_eq!(pull.events.len(), 2);
        store.compact();
        // An open watch that had read everything goes on; a new one from before is gone.
        let now = store.current_rv();
        assert!(store.pull(&def, now - 1, 10).is_ok());
        assert!(store.start_watch(&def, &filter, Some(now - 1)).is_err());
        assert!(store.start_watch(&def, &filter, Some(now)).is_ok());
    }
}
