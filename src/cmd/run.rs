//! `ecr-operator run`: the operator itself, started in steps.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ecr_operator::admission::cert_secret::SharedCertificate;
use ecr_operator::admission::reachability::{ProbeConfig, Prober};
use ecr_operator::admission::resolver::RegistryResolver;
use ecr_operator::admission::{CertificateSource, WebhookConfig, WebhookServer};
use ecr_operator::controllers::{self, Context};
use ecr_operator::leader::{Fence, LeaderElector, LeaseConfig};
use ecr_operator::registry::{EcrRegistry, Registry, RegistryConfig, ScanEventQueue, TargetPool};
use ecr_operator::telemetry;
use ecr_operator::telemetry::metrics::Metrics;
use ecr_operator::telemetry::server::{self, Readiness};
use tokio::task::JoinHandle;

#[derive(clap::Args)]
pub struct RunArgs {
    /// AWS region (default: AWS_REGION / profile, as every AWS SDK tool).
    #[arg(long, env = "ECR_OPERATOR_REGION")]
    region: Option<String>,
    /// ECR endpoint override (default: AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL).
    #[arg(long, env = "ECR_OPERATOR_ECR_ENDPOINT")]
    ecr_endpoint: Option<String>,
    /// Identifies this cluster in ownership tags on ECR resources: unique among the clusters
    /// sharing a registry. Unset: derived from the kube-system namespace's uid.
    #[arg(long, env = "ECR_OPERATOR_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Namespaces whose Repositories, LifecyclePolicies and pods this operator acts on
    /// (comma-separated; all when empty). One namespace needs only a namespaced Role for them.
    #[arg(long, env = "ECR_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// Label selector (`key=value` terms, comma-separated) every object this operator acts on
    /// must match, cluster-scoped kinds and pods included; the reports it writes carry it.
    #[arg(long, env = "ECR_OPERATOR_WATCH_SELECTOR")]
    watch_selector: Option<String>,
    /// Seconds between drift sweeps (one DescribeRepositories page per 1000 repositories).
    #[arg(long, env = "ECR_OPERATOR_SWEEP_SECONDS", default_value_t = 60)]
    sweep_seconds: u64,
    /// Seconds between checks of each repository's tags and policy (jittered).
    #[arg(long, env = "ECR_OPERATOR_DEEP_SWEEP_SECONDS", default_value_t = 3600)]
    deep_sweep_seconds: u64,
    /// Reconciles at once per controller.
    #[arg(long, env = "ECR_OPERATOR_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// Seconds between refreshes of image scan reports from ECR.
    #[arg(long, env = "ECR_OPERATOR_SCAN_REFRESH_SECONDS", default_value_t = 300)]
    scan_refresh_seconds: u64,
    /// SQS queue URL that an EventBridge rule feeds with `ECR Image Scan`, `ECR Image Action`
    /// and Inspector2 events: reports of the images they name are refreshed at once.
    #[arg(long, env = "ECR_OPERATOR_SCAN_EVENTS_QUEUE_URL")]
    scan_events_queue_url: Option<String>,
    /// The namespace the operator runs in (Secrets for pull-through cache credentials live here).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ecr-operator-system")]
    namespace: String,
    /// Log format: text or json.
    #[arg(long, env = "ECR_OPERATOR_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Admin listener: /metrics, /healthz, /readyz.
    #[arg(long, env = "ECR_OPERATOR_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    admin_addr: std::net::SocketAddr,
    /// Run the controllers only while holding the Lease (off: always, e.g. one replica).
    #[arg(long, env = "ECR_OPERATOR_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// The Lease (in --namespace) the replicas compete for: the name the chart (its full name)
    /// and config/ give it.
    #[arg(long, env = "ECR_OPERATOR_LEASE_NAME", default_value = "ecr-operator")]
    lease_name: String,
    /// Lease duration in seconds; a crashed leader is replaced after this long.
    #[arg(long, env = "ECR_OPERATOR_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
    /// Serve the admission webhook (every replica does).
    #[arg(long, env = "ECR_OPERATOR_WEBHOOK", default_value_t = true, action = clap::ArgAction::Set)]
    webhook: bool,
    /// The webhook's HTTPS listener.
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_ADDR",
        default_value = "0.0.0.0:9443"
    )]
    webhook_addr: std::net::SocketAddr,
    /// `files`: tls.crt/tls.key from --webhook-cert-dir, reloaded on change; `generated`: a
    /// certificate generated once into the Secret --webhook-generated-secret (in --namespace),
    /// shared by every replica, renewed near expiry, its CA written into --webhook-configuration.
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_CERTIFICATE",
        default_value = "files"
    )]
    webhook_certificate: String,
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_CERT_DIR",
        default_value = "/etc/ecr-operator/webhook-tls"
    )]
    webhook_cert_dir: PathBuf,
    /// The ValidatingWebhookConfiguration that gets the generated CA bundle.
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_CONFIGURATION",
        default_value = "ecr-operator"
    )]
    webhook_configuration: String,
    /// The Secret holding the generated certificate (`generated`).
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_GENERATED_SECRET",
        default_value = "ecr-operator-webhook-generated"
    )]
    webhook_generated_secret: String,
    /// Comma-separated DNS names for a generated certificate. Unset: those of --webhook-service
    /// in --namespace (`SERVICE.NAMESPACE.svc`, `SERVICE.NAMESPACE.svc.cluster.local`).
    #[arg(long, env = "ECR_OPERATOR_WEBHOOK_DNS_NAMES")]
    webhook_dns_names: Option<String>,
    /// The Service (in --namespace) the API server calls the webhook through: the default DNS
    /// names are its names.
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_SERVICE",
        default_value = "ecr-operator"
    )]
    webhook_service: String,
    /// Serve the admin listener over HTTPS with tls.crt/tls.key from this directory (reloaded
    /// on change); plain HTTP when unset. Probes then need `scheme: HTTPS`.
    #[arg(long, env = "ECR_OPERATOR_ADMIN_CERT_DIR")]
    admin_cert_dir: Option<PathBuf>,
    /// Seconds between checks that the API server reaches the webhook (a dry-run create of a
    /// probe Pod, which the webhook refuses); 0: off. Reported as the ScanPolicies'
    /// WebhookReachable condition, Events and `ecr_operator_webhook_reachable`.
    #[arg(long, env = "ECR_OPERATOR_WEBHOOK_PROBE_SECONDS", default_value_t = 60)]
    webhook_probe_seconds: u64,
    /// The namespace the probe Pod is (dry-run) created in: one the webhook configuration's
    /// namespaceSelector covers (not kube-system, --namespace or webhook.excludeNamespaces).
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_PROBE_NAMESPACE",
        default_value = "default"
    )]
    webhook_probe_namespace: String,
}

/// A start-up step failed; the step has logged why.
struct Failed;

/// `ecr-operator run`: the controllers (while leading), the webhook and the admin listener,
/// until a shutdown signal.
pub async fn run(args: RunArgs) -> ExitCode {
    telemetry::init_logging(&args.log_format);
    match run_until_shutdown(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::FAILURE,
    }
}

async fn run_until_shutdown(args: RunArgs) -> Result<(), Failed> {
    let watch = watch_scope(&args)?;
    let client = kube_client().await?;
    // With leader election, ECR writes are allowed only while this replica surely leads.
    let fence = if args.leader_elect {
        Fence::shut()
    } else {
        Fence::always_open()
    };
    let sdk_config = EcrRegistry::sdk_config(&RegistryConfig {
        region: args.region.clone(),
        endpoint_url: args.ecr_endpoint.clone(),
        max_attempts: None,
    })
    .await;
    let registry = EcrRegistry::from_sdk_config(&sdk_config).with_fence(fence.clone());
    // RegistryTargets are reached from the same configuration (the operator's identity assumes
    // their roles), behind the same fence, counted in the same stats.
    let targets =
        Arc::new(TargetPool::new(sdk_config, registry.shared_stats()).with_fence(fence.clone()));
    let own_account = own_account(&registry).await;
    let config = controller_config(&args, &client, &registry, watch).await?;
    let scan_events = args
        .scan_events_queue_url
        .as_deref()
        .and_then(|url| registry.scan_event_queue(url));
    let registry: Arc<dyn Registry> = Arc::new(registry);
    let shared = Shared {
        metrics: metrics_of(&registry),
        client,
        registry,
        readiness: Readiness::default(),
        shutdown: Shutdown::on_signal(),
    };
    let admin = start_admin(&args, &shared).await?;
    let webhook = if args.webhook {
        let resolver = RegistryResolver::new(shared.registry.clone())
            .with_own_registry(own_account, config.region.clone())
            .with_targets(&shared.client, &config.watch, targets.clone());
        let webhook = start_webhook(&args, &shared, &config, resolver).await?;
        // After the webhook: it waits for the readiness check the webhook adds.
        start_probe(&args, &shared, &config);
        Some(webhook)
    } else {
        None
    };
    let result = run_controllers(&args, &shared, fence, config, scan_events, targets).await;
    if let Some(w) = webhook {
        let _ = w.await;
    }
    let _ = admin.await;
    result.map_err(|e| {
        tracing::error!(error = %e, "operator stopped");
        Failed
    })
}

/// The own registry's account (DescribeRegistry): the webhook looks up tags of this account
/// through the own client, of no other but those ScanPolicies name.
async fn own_account(registry: &EcrRegistry) -> Option<String> {
    match registry.registry_id().await {
        Ok(account) => Some(account),
        Err(e) => {
            tracing::warn!(
                error = %e,
                "the own registry's account is unknown: the webhook looks up tags of any \
                 account in its region through the own client"
            );
            None
        }
    }
}

/// What the parts of the running operator share.
struct Shared {
    client: kube::Client,
    registry: Arc<dyn Registry>,
    metrics: Arc<Metrics>,
    /// What `/readyz` waits for.
    readiness: Readiness,
    shutdown: Shutdown,
}

fn watch_scope(args: &RunArgs) -> Result<controllers::WatchScope, Failed> {
    controllers::WatchScope::new(&args.watch_namespaces, args.watch_selector.as_deref()).map_err(
        |e| {
            tracing::error!(error = %e, "invalid watch scope");
            Failed
        },
    )
}

async fn kube_client() -> Result<kube::Client, Failed> {
    kube::Client::try_default().await.map_err(|e| {
        tracing::error!(error = %e, "no Kubernetes configuration (KUBECONFIG or in-cluster)");
        Failed
    })
}

/// The controllers' settings; resolves the cluster id (from kube-system when not given).
async fn controller_config(
    args: &RunArgs,
    client: &kube::Client,
    registry: &EcrRegistry,
    watch: controllers::WatchScope,
) -> Result<controllers::Config, Failed> {
    let cluster_id = ecr_operator::cluster_id::resolve(args.cluster_id.as_deref(), client)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cluster id");
            Failed
        })?;
    tracing::info!(cluster_id = %cluster_id, "owner tags name this cluster");
    Ok(controllers::Config {
        cluster_id,
        sweep_interval: Duration::from_secs(args.sweep_seconds.max(1)),
        deep_sweep_interval: Duration::from_secs(args.deep_sweep_seconds.max(1)),
        concurrency: args.concurrency.max(1),
        operator_namespace: args.namespace.clone(),
        scan_refresh_interval: Duration::from_secs(args.scan_refresh_seconds.max(1)),
        region: registry.region(),
        watch,
    })
}

/// The operator's metrics, ECR call counts read from the registry at each scrape.
fn metrics_of(registry: &Arc<dyn Registry>) -> Arc<Metrics> {
    let registry = registry.clone();
    Arc::new(Metrics::new(Arc::new(move || {
        registry
            .stats()
            .snapshot()
            .into_iter()
            .map(|((op, outcome), n)| ((op.to_string(), outcome.to_string()), n))
            .collect()
    })))
}

/// One shutdown signal, fanned out to every part.
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// The signal: SIGTERM or Ctrl-C ([`telemetry::shutdown_signal`]).
    fn on_signal() -> Self {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            telemetry::shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        });
        Shutdown(stop_rx)
    }

    /// A future that completes at shutdown.
    fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// Binds and serves the admin listener (`/metrics`, `/healthz`, `/readyz`), over TLS when
/// `--admin-cert-dir` is set.
async fn start_admin(
    args: &RunArgs,
    shared: &Shared,
) -> Result<JoinHandle<std::io::Result<()>>, Failed> {
    let listener = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .map_err(|e| {
            tracing::error!(addr = %args.admin_addr, error = %e, "cannot bind the admin listener");
            Failed
        })?;
    let (metrics, readiness) = (shared.metrics.clone(), shared.readiness.clone());
    let shutdown = shared.shutdown.wait();
    let Some(dir) = &args.admin_cert_dir else {
        return Ok(tokio::spawn(server::serve_on(
            listener, metrics, readiness, shutdown,
        )));
    };
    let tls = server::tls_from_dir(dir).map_err(|e| {
        tracing::error!(dir = %dir.display(), error = %e, "admin listener certificate");
        Failed
    })?;
    Ok(tokio::spawn(server::serve_tls_on(
        listener, metrics, readiness, tls, shutdown,
    )))
}

/// Binds and serves the admission webhook; its metrics join the admin listener's, and
/// `/readyz` waits for it.
async fn start_webhook(
    args: &RunArgs,
    shared: &Shared,
    controllers: &controllers::Config,
    resolver: RegistryResolver,
) -> Result<JoinHandle<()>, Failed> {
    let mut config = WebhookConfig::new(webhook_certificate(args));
    config.addr = args.webhook_addr;
    config.resolver = Some(Arc::new(resolver));
    config.event_instance = std::env::var("POD_NAME").ok();
    // The webhook reads the ScanPolicies and reports of the controllers' scope.
    config.watch = controllers.watch.clone();
    let server = WebhookServer::bind(config, shared.client.clone())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "starting the admission webhook failed");
            Failed
        })?;
    let webhook_metrics = server.metrics();
    let metrics = &shared.metrics;
    metrics.add_text_source(Box::new(move || webhook_metrics.render_prometheus()));
    let scan_cache = server.scan_cache();
    metrics.add_text_source(Box::new(move || scan_cache.render_prometheus()));
    // `/readyz` asks the webhook itself at each probe.
    let webhook_ready = server.readiness();
    shared
        .readiness
        .check_with("webhook", move || webhook_ready.ready());
    Ok(tokio::spawn(server.run(shared.shutdown.wait())))
}

/// Starts the webhook reachability probe (`--webhook-probe-seconds`, 0: off). Every replica
/// probes once it is Ready and exports the metric; only the lease holder writes the
/// ScanPolicies' WebhookReachable condition and publishes Events.
fn start_probe(args: &RunArgs, shared: &Shared, controllers: &controllers::Config) {
    if args.webhook_probe_seconds == 0 {
        tracing::info!("webhook reachability probe off (--webhook-probe-seconds 0)");
        return;
    }
    let probe_ns = &args.webhook_probe_namespace;
    if probe_ns == &args.namespace || probe_ns == "kube-system" {
        tracing::warn!(namespace = %probe_ns, "--webhook-probe-namespace is one the webhook \
            configuration leaves out: the probe will report WebhookSkipped although the webhook \
            may be reachable; choose a namespace the webhook covers");
    }
    let config = ProbeConfig::new(
        args.webhook_probe_namespace.clone(),
        Duration::from_secs(args.webhook_probe_seconds),
    );
    let (metrics, readiness) = (shared.metrics.clone(), shared.readiness.clone());
    let prober = Prober::new(shared.client.clone(), config, shared.metrics.clone())
        .with_scope(controllers.watch.clone())
        .writing_when(Arc::new(move || metrics.is_leader()))
        .starting_when(Arc::new(move || readiness.pending().is_empty()));
    tokio::spawn(prober.run(shared.shutdown.wait()));
}

/// Where the webhook's serving certificate comes from (`--webhook-certificate`).
fn webhook_certificate(args: &RunArgs) -> CertificateSource {
    if args.webhook_certificate != "generated" {
        return CertificateSource::Files {
            cert: args.webhook_cert_dir.join("tls.crt"),
            key: args.webhook_cert_dir.join("tls.key"),
            reload_interval: Duration::from_secs(10),
        };
    }
    CertificateSource::Shared(SharedCertificate {
        namespace: args.namespace.clone(),
        secret_name: args.webhook_generated_secret.clone(),
        dns_names: webhook_dns_names(
            args.webhook_dns_names.as_deref(),
            &args.webhook_service,
            &args.namespace,
        ),
        webhook_configuration: Some(args.webhook_configuration.clone()),
        valid_days: 365,
        check_interval: Duration::from_secs(60),
    })
}

/// The generated certificate's DNS names: `--webhook-dns-names` when it names any, else the
/// Service's names in the operator's namespace, so that the defaults agree with each other and
/// a namespace set by kustomize or Helm alone yields a certificate matching the Service.
fn webhook_dns_names(explicit: Option<&str>, service: &str, namespace: &str) -> Vec<String> {
    let listed: Vec<String> = explicit
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Runs the controllers until shutdown: with leader election only during each term this
/// replica wins, otherwise at once.
async fn run_controllers(
    args: &RunArgs,
    shared: &Shared,
    fence: Fence,
    config: controllers::Config,
    scan_events: Option<ScanEventQueue>,
    targets: Arc<controllers::Targets>,
) -> Result<(), controllers::Error> {
    let ctx = Context::new(shared.client.clone(), shared.registry.clone(), config)
        .with_metrics(shared.metrics.clone())
        .with_targets(targets);
    let ctx = Arc::new(match scan_events {
        Some(queue) => ctx.with_scan_events(queue),
        None => ctx,
    });
    if !args.leader_elect {
        shared.metrics.set_leader(true);
        return controllers::run(ctx, shared.shutdown.wait()).await;
    }
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("ecr-operator-{}", std::process::id()));
    let lease = LeaseConfig::with_defaults(
        ctx.config.operator_namespace.clone(),
        args.lease_name.clone(),
        identity,
        Duration::from_secs(args.lease_seconds.max(2)),
    );
    let elector = LeaderElector::new(shared.client.clone(), lease).with_fence(fence);
    let metrics = shared.metrics.clone();
    elector
        .run(shared.shutdown.wait(), move |lost| {
            lead_term(ctx.clone(), metrics.clone(), lost)
        })
        .await;
    Ok(())
}

/// One leadership term: the controllers run until the lease is lost.
async fn lead_term(
    ctx: Arc<Context>,
    metrics: Arc<Metrics>,
    mut lost: tokio::sync::watch::Receiver<bool>,
) {
    metrics.set_leader(true);
    let term_lost = async move {
        let _ = lost.wait_for(|l| *l).await;
    };
    if let Err(e) = controllers::run(ctx, term_lost).await {
        tracing::error!(error = %e, "controllers stopped");
    }
    metrics.set_leader(false);
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn webhook_dns_names_default_to_the_service_in_the_namespace() {
        let svc = |ns: &str| {
            vec![
                format!("ecr-operator.{ns}.svc"),
                format!("ecr-operator.{ns}.svc.cluster.local"),
            ]
        };
        let cases: [(Option<&str>, &str, Vec<String>); 6] = [
            (None, "ecr-system", svc("ecr-system")),
            (None, "platform-ecr", svc("platform-ecr")),
            (Some(""), "team-ops", svc("team-ops")),
            (Some(" , "), "team-ops", svc("team-ops")),
            (
                Some("a.example, b.example"),
                "team-ops",
                vec!["a.example".into(), "b.example".into()],
            ),
            (Some("x.ns.svc"), "ignored", vec!["x.ns.svc".into()]),
        ];
        for (explicit, namespace, want) in cases {
            assert_eq!(
                webhook_dns_names(explicit, "ecr-operator", namespace),
                want,
                "{explicit:?} in {namespace}"
            );
        }
        assert_eq!(
            webhook_dns_names(None, "ecr-operator-all-on", "ecr-system")[0],
            "ecr-operator-all-on.ecr-system.svc"
        );
    }

    /// The binary's defaults agree with each other and with what the chart and config/ create:
    /// the Lease `ecr-operator`, the Service `ecr-operator`, DNS names in --namespace.
    #[test]
    fn run_defaults_agree_with_the_chart_and_config() {
        let cli = Cli::try_parse_from(["run", "--namespace=platform-ecr"]).expect("parses");
        assert_eq!(cli.run.lease_name, "ecr-operator");
        assert_eq!(cli.run.webhook_service, "ecr-operator");
        let CertificateSource::Shared(shared) = webhook_certificate(&RunArgs {
            webhook_certificate: "generated".into(),
            ..cli.run
        }) else {
            panic!("generated mode shares a certificate through a Secret");
        };
        assert_eq!(
            shared.dns_names,
            [
                "ecr-operator.platform-ecr.svc",
                "ecr-operator.platform-ecr.svc.cluster.local"
            ]
        );
        assert_eq!(shared.namespace, "platform-ecr");
    }

    /// The webhook probe runs every minute in `default` unless told otherwise; 0 turns it off.
    #[test]
    fn the_webhook_probe_defaults_to_every_minute_in_default() {
        let cli = Cli::try_parse_from(["run"]).expect("parses");
        assert_eq!(cli.run.webhook_probe_seconds, 60);
        assert_eq!(cli.run.webhook_probe_namespace, "default");
        let args = [
            "run",
            "--webhook-probe-seconds=0",
            "--webhook-probe-namespace=probes",
        ];
        let cli = Cli::try_parse_from(args).expect("parses");
        assert_eq!(cli.run.webhook_probe_seconds, 0);
        assert_eq!(cli.run.webhook_probe_namespace, "probes");
    }
}
