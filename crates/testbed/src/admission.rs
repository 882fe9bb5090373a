//! AdmissionReview bodies shaped as the API server sends them (managed fields, projected token
//! volume, probes, env): for the webhook's tests and its benchmark.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

static UID: AtomicU32 = AtomicU32::new(0);

/// A fresh request uid.
pub fn uid() -> String {
    format!(
        "4f1c5a3e-9d1b-4e07-8a6b-{:012x}",
        UID.fetch_add(1, Ordering::Relaxed)
    )
}

/// A container as the API server stores it (defaults filled in), with env and a probe.
pub fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": true,
                          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                          "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent"
    })
}

/// An ephemeral container as `kubectl debug` adds it.
pub fn ephemeral(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "stdin": true,
        "tty": true,
        "targetContainerName": "app"
    })
}

/// Containers as (name, image).
pub type Containers = Vec<(String, String)>;

/// The images of a pod spec, by list.
pub struct PodSpec {
    pub containers: Containers,
    pub init: Containers,
    pub ephemeral: Containers,
}

/// `(name, image)` pairs, owned.
pub fn owned(list: &[(&str, &str)]) -> Containers {
    list.iter()
        .map(|(n, i)| ((*n).to_owned(), (*i).to_owned()))
        .collect()
}

/// A pod spec's container lists.
pub fn spec(
    containers: &[(&str, &str)],
    init: &[(&str, &str)],
    ephemeral: &[(&str, &str)],
) -> PodSpec {
    PodSpec {
        containers: owned(containers),
        init: owned(init),
        ephemeral: owned(ephemeral),
    }
}

/// A pod spec with containers only.
pub fn only(containers: &[(&str, &str)]) -> PodSpec {
    spec(containers, &[], &[])
}

/// The pod spec JSON of `spec`.
pub fn pod_spec(spec: &PodSpec) -> Value {
    let mut s = json!({
        "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
        "containers": spec.containers.iter().map(|(n, i)| container(n, i)).collect::<Vec<_>>(),
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ],
        "priority": 0,
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
    });
    if !spec.init.is_empty() {
        s["initContainers"] = spec.init.iter().map(|(n, i)| container(n, i)).collect();
    }
    if !spec.ephemeral.is_empty() {
        s["ephemeralContainers"] = spec
            .ephemeral
            .iter()
            .map(|(n, i)| ephemeral(n, i))
            .collect();
    }
    s
}

/// A Pod; with `uid` as stored (running), without as in a CREATE.
pub fn pod(namespace: &str, name: &str, spec: &PodSpec, uid: Option<&str>) -> Value {
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": {"app": name},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
            "apiVersion": "v1", "time": "2026-11-23T10:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]
    });
    if let Some(uid) = uid {
        metadata["uid"] = uid.into();
        metadata["resourceVersion"] = "4711".into();
        metadata["creationTimestamp"] = "2026-11-23T10:00:00Z".into();
    }
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": pod_spec(spec),
        "status": if uid.is_some() { json!({"phase": "Running", "qosClass": "Burstable"}) } else { json!({"phase": "Pending", "qosClass": "Burstable"}) }
    })
}

/// The `userInfo` of a cluster admin.
pub fn user_info() -> Value {
    json!({
        "username": "kubernetes-admin",
        "groups": ["kubeadm:cluster-admins", "system:authenticated"]
    })
}

/// A CREATE of a Pod, as `kubectl apply` makes the API server send it.
pub fn create_pod(namespace: &str, name: &str, spec: &PodSpec) -> Value {
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid(),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": user_info(),
            "object": pod(namespace, name, spec, None),
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                        "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"}
        }
    })
}

/// An UPDATE of the `ephemeralcontainers` subresource, as `kubectl debug` makes it.
pub fn debug_pod(namespace: &str, name: &str, old: &PodSpec, new: &PodSpec) -> Value {
    let pod_uid = "b1c2d3e4-0000-4000-8000-000000000001";
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid(),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": "ephemeralcontainers",
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "requestSubResource": "ephemeralcontainers",
            "name": name,
            "namespace": namespace,
            "operation": "UPDATE",
            "userInfo": user_info(),
            "object": pod(namespace, name, new, Some(pod_uid)),
            "oldObject": pod(namespace, name, old, Some(pod_uid)),
            "dryRun": false,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1",
                        "fieldManager": "kubectl-debug"}
        }
    })
}

/// A CREATE of an apps/v1 Deployment.
pub fn create_deployment(namespace: &str, name: &str, spec: &PodSpec) -> Value {
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid(),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": user_info(),
            "object": {
                "kind": "Deployment",
                "apiVersion": "apps/v1",
                "metadata": {"name": name, "namespace": namespace, "generation": 1,
                             "labels": {"app": name}},
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": pod_spec(spec)
                    },
                    "strategy": {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": 600
                },
                "status": {}
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                        "fieldManager": "kubectl-client-side-apply"}
        }
    })
}
