//! The admission webhook as the product is used: registered with a real kube-apiserver by the
//! ValidatingWebhookConfiguration of `config/webhook/` (pointed at this test's listener by URL),
//! its CA bundle written by the webhook itself (generated-certificate mode), and called by the
//! API server over HTTPS when Pods, Deployments, CronJobs and ephemeral containers are created
//! through it. What is checked is what the API server answers to the user.
//!
//! Needs a real API server (`KUBEBUILDER_ASSETS`, see `testbed::envtest`): the double does not
//! call admission webhooks.

mod common;

use std::time::Duration;

use ecr_operator::api::image_scan_report::ImageScanReport;
use ecr_operator::api::scan_policy::ScanPolicy;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testbed::kube_env::{KubeEnv, unique_name};
use testbed::moto::ACCOUNT;
use testbed::wait;

const WAIT: Duration = Duration::from_secs(30);
const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const VULNERABLE: &str = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
const CLEAN: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
const CVE: &str = "CVE-2024-3094";

fn image(digest: &str) -> String {
    format!("{REGISTRY}/app@{digest}")
}

fn typed<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).unwrap()
}

/// The report of `digest` in repository `app`, with `critical` findings.
async fn create_report(client: &kube::Client, digest: &str, critical: &[&str]) {
    let findings: Vec<Value> = critical
        .iter()
        .map(|id| json!({"id": id, "severity": "CRITICAL", "package": "xz-utils", "installedVersion": "5.6.0"}))
        .collect();
    let report: ImageScanReport = typed(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1",
        "kind": "ImageScanReport",
        "metadata": {"name": unique_name("report")},
        "spec": {
            "registryId": ACCOUNT,
            "repositoryName": "app",
            "imageDigest": digest,
            "scan": {"status": "COMPLETE", "completedAt": chrono::Utc::now().to_rfc3339(), "scanType": "BASIC"},
            "summary": {"critical": critical.len()},
            "findings": findings,
        }
    }));
    Api::<ImageScanReport>::all(client.clone())
        .create(&PostParams::default(), &report)
        .await
        .unwrap();
}

/// `config/webhook/manifests.yaml` as shipped, named `name`, calling `https://ADDR/PATH` instead
/// of the in-cluster Service, for the namespace `ns` only (the API server is shared), failing
/// closed so that a webhook the API server cannot reach shows as an error, not as admitted.
fn webhook_configuration(
    name: &str,
    addr: std::net::SocketAddr,
    ns: &str,
) -> ValidatingWebhookConfiguration {
    let text =
        std::fs::read_to_string(testbed::workspace_root().join("config/webhook/manifests.yaml"))
            .unwrap();
    let mut config: ValidatingWebhookConfiguration = serde_yaml::from_str(&text).unwrap();
    config.metadata.name = Some(name.to_string());
    let webhooks = config.webhooks.as_mut().unwrap();
    assert_eq!(webhooks.len(), 2, "pods and workloads");
    for webhook in webhooks {
        let path = webhook.client_config.service.take().unwrap().path.unwrap();
        webhook.client_config.url = Some(format!("https://{addr}{path}"));
        webhook.failure_policy = Some("Fail".to_string());
        webhook.namespace_selector = Some(typed(json!({
            "matchLabels": {"kubernetes.io/metadata.name": ns}
        })));
    }
    config
}

/// Runs kubectl (from `.venv`, else PATH) with `stdin`; whether it succeeded, and its stderr.
/// Async: the webhook answering the API server runs on this test's runtime.
async fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let program = testbed::venv_tool("kubectl");
    let mut child = tokio::process::Command::new(&program)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (bash scripts/setup-venv.sh installs it)",
                program.display()
            )
        });
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pod(name: &str, image: &str) -> Pod {
    typed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image}]}
    }))
}

/// The API server's answer to creating `obj`: `Ok` when admitted, else the Status.
async fn create<K>(api: &Api<K>, obj: &K) -> Result<(), kube::core::Status>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(*status),
        Err(e) => panic!("creating {obj:?}: {e}"),
    }
}

/// A refusal by our webhook: 403, our message with the image and the finding.
fn assert_denied_by_webhook(answer: Result<(), kube::core::Status>, what: &str) {
    let status = answer.expect_err(&format!("{what} must be refused"));
    assert_eq!(status.code, 403, "{what}: {status:?}");
    assert!(
        status.message.contains("admission webhook")
            && status.message.contains("denied the request"),
        "{what}: not the webhook's refusal: {}",
        status.message
    );
    assert!(status.message.contains(CVE), "{what}: {}", status.message);
    assert!(
        status.message.contains(VULNERABLE),
        "{what}: {}",
        status.message
    );
}

#[tokio::test]
async fn the_api_server_refuses_what_the_webhook_denies() {
    let kube = KubeEnv::require_real().await;
    let client = kube.client();
    let ns = kube.namespace("admission").await.unwrap();
    create_report(&client, VULNERABLE, &[CVE]).await;
    create_report(&client, CLEAN, &[]).await;
    let policy_name = unique_name("enforce");
    let policy: ScanPolicy = typed(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "ScanPolicy",
        "metadata": {"name": policy_name},
        "spec": {"enforcement": {"mode": "enforce", "severityThreshold": "CRITICAL",
                                 "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}}
    }));
    let policies: Api<ScanPolicy> = Api::all(client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();

    // The webhook configuration first, without a CA: the webhook writes its generated CA into
    // it, as `ecr-operator run` does with a generated certificate.
    // Below the ephemeral range: no outgoing connection takes it before the webhook binds it.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], testbed::envtest::free_port().unwrap()));
    let configuration_name = unique_name("ecr-operator-test");
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configurations
        .create(
            &PostParams::default(),
            &webhook_configuration(&configuration_name, addr, &ns),
        )
        .await
        .unwrap();
    let (stop, task) =
        common::start_generated_webhook(&client, addr, &configuration_name, WAIT).await;
    wait::until("CA bundle written", WAIT, || {
        let configurations = configurations.clone();
        let name = configuration_name.clone();
        async move {
            let c = configurations.get(&name).await.ok()?;
            c.webhooks?
                .iter()
                .all(|w| {
                    w.client_config
                        .ca_bundle
                        .as_ref()
                        .is_some_and(|b| !b.0.is_empty())
                })
                .then_some(())
        }
    })
    .await
    .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // The API server picks up a new webhook configuration within a moment: retried until the
    // refusal is the webhook's (a pod admitted meanwhile is deleted for the next try).
    let mut n = 0;
    let refused = wait::until("the webhook's refusal through the API server", WAIT, || {
        n += 1;
        let name = format!("vulnerable-{n}");
        let pods = pods.clone();
        async move {
            match create(&pods, &pod(&name, &image(VULNERABLE))).await {
                Ok(()) => {
                    let _ = pods.delete(&name, &Default::default()).await;
                    None
                }
                Err(status) => Some(status),
            }
        }
    })
    .await
    .unwrap();
    assert_denied_by_webhook(Err(refused), "a Pod with a CRITICAL finding");
    // Host names are case-insensitive: an upper-case ECR host is sent to the webhook too.
    let upper = image(VULNERABLE).replace(
        "dkr.ecr.us-east-1.amazonaws.com",
        "DKR.ECR.US-EAST-1.AMAZONAWS.COM",
    );
    assert_denied_by_webhook(
        create(&pods, &pod("upper-case-host", &upper)).await,
        "a Pod naming the ECR host in upper case",
    );

    // A clean image is admitted, and so is an image outside ECR (matchConditions: not sent).
    create(&pods, &pod("clean", &image(CLEAN)))
        .await
        .expect("a clean image is admitted");
    create(&pods, &pod("docker-hub", "docker.io/library/nginx:1.27"))
        .await
        .expect("an image outside ECR is admitted");

    // Workloads: the pod template is checked.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = |name: &str, image: &str| -> Deployment {
        typed(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}
        }))
    };
    assert_denied_by_webhook(
        create(&deployments, &deployment("vulnerable", &image(VULNERABLE))).await,
        "a Deployment with a CRITICAL finding",
    );
    create(&deployments, &deployment("clean", &image(CLEAN)))
        .await
        .expect("a clean Deployment is admitted");
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &ns);
    let cronjob: CronJob = typed(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *",
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "restartPolicy": "Never",
                     "containers": [{"name": "job", "image": image(VULNERABLE)}]}}}}}
    }));
    assert_denied_by_webhook(
        create(&cronjobs, &cronjob).await,
        "a CronJob with a CRITICAL finding",
    );

    // `kubectl debug`: an ephemeral container added to a running pod.
    let debug = json!({"spec": {"ephemeralContainers": [
        {"name": "debugger", "image": image(VULNERABLE), "targetContainerName": "app"}
    ]}});
    let answer = pods
        .patch_subresource(
            "ephemeralcontainers",
            "clean",
            &PatchParams::default(),
            &Patch::Strategic(&debug),
        )
        .await;
    match answer {
        Err(kube::Error::Api(status)) => {
            assert_denied_by_webhook(Err(*status), "an ephemeral container")
        }
        other => {
            panic!("an ephemeral container with a CRITICAL finding must be refused: {other:?}")
        }
    }

    // Warn mode: admitted, with the webhook's warning passed on by the API server.
    policies
        .patch(
            &policy_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"enforcement": {"mode": "warn"}}})),
        )
        .await
        .unwrap();
    // kubectl prints the warnings the API server passes on; kube-rs does not surface them.
    let kubeconfig = kube.kubeconfig().unwrap().to_path_buf();
    let mut n = 0;
    let warning = wait::until("admitted with a warning in warn mode", WAIT, || {
        n += 1;
        let manifest =
            serde_json::to_string(&pod(&format!("warned-{n}"), &image(VULNERABLE))).unwrap();
        let (kubeconfig, ns) = (kubeconfig.clone(), ns.clone());
        async move {
            let (ok, stderr) =
                kubectl(&kubeconfig, &["create", "-n", &ns, "-f", "-"], &manifest).await;
            (ok && stderr.contains("Warning:")).then_some(stderr)
        }
    })
    .await
    .unwrap();
    assert!(warning.contains(CVE), "{warning}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("webhook stops")
        .unwrap();
    // A webhook that is gone, with failurePolicy Fail: the API server refuses, and says why.
    let gone = create(&pods, &pod("after-stop", &image(CLEAN)))
        .await
        .expect_err("no webhook answers");
    assert!(
        gone.message.contains("failed calling webhook"),
        "{}",
        gone.message
    );
    configurations
        .delete(&configuration_name, &Default::default())
        .await
        .unwrap();
    policies
        .delete(&policy_name, &Default::default())
        .await
        .unwrap();
}
