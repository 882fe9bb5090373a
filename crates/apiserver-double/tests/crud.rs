//! CRUD, generations, status subresource, conflicts, finalizers, selectors and paging, through
//! `kube::Api`.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{ConfigMap, Namespace, Pod, Secret},
};
use kube::{
    Api, CustomResourceExt, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    core::{ApiResource, DynamicObject, GroupVersionKind},
    discovery::{Discovery, Scope},
};
use serde_json::json;

#[tokio::test]
async fn create_get_list_replace_delete() {
    let (server, client) = start().await;
    let api = widgets(&client);

    let created = api
        .create(&PostParams::default(), &widget("one", "repo-one"))
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.metadata.namespace.as_deref(), Some("test"));
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv: u64 = created
        .resource_version()
        .expect("rv")
        .parse()
        .expect("numeric rv");

    let dup = api_error(
        api.create(&PostParams::default(), &widget("one", "repo-one"))
            .await,
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(
        dup.message,
        format!("widgets.{GROUP} \"one\" already exists")
    );
    let details = dup.details.expect("details");
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("one", GROUP, "widgets")
    );

    let got = api.get("one").await.expect("get");
    assert_eq!(got, created);

    let missing = api_error(api.get("nope").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        missing.message,
        format!("widgets.{GROUP} \"nope\" not found")
    );
    assert!(api.get_opt("nope").await.expect("get_opt").is_none());

    let mut changed = got.clone();
    changed.spec.replicas = 3;
    let replaced = api
        .replace("one", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert_eq!(replaced.spec.replicas, 3);
    let rv2: u64 = replaced
        .resource_version()
        .expect("rv")
        .parse()
        .expect("numeric rv");
    assert!(rv2 > rv, "resourceVersion grows: {rv} -> {rv2}");

    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    let list_rv: u64 = list
        .metadata
        .resource_version
        .expect("list rv")
        .parse()
        .expect("numeric");
    assert!(list_rv >= rv2);

    // All-namespaces list.
    let all: Api<Widget> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("list all")
            .items
            .len(),
        1
    );

    api.delete("one", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt("one").await.expect("get_opt").is_none());
    assert!(
        server
            .get_object(GROUP, "widgets", Some("test"), "one")
            .is_none()
    );
}

#[tokio::test]
async fn generate_name_and_namespace_rules() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    let mut w = widget("", "generated");
    w.metadata.name = None;
    w.metadata.generate_name = Some("gen-".into());
    let created = api
        .create(&PostParams::default(), &w)
        .await
        .expect("create");
    let name = created.name_any();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let elsewhere: Api<Widget> = Api::namespaced(client.clone(), "missing");
    let err = api_error(
        elsewhere
            .create(&PostParams::default(), &widget("x", "x"))
            .await,
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"missing\" not found");

    let bad = api_error(
        api.create(&PostParams::default(), &widget("Bad_Name", "x"))
            .await,
    );
    assert_eq!(bad.code, 422);
    assert!(
        bad.message
            .contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{}",
        bad.message
    );

    // Creating the namespace through the API makes it usable.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "missing"}})).expect("ns");
    let ns = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    elsewhere
        .create(&PostParams::default(), &widget("x", "x"))
        .await
        .expect("create in new ns");
}

#[tokio::test]
async fn generation_bumps_only_on_spec_changes() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("g", "g"))
        .await
        .expect("create");

    let labelled = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata change keeps the generation"
    );

    let status = api
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .expect("status patch");
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "status change keeps the generation"
    );

    let spec = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(spec.metadata.generation, Some(2));

    // A no-op write changes nothing, not even the resourceVersion.
    let same = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("no-op patch");
    assert_eq!(same.metadata.generation, Some(2));
    assert_eq!(same.resource_version(), spec.resource_version());
}

#[tokio::test]
async fn status_subresource_isolation() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    let mut w = widget("s", "s");
    w.status = Some(WidgetStatus {
        phase: Some("Ignored".into()),
        observed_generation: None,
    });
    let created = api
        .create(&PostParams::default(), &w)
        .await
        .expect("create");
    assert_eq!(created.status, None, "status is dropped on create");

    // A status write ignores spec and metadata changes.
    let mut via_status = created.clone();
    via_status.spec.replicas = 4;
    via_status.metadata.labels = Some(BTreeMap::from([("x".to_string(), "y".to_string())]));
    via_status.status = Some(WidgetStatus {
        phase: Some("Ready".into()),
        observed_generation: Some(1),
    });
    let after = api
        .replace_status("s", &PostParams::default(), &via_status)
        .await
        .expect("replace_status");
    assert_eq!(after.spec.replicas, 1);
    assert_eq!(after.metadata.labels, None);
    assert_eq!(
        after.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Ready")
    );

    // A main-resource write ignores status changes.
    let mut via_main = after.clone();
    via_main.status = Some(WidgetStatus {
        phase: Some("Hacked".into()),
        observed_generation: None,
    });
    via_main.spec.replicas = 2;
    let after = api
        .replace("s", &PostParams::default(), &via_main)
        .await
        .expect("replace");
    assert_eq!(after.spec.replicas, 2);
    assert_eq!(
        after.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Ready")
    );

    // Server-side apply on /status, as controllers do.
    let applied = api
        .patch_status(
            "s",
            &PatchParams::apply("test-controller").force(),
            &Patch::Apply(json!({
                "apiVersion": format!("{GROUP}/v1"), "kind": "Widget",
                "status": {"phase": "Applied", "observedGeneration": 2}
            })),
        )
        .await
        .expect("apply status");
    assert_eq!(applied.status.and_then(|s| s.observed_generation), Some(2));

    let got = api.get_status("s").await.expect("get_status");
    assert_eq!(got.status.and_then(|s| s.phase).as_deref(), Some("Applied"));

    // A kind without a status subresource has no /status.
    let gadgets: Api<Gadget> = Api::all(client.clone());
    gadgets
        .create(
            &PostParams::default(),
            &Gadget::new("g", GadgetSpec { size: 1 }),
        )
        .await
        .expect("create gadget");
    let err = api_error(gadgets.get_status("g").await);
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn stale_resource_version_conflicts() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    let first = api
        .create(&PostParams::default(), &widget("c", "c"))
        .await
        .expect("create");
    let mut newer = first.clone();
    newer.spec.replicas = 2;
    api.replace("c", &PostParams::default(), &newer)
        .await
        .expect("first replace");

    let mut stale = first.clone();
    stale.spec.replicas = 3;
    let err = api_error(api.replace("c", &PostParams::default(), &stale).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        format!(
            "Operation cannot be fulfilled on widgets.{GROUP} \"c\": the object has been modified; please apply your changes to the latest version and try again"
        )
    );

    // A merge patch carrying a stale resourceVersion is a precondition too.
    let err = api_error(
        api.patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": first.resource_version()}, "spec": {"replicas": 4}})),
        )
        .await,
    );
    assert_eq!(err.code, 409);

    // Custom resources need a resourceVersion on replace.
    let mut unconditional = first.clone();
    unconditional.metadata.resource_version = None;
    let err = api_error(
        api.replace("c", &PostParams::default(), &unconditional)
            .await,
    );
    assert_eq!(err.code, 422);
}

#[tokio::test]
async fn patch_flavours() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("p", "p"))
        .await
        .expect("create");

    let json_patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/metadata/finalizers", "value": ["test/finalizer"]},
        {"op": "replace", "path": "/spec/replicas", "value": 2}
    ]))
    .expect("patch");
    let patched = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(json_patch))
        .await
        .expect("json patch");
    assert_eq!(patched.spec.replicas, 2);
    assert_eq!(patched.finalizers(), ["test/finalizer"]);

    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 9}]))
            .expect("patch");
    let err = api_error(
        api.patch("p", &PatchParams::default(), &Patch::<()>::Json(failing))
            .await,
    );
    assert_eq!(err.code, 422);

    let strategic = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("strategic");
    assert_eq!(strategic.spec.replicas, 3);

    // Apply creates a missing object and merges into an existing one.
    let ssa = PatchParams::apply("tester");
    let created = api
        .patch(
            "applied",
            &ssa,
            &Patch::Apply(json!({
                "apiVersion": format!("{GROUP}/v1"), "kind": "Widget",
                "metadata": {"name": "applied"},
                "spec": {"repositoryName": "applied"}
            })),
        )
        .await
        .expect("apply create");
    assert_eq!(created.spec.encryption, "AES256", "defaults applied");
    // Another manager's apply merges: the first manager's fields stay.
    let updated = api
        .patch(
            "applied",
            &PatchParams::apply("other"),
            &Patch::Apply(json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "spec": {"replicas": 4}})),
        )
        .await
        .expect("apply update");
    assert_eq!(
        (updated.spec.replicas, updated.spec.repository_name.as_str()),
        (4, "applied")
    );
    // The same manager applying without a field it applied before removes it, as the real
    // server does: here a required field, so the apply is refused.
    let err = api_error(
        api.patch(
            "applied",
            &ssa,
            &Patch::Apply(json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "spec": {"replicas": 5}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("spec.repositoryName: Required value"),
        "{}",
        err.message
    );

    // Apply without apiVersion/kind is rejected, as by the real server.
    let err = api_error(
        api.patch(
            "applied",
            &ssa,
            &Patch::Apply(json!({"spec": {"replicas": 1}})),
        )
        .await,
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn finalizer_lifecycle() {
    let (server, client) = start().await;
    let api = widgets(&client);
    let mut w = widget("f", "f");
    w.metadata.finalizers = Some(vec!["a/one".into(), "a/two".into()]);
    api.create(&PostParams::default(), &w)
        .await
        .expect("create");

    let deleted = api
        .delete("f", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = deleted
        .left()
        .expect("object returned while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    assert_eq!(marked.metadata.generation, Some(2));

    // Deleting again changes nothing; new finalizers can no longer be added.
    api.delete("f", &DeleteParams::default())
        .await
        .expect("second delete");
    let err = api_error(
        api.patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["a/one", "a/two", "a/three"]}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);

    let one_left = api
        .patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["a/two"]}})),
        )
        .await
        .expect("remove one finalizer");
    assert!(one_left.metadata.deletion_timestamp.is_some());

    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove last finalizer");
    assert!(
        api.get_opt("f").await.expect("get").is_none(),
        "removed with its last finalizer"
    );
    assert!(server.get::<Widget>(Some("test"), "f").is_none());
}

#[tokio::test]
async fn label_and_field_selectors() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    for (name, app, tier) in [
        ("a", "web", Some("front")),
        ("b", "web", None),
        ("c", "db", Some("back")),
    ] {
        let mut w = widget(name, name);
        let mut labels = BTreeMap::from([("app".to_string(), app.to_string())]);
        if let Some(tier) = tier {
            labels.insert("tier".into(), tier.into());
        }
        w.metadata.labels = Some(labels);
        api.create(&PostParams::default(), &w)
            .await
            .expect("create");
    }
    let names = |list: kube::core::ObjectList<Widget>| -> Vec<String> {
        list.items.iter().map(|w| w.name_any()).collect()
    };
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["a", "b"]),
        ("app==web", &["a", "b"]),
        ("app!=web", &["c"]),
        ("app in (web,db),tier", &["a", "c"]),
        ("tier notin (front)", &["b", "c"]),
        ("!tier", &["b"]),
        ("tier", &["a", "c"]),
    ];
    for (selector, want) in cases {
        let got = names(
            api.list(&ListParams::default().labels(selector))
                .await
                .expect("list"),
        );
        assert_eq!(&got, want, "selector {selector}");
    }
    let got = names(
        api.list(&ListParams::default().fields("metadata.name=b"))
            .await
            .expect("list"),
    );
    assert_eq!(got, ["b"]);
    let got = names(
        api.list(&ListParams::default().fields("metadata.name!=b"))
            .await
            .expect("list"),
    );
    assert_eq!(got, ["a", "c"]);
    let err = api_error(
        api.list(&ListParams::default().fields("spec.replicas=1"))
            .await,
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn paging_with_limit_and_continue() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    for i in 0..25 {
        api.create(&PostParams::default(), &widget(&format!("w{i:02}"), "r"))
            .await
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(10);
    let mut pages = 0;
    let mut first_rv = None;
    loop {
        let page = api.list(&params).await.expect("page");
        pages += 1;
        first_rv.get_or_insert(page.metadata.resource_version.clone());
        assert_eq!(
            page.metadata.resource_version,
            *first_rv.as_ref().expect("rv"),
            "pages share the list's resourceVersion"
        );
        seen.extend(page.items.iter().map(|w| w.name_any()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("w{i:02}")).collect();
    assert_eq!(seen, expected);

    let err = api_error(
        api.list(&ListParams::default().continue_token("garbage"))
            .await,
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn discovery_matches_kube_expectations() {
    let (_server, client) = start().await;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let gvk = GroupVersionKind::gvk(GROUP, "v1", "Widget");
    let (resource, caps) = discovery.resolve_gvk(&gvk).expect("Widget discovered");
    assert_eq!(resource.plural, "widgets");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation("watch"));
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "widgets/status" || r.plural == "status"),
        "{:?}",
        caps.subresources
    );
    let (_, pod_caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod"))
        .expect("pods discovered");
    assert_eq!(pod_caps.scope, Scope::Namespaced);

    let aggregated = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    assert!(aggregated.resolve_gvk(&gvk).is_some());
    assert!(
        aggregated
            .resolve_gvk(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"))
            .is_some()
    );

    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn crds_created_through_the_api_are_served() {
    let (server, client) = start().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let mut crd = Widget::crd();
    crd.metadata.name = Some("things.other.dev".into());
    crd.spec.group = "other.dev".into();
    crd.spec.names.plural = "things".into();
    crd.spec.names.singular = Some("thing".into());
    crd.spec.names.kind = "Thing".into();
    crd.spec.names.list_kind = Some("ThingList".into());
    crd.spec.names.short_names = None;
    let created = crds
        .create(&PostParams::default(), &crd)
        .await
        .expect("create CRD");
    let established = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("other.dev", "v1", "Thing"),
        "things",
    );
    let things: Api<DynamicObject> = Api::namespaced_with(client.clone(), "test", &ar);
    let thing = DynamicObject::new("t", &ar).data(json!({"spec": {"repositoryName": "Bad"}}));
    let err = api_error(things.create(&PostParams::default(), &thing).await);
    assert_eq!(err.code, 422, "the CRD's schema applies");
    let thing = DynamicObject::new("t", &ar).data(json!({"spec": {"repositoryName": "good"}}));
    things
        .create(&PostParams::default(), &thing)
        .await
        .expect("create thing");
    assert_eq!(server.objects("other.dev", "things").len(), 1);

    crds.delete("things.other.dev", &DeleteParams::default())
        .await
        .expect("delete CRD");
    let err = api_error(things.list(&ListParams::default()).await);
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn core_kinds() {
    let (_server, client) = start().await;
    let pp = PostParams::default();

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "test");
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"token": "abc"}}))
            .expect("secret");
    let secret = secrets.create(&pp, &secret).await.expect("secret");
    let data = secret.data.expect("data");
    assert_eq!(data.get("token").map(|b| b.0.as_slice()), Some(&b"abc"[..]));
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "test");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})).expect("cm");
    let cm = cms.create(&pp, &cm).await.expect("cm");
    assert_eq!(cm.metadata.generation, None);
    let mut cm2 = cm.clone();
    cm2.metadata.resource_version = None;
    cms.replace("c", &pp, &cm2)
        .await
        .expect("core kinds allow unconditional replace");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "test");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})).expect("pod");
    let pod = pods.create(&pp, &pod).await.expect("pod");
    assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    let running = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .expect("pod status");
    assert_eq!(
        running.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})).expect("lease");
    let lease = leases.create(&pp, &lease).await.expect("lease");
    let mut taken = lease.clone();
    taken.spec.as_mut().expect("spec").holder_identity = Some("b".into());
    leases
        .replace("leader", &pp, &taken)
        .await
        .expect("take lease");
    let err = api_error(leases.replace("leader", &pp, &taken).await);
    assert_eq!(err.code, 409, "a stale lease update conflicts");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "test");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .expect("deployment");
    let deployment = deployments
        .create(&pp, &deployment)
        .await
        .expect("deployment");
    assert_eq!(deployment.metadata.generation, Some(1));

    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "test");
    let event: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "e.1"}, "eventTime": "2025-01-01T00:00:00.000000Z", "reason": "Test",
        "action": "Testing", "reportingController": "test", "reportingInstance": "test-1", "type": "Normal"
    }))
    .expect("event");
    events.create(&pp, &event).await.expect("event");
    assert_eq!(
        events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .len(),
        1
    );

    let vwcs: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(client.clone());
    let vwc =
        serde_json::from_value(json!({"metadata": {"name": "v"}, "webhooks": []})).expect("vwc");
    vwcs.create(&pp, &vwc).await.expect("vwc");
}

#[tokio::test]
async fn handle_hooks_dry_run_and_delete_collection() {
    let server = apiserver_double::ApiServer::start().await.expect("start");
    let dir = std::env::temp_dir().join(format!("apiserver-double-crds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let yaml = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ignored\n---\n{}",
        serde_yaml::to_string(&Widget::crd()).expect("yaml"),
        serde_yaml::to_string(&Gadget::crd()).expect("yaml")
    );
    std::fs::write(dir.join("crds.yaml"), yaml).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a CRD").expect("write");
    assert_eq!(server.install_crds_from_dir(&dir).expect("install"), 2);
    std::fs::remove_dir_all(&dir).expect("cleanup");
    // Installing again updates in place.
    server.install_crd(&Widget::crd()).expect("reinstall");
    server.create_namespace("test").expect("namespace");

    let client = server.client().expect("client");
    let api = widgets(&client);
    server.reset_request_counts();
    let dry = api
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &widget("dry", "dry"),
        )
        .await
        .expect("dry run");
    assert_eq!(dry.name_any(), "dry");
    assert!(
        api.get_opt("dry").await.expect("get").is_none(),
        "dry run stores nothing"
    );
    for name in ["a", "b", "c"] {
        let mut w = widget(name, name);
        w.metadata.labels = Some(BTreeMap::from([(
            "batch".to_string(),
            (name != "c").to_string(),
        )]));
        api.create(&PostParams::default(), &w)
            .await
            .expect("create");
    }
    assert_eq!(server.request_count("create", "widgets"), 4);
    assert_eq!(server.request_count("get", "widgets"), 1);
    assert_eq!(server.list::<Widget>().len(), 3);
    assert!(server.total_requests() >= 5);

    let deleted = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("batch=true"),
        )
        .await
        .expect("delete collection");
    let names: Vec<String> = deleted
        .left()
        .expect("list")
        .items
        .iter()
        .map(|w| w.name_any())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        server
            .list::<Widget>()
            .iter()
            .map(|w| w.name_any())
            .collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(server.request_count("deletecollection", "widgets"), 1);
}

/// `seed` creates as `POST` does and writes the status as `PUT /status` does: defaults applied,
/// status kept, one generation; what the schema or CEL refuses is refused the same way, and
/// the objects before it stay.
#[tokio::test]
async fn seeded_objects_are_created_and_validated_as_through_the_api() {
    let (server, client) = start().await;
    let api = widgets(&client);
    let seeded = |name: &str, repository: &str, replicas: i32| {
        let mut object = serde_json::to_value(widget(name, repository)).expect("json");
        object["metadata"]["namespace"] = json!("test");
        object["spec"]["replicas"] = json!(replicas);
        object["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("encryption");
        object["status"] = json!({"phase": "Ready", "observedGeneration": 1});
        object
    };
    let n = server
        .seed(
            GROUP,
            "widgets",
            (0..3).map(|i| seeded(&format!("w{i}"), "repo", 1)),
        )
        .expect("seed");
    assert_eq!(n, 3);
    let got = api.get("w1").await.expect("get");
    assert_eq!(got.metadata.generation, Some(1));
    assert_eq!(got.spec.encryption, "AES256", "defaulted as on create");
    let status = got.status.expect("status kept");
    assert_eq!(
        (status.phase.as_deref(), status.observed_generation),
        (Some("Ready"), Some(1))
    );

    // The root CEL rule (replicas <= maxReplicas) refuses the second; the first stays.
    let refused = server
        .seed(
            GROUP,
            "widgets",
            [
                seeded("ok", "repo", 1),
                seeded("over", "repo", 9),
                seeded("never", "repo", 1),
            ],
        )
        .expect_err("refused");
    let message = refused.to_string();
    assert!(message.starts_with("over refused: "), "{message}");
    assert!(
        message.contains("replicas must not exceed maxReplicas"),
        "{message}"
    );
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|w| w.name_any())
        .collect();
    assert_eq!(names, ["ok", "w0", "w1", "w2"]);
}
