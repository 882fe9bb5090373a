//! Schema and CEL validation of custom resources, through `kube::Api`.

mod common;

use common::*;
use kube::{
    CustomResourceExt, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde_json::json;

fn dynamic(client: &kube::Client) -> (kube::Api<DynamicObject>, ApiResource) {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", "Widget"), "widgets");
    (kube::Api::namespaced_with(client.clone(), "test", &ar), ar)
}

#[tokio::test]
async fn bad_pattern_is_422_with_field_cause() {
    let (_server, client) = start().await;
    let err = api_error(
        widgets(&client)
            .create(&PostParams::default(), &widget("x", "Bad"))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        format!(
            "Widget.{GROUP} \"x\" is invalid: spec.repositoryName: Invalid value: \"Bad\": spec.repositoryName in body should match '^[a-z][a-z0-9-]*$'"
        )
    );
    let details = err.details.expect("details");
    assert_eq!(
        (
            details.kind.as_str(),
            details.group.as_str(),
            details.name.as_str()
        ),
        ("Widget", GROUP, "x")
    );
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");
    assert_eq!(details.causes[0].field, "spec.repositoryName");
    assert_eq!(
        details.causes[0].message,
        "Invalid value: \"Bad\": spec.repositoryName in body should match '^[a-z][a-z0-9-]*$'"
    );
}

#[tokio::test]
async fn failed_cel_rules_report_their_messages() {
    let (_server, client) = start().await;
    let api = widgets(&client);

    // A root-level rule.
    let mut w = widget("x", "x");
    w.spec.replicas = 9;
    let err = api_error(api.create(&PostParams::default(), &w).await);
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("replicas must not exceed maxReplicas"),
        "{}",
        err.message
    );

    // A rule with a messageExpression.
    let mut w = widget("y", "y");
    w.spec.tags = vec!["short".into(), "much-too-long-tag".into()];
    let err = api_error(api.create(&PostParams::default(), &w).await);
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("spec.tags: Invalid value: \"array\": tag too long: much-too-long-tag"),
        "{}",
        err.message
    );
    let cause = &err.details.expect("details").causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("spec.tags", "FieldValueInvalid")
    );
}

#[tokio::test]
async fn immutable_field_transition_rule() {
    let (_server, client) = start().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("im", "im"))
        .await
        .expect("create");
    let err = api_error(
        api.patch(
            "im",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"encryption": "KMS"}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        format!(
            "Widget.{GROUP} \"im\" is invalid: spec.encryption: Invalid value: \"string\": encryption is immutable"
        )
    );
    // Other changes pass the transition rule.
    api.patch(
        "im",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("mutable field");
}

#[tokio::test]
async fn types_enums_required_defaults_and_pruning() {
    let (_server, client) = start().await;
    let (api, ar) = dynamic(&client);

    let obj = DynamicObject::new("d", &ar).data(json!({
        "spec": {"repositoryName": "d", "unknownField": 1},
        "junk": true
    }));
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    assert_eq!(
        created.data["spec"]["encryption"], "AES256",
        "default applied"
    );
    assert_eq!(created.data["spec"]["maxReplicas"], 5, "default applied");
    assert!(
        created.data["spec"].get("unknownField").is_none(),
        "unknown field pruned"
    );
    assert!(
        created.data.get("junk").is_none(),
        "unknown top-level field pruned"
    );

    let cases = [
        (
            json!({"repositoryName": "a", "replicas": "two"}),
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
        ),
        (
            json!({"repositoryName": "a", "replicas": 1.5}),
            "spec.replicas: Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\"",
        ),
        (
            json!({"repositoryName": "a", "mode": "Turbo"}),
            "spec.mode: Unsupported value: \"Turbo\": supported values: \"Fast\", \"Safe\"",
        ),
        (
            json!({"replicas": 1}),
            "spec.repositoryName: Required value",
        ),
        (
            json!({"repositoryName": "abcdefghijabcdefghijabcdefghijabc"}),
            "spec.repositoryName: Too long: may not be more than 30 bytes",
        ),
    ];
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let obj = DynamicObject::new(&format!("bad{i}"), &ar).data(json!({"spec": spec}));
        let err = api_error(api.create(&PostParams::default(), &obj).await);
        assert_eq!(err.code, 422);
        assert!(err.message.contains(expected), "case {i}: {}", err.message);
    }
}

#[tokio::test]
async fn crd_with_uncompilable_rule_is_rejected() {
    let (server, _client) = start().await;
    let mut crd = Widget::crd();
    crd.metadata.name = Some("brokens.test.apiserver-double.dev".into());
    crd.spec.names.plural = "brokens".into();
    crd.spec.names.kind = "Broken".into();
    crd.spec.names.singular = Some("broken".into());
    crd.spec.names.short_names = None;
    let mut value = serde_json::to_value(&crd).expect("json");
    value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] =
        json!([{"rule": "self.spec.(", "message": "never"}]);
    let err = server.install_crd_value(value).expect_err("rejected");
    assert!(err.to_string().contains("is invalid"), "{err}");
    assert!(server.objects(GROUP, "brokens").is_empty());
    let _ = crd.name_any();
}
