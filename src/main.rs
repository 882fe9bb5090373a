//! `ecr-operator`: the operator binary and its user tools.
#![forbid(unsafe_code)]

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cmd::export::ExportArgs;
use cmd::lifecycle::PreviewArgs;
use cmd::run::RunArgs;
use ecr_operator::api;

/// jemalloc: the operator holds many small allocations per object (see the dependency's comment
/// in Cargo.toml and BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Print the custom resources that describe the registry as it is (repositories with their
    /// policies, lifecycle policies and tags, replication, scanning, pull-through cache rules,
    /// creation templates, registry policy), with `adopt: true` where the object takes over
    /// what exists. Only reads ECR; what no object can say is reported on stderr.
    Export(ExportArgs),
}

#[derive(Subcommand)]
enum LifecycleCommand {
    /// Print which images of an ECR repository a LifecyclePolicy would expire now (the same
    /// preview the controller writes into the status; nothing is changed).
    Preview(PreviewArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { dir } => print_crds(dir),
        Command::Run(args) => cmd::run::run(*args).await,
        Command::Lifecycle(LifecycleCommand::Preview(args)) => cmd::lifecycle::preview(args).await,
        Command::Export(args) => cmd::export::export(args).await,
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
