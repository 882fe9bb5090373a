//! `pods-real`: what the admission webhook adds to a Pod create through a real kube-apiserver
//! (issue #17's `pod_create_overhead_p99_ms`). The webhook runs in this process with a generated
//! certificate, registered in the API server by the repository's own webhook configuration
//! (`config/webhook/manifests.yaml`, pointed at it by URL), for one namespace; Pods are created
//! at a fixed rate in that namespace and in another the configuration does not select,
//! interleaved, so both see the same load. The figure is the difference of the p99 latencies.
//! Every answer is checked: a Pod of a CRITICAL image must be refused by the webhook, every
//! other Pod admitted.

use std::time::{Duration, Instant};

use ecr_operator::admission::{CertificateSource, WebhookConfig, WebhookServer};
use ecr_operator::api::scan_policy::ScanPolicy;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::Sizes;
use crate::admission::create_report;
use crate::figures::Figures;
use crate::util::{BenchError, Result, ms, poll, quantile, workspace_root};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const REPOSITORY: &str = "shop/web";
const CLEAN: &str = "sha256:c1ea0000000000000000000000000000000000000000000000000000000000c1";
const CRITICAL: &str = "sha256:bad0000000000000000000000000000000000000000000000000000000000bad";
/// One Pod in this many of the webhook's namespace runs the CRITICAL image.
const DENY_EVERY: usize = 10;

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let kube = testbed::kube_env::KubeEnv::real().await?.ok_or_else(|| {
        BenchError::Scenario(format!(
            "needs a real API server: set {} to a folder with kube-apiserver and etcd \
             (scripts/envtest.sh unpacks ../shared/envtest)",
            testbed::envtest::ASSETS_ENV
        ))
    })?;
    let client = kube.client();
    let checked = kube.namespace("bench-webhook").await?;
    let unchecked = kube.namespace("bench-plain").await?;
    create_report(&client, CLEAN, &[], false).await?;
    create_report(&client, CRITICAL, &[], true).await?;
    let policy: ScanPolicy = serde_json::from_value(json!({
        "apiVersion": "ecr.operator.dev/v1alpha1", "kind": "ScanPolicy",
        "metadata": {"name": testbed::kube_env::unique_name("bench-enforce")},
        "spec": {"enforcement": {"mode": "enforce",
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": checked}}}}
    }))
    .map_err(|e| BenchError::Scenario(format!("policy fixture: {e}")))?;
    Api::<ScanPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await?;

    let webhook = start_webhook(&client, &checked).await?;
    let pods = Api::<Pod>::namespaced(client.clone(), &checked);
    // The API server takes up a new configuration within a moment: wait for the first refusal.
    let mut n = 0;
    poll(
        "the API server to call the webhook",
        Duration::from_millis(100),
        Duration::from_secs(60),
        || {
            n += 1;
            let (pods, probe) = (pods.clone(), pod(&format!("probe-{n}"), CRITICAL));
            async move {
                let answer = pods.create(&PostParams::default(), &probe).await;
                answer.is_err().then_some(())
            }
        },
    )
    .await?;

    let rate = if sizes.quick { 20.0 } else { 50.0 };
    let seconds = if sizes.quick { 2.0 } else { 20.0 };
    // A warm-up second first, discarded: the first creates of a namespace pay for caches and
    // connections that later ones find ready.
    load(&client, &checked, &unchecked, rate, 1.0, "warm").await?;
    let calls_before = webhook_calls(&client).await?;
    let (with, without) = load(&client, &checked, &unchecked, rate, seconds, "p").await?;
    let calls = webhook_calls(&client).await?.since(calls_before);
    let _ = webhook.0.send(());
    let _ = webhook.1.await;
    let p99_with = quantile(&with, 0.99);
    let p99_without = quantile(&without, 0.99);
    let overhead = ms(p99_with) - ms(p99_without);
    eprintln!(
        "   {} + {} Pod creates at {rate}/s each: p50 {:.2} / {:.2} ms, p99 {:.2} / {:.2} ms (webhook / none)",
        with.len(),
        without.len(),
        ms(quantile(&with, 0.5)),
        ms(quantile(&without, 0.5)),
        ms(p99_with),
        ms(p99_without),
    );
    figures.add(
        "pod_create_p99_ms_webhook",
        ms(p99_with),
        "ms",
        "Pod creates through the real kube-apiserver in a namespace the webhook checks",
    );
    figures.add(
        "pod_create_p99_ms_no_webhook",
        ms(p99_without),
        "ms",
        "the same, interleaved, in a namespace the webhook configuration does not select",
    );
    // Where the overhead goes: the API server's own measure of its calls to the webhook (TLS,
    // the webhook's answer, decoding it) against the mean a create gains.
    figures.add(
        "pod_create_overhead_mean_ms",
        ms(mean(&with)) - ms(mean(&without)),
        "ms",
        "mean with the webhook minus mean without, same run",
    );
    figures.add(
        "pod_create_webhook_call_mean_ms",
        calls.mean_ms(),
        "ms",
        "the API server's mean time in its calls to the webhook \
         (apiserver_admission_webhook_admission_duration_seconds, this webhook, this load)",
    );
    if calls.count != with.len() as f64 {
        return Err(BenchError::Scenario(format!(
            "the API server called the webhook {} times for {} creates in its namespace",
            calls.count,
            with.len()
        )));
    }
    figures.add(
        "pod_create_overhead_p99_ms",
        overhead,
        "ms",
        "p99 with the webhook minus p99 without, same run (issue #17 target <= 3)",
    );
    Ok(())
}

fn mean(latencies: &[Duration]) -> Duration {
    latencies.iter().sum::<Duration>() / u32::try_from(latencies.len().max(1)).unwrap_or(u32::MAX)
}

/// The webhook's name in `config/webhook/manifests.yaml`, as the API server's metrics label it.
const WEBHOOK_NAME: &str = "pods.ecr.operator.dev";

/// The API server's histogram of its calls to the webhook: total seconds and count.
#[derive(Clone, Copy, Debug, Default)]
struct WebhookCalls {
    seconds: f64,
    count: f64,
}

impl WebhookCalls {
    fn since(self, before: WebhookCalls) -> WebhookCalls {
        WebhookCalls {
            seconds: self.seconds - before.seconds,
            count: self.count - before.count,
        }
    }

    fn mean_ms(self) -> f64 {
        if self.count > 0.0 {
            self.seconds * 1000.0 / self.count
        } else {
            0.0
        }
    }
}

/// `apiserver_admission_webhook_admission_duration_seconds` for [`WEBHOOK_NAME`], summed over
/// its label sets (allowed and rejected), from the API server's `/metrics`.
async fn webhook_calls(client: &kube::Client) -> Result<WebhookCalls> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| BenchError::Scenario(format!("metrics request: {e}")))?;
    let text = client.request_text(request).await?;
    let label = format!("name=\"{WEBHOOK_NAME}\"");
    let total = |series: &str| -> f64 {
        let prefix = format!("apiserver_admission_webhook_admission_duration_seconds_{series}{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix) && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(WebhookCalls {
        seconds: total("sum"),
        count: total("count"),
    })
}

/// The webhook with a generated certificate whose CA it writes into a copy of the repository's
/// webhook configuration, pointed at it by URL and narrowed to `namespace`; ready once the
/// configuration holds the CA. Stopped by the returned sender.
async fn start_webhook(
    client: &kube::Client,
    namespace: &str,
) -> Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], testbed::envtest::free_port()?));
    let name = testbed::kube_env::unique_name("bench-webhook");
    let configurations = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    configurations
        .create(
            &PostParams::default(),
            &configuration(&name, addr, namespace)?,
        )
        .await?;
    let mut config = WebhookConfig::new(CertificateSource::Generated {
        dns_names: vec!["127.0.0.1".to_string()],
        webhook_configuration: Some(name.clone()),
        valid_days: 1,
    });
    config.addr = addr;
    let server = WebhookServer::bind(config, client.clone())
        .await
        .map_err(|e| BenchError::Scenario(format!("webhook: {e}")))?;
    let readiness = server.readiness();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    poll(
        "the webhook ready, its CA in the configuration",
        Duration::from_millis(50),
        Duration::from_secs(60),
        || {
            let (configurations, name, readiness) = (&configurations, &name, &readiness);
            async move {
                let c = configurations.get(name).await.ok()?;
                let with_ca = c
                    .webhooks?
                    .iter()
                    .all(|w| (w.client_config.ca_bundle.as_ref()).is_some_and(|b| !b.0.is_empty()));
                (with_ca && readiness.ready()).then_some(())
            }
        },
    )
    .await?;
    Ok((stop, task))
}

/// `config/webhook/manifests.yaml` named `name`, calling `addr` by URL, for `namespace` only.
fn configuration(
    name: &str,
    addr: std::net::SocketAddr,
    namespace: &str,
) -> Result<ValidatingWebhookConfiguration> {
    let path = workspace_root().join("config/webhook/manifests.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
    let mut config: ValidatingWebhookConfiguration =
        serde_yaml::from_str(&text).map_err(|e| BenchError::io(&path, e))?;
    config.metadata.name = Some(name.to_string());
    for webhook in config.webhooks.iter_mut().flatten() {
        let service = webhook.client_config.service.take();
        let path = service.and_then(|s| s.path).unwrap_or_default();
        webhook.client_config.url = Some(format!("https://{addr}{path}"));
        webhook.failure_policy = Some("Fail".to_string());
        webhook.namespace_selector = Some(
            serde_json::from_value(json!({
                "matchLabels": {"kubernetes.io/metadata.name": namespace}
            }))
            .map_err(|e| BenchError::Scenario(format!("selector: {e}")))?,
        );
    }
    Ok(config)
}

fn pod(name: &str, digest: &str) -> Pod {
    let image = format!("{REGISTRY}/{REPOSITORY}@{digest}");
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image}]}
    }))
    .unwrap_or_default()
}

/// Creates Pods at `rate` per second in each namespace, interleaved, for `seconds`; returns the
/// latencies (webhook's namespace, other namespace), sorted. A wrong answer fails the scenario.
async fn load(
    client: &kube::Client,
    checked: &str,
    unchecked: &str,
    rate: f64,
    seconds: f64,
    prefix: &str,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let total = (rate * seconds).round() as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / (2.0 * rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..2 * total {
        tick.tick().await;
        let webhook = i % 2 == 0;
        let n = i / 2;
        let denied = webhook && n % DENY_EVERY == DENY_EVERY - 1;
        let namespace = if webhook { checked } else { unchecked };
        let api = Api::<Pod>::namespaced(client.clone(), namespace);
        let body = pod(
            &format!("{prefix}-{n}"),
            if denied { CRITICAL } else { CLEAN },
        );
        calls.spawn(async move {
            let started = Instant::now();
            let answer = api.create(&PostParams::default(), &body).await;
            (webhook, denied, started.elapsed(), answer.map(drop))
        });
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    while let Some(joined) = calls.join_next().await {
        let (webhook, denied, took, answer) =
            joined.map_err(|e| BenchError::Scenario(format!("a create task: {e}")))?;
        match (denied, answer) {
            (false, Ok(())) => {}
            (true, Err(kube::Error::Api(s)))
                if s.code == 403 && s.message.contains("CVE-2024-3094") => {}
            (denied, other) => {
                return Err(BenchError::Scenario(format!(
                    "wrong answer to a Pod create (denial expected: {denied}): {other:?}"
                )));
            }
        }
        if webhook { &mut with } else { &mut without }.push(took);
    }
    with.sort();
    without.sort();
    Ok((with, without))
}
