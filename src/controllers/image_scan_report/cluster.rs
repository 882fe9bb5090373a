//! The Repositories and ScanPolicies a refresh needs, kept by watches for one run of the loop:
//! scheduled passes and scan event batches read them from memory instead of listing every
//! Repository and ScanPolicy each time. Of a Repository only what a refresh needs is kept
//! ([`RepositoryEntry`]): 10 000 whole objects are tens of MB, which the Repository
//! controller's store holds already.
//!
//! Objects are parsed one by one, and one this version cannot read is left out (its own
//! controller reports it): it must not stop every report.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures::{FutureExt, StreamExt};
use kube::Resource;
use kube::api::DynamicObject;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tracing::warn;

use super::places::Place;
use super::plan::{Managed, RepositoryEntry};
use crate::api::{Repository, ScanPolicy};
use crate::controllers::interned::Interned;
use crate::controllers::{AbortOnDrop, Context, parse_object};

/// The watched Repositories and ScanPolicies; the watches stop when this is dropped.
pub struct Cluster {
    repositories: Arc<Projection<RepositoryEntry>>,
    policies: Arc<Projection<ScanPolicy>>,
    _watches: AbortOnDrop<()>,
}

impl Cluster {
    pub fn start(ctx: &Context) -> Cluster {
        let repositories = Arc::new(Projection::default());
        let policies = Arc::new(Projection::default());
        let watches = futures::future::join(
            follow::<Repository, _>(ctx, repositories.clone(), {
                let mut shared = Interned::default();
                move |r| RepositoryEntry::of(r, &mut shared)
            }),
            follow::<ScanPolicy, _>(ctx, policies.clone(), |p| Some(p.clone())),
        );
        Cluster {
            repositories,
            policies,
            _watches: AbortOnDrop(tokio::spawn(watches.map(drop))),
        }
    }

    /// Waits until both watches hold a full list: before that, every managed repository would
    /// look gone, and its reports stale.
    pub async fn ready(&self) {
        self.repositories.synced().await;
        self.policies.synced().await;
    }

    /// What a pass of `place` knows of the cluster, as the watches show it now: the
    /// Repositories and the ScanPolicies of its registry.
    pub fn managed(&self, place: &Place) -> Managed {
        let target = place.target.as_deref();
        let policies: Vec<ScanPolicy> = self.policies.read(|p| {
            p.values()
                .filter(|p| policy_target(p) == target)
                .cloned()
                .collect()
        });
        let mut managed = self.repositories.read(|r| {
            let entries = r.values().filter(|e| e.target.as_deref() == target);
            Managed::new(entries, &policies)
        });
        managed.region = place.region.clone();
        managed
    }

    /// The RegistryTargets that Repositories and ScanPolicies name.
    pub fn named_targets(&self) -> BTreeSet<String> {
        let mut named: BTreeSet<String> = self.repositories.read(|r| {
            r.values()
                .filter_map(|e| e.target.as_deref().map(str::to_string))
                .collect()
        });
        self.policies.read(|p| {
            named.extend(
                p.values()
                    .filter_map(|p| policy_target(p).map(str::to_string)),
            )
        });
        named
    }

    /// (registry id, repository) of the Repositories in a target `reachable` says no to: their
    /// reports stay as they are until it can be read again.
    pub fn held(&self, reachable: impl Fn(&str) -> bool) -> BTreeSet<(String, String)> {
        self.repositories.read(|r| {
            r.values()
                .filter(|e| e.target.as_deref().is_some_and(|t| !reachable(t)))
                .map(|e| (e.registry_id.to_string(), e.repository.clone()))
                .collect()
        })
    }
}

fn policy_target(policy: &ScanPolicy) -> Option<&str> {
    policy.spec.registry_ref.as_ref().map(|r| r.name.as_str())
}

/// Watches `K` in the watch scope, keeping `project` of each object in `projection`.
fn follow<K, V>(
    ctx: &Context,
    projection: Arc<Projection<V>>,
    mut project: impl FnMut(&K) -> Option<V> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned + 'static,
    K::Scope: 'static,
    V: Send + Sync + 'static,
{
    let scope = ctx.config.watch.clone();
    let events = watcher(scope.api::<K>(&ctx.client), scope.watcher_config()).default_backoff();
    async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let entry = |o: &DynamicObject| {
                scope
                    .includes_namespace(o.metadata.namespace.as_deref())
                    .then(|| parse_object::<K>(o).ok())
                    .flatten()
                    .and_then(|k| project(&k))
            };
            match event {
                Ok(event) => projection.apply(event, entry),
                Err(e) => {
                    warn!(kind = %K::kind(&()), error = %e, "watching for scan reports failed")
                }
            }
        }
    }
}

/// One value per object, by `namespace/name` (the API server's list order, so that where two
/// Repositories name one ECR repository the same one counts as when they were listed).
struct Projection<V> {
    state: Mutex<State<V>>,
    synced: watch::Sender<bool>,
}

struct State<V> {
    live: BTreeMap<String, V>,
    /// A (re)list under way: swapped in whole when it is done, so that a pass never sees half
    /// a list.
    relist: Option<BTreeMap<String, V>>,
}

impl<V> Default for Projection<V> {
    fn default() -> Self {
        Projection {
            state: Mutex::new(State {
                live: BTreeMap::new(),
                relist: None,
            }),
            synced: watch::channel(false).0,
        }
    }
}

impl<V> Projection<V> {
    fn apply(
        &self,
        event: watcher::Event<DynamicObject>,
        mut entry: impl FnMut(&DynamicObject) -> Option<V>,
    ) {
        let key = |o: &DynamicObject| {
            let namespace = o.metadata.namespace.as_deref().unwrap_or_default();
            format!(
                "{namespace}/{}",
                o.metadata.name.as_deref().unwrap_or_default()
            )
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Init => state.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(o) => {
                if let (Some(v), Some(relist)) = (entry(&o), state.relist.as_mut()) {
                    relist.insert(key(&o), v);
                }
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = state.relist.take() {
                    state.live = fresh;
                }
                self.synced.send_replace(true);
            }
            watcher::Event::Apply(o) => match entry(&o) {
                Some(v) => drop(state.live.insert(key(&o), v)),
                // No longer in scope, or no longer readable: gone, as from a list.
                None => drop(state.live.remove(&key(&o))),
            },
            watcher::Event::Delete(o) => drop(state.live.remove(&key(&o))),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<String, V>) -> T) -> T {
        f(&self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .live)
    }

    async fn synced(&self) {
        let mut synced = self.synced.subscribe();
        // Only fails when the sender is gone, which `self` holds.
        let _ = synced.wait_for(|s| *s).await;
    }
}
