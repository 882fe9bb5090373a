//! Watches: raw `Api::watch` events, bookmarks, `410 Gone`, and `kube::runtime::watcher`
//! recovering from compaction and from a server restart.

mod common;

use std::{collections::BTreeMap, time::Duration};

use apiserver_double::ApiServer;
use common::*;
use futures::{StreamExt, TryStreamExt};
use kube::{
    Api, CustomResourceExt, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use tokio::sync::mpsc;

async fn start_with(builder: apiserver_double::ApiServerBuilder) -> (ApiServer, kube::Client) {
    let server = builder
        .crd(Widget::crd())
        .namespace("test")
        .start()
        .await
        .expect("server starts");
    let client = server.client().expect("client");
    (server, client)
}

/// Runs a `kube::runtime::watcher` in a task and forwards its events (errors as strings).
fn spawn_watcher(
    api: Api<Widget>,
) -> mpsc::UnboundedReceiver<Result<watcher::Event<Widget>, String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(item) = stream.next().await {
            if tx.send(item.map_err(|e| e.to_string())).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads watcher events until `pred` matches one, returning everything read.
async fn until<F>(
    rx: &mut mpsc::UnboundedReceiver<Result<watcher::Event<Widget>, String>>,
    what: &str,
    mut pred: F,
) -> Vec<Result<watcher::Event<Widget>, String>>
where
    F: FnMut(&Result<watcher::Event<Widget>, String>) -> bool,
{
    within(what, async {
        let mut seen = Vec::new();
        while let Some(item) = rx.recv().await {
            let done = pred(&item);
            seen.push(item);
            if done {
                return seen;
            }
        }
        panic!("watcher ended while waiting for {what}");
    })
    .await
}

fn is_apply_of(item: &Result<watcher::Event<Widget>, String>, name: &str) -> bool {
    matches!(item, Ok(watcher::Event::Apply(w)) if w.name_any() == name)
}

#[tokio::test]
async fn raw_watch_streams_events_and_bookmarks() {
    let (server, client) =
        start_with(ApiServer::builder().bookmark_interval(Duration::from_millis(100))).await;
    let api = widgets(&client);
    let first = api
        .create(&PostParams::default(), &widget("before", "b"))
        .await
        .expect("create");
    let from = first.resource_version().expect("rv");

    let mut stream = api
        .watch(&WatchParams::default().timeout(30), &from)
        .await
        .expect("watch")
        .boxed();
    api.create(&PostParams::default(), &widget("w", "w"))
        .await
        .expect("create");
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("patch");
    api.delete("w", &DeleteParams::default())
        .await
        .expect("delete");

    let mut kinds = Vec::new();
    let mut rvs = Vec::new();
    let mut bookmark_rv = None;
    within("events and a bookmark", async {
        while let Some(event) = stream.try_next().await.expect("event") {
            match event {
                WatchEvent::Added(w) => {
                    kinds.push(("ADDED", w.name_any()));
                    rvs.push(w.resource_version());
                }
                WatchEvent::Modified(w) => {
                    kinds.push(("MODIFIED", w.name_any()));
                    rvs.push(w.resource_version());
                }
                WatchEvent::Deleted(w) => {
                    kinds.push(("DELETED", w.name_any()));
                    rvs.push(w.resource_version());
                }
                WatchEvent::Bookmark(b) => {
                    if kinds.len() == 3 {
                        bookmark_rv = Some(b.metadata.resource_version);
                        return;
                    }
                }
                WatchEvent::Error(e) => panic!("unexpected error event {e:?}"),
            }
        }
    })
    .await;
    assert_eq!(
        kinds,
        vec![
            ("ADDED", "w".to_string()),
            ("MODIFIED", "w".to_string()),
            ("DELETED", "w".to_string())
        ]
    );
    let rvs: Vec<u64> = rvs
        .into_iter()
        .map(|r| r.expect("rv").parse().expect("num"))
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    assert_eq!(
        bookmark_rv.expect("bookmark").parse::<u64>().expect("num"),
        server.resource_version()
    );
    assert!(server.request_count("watch", "widgets") >= 1);
    assert!(server.request_count("create", "widgets") >= 2);
}

#[tokio::test]
async fn watch_from_compacted_version_is_gone() {
    let (server, client) = start().await;
    let api = widgets(&client);
    let w = api
        .create(&PostParams::default(), &widget("old", "o"))
        .await
        .expect("create");
    server.compact_history();
    let mut stream = api
        .watch(&WatchParams::default(), &w.resource_version().expect("rv"))
        .await
        .expect("watch request succeeds; the error comes as an event")
        .boxed();
    let first = within("410 event", stream.try_next())
        .await
        .expect("event")
        .expect("some event");
    match first {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert_eq!(server.faults_landed().gone_sent, 1, "the 410 is counted");
    // A version issued after the compaction is fine.
    let list = api.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch from current")
        .boxed();
    api.create(&PostParams::default(), &widget("new", "n"))
        .await
        .expect("create");
    let event = within("ADDED", stream.try_next()).await.expect("event");
    assert!(
        matches!(event, Some(WatchEvent::Added(ref w)) if w.name_any() == "new"),
        "{event:?}"
    );
}

#[tokio::test]
async fn history_overflow_is_gone_too() {
    let (_server, client) = start_with(ApiServer::builder().history_capacity(5)).await;
    let api = widgets(&client);
    let first = api
        .create(&PostParams::default(), &widget("w0", "w"))
        .await
        .expect("create");
    for i in 1..10 {
        api.create(&PostParams::default(), &widget(&format!("w{i}"), "w"))
            .await
            .expect("create");
    }
    let mut stream = api
        .watch(
            &WatchParams::default(),
            &first.resource_version().expect("rv"),
        )
        .await
        .expect("watch")
        .boxed();
    let event = within("410 event", stream.try_next())
        .await
        .expect("event")
        .expect("some event");
    assert!(
        matches!(event, WatchEvent::Error(ref s) if s.code == 410),
        "{event:?}"
    );
}

#[tokio::test]
async fn label_selector_watch_sees_objects_enter_and_leave() {
    let (server, client) = start().await;
    let api = widgets(&client);
    let rv = server.resource_version().to_string();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=web"), &rv)
        .await
        .expect("watch")
        .boxed();
    api.create(&PostParams::default(), &widget("x", "x"))
        .await
        .expect("create unlabelled");
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .expect("label");
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .expect("relabel");
    let mut seen = Vec::new();
    within("enter and leave", async {
        while seen.len() < 2 {
            match stream.try_next().await.expect("event").expect("some event") {
                WatchEvent::Added(w) => seen.push(("ADDED", w.labels().clone())),
                WatchEvent::Modified(w) => seen.push(("MODIFIED", w.labels().clone())),
                WatchEvent::Deleted(w) => seen.push(("DELETED", w.labels().clone())),
                _ => {}
            }
        }
    })
    .await;
    let web = BTreeMap::from([("app".to_string(), "web".to_string())]);
    let db = BTreeMap::from([("app".to_string(), "db".to_string())]);
    assert_eq!(seen, vec![("ADDED", web), ("DELETED", db)]);
}

#[tokio::test]
async fn drop_watches_ends_open_streams() {
    let (server, client) = start().await;
    let api = widgets(&client);
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    api.create(&PostParams::default(), &widget("a", "a"))
        .await
        .expect("create");
    let first = within("first event", stream.try_next())
        .await
        .expect("event");
    assert!(matches!(first, Some(WatchEvent::Added(_))));
    assert_eq!(server.faults_landed().dropped_watches, 0);
    server.drop_watches();
    let end = within("stream end", stream.try_next())
        .await
        .expect("clean end");
    assert!(end.is_none(), "{end:?}");
    assert_eq!(
        server.faults_landed().dropped_watches,
        1,
        "the one open watch was dropped"
    );
    // With no watch open, dropping hits nothing.
    server.drop_watches();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.faults_landed().dropped_watches, 1);
}

#[tokio::test]
async fn watcher_relists_after_compaction() {
    let (server, client) = start().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("a", "a"))
        .await
        .expect("create");
    let mut rx = spawn_watcher(api.clone());
    let first = until(&mut rx, "first InitDone", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;
    assert!(
        matches!(first.first(), Some(Ok(watcher::Event::Init))),
        "{first:?}"
    );
    assert!(
        first
            .iter()
            .any(|e| matches!(e, Ok(watcher::Event::InitApply(w)) if w.name_any() == "a"))
    );

    api.create(&PostParams::default(), &widget("b", "b"))
        .await
        .expect("create");
    until(&mut rx, "Apply b", |e| is_apply_of(e, "b")).await;

    let lists_before = server.request_count("list", "widgets");
    server.compact_history();
    server.drop_watches();
    let relist = until(&mut rx, "second InitDone", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;
    assert!(
        relist.iter().any(|e| matches!(e, Err(msg) if msg.contains("410") || msg.to_lowercase().contains("expired") || msg.contains("too old"))),
        "the watcher saw the 410: {relist:?}"
    );
    assert!(
        relist.iter().any(|e| matches!(e, Ok(watcher::Event::Init))),
        "{relist:?}"
    );
    let names: Vec<String> = relist
        .iter()
        .filter_map(|e| match e {
            Ok(watcher::Event::InitApply(w)) => Some(w.name_any()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(server.request_count("list", "widgets") > lists_before);

    // The watcher goes on watching after the re-list.
    api.create(&PostParams::default(), &widget("c", "c"))
        .await
        .expect("create");
    until(&mut rx, "Apply c", |e| is_apply_of(e, "c")).await;
}

#[tokio::test]
async fn watcher_recovers_from_a_restart() {
    let (server, client) = start().await;
    let api = widgets(&client);
    let mut rx = spawn_watcher(api.clone());
    until(&mut rx, "InitDone", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;
    api.create(&PostParams::default(), &widget("before", "b"))
        .await
        .expect("create");
    until(&mut rx, "Apply before", |e| is_apply_of(e, "before")).await;

    assert_eq!(server.faults_landed().connections_cut, 0);
    server.stop().await;
    assert!(!server.is_running());
    assert!(
        server.faults_landed().connections_cut >= 1,
        "the watcher's connection was cut: {:?}",
        server.faults_landed()
    );
    assert!(
        api.get("before").await.is_err(),
        "requests fail while stopped"
    );
    until(&mut rx, "a watch error while stopped", |e| e.is_err()).await;

    server.restart().await.expect("restart");
    assert_eq!(
        server
            .get::<Widget>(Some("test"), "before")
            .map(|w| w.name_any())
            .as_deref(),
        Some("before")
    );
    eventually("create after restart", || {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &widget("after", "a"))
                .await
                .ok()
        }
    })
    .await;
    until(&mut rx, "Apply after", |e| is_apply_of(e, "after")).await;
}

#[tokio::test]
async fn thousands_of_objects_list_and_watch() {
    let (server, client) = start().await;
    let api = widgets(&client);
    const N: usize = 3_000;
    let mut tasks = Vec::new();
    for chunk in 0..8 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for i in (chunk..N).step_by(8) {
                api.create(&PostParams::default(), &widget(&format!("w{i:05}"), "w"))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let started = std::time::Instant::now();
    let mut rx = spawn_watcher(api.clone());
    let init = until(&mut rx, "InitDone", |e| {
        matches!(e, Ok(watcher::Event::InitDone))
    })
    .await;
    let applied = init
        .iter()
        .filter(|e| matches!(e, Ok(watcher::Event::InitApply(_))))
        .count();
    assert_eq!(applied, N);
    assert!(
        server.request_count("list", "widgets") >= 6,
        "the watcher paged (500 per page)"
    );
    eprintln!("initial list of {N} objects took {:?}", started.elapsed());

    let one = api
        .patch(
            "w00042",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("patch");
    let events = until(&mut rx, "Apply w00042", |e| is_apply_of(e, "w00042")).await;
    assert_eq!(events.len(), 1, "one event for one change: {events:?}");
    let _ = one;
}

#[tokio::test]
async fn streaming_lists_and_metadata_watches() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("a", "a"))
        .await
        .expect("create");

    // sendInitialEvents=true: ADDED events, then a bookmark marking their end.
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    within("streaming list InitDone", async {
        while let Some(event) = stream.try_next().await.expect("event") {
            match event {
                watcher::Event::InitApply(w) => initial.push(w.name_any()),
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(initial, ["a"]);

    // Metadata-only lists and watches (PartialObjectMetadata).
    let listed = api
        .list_metadata(&ListParams::default())
        .await
        .expect("list_metadata");
    assert_eq!(listed.items[0].metadata.name.as_deref(), Some("a"));
    let got = api.get_metadata("a").await.expect("get_metadata");
    assert_eq!(got.metadata.generation, Some(1));
    let meta_api: Api<kube::core::PartialObjectMeta<Widget>> =
        Api::namespaced(client.clone(), "test");
    let mut meta_stream = watcher(meta_api, watcher::Config::default()).boxed();
    within("metadata watcher InitDone", async {
        while let Some(event) = meta_stream.try_next().await.expect("event") {
            if matches!(event, watcher::Event::InitDone) {
                break;
            }
        }
    })
    .await;
    api.create(&PostParams::default(), &widget("b", "b"))
        .await
        .expect("create");
    let applied = within("metadata Apply", async {
        loop {
            if let Some(watcher::Event::Apply(m)) = meta_stream.try_next().await.expect("event") {
                return m;
            }
        }
    })
    .await;
    assert_eq!(applied.metadata.name.as_deref(), Some("b"));
}
