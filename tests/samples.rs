//! `config/samples/`, what the demo applies, applied to the API server (the real one when
//! `KUBEBUILDER_ASSETS` is set) with the operator running: every sample becomes Ready.

mod common;

use common::{Env, WAIT, in_scope};
use kube::api::{Api, DynamicObject, PostParams};

/// Ready=True at the object's current generation.
fn ready_now(obj: &DynamicObject) -> bool {
    let generation = obj.metadata.generation;
    obj.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == "Ready"
                && c["status"] == "True"
                && c["observedGeneration"].as_i64() == generation
        })
}

#[tokio::test]
async fn every_sample_becomes_ready() {
    let env = Env::start().await;
    let client = env.kube.client();
    let dir = testbed::workspace_root().join("config/samples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    paths.sort();
    let mut applied = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let obj: DynamicObject = in_scope(serde_yaml::from_str(&text).unwrap());
        let kind = obj.types.as_ref().unwrap().kind.clone();
        let ar = ecr_operator::api::resource_for(&kind)
            .unwrap_or_else(|| panic!("a sample of unknown kind {kind}"));
        let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
            Some(ns) => {
                env.kube.ensure_namespace(ns).await.unwrap();
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            None => Api::all_with(client.clone(), &ar),
        };
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        applied.push((kind, api, obj.metadata.name.clone().unwrap()));
    }
    let kinds: std::collections::BTreeSet<&str> =
        applied.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(
        kinds.len() >= 5,
        "samples of every user-written kind: {kinds:?}"
    );
    for (kind, api, name) in &applied {
        let ready = testbed::wait::until(&format!("{kind}/{name} Ready"), WAIT, || async {
            api.get(name).await.ok().filter(ready_now)
        })
        .await;
        if let Err(e) = ready {
            let status = api.get(name).await.map(|o| o.data["status"].clone());
            panic!("{e}: {status:?}");
        }
    }
}
