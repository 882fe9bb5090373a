//! Resyncs that leave room for event-driven work.
//!
//! kube's `reconcile_all_on` hands the controller every object at once. A runner at its
//! concurrency moves every due request into a hash set and takes them in that set's order, so
//! a spec change made during a resync waits behind a random share of it: at 100,000 objects,
//! seconds. Giving batches is not enough while the set is refilled before it drains: a request
//! whose hash sorts late is passed over by each new batch, and waited until the end of the
//! resync in the repos-100k benchmark (1.7-10.4 s). A paced resync therefore hands the
//! controller one batch of at most its concurrency, and the next only once every object of
//! that batch has been reconciled: the runner is rarely full, takes due requests in time
//! order, and a watch event waits behind one batch at most.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use kube::Resource;
use kube::runtime::controller::{Action, Error as ControllerError};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;

/// The longest a batch waits for the one before it: a safety net, never reached while the
/// controller keeps reconciling (every request ends in a result naming its object, a merged
/// or deleted one too).
const BATCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// An object as a controller's results name it: namespace and name.
type Key = (Option<String>, String);

/// The objects of the batch handed out last that the controller has not reconciled since.
#[derive(Debug)]
pub struct Progress {
    outstanding: watch::Sender<HashSet<Key>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            outstanding: watch::Sender::new(HashSet::new()),
        }
    }
}

impl Progress {
    fn hand_out<K: Resource<DynamicType = ()>>(&self, batch: &[ObjectRef<K>]) {
        self.outstanding.send_modify(|o| {
            o.extend(batch.iter().map(|r| (r.namespace.clone(), r.name.clone())));
        });
    }

    fn finish(&self, namespace: &Option<String>, name: &str) {
        // Every reconcile passes here: no key is built while no batch is out.
        self.outstanding.send_if_modified(|o| {
            !o.is_empty() && o.remove(&(namespace.clone(), name.to_string()))
        });
    }

    /// Waits until the last batch is reconciled, or `max` (then forgets what is left of it).
    async fn drained(&self, max: Duration) {
        let mut rx = self.outstanding.subscribe();
        if tokio::time::timeout(max, rx.wait_for(HashSet::is_empty))
            .await
            .is_err()
        {
            self.outstanding.send_modify(HashSet::clear);
        }
    }

    /// `results` (a controller's `run` stream), noting each object reconciled.
    pub fn count<K, S, RErr: 'static, QErr: 'static>(
        self: &Arc<Self>,
        results: S,
    ) -> impl Stream<Item = S::Item>
    where
        K: Resource<DynamicType = ()>,
        S: Stream<Item = Result<(ObjectRef<K>, Action), ControllerError<RErr, QErr>>>,
    {
        let progress = self.clone();
        results.inspect(move |result| match result {
            Ok((object, _)) => progress.finish(&object.namespace, &object.name),
            Err(ControllerError::ObjectNotFound(object))
            | Err(ControllerError::ReconcilerFailed(_, object)) => {
                progress.finish(&object.namespace, &object.name)
            }
            Err(_) => {}
        })
    }
}

/// What a paced resync holds between batches.
struct Pass<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    signals: futures::stream::Fuse<BoxStream<'static, ()>>,
    progress: Arc<Progress>,
    batch: usize,
    /// The objects of this pass still to hand out (references are made a batch at a time:
    /// 100,000 at once are 400,000 allocations in one poll of the controller).
    queue: VecDeque<Arc<K>>,
    /// A signal came during this pass: the objects already handed out must be seen again.
    again: bool,
}

/// Every object in `store` after each item of `signals`, `batch` at a time as the controller
/// reconciles them (see the module). Signals that come during a pass are answered by one more
/// pass after it; signals already waiting when a pass starts are answered by that pass.
pub fn paced<K, S>(
    store: Store<K>,
    signals: S,
    progress: Arc<Progress>,
    batch: usize,
) -> impl Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: Stream<Item = ()> + Send + 'static,
{
    let pass = Pass {
        store,
        signals: signals.boxed().fuse(),
        progress,
        batch: batch.max(1),
        queue: VecDeque::new(),
        again: false,
    };
    futures::stream::unfold(pass, next_batch).flat_map(futures::stream::iter)
}

async fn next_batch<K>(mut pass: Pass<K>) -> Option<(Vec<ObjectRef<K>>, Pass<K>)>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    // Every batch, the first of a pass too, waits for the one before.
    pass.progress.drained(BATCH_WAIT_MAX).await;
    if pass.queue.is_empty() {
        if !pass.again {
            pass.signals.next().await?;
        }
        pass.again = false;
        // Signals already waiting ask for what this pass does.
        while let Some(Some(())) = pass.signals.next().now_or_never() {}
        pass.queue = pass.store.state().into();
    } else {
        // (A signal stream that ended lets this pass finish.)
        while let Some(Some(())) = pass.signals.next().now_or_never() {
            pass.again = true;
        }
    }
    let take = pass.batch.min(pass.queue.len());
    let batch: Vec<ObjectRef<K>> = pass
        .queue
        .drain(..take)
        .map(|o| ObjectRef::from_obj(&*o))
        .collect();
    pass.progress.hand_out(&batch);
    Some((batch, pass))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn store_of(n: usize) -> Store<ConfigMap> {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        for i in 0..n {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some(format!("cm-{i:02}"));
            cm.metadata.namespace = Some("ns".into());
            writer.apply_watcher_event(&Event::Apply(cm));
        }
        store
    }

    /// The items ready now, without waiting.
    fn ready_now<T>(stream: &mut (impl Stream<Item = T> + Unpin)) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(Some(item)) = stream.next().now_or_never() {
            out.push(item);
        }
        out
    }

    fn names(refs: &[ObjectRef<ConfigMap>]) -> Vec<String> {
        let mut names: Vec<String> = refs.iter().map(|r| r.name.clone()).collect();
        names.sort();
        names
    }

    /// The controller reconciled these.
    fn reconciled(progress: &Progress, refs: &[ObjectRef<ConfigMap>]) {
        for r in refs {
            progress.finish(&r.namespace, &r.name);
        }
    }

    #[tokio::test]
    async fn a_pass_hands_out_each_object_once_a_batch_at_a_time() {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::unbounded();
        let mut refs = Box::pin(paced(store_of(10), rx, progress.clone(), 4));
        assert!(ready_now(&mut refs).is_empty(), "nothing before a signal");
        tx.unbounded_send(()).expect("send");
        let first = ready_now(&mut refs);
        assert_eq!(first.len(), 4, "one batch");
        // The next batch waits for every object of this one.
        reconciled(&progress, &first[..3]);
        assert!(ready_now(&mut refs).is_empty());
        // Another object's reconcile (a watch event's) does not count.
        progress.finish(&Some("ns".into()), "elsewhere");
        assert!(ready_now(&mut refs).is_empty());
        reconciled(&progress, &first[3..]);
        let second = ready_now(&mut refs);
        assert_eq!(second.len(), 4);
        reconciled(&progress, &second);
        let third = ready_now(&mut refs);
        reconciled(&progress, &third);
        let all = [first, second, third].concat();
        let want: Vec<String> = (0..10).map(|i| format!("cm-{i:02}")).collect();
        assert_eq!(names(&all), want, "every object exactly once");
        assert!(
            ready_now(&mut refs).is_empty(),
            "nothing until the next signal"
        );
    }

    #[tokio::test]
    async fn signals_during_a_pass_bring_one_more_pass_and_waiting_ones_none() {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::unbounded();
        let mut refs = Box::pin(paced(store_of(4), rx, progress.clone(), 2));
        // Three signals waiting at the start: one pass answers them all.
        for _ in 0..3 {
            tx.unbounded_send(()).expect("send");
        }
        let first = ready_now(&mut refs);
        assert_eq!(first.len(), 2);
        // Two more during the pass: one more pass.
        tx.unbounded_send(()).expect("send");
        tx.unbounded_send(()).expect("send");
        reconciled(&progress, &first);
        let rest = ready_now(&mut refs);
        assert_eq!(rest.len(), 2, "the rest of the first pass");
        assert!(
            ready_now(&mut refs).is_empty(),
            "the next pass waits its turn too"
        );
        reconciled(&progress, &rest);
        let mut again = ready_now(&mut refs);
        assert_eq!(again.len(), 2, "the second pass begins");
        reconciled(&progress, &again);
        let more = ready_now(&mut refs);
        reconciled(&progress, &more);
        again.extend(more);
        assert_eq!(
            names(&again),
            ["cm-00", "cm-01", "cm-02", "cm-03"],
            "a whole pass again"
        );
        assert!(ready_now(&mut refs).is_empty(), "no third pass");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_never_finished_is_released_after_the_safety_wait() {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::unbounded();
        let mut refs = Box::pin(paced(store_of(3), rx, progress.clone(), 2));
        tx.unbounded_send(()).expect("send");
        let first = names(&ready_now(&mut refs));
        assert_eq!(first.len(), 2);
        let started = tokio::time::Instant::now();
        let third = refs.next().await.expect("released");
        assert!(
            !first.contains(&third.name),
            "{first:?} then {}",
            third.name
        );
        assert_eq!(started.elapsed(), BATCH_WAIT_MAX);
        // What was left of the stuck batch is forgotten: the next pass is not held by it.
        progress.finish(&third.namespace, &third.name);
        tx.unbounded_send(()).expect("send");
        assert_eq!(ready_now(&mut refs).len(), 2);
    }

    #[tokio::test]
    async fn an_empty_store_passes_quietly_and_an_ended_signal_stream_ends_it() {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::unbounded();
        let mut refs = Box::pin(paced(store_of(0), rx, progress, 2));
        tx.unbounded_send(()).expect("send");
        assert!(ready_now(&mut refs).is_empty());
        drop(tx);
        assert!(refs.next().await.is_none());
    }
}
