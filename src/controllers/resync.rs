//! Resyncs that leave room for event-driven work.
//!
//! kube's `reconcile_all_on` hands the controller every object at once. Its scheduler keeps
//! requests that are due in a hash set and takes them in that set's order, so at 100,000
//! objects a spec change made during a sweep's resync waits behind a random share of the whole
//! resync: seconds. A paced resync gives the controller one batch of objects, and the next only
//! once it has finished reconciling half as many (anything: a watch event's reconcile counts
//! too), so that a watch event never waits behind much more than one batch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;

/// The longest a batch waits for the one before it: a safety net for requests the scheduler
/// merged away, never reached while the controller keeps reconciling.
const BATCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// Reconciles a controller finished (of any cause), as its result stream reports them.
#[derive(Debug)]
pub struct Progress {
    finished: watch::Sender<u64>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            finished: watch::Sender::new(0),
        }
    }
}

impl Progress {
    /// Reconciles finished so far.
    pub fn finished(&self) -> u64 {
        *self.finished.borrow()
    }

    fn finish_one(&self) {
        self.finished.send_modify(|n| *n += 1);
    }

    /// Waits until `target` reconciles have finished, or `max`.
    async fn reached(&self, target: u64, max: Duration) {
        let mut rx = self.finished.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|n| *n >= target)).await;
    }

    /// `results` (a controller's `run` stream), counting each finished reconcile.
    pub fn count<S: Stream>(self: &Arc<Self>, results: S) -> impl Stream<Item = S::Item> {
        let progress = self.clone();
        results.inspect(move |_| progress.finish_one())
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
    /// Reconciles to be finished before the next batch.
    release_at: u64,
}

/// Every object in `store` after each item of `signals`, `batch` at a time as the controller
/// catches up (see the module). Signals that come during a pass are answered by one more
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
        release_at: 0,
    };
    futures::stream::unfold(pass, next_batch).flat_map(futures::stream::iter)
}

async fn next_batch<K>(mut pass: Pass<K>) -> Option<(Vec<ObjectRef<K>>, Pass<K>)>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    // Every batch, the first of a pass too, waits for the one before.
    pass.progress.reached(pass.release_at, BATCH_WAIT_MAX).await;
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
    pass.release_at = pass.progress.finished() + (take as u64).div_ceil(2);
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
        refs.iter().map(|r| r.name.clone()).collect()
    }

    #[tokio::test]
    async fn a_pass_hands_out_each_object_once_a_batch_at_a_time() {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::unbounded();
        let mut refs = Box::pin(paced(store_of(10), rx, progress.clone(), 4));
        assert!(ready_now(&mut refs).is_empty(), "nothing before a signal");
        tx.unbounded_send(()).expect("send");
        let mut seen = ready_now(&mut refs);
        assert_eq!(seen.len(), 4, "one batch");
        // The next batch waits for half of this one (2) to finish.
        progress.finish_one();
        assert!(ready_now(&mut refs).is_empty());
        progress.finish_one();
        let second = ready_now(&mut refs);
        assert_eq!(second.len(), 4);
        seen.extend(second);
        progress.finish_one();
        progress.finish_one();
        seen.extend(ready_now(&mut refs));
        let mut got = names(&seen);
        got.sort();
        let want: Vec<String> = (0..10).map(|i| format!("cm-{i:02}")).collect();
        assert_eq!(got, want, "every object exactly once");
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
        assert_eq!(ready_now(&mut refs).len(), 2);
        // Two more during the pass: one more pass.
        tx.unbounded_send(()).expect("send");
        tx.unbounded_send(()).expect("send");
        progress.finish_one();
        assert_eq!(ready_now(&mut refs).len(), 2, "the rest of the first pass");
        assert!(
            ready_now(&mut refs).is_empty(),
            "the next pass waits its turn too"
        );
        progress.finish_one();
        let mut again = ready_now(&mut refs);
        assert_eq!(again.len(), 2, "the second pass begins");
        progress.finish_one();
        again.extend(ready_now(&mut refs));
        let mut got = names(&again);
        got.sort();
        assert_eq!(
            got,
            ["cm-00", "cm-01", "cm-02", "cm-03"],
            "a whole pass again"
        );
        progress.finish_one();
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
