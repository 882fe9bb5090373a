//! How every controller watches its kind: objects are read as JSON and parsed one by one, so
//! that one object this version cannot parse is reported on itself (`Ready=False,
//! reason=Invalid`) and left out, instead of failing the watch, and with it every object of the
//! kind; only changes that matter (see [`trigger_hash`]) trigger a reconcile.

use std::hash::{DefaultHasher, Hash, Hasher};

use kube::api::{ApiResource, DynamicObject};
use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, warn};

use super::{Context, MANAGER, WatchScope};
use crate::api::conditions::{self, Reason};

/// Hash of what should trigger a reconcile: spec (generation), deletion, finalizers and
/// annotations. Status writes, including our own, do not.
pub fn trigger_hash<K: Resource>(obj: &K) -> u64 {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.annotations.hash(&mut h);
    h.finish()
}

/// Parses one object of `K` read as a [`DynamicObject`].
pub fn parse_object<K: serde::de::DeserializeOwned>(
    obj: &DynamicObject,
) -> Result<K, serde_json::Error> {
    serde_json::to_value(obj).and_then(serde_json::from_value)
}

/// Every object of `K` in the watch scope, read as JSON and parsed one by one: objects that do
/// not parse are left out (the controller of their kind reports them) instead of failing the
/// whole list.
pub async fn list_parseable<K>(client: &Client, scope: &WatchScope) -> Result<Vec<K>, kube::Error>
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned,
    K::Scope: 'static,
{
    let list = scope.api::<K>(client).list(&scope.list_params()).await?;
    Ok(list
        .items
        .iter()
        .filter(|o| scope.includes_namespace(o.metadata.namespace.as_deref()))
        .filter_map(|o| parse_object(o).ok())
        .collect())
}

/// The message on an object this version of the operator cannot read.
fn unparseable_message(e: &serde_json::Error) -> String {
    format!(
        "this object cannot be read by ecr-operator ({e}); fix its spec or delete it (was it written for another version of the CRD?)"
    )
}

/// Whether the object's status already reports `message` for its current generation, in Ready
/// and in kstatus's Stalled (a report written before Stalled existed is written again).
fn already_reported(obj: &DynamicObject, message: &str) -> bool {
    let generation = obj.metadata.generation;
    let says_so = |type_: &str| {
        obj.data["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == type_))
            .is_some_and(|c| {
                c["reason"] == Reason::Invalid.as_str()
                    && c["message"] == message
                    && c["observedGeneration"].as_i64() == generation
            })
    };
    says_so(conditions::READY)
        && says_so(conditions::STALLED)
        && obj.data["status"]["observedGeneration"].as_i64() == generation
}

/// Reports on the object itself that it cannot be parsed: `Ready=False, reason=Invalid`. Writes
/// only when the condition says something else, so the report's own watch event ends the loop.
async fn report_unparseable<K>(client: &Client, obj: &DynamicObject, e_parse: &serde_json::Error)
where
    K: Resource<DynamicType = ()>,
{
    let message = unparseable_message(e_parse);
    if already_reported(obj, &message) {
        return;
    }
    let key = match &obj.metadata.namespace {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    };
    warn!(kind = K::kind(&()).as_ref(), object = %key, error = %e_parse, "cannot parse object; reported on it");
    if let Err(e) = write_invalid_status::<K>(client, obj, message).await {
        // An API server that validates the whole object on status writes (without ratcheting)
        // refuses any write to it: a Warning event still tells its users.
        debug!(object = %key, error = %e, "status of an unparseable object not written; sending an event");
        if let Err(e) = publish_invalid::<K>(client, obj, unparseable_message(e_parse)).await {
            warn!(object = %key, error = %e, "reporting an unparseable object failed");
        }
    }
}

/// Sets `Ready=False, reason=Invalid` (and `Stalled=True`) with `message` through a merge patch of `/status`: the
/// object cannot be read into `K`, so not through the typed status writer.
async fn write_invalid_status<K>(
    client: &Client,
    obj: &DynamicObject,
    message: String,
) -> Result<DynamicObject, kube::Error>
where
    K: Resource<DynamicType = ()>,
{
    let generation = obj.metadata.generation;
    // Ready=False and kstatus's Stalled=True (Invalid waits for a person), as set_ready writes.
    let mut conditions = Vec::new();
    crate::api::conditions::set_ready_conditions(
        &mut conditions,
        false,
        Reason::Invalid,
        message,
        generation,
        k8s_openapi::jiff::Timestamp::now(),
    );
    let patch = serde_json::json!({"status": {
        "observedGeneration": generation,
        "conditions": conditions,
    }});
    let ar = ApiResource::erase::<K>(&());
    let api: kube::Api<DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &ar),
        None => kube::Api::all_with(client.clone(), &ar),
    };
    api.patch_status(
        &obj.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
}

/// A Warning event `Invalid` on the object, for when its status cannot be written.
async fn publish_invalid<K>(
    client: &Client,
    obj: &DynamicObject,
    note: String,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()>,
{
    let recorder = kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: obj.metadata.name.clone(),
        namespace: obj.metadata.namespace.clone(),
        uid: obj.metadata.uid.clone(),
        resource_version: obj.metadata.resource_version.clone(),
        ..Default::default()
    };
    let event = kube::runtime::events::Event {
        type_: EventType::Warning,
        reason: Reason::Invalid.as_str().to_string(),
        note: Some(note),
        action: "Parse".to_string(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await
}

/// Turns a watch event of JSON objects into one of `K`, reporting and leaving out objects that
/// do not parse (a typed watch would fail, and retry forever, on the first such object, and
/// with it every object of the kind).
async fn parse_event<K>(
    client: &Client,
    scope: &WatchScope,
    event: kube::runtime::watcher::Event<DynamicObject>,
) -> Option<kube::runtime::watcher::Event<K>>
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned,
{
    use kube::runtime::watcher::Event as E;
    let parsed = |o: &DynamicObject| parse_object::<K>(o);
    match event {
        E::Init => Some(E::Init),
        E::InitDone => Some(E::InitDone),
        // Several watched namespaces are watched cluster-wide: the others are left out here.
        E::Apply(o) | E::InitApply(o) | E::Delete(o)
            if !scope.includes_namespace(o.metadata.namespace.as_deref()) =>
        {
            None
        }
        E::Apply(o) | E::InitApply(o) if parsed(&o).is_err() => {
            if let Err(e) = parsed(&o) {
                report_unparseable::<K>(client, &o, &e).await;
            }
            None
        }
        E::Apply(o) => parsed(&o).ok().map(slim).map(E::Apply),
        E::InitApply(o) => parsed(&o).ok().map(slim).map(E::InitApply),
        E::Delete(o) => parsed(&o).ok().map(slim).map(E::Delete),
    }
}

/// The annotation `kubectl apply` (client-side) keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `obj` without what no controller reads and every store would hold for each object: its
/// managedFields (every field manager's field set) and kubectl's last-applied copy of itself.
pub fn slim<K: Resource>(mut obj: K) -> K {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    obj
}

/// The watch events of `K` in the watch scope, read as JSON and parsed one by one: an object
/// that does not parse is reported on itself and left out (see [`parse_event`]).
pub fn parsed_events<K>(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<kube::runtime::watcher::Event<K>, kube::runtime::watcher::Error>>
+ Send
+ 'static
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned + Send + 'static,
    K::Scope: 'static,
{
    use futures::StreamExt;
    use kube::runtime::utils::WatchStreamExt;
    let client = ctx.client.clone();
    let scope = ctx.config.watch.clone();
    let json = scope.api::<K>(&client);
    kube::runtime::watcher(json, scope.watcher_config())
        .default_backoff()
        .filter_map(move |event| {
            let client = client.clone();
            let scope = scope.clone();
            async move {
                match event {
                    Ok(e) => parse_event::<K>(&client, &scope, e).await.map(Ok),
                    Err(e) => Some(Err(e)),
                }
            }
        })
}

/// The store and trigger stream every controller watches `K` with: the objects in the watch
/// scope, reflected into the store, and passed on only when [`trigger_hash`] changes (status
/// writes do not trigger). Objects are read as JSON and parsed one by one; one that does not
/// parse is reported on itself and left out, and the others go on.
pub fn watched<K>(
    ctx: &Context,
) -> (
    kube::runtime::reflector::Store<K>,
    impl futures::Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::Scope: 'static,
{
    watched_observed(ctx, |_| {})
}

/// [`watched`], with `observe` shown every watch event before the store applies it (an index
/// the store does not offer, kept in step with it).
pub fn watched_observed<K>(
    ctx: &Context,
    mut observe: impl FnMut(&kube::runtime::watcher::Event<K>) + Send + 'static,
) -> (
    kube::runtime::reflector::Store<K>,
    impl futures::Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::Scope: 'static,
{
    use futures::TryStreamExt;
    use kube::runtime::utils::WatchStreamExt;
    let (reader, writer) = kube::runtime::reflector::store();
    let mut triggers = super::trigger::Triggers::default();
    let stream = parsed_events::<K>(ctx)
        .inspect_ok(move |event| observe(event))
        .reflect(writer)
        .try_filter_map(move |event| futures::future::ready(Ok(triggers.changed(event))));
    (reader, stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn object(generation: i64, status: Value) -> DynamicObject {
        DynamicObject {
            types: None,
            metadata: kube::api::ObjectMeta {
                name: Some("bad".into()),
                generation: Some(generation),
                ..Default::default()
            },
            data: json!({ "status": status }),
        }
    }

    #[test]
    fn stores_keep_no_managed_fields_nor_kubectls_copy() {
        let mut obj = object(1, json!({}));
        obj.metadata.managed_fields = Some(vec![Default::default()]);
        obj.metadata.annotations = Some(
            [
                (LAST_APPLIED.to_string(), "{}".to_string()),
                ("team".into(), "a".into()),
            ]
            .into(),
        );
        let slimmed = slim(obj.clone());
        assert_eq!(slimmed.metadata.managed_fields, None);
        assert_eq!(
            slimmed.metadata.annotations,
            Some([("team".to_string(), "a".to_string())].into())
        );
        assert_eq!(
            (slimmed.metadata.name, slimmed.data),
            (obj.metadata.name, obj.data)
        );
        let mut only_kubectl = object(1, json!({}));
        only_kubectl.metadata.annotations =
            Some([(LAST_APPLIED.to_string(), "{}".to_string())].into());
        assert_eq!(slim(only_kubectl).metadata.annotations, None);
    }

    /// (what, status on the object, reported already): a report is written only when the
    /// object does not say exactly this already, for its current generation.
    #[test]
    fn report_table() {
        let ready = |reason: &str, message: &str, generation: i64| {
            json!({
                "observedGeneration": generation,
                "conditions": [{"type": "Ready", "status": "False", "reason": reason,
                    "message": message, "observedGeneration": generation},
                    {"type": "Stalled", "status": "True", "reason": reason,
                    "message": message, "observedGeneration": generation}],
            })
        };
        let mut without_stalled = ready("Invalid", "m", 2);
        without_stalled["conditions"].as_array_mut().unwrap().pop();
        let cases = [
            ("no status", json!(null), false),
            ("reported", ready("Invalid", "m", 2), true),
            (
                "reported before Stalled was written",
                without_stalled,
                false,
            ),
            ("another message", ready("Invalid", "other", 2), false),
            ("another reason", ready("Synced", "m", 2), false),
            ("an older generation", ready("Invalid", "m", 1), false),
            (
                "condition current, status generation old",
                json!({"observedGeneration": 1, "conditions": [{"type": "Ready",
                    "reason": "Invalid", "message": "m", "observedGeneration": 2}]}),
                false,
            ),
        ];
        for (what, status, want) in cases {
            assert_eq!(already_reported(&object(2, status), "m"), want, "{what}");
        }
    }
}
