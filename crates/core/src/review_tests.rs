//! The review's tests: parsing, which images a request introduces, and the answers.

use super::*;
use serde_json::json;

fn review(operation: &str, object: serde_json::Value, old: serde_json::Value) -> Vec<u8> {
    review_of("", "v1", "Pod", "pods", None, operation, object, old)
}

#[allow(clippy::too_many_arguments)]
fn review_of(
    group: &str,
    version: &str,
    kind: &str,
    resource: &str,
    sub: Option<&str>,
    operation: &str,
    object: serde_json::Value,
    old: serde_json::Value,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "subResource": sub,
            "namespace": "team-a",
            "name": "web",
            "operation": operation,
            "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    }))
    .unwrap()
}

fn pod(images: &[(&str, &str)], ephemeral: &[(&str, &str)]) -> serde_json::Value {
    let c = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(n, i)| json!({"name": n, "image": i, "resources": {}}))
            .collect::<Vec<_>>()
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"containers": c(images), "ephemeralContainers": c(ephemeral),
                 "volumes": [{"name": "x", "emptyDir": {}}]},
        "status": {"phase": "Pending"}
    })
}

/// The metadata the webhook names objects by survives the lean decoding; managed fields
/// and the rest of the spec are skipped, whatever their shape.
#[test]
fn lean_decoding_keeps_what_is_read() {
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "generateName": "web-", "namespace": "team-a", "uid": "u-1",
            "labels": {"app": "web"}, "annotations": {"a": "b"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:x": {}}}}],
            "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "y"}]
        },
        "spec": {
            "replicas": 3,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "app", "image": "registry/app:1", "env": [{"name": "A"}]}],
                "initContainers": [{"name": "init", "image": "registry/init:1"}],
                "volumes": [{"name": "v", "projected": {"sources": []}}]
            }}
        }
    });
    let body = review_of(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        None,
        "CREATE",
        object,
        json!(null),
    );
    let mut req = parse(&body).unwrap_or_else(|e| panic!("{e}"));
    let meta = &req.object.as_ref().unwrap().metadata;
    assert_eq!(meta.uid.as_deref(), Some("u-1"));
    assert_eq!(meta.labels.as_ref().unwrap()["app"], "web");
    assert_eq!(meta.annotations.as_ref().unwrap()["a"], "b");
    assert!(meta.managed_fields.is_none());
    req.name = String::new();
    assert_eq!(object_name(&req), "web-*");
    let images: Vec<_> = match subject(&req) {
        Subject::Images(i) => i.into_iter().map(|i| (i.kind, i.image)).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        images,
        [
            (ContainerKind::Container, "registry/app:1".to_owned()),
            (ContainerKind::InitContainer, "registry/init:1".to_owned()),
        ]
    );
}

#[test]
fn create_checks_every_image() {
    let req = parse(&review("CREATE", pod(&[("a", "nginx")], &[]), json!(null))).unwrap();
    let Subject::Images(images) = subject(&req) else {
        panic!("expected images")
    };
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].image, "nginx");
}

#[test]
fn update_checks_only_new_images() {
    let old = pod(&[("a", "nginx")], &[]);
    let same = pod(&[("a", "nginx")], &[]);
    let req = parse(&review("UPDATE", same, old.clone())).unwrap();
    assert!(matches!(subject(&req), Subject::Skip(_)));
    let debug = pod(&[("a", "nginx")], &[("dbg", "busybox")]);
    let req = parse(&review("UPDATE", debug, old)).unwrap();
    let Subject::Images(images) = subject(&req) else {
        panic!("expected images")
    };
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].kind, ContainerKind::EphemeralContainer);
}

#[test]
fn cronjob_template_is_read() {
    let cron = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "x", "image": "alpine:3"}],
            "initContainers": [{"name": "i", "image": "busybox"}]}}}}}
    });
    let body = review_of(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        None,
        "CREATE",
        cron,
        json!(null),
    );
    let req = parse(&body).unwrap();
    let Subject::Images(images) = subject(&req) else {
        panic!("expected images")
    };
    assert_eq!(images.len(), 2);
    assert_eq!(images[1].kind, ContainerKind::InitContainer);
}

#[test]
fn delete_and_other_kinds_are_skipped() {
    let req = parse(&review("DELETE", json!(null), pod(&[("a", "x")], &[]))).unwrap();
    assert!(matches!(subject(&req), Subject::Skip(_)));
    let body = review_of(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        None,
        "CREATE",
        json!({"data": {}}),
        json!(null),
    );
    assert!(matches!(subject(&parse(&body).unwrap()), Subject::Skip(_)));
}

#[test]
fn malformed_bodies_are_errors() {
    assert!(matches!(parse(b"{"), Err(ReviewError::Malformed(_))));
    assert!(matches!(
        parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
        Err(ReviewError::NoRequest)
    ));
    assert!(matches!(
        parse(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#),
        Err(ReviewError::Version(_))
    ));
    let bad = br#"{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u1","kind":7}}"#;
    assert!(parse(bad).is_err());
    assert_eq!(salvage_uid(bad).as_deref(), Some("u1"));
}

#[test]
fn denial_has_code_403_and_warnings() {
    let req = parse(&review("CREATE", pod(&[("a", "nginx")], &[]), json!(null))).unwrap();
    let decision = Decision {
        allowed: false,
        warnings: vec!["w".into()],
        message: Some("no".into()),
        audit: vec![],
        ..Decision::default()
    };
    let r = respond(&req, &decision);
    assert!(!r.allowed);
    assert_eq!(r.result.code, 403);
    assert_eq!(r.result.message, "no");
    assert_eq!(r.warnings, Some(vec!["w".to_owned()]));
    let body: serde_json::Value = serde_json::from_slice(&to_body(r)).unwrap();
    assert_eq!(
        body["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
}

#[test]
fn a_tag_that_cannot_be_resolved_denies_with_code_503() {
    use crate::decision::{Unresolved, UnresolvedEffect};
    let req = parse(&review("CREATE", pod(&[("a", "nginx")], &[]), json!(null))).unwrap();
    let unresolved = |effect| {
        Some(Unresolved {
            text: "cannot resolve".into(),
            effect,
        })
    };
    let closed = Decision {
        allowed: false,
        warnings: vec!["w".into()],
        message: Some("retry".into()),
        unresolved: unresolved(UnresolvedEffect::FailedClosed),
        ..Decision::default()
    };
    let r = respond(&req, &closed);
    assert!(!r.allowed);
    assert_eq!(r.result.code, 503);
    assert_eq!(r.result.reason, "ServiceUnavailable");
    assert_eq!(r.result.message, "retry");
    assert_eq!(r.warnings, Some(vec!["w".to_owned()]));
    // Denied by a policy anyway: the policy's answer.
    let denied = Decision {
        unresolved: unresolved(UnresolvedEffect::Logged),
        ..closed
    };
    assert_eq!(respond(&req, &denied).result.code, 403);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Something JSON-shaped, nested a few levels: what a confused or hostile client
    /// might send in place of a pod.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("spec".to_string()),
                        Just("containers".to_string()),
                        Just("image".to_string()),
                        Just("name".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any bytes: an answer, never a panic; the answer always serializes.
        #[test]
        fn any_body_is_answered(body in prop::collection::vec(any::<u8>(), 0..512)) {
            match parse(&body) {
                Ok(req) => { let _ = subject(&req); let _ = to_body(allow(&req, vec![])); }
                Err(e) => {
                    let out = to_body(invalid(salvage_uid(&body), &e.to_string()));
                    prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
                }
            }
        }

        /// A well-formed review whose object is any JSON: parsing and finding the images
        /// never panic, and only strings that were in the object come out as images.
        #[test]
        fn any_object_is_decoded_or_refused(object in json_value(), kind in prop_oneof![Just("Pod"), Just("Deployment"), Just("CronJob")]) {
            let (group, resource) = match kind {
                "Pod" => ("", "pods"),
                "Deployment" => ("apps", "deployments"),
                _ => ("batch", "cronjobs"),
            };
            let body = review_of(group, "v1", kind, resource, None, "CREATE", object.clone(), json!(null));
            if let Ok(req) = parse(&body)
                && let Subject::Images(images) = subject(&req)
            {
                let text = object.to_string();
                for i in images {
                    prop_assert!(text.contains(&serde_json::Value::from(i.image.clone()).to_string()));
                }
            }
        }

        /// Pods with any container images: every image comes back, in spec order.
        #[test]
        fn pod_images_round_trip(images in prop::collection::vec("[a-z0-9./:@-]{1,40}", 1..6)) {
            let named: Vec<(String, &str)> = images.iter().enumerate().map(|(i, im)| (format!("c{i}"), im.as_str())).collect();
            let pairs: Vec<(&str, &str)> = named.iter().map(|(n, i)| (n.as_str(), *i)).collect();
            let req = parse(&review("CREATE", pod(&pairs, &[]), json!(null))).unwrap();
            let Subject::Images(found) = subject(&req) else {
                return Err(TestCaseError::fail("expected images"));
            };
            let found: Vec<String> = found.into_iter().map(|i| i.image).collect();
            prop_assert_eq!(found, images);
        }
    }
}

/// Which requests are the reachability probe, and what nonce comes back: a Pod CREATE with
/// the annotation, whatever its image and whether dry run or not; nothing else.
#[test]
fn the_probe_is_recognised_by_its_annotation_on_a_pod_create() {
    let probe_pod = |annotations: serde_json::Value| {
        let mut p = pod(&[("probe", PROBE_IMAGE)], &[]);
        p["metadata"]["annotations"] = annotations;
        p
    };
    let marked = json!({ PROBE_ANNOTATION: "3f2a-9c1b" });
    let long = "a".repeat(100);
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        (
            "probe",
            review("CREATE", probe_pod(marked.clone()), json!(null)),
            Some("3f2a-9c1b".into()),
        ),
        (
            "odd characters dropped",
            review(
                "CREATE",
                probe_pod(json!({ PROBE_ANNOTATION: "ab c\n<d>" })),
                json!(null),
            ),
            Some("abcd".into()),
        ),
        (
            "long nonce cut",
            review(
                "CREATE",
                probe_pod(json!({ PROBE_ANNOTATION: long })),
                json!(null),
            ),
            Some("a".repeat(64)),
        ),
        (
            "no annotation",
            review("CREATE", probe_pod(json!({"other": "x"})), json!(null)),
            None,
        ),
        (
            "no annotations at all",
            review("CREATE", pod(&[("probe", PROBE_IMAGE)], &[]), json!(null)),
            None,
        ),
        (
            "update",
            review(
                "UPDATE",
                probe_pod(marked.clone()),
                probe_pod(marked.clone()),
            ),
            None,
        ),
        (
            "a Deployment",
            review_of(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                None,
                "CREATE",
                probe_pod(marked.clone()),
                json!(null),
            ),
            None,
        ),
    ];
    for (what, body, want) in cases {
        let req = parse(&body).unwrap();
        assert_eq!(probe_nonce(&req), want, "{what}");
    }
}

#[test]
fn a_probe_is_refused_with_the_marker_and_its_nonce() {
    let req = parse(&review(
        "CREATE",
        pod(&[("probe", PROBE_IMAGE)], &[]),
        json!(null),
    ))
    .unwrap();
    let r = probe_refusal(&req, "n-1");
    assert!(!r.allowed);
    assert_eq!(r.result.code, 403);
    assert!(
        r.result
            .message
            .starts_with(&format!("{PROBE_MARKER} n-1: ")),
        "{}",
        r.result.message
    );
}
