//! Registry-level singletons per target (issue #16): a pass groups the objects by the
//! RegistryTarget they name in `spec.registryRef` (`None`: the operator's own registry), and
//! each group is merged into its own registry's one document, as if it were alone. A group whose
//! target is missing or not Ready reports TargetNotReady on its objects and calls nothing; the
//! other groups go on (a failing target never stalls the others).

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::runtime::reflector::Store;
use tracing::warn;

use super::singleton::{
    PassStates, Setting, add_finalizer, has_finalizer, observe_objects, reconcile_group,
    write_failure,
};
use super::status::Reported;
use super::targets::TargetIndex;
use super::{Context, Error};

/// The objects of one registry: those active and those being deleted, each oldest first.
#[derive(Debug)]
pub struct Group<K> {
    /// The RegistryTarget, `None` for the operator's own registry.
    pub target: Option<String>,
    pub active: Vec<Arc<K>>,
    pub deleting: Vec<Arc<K>>,
}

/// Groups the objects by target, keeping their order within each group; the own registry's
/// group first, then the targets by name. Only targets some object names have a group.
pub fn group_by_target<K>(
    active: Vec<Arc<K>>,
    deleting: Vec<Arc<K>>,
    target: impl Fn(&K) -> Option<&str>,
) -> Vec<Group<K>> {
    let mut groups: BTreeMap<Option<String>, Group<K>> = BTreeMap::new();
    for o in active {
        let key = target(o.as_ref()).map(str::to_string);
        group_entry(&mut groups, key).active.push(o);
    }
    for o in deleting {
        let key = target(o.as_ref()).map(str::to_string);
        group_entry(&mut groups, key).deleting.push(o);
    }
    groups.into_values().collect()
}

fn group_entry<K>(
    groups: &mut BTreeMap<Option<String>, Group<K>>,
    key: Option<String>,
) -> &mut Group<K> {
    groups.entry(key.clone()).or_insert_with(|| Group {
        target: key,
        active: Vec::new(),
        deleting: Vec::new(),
    })
}

/// Every registry's group in turn; a group's failure is reported on its objects and does not
/// keep the other groups from their pass. Returns the first failure, for the backoff.
pub(super) async fn reconcile_all<S: Setting>(
    ctx: &Context,
    targets: &TargetIndex,
    store: &Store<S::Object>,
    states: &mut PassStates<S>,
) -> Result<(), Error> {
    let Some((active, deleting)) = observe_objects(store) else {
        return Ok(());
    };
    // Finalizers first, so that no object's part is written without one.
    for o in active.iter().filter(|o| !has_finalizer(o.as_ref())) {
        add_finalizer(ctx, o.as_ref()).await?;
    }
    let mut first_error = None;
    for group in group_by_target(active, deleting, S::target) {
        let result = match targets.reach(ctx, group.target.as_deref()).await {
            // Nothing read or written in any registry; the deleting objects keep their
            // finalizer until their target is back.
            Err(e) => report_not_ready::<S>(ctx, &group.active, &e).await,
            Ok(reach) => {
                let state = states.entry(group.target.clone()).or_default();
                let registry = reach.registry.as_ref();
                reconcile_group::<S>(ctx, registry, &group.active, &group.deleting, state).await
            }
        };
        if let Err(e) = result {
            warn!(kind = <S::Object as Reported>::KIND, target = ?group.target, error = %e, "reconcile failed");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A target's objects when it is missing or not Ready: each reports why.
async fn report_not_ready<S: Setting>(
    ctx: &Context,
    active: &[Arc<S::Object>],
    e: &Error,
) -> Result<(), Error> {
    let why = match e {
        Error::TargetNotReady(m) => Error::TargetNotReady(m.clone()),
        other => Error::TargetNotReady(other.to_string()),
    };
    for o in active {
        write_failure::<S>(ctx, o.as_ref(), &why).await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "singleton_groups_tests.rs"]
mod tests;
