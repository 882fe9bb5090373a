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
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The policies' initial list is complete.
    PoliciesListed,
    /// The namespaces' initial list is complete.
    NamespacesListed,
    /// A policy or a namespace's labels changed.
    Change,
    Nothing,
}

impl Grants {
    /// Starts the watches; they stop when the returned value is dropped.
    pub fn start(ctx: &Context) -> Arc<Grants> {
        let client = ctx.client.clone();
        let (policies, policy_writer) = reflector::store::<RepositoryAccessPolicy>();
        let (namespaces, namespace_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let (changed, _) = tokio::sync::watch::channel(0u64);
        let (synced, _) = tokio::sync::watch::channel(false);
        let (notify, mark_synced) = (changed.clone(), synced.clone());
        let policy_events = super::parsed_events::<RepositoryAccessPolicy>(ctx)
            .reflect(policy_writer)
            .map(|e| match e {
                Ok(watcher::Event::InitDone) => Seen::PoliciesListed,
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => Seen::Change,
                _ => Seen::Nothing,
            })
            .boxed();
        let mut seen_labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        let namespace_events = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(client),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(namespace_writer)
        .map(move |event| match event {
            Ok(watcher::Event::Apply(ns) | watcher::Event::InitApply(ns)) => {
                let labels = ns.metadata.labels.clone().unwrap_or_default();
                let name = ns.metadata.name.clone().unwrap_or_default();
                if seen_labels.insert(name, labels.clone()) != Some(labels) {
                    Seen::Change
                } else {
                    Seen::Nothing
                }
            }
            Ok(watcher::Event::Delete(ns)) => {
                seen_labels.remove(&ns.metadata.name.unwrap_or_default());
                Seen::Change
            }
            Ok(watcher::Event::InitDone) => Seen::NamespacesListed,
            Ok(watcher::Event::Init) => Seen::Nothing,
            Err(e) => {
                warn!(error = %e, "watching namespaces for access policies");
                Seen::Nothing
            }
        })
        .boxed();
        let watches = tokio::spawn(async move {
            let mut events = futures::stream::select(policy_events, namespace_events);
            let (mut policies_listed, mut namespaces_listed) = (false, false);
            let mut generation = 0u64;
            while let Some(seen) = events.next().await {
                match seen {
                    Seen::PoliciesListed => policies_listed = true,
                    Seen::NamespacesListed => namespaces_listed = true,
                    // Until both stores have synced, the controllers wait (see `ready`) and
                    // then reconcile everything anyway: no need to wake them for each initial
                    // object.
                    Seen::Change if policies_listed && namespaces_listed => {
                        generation += 1;
                        notify.send_replace(generation);
                    }
                    Seen::Change | Seen::Nothing => {}
                }
                if policies_listed && namespaces_listed {
                    mark_synced.send_if_modified(|s| !std::mem::replace(s, true));
                }
            }
        });
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

    /// What objects of `namespace` may do with the ECR repository `repository`.
    pub fn access(&self, namespace: &str, repository: &str) -> Access {
        let labels = self
            .namespaces
            .get(&reflector::ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default();
        tenancy::access(&self.policies.state(), namespace, &labels, repository)
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
