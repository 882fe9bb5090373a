//! The RegistryTargets that namespaced objects name in `registryRef`, kept by a reflector for one
//! run of the controllers, and what an object's target resolves to: the registry and the
//! inventory its calls go to ([`Reach`]). An object whose target is missing or not Ready is
//! refused before any call ([`Error::TargetNotReady`]), in any registry.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;

use super::{AbortOnDrop, Context, Error, Inventory};
use crate::api::conditions;
use crate::api::registry_target::RegistryTarget;
use crate::registry::Registry;

/// Where one object's ECR calls go.
#[derive(Clone)]
pub struct Reach {
    pub registry: Arc<dyn Registry>,
    pub inventory: Arc<Inventory>,
    /// The RegistryTarget, `None` for the operator's own registry.
    pub target: Option<String>,
}

impl Reach {
    /// The operator's own registry.
    pub fn own(ctx: &Context) -> Reach {
        Reach {
            registry: ctx.registry.clone(),
            inventory: ctx.inventory.clone(),
            target: None,
        }
    }
}

/// The RegistryTargets of one run of the controllers.
pub struct TargetIndex {
    store: Store<RegistryTarget>,
    /// Bumped on every change of a target (its Ready condition included) after the first list.
    changed: tokio::sync::watch::Sender<u64>,
    synced: tokio::sync::watch::Sender<bool>,
    _watch: AbortOnDrop<()>,
}

impl TargetIndex {
    /// Starts the watch; it stops when the returned value is dropped.
    pub fn start(ctx: &Context) -> Arc<TargetIndex> {
        let (store, writer) = reflector::store::<RegistryTarget>();
        let (changed, _) = tokio::sync::watch::channel(0u64);
        let (synced, _) = tokio::sync::watch::channel(false);
        let events = super::parsed_events::<RegistryTarget>(ctx)
            .reflect(writer)
            .boxed();
        let watch = tokio::spawn(follow(events, changed.clone(), synced.clone()));
        Arc::new(TargetIndex {
            store,
            changed,
            synced,
            _watch: AbortOnDrop(watch),
        })
    }

    /// Waits for the first full list: before it, every target would look missing.
    pub async fn ready(&self) {
        let mut synced = self.synced.subscribe();
        // Only fails when the sender is gone, which `self` holds.
        let _ = synced.wait_for(|s| *s).await;
    }

    /// One item per change of a target (changes in quick succession may come as one).
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + 'static {
        let mut rx = self.changed.subscribe();
        rx.mark_unchanged();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        })
    }

    /// Whether the RegistryTarget of this name exists and is Ready at its generation.
    pub fn is_ready(&self, name: &str) -> bool {
        self.store
            .get(&ObjectRef::new(name))
            .is_some_and(|t| not_ready(&t).is_none())
    }

    /// The account and region of the RegistryTarget of this name, when it is Ready.
    pub fn ready_registry(&self, name: &str) -> Option<(String, String)> {
        let target = self.store.get(&ObjectRef::new(name))?;
        not_ready(&target)
            .is_none()
            .then(|| (target.spec.registry_id.clone(), target.spec.region.clone()))
    }

    /// Where the calls for `target` go: the own registry for `None`; for a target, its pooled
    /// client, when it exists and is Ready at its current generation.
    pub async fn reach(&self, ctx: &Context, target: Option<&str>) -> Result<Reach, Error> {
        let Some(name) = target else {
            return Ok(Reach::own(ctx));
        };
        let Some(t) = self.store.get(&ObjectRef::new(name)) else {
            return Err(Error::TargetNotReady(format!(
                "RegistryTarget {name} does not exist; nothing is read or written until it does"
            )));
        };
        if let Some(why) = not_ready(&t) {
            return Err(Error::TargetNotReady(format!(
                "RegistryTarget {name} is not Ready ({why}); nothing is read or written until it is"
            )));
        }
        let client = (ctx.targets.client(name, &t.spec).await)
            .map_err(|e| Error::TargetNotReady(format!("RegistryTarget {name}: {e}")))?;
        Ok(Reach {
            registry: client.registry.clone(),
            inventory: client.state.clone(),
            target: Some(name.to_string()),
        })
    }
}

/// Why a target is not Ready at its current generation (`None` when it is).
fn not_ready(target: &RegistryTarget) -> Option<String> {
    let conditions = target
        .status
        .as_ref()
        .map(|s| s.common.conditions.as_slice())
        .unwrap_or_default();
    if conditions::is_ready_at(conditions, target.metadata.generation) {
        return None;
    }
    Some(match conditions::find_ready(conditions) {
        Some(c) if c.status == "False" => format!("{}: {}", c.reason, c.message),
        _ => "not reconciled yet".to_string(),
    })
}

/// Drives the watch: `synced` at the first full list, `changed` on every change after it.
async fn follow(
    mut events: impl Stream<Item = Result<watcher::Event<RegistryTarget>, watcher::Error>> + Unpin,
    changed: tokio::sync::watch::Sender<u64>,
    synced: tokio::sync::watch::Sender<bool>,
) {
    let mut generation = 0u64;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::InitDone) => {
                synced.send_if_modified(|s| !std::mem::replace(s, true));
            }
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) if *synced.borrow() => {
                generation += 1;
                changed.send_replace(generation);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching registry targets"),
        }
    }
}
