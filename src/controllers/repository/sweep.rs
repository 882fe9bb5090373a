//! The inventory sweeps: one loop for the operator's own registry, one per RegistryTarget in
//! use, each listing its registry's repositories every sweep interval into that registry's
//! inventory. A target that cannot be listed backs off alone; the others go on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use kube::runtime::reflector::Store;
use tokio::sync::mpsc::Sender;

use crate::api::repository::Repository;
use crate::controllers::access::Grants;
use crate::controllers::targets::TargetIndex;
use crate::controllers::{AbortOnDrop, Context, Inventory, pace_sweep};
use crate::registry::{Registry, TargetClient};

/// How often the set of target sweeps follows the pool: a target's first Repository waits at
/// most this long for its sweep to start.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// Refreshes the own registry's inventory every sweep interval and triggers a reconcile of every
/// object.
/// Starts the sweeps of the own registry and of the targets' (aborted with the guards this
/// returns: a detached sweeper would keep calling DescribeRepositories for a dead controller),
/// and returns what asks for every object to be reconciled again: a sweep done, a changed grant
/// (it may allow what was Forbidden, or forbid what was allowed), a target become Ready or gone.
pub(super) fn start(
    ctx: &Arc<Context>,
    reader: &Store<Repository>,
    grants: &Grants,
    targets: &Arc<TargetIndex>,
) -> (
    impl Stream<Item = ()> + Send + 'static,
    [AbortOnDrop<()>; 2],
) {
    let (sweep_tx, sweep_rx) = tokio::sync::mpsc::channel::<()>(1);
    let sweepers = [
        AbortOnDrop(tokio::spawn(own(ctx.clone(), sweep_tx.clone()))),
        AbortOnDrop(tokio::spawn(targets_of(
            ctx.clone(),
            reader.clone(),
            targets.clone(),
            sweep_tx,
        ))),
    ];
    let sweeps = futures::stream::unfold(sweep_rx, |mut rx| async move {
        rx.recv().await.map(|()| ((), rx))
    });
    let sweeps = futures::stream::select(sweeps, grants.changes());
    (futures::stream::select(sweeps, targets.changes()), sweepers)
}

async fn own(ctx: Arc<Context>, trigger: Sender<()>) {
    let (registry, inventory) = (ctx.registry.clone(), ctx.inventory.clone());
    sweep(ctx, registry, inventory, "repository".to_string(), trigger).await;
}

async fn sweep(
    ctx: Arc<Context>,
    registry: Arc<dyn Registry>,
    inventory: Arc<Inventory>,
    what: String,
    trigger: Sender<()>,
) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let pass =
            (registry.list_repositories().await).map(|list| inventory.apply_sweep(started, list));
        pace_sweep(&ctx, &what, pass, &mut failures, &trigger).await;
    }
}

/// How long a target client no Repository names stays after its last use: long beside the
/// resyncs of the kinds that use it, so that they do not assume its role again each time.
const UNUSED_CLIENT_KEPT: std::time::Duration = std::time::Duration::from_secs(900);

/// Keeps one sweep per pooled client of a Ready target (an unready one is not read at all: its
/// objects wait for it), and drops the clients of targets no Repository names and nothing used for
/// [`UNUSED_CLIENT_KEPT`] (the pool builds them on first use: a reconcile, or the target's own
/// probe).
async fn targets_of(
    ctx: Arc<Context>,
    store: Store<Repository>,
    index: Arc<TargetIndex>,
    trigger: Sender<()>,
) {
    type Running = (Arc<TargetClient<Arc<Inventory>>>, AbortOnDrop<()>);
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let named: std::collections::HashSet<String> = store
            .state()
            .iter()
            .filter_map(|r| r.target().map(str::to_string))
            .collect();
        // Other kinds (and the webhook) use targets too: their clients stay while in use.
        ctx.targets
            .retain_used(|name| named.contains(name), UNUSED_CLIENT_KEPT);
        // Only the registries of Repositories are swept: a client kept for another kind's use
        // costs no DescribeRepositories.
        let clients: HashMap<String, _> = (ctx.targets.names().into_iter())
            .filter(|name| named.contains(name) && index.is_ready(name))
            .filter_map(|name| ctx.targets.get(&name).map(|c| (name, c)))
            .collect();
        // A sweep whose client went (or was replaced) stops with it.
        running
            .retain(|name, (client, _)| clients.get(name).is_some_and(|c| Arc::ptr_eq(c, client)));
        for (name, client) in clients {
            if running.contains_key(&name) {
                continue;
            }
            let task = sweep(
                ctx.clone(),
                client.registry.clone(),
                client.state.clone(),
                format!("repository (RegistryTarget {name})"),
                trigger.clone(),
            );
            running.insert(name, (client, AbortOnDrop(tokio::spawn(task))));
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}
