//! ECR's default quota of repositories per registry, 100,000 (issue #17): moto and the double
//! seeded in bulk with what the operator leaves behind (repositories tagged as its own,
//! Repositories with the finalizer and a Ready status), then the real `ecr-operator run`
//! process: one frequent sweep and the resync it triggers (calls, writes, time, memory), and
//! spec changes made while the next resync runs (how long they wait behind it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use apiserver_double::ApiServer;
use ecr_operator::api::conditions::Reason;
use ecr_operator::api::repository::{OWNER_TAG, Ownership, Repository, RepositoryStatus};
use ecr_operator::controllers::{self, status};
use ecr_operator::registry::{EcrRegistry, Registry, RepositoryInfo};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use testbed::moto::Moto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Sizes;
use crate::figures::Figures;
use crate::repos::{GROUP, NAMESPACE};
use crate::rss::{operator_command, settled_kib, still_running, write_kubeconfig};
use crate::util::{BenchError, Result, calls_delta, poll, quantile, workspace_root, writes};

const CLUSTER_ID: &str = "bench";

fn object_name(i: usize) -> String {
    format!("q-{i:06}")
}

fn repository_name(i: usize) -> String {
    format!("quota/app-{i:06}")
}

fn spec_tags(i: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("team".to_string(), format!("team-{}", i % 17)),
        ("env".to_string(), "prod".to_string()),
    ])
}

/// The CreateRepository request the operator would have sent for object `i`.
fn create_request(i: usize) -> Value {
    let mut tags: Vec<Value> = spec_tags(i)
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    let owner = ecr_operator::api::repository::owner_value(CLUSTER_ID, NAMESPACE, &object_name(i));
    tags.push(json!({"Key": OWNER_TAG, "Value": owner}));
    json!({
        "repositoryName": repository_name(i),
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": true},
        "tags": tags,
    })
}

/// Repository `i` as the operator leaves it once Ready: finalizer, and the status its
/// Repository controller writes for `info` (the fixture's only use of operator code: the state
/// to start from, not a figure).
fn seeded_object(i: usize, info: &RepositoryInfo) -> Result<Value> {
    let mut repo: Repository = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1alpha1"),
        "kind": "Repository",
        "metadata": {
            "name": object_name(i),
            "namespace": NAMESPACE,
            "generation": 1,
            "finalizers": [controllers::FINALIZER],
        },
        "spec": {
            "repositoryName": repository_name(i),
            "imageTagMutability": "IMMUTABLE",
            "scanOnPush": true,
            "tags": spec_tags(i),
        }
    }))
    .map_err(|e| BenchError::Scenario(format!("Repository fixture: {e}")))?;
    let mut st = RepositoryStatus {
        repository_name: Some(info.name.clone()),
        repository_arn: Some(info.arn.clone()),
        repository_uri: Some(info.uri.clone()),
        registry_id: Some(info.registry_id.clone()),
        created_at: status::recorded_time(info.created_at),
        ownership: Some(Ownership::Created),
        managed_tag_keys: spec_tags(i).into_keys().collect(),
        ..RepositoryStatus::default()
    };
    let message = format!("ECR repository {} is in sync", info.uri);
    status::set_ready(&mut st, &repo, true, Reason::Synced, message);
    repo.status = Some(st);
    serde_json::to_value(&repo).map_err(|e| BenchError::Scenario(format!("fixture: {e}")))
}

/// Seeds moto with `n` repositories and the double with their `n` Repositories.
async fn seed(moto: &Moto, server: &ApiServer, n: usize) -> Result<(f64, f64)> {
    let started = Instant::now();
    let requests: Vec<Value> = (0..n).map(create_request).collect();
    moto.seed_repositories(&requests).await?;
    let moto_s = started.elapsed().as_secs_f64();
    // What the operator's sweep reads (DescribeRepositories pages); counters reset after.
    let registry = EcrRegistry::from_client(moto.ecr_client());
    let infos: BTreeMap<String, RepositoryInfo> = registry
        .list_repositories()
        .await
        .map_err(|e| BenchError::ecr("DescribeRepositories", e))?
        .into_iter()
        .map(|info| (info.name.clone(), info))
        .collect();
    let started = Instant::now();
    let mut objects = Vec::with_capacity(n);
    for i in 0..n {
        let info = infos.get(&repository_name(i)).ok_or_else(|| {
            BenchError::Scenario(format!("{} was not seeded", repository_name(i)))
        })?;
        objects.push(seeded_object(i, info)?);
    }
    server.seed(GROUP, "repositories", objects)?;
    Ok((moto_s, started.elapsed().as_secs_f64()))
}

/// The operator's `/metrics` text.
async fn scrape(addr: &str) -> Result<String> {
    let err = |e: std::io::Error| BenchError::Scenario(format!("GET http://{addr}/metrics: {e}"));
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(err)?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(err)?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.map_err(err)?;
    Ok(text)
}

/// The sum of a counter family's samples whose labels contain `labels`.
fn counter_sum(text: &str, family: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(family) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn reconciles(addr: &str, controller: &str) -> Result<u64> {
    let text = scrape(addr).await?;
    let labels = format!("controller=\"{controller}\"");
    Ok(counter_sum(&text, "ecr_operator_reconciles_total", &labels))
}

fn spawn_operator(
    moto: &Moto,
    kubeconfig: &Path,
    log_path: &Path,
    admin: &str,
    sweep_seconds: u64,
    sizes: &Sizes,
) -> Result<tokio::process::Child> {
    operator_command(moto, kubeconfig, log_path, sizes)?
        .env("ECR_OPERATOR_LEADER_ELECT", "false")
        .env("ECR_OPERATOR_WEBHOOK", "false")
        .env("ECR_OPERATOR_ADMIN_ADDR", admin)
        .env("ECR_OPERATOR_SWEEP_SECONDS", sweep_seconds.to_string())
        // Deep checks and scan refreshes have their own figures; a day keeps them out of the
        // sweep's window (the first scan refresh, at start, is awaited before it opens).
        .env("ECR_OPERATOR_DEEP_SWEEP_SECONDS", "86400")
        .env("ECR_OPERATOR_SCAN_REFRESH_SECONDS", "86400")
        .spawn()
        .map_err(|e| BenchError::Scenario(format!("starting the operator: {e}")))
}

/// Counts the double's writes (every verb but get, list, watch), by resource.
fn kube_writes(server: &ApiServer) -> u64 {
    server
        .request_counts()
        .into_iter()
        .filter(|((verb, _), _)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .map(|(_, n)| n)
        .sum()
}

/// Waits for the next sweep's first DescribeRepositories page; returns when it was seen.
async fn next_sweep(moto: &Moto, timeout: Duration) -> Result<Instant> {
    let before = moto.calls().await?;
    let base = before.get("DescribeRepositories").copied().unwrap_or(0);
    poll(
        "the next sweep",
        Duration::from_millis(50),
        timeout,
        || async {
            let now = moto.calls().await.ok()?;
            (now.get("DescribeRepositories").copied().unwrap_or(0) > base).then(Instant::now)
        },
    )
    .await
}

/// Waits until no sweep is reading pages: DescribeRepositories unchanged for 2 s (a sweep
/// reads its pages back to back), so that a window opened next holds whole sweeps.
async fn between_sweeps(moto: &Moto, timeout: Duration) -> Result<()> {
    let pages = || async {
        let calls = moto.calls().await?;
        Ok::<u64, BenchError>(calls.get("DescribeRepositories").copied().unwrap_or(0))
    };
    let deadline = Instant::now() + timeout;
    let mut last = pages().await?;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) {
        if Instant::now() > deadline {
            return Err(BenchError::Timeout {
                what: "a pause between sweeps".into(),
                seconds: timeout.as_secs_f64(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = pages().await?;
        if now != last {
            (last, quiet_since) = (now, Instant::now());
        }
    }
    Ok(())
}

/// Waits until `target` Repository reconciles are counted; returns when.
async fn reconciled(admin: &str, target: u64, timeout: Duration) -> Result<Instant> {
    counted(
        admin,
        "repository",
        target,
        Duration::from_millis(20),
        timeout,
    )
    .await
}

/// Waits until `target` reconciles of `controller` are counted, looking every `every`;
/// returns when.
async fn counted(
    admin: &str,
    controller: &str,
    target: u64,
    every: Duration,
    timeout: Duration,
) -> Result<Instant> {
    poll(
        &format!("{target} {controller} reconciles"),
        every,
        timeout,
        || async {
            let n = reconciles(admin, controller).await.ok()?;
            (n >= target).then(Instant::now)
        },
    )
    .await
}

/// One sweep of the unchanged registry and the resync it triggers: (seconds, DescribeRepositories
/// calls, ECR calls, ECR writes, kube writes).
async fn quiet_resync(
    moto: &Moto,
    server: &ApiServer,
    admin: &str,
    n: usize,
    sweep: Duration,
) -> Result<(f64, u64, u64, u64, u64)> {
    between_sweeps(moto, sweep * 2).await?;
    let calls_before = moto.calls().await?;
    let kube_before = kube_writes(server);
    let reconciles_before = reconciles(admin, "repository").await?;
    let started = next_sweep(moto, sweep * 2).await?;
    let done = reconciled(admin, reconciles_before + n as u64, sweep * 4).await?;
    let calls = calls_delta(&calls_before, &moto.calls().await?);
    let describe = calls.get("DescribeRepositories").copied().unwrap_or(0);
    let total: u64 = calls.values().sum();
    Ok((
        done.duration_since(started).as_secs_f64(),
        describe,
        total,
        writes(&calls),
        kube_writes(server) - kube_before,
    ))
}

/// Whether object `i` is Ready at `generation` in the double's state (no HTTP).
fn ready_at(server: &ApiServer, i: usize, generation: i64) -> bool {
    server
        .get_object(GROUP, "repositories", Some(NAMESPACE), &object_name(i))
        .is_some_and(|o| {
            crate::util::is_ready(&o)
                && o.pointer("/status/observedGeneration")
                    .and_then(Value::as_i64)
                    == Some(generation)
        })
}

/// Spec changes (a new tag) to one object after another, every 200 ms, from the moment the next
/// sweep's resync is under way until it has reconciled every object; each change's time until
/// the object is Ready at its new generation (its TagResource made and its status written),
/// watched every 5 ms for all changes at once.
async fn changes_during_resync(
    moto: &Moto,
    server: &ApiServer,
    client: &kube::Client,
    admin: &str,
    n: usize,
    sweep: Duration,
) -> Result<(Vec<Duration>, f64)> {
    let api: Api<Repository> = Api::namespaced(client.clone(), NAMESPACE);
    between_sweeps(moto, sweep * 2).await?;
    let before = reconciles(admin, "repository").await?;
    let started = next_sweep(moto, sweep * 2).await?;
    // The sweep reads its pages first; changes start once its reconciles flow.
    reconciled(admin, before + (n as u64 / 100).max(1), sweep * 4).await?;
    let mut waits = Vec::new();
    let mut waiting: Vec<(usize, Instant)> = Vec::new();
    let mut resyncing = true;
    let mut next_change = Instant::now();
    let deadline = Instant::now() + sweep * 4;
    while resyncing || !waiting.is_empty() {
        if Instant::now() > deadline {
            return Err(BenchError::Timeout {
                what: format!("{} changed Repositories to be Ready", waiting.len()),
                seconds: (sweep * 4).as_secs_f64(),
            });
        }
        if resyncing && Instant::now() >= next_change {
            resyncing = reconciles(admin, "repository").await? < before + n as u64;
            if resyncing {
                let i = waits.len() + waiting.len();
                let patch = json!({"spec": {"tags": {"rev": format!("r{i}")}}});
                let sent = Instant::now();
                api.patch(
                    &object_name(i),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                waiting.push((i, sent));
                next_change = sent + Duration::from_millis(200);
            }
        }
        waiting.retain(|(i, sent)| {
            let ready = ready_at(server, *i, 2);
            if ready {
                waits.push(sent.elapsed());
                eprintln!(
                    "   change {i} at {:.2} s into the window: {:.1} ms",
                    sent.duration_since(started).as_secs_f64(),
                    crate::util::ms(sent.elapsed())
                );
            }
            !ready
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if waits.is_empty() {
        return Err(BenchError::Scenario(
            "the resync ended before a spec change could be made during it".into(),
        ));
    }
    Ok((waits, started.elapsed().as_secs_f64()))
}

pub async fn run(sizes: &Sizes, figures: &mut Figures) -> Result<()> {
    let n = sizes.repos_100k;
    let sweep = Duration::from_secs(sizes.repos_100k_sweep_seconds);
    let moto = Moto::start().await?;
    let (server, client) = crate::util::double().await?;
    let (seed_moto_s, seed_double_s) = seed(&moto, &server, n).await?;
    eprintln!("   seeded {n}: moto {seed_moto_s:.1} s, double {seed_double_s:.1} s");

    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
    let kubeconfig = dir.join("kubeconfig-100k.yaml");
    write_kubeconfig(&server, &kubeconfig)?;
    let log_path = dir.join("operator-100k.log");
    let admin = format!("127.0.0.1:{}", testbed::envtest::free_port()?);
    let mut child = spawn_operator(
        &moto,
        &kubeconfig,
        &log_path,
        &admin,
        sweep.as_secs(),
        sizes,
    )?;
    let pid = child
        .id()
        .ok_or_else(|| BenchError::Scenario("the operator exited at once".into()))?;
    let measured = measure(&moto, &server, &client, &admin, pid, n, sweep).await;
    still_running(&mut child, &log_path)?;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let m = measured?;
    report(figures, n, &m, seed_moto_s, seed_double_s);
    if m.ecr_writes + m.kube_writes > 0 {
        return Err(BenchError::Scenario(format!(
            "the sweep of {n} unchanged repositories wrote: {} ECR writes, {} Kubernetes writes",
            m.ecr_writes, m.kube_writes
        )));
    }
    Ok(())
}

struct Measured {
    start_s: f64,
    resync_s: f64,
    describe_calls: u64,
    ecr_calls: u64,
    ecr_writes: u64,
    kube_writes: u64,
    rss_kib: u64,
    peak_kib: u64,
    waits: Vec<Duration>,
    changes_window_s: f64,
}

async fn measure(
    moto: &Moto,
    server: &ApiServer,
    client: &kube::Client,
    admin: &str,
    pid: u32,
    n: usize,
    sweep: Duration,
) -> Result<Measured> {
    let started = Instant::now();
    // Started: every object reconciled once after the first list, and the first scan refresh
    // (at start; one DescribeImages per Ready repository) done.
    let ready = Duration::from_secs(1800);
    reconciled(admin, n as u64, ready).await?;
    // The first scan refresh.
    counted(
        admin,
        "imagescanreport",
        1,
        Duration::from_millis(200),
        ready,
    )
    .await?;
    let start_s = started.elapsed().as_secs_f64();
    // The start's own sweep may still be resyncing: wait until reconciles stop.
    let mut last = reconciles(admin, "repository").await?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = reconciles(admin, "repository").await?;
        if now == last {
            break;
        }
        last = now;
    }
    let (resync_s, describe_calls, ecr_calls, ecr_writes, kube_writes) =
        quiet_resync(moto, server, admin, n, sweep).await?;
    let (rss_kib, peak_kib) = settled_kib(pid).await?;
    let (waits, changes_window_s) =
        changes_during_resync(moto, server, client, admin, n, sweep).await?;
    Ok(Measured {
        start_s,
        resync_s,
        describe_calls,
        ecr_calls,
        ecr_writes,
        kube_writes,
        rss_kib,
        peak_kib,
        waits,
        changes_window_s,
    })
}

fn report(figures: &mut Figures, n: usize, m: &Measured, seed_moto_s: f64, seed_double_s: f64) {
    let at = if n == 100_000 {
        String::new()
    } else {
        format!(" (measured at {n}, not scaled)")
    };
    figures.add(
        "repos_100k_sweep_calls",
        m.describe_calls as f64,
        "calls",
        &format!(
            "DescribeRepositories pages of one frequent sweep{at}; {} ECR calls in the window \
             (target 100 at 100,000: pages of 1000)",
            m.ecr_calls
        ),
    );
    figures.add(
        "repos_100k_resync_s",
        m.resync_s,
        "s",
        &format!("from the sweep's first page to every Repository reconciled{at} (target <= 30)"),
    );
    figures.add(
        "repos_100k_writes",
        (m.ecr_writes + m.kube_writes) as f64,
        "writes",
        &format!(
            "ECR {} + Kubernetes {} writes over that sweep and resync{at} (must be 0)",
            m.ecr_writes, m.kube_writes
        ),
    );
    figures.add(
        "rss_mib_100k",
        m.rss_kib as f64 / 1024.0,
        "MiB",
        &format!(
            "settled VmRSS of `ecr-operator run` after that resync{at}, peak {:.1} MiB \
             (target <= 300)",
            m.peak_kib as f64 / 1024.0
        ),
    );
    let mut waits = m.waits.clone();
    waits.sort();
    figures.add(
        "spec_change_p99_ms_during_resync_100k",
        crate::util::ms(quantile(&waits, 0.99)),
        "ms",
        &format!(
            "{} spec changes during the next resync ({:.1} s), each until Ready at its new \
             generation (TagResource made); p50 {:.1} ms, max {:.1} ms{at} (target <= 1000)",
            waits.len(),
            m.changes_window_s,
            crate::util::ms(quantile(&waits, 0.5)),
            crate::util::ms(waits.last().copied().unwrap_or_default()),
        ),
    );
    figures.add(
        "repos_100k_start_s",
        m.start_s,
        "s",
        &format!(
            "operator start to every object reconciled and the first scan refresh done{at}; \
             seeding took {seed_moto_s:.1} s (moto) and {seed_double_s:.1} s (double)"
        ),
    );
}
