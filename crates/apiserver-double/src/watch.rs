//! Watch streams: newline-delimited JSON events from a resource version, bookmarks, `410 Gone`.

use std::{
    borrow::Cow,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::{
    render::{Rendering, render_object},
    resources::ResourceDef,
    selectors::Filter,
    server::Landed,
    status::ApiError,
    store::{EventType, Obj, Store, StoredEvent, WatchError},
};

#[derive(Serialize)]
struct WireEvent<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    object: &'a Value,
}

/// Serializes one event as a JSON line.
pub(crate) fn event_line(ty: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&WireEvent { ty, object }).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    Bytes::from(line)
}

/// What a watch request asked for.
pub(crate) struct WatchParams {
    pub def: Arc<ResourceDef>,
    pub filter: Filter,
    /// `None`: start with the current state (resourceVersion unset or "0").
    pub from: Option<u64>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
    pub rendering: Rendering,
    pub bookmark_interval: Duration,
}

const PULL_BATCH: usize = 512;

fn gone_line(floor: u64) -> Bytes {
    let status = ApiError::gone(format!(
        "too old resource version: the requested resource version is older than the oldest retained version {floor}"
    ))
    .to_status();
    event_line("ERROR", &status)
}

/// Sends `410 Gone` and counts it when the watcher got it.
async fn send_gone(tx: &mpsc::Sender<Bytes>, floor: u64, landed: &Landed) {
    if tx.send(gone_line(floor)).await.is_ok() {
        landed.gone_sent.fetch_add(1, Ordering::Relaxed);
    }
}

fn bookmark_line(params: &WatchParams, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = match params.rendering {
        Rendering::Full => {
            json!({"kind": params.def.kind, "apiVersion": params.def.api_version(), "metadata": metadata})
        }
        Rendering::Metadata => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
        }
    };
    event_line("BOOKMARK", &object)
}

/// The line a watcher sends for a stored event, if the event concerns it.
fn line_for(params: &WatchParams, event: &StoredEvent) -> Option<Bytes> {
    let new_match = params.filter.matches(&event.object);
    let ty = match event.ty {
        EventType::Added | EventType::Deleted => new_match.then_some(event.ty)?,
        EventType::Modified => {
            let old_match = event.old.as_ref().is_some_and(|o| params.filter.matches(o));
            match (old_match, new_match) {
                (true, true) => EventType::Modified,
                (false, true) => EventType::Added,
                (true, false) => EventType::Deleted,
                (false, false) => return None,
            }
        }
    };
    if ty == event.ty && params.rendering == Rendering::Full && !params.def.needs_conversion() {
        return Some(event.line());
    }
    let rendered = render_object(&params.def, &event.object, params.rendering);
    Some(event_line(ty.as_str(), &rendered))
}

fn initial_line(params: &WatchParams, object: &Obj) -> Bytes {
    let rendered: Cow<'_, Value> = render_object(&params.def, object, params.rendering);
    event_line("ADDED", &rendered)
}

/// Starts a watch, returning the channel its body reads from.
pub(crate) fn spawn(
    store: Arc<Store>,
    params: WatchParams,
    mut drop_signal: watch::Receiver<u64>,
    landed: Arc<Landed>,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    drop_signal.mark_unchanged();
    tokio::spawn(async move {
        run(store, params, drop_signal, tx, &landed).await;
    });
    rx
}

async fn run(
    store: Arc<Store>,
    params: WatchParams,
    mut drop_signal: watch::Receiver<u64>,
    tx: mpsc::Sender<Bytes>,
    landed: &Landed,
) {
    let start = match store.start_watch(&params.def, &params.filter, params.from) {
        Ok(start) => start,
        Err(WatchError::Gone { floor }) => {
            send_gone(&tx, floor, landed).await;
            return;
        }
        Err(WatchError::NoCollection) => return,
    };
    let mut cursor = start.cursor;
    let mut notify = start.notify;
    notify.borrow_and_update();
    for object in &start.initial {
        if tx.send(initial_line(&params, object)).await.is_err() {
            return;
        }
    }
    if params.send_initial_events
        && params.bookmarks
        && tx.send(bookmark_line(&params, cursor, true)).await.is_err()
    {
        return;
    }
    let deadline = params.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut bookmark_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + params.bookmark_interval,
        params.bookmark_interval,
    );
    bookmark_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Catch up on anything written between the start and the subscription.
    let mut pending = true;
    loop {
        while pending {
            notify.borrow_and_update();
            match store.pull(&params.def, cursor, PULL_BATCH) {
                Ok(pull) => {
                    for event in &pull.events {
                        cursor = event.rv;
                        if let Some(line) = line_for(&params, event)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    pending = pull.more;
                }
                Err(WatchError::Gone { floor }) => {
                    send_gone(&tx, floor, landed).await;
                    return;
                }
                Err(WatchError::NoCollection) => return,
            }
        }
        tokio::select! {
            changed = notify.changed() => {
                if changed.is_err() {
                    return;
                }
                pending = true;
            }
            _ = bookmark_tick.tick(), if params.bookmarks => {
                match store.pull(&params.def, cursor, 1) {
                    Ok(pull) if pull.events.is_empty() => {
                        cursor = cursor.max(pull.global_rv);
                        if tx.send(bookmark_line(&params, cursor, false)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => pending = true,
                    Err(WatchError::Gone { floor }) => {
                        send_gone(&tx, floor, landed).await;
                        return;
                    }
                    Err(WatchError::NoCollection) => return,
                }
            }
            _ = drop_signal.changed() => {
                landed.dropped_watches.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ = tx.closed() => return,
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            } => return,
        }
    }
}
