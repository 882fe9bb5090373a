//! `ecr-operator`: the operator binary and its user tools.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ecr_operator::admission::cert_secret::SharedCertificate;
use ecr_operator::admission::resolver::RegistryResolver;
use ecr_operator::admission::{CertificateSource, WebhookConfig, WebhookServer};
use ecr_operator::controllers::{self, Context};
use ecr_operator::leader::{Fence, LeaderElector, LeaseConfig};
use ecr_operator::registry::{EcrRegistry, Registry, RegistryConfig};
use ecr_operator::telemetry::metrics::Metrics;
use ecr_operator::telemetry::server::Readiness;
use ecr_operator::{api, telemetry};

#[derive(Parser)]
#[command(
    name = "ecr-operator",
    version,
    about = "Manage Amazon ECR declaratively from Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster (KUBECONFIG or in-cluster) and ECR.
    Run(Box<RunArgs>),
    /// Print every CRD as YAML (the source of crds/), or write one file per kind into --dir.
    Crds {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Lifecycle policy tools.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
}

#[derive(Subcommand)]
enum LifecycleCommand {
    /// Print which images of an ECR repository a LifecyclePolicy would expire now (the same
    /// preview the controller writes into the status; nothing is changed).
    Preview(PreviewArgs),
}

#[derive(clap::Args)]
struct PreviewArgs {
    /// The ECR repository name (e.g. team/app).
    #[arg(long)]
    repository: String,
    /// A LifecyclePolicy YAML file (the whole object, or only its spec); `-` reads stdin.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// AWS region (default: AWS_REGION / profile).
    #[arg(long, env = "ECR_OPERATOR_REGION")]
    region: Option<String>,
    /// ECR endpoint override (default: AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL).
    #[arg(long, env = "ECR_OPERATOR_ECR_ENDPOINT")]
    ecr_endpoint: Option<String>,
}

#[derive(clap::Args)]
struct RunArgs {
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
    /// The Lease (in --namespace) the replicas compete for.
    #[arg(
        long,
        env = "ECR_OPERATOR_LEASE_NAME",
        default_value = "ecr-operator-leader"
    )]
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
    /// Comma-separated DNS names for a generated certificate.
    #[arg(
        long,
        env = "ECR_OPERATOR_WEBHOOK_DNS_NAMES",
        default_value = "ecr-operator.ecr-system.svc"
    )]
    webhook_dns_names: String,
    /// Serve the admin listener over HTTPS with tls.crt/tls.key from this directory (reloaded
    /// on change); plain HTTP when unset. Probes then need `scheme: HTTPS`.
    #[arg(long, env = "ECR_OPERATOR_ADMIN_CERT_DIR")]
    admin_cert_dir: Option<PathBuf>,
}

/// The admin listener's TLS acceptor from `dir`/tls.crt and `dir`/tls.key, reloaded when they
/// change (the webhook's certificate machinery).
fn admin_tls(dir: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use ecr_operator::admission::tls;
    let store = Arc::new(tls::CertStore::new());
    let files = tls::FileCerts::load(dir.join("tls.crt"), dir.join("tls.key"), &store)
        .map_err(|e| e.to_string())?;
    tokio::spawn(files.watch(store.clone(), Duration::from_secs(30)));
    let config = tls::server_config(store).map_err(|e| e.to_string())?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { dir } => print_crds(dir),
        Command::Run(args) => run(*args).await,
        Command::Lifecycle(LifecycleCommand::Preview(args)) => lifecycle_preview(args).await,
    }
}

fn print_crds(dir: Option<PathBuf>) -> ExitCode {
    for (file, crd) in api::all_crds() {
        let yaml = match api::crd_yaml(&crd) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("error: serializing {file}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match &dir {
            Some(d) => {
                if let Err(e) = std::fs::write(d.join(file), yaml) {
                    eprintln!("error: writing {}: {e}", d.join(file).display());
                    return ExitCode::FAILURE;
                }
            }
            None => print!("{yaml}"),
        }
    }
    ExitCode::SUCCESS
}

async fn run(args: RunArgs) -> ExitCode {
    telemetry::init_logging(&args.log_format);
    let watch = match controllers::WatchScope::new(
        &args.watch_namespaces,
        args.watch_selector.as_deref(),
    ) {
        Ok(scope) => scope,
        Err(e) => {
            tracing::error!(error = %e, "invalid watch scope");
            return ExitCode::FAILURE;
        }
    };
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes configuration (KUBECONFIG or in-cluster)");
            return ExitCode::FAILURE;
        }
    };
    // With leader election, ECR writes are allowed only while this replica surely leads.
    let fence = if args.leader_elect {
        Fence::shut()
    } else {
        Fence::always_open()
    };
    let registry = EcrRegistry::from_env(&RegistryConfig {
        region: args.region,
        endpoint_url: args.ecr_endpoint,
        max_attempts: None,
    })
    .await
    .with_fence(fence.clone());
    let cluster_id =
        match ecr_operator::cluster_id::resolve(args.cluster_id.as_deref(), &client).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "cluster id");
                return ExitCode::FAILURE;
            }
        };
    tracing::info!(cluster_id = %cluster_id, "owner tags name this cluster");
    let operator_namespace = args.namespace.clone();
    let config = controllers::Config {
        cluster_id,
        sweep_interval: Duration::from_secs(args.sweep_seconds.max(1)),
        deep_sweep_interval: Duration::from_secs(args.deep_sweep_seconds.max(1)),
        concurrency: args.concurrency.max(1),
        operator_namespace: args.namespace,
        scan_refresh_interval: Duration::from_secs(args.scan_refresh_seconds.max(1)),
        region: registry.region(),
        watch,
    };
    let scan_events = args
        .scan_events_queue_url
        .as_deref()
        .and_then(|url| registry.scan_event_queue(url));
    let registry: Arc<dyn Registry> = Arc::new(registry);
    let stats_source = registry.clone();
    let metrics = Arc::new(Metrics::new(Arc::new(move || {
        stats_source
            .stats()
            .snapshot()
            .into_iter()
            .map(|((op, outcome), n)| ((op.to_string(), outcome.to_string()), n))
            .collect()
    })));
    let readiness = Readiness::default();

    // One shutdown signal, fanned out to every part.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        telemetry::shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let admin_listener = match tokio::net::TcpListener::bind(args.admin_addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %args.admin_addr, error = %e, "cannot bind the admin listener");
            return ExitCode::FAILURE;
        }
    };
    let admin = match &args.admin_cert_dir {
        None => tokio::spawn(telemetry::server::serve_on(
            admin_listener,
            metrics.clone(),
            readiness.clone(),
            stopped(),
        )),
        Some(dir) => match admin_tls(dir) {
            Ok(tls) => tokio::spawn(telemetry::server::serve_tls_on(
                admin_listener,
                metrics.clone(),
                readiness.clone(),
                tls,
                stopped(),
            )),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "admin listener certificate");
                return ExitCode::FAILURE;
            }
        },
    };

    let webhook = if args.webhook {
        let certificate = if args.webhook_certificate == "generated" {
            CertificateSource::Shared(SharedCertificate {
                namespace: operator_namespace.clone(),
                secret_name: args.webhook_generated_secret.clone(),
                dns_names: args
                    .webhook_dns_names
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
                webhook_configuration: Some(args.webhook_configuration.clone()),
                valid_days: 365,
                check_interval: Duration::from_secs(60),
            })
        } else {
            CertificateSource::Files {
                cert: args.webhook_cert_dir.join("tls.crt"),
                key: args.webhook_cert_dir.join("tls.key"),
                reload_interval: Duration::from_secs(10),
            }
        };
        // The webhook reads the ScanPolicies and reports of the controllers' scope.
        let watch = config.watch.clone();
        let mut config = WebhookConfig::new(certificate);
        config.addr = args.webhook_addr;
        config.resolver = Some(Arc::new(RegistryResolver(registry.clone())));
        config.event_instance = std::env::var("POD_NAME").ok();
        config.watch = watch;
        match WebhookServer::bind(config, client.clone()).await {
            Ok(server) => {
                let webhook_metrics = server.metrics();
                metrics.add_text_source(Box::new(move || webhook_metrics.render_prometheus()));
                let scan_cache = server.scan_cache();
                metrics.add_text_source(Box::new(move || scan_cache.render_prometheus()));
                let ready = readiness.check("webhook");
                let webhook_ready = server.readiness();
                tokio::spawn(async move {
                    while !webhook_ready.ready() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    ready.store(true, std::sync::atomic::Ordering::SeqCst);
                });
                Some(tokio::spawn(server.run(stopped())))
            }
            Err(e) => {
                tracing::error!(error = %e, "starting the admission webhook failed");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };

    let ctx = Context::new(client.clone(), registry, config).with_metrics(metrics.clone());
    let ctx = Arc::new(match scan_events {
        Some(queue) => ctx.with_scan_events(queue),
        None => ctx,
    });
    let result = if args.leader_elect {
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("ecr-operator-{}", std::process::id()));
        let elector = LeaderElector::new(
            client,
            LeaseConfig::with_defaults(
                ctx.config.operator_namespace.clone(),
                args.lease_name,
                identity,
                Duration::from_secs(args.lease_seconds.max(2)),
            ),
        )
        .with_fence(fence);
        let leader_metrics = metrics.clone();
        elector
            .run(stopped(), move |mut lost| {
                let ctx = ctx.clone();
                let metrics = leader_metrics.clone();
                async move {
                    metrics.set_leader(true);
                    let stop = async move {
                        let _ = lost.wait_for(|l| *l).await;
                    };
                    if let Err(e) = controllers::run(ctx, stop).await {
                        tracing::error!(error = %e, "controllers stopped");
                    }
                    metrics.set_leader(false);
                }
            })
            .await;
        Ok(())
    } else {
        metrics.set_leader(true);
        controllers::run(ctx, stopped()).await
    };
    if let Some(w) = webhook {
        let _ = w.await;
    }
    let _ = admin.await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            ExitCode::FAILURE
        }
    }
}

/// Reads a LifecyclePolicy (or only its spec) from YAML.
fn read_policy(text: &str) -> Result<api::lifecycle_policy::LifecyclePolicySpec, String> {
    if let Ok(policy) = serde_yaml::from_str::<api::LifecyclePolicy>(text) {
        return Ok(policy.spec);
    }
    serde_yaml::from_str::<api::lifecycle_policy::LifecyclePolicySpec>(text)
        .map_err(|e| format!("not a LifecyclePolicy: {e}"))
}

/// The preview as a table, one line per expiring image, then a summary line.
fn format_preview(repository: &str, preview: &api::lifecycle_policy::LifecyclePreview) -> String {
    let mut out = String::new();
    if !preview.images.is_empty() {
        let rows: Vec<[String; 4]> = preview
            .images
            .iter()
            .map(|i| {
                [
                    i.digest.clone(),
                    if i.tags.is_empty() {
                        "<untagged>".to_string()
                    } else {
                        i.tags.join(",")
                    },
                    i.pushed_at.clone(),
                    i.rule_priority.to_string(),
                ]
            })
            .collect();
        let header = ["DIGEST", "TAGS", "PUSHED", "RULE"].map(str::to_string);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "{} of {} images in {repository} would expire\n",
        preview.expiring_count, preview.image_count
    ));
    out
}

async fn lifecycle_preview(args: PreviewArgs) -> ExitCode {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            Ok(_) => s,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: reading {}: {e}", args.file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let spec = match read_policy(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let (rules, _) = match controllers::lifecycle_policy::render_spec(&spec) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let registry = EcrRegistry::from_env(&RegistryConfig {
        region: args.region,
        endpoint_url: args.ecr_endpoint,
        max_attempts: None,
    })
    .await;
    let images =
        match ecr_operator::registry::Registry::list_images(&registry, &args.repository).await {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    let preview =
        controllers::lifecycle_policy::preview(&rules, &images, chrono::Utc::now(), usize::MAX);
    print!("{}", format_preview(&args.repository, &preview));
    ExitCode::SUCCESS
}
