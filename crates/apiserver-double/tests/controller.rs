//! A small `kube::runtime::Controller` with a finalizer and server-side-apply status, run against
//! the double exactly as against a cluster.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use futures::StreamExt;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    runtime::{
        Controller,
        controller::Action,
        finalizer::{self, Event, finalizer},
        watcher,
    },
};
use serde_json::json;

const FINALIZER: &str = "test.apiserver-double.dev/cleanup";

type ReconcileError = finalizer::Error<kube::Error>;

async fn reconcile(widget: Arc<Widget>, client: Arc<Client>) -> Result<Action, ReconcileError> {
    let api: Api<Widget> =
        Api::namespaced((*client).clone(), &widget.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, widget, |event| async {
        match event {
            Event::Apply(w) => {
                let status = json!({
                    "apiVersion": format!("{GROUP}/v1"),
                    "kind": "Widget",
                    "status": {"phase": "Ready", "observedGeneration": w.metadata.generation},
                });
                api.patch_status(
                    &w.name_any(),
                    &PatchParams::apply("widget-controller").force(),
                    &Patch::Apply(status),
                )
                .await?;
                Ok(Action::requeue(Duration::from_secs(300)))
            }
            Event::Cleanup(_) => Ok(Action::await_change()),
        }
    })
    .await
}

fn error_policy(_widget: Arc<Widget>, _error: &ReconcileError, _client: Arc<Client>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test]
async fn controller_with_finalizer_and_status() {
    let (server, client) = start().await;
    let api = widgets(&client);
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(client.clone()))
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    api.create(&PostParams::default(), &widget("c1", "c1"))
        .await
        .expect("create");
    eventually("finalizer and observed generation 1", || async {
        let w = server.get::<Widget>(Some("test"), "c1")?;
        (w.finalizers() == [FINALIZER] && w.status?.observed_generation == Some(1)).then_some(())
    })
    .await;

    api.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("patch");
    eventually("observed generation 2", || async {
        let w = server.get::<Widget>(Some("test"), "c1")?;
        (w.status?.observed_generation == Some(2)).then_some(())
    })
    .await;

    api.delete("c1", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("deleted after cleanup", || async {
        server
            .get::<Widget>(Some("test"), "c1")
            .is_none()
            .then_some(())
    })
    .await;
    handle.abort();
}

#[tokio::test]
async fn event_recorder_creates_then_patches_a_series() {
    use kube::{
        Resource,
        runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter},
    };
    let (server, client) = start().await;
    let w = widgets(&client)
        .create(&PostParams::default(), &widget("ev", "ev"))
        .await
        .expect("create");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "widget-controller".into(),
            instance: Some("pod-1".into()),
        },
    );
    let event = KubeEvent {
        type_: EventType::Normal,
        reason: "Created".into(),
        note: Some("created in the registry".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder
        .publish(&event, &w.object_ref(&()))
        .await
        .expect("first publish");
    recorder
        .publish(&event, &w.object_ref(&()))
        .await
        .expect("second publish");
    let events = server.objects("events.k8s.io", "events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "Created");
    assert_eq!(events[0]["series"]["count"], 2);
    assert_eq!(server.request_count("patch", "events"), 1);
}
