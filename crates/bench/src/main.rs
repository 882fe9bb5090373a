//! `ecr-bench`: the benchmark program (BENCHMARKS.md). Every scenario runs against moto and the
//! API server double on 127.0.0.1, and `repos-real` against a real kube-apiserver + etcd
//! (`KUBEBUILDER_ASSETS`, see `testbed::envtest`); the figures are printed as a table, then one
//! `figure NAME VALUE UNIT` line each, and written to `target/bench/figures.json`.
//!
//! `--quick` runs every scenario at a small size (CI), `--only SCENARIO` runs some of them.
//! A scenario that breaks makes the program exit non-zero; a figure that misses its target
//! does not.
#![forbid(unsafe_code)]

mod admission;
mod figures;
mod kube_floor;
mod loadgen;
mod pods_real;
mod repos;
mod repos_100k;
mod rss;
mod rss_reports;
mod scan;
mod targets;
mod util;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};

use figures::Figures;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Repository convergence, its floor, ECR calls per create / resync / deep sweep (also with a
    /// policy on every repository), no-op reconciles per second.
    Repos,
    /// Resident memory of the `ecr-operator run` process with 10 000 Ready Repositories.
    Rss,
    /// Admission webhook latency and throughput over HTTPS, against a no-op endpoint, every
    /// answer checked; the cold path (tags resolved through moto) against moto's own latency.
    Admission,
    /// Lag from a scan's completion in ECR to its ImageScanReport (its worst case too), and the
    /// stored size of the report of a 5,000-finding scan.
    Scan,
    /// Repository convergence on a real kube-apiserver + etcd (`KUBEBUILDER_ASSETS`).
    ReposReal,
    /// Repository convergence across four RegistryTargets (accounts), calls per sweep per
    /// target.
    Targets,
    /// What the webhook adds to Pod creates through a real kube-apiserver (`KUBEBUILDER_ASSETS`).
    PodsReal,
    /// Resident memory per ImageScanReport of the `ecr-operator run` process, webhook on.
    RssReports,
    /// ECR's default quota, 100,000 repositories (moto and the double seeded in bulk): one sweep
    /// and resync of the `ecr-operator run` process, its memory, and spec changes during a
    /// resync.
    Repos100k,
}

#[derive(Parser)]
#[command(
    name = "ecr-bench",
    about = "Benchmarks of ecr-operator against moto and the API server double"
)]
struct Cli {
    /// Every scenario at a small size, for CI: checks that the program works, not the figures.
    #[arg(long)]
    quick: bool,
    /// Run only these scenarios (repeatable); default all.
    #[arg(long, value_enum)]
    only: Vec<Scenario>,
}

/// Scenario sizes: the defaults of the issue, or small ones with `--quick`.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub quick: bool,
    pub repos: usize,
    pub rss_repos: usize,
    pub concurrency: u16,
    pub admission_rate: u32,
    pub admission_seconds: f64,
    pub admission_step_seconds: f64,
    pub admission_reports: usize,
    pub admission_cold_rate: u32,
    pub admission_cold_seconds: f64,
    pub scan_poll_seconds: u64,
    pub scan_samples: usize,
    pub scan_worst_samples: usize,
    pub scan_event_samples: usize,
    pub repos_100k: usize,
    pub repos_100k_sweep_seconds: u64,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                quick,
                repos: 40,
                rss_repos: 200,
                concurrency: 16,
                admission_rate: 200,
                admission_seconds: 2.0,
                admission_step_seconds: 0.5,
                admission_reports: 20,
                admission_cold_rate: 20,
                admission_cold_seconds: 2.0,
                scan_poll_seconds: 2,
                scan_samples: 2,
                scan_worst_samples: 1,
                scan_event_samples: 3,
                repos_100k: 2_000,
                repos_100k_sweep_seconds: 10,
            }
        } else {
            Sizes {
                quick,
                repos: 1000,
                rss_repos: 10_000,
                concurrency: 16,
                admission_rate: 500,
                admission_seconds: 30.0,
                admission_step_seconds: 5.0,
                admission_reports: 200,
                admission_cold_rate: 50,
                admission_cold_seconds: 10.0,
                scan_poll_seconds: 10,
                scan_samples: 6,
                scan_worst_samples: 2,
                scan_event_samples: 20,
                repos_100k: 100_000,
                repos_100k_sweep_seconds: 60,
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let sizes = Sizes::new(cli.quick);
    let all = [
        Scenario::Repos,
        Scenario::Rss,
        Scenario::Admission,
        Scenario::Scan,
        Scenario::ReposReal,
        Scenario::Targets,
        Scenario::PodsReal,
        Scenario::RssReports,
        Scenario::Repos100k,
    ];
    let selected: Vec<Scenario> = all
        .into_iter()
        .filter(|s| cli.only.is_empty() || cli.only.contains(s))
        .collect();
    let mut figures = Figures::default();
    let mut failed = Vec::new();
    let started = Instant::now();
    for scenario in selected {
        let name = format!("{scenario:?}").to_lowercase();
        eprintln!(
            "== scenario {name} ({})",
            if sizes.quick { "quick" } else { "full" }
        );
        let t = Instant::now();
        let result = match scenario {
            Scenario::Repos => repos::run(&sizes, &mut figures).await,
            Scenario::Rss => rss::run(&sizes, &mut figures).await,
            Scenario::Admission => admission::run(&sizes, &mut figures).await,
            Scenario::Scan => scan::run(&sizes, &mut figures).await,
            Scenario::ReposReal => repos::run_real(&sizes, &mut figures).await,
            Scenario::Targets => targets::run(&sizes, &mut figures).await,
            Scenario::PodsReal => pods_real::run(&sizes, &mut figures).await,
            Scenario::RssReports => rss_reports::run(&sizes, &mut figures).await,
            Scenario::Repos100k => repos_100k::run(&sizes, &mut figures).await,
        };
        match result {
            Ok(()) => eprintln!(
                "== scenario {name} done in {:.1} s",
                t.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!(
                    "== scenario {name} FAILED after {:.1} s: {e}",
                    t.elapsed().as_secs_f64()
                );
                failed.push(name);
            }
        }
    }
    figures.add(
        "bench_wall_s",
        started.elapsed().as_secs_f64(),
        "s",
        "wall time of this run",
    );
    print!("{}", figures.table());
    print!("{}", figures.lines());
    let mode = if sizes.quick { "quick" } else { "full" };
    match figures.write_json(mode) {
        Ok(path) => eprintln!("figures written to {}", path.display()),
        Err(e) => {
            eprintln!("error: writing figures.json: {e}");
            return ExitCode::FAILURE;
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("failed scenarios: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
