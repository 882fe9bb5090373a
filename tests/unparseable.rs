//! An object the operator cannot parse (stored under an older, looser CRD, or written by a
//! newer version with values this one does not know) is reported on the object, and every other
//! object of its kind is still reconciled: no crash, no stalled watch (issue #9).

mod common;

use common::{Env, create, ready, wait_for};
use ecr_operator::api::Repository;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// The Repository CRD as in `crds/`, but accepting any spec: what a cluster holds when an
/// object was stored before the schema was tightened.
fn loose_repository_crd() -> serde_json::Value {
    let text =
        std::fs::read_to_string(testbed::workspace_root().join("crds/repository.yaml")).unwrap();
    let mut crd: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let schema = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    schema["properties"]["spec"] =
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    if let Some(o) = schema.as_object_mut() {
        o.remove("x-kubernetes-validations");
    }
    crd
}

const GOOD: &str = "apiVersion: ecr.operator.dev/v1alpha1\nkind: Repository\nmetadata: {name: NAME}\nspec: {deletionPolicy: Delete}\n";

#[tokio::test]
async fn an_unparseable_object_is_reported_and_others_still_reconcile() {
    let mut env = Env::start().await;
    let ns = env.kube.namespace("unparseable").await.unwrap();
    let api: Api<Repository> = env.api(&ns);
    create(&api, &GOOD.replace("NAME", "before")).await;
    wait_for(&api, "before", "Ready", ready).await;

    // Stored under a looser schema, then the real schema is back.
    let crds: Api<CustomResourceDefinition> = Api::all(env.kube.client());
    match env.kube.server() {
        Some(server) => server.install_crd_value(loose_repository_crd()).unwrap(),
        None => {
            crds.patch(
                "repositories.ecr.operator.dev",
                &PatchParams::apply("ecr-operator-tests").force(),
                &Patch::Apply(loose_repository_crd()),
            )
            .await
            .unwrap();
        }
    }
    let dynamic: Api<DynamicObject> = Api::namespaced_with(
        env.kube.client(),
        &ns,
        &ApiResource::erase::<Repository>(&()),
    );
    let bad: DynamicObject = common::in_scope(
        serde_json::from_value(json!({
            "apiVersion": "ecr.operator.dev/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": "bad"},
            "spec": {"imageTagMutability": "SOMETIMES", "tags": "not-a-map"},
        }))
        .unwrap(),
    );
    // A real API server serves a changed schema a moment after the CRD changes.
    testbed::wait::until("the looser schema to take effect", common::WAIT, || async {
        dynamic.create(&PostParams::default(), &bad).await.ok()
    })
    .await
    .unwrap();
    match env.kube.server() {
        Some(server) => {
            server
                .install_crds_from_dir(testbed::workspace_root().join("crds"))
                .unwrap();
        }
        None => {
            testbed::kube_env::apply_crds(&env.kube.client())
                .await
                .unwrap();
        }
    }

    // Reported on the object: a Ready=False condition, or, where the API server refuses any
    // write to an object that fails its schema (the double does not ratchet), a Warning event.
    let events: Api<Event> = Api::namespaced(env.kube.client(), &ns);
    let message = testbed::wait::until("bad reported", common::WAIT, || async {
        let o = dynamic.get("bad").await.ok()?;
        let condition = o.data["status"]["conditions"]
            .as_array()
            .and_then(|c| {
                c.iter()
                    .find(|c| c["type"] == "Ready" && c["reason"] == "Invalid")
            })
            .and_then(|c| c["message"].as_str().map(str::to_string));
        let event = events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("bad")
                    && e.reason.as_deref() == Some("Invalid")
                    && e.type_.as_deref() == Some("Warning")
            })
            .and_then(|e| e.note);
        condition.or(event)
    })
    .await
    .unwrap();
    assert!(message.contains("cannot be read"), "{message}");
    assert!(message.contains("SOMETIMES"), "{message}");

    // Other objects still reconcile, also after a restart that lists the bad one first.
    create(&api, &GOOD.replace("NAME", "after")).await;
    wait_for(&api, "after", "Ready", ready).await;
    env.kill_operator();
    env.start_operator();
    create(&api, &GOOD.replace("NAME", "restarted")).await;
    wait_for(&api, "restarted", "Ready after restart", ready).await;
}

/// The webhook's cache syncs, and keeps the policies it can read, when a ScanPolicy it cannot
/// parse is stored (a typed watch would never sync, and the webhook would deny every pod).
#[tokio::test]
async fn the_admission_cache_syncs_past_an_unparseable_policy() {
    let env = testbed::kube_env::KubeEnv::double().await.unwrap();
    let server = env.server().unwrap();
    let text =
        std::fs::read_to_string(testbed::workspace_root().join("crds/scanpolicy.yaml")).unwrap();
    let mut crd: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let schema = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    schema["properties"]["spec"] =
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    if let Some(o) = schema.as_object_mut() {
        o.remove("x-kubernetes-validations");
    }
    server.install_crd_value(crd).unwrap();
    let api: Api<DynamicObject> = Api::all_with(
        env.client(),
        &ApiResource::erase::<ecr_operator::api::ScanPolicy>(&()),
    );
    for (name, spec) in [
        (
            "bad",
            json!({"scanType": "DEEP", "enforcement": {"mode": 7}}),
        ),
        ("good", json!({"enforcement": {"mode": "enforce"}})),
    ] {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "ScanPolicy",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    server
        .install_crds_from_dir(testbed::workspace_root().join("crds"))
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    let cache = ecr_operator::admission::cache::ScanCache::start(
        env.client(),
        &Default::default(),
        &mut tasks,
    );
    testbed::wait::until("cache synced with the good policy", common::WAIT, || {
        let cache = cache.clone();
        async move {
            (cache.is_synced()
                && cache
                    .snapshot()
                    .policies
                    .iter()
                    .any(|p| p.metadata.name.as_deref() == Some("good")))
            .then_some(())
        }
    })
    .await
    .unwrap();
    tasks.shutdown().await;
}
