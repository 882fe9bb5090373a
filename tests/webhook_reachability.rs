//! The webhook proves it is reachable, on a real kube-apiserver: the webhook is registered by
//! the ValidatingWebhookConfiguration of `config/webhook/` as shipped (`failurePolicy:
//! Ignore`), pointed at this test's listener, and the operator's prober creates its probe Pod
//! as a dry run through the API server. Up: reachable (metric 1, `WebhookReachable=True` on
//! the ScanPolicy, a Normal Event). Port closed: the API server skips the webhook and admits
//! the probe, so unreachable (metric 0, condition False, a Warning Event); under `failurePolicy:
//! Fail`, failing. Back up: reachable again.
//!
//! Needs a real API server (`KUBEBUILDER_ASSETS`, see `testbed::envtest`): the double does not
//! call admission webhooks.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecr_operator::admission::reachability::verdict::Reachability;
use ecr_operator::admission::reachability::{ProbeConfig, Prober};
use ecr_operator::api::scan_policy::ScanPolicy;
use ecr_operator::controllers::MANAGER;
use ecr_operator::scope::WatchScope;
use ecr_operator::telemetry::metrics::Metrics;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use testbed::kube_env::{KubeEnv, unique_name};
use testbed::wait;

const WAIT: Duration = Duration::from_secs(60);

/// `config/webhook/manifests.yaml` as shipped (`failurePolicy: Ignore`), named `name`, calling
/// `https://ADDR/PATH`, for the namespace `ns` only (the API server is shared).
fn webhook_configuration(name: &str, addr: SocketAddr, ns: &str) -> ValidatingWebhookConfiguration {
    let text =
        std::fs::read_to_string(testbed::workspace_root().join("config/webhook/manifests.yaml"))
            .unwrap();
    let mut config: ValidatingWebhookConfiguration = serde_yaml::from_str(&text).unwrap();
    config.metadata.name = Some(name.to_string());
    for webhook in config.webhooks.as_mut().unwrap() {
        assert_eq!(
            webhook.failure_policy.as_deref(),
            Some("Ignore"),
            "the shipped default"
        );
        assert_eq!(webhook.side_effects, "None", "dry-run requests may call it");
        let path = webhook.client_config.service.take().unwrap().path.unwrap();
        webhook.client_config.url = Some(format!("https://{addr}{path}"));
        webhook.namespace_selector = Some(
            serde_json::from_value(json!({"matchLabels": {"kubernetes.io/metadata.name": ns}}))
                .unwrap(),
        );
    }
    config
}

/// The policy's `WebhookReachable` condition once it has `status` and `reason`.
async fn condition(
    policies: &Api<ScanPolicy>,
    name: &str,
    status: &str,
    reason: &str,
) -> Condition {
    let what = format!("WebhookReachable={status} ({reason}) on ScanPolicy {name}");
    wait::until(&what, WAIT, || async move {
        let policy = policies.get(name).await.ok()?;
        let conditions = policy.status?.common.conditions;
        conditions
            .into_iter()
            .find(|c| c.type_ == "WebhookReachable" && c.status == status && c.reason == reason)
    })
    .await
    .unwrap()
}

/// The probe's Events about the policy with `reason`, once there are `count` of them.
async fn events(client: &kube::Client, policy: &str, reason: &str, count: usize) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let what = format!("{count} Event(s) {reason} about ScanPolicy {policy}");
    wait::until(&what, WAIT, || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let found: Vec<Event> = list
                .items
                .into_iter()
                .filter(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(policy)
                        && e.reason.as_deref() == Some(reason)
                })
                .collect();
            (found.len() >= count).then_some(found)
        }
    })
    .await
    .unwrap()
}

/// How many Events with `reason` about the policy there are now.
async fn count(client: &kube::Client, policy: &str, reason: &str) -> usize {
    events(client, policy, reason, 0).await.len()
}

/// The metric's value once it is `want`.
async fn metric(metrics: &Metrics, want: bool) {
    let line = format!("ecr_operator_webhook_reachable {}", i64::from(want));
    wait::until(&line, WAIT, || async {
        metrics.render().contains(&line).then_some(())
    })
    .await
    .unwrap();
}

/// `kubectl get scanpolicy NAME` (kubectl from `.venv`, else PATH): its table.
async fn kubectl_get(kubeconfig: &std::path::Path, name: &str) -> String {
    let program = testbed::venv_tool("kubectl");
    let out = tokio::process::Command::new(&program)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "scanpolicy", name])
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (bash scripts/setup-venv.sh installs it)",
                program.display()
            )
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Applies `conditions` to the policy's status as the controllers do.
async fn apply_as_controller(policies: &Api<ScanPolicy>, name: &str, conditions: Vec<Condition>) {
    let patch = json!({
        "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "ScanPolicy",
        "status": {"observedGeneration": 1, "conditions": conditions},
    });
    policies
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .unwrap();
}

async fn set_failure_policy(api: &Api<ValidatingWebhookConfiguration>, name: &str, policy: &str) {
    let mut config = api.get(name).await.unwrap();
    for webhook in config.webhooks.as_mut().unwrap() {
        webhook.failure_policy = Some(policy.to_string());
    }
    api.replace(name, &PostParams::default(), &config)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_probe_sees_the_webhook_come_and_go_through_the_api_server() {
    let kube = KubeEnv::require_real().await;
    let client = kube.client();
    let ns = kube.namespace("probe").await.unwrap();
    // This test's ScanPolicy only: the prober's scope is a label no other test uses.
    let label = unique_name("reach");
    let scope =
        WatchScope::new(&[], Some(&format!("test.ecr.operator.dev/scope={label}"))).unwrap();
    let policies: Api<ScanPolicy> = Api::all(client.clone());
    let policy_name = unique_name("reachable");
    let policy: ScanPolicy = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "ScanPolicy",
        "metadata": {"name": policy_name, "labels": {"test.ecr.operator.dev/scope": label}},
        "spec": {"enforcement": {"mode": "audit",
                                 "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}}
    }))
    .unwrap();
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], testbed::envtest::free_port().unwrap()));
    let configuration = unique_name("ecr-operator-probe");
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configurations
        .create(
            &PostParams::default(),
            &webhook_configuration(&configuration, addr, &ns),
        )
        .await
        .unwrap();
    let (stop, task) = common::start_generated_webhook(&client, addr, &configuration, WAIT).await;

    // The prober as `run` starts it, probing every 300 ms; a miss confirmed 200 ms later.
    let metrics = Arc::new(Metrics::new(Arc::new(Vec::new)));
    let mut config = ProbeConfig::new(ns.clone(), Duration::from_millis(300));
    config.confirm_after = Duration::from_millis(200);
    let prober =
        Prober::new(client.clone(), config.clone(), metrics.clone()).with_scope(scope.clone());
    let (stop_probe, probe_stopped) = tokio::sync::oneshot::channel::<()>();
    let probing = tokio::spawn(prober.run(async move {
        let _ = probe_stopped.await;
    }));

    // Up: reachable.
    let up = condition(&policies, &policy_name, "True", "WebhookAnswered").await;
    assert!(up.message.contains("answered"), "{}", up.message);
    assert!(up.observed_generation.is_some());
    metric(&metrics, true).await;
    let answered = events(&client, &policy_name, "WebhookAnswered", 1).await;
    assert_eq!(answered[0].type_.as_deref(), Some("Normal"));
    // The controllers write the rest of the status by server-side apply of what they read,
    // forced, under their own field manager (controllers::status::write): first without the
    // probe's condition, then with a copy of it. Neither removes it, and the probe still
    // changes it below.
    let ready = Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "Synced".into(),
        message: "synced".into(),
        observed_generation: up.observed_generation,
        last_transition_time: up.last_transition_time.clone(),
    };
    apply_as_controller(&policies, &policy_name, vec![ready.clone()]).await;
    assert_eq!(
        condition(&policies, &policy_name, "True", "WebhookAnswered").await,
        up
    );
    apply_as_controller(&policies, &policy_name, vec![ready, up.clone()]).await;
    // One probe, timed (a second prober that writes nothing).
    let timer = Prober::new(
        client.clone(),
        config.clone(),
        Arc::new(Metrics::new(Arc::new(Vec::new))),
    );
    let started = Instant::now();
    assert_eq!(timer.probe().await.reachability, Reachability::Reachable);
    eprintln!(
        "figure probe_reachable_ms {}",
        started.elapsed().as_millis()
    );

    // Down, failurePolicy Ignore: the API server admits the probe without asking the webhook.
    // (Counted from here: probes before the API server saw the configuration were skipped too.)
    let skipped_before = count(&client, &policy_name, "WebhookSkipped").await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("webhook stops")
        .unwrap();
    let down = condition(&policies, &policy_name, "False", "WebhookSkipped").await;
    assert!(
        down.message.contains("failurePolicy Ignore"),
        "{}",
        down.message
    );
    metric(&metrics, false).await;
    let skipped = events(&client, &policy_name, "WebhookSkipped", skipped_before + 1).await;
    assert!(
        skipped
            .iter()
            .all(|e| e.type_.as_deref() == Some("Warning"))
    );
    let started = Instant::now();
    assert_eq!(timer.probe().await.reachability, Reachability::Unreachable);
    eprintln!(
        "figure probe_unreachable_ms {}",
        started.elapsed().as_millis()
    );
    assert!(
        metrics
            .render()
            .contains(r#"ecr_operator_webhook_probes_total{outcome="unreachable"}"#)
    );

    // Down, failurePolicy Fail: the API server refuses, and says it could not call the webhook.
    set_failure_policy(&configurations, &configuration, "Fail").await;
    let failing = condition(&policies, &policy_name, "False", "WebhookCallFailed").await;
    assert!(
        failing.message.contains("failed calling webhook"),
        "{}",
        failing.message
    );
    events(&client, &policy_name, "WebhookCallFailed", 1).await;
    set_failure_policy(&configurations, &configuration, "Ignore").await;

    // Back up: reachable again, with one more Normal Event.
    let answered_before = count(&client, &policy_name, "WebhookAnswered").await;
    let (stop, task) = common::start_generated_webhook(&client, addr, &configuration, WAIT).await;
    condition(&policies, &policy_name, "True", "WebhookAnswered").await;
    metric(&metrics, true).await;
    // The controllers' condition is still there after the probe's writes.
    let status = policies.get(&policy_name).await.unwrap().status.unwrap();
    assert!(
        status.common.conditions.iter().any(|c| c.type_ == "Ready"),
        "{status:?}"
    );
    // What `kubectl get scanpolicies` shows: the Webhook column.
    let table = kubectl_get(kube.kubeconfig().unwrap(), &policy_name).await;
    let (header, row) = table.split_once('\n').unwrap_or_default();
    // Columns by their header's offset: empty cells (no controller writes Ready here) leave
    // nothing to split on.
    let at = header.find("WEBHOOK").expect("a Webhook column");
    let cell = row
        .get(at..)
        .and_then(|rest| rest.split_whitespace().next());
    assert_eq!(cell, Some("True"), "{table}");
    let before = events(
        &client,
        &policy_name,
        "WebhookAnswered",
        answered_before + 1,
    )
    .await
    .len();
    // Steady: no Event per probe.
    for _ in 0..3 {
        assert_eq!(timer.probe().await.reachability, Reachability::Reachable);
    }
    let writer = Prober::new(client.clone(), config, metrics.clone()).with_scope(scope);
    let verdict = writer.probe().await;
    assert_eq!(
        writer.report(&verdict).await.unwrap(),
        0,
        "nothing to write while unchanged"
    );
    assert_eq!(
        count(&client, &policy_name, "WebhookAnswered").await,
        before
    );

    let _ = stop_probe.send(());
    probing.await.unwrap();
    let _ = stop.send(());
    let _ = task.await;
    configurations
        .delete(&configuration, &Default::default())
        .await
        .unwrap();
    policies
        .delete(&policy_name, &Default::default())
        .await
        .unwrap();
}

/// A webhook that accepts connections and never answers: the API server gives up after the
/// configuration's `timeoutSeconds` (1 here). Under `Fail` it refuses ("failed calling
/// webhook", a timeout): failing. Under `Ignore` it admits after waiting: unreachable, and the
/// probe takes the timeout, well within its own.
#[tokio::test]
async fn a_webhook_that_hangs_is_failing_under_fail_and_unreachable_under_ignore() {
    let kube = KubeEnv::require_real().await;
    let client = kube.client();
    let ns = kube.namespace("hang").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let name = unique_name("ecr-operator-hang");
    let mut configuration = webhook_configuration(&name, addr, &ns);
    for webhook in configuration.webhooks.as_mut().unwrap() {
        webhook.failure_policy = Some("Fail".into());
        webhook.timeout_seconds = Some(1);
    }
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configurations
        .create(&PostParams::default(), &configuration)
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::new(Arc::new(Vec::new)));
    let config = ProbeConfig::new(ns.clone(), Duration::from_secs(60));
    let prober = Prober::new(client.clone(), config, metrics.clone());

    // Fail: refused once the API server has the configuration.
    let failing = wait::until("the hung webhook failing under Fail", WAIT, || async {
        let v = prober.probe().await;
        (v.reachability == Reachability::Failing).then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(failing.reason, "WebhookCallFailed", "{failing:?}");

    // Ignore: admitted after the API server waited out the timeout.
    set_failure_policy(&configurations, &name, "Ignore").await;
    let started = Instant::now();
    let skipped = wait::until("the hung webhook skipped under Ignore", WAIT, || async {
        let started = Instant::now();
        let v = prober.probe().await;
        (v.reachability == Reachability::Unreachable).then_some(started.elapsed())
    })
    .await
    .unwrap();
    eprintln!("figure probe_hung_webhook_ms {}", skipped.as_millis());
    assert!(skipped >= Duration::from_millis(900), "{skipped:?}");
    assert!(started.elapsed() < WAIT);
    assert_eq!(metrics.webhook_reachable(), Some(false));

    holding.abort();
    configurations
        .delete(&name, &Default::default())
        .await
        .unwrap();
}
