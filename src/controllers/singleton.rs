//! Controllers for registry-level singletons (the replication configuration, the registry
//! scanning configuration): ECR holds one document per registry, and every object of the kind
//! contributes to it.
//!
//! All objects are reconciled together: any change (or the resync timer) runs one pass, observe
//! (the objects in a stable order, creation time then name; ECR's document, read once) → plan
//! (pure: [`Setting::merge`] of the objects into the desired document, [`plan_sync`] of the one
//! write, [`final_outcome`] and [`applied_event`] per object) → apply (the document written at
//! most once) → each object's status. A resync costs one read for the whole registry, however
//! many objects there are, and nothing at all while no object exists.
//!
//! Objects naming a RegistryTarget in `spec.registryRef` make up that target's registry's
//! document, apart from every other registry's: a pass runs the above once per registry
//! ([`super::singleton_groups`]).
//!
//! Ownership: an object's status records that its part was written. When ECR holds a document
//! the operator did not write (no object was ever applied) the objects report Conflict instead
//! of overwriting it. From the first write on, the document is the operator's: drift is
//! overwritten, and when the last participating object goes the document is cleared, whatever
//! it holds by then (the deleted objects' specs may have changed since the last write).

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::{Instrument, info, warn};

use super::claim::age_key;
use super::singleton_groups::reconcile_all;
use super::status::{self, Announcement, Reported};
use super::targets::TargetIndex;
use super::{Context, Error, FINALIZER};
use crate::api::conditions::Reason;
use crate::registry::{Registry, RegistryError};

/// What became of one object in a merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Part of the document: `count` rules from index `first`.
    Applied {
        first: usize,
        count: usize,
    },
    /// Takes no part in the document (e.g. a ScanPolicy with enforcement settings only).
    NotParticipating(String),
    Invalid(String),
    Conflict(String),
    LimitExceeded(String),
}

impl Outcome {
    fn participates(&self) -> bool {
        matches!(self, Outcome::Applied { .. })
    }
}

/// One registry-level setting and the kind that declares it.
#[async_trait]
pub trait Setting: Send + Sync + 'static {
    type Object: Reported;
    type Doc: Clone + Debug + Default + Send + Sync + 'static;
    /// What ECR calls the document, for messages.
    const WHAT: &'static str;

    /// Problems in one object's spec that the CRD schema cannot catch (no I/O).
    fn validate(obj: &Self::Object) -> Result<(), String>;
    /// Merges valid objects, oldest first, into the document; one outcome per object.
    fn merge(objects: &[&Self::Object]) -> (Self::Doc, Vec<Outcome>);
    /// True when the document configures nothing.
    fn is_empty(doc: &Self::Doc) -> bool;
    /// True when two documents mean the same.
    fn equivalent(a: &Self::Doc, b: &Self::Doc) -> bool;
    async fn read(registry: &dyn Registry) -> Result<Self::Doc, RegistryError>;
    async fn write(registry: &dyn Registry, doc: &Self::Doc) -> Result<(), RegistryError>;
    /// Records the object's part of the document in its status.
    fn set_applied(status: &mut <Self::Object as Reported>::Status, outcome: &Outcome);
    /// Whether the status says this object's part was written to ECR.
    fn was_applied(obj: &Self::Object) -> bool;
    /// The Ready message for an object whose part is in ECR.
    fn ready_message(outcome: &Outcome) -> String;
    /// The RegistryTarget the object names (`spec.registryRef`), `None` for the own registry.
    fn target(obj: &Self::Object) -> Option<&str>;
}

/// What one pass remembers for the next, per registry (`None`: the own registry).
pub(super) type PassStates<S> = HashMap<Option<String>, PassState<S>>;

/// What one pass remembers for the next, for one registry.
pub(super) struct PassState<S: Setting> {
    /// A document ECR refused as invalid: not sent again until the desired document changes.
    refused: Option<(S::Doc, RegistryError)>,
}

impl<S: Setting> Default for PassState<S> {
    fn default() -> Self {
        PassState { refused: None }
    }
}

/// Runs the controller of one registry-level setting until `shutdown`.
pub async fn run<S: Setting>(
    ctx: Arc<Context>,
    targets: Arc<TargetIndex>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let kind = <S::Object as Reported>::KIND;
    super::require_crd::<S::Object>(&ctx).await?;
    let (reader, stream) = super::watched(&ctx);
    let mut stream = stream.boxed();
    // A target becoming Ready (or not) changes where its objects' parts go.
    let mut target_changes = targets.changes().boxed();
    let mut shutdown = pin!(shutdown);
    let debounce = Duration::from_millis(100);
    let mut states = PassStates::<S>::new();
    let mut due = Instant::now() + ctx.config.sweep_interval;
    // Before the first list every target would look missing.
    if !super::ready_unless_shutdown(targets.ready(), &mut shutdown).await {
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            event = stream.next() => match event {
                Some(Ok(_)) => due = due.min(Instant::now() + debounce),
                Some(Err(e)) => warn!(kind, error = %e, "watch failed"),
                None => break,
            },
            Some(()) = target_changes.next() => due = due.min(Instant::now() + debounce),
            _ = tokio::time::sleep_until(due) => {
                due = Instant::now() + pass::<S>(&ctx, &targets, &reader, &mut states).await;
            }
        }
    }
    Ok(())
}

/// One pass, one reconcile of every object: one span, one trace id. Returns the wait until the
/// next pass: the resync interval, or a backoff after a failure.
async fn pass<S: Setting>(
    ctx: &Context,
    targets: &TargetIndex,
    store: &Store<S::Object>,
    states: &mut PassStates<S>,
) -> Duration {
    let kind = <S::Object as Reported>::KIND;
    let span = crate::telemetry::reconcile_span(kind, "*");
    async {
        let started = std::time::Instant::now();
        let result = reconcile_all::<S>(ctx, targets, store, states).await;
        ctx.observe(&kind.to_ascii_lowercase(), &result, started);
        match result {
            Ok(()) => {
                ctx.reset_backoff(kind);
                ctx.config.sweep_interval
            }
            Err(e) => {
                let wait = ctx.backoff(kind);
                warn!(kind, error = %e, retry_in = ?wait, "reconcile failed");
                wait
            }
        }
    }
    .instrument(span)
    .await
}

fn copy_error(e: &RegistryError) -> RegistryError {
    RegistryError {
        class: e.class,
        operation: e.operation,
        code: e.code.clone(),
        message: e.message.clone(),
    }
}

/// Validates and merges `objects` (already in stable order).
fn plan<S: Setting>(objects: &[Arc<S::Object>]) -> (S::Doc, Vec<Outcome>) {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; objects.len()];
    let mut valid = Vec::new();
    let mut valid_index = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        match S::validate(o) {
            Ok(()) => {
                valid.push(o.as_ref());
                valid_index.push(i);
            }
            Err(msg) => outcomes[i] = Some(Outcome::Invalid(msg)),
        }
    }
    let (doc, merged) = S::merge(&valid);
    for (i, outcome) in valid_index.into_iter().zip(merged) {
        outcomes[i] = Some(outcome);
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::NotParticipating(String::new())))
        .collect();
    (doc, outcomes)
}

/// Whether ECR's document is read at all: when some object takes part, some is being deleted,
/// or some had its part written and no longer takes part (its spec dropped its rules, or became
/// invalid), whose part must come out of the document.
pub fn sync_needed(participating: bool, deleting: bool, withdrawn: bool) -> bool {
    participating || deleting || withdrawn
}

/// What ECR's document, as read, says about the desired one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation<R> {
    /// ECR's document means the same as the desired one.
    pub in_sync: bool,
    /// ECR's document configures nothing.
    pub empty: bool,
    /// ECR refused this very desired document before: why.
    pub refused: Option<R>,
}

/// What a pass does with ECR's document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncPlan<R> {
    /// ECR already holds the desired document.
    InSync,
    /// ECR holds a document the operator never wrote: the participating objects report Conflict.
    Conflict,
    /// Not sent again: ECR refused it, and will until a spec changes.
    Refused(R),
    Write,
    /// Nothing takes part any more and the document is the operator's: cleared.
    Clear,
    /// Nothing takes part and ECR holds a document the operator did not write: left in place.
    LeaveNotOwned,
    /// Nothing takes part and ECR's document is empty.
    Nothing,
}

/// Decides the write of ECR's one document. `ever_applied`: some object (active or deleting)
/// had its part written, which makes the document the operator's.
///
/// Without participating objects the document goes when it is the operator's, whatever it
/// holds: comparing it with the current specs would not do, as a spec changed after the last
/// write (say, while its object was being deleted) never reached ECR, and the stale document
/// would stay for good.
pub fn plan_sync<R>(participating: bool, ever_applied: bool, seen: Observation<R>) -> SyncPlan<R> {
    match (participating, seen) {
        (true, Observation { in_sync: true, .. }) => SyncPlan::InSync,
        (true, Observation { empty: false, .. }) if !ever_applied => SyncPlan::Conflict,
        (
            true,
            Observation {
                refused: Some(why), ..
            },
        ) => SyncPlan::Refused(why),
        (true, _) => SyncPlan::Write,
        (false, Observation { empty: true, .. }) => SyncPlan::Nothing,
        (false, _) if ever_applied => SyncPlan::Clear,
        (false, _) => SyncPlan::LeaveNotOwned,
    }
}

/// Objects that are active, and objects being deleted.
type ActiveAndDeleting<K> = (Vec<Arc<K>>, Vec<Arc<K>>);

/// The objects of the kind, oldest first: those active, and those being deleted that still hold
/// our finalizer. `None` when there is no object at all.
pub(super) fn observe_objects<K: Reported>(store: &Store<K>) -> Option<ActiveAndDeleting<K>> {
    let mut all = store.state();
    if all.is_empty() {
        return None;
    }
    all.sort_by_key(|o| age_key(o.as_ref()));
    let (active, deleting): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|o| o.meta().deletion_timestamp.is_none());
    let deleting = deleting.into_iter().filter(|o| has_finalizer(o.as_ref()));
    Some((active, deleting.collect()))
}

pub(super) fn has_finalizer<K: Resource>(obj: &K) -> bool {
    obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// One registry's objects: observe → plan → apply → status, against `registry`.
pub(super) async fn reconcile_group<S: Setting>(
    ctx: &Context,
    registry: &dyn Registry,
    active: &[Arc<S::Object>],
    deleting: &[Arc<S::Object>],
    state: &mut PassState<S>,
) -> Result<(), Error> {
    let (desired, outcomes) = plan::<S>(active);
    let participating = outcomes.iter().any(Outcome::participates);
    let withdrawn = active.iter().any(|o| S::was_applied(o));
    let result = if sync_needed(participating, !deleting.is_empty(), withdrawn) {
        let objects = Objects { active, deleting };
        sync_registry::<S>(ctx, registry, objects, &desired, &outcomes, state).await
    } else {
        Ok(SyncResult::default())
    };
    match result {
        Ok(sync) => {
            for (o, outcome) in active.iter().zip(&outcomes) {
                let outcome = final_outcome(outcome, sync.conflict.as_deref());
                write_outcome::<S>(ctx, o.as_ref(), &outcome, sync.wrote).await?;
            }
            // ECR no longer holds (or never held) the deleting objects' parts.
            for o in deleting {
                remove_finalizer(ctx, o.as_ref()).await?;
            }
            Ok(())
        }
        Err(e) => report_failure::<S>(ctx, active, &outcomes, e).await,
    }
}

/// An object's outcome once ECR was read: a participating object reports the conflict, if any.
pub fn final_outcome(outcome: &Outcome, conflict: Option<&str>) -> Outcome {
    match conflict {
        Some(m) if outcome.participates() => Outcome::Conflict(m.to_string()),
        _ => outcome.clone(),
    }
}

/// An object's error when the sync failed with `e`: participating objects report it, the others
/// their own problem (none for an object that merely takes no part).
pub fn failure_of(outcome: &Outcome, e: &RegistryError) -> Option<Error> {
    if outcome.participates() {
        Some(Error::Registry(copy_error(e)))
    } else {
        outcome_error(outcome)
    }
}

async fn report_failure<S: Setting>(
    ctx: &Context,
    active: &[Arc<S::Object>],
    outcomes: &[Outcome],
    e: RegistryError,
) -> Result<(), Error> {
    for (o, outcome) in active.iter().zip(outcomes) {
        if let Some(err) = failure_of(outcome, &e) {
            write_failure::<S>(ctx, o.as_ref(), &err).await?;
        }
    }
    if e.class.is_permanent() {
        // Reported on the objects; retrying cannot help until a spec changes.
        Ok(())
    } else {
        Err(Error::Registry(e))
    }
}

#[derive(Default)]
struct SyncResult {
    /// ECR's document was written in this pass.
    wrote: bool,
    /// ECR holds a document the operator did not write.
    conflict: Option<String>,
}

/// One registry's objects, active and being deleted.
struct Objects<'a, K> {
    active: &'a [Arc<K>],
    deleting: &'a [Arc<K>],
}

async fn sync_registry<S: Setting>(
    ctx: &Context,
    registry: &dyn Registry,
    Objects { active, deleting }: Objects<'_, S::Object>,
    desired: &S::Doc,
    outcomes: &[Outcome],
    state: &mut PassState<S>,
) -> Result<SyncResult, RegistryError> {
    let kind = <S::Object as Reported>::KIND;
    let observed = S::read(registry).await?;
    let seen = Observation {
        in_sync: S::equivalent(&observed, desired),
        empty: S::is_empty(&observed),
        refused: state
            .refused
            .as_ref()
            .filter(|(doc, _)| S::equivalent(doc, desired))
            .map(|(_, e)| copy_error(e)),
    };
    let participating = outcomes.iter().any(Outcome::participates);
    let ever_applied = active.iter().chain(deleting).any(|o| S::was_applied(o));
    match plan_sync(participating, ever_applied, seen) {
        SyncPlan::InSync => state.refused = None,
        SyncPlan::Conflict => {
            return Ok(SyncResult {
                wrote: false,
                conflict: Some(foreign_document(S::WHAT)),
            });
        }
        SyncPlan::Refused(e) => return Err(e),
        SyncPlan::Write => return write_document(registry, desired, state).await,
        SyncPlan::Clear => {
            S::write(registry, &S::Doc::default()).await?;
            info!(kind, "cleared the registry {}", S::WHAT);
            let note = format!("Cleared the registry {}", S::WHAT);
            announce_deleting(ctx, deleting, "Deleted", note).await;
        }
        SyncPlan::LeaveNotOwned => {
            let note = format!(
                "Left the registry {} in place: it is not what ecr-operator wrote",
                S::WHAT
            );
            announce_deleting(ctx, deleting, "NotOwned", note).await;
        }
        SyncPlan::Nothing => {}
    }
    Ok(SyncResult::default())
}

/// The Conflict of the participating objects when ECR holds a document the operator never wrote.
pub fn foreign_document(what: &str) -> String {
    format!(
        "the registry already has a {what} that ecr-operator did not write; it is left \
         untouched (remove it, e.g. with the AWS console or CLI, to let ecr-operator manage it)"
    )
}

/// Writes the desired document; one ECR refuses for good is remembered, not sent again.
async fn write_document<S: Setting>(
    registry: &dyn Registry,
    desired: &S::Doc,
    state: &mut PassState<S>,
) -> Result<SyncResult, RegistryError> {
    match S::write(registry, desired).await {
        Ok(()) => {
            state.refused = None;
            info!(
                kind = <S::Object as Reported>::KIND,
                "wrote the registry {}",
                S::WHAT
            );
            Ok(SyncResult {
                wrote: true,
                conflict: None,
            })
        }
        Err(e) => {
            if e.class.is_permanent() {
                state.refused = Some((desired.clone(), copy_error(&e)));
            }
            Err(e)
        }
    }
}

/// A Normal event on each object being deleted.
async fn announce_deleting<K: Reported>(
    ctx: &Context,
    deleting: &[Arc<K>],
    reason: &str,
    note: String,
) {
    for o in deleting {
        ctx.event(
            o.as_ref(),
            EventType::Normal,
            reason,
            "Delete",
            note.clone(),
        )
        .await;
    }
}

fn outcome_error(outcome: &Outcome) -> Option<Error> {
    match outcome {
        Outcome::Invalid(m) => Some(Error::Invalid(m.clone())),
        Outcome::Conflict(m) => Some(Error::Conflict(m.clone())),
        Outcome::LimitExceeded(m) => Some(Error::LimitExceeded(m.clone())),
        Outcome::Applied { .. } | Outcome::NotParticipating(_) => None,
    }
}

/// The event of an object whose part was written in this pass: Applied after a change of the
/// object, DriftCorrected when ECR's document had been changed outside.
pub fn applied_event(what: &str, written: bool, spec_changed: bool) -> Option<Announcement> {
    let (reason, note) = match (written, spec_changed) {
        (false, _) => return None,
        (true, true) => ("Applied", format!("Wrote the registry {what}")),
        (true, false) => (
            "DriftCorrected",
            format!("Restored the registry {what} changed outside ecr-operator"),
        ),
    };
    Some(Announcement {
        reason,
        action: "Update",
        note,
    })
}

async fn write_outcome<S: Setting>(
    ctx: &Context,
    obj: &S::Object,
    outcome: &Outcome,
    wrote: bool,
) -> Result<(), Error> {
    if let Some(err) = outcome_error(outcome) {
        return write_failure::<S>(ctx, obj, &err).await;
    }
    let mut st = status::current(obj);
    let message = match outcome {
        Outcome::NotParticipating(m) => m.clone(),
        other => S::ready_message(other),
    };
    S::set_applied(&mut st, outcome);
    let spec_changed = status::ready_reason(obj).as_deref() != Some(Reason::Synced.as_str())
        || obj
            .status()
            .map(|s| <S::Object as Reported>::common(s).observed_generation)
            != Some(obj.meta().generation);
    let event = applied_event(S::WHAT, wrote && outcome.participates(), spec_changed);
    status::write_ready(ctx, obj, st, message, event).await
}

pub(super) async fn write_failure<S: Setting>(
    ctx: &Context,
    obj: &S::Object,
    err: &Error,
) -> Result<(), Error> {
    // Not part of ECR's document (or not known to be): the status must not say it is.
    let not_applied = !matches!(err, Error::Registry(_));
    status::write_failure_with(ctx, obj, err, |st| {
        if not_applied {
            S::set_applied(st, &Outcome::NotParticipating(String::new()));
        }
    })
    .await
}

pub(super) async fn add_finalizer<K: Reported>(ctx: &Context, obj: &K) -> Result<(), Error> {
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    patch_finalizers(ctx, obj, finalizers).await
}

async fn remove_finalizer<K: Reported>(ctx: &Context, obj: &K) -> Result<(), Error> {
    let finalizers: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    match patch_finalizers(ctx, obj, finalizers).await {
        // Gone already.
        Err(Error::Kube(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        other => other,
    }
}

/// Replaces the finalizer list, guarded by the resourceVersion so a concurrent change is not lost
/// (a 409 retries on the next pass).
async fn patch_finalizers<K: Reported>(
    ctx: &Context,
    obj: &K,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": obj.resource_version(),
        }
    });
    obj.api_for(ctx.client.clone())
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Unique `(region, registryId)` destinations, for limit messages.
pub fn unique<T: std::hash::Hash + Eq + Clone>(items: impl IntoIterator<Item = T>) -> usize {
    items.into_iter().collect::<HashSet<T>>().len()
}

#[cfg(test)]
#[path = "singleton_tests.rs"]
mod tests;
