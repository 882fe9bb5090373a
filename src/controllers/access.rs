//! The grants the tenancy decision ([`crate::tenancy`]) reads: every RepositoryAccessPolicy in
//! the watch scope and the labels of every Namespace, kept by reflectors for one run of the
//! controllers (a new leadership term starts from fresh stores). Also reports each policy's
//! status: Ready, or Invalid when its namespace selector cannot be evaluated.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use tracing::warn;

use super::{AbortOnDrop, Context, Error, status};
use crate::api::conditions::Reason;
use crate::api::repository_access_policy::RepositoryAccessPolicy;
use crate::image::selector_matches;
use crate::tenancy::{self, Access};

/// The RepositoryAccessPolicies and Namespace labels of one run of the controllers.
pub struct Grants {
    policies: Store<RepositoryAccessPolicy>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Bumped on every change that can change a decision (a policy written or deleted, a
    /// namespace's labels changed) once both stores have synced.
    changed: tokio::sync::watch::Sender<u64>,
    /// Set once both stores hold a full list. Our own signal, not the stores'
    /// `wait_until_ready`: that one wakes only the last task that polled it, so two controllers
    /// waiting at once (or a poll from elsewhere) could leave a waiter asleep for good.
    synced: tokio::sync::watch::Sender<bool>,
    _watches: AbortOnDrop<()>,
}

/// What one watch event means to the grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// The policies' initial list is complete.
    PoliciesListed,
    /// The namespaces' initial list is complete.
    NamespacesListed,
    /// A policy or a namespace's labels changed.
    Change,
    Nothing,
}

/// Where the initial lists stand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Progress {
    policies_listed: bool,
    namespaces_listed: bool,
}

impl Progress {
    /// Records one event; true when it is a change to tell the controllers of. Until both stores
    /// have synced the controllers wait (see `Grants::ready`) and then reconcile everything
    /// anyway: no need to wake them for each initial object.
    fn see(&mut self, seen: Seen) -> bool {
        match seen {
            Seen::PoliciesListed => self.policies_listed = true,
            Seen::NamespacesListed => self.namespaces_listed = true,
            Seen::Change => return self.synced(),
            Seen::Nothing => {}
        }
        false
    }

    fn synced(self) -> bool {
        self.policies_listed && self.namespaces_listed
    }
}

type NamespaceEvent = Result<watcher::Event<PartialObjectMeta<Namespace>>, watcher::Error>;

/// What a namespace event means: a change only when a namespace's labels changed (or it went),
/// given the labels seen so far (updated here).
fn namespace_seen(
    labels_seen: &mut HashMap<String, BTreeMap<String, String>>,
    event: NamespaceEvent,
) -> Seen {
    match event {
        Ok(watcher::Event::Apply(ns) | watcher::Event::InitApply(ns)) => {
            let labels = ns.metadata.labels.clone().unwrap_or_default();
            let name = ns.metadata.name.clone().unwrap_or_default();
            if labels_seen.insert(name, labels.clone()) != Some(labels) {
                Seen::Change
            } else {
                Seen::Nothing
            }
        }
        Ok(watcher::Event::Delete(ns)) => {
            labels_seen.remove(&ns.metadata.name.unwrap_or_default());
            Seen::Change
        }
        Ok(watcher::Event::InitDone) => Seen::NamespacesListed,
        Ok(watcher::Event::Init) => Seen::Nothing,
        Err(e) => {
            warn!(error = %e, "watching namespaces for access policies");
            Seen::Nothing
        }
    }
}

impl Grants {
    /// Starts the watches; they stop when the returned value is dropped.
    pub fn start(ctx: &Context) -> Arc<Grants> {
        let (policies, policy_writer) = reflector::store::<RepositoryAccessPolicy>();
        let (namespaces, namespace_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let (changed, _) = tokio::sync::watch::channel(0u64);
        let (synced, _) = tokio::sync::watch::channel(false);
        let policy_events = super::parsed_events::<RepositoryAccessPolicy>(ctx)
            .reflect(policy_writer)
            .map(|e| match e {
                Ok(watcher::Event::InitDone) => Seen::PoliciesListed,
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => Seen::Change,
                _ => Seen::Nothing,
            })
            .boxed();
        let mut labels_seen = HashMap::new();
        let namespace_events = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(ctx.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(namespace_writer)
        .map(move |event| namespace_seen(&mut labels_seen, event))
        .boxed();
        let events = futures::stream::select(policy_events, namespace_events);
        let watches = tokio::spawn(follow(events, changed.clone(), synced.clone()));
        Arc::new(Grants {
            policies,
            namespaces,
            changed,
            synced,
            _watches: AbortOnDrop(watches),
        })
    }

    /// Waits until both stores hold a full list: before that, a namespace would get the
    /// default grant for want of its policies. Any number of tasks may wait at once.
    pub async fn ready(&self) {
        let mut synced = self.synced.subscribe();
        // Only fails when the sender is gone, which `self` holds.
        let _ = synced.wait_for(|s| *s).await;
    }

    /// What objects of `namespace` may do with the ECR repository `repository` of the
    /// operator's own registry.
    pub fn access(&self, namespace: &str, repository: &str) -> Access {
        self.access_on(namespace, None, repository)
    }

    /// [`Self::access`] in the registry of the RegistryTarget `target` (`None`: the own).
    pub fn access_on(&self, namespace: &str, target: Option<&str>, repository: &str) -> Access {
        let labels = self
            .namespaces
            .get(&reflector::ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default();
        let policies = self.policies.state();
        tenancy::access_on(&policies, namespace, &labels, target, repository)
    }

    /// One item per change of the grants (changes in quick succession may come as one).
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + 'static {
        let mut rx = self.changed.subscribe();
        rx.mark_unchanged();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        })
    }
}

/// Drives the watches: bumps `changed` on each change once both lists are in, and sets `synced`
/// when they are.
async fn follow(
    mut events: impl Stream<Item = Seen> + Unpin,
    changed: tokio::sync::watch::Sender<u64>,
    synced: tokio::sync::watch::Sender<bool>,
) {
    let mut progress = Progress::default();
    let mut generation = 0u64;
    while let Some(seen) = events.next().await {
        if progress.see(seen) {
            generation += 1;
            changed.send_replace(generation);
        }
        if progress.synced() {
            synced.send_if_modified(|s| !std::mem::replace(s, true));
        }
    }
}

/// Reports on each RepositoryAccessPolicy whether its namespace selector can be evaluated.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    super::require_crd::<RepositoryAccessPolicy>(&ctx).await?;
    let (reader, stream) = super::watched::<RepositoryAccessPolicy>(&ctx);
    super::drain(
        Controller::for_stream(stream, reader)
            .with_config(super::controller_config(&ctx))
            .graceful_shutdown_on(shutdown)
            .run(
                |policy, ctx| async move {
                    let started = std::time::Instant::now();
                    let result = report(&policy, &ctx).await;
                    ctx.observe("repositoryaccesspolicy", &result, started);
                    result
                },
                |policy, err, ctx| status::error_policy(&ctx, policy.as_ref(), err),
                ctx,
            ),
    )
    .await;
    Ok(())
}

/// The policy's Ready condition: Invalid when its selector cannot be evaluated (it then
/// selects no namespace by label), Ready otherwise.
async fn report(policy: &RepositoryAccessPolicy, ctx: &Context) -> Result<Action, Error> {
    let mut status = status::current(policy);
    let selector_error = policy
        .spec
        .namespaces
        .selector
        .as_ref()
        .and_then(|s| selector_matches(s, &BTreeMap::new()).err());
    match selector_error {
        Some(e) => {
            let err = Error::Invalid(format!(
                "spec.namespaces.selector: {e}; the policy selects no namespace by label"
            ));
            status::write_failure(ctx, policy, &err).await?;
        }
        None => {
            let message = format!(
                "grants {} to the namespaces it selects{}",
                policy.spec.repositories.join(", "),
                if policy.spec.allow_adoption {
                    ", adoption allowed"
                } else {
                    ""
                }
            );
            status::set_ready(&mut status, policy, true, Reason::Synced, message);
            status::write(ctx, policy, &status).await?;
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(name: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Namespace> {
        let mut ns = PartialObjectMeta::<Namespace>::default();
        ns.metadata.name = Some(name.to_string());
        ns.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        ns
    }

    /// Events in order, and whether each wakes the controllers: nothing before both lists are
    /// in, every change after.
    /// (what, events with whether each wakes the controllers, synced at the end).
    type ProgressCase = (&'static str, Vec<(Seen, bool)>, bool);

    #[test]
    fn progress_table() {
        use Seen::*;
        let cases: Vec<ProgressCase> = vec![
            (
                "nothing listed",
                vec![(Change, false), (Nothing, false)],
                false,
            ),
            (
                "policies listed only",
                vec![(PoliciesListed, false), (Change, false)],
                false,
            ),
            (
                "both listed, in either order",
                vec![
                    (NamespacesListed, false),
                    (Change, false),
                    (PoliciesListed, false),
                    (Change, true),
                    (Nothing, false),
                    (Change, true),
                ],
                true,
            ),
        ];
        for (what, events, synced) in cases {
            let mut progress = Progress::default();
            for (i, (seen, wakes)) in events.into_iter().enumerate() {
                assert_eq!(progress.see(seen), wakes, "{what}: event {i}");
            }
            assert_eq!(progress.synced(), synced, "{what}");
        }
    }

    #[test]
    fn only_label_changes_of_namespaces_count() {
        let mut seen = HashMap::new();
        let apply = |ns| Ok(watcher::Event::Apply(ns));
        let cases: Vec<(&str, NamespaceEvent, Seen)> = vec![
            (
                "new namespace",
                apply(namespace("a", &[("team", "x")])),
                Seen::Change,
            ),
            (
                "same labels",
                apply(namespace("a", &[("team", "x")])),
                Seen::Nothing,
            ),
            (
                "labels changed",
                apply(namespace("a", &[("team", "y")])),
                Seen::Change,
            ),
            (
                "listed at start",
                Ok(watcher::Event::InitApply(namespace("b", &[]))),
                Seen::Change,
            ),
            (
                "deleted",
                Ok(watcher::Event::Delete(namespace("a", &[]))),
                Seen::Change,
            ),
            (
                "re-created",
                apply(namespace("a", &[("team", "y")])),
                Seen::Change,
            ),
            ("list start", Ok(watcher::Event::Init), Seen::Nothing),
            (
                "list done",
                Ok(watcher::Event::InitDone),
                Seen::NamespacesListed,
            ),
        ];
        for (what, event, want) in cases {
            assert_eq!(namespace_seen(&mut seen, event), want, "{what}");
        }
    }
}
