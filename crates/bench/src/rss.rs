//! Resident memory of the real `ecr-operator run` process with N Ready Repositories.
//!
//! The binary is the one built in the same cargo profile as this program (built here through
//! cargo when this program runs under `cargo run`, so it is never stale), pointed at the double
//! through a kubeconfig file and at moto through `ECR_OPERATOR_ECR_ENDPOINT`, with every
//! controller running, leader election and the webhook off. VmRSS is read from /proc.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use apiserver_double::ApiServer;
use testbed::moto::{Moto, REGION};

use crate::Sizes;
use crate::figures::Figures;
use crate::repos;
use crate::util::{BenchError, Result, poll, workspace_root};

/// The `ecr-operator` binary of this build profile.
pub(crate) fn operator_binary() -> Result<PathBuf> {
    let exe =
        std::env::current_exe().map_err(|e| BenchError::Scenario(format!("current_exe: {e}")))?;
    let dir = exe
        .parent()
        .ok_or_else(|| BenchError::Scenario("the bench binary has no directory".into()))?;
    let binary = dir.join("ecr-operator");
    // Under `cargo run`, build the operator in the same profile first (a no-op when fresh).
    if let Some(cargo) = std::env::var_os("CARGO") {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => "dev".to_string(),
        };
        eprintln!("   building ecr-operator (profile {profile})");
        let status = std::process::Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--locked",
                "--profile",
                &profile,
                "-p",
                "ecr-operator",
                "--bin",
                "ecr-operator",
            ])
            .status()
            .map_err(|e| BenchError::Scenario(format!("cargo build: {e}")))?;
        if !status.success() {
            return Err(BenchError::Scenario(format!(
                "cargo build of ecr-operator failed: {status}"
            )));
        }
    }
    if binary.exists() {
        Ok(binary)
    } else {
        Err(BenchError::Scenario(format!(
            "{} not found: build it in the same profile (cargo build -p ecr-operator)",
            binary.display()
        )))
    }
}

/// A kubeconfig that reaches the double (plain HTTP, no credentials).
pub(crate) fn write_kubeconfig(server: &ApiServer, path: &Path) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\nusers:\n- name: bench\n  user: {{}}\ncontexts:\n- name: bench\n  context:\n    cluster: double\n    user: bench\ncurrent-context: bench\n",
        server.url()
    );
    std::fs::write(path, text).map_err(|e| BenchError::io(path, e))
}

/// `ecr-operator run` of this build profile pointed at the double (through `kubeconfig`) and at
/// moto, its output in `log_path`, with what every process scenario shares (cluster id
/// `bench`, the scenario's concurrency, warnings only); each scenario adds its own settings.
/// With `ECR_BENCH_OPERATOR_WRAPPER` set (`heaptrack -o target/bench/heap`, say) the operator
/// runs under that command: for profiles, since the memory figures are then the wrapper's.
pub(crate) fn operator_command(
    moto: &Moto,
    kubeconfig: &Path,
    log_path: &Path,
    sizes: &Sizes,
) -> Result<tokio::process::Command> {
    let binary = operator_binary()?;
    let log = std::fs::File::create(log_path).map_err(|e| BenchError::io(log_path, e))?;
    let log2 = log.try_clone().map_err(|e| BenchError::io(log_path, e))?;
    let wrapper = std::env::var("ECR_BENCH_OPERATOR_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = tokio::process::Command::new(program);
            c.args(words).arg(&binary);
            c
        }
        None => tokio::process::Command::new(&binary),
    };
    command
        .arg("run")
        .env("KUBECONFIG", kubeconfig)
        .env("ECR_OPERATOR_ECR_ENDPOINT", moto.endpoint())
        .env("ECR_OPERATOR_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("ECR_OPERATOR_CLUSTER_ID", "bench")
        .env("ECR_OPERATOR_CONCURRENCY", sizes.concurrency.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true);
    Ok(command)
}

/// An error naming the log when the operator process has exited: what a scenario checks before
/// it trusts a figure measured while the operator was meant to run.
pub(crate) fn still_running(child: &mut tokio::process::Child, log_path: &Path) -> Result<()> {
    match child.try_wait() {
        Ok(Some(status)) => Err(BenchError::Scenario(format!(
            "the operator exited ({status}); see {}",
            log_path.display()
        ))),
        _ => Ok(()),
    }
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub(crate) fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// VmRSS once it stops moving (two reads 2 s apart within 1 %, at most 30 s): what the
/// process holds, not what a reconcile burst has in flight.
pub(crate) async fn settled_kib(pid: u32) -> Result<(u64, u64)> {
    let mut last = memory_kib(pid)?;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = memory_kib(pid)?;
        let moved = now.0.abs_diff(last.0) as f64 / last.0.max(1) as f64;
        last = now;
        if moved < 0.01 {
            break;
        }
    }
    Ok(last)
}

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let n = sizes.rss_repos;
    let moto = Moto::start().await?;
    let (server, client) = crate::util::double().await?;
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
    let kubeconfig = dir.join("kubeconfig-rss.yaml");
    write_kubeconfig(&server, &kubeconfig)?;
    let log_path = dir.join("operator-rss.log");
    let mut child = operator_command(&moto, &kubeconfig, &log_path, sizes)?
        .env("ECR_OPERATOR_LEADER_ELECT", "false")
        .env("ECR_OPERATOR_WEBHOOK", "false")
        .env("ECR_OPERATOR_ADMIN_ADDR", "127.0.0.1:0")
        .spawn()
        .map_err(|e| BenchError::Scenario(format!("starting the operator: {e}")))?;
    let pid = child
        .id()
        .ok_or_else(|| BenchError::Scenario("the operator exited at once".into()))?;
    // Idle: once the operator watches Repositories (it has started every controller).
    poll(
        "the operator to watch Repositories",
        Duration::from_millis(20),
        Duration::from_secs(60),
        || std::future::ready((server.request_count("watch", "repositories") > 0).then_some(())),
    )
    .await?;
    let (idle_kib, _) = memory_kib(pid)?;

    let started = Instant::now();
    // A first tenth, Ready, then the rest: the slope between the two is what one more
    // Repository costs, whatever the process holds at start.
    let first = n / 10;
    repos::create_repository_range(&client, 0..first, 64).await?;
    let every = Duration::from_millis(500);
    repos::all_ready(&server, first, every, Duration::from_secs(900)).await?;
    let (first_kib, _) = settled_kib(pid).await?;
    repos::create_repository_range(&client, first..n, 64).await?;
    let ready = repos::all_ready(&server, n, every, Duration::from_secs(900)).await;
    still_running(&mut child, &log_path)?;
    ready?;
    let converge = started.elapsed();
    let (rss_kib, hwm_kib) = memory_kib(pid)?;
    let (settled, _) = settled_kib(pid).await?;
    let bytes_per_repository = (settled as f64 - first_kib as f64) * 1024.0 / (n - first) as f64;
    let _ = child.start_kill();
    let _ = child.wait().await;

    let suffix = if n == 10_000 {
        String::new()
    } else {
        format!(" (measured at {n}, not scaled)")
    };
    figures.add(
        "rss_mib_10k",
        rss_kib as f64 / 1024.0,
        "MiB",
        &format!("VmRSS of `ecr-operator run` with the Repositories Ready{suffix} (target <= 100)"),
    );
    figures.add(
        "rss_peak_mib_10k",
        hwm_kib as f64 / 1024.0,
        "MiB",
        &format!("VmHWM (peak) of the same process{suffix}"),
    );
    figures.add(
        "bytes_per_repository",
        bytes_per_repository,
        "B",
        &format!(
            "VmRSS slope between {first} and {n} Ready Repositories, each read once the \
             process settled (target <= 2048)"
        ),
    );
    figures.add(
        "rss_idle_mib",
        idle_kib as f64 / 1024.0,
        "MiB",
        "VmRSS just after start, no objects",
    );
    figures.add(
        "repo_converge_10k_s",
        converge.as_secs_f64(),
        "s",
        &format!("{n} Repositories created to all Ready, operator process{suffix}"),
    );
    Ok(())
}
