//! `ecr-operator`: the operator binary and its user tools.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ecr_operator::controllers::{self, Context};
use ecr_operator::registry::{EcrRegistry, RegistryConfig};
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
    Run(RunArgs),
    /// Print every CRD as YAML (the source of crds/), or write one file per kind into --dir.
    Crds {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// AWS region (default: AWS_REGION / profile, as every AWS SDK tool).
    #[arg(long, env = "ECR_OPERATOR_REGION")]
    region: Option<String>,
    /// ECR endpoint override (default: AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL).
    #[arg(long, env = "ECR_OPERATOR_ECR_ENDPOINT")]
    ecr_endpoint: Option<String>,
    /// Identifies this cluster in ownership tags on ECR resources.
    #[arg(long, env = "ECR_OPERATOR_CLUSTER_ID", default_value = "default")]
    cluster_id: String,
    /// Seconds between drift sweeps (one DescribeRepositories page per 1000 repositories).
    #[arg(long, env = "ECR_OPERATOR_SWEEP_SECONDS", default_value_t = 60)]
    sweep_seconds: u64,
    /// Seconds between checks of each repository's tags and policy (jittered).
    #[arg(long, env = "ECR_OPERATOR_DEEP_SWEEP_SECONDS", default_value_t = 3600)]
    deep_sweep_seconds: u64,
    /// Reconciles at once per controller.
    #[arg(long, env = "ECR_OPERATOR_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// Log format: text or json.
    #[arg(long, env = "ECR_OPERATOR_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { dir } => print_crds(dir),
        Command::Run(args) => run(args).await,
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
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes configuration (KUBECONFIG or in-cluster)");
            return ExitCode::FAILURE;
        }
    };
    let registry = EcrRegistry::from_env(&RegistryConfig {
        region: args.region,
        endpoint_url: args.ecr_endpoint,
        max_attempts: None,
    })
    .await;
    let config = controllers::Config {
        cluster_id: args.cluster_id,
        sweep_interval: Duration::from_secs(args.sweep_seconds.max(1)),
        deep_sweep_interval: Duration::from_secs(args.deep_sweep_seconds.max(1)),
        concurrency: args.concurrency.max(1),
    };
    let ctx = Arc::new(Context::new(client, Arc::new(registry), config));
    match controllers::run(ctx, telemetry::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            ExitCode::FAILURE
        }
    }
}
