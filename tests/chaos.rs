//! The chaos run (issue #9, #14): a seeded random schedule that creates, changes and deletes
//! objects of every kind (valid and invalid, and Repositories that adopt unowned ECR repositories)
//! while ECR (moto, through the launcher's fault switch) throttles, fails, answers slowly or not
//! in time, and restarts; the API server double restarts, drops watches and answers `410 Gone`;
//! and the operator, two replicas under leader election with fenced ECR writes, has a replica
//! killed mid-reconcile and started again, or the leader cut off from the API server for longer
//! than its lease. Then faults stop, the system settles, and invariants are checked against moto
//! and the double; so is that every kind of fault injected actually hit something (moto's count
//! of faults served, the double's count of what its fault hooks met, leaders actually fenced),
//! and that a minimum of objects of each kind is Ready, so the run cannot pass on an empty world.
//!
//! `chaos_quick` runs in CI (`CHAOS_STEPS`, default 150). The full size is `chaos_full`
//! (ignored by default; README `## Reliability`):
//! `CHAOS_SEED=7 CHAOS_STEPS=2000 cargo test --test chaos -- --ignored --nocapture chaos_full`.
//! Either prints `figure chaos_steps N`, `figure chaos_faults N`,
//! `figure chaos_faults_landed_<kind> N`, `figure chaos_ready_<kind> N`,
//! `figure chaos_invariant_violations N` and the seed to replay it with.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ecr::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_ecr::config::timeout::TimeoutConfig;
use aws_sdk_ecr::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ecr::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use ecr_operator::api::conditions;
use ecr_operator::api::repository::{OWNER_TAG, Ownership};
use ecr_operator::api::{
    ImageScanReport, LifecyclePolicy, PullThroughCacheRule, ReplicationConfig, Repository,
    ScanPolicy,
};
use ecr_operator::controllers::claim::age_key;
use ecr_operator::controllers::replication_config::Replication;
use ecr_operator::controllers::scan_policy::Scanning;
use ecr_operator::controllers::singleton::Setting;
use ecr_operator::controllers::status::Reported;
use ecr_operator::controllers::{self, Context, lifecycle_policy};
use ecr_operator::leader::{Fence, LeaderElector, LeaseConfig};
use ecr_operator::registry::{EcrRegistry, Registry, WRITE_OPERATIONS};
use ecr_operator::repository_policy as policy;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use testbed::moto::{FaultKind, FaultScope};
use testbed::proxy::TcpProxy;

const GROUP: &str = "apiVersion: ecr.operator.dev/v1alpha1";
/// How long the system may take to converge once faults stop.
const SETTLE: Duration = Duration::from_secs(180);
/// Per-attempt timeout of the operator's ECR client: `Latency` faults longer than this are
/// timeouts, which the SDK retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// The injected latency of a `timeout` fault: past the attempt timeout.
const TIMEOUT_LATENCY_MS: u64 = 2000;
/// The injected latency that slows ECR before a replica is killed mid-reconcile (distinct from
/// `slow` faults, which stay at or under 1000 ms, so moto's counts tell them apart).
const KILL_LATENCY_MS: u64 = 1200;
/// Leader election of the two replicas: short, so partitions longer than the lease fit a run.
const LEASE: Duration = Duration::from_secs(3);
const RENEW_DEADLINE: Duration = Duration::from_secs(2);
const RENEW_EVERY: Duration = Duration::from_millis(500);
const LEASE_NAME: &str = "ecr-operator-chaos";
const REPLICAS: [&str; 2] = ["replica-a", "replica-b"];
/// A write sent this soon after its replica's fence shut is a race between the fence check
/// before serialization and the send (microseconds), counted but not a violation.
const FENCE_GRACE: Duration = Duration::from_millis(50);

/// Panics anywhere in the process (operator tasks included), counted by a hook.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// splitmix64: small, seedable, and the same on every platform, so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_quick() {
    let seed = env_u64("CHAOS_SEED").unwrap_or(1);
    let steps = env_u64("CHAOS_STEPS").unwrap_or(150);
    run(seed, steps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "full size: minutes; run from the README's Reliability section"]
async fn chaos_full() {
    let seed = env_u64("CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let steps = env_u64("CHAOS_STEPS").unwrap_or(2000);
    run(seed, steps).await;
}

/// Aborts a task when dropped: a replica's elector dies with its supervisor.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One process of a replica: what `ecr-operator run --leader-elect` builds at start.
#[derive(Clone)]
struct Incarnation {
    fence: Fence,
    registry: Arc<EcrRegistry>,
    leading: Arc<AtomicBool>,
}

/// One replica of the operator (a pod): its own connection to the API server, through a proxy
/// the run cuts (a partition of this replica alone); every process it ran.
struct Replica {
    identity: &'static str,
    proxy: TcpProxy,
    client: kube::Client,
    incarnations: Mutex<Vec<Incarnation>>,
    /// The supervisor (kubelet): starts a process again when one ends.
    task: Mutex<Option<AbortOnDrop>>,
    /// Processes that ended on their own (and were started again).
    exits: AtomicUsize,
    /// Cut off the API server now (one partition at a time).
    cut: AtomicBool,
}

impl Replica {
    fn current(&self) -> Option<Incarnation> {
        self.incarnations.lock().unwrap().last().cloned()
    }

    fn running(&self) -> bool {
        self.task
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|t| !t.0.is_finished())
    }

    /// Holds the lease now (a killed replica does not, whatever its last flag said).
    fn leading(&self) -> bool {
        self.running()
            && self
                .current()
                .is_some_and(|i| i.leading.load(Ordering::SeqCst))
    }

    /// Whether any of its processes may write to ECR now.
    fn fence_open(&self) -> bool {
        self.incarnations
            .lock()
            .unwrap()
            .iter()
            .any(|i| i.fence.is_open())
    }

    /// ECR calls of all its processes with this outcome (`success` writes: see `writes`).
    fn outcomes(&self, outcome: &str) -> u64 {
        self.incarnations
            .lock()
            .unwrap()
            .iter()
            .flat_map(|i| i.registry.stats().snapshot())
            .filter(|((_, o), _)| *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// Successful ECR writes of all its processes.
    fn writes(&self) -> u64 {
        self.incarnations
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.registry.stats().writes())
            .sum()
    }
}

/// Every ECR write a replica sends, seen just before it goes on the wire (each attempt, retries
/// included), and every write ECR accepted.
#[derive(Debug, Default)]
struct WriteLog {
    /// Writes sent while the sender's fence was shut (beyond [`FENCE_GRACE`]), with ECR's
    /// answer once known: violations.
    sent_fenced: Mutex<Vec<(String, Option<u16>)>>,
    /// Writes sent within [`FENCE_GRACE`] of the fence shutting.
    sent_at_the_edge: AtomicU64,
    /// Write attempts ECR answered with success, by replica.
    accepted: [AtomicU64; 2],
}

/// The interceptor that fills a [`WriteLog`] for one process of one replica.
#[derive(Debug)]
struct WriteAudit {
    replica: usize,
    fence: Fence,
    log: Arc<WriteLog>,
    started: Instant,
}

/// Marks the attempt under way as sent through a shut fence (its entry in `sent_fenced`).
#[derive(Clone, Debug)]
struct SentFenced(usize);

impl Storable for SentFenced {
    type Storer = StoreReplace<Self>;
}

fn write_operation(cfg: &ConfigBag) -> Option<String> {
    let op = cfg.load::<Metadata>()?.name().to_string();
    WRITE_OPERATIONS.contains(&op.as_str()).then_some(op)
}

impl Intercept for WriteAudit {
    fn name(&self) -> &'static str {
        "ChaosWriteAudit"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(op) = write_operation(cfg) else {
            return Ok(());
        };
        let now = Instant::now();
        cfg.interceptor_state().unset::<SentFenced>();
        if !self.fence.is_open_at(now) {
            if self
                .fence
                .is_open_at(now.checked_sub(FENCE_GRACE).unwrap_or(now))
            {
                self.log.sent_at_the_edge.fetch_add(1, Ordering::SeqCst);
            } else {
                let attempt = cfg.load::<RequestAttempts>().map_or(0, |a| a.attempts());
                let mut sent = self.log.sent_fenced.lock().unwrap();
                sent.push((
                    format!(
                        "{} sent {op} (attempt {attempt}) at {:.3}s while its fence was shut (it did not hold the lease within its renew deadline)",
                        REPLICAS[self.replica],
                        now.duration_since(self.started).as_secs_f64()
                    ),
                    None,
                ));
                cfg.interceptor_state()
                    .store_put(SentFenced(sent.len() - 1));
            }
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if write_operation(cfg).is_none() {
            return Ok(());
        }
        let status = context.response().map(|r| r.status());
        if status.is_some_and(|s| s.is_success()) {
            self.log.accepted[self.replica].fetch_add(1, Ordering::SeqCst);
        }
        if let Some(SentFenced(i)) = cfg.load::<SentFenced>() {
            self.log.sent_fenced.lock().unwrap()[*i].1 = status.map(|s| s.as_u16());
        }
        Ok(())
    }
}

/// When each replica's fence was open, polled every 10 ms: the two must never overlap (the
/// elector guarantees it when clocks run at the same rate, as here). A poll sees an interval
/// shorter than it was by at most one period, so an overlap seen is a real one.
#[derive(Default)]
struct FenceTimeline {
    open_since: [Option<Instant>; 2],
    intervals: [Vec<(Instant, Instant)>; 2],
}

impl FenceTimeline {
    fn observe(&mut self, replica: usize, open: bool, now: Instant) {
        match (self.open_since[replica], open) {
            (None, true) => self.open_since[replica] = Some(now),
            (Some(since), false) => {
                self.intervals[replica].push((since, now));
                self.open_since[replica] = None;
            }
            _ => {}
        }
    }

    fn close(&mut self, now: Instant) {
        for r in 0..2 {
            self.observe(r, false, now);
        }
    }

    fn overlaps(&self, started: Instant) -> Vec<String> {
        let mut v = Vec::new();
        for &(a0, a1) in &self.intervals[0] {
            for &(b0, b1) in &self.intervals[1] {
                if a0 < b1 && b0 < a1 {
                    let t = |i: Instant| i.duration_since(started).as_secs_f64();
                    v.push(format!(
                        "both fences open at once: {} {:.3}s..{:.3}s, {} {:.3}s..{:.3}s",
                        REPLICAS[0],
                        t(a0),
                        t(a1),
                        REPLICAS[1],
                        t(b0),
                        t(b1)
                    ));
                }
            }
        }
        v
    }
}

/// The operator as two replicas under leader election (as `ecr-operator run --leader-elect`
/// wires them: controllers run while the lease is held, ECR writes behind the elector's fence),
/// each under a supervisor that starts it again when it exits.
struct Operator {
    replicas: [Arc<Replica>; 2],
    sdk: aws_config::SdkConfig,
    config: controllers::Config,
    writes: Arc<WriteLog>,
    timeline: Arc<Mutex<FenceTimeline>>,
    _poller: AbortOnDrop,
    started: Instant,
}

impl Operator {
    async fn new(
        server: &apiserver_double::ApiServer,
        sdk: aws_config::SdkConfig,
        config: controllers::Config,
        started: Instant,
    ) -> Operator {
        let mut replicas = Vec::new();
        for identity in REPLICAS {
            let proxy = TcpProxy::start(server.addr()).await.unwrap();
            // As `ApiServer::client` builds its client, against the proxy.
            let url = format!("http://{}", proxy.addr());
            let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
            replicas.push(Arc::new(Replica {
                identity,
                proxy,
                client,
                incarnations: Mutex::new(Vec::new()),
                task: Mutex::new(None),
                exits: AtomicUsize::new(0),
                cut: AtomicBool::new(false),
            }));
        }
        let replicas: [Arc<Replica>; 2] = [replicas[0].clone(), replicas[1].clone()];
        let timeline = Arc::new(Mutex::new(FenceTimeline::default()));
        let poller = {
            let (replicas, timeline) = (replicas.clone(), timeline.clone());
            tokio::spawn(async move {
                loop {
                    let now = Instant::now();
                    let open = [replicas[0].fence_open(), replicas[1].fence_open()];
                    {
                        let mut t = timeline.lock().unwrap();
                        t.observe(0, open[0], now);
                        t.observe(1, open[1], now);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        Operator {
            replicas,
            sdk,
            config,
            writes: Arc::new(WriteLog::default()),
            timeline,
            _poller: AbortOnDrop(poller),
            started,
        }
    }

    /// Starts replica `r` (a new process each time its supervisor starts it).
    fn start(&self, r: usize) {
        let replica = self.replicas[r].clone();
        let (sdk, config, log, started) = (
            self.sdk.clone(),
            self.config.clone(),
            self.writes.clone(),
            self.started,
        );
        let supervisor = tokio::spawn(async move {
            loop {
                let fence = Fence::shut();
                let audit = WriteAudit {
                    replica: r,
                    fence: fence.clone(),
                    log: log.clone(),
                    started,
                };
                let ecr = aws_sdk_ecr::config::Builder::from(&sdk)
                    .interceptor(audit)
                    .build();
                let registry = Arc::new(
                    EcrRegistry::from_client(aws_sdk_ecr::Client::from_conf(ecr))
                        .with_fence(fence.clone()),
                );
                let elector = LeaderElector::new(
                    replica.client.clone(),
                    LeaseConfig {
                        namespace: "default".into(),
                        name: LEASE_NAME.into(),
                        identity: replica.identity.into(),
                        lease_duration: LEASE,
                        renew_deadline: RENEW_DEADLINE,
                        renew_every: RENEW_EVERY,
                    },
                )
                .with_fence(fence.clone());
                replica.incarnations.lock().unwrap().push(Incarnation {
                    fence,
                    registry: registry.clone(),
                    leading: elector.leading_flag(),
                });
                let (client, config) = (replica.client.clone(), config.clone());
                let identity = replica.identity;
                let mut process = AbortOnDrop(tokio::spawn(elector.run(
                    std::future::pending::<()>(),
                    move |mut lost| {
                        let ctx = Arc::new(Context::new(
                            client.clone(),
                            registry.clone(),
                            config.clone(),
                        ));
                        async move {
                            let stop = async move {
                                let _ = lost.wait_for(|l| *l).await;
                            };
                            if let Err(e) = controllers::run(ctx, stop).await {
                                eprintln!("{identity}: controllers stopped ({e})");
                            }
                        }
                    },
                )));
                let ended = (&mut process.0).await;
                replica.exits.fetch_add(1, Ordering::SeqCst);
                eprintln!("{identity} exited ({ended:?}); restarting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        *self.replicas[r].task.lock().unwrap() = Some(AbortOnDrop(supervisor));
    }

    /// Kills replica `r` at once, wherever it is (mid-reconcile included). True if it ran.
    fn kill(&self, r: usize) -> bool {
        let ran = self.replicas[r].running();
        self.replicas[r].task.lock().unwrap().take();
        ran
    }

    fn start_all(&self) {
        for r in 0..2 {
            if !self.replicas[r].running() {
                self.start(r);
            }
        }
    }

    fn kill_all(&self) {
        for r in 0..2 {
            self.kill(r);
        }
    }

    /// The replica holding the lease now, if any.
    fn leader(&self) -> Option<usize> {
        (0..2).find(|&r| self.replicas[r].leading())
    }
}

/// What a partition did, known when it ends.
struct PartitionOutcome {
    replica: usize,
    cut_at: f64,
    restored_at: f64,
    /// The cut-off leader's fence was shut when the partition ended: it stopped writing.
    fenced: bool,
    /// The other replica led by then.
    taken_over: bool,
}

/// What the schedule did that the invariants depend on.
#[derive(Default)]
struct Record {
    steps: u64,
    faults: BTreeMap<&'static str, u64>,
    /// Unowned repositories seeded in ECR, with what they held: never to be touched.
    unowned: BTreeMap<String, Snapshot>,
    /// Unowned repositories seeded for adoption, with what they held: an adopter may take
    /// them over; until one does, they stay as they are.
    adoptable: BTreeMap<String, Snapshot>,
    /// Adoptable repositories an adopter was given `deletionPolicy: Delete` for: they may go.
    adoptable_deletable: BTreeSet<String>,
    /// Faults that hit something, by kind (ECR faults: calls moto answered with the fault).
    landed: BTreeMap<&'static str, u64>,
    /// Faults moto served before it restarted (its counts start again), by label.
    served_before_restarts: BTreeMap<String, u64>,
    /// Cut-off leaders whose fence was still open when their partition ended.
    fence_violations: Vec<String>,
    /// The double's fault counters when the run started.
    double_landed_at_start: apiserver_double::FaultsLanded,
    /// ECR repositories of Retain objects that were deleted (name -> owner tag): must remain.
    retained: BTreeMap<String, String>,
    /// Invalid objects the API server accepted.
    accepted_invalid: Vec<String>,
    /// The deletionPolicy each Repository (by owner tag value) was last given: a change to
    /// Retain while the object is being deleted is honoured, so it decides.
    last_retain: BTreeMap<String, bool>,
    /// What each step did, written to a file when an invariant fails.
    trace: Vec<String>,
    started: Option<Instant>,
}

impl Record {
    fn fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
        self.note(format!("fault {kind}"));
    }
    fn note(&mut self, what: String) {
        let t = self.started.map(|s| s.elapsed()).unwrap_or_default();
        self.trace.push(format!(
            "{:>9.3}s step {:>4}: {what}",
            t.as_secs_f64(),
            self.steps
        ));
    }
    fn fault_total(&self) -> u64 {
        self.faults.values().sum()
    }
    fn landed(&mut self, kind: &'static str, n: u64) {
        *self.landed.entry(kind).or_default() += n;
    }
}

/// One repository's state in ECR, as far as anyone could change it.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    tag_mutability: String,
    scan_on_push: bool,
    tags: BTreeMap<String, String>,
    policy: Option<Value>,
    lifecycle: Option<Value>,
}

async fn snapshot(reg: &EcrRegistry, name: &str) -> Result<Option<Snapshot>, String> {
    let Some(info) = reg
        .describe_repository(name)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let tags = reg.list_tags(&info.arn).await.map_err(|e| e.to_string())?;
    let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let policy = parse(
        reg.get_repository_policy(name)
            .await
            .map_err(|e| e.to_string())?,
    );
    let lifecycle = parse(
        reg.get_lifecycle_policy(name)
            .await
            .map_err(|e| e.to_string())?,
    );
    Ok(Some(Snapshot {
        tag_mutability: info.tag_mutability,
        scan_on_push: info.scan_on_push,
        tags,
        policy,
        lifecycle,
    }))
}

const NAMESPACES: [&str; 2] = ["chaos-a", "chaos-b"];
/// Repository object names; `t*` set spec.repositoryName `team/t*`; `adopt*` adopt the
/// repositories seeded for them (always with `adopt: true`); `legacy*` target the unowned
/// repositories (never with adopt).
const REPO_NAMES: [&str; 12] = [
    "r0", "r1", "r2", "r3", "r4", "t0", "t1", "adopt0", "adopt1", "adopt2", "legacy0", "legacy1",
];
/// What LifecyclePolicies and image pushes target: all but the never-touched.
const MANAGED_REPOS: &[&str] = REPO_NAMES.split_at(10).0;
const UNOWNED: [&str; 2] = ["legacy0", "legacy1"];
/// Seeded unowned, for adoption by the `adopt*` objects.
const ADOPTABLE: [&str; 3] = ["adopt0", "adopt1", "adopt2"];
/// The anchors: one valid object of each kind, created first and never changed or deleted by
/// the schedule (faults still hit them), so the run always ends with something Ready of each.
const ANCHOR: &str = "anchor";
/// The anchor adopter's name, and its repository's: a new one (`anchor-adopt-N`) after a moto
/// restart when the operator created the old one again before it could be seeded.
const ANCHOR_ADOPT: &str = "anchor-adopt";
const LCP_NAMES: [&str; 3] = ["lcp0", "lcp1", "lcp2"];
const RC_NAMES: [&str; 3] = ["rc0", "rc1", "rc2"];
const SP_NAMES: [&str; 3] = ["sp0", "sp1", "sp2"];
/// (object name, prefix, upstream): two objects share `quay`; ghcr.io without credentials is
/// refused by the operator's own validation.
const PTC: [(&str, &str, &str); 4] = [
    ("quay-a", "quay", "quay.io"),
    ("quay-b", "quay", "quay.io"),
    ("pecr", "pecr", "public.ecr.aws"),
    ("ghcr", "ghcr", "ghcr.io"),
];

fn ecr_name(object: &str) -> String {
    if object.starts_with('t') {
        format!("team/{object}")
    } else {
        object.to_string()
    }
}

fn dynamic_api<K: Resource<DynamicType = ()>>(
    client: &kube::Client,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let ar = ApiResource::erase::<K>(&());
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn repository_spec(rng: &mut Rng, name: &str) -> Value {
    let delete = rng.chance(0.5);
    let mut spec = json!({
        "imageTagMutability": *rng.pick(&["MUTABLE", "IMMUTABLE"]),
        "scanOnPush": rng.chance(0.5),
        "deletionPolicy": if delete { "Delete" } else { "Retain" },
        "forceDelete": delete && rng.chance(0.7),
    });
    if name.starts_with('t') {
        spec["repositoryName"] = json!(ecr_name(name));
    }
    if ADOPTABLE.contains(&name) {
        spec["adopt"] = json!(true);
    }
    if rng.chance(0.6) {
        let mut tags = serde_json::Map::new();
        for _ in 0..rng.below(4) {
            tags.insert(
                format!("k{}", rng.below(5)),
                json!(format!("v{}", rng.below(3))),
            );
        }
        spec["tags"] = Value::Object(tags);
    }
    if rng.chance(0.3) {
        spec["policy"] = json!({"statements": [{
            "sid": format!("S{}", rng.below(3)),
            "effect": *rng.pick(&["Allow", "Deny"]),
            "principals": {"aws": [*rng.pick(&["*", "123456789012", "arn:aws:iam::123456789012:root"])]},
            "actions": rng.pick(&[vec!["ecr:BatchGetImage"], vec!["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], vec!["ecr:*"]]).clone(),
        }]});
    }
    spec
}

fn lifecycle_spec(rng: &mut Rng) -> Value {
    let repo = *rng.pick(MANAGED_REPOS);
    let mut rules = vec![];
    if rng.chance(0.6) {
        rules.push(json!({"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": rng.range(1, 30)}}));
    }
    if rng.chance(0.5) {
        rules.push(json!({"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": [*rng.pick(&["v", "rel", "dev"])], "countType": "imageCountMoreThan", "countNumber": rng.range(1, 50)}}));
    }
    rules.push(json!({"rulePriority": 10, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": rng.range(20, 500)}}));
    json!({"repositoryRef": {"name": repo}, "rules": rules})
}

fn replication_spec(rng: &mut Rng) -> Value {
    let rules: Vec<Value> = (0..rng.range(1, 4))
        .map(|_| {
            let mut rule = json!({"destinations": [{"region": *rng.pick(&["eu-west-1", "us-west-2", "ap-south-1"]), "registryId": "123456789012"}]});
            if rng.chance(0.5) {
                rule["repositoryFilters"] = json!([{"filter": *rng.pick(&["r", "team", "prod"]), "filterType": "PREFIX_MATCH"}]);
            }
            rule
        })
        .collect();
    json!({"rules": rules})
}

fn scan_spec(rng: &mut Rng) -> Value {
    let enhanced = rng.chance(0.2);
    let rules = if rng.chance(0.2) {
        json!([])
    } else {
        json!([{"scanFrequency": if enhanced { "CONTINUOUS_SCAN" } else { "SCAN_ON_PUSH" }, "repositoryFilters": [{"filter": *rng.pick(&["*", "r*", "team/*"])}]}])
    };
    json!({"scanType": if enhanced { "ENHANCED" } else { "BASIC" }, "rules": rules,
           "enforcement": {"mode": *rng.pick(&["warn", "audit", "enforce"]), "severityThreshold": *rng.pick(&["HIGH", "CRITICAL"])}})
}

/// Objects the CRD schema or CEL must refuse, one or more per kind.
const INVALID: [&str; 12] = [
    "kind: Repository\nmetadata: {name: bad}\nspec: {imageTagMutability: SOMETIMES}",
    "kind: Repository\nmetadata: {name: bad}\nspec: {forceDelete: true}",
    "kind: Repository\nmetadata: {name: bad}\nspec: {repositoryName: Bad/Name}",
    "kind: Repository\nmetadata: {name: bad}\nspec: {tags: {'aws:x': y}}",
    "kind: LifecyclePolicy\nmetadata: {name: bad}\nspec: {repositoryRef: {name: r0}, rules: []}",
    "kind: LifecyclePolicy\nmetadata: {name: bad}\nspec: {repositoryRef: {name: r0}, rules: [{rulePriority: 1, selection: {tagStatus: tagged, countType: imageCountMoreThan, countNumber: 1}}]}",
    "kind: ReplicationConfig\nmetadata: {name: bad}\nspec: {rules: [{destinations: []}]}",
    "kind: ReplicationConfig\nmetadata: {name: bad}\nspec: {rules: [{destinations: [{region: eu-west-1, registryId: '12'}]}]}",
    "kind: PullThroughCacheRule\nmetadata: {name: bad}\nspec: {ecrRepositoryPrefix: Hub, upstreamRegistryUrl: quay.io}",
    "kind: ScanPolicy\nmetadata: {name: bad}\nspec: {scanType: BASIC, rules: [{scanFrequency: CONTINUOUS_SCAN, repositoryFilters: [{filter: '*'}]}]}",
    "kind: ScanPolicy\nmetadata: {name: bad}\nspec: {enforcement: {mode: block}}",
    "kind: ImageScanReport\nmetadata: {name: bad}\nspec: {registryId: '1', repositoryName: r0}",
];

struct Chaos {
    env: common::Env,
    operator: Operator,
    client: kube::Client,
    /// A registry of our own for checks, so the operator's call counts stay its own.
    checker: EcrRegistry,
    rng: Rng,
    record: Record,
    /// Partitions under way: each restores its replica's connection when it ends.
    partitions: Vec<tokio::task::JoinHandle<PartitionOutcome>>,
    /// The anchor adopter of now (see [`ANCHOR_ADOPT`]) and how many there were.
    anchor_adopt: String,
    anchor_adopters: u32,
}

async fn run(seed: u64, steps: u64) {
    count_panics();
    println!("chaos seed {seed} steps {steps}");
    let started = Instant::now();
    // The double: the run restarts it, drops its watches and compacts it.
    let mut env = common::Env::start_on_double().await;
    // The run supervises its own replicas (restarting them when they exit, as kubelet would).
    env.kill_operator();
    let client = env.kube.client();
    for ns in NAMESPACES {
        env.kube.ensure_namespace(ns).await.unwrap();
    }
    // Timeouts short enough that a slow answer becomes a timeout the SDK retries.
    let sdk = env
        .moto
        .sdk_config()
        .to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    let server = env
        .kube
        .server()
        .expect("the chaos run needs the API server double");
    let double_landed_at_start = server.faults_landed();
    let operator = Operator::new(server, sdk, env.config.clone(), started).await;
    operator.start_all();
    let checker = EcrRegistry::from_client(env.moto.ecr_client());
    let mut chaos = Chaos {
        env,
        operator,
        client,
        checker,
        rng: Rng(seed),
        record: Record {
            started: Some(started),
            double_landed_at_start,
            ..Record::default()
        },
        partitions: Vec::new(),
        anchor_adopt: ANCHOR_ADOPT.to_string(),
        anchor_adopters: 0,
    };
    chaos.seed_unowned().await;
    chaos.create_anchors().await;

    for _ in 0..steps {
        chaos.step().await;
        chaos.record.steps += 1;
        // A short random pause lets reconciles run between steps.
        let pause = chaos.rng.below(40);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let schedule_took = started.elapsed();

    let mut violations = chaos.settle_and_check().await;
    println!("chaos final state: {}", chaos.summary().await);
    if violations.is_empty() {
        chaos.self_test().await;
    }
    let ready = chaos.ready_counts().await;
    violations.extend(ready_minimums(&ready));
    violations.extend(chaos.faults_landed().await);
    violations.extend(chaos.leadership_holds());
    let r = &chaos.record;
    println!(
        "chaos seed {seed}: schedule {schedule_took:?}, total {:?}",
        started.elapsed()
    );
    println!("chaos faults by kind: {:?}", r.faults);
    println!("chaos faults landed by kind: {:?}", r.landed);
    for (r, replica) in chaos.operator.replicas.iter().enumerate() {
        let terms = chaos.operator.timeline.lock().unwrap().intervals[r].len();
        let processes = replica.incarnations.lock().unwrap().len();
        println!(
            "chaos {}: {} processes, {} exited on their own; {terms} terms with an open fence; {} ECR writes ({} accepted write attempts), {} refused by the fence",
            replica.identity,
            processes,
            replica.exits.load(Ordering::SeqCst),
            replica.writes(),
            chaos.operator.writes.accepted[r].load(Ordering::SeqCst),
            replica.outcomes("fenced"),
        );
    }
    for v in &violations {
        println!("VIOLATION: {v}");
    }
    if !violations.is_empty() {
        let path = std::env::temp_dir().join(format!("chaos-trace-{seed}.log"));
        let _ = std::fs::write(&path, r.trace.join("\n"));
        println!("chaos step trace: {}", path.display());
    }
    println!("figure chaos_steps {}", r.steps);
    println!("figure chaos_faults {}", r.fault_total());
    for (kind, n) in &r.faults {
        println!(
            "figure chaos_faults_landed_{kind} {} (of {n} injected)",
            r.landed.get(kind).copied().unwrap_or(0)
        );
    }
    println!(
        "figure chaos_faults_landed {}",
        r.faults
            .keys()
            .filter(|k| r.landed.get(*k).copied().unwrap_or(0) > 0)
            .count()
    );
    for (kind, n) in &ready {
        println!("figure chaos_ready_{kind} {n}");
    }
    for (r, replica) in chaos.operator.replicas.iter().enumerate() {
        println!(
            "figure chaos_ecr_writes_{} {}",
            replica.identity.replace('-', "_"),
            chaos.operator.writes.accepted[r].load(Ordering::SeqCst)
        );
    }
    println!(
        "figure chaos_writes_sent_fenced {}",
        chaos.operator.writes.sent_fenced.lock().unwrap().len()
    );
    println!("figure chaos_invariant_violations {}", violations.len());
    println!("chaos seed {seed} (replay: CHAOS_SEED={seed} CHAOS_STEPS={steps})");
    assert!(
        violations.is_empty(),
        "{} invariant violations with seed {seed}",
        violations.len()
    );
}

/// The least the run must end with, Ready, so it cannot pass on an empty world: the anchors
/// (created first, never deleted by the schedule) guarantee each of these.
const READY_MINIMUMS: [(&str, usize); 6] = [
    ("repository", 2),
    ("repository_adopted", 1),
    ("lifecyclepolicy", 1),
    ("replicationconfig", 1),
    ("scanpolicy", 1),
    ("pullthroughcacherule", 1),
];

fn ready_minimums(ready: &BTreeMap<&'static str, usize>) -> Vec<String> {
    READY_MINIMUMS
        .iter()
        .filter(|(kind, min)| ready.get(kind).copied().unwrap_or(0) < *min)
        .map(|(kind, min)| {
            format!(
                "only {} {kind} Ready at the end; the run must end with at least {min}",
                ready.get(kind).copied().unwrap_or(0)
            )
        })
        .collect()
}

impl Chaos {
    fn server(&self) -> Option<&apiserver_double::ApiServer> {
        self.env.kube.server()
    }

    /// Creates the repositories nobody in the cluster owns (never to be touched) and those
    /// seeded for adoption, with settings to notice any change.
    async fn seed_unowned(&mut self) {
        self.anchor_adoption().await;
        for name in UNOWNED {
            match self.seed(name).await {
                Some(snap) => self.record.unowned.insert(name.to_string(), snap),
                // After a moto restart the operator may have created it first, for an object
                // that targets this name: then it is the operator's, legitimately.
                None => self.record.unowned.remove(name),
            };
        }
        for name in ADOPTABLE {
            self.seed_adoptable(name).await;
        }
    }

    /// Seeds the anchor adopter's repository. After a moto restart the operator may have
    /// created it again first (for the anchor, which it then owns as Created): then a new
    /// anchor adopts a new repository, so the run keeps something adopted.
    async fn anchor_adoption(&mut self) {
        let name = self.anchor_adopt.clone();
        let seeded = self.seed(&name).await;
        self.record.note(format!(
            "seed anchor adoptable {name} -> {}",
            seeded.is_some()
        ));
        if let Some(snap) = seeded {
            self.record.adoptable.insert(name, snap);
            return;
        }
        self.anchor_adopters += 1;
        let name = format!("{ANCHOR_ADOPT}-{}", self.anchor_adopters);
        let snap = self
            .seed(&name)
            .await
            .unwrap_or_else(|| panic!("{name} existed before it was seeded"));
        self.record.adoptable.insert(name.clone(), snap);
        self.create_anchor_adopter(&name).await;
        self.anchor_adopt = name;
    }

    async fn create_anchor_adopter(&mut self, name: &str) {
        let ns = NAMESPACES[0];
        let spec = json!({"imageTagMutability": "MUTABLE", "scanOnPush": false, "deletionPolicy": "Retain", "adopt": true});
        retrying("creating the anchor adopter", || async {
            dynamic_api::<Repository>(&self.client, Some(ns))
                .create(
                    &PostParams::default(),
                    &object("Repository", name, spec.clone()),
                )
                .await
                .ok()
        })
        .await;
        self.record
            .note(format!("create anchor Repository {ns}/{name} {spec}"));
        self.record.last_retain.insert(
            format!("{}/{ns}/{name}", self.operator.config.cluster_id),
            true,
        );
    }

    /// Seeds `name` for adoption unless it exists (adopted, or created by an adopter after a
    /// moto restart or its deletion: then it is the operator's).
    async fn seed_adoptable(&mut self, name: &str) {
        let seeded = self.seed(name).await;
        self.record
            .note(format!("seed adoptable {name} -> {}", seeded.is_some()));
        if let Some(snap) = seeded {
            self.record.adoptable.insert(name.to_string(), snap);
        }
    }

    /// Creates an unowned repository as a team outside the cluster would; its state, or None
    /// when it already exists. ECR faults may be active: each call is retried until it goes
    /// through.
    async fn seed(&self, name: &str) -> Option<Snapshot> {
        let ecr = self.env.ecr();
        let created = retrying("seeding a repository", || async {
            match ecr
                .create_repository()
                .repository_name(name)
                .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
                .image_scanning_configuration(
                    aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .tags(
                    aws_sdk_ecr::types::Tag::builder()
                        .key("team")
                        .value("legacy")
                        .build()
                        .unwrap(),
                )
                .send()
                .await
            {
                Ok(_) => Some(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_repository_already_exists_exception()) =>
                {
                    Some(false)
                }
                Err(_) => None,
            }
        })
        .await;
        if !created {
            return None;
        }
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Legacy", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "ecr:BatchGetImage"}]}).to_string();
        retrying("seeding a repository policy", || async {
            ecr.set_repository_policy()
                .repository_name(name)
                .policy_text(&policy)
                .send()
                .await
                .ok()
        })
        .await;
        // What was seeded (an adopter may already be changing it, which is its right).
        Some(Snapshot {
            tag_mutability: "IMMUTABLE".to_string(),
            scan_on_push: true,
            tags: BTreeMap::from([("team".to_string(), "legacy".to_string())]),
            policy: serde_json::from_str(&policy).ok(),
            lifecycle: None,
        })
    }

    /// One valid object of each kind, oldest of all (so they win every merge and conflict),
    /// never changed or deleted by the schedule: the run always has something to end Ready.
    async fn create_anchors(&mut self) {
        let ns = NAMESPACES[0];
        let anchors = [
            (
                dynamic_api::<Repository>(&self.client, Some(ns)),
                "Repository",
                ANCHOR,
                json!({"imageTagMutability": "MUTABLE", "deletionPolicy": "Retain", "tags": {"k0": "anchor"}}),
            ),
            (
                dynamic_api::<LifecyclePolicy>(&self.client, Some(ns)),
                "LifecyclePolicy",
                ANCHOR,
                json!({"repositoryRef": {"name": ANCHOR}, "rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}}]}),
            ),
            (
                dynamic_api::<ReplicationConfig>(&self.client, None),
                "ReplicationConfig",
                ANCHOR,
                json!({"rules": [{"destinations": [{"region": "eu-west-1", "registryId": "123456789012"}]}]}),
            ),
            (
                dynamic_api::<ScanPolicy>(&self.client, None),
                "ScanPolicy",
                ANCHOR,
                json!({"scanType": "BASIC", "rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "*"}]}], "enforcement": {"mode": "warn", "severityThreshold": "CRITICAL"}}),
            ),
            (
                dynamic_api::<PullThroughCacheRule>(&self.client, None),
                "PullThroughCacheRule",
                ANCHOR,
                json!({"ecrRepositoryPrefix": ANCHOR, "upstreamRegistryUrl": "registry.k8s.io"}),
            ),
        ];
        for (api, kind, name, spec) in anchors {
            api.create(&PostParams::default(), &object(kind, name, spec.clone()))
                .await
                .unwrap_or_else(|e| panic!("creating the anchor {kind} {name}: {e}"));
            self.record
                .note(format!("create anchor {kind} {name} {spec}"));
        }
        self.record.last_retain.insert(
            format!("{}/{ns}/{ANCHOR}", self.operator.config.cluster_id),
            true,
        );
        let name = self.anchor_adopt.clone();
        self.create_anchor_adopter(&name).await;
    }

    async fn step(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            0..=29 => self.repository_op().await,
            30..=39 => self.lifecycle_op().await,
            40..=45 => self.replication_op().await,
            46..=51 => self.scan_op().await,
            52..=57 => self.ptc_op().await,
            58..=63 => self.invalid_op().await,
            64..=67 => self.push_image().await,
            68 | 69 => {
                // Adopters with Delete take their repositories with them: seed them again.
                let name = *self.rng.pick(&ADOPTABLE);
                self.seed_adoptable(name).await;
            }
            _ => self.fault().await,
        }
    }

    async fn repository_op(&mut self) {
        let ns = *self.rng.pick(&NAMESPACES);
        let name = *self.rng.pick(&REPO_NAMES);
        let api = dynamic_api::<Repository>(&self.client, Some(ns));
        let typed: Api<Repository> = Api::namespaced(self.client.clone(), ns);
        match self.rng.below(10) {
            0..=3 => {
                let spec = repository_spec(&mut self.rng, name);
                let obj = object("Repository", name, spec.clone());
                let created = api.create(&PostParams::default(), &obj).await.is_ok();
                self.record
                    .note(format!("create Repository {ns}/{name} {spec} -> {created}"));
                if created {
                    // This object owns what it retained before, and may change it now.
                    let owner = format!("{}/{ns}/{name}", self.operator.config.cluster_id);
                    self.record
                        .last_retain
                        .insert(owner.clone(), spec["deletionPolicy"] == "Retain");
                    self.record.retained.retain(|_, o| *o != owner);
                    if ADOPTABLE.contains(&name) && spec["deletionPolicy"] == "Delete" {
                        self.record.adoptable_deletable.insert(name.to_string());
                    }
                }
            }
            4..=6 => {
                let mut spec = repository_spec(&mut self.rng, name);
                // Immutable fields stay as created.
                if let Ok(Some(cur)) = typed.get_opt(name).await {
                    spec["repositoryName"] = json!(cur.spec.repository_name);
                    if let Some(e) = cur.spec.encryption {
                        spec["encryption"] = json!(e);
                    }
                }
                let ok = api
                    .patch(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": spec.clone()})),
                    )
                    .await
                    .is_ok();
                self.record
                    .note(format!("patch Repository {ns}/{name} {spec} -> {ok}"));
                if ok {
                    let owner = format!("{}/{ns}/{name}", self.operator.config.cluster_id);
                    let retain = spec["deletionPolicy"] == "Retain";
                    self.record.last_retain.insert(owner.clone(), retain);
                    if ADOPTABLE.contains(&name) && !retain {
                        self.record.adoptable_deletable.insert(name.to_string());
                    }
                    if !retain {
                        // Patched to Delete while its deletion is still pending: the operator
                        // deletes by the spec it sees then, so what it retained may go.
                        self.record.retained.retain(|_, o| *o != owner);
                    }
                }
            }
            _ => {
                let current = typed.get_opt(name).await.ok().flatten();
                self.record.note(format!(
                    "delete Repository {ns}/{name} (exists: {})",
                    current.is_some()
                ));
                if let Some(cur) = current
                    && cur.metadata.deletion_timestamp.is_none()
                    && api.delete(name, &DeleteParams::default()).await.is_ok()
                    && cur.spec.deletion_policy
                        == ecr_operator::api::repository::DeletionPolicy::Retain
                    && cur
                        .status
                        .as_ref()
                        .and_then(|s| s.repository_arn.as_ref())
                        .is_some()
                    && cur.status.as_ref().and_then(|s| s.ownership).is_some()
                {
                    let owner = format!("{}/{ns}/{name}", self.operator.config.cluster_id);
                    self.record.retained.insert(cur.ecr_name(), owner);
                }
            }
        }
    }

    async fn lifecycle_op(&mut self) {
        let ns = *self.rng.pick(&NAMESPACES);
        let name = *self.rng.pick(&LCP_NAMES);
        let api = dynamic_api::<LifecyclePolicy>(&self.client, Some(ns));
        let spec = lifecycle_spec(&mut self.rng);
        self.crud(api, "LifecyclePolicy", &format!("{ns}/{name}"), spec)
            .await;
    }

    async fn replication_op(&mut self) {
        let name = *self.rng.pick(&RC_NAMES);
        let api = dynamic_api::<ReplicationConfig>(&self.client, None);
        let spec = replication_spec(&mut self.rng);
        self.crud(api, "ReplicationConfig", name, spec).await;
    }

    async fn scan_op(&mut self) {
        let name = *self.rng.pick(&SP_NAMES);
        let api = dynamic_api::<ScanPolicy>(&self.client, None);
        let spec = scan_spec(&mut self.rng);
        self.crud(api, "ScanPolicy", name, spec).await;
    }

    async fn ptc_op(&mut self) {
        let (name, prefix, url) = *self.rng.pick(&PTC);
        let api = dynamic_api::<PullThroughCacheRule>(&self.client, None);
        let spec = json!({"ecrRepositoryPrefix": prefix, "upstreamRegistryUrl": url});
        self.crud(api, "PullThroughCacheRule", name, spec).await;
    }

    /// Create (or, when it exists, change) or delete; API errors (conflicts, a stopped
    /// server) are part of the chaos and ignored.
    async fn crud(&mut self, api: Api<DynamicObject>, kind: &str, key: &str, spec: Value) {
        let name = key.rsplit('/').next().unwrap_or(key);
        let what = if self.rng.chance(0.3) {
            let ok = api.delete(name, &DeleteParams::default()).await.is_ok();
            format!("delete {kind} {key} -> {ok}")
        } else if api
            .create(&PostParams::default(), &object(kind, name, spec.clone()))
            .await
            .is_err()
        {
            let ok = api
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": spec.clone()})),
                )
                .await
                .is_ok();
            format!("patch {kind} {key} {spec} -> {ok}")
        } else {
            format!("create {kind} {key} {spec}")
        };
        self.record.note(what);
    }

    async fn invalid_op(&mut self) {
        let yaml = format!("{GROUP}\n{}", self.rng.pick(&INVALID));
        let obj: DynamicObject = serde_yaml::from_str(&yaml).unwrap();
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        let api = match kind.as_str() {
            "Repository" => dynamic_api::<Repository>(&self.client, Some(NAMESPACES[0])),
            "LifecyclePolicy" => dynamic_api::<LifecyclePolicy>(&self.client, Some(NAMESPACES[0])),
            "ReplicationConfig" => dynamic_api::<ReplicationConfig>(&self.client, None),
            "PullThroughCacheRule" => dynamic_api::<PullThroughCacheRule>(&self.client, None),
            "ScanPolicy" => dynamic_api::<ScanPolicy>(&self.client, None),
            _ => dynamic_api::<ImageScanReport>(&self.client, None),
        };
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {
                self.record.accepted_invalid.push(yaml);
                let _ = api.delete("bad", &DeleteParams::default()).await;
            }
            Err(kube::Error::Api(s)) if s.code == 422 => {}
            // The server may be restarting: not a verdict on the object.
            Err(_) => {}
        }
    }

    async fn push_image(&mut self) {
        let object = *self.rng.pick(MANAGED_REPOS);
        let name = ecr_name(object);
        let tag = format!(
            "{}{}",
            self.rng.pick(&["v", "rel", "dev"]),
            self.rng.below(1000)
        );
        let ok = testbed::images::push_image(&self.env.ecr(), &name, &tag)
            .await
            .is_ok();
        self.record.note(format!("push {name}:{tag} -> {ok}"));
    }

    async fn fault(&mut self) {
        let moto = &self.env.moto;
        match self.rng.below(13) {
            0 | 1 => {
                let n = self.rng.range(3, 15) as u32;
                let _ = moto
                    .inject("*", FaultKind::Throttle, FaultScope::Next(n))
                    .await;
                self.record.fault("throttle");
            }
            2 | 3 => {
                let n = self.rng.range(2, 10) as u32;
                let _ = moto
                    .inject("*", FaultKind::ServerError, FaultScope::Next(n))
                    .await;
                self.record.fault("server_error");
            }
            4 => {
                let n = self.rng.range(2, 6) as u32;
                let code = "ServiceUnavailableException".to_string();
                let _ = moto
                    .inject(
                        "*",
                        FaultKind::Error {
                            code,
                            http_status: 503,
                        },
                        FaultScope::Next(n),
                    )
                    .await;
                self.record.fault("unavailable_503");
            }
            5 => {
                let ms = self.rng.range(100, 1000);
                let n = self.rng.range(2, 8) as u32;
                let _ = moto
                    .inject(
                        "*",
                        FaultKind::Latency(Duration::from_millis(ms)),
                        FaultScope::Next(n),
                    )
                    .await;
                self.record.fault("slow");
            }
            6 => {
                // Longer than the attempt timeout: the SDK abandons the attempt and retries.
                let n = self.rng.range(1, 3) as u32;
                let _ = moto
                    .inject(
                        "*",
                        FaultKind::Latency(Duration::from_millis(TIMEOUT_LATENCY_MS)),
                        FaultScope::Next(n),
                    )
                    .await;
                self.record.fault("timeout");
            }
            7 => {
                if self.rng.chance(0.5) {
                    // ECR state is lost: nothing from before can be expected to remain.
                    self.record.retained.clear();
                    self.record.adoptable.clear();
                    self.bank_served_faults().await;
                    let calls: u64 = self
                        .env
                        .moto
                        .calls()
                        .await
                        .map(|c| c.values().sum())
                        .unwrap_or(0);
                    self.record.fault("moto_restart");
                    if self.env.moto.restart().await.is_ok() {
                        // It served calls and lost what they made.
                        self.record.landed("moto_restart", u64::from(calls > 0));
                        self.seed_unowned().await;
                    }
                } else {
                    let r = self.rng.below(2) as usize;
                    let ran = self.operator.kill(r);
                    self.operator.start(r);
                    self.record.fault("operator_restart");
                    self.record
                        .note(format!("restarted {} (was running: {ran})", REPLICAS[r]));
                    self.record.landed("operator_restart", u64::from(ran));
                }
            }
            8 => {
                let down = self.rng.range(50, 800);
                if let Some(s) = self.server() {
                    let before = s.faults_landed().connections_cut;
                    s.stop().await;
                    let cut = s.faults_landed().connections_cut - before;
                    tokio::time::sleep(Duration::from_millis(down)).await;
                    s.restart().await.unwrap();
                    self.record.fault("apiserver_restart");
                    self.record
                        .note(format!("API server down {down} ms, {cut} connections cut"));
                    self.record.landed("apiserver_restart", u64::from(cut > 0));
                }
            }
            9 => {
                if let Some(s) = self.server() {
                    // Again while no watch was open to drop (they reopen after a restart).
                    let mut hit = false;
                    for _ in 0..3 {
                        let before = s.faults_landed().dropped_watches;
                        s.drop_watches();
                        hit = landed_soon(|| s.faults_landed().dropped_watches > before).await;
                        if hit {
                            break;
                        }
                    }
                    self.record.fault("dropped_watches");
                    self.record.landed("dropped_watches", u64::from(hit));
                }
            }
            10 => {
                if let Some(s) = self.server() {
                    // The dropped watchers resume from a compacted version: 410, then re-list.
                    // None does when each had seen the latest version: then again, later.
                    let mut hit = false;
                    for _ in 0..3 {
                        let before = s.faults_landed().gone_sent;
                        s.expire_watches();
                        hit = landed_soon(|| s.faults_landed().gone_sent > before).await;
                        if hit {
                            break;
                        }
                    }
                    self.record.fault("watch_410_gone");
                    self.record.landed("watch_410_gone", u64::from(hit));
                }
            }
            11 => {
                // Killed mid-reconcile: right after a change, while ECR answers slowly.
                let _ = moto
                    .inject(
                        "*",
                        FaultKind::Latency(Duration::from_millis(KILL_LATENCY_MS)),
                        FaultScope::Next(3),
                    )
                    .await;
                self.repository_op().await;
                let after = self.rng.below(300);
                tokio::time::sleep(Duration::from_millis(after)).await;
                // The leader: the replica that is reconciling.
                let leader = self.operator.leader();
                let r = leader.unwrap_or_else(|| self.rng.below(2) as usize);
                self.operator.kill(r);
                self.operator.start(r);
                self.record.fault("operator_kill_mid_reconcile");
                self.record.note(format!(
                    "killed {} mid-reconcile (leader: {})",
                    REPLICAS[r],
                    leader.is_some()
                ));
                self.record
                    .landed("operator_kill_mid_reconcile", u64::from(leader.is_some()));
            }
            _ => self.partition(),
        }
    }

    /// Cuts the leader off from the API server (its own connections only; ECR it still reaches)
    /// for longer than the lease, then restores it: its fence must shut at its renew deadline,
    /// before the other replica may lead, and it must write nothing to ECR meanwhile.
    fn partition(&mut self) {
        let Some(r) = self.operator.leader() else {
            self.record.note("no leader to cut off".to_string());
            return;
        };
        if self.operator.replicas[r].cut.swap(true, Ordering::SeqCst) {
            // Still leading for its last moments before its renew deadline.
            self.record
                .note(format!("the leader {} is cut off already", REPLICAS[r]));
            return;
        }
        let lease_ms = LEASE.as_millis() as u64;
        let down = Duration::from_millis(self.rng.range(lease_ms + 500, lease_ms + 3000));
        let replica = self.operator.replicas[r].clone();
        let other = self.operator.replicas[1 - r].clone();
        let started = self.operator.started;
        replica.proxy.cut();
        let cut_at = started.elapsed().as_secs_f64();
        self.record.fault("partition");
        self.record.note(format!(
            "cut {} off the API server for {down:?}",
            REPLICAS[r]
        ));
        self.partitions.push(tokio::spawn(async move {
            tokio::time::sleep(down).await;
            let fenced = !replica.fence_open();
            let taken_over = other.leading();
            replica.proxy.restore();
            replica.cut.store(false, Ordering::SeqCst);
            PartitionOutcome {
                replica: r,
                cut_at,
                restored_at: started.elapsed().as_secs_f64(),
                fenced,
                taken_over,
            }
        }));
    }

    /// Ends every partition (each when its time is up) and records what it did.
    async fn end_partitions(&mut self) {
        for p in std::mem::take(&mut self.partitions) {
            let Ok(p) = p.await else { continue };
            self.record.note(format!(
                "partition of {} from {:.3}s restored at {:.3}s: fenced {}, taken over {}",
                REPLICAS[p.replica], p.cut_at, p.restored_at, p.fenced, p.taken_over
            ));
            self.record.landed("partition", u64::from(p.fenced));
            if !p.fenced {
                self.record.fence_violations.push(format!(
                    "{} led when it was cut off the API server at {:.3}s, and its fence was still open when the partition ended at {:.3}s (renew deadline {RENEW_DEADLINE:?})",
                    REPLICAS[p.replica], p.cut_at, p.restored_at
                ));
            }
            if p.taken_over {
                self.record.landed("partition_takeover", 1);
            }
        }
    }

    /// Adds what moto served so far to the run's count (before a restart resets moto's).
    async fn bank_served_faults(&mut self) {
        if let Ok(served) = self.env.moto.faults_served().await {
            for by_label in served.values() {
                for (label, n) in by_label {
                    *self
                        .record
                        .served_before_restarts
                        .entry(label.clone())
                        .or_default() += n;
                }
            }
        }
    }

    /// Stops faults, waits until the invariants hold (or the deadline), then checks that the
    /// repositories nobody may touch stay untouched across further sweeps.
    async fn settle_and_check(&mut self) -> Vec<String> {
        if let Some(s) = self.server()
            && !s.is_running()
        {
            s.restart().await.unwrap();
        }
        testbed::wait::until("faults cleared", Duration::from_secs(30), || async {
            self.env.moto.clear_faults().await.ok()
        })
        .await
        .unwrap();
        // Partitions end (each when its time is up), and both replicas run.
        self.end_partitions().await;
        self.operator.start_all();
        let settle_started = Instant::now();
        let mut violations = Vec::new();
        while settle_started.elapsed() < SETTLE {
            violations = self.check().await;
            // Done when all hold, or when all that fail never heal (waiting proves nothing).
            if violations.iter().all(|v| {
                v.ends_with("panics (see the log)")
                    || v.starts_with("the API server accepted an invalid object")
            }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("chaos settled in {:?}", settle_started.elapsed());
        if !violations.is_empty() {
            return violations;
        }
        // Retained repositories: as they are now, and still so after several sweeps.
        let mut before = BTreeMap::new();
        for name in self.record.retained.keys() {
            before.insert(name.clone(), snapshot(&self.checker, name).await);
        }
        let wait = self.operator.config.deep_sweep_interval * 3;
        tokio::time::sleep(wait).await;
        for (name, was) in before {
            let now = snapshot(&self.checker, &name).await;
            if now != was {
                violations.push(format!(
                    "retained repository {name} changed after its object was deleted: {was:?} -> {now:?}"
                ));
            }
        }
        violations.extend(self.check().await);
        violations
    }

    /// Proves the checker is not blind: with the operator stopped, one Ready repository is
    /// changed behind its back and the check must say so; started again, the operator must
    /// correct the drift until the check is clean.
    async fn self_test(&mut self) {
        let repos = Api::<Repository>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let Some(target) = repos.iter().find(|r| is_ready(*r)) else {
            println!("chaos self-test skipped: no Ready repository");
            return;
        };
        let name = target.ecr_name();
        self.operator.kill_all();
        let flipped = match target.spec.image_tag_mutability.as_ecr() {
            "MUTABLE" => aws_sdk_ecr::types::ImageTagMutability::Immutable,
            _ => aws_sdk_ecr::types::ImageTagMutability::Mutable,
        };
        self.env
            .ecr()
            .put_image_tag_mutability()
            .repository_name(&name)
            .image_tag_mutability(flipped)
            .send()
            .await
            .unwrap();
        let seen = self.check().await;
        assert!(
            seen.iter()
                .any(|v| v.contains(&name) && v.contains("tag mutability")),
            "the checker missed a changed repository {name}: {seen:?}"
        );
        // The never-touched and the unadopted adoptable repositories: a change to either is
        // seen too (then undone: the operator must not, it may not touch them).
        let mut unowned: Vec<String> = self.record.unowned.keys().take(1).cloned().collect();
        for name in self.record.adoptable.keys() {
            if let Ok(Some(s)) = snapshot(&self.checker, name).await
                && !s.tags.contains_key(OWNER_TAG)
            {
                unowned.push(name.clone());
                break;
            }
        }
        for other in &unowned {
            let Ok(Some(info)) = self.checker.describe_repository(other).await else {
                continue;
            };
            let ecr = self.env.ecr();
            let tag = aws_sdk_ecr::types::Tag::builder()
                .key("chaos-self-test")
                .value("1")
                .build()
                .unwrap();
            ecr.tag_resource()
                .resource_arn(&info.arn)
                .tags(tag)
                .send()
                .await
                .unwrap();
            let seen = self.check().await;
            assert!(
                seen.iter()
                    .any(|v| v.contains(other.as_str()) && v.contains("modified")),
                "the checker missed a change to the unowned repository {other}: {seen:?}"
            );
            ecr.untag_resource()
                .resource_arn(&info.arn)
                .tag_keys("chaos-self-test")
                .send()
                .await
                .unwrap();
        }
        self.operator.start_all();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut left = seen;
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            left = self.check().await;
        }
        assert!(left.is_empty(), "drift on {name} not corrected: {left:?}");
        println!(
            "chaos self-test: drift on {name} detected, then corrected; changes to unowned {unowned:?} detected"
        );
    }

    /// How many objects of each kind exist and are Ready, and what ECR holds: proof that the
    /// invariants were checked against something.
    async fn summary(&self) -> String {
        async fn count<K: Reported>(client: &kube::Client) -> String {
            let items = Api::<K>::all(client.clone())
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let ready = items.iter().filter(|o| is_ready(*o)).count();
            format!("{} {ready}/{} Ready", K::KIND, items.len())
        }
        let repos = self
            .checker
            .list_repositories()
            .await
            .map(|l| l.len())
            .unwrap_or(0);
        let reports = Api::<ImageScanReport>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        [
            count::<Repository>(&self.client).await,
            count::<LifecyclePolicy>(&self.client).await,
            count::<ReplicationConfig>(&self.client).await,
            count::<ScanPolicy>(&self.client).await,
            count::<PullThroughCacheRule>(&self.client).await,
            format!("ImageScanReport {reports}"),
            format!(
                "ECR repositories {repos} ({} unowned, {} retained)",
                self.record.unowned.len(),
                self.record.retained.len()
            ),
        ]
        .join(", ")
    }

    /// Objects Ready now, by kind (not counting those being deleted); adopted Repositories
    /// also on their own; ImageScanReports (which have no Ready condition) as they exist.
    async fn ready_counts(&self) -> BTreeMap<&'static str, usize> {
        async fn ready<K: Reported>(client: &kube::Client) -> Vec<K> {
            Api::<K>::all(client.clone())
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .into_iter()
                .filter(|o| is_ready(o) && o.meta().deletion_timestamp.is_none())
                .collect()
        }
        let repos = ready::<Repository>(&self.client).await;
        let adopted = repos
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.ownership) == Some(Ownership::Adopted))
            .count();
        let reports = Api::<ImageScanReport>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        BTreeMap::from([
            ("repository", repos.len()),
            ("repository_adopted", adopted),
            (
                "lifecyclepolicy",
                ready::<LifecyclePolicy>(&self.client).await.len(),
            ),
            (
                "replicationconfig",
                ready::<ReplicationConfig>(&self.client).await.len(),
            ),
            ("scanpolicy", ready::<ScanPolicy>(&self.client).await.len()),
            (
                "pullthroughcacherule",
                ready::<PullThroughCacheRule>(&self.client).await.len(),
            ),
            ("imagescanreport", reports),
        ])
    }

    /// Counts what each kind of fault hit and returns a violation for every kind injected that
    /// never hit anything: such a fault proves nothing.
    async fn faults_landed(&mut self) -> Vec<String> {
        let mut served = std::mem::take(&mut self.record.served_before_restarts);
        match self.env.moto.faults_served().await {
            Ok(now) => {
                for by_label in now.values() {
                    for (label, n) in by_label {
                        *served.entry(label.clone()).or_default() += n;
                    }
                }
            }
            Err(e) => return vec![format!("reading the faults moto served: {e}")],
        }
        println!("chaos ECR faults served by moto (calls): {served:?}");
        for (label, n) in &served {
            let kind = match label.as_str() {
                "throttle:ThrottlingException" => "throttle",
                "server_error:ServerException" => "server_error",
                "server_error:ServiceUnavailableException" => "unavailable_503",
                l => match l
                    .strip_prefix("latency:")
                    .and_then(|ms| ms.strip_suffix("ms"))
                    .and_then(|ms| ms.parse::<u64>().ok())
                {
                    Some(TIMEOUT_LATENCY_MS) => "timeout",
                    // The slowdown before a kill mid-reconcile: its landing is the kill's.
                    Some(KILL_LATENCY_MS) => "slow_before_kill",
                    Some(ms) if ms <= 1000 => "slow",
                    _ => "unknown",
                },
            };
            self.record.landed(kind, *n);
        }
        if let Some(s) = self.server() {
            let (now, then) = (s.faults_landed(), self.record.double_landed_at_start);
            println!(
                "chaos API server double: {} watches dropped, {} 410 Gone sent, {} connections cut",
                now.dropped_watches - then.dropped_watches,
                now.gone_sent - then.gone_sent,
                now.connections_cut - then.connections_cut
            );
        }
        let r = &self.record;
        r.faults
            .iter()
            .filter(|(kind, _)| r.landed.get(*kind).copied().unwrap_or(0) == 0)
            .map(|(kind, n)| {
                format!("fault {kind} was injected {n} times and never landed: it proved nothing")
            })
            .collect()
    }

    /// Leadership: the two replicas' fences were never open at once, no replica sent an ECR
    /// write while its fence was shut, and each cut-off leader's fence was shut by the time
    /// its partition ended.
    fn leadership_holds(&self) -> Vec<String> {
        let mut timeline = self.operator.timeline.lock().unwrap();
        timeline.close(Instant::now());
        let mut v = timeline.overlaps(self.operator.started);
        v.extend(
            self.operator
                .writes
                .sent_fenced
                .lock()
                .unwrap()
                .iter()
                .map(|(sent, answer)| match answer {
                    Some(status) => format!("{sent}; ECR answered {status}"),
                    None => format!("{sent}; no answer"),
                }),
        );
        v.extend(self.record.fence_violations.iter().cloned());
        let edge = self.operator.writes.sent_at_the_edge.load(Ordering::SeqCst);
        if edge > 0 {
            println!(
                "chaos: {edge} ECR writes sent within {FENCE_GRACE:?} of their replica's fence shutting"
            );
        }
        v
    }

    /// Every invariant, as it holds now. Empty when all hold.
    async fn check(&self) -> Vec<String> {
        let mut v = Vec::new();
        if PANICS.load(Ordering::SeqCst) > 0 {
            v.push(format!(
                "{} panics (see the log)",
                PANICS.load(Ordering::SeqCst)
            ));
        }
        for yaml in &self.record.accepted_invalid {
            v.push(format!("the API server accepted an invalid object: {yaml}"));
        }
        let lp = ListParams::default();
        macro_rules! list {
            ($k:ty) => {
                match Api::<$k>::all(self.client.clone()).list(&lp).await {
                    Ok(l) => l.items,
                    Err(e) => return vec![format!("listing {}: {e}", <$k>::kind(&()))],
                }
            };
        }
        let repos: Vec<Repository> = list!(Repository);
        let lcps: Vec<LifecyclePolicy> = list!(LifecyclePolicy);
        let rcs: Vec<ReplicationConfig> = list!(ReplicationConfig);
        let sps: Vec<ScanPolicy> = list!(ScanPolicy);
        let ptcs: Vec<PullThroughCacheRule> = list!(PullThroughCacheRule);
        let reports: Vec<ImageScanReport> = list!(ImageScanReport);

        // Every object has settled and says why when it is not Ready.
        conditions_hold(&repos, &mut v);
        conditions_hold(&lcps, &mut v);
        conditions_hold(&rcs, &mut v);
        conditions_hold(&sps, &mut v);
        conditions_hold(&ptcs, &mut v);

        let reg = &self.checker;
        let ecr_repos = match reg.list_repositories().await {
            Ok(l) => l,
            Err(e) => return vec![format!("DescribeRepositories: {e}")],
        };
        let cluster = &self.operator.config.cluster_id;
        let live_owners: BTreeSet<String> = repos
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .map(|r| {
                format!(
                    "{cluster}/{}/{}",
                    r.namespace().unwrap_or_default(),
                    r.name_any()
                )
            })
            .collect();
        let mut snaps = BTreeMap::new();
        for info in &ecr_repos {
            match snapshot(reg, &info.name).await {
                Ok(Some(s)) => {
                    snaps.insert(info.name.clone(), s);
                }
                Ok(None) => {}
                Err(e) => return vec![format!("reading {}: {e}", info.name)],
            }
        }

        // Unowned repositories: untouched. Retained ones: still there.
        for (name, want) in &self.record.unowned {
            match snaps.get(name) {
                None => v.push(format!("unowned repository {name} was deleted")),
                Some(have) if have != want => v.push(format!(
                    "unowned repository {name} was modified: {want:?} -> {have:?}"
                )),
                Some(_) => {}
            }
        }
        // Adoptable repositories: unowned ones as seeded; gone only where an adopter had
        // deletionPolicy Delete.
        for (name, want) in &self.record.adoptable {
            match snaps.get(name) {
                None if self.record.adoptable_deletable.contains(name) => {}
                None => v.push(format!(
                    "adoptable repository {name} was deleted, though no adopter of it had deletionPolicy Delete"
                )),
                Some(have) if !have.tags.contains_key(OWNER_TAG) && have != want => v.push(format!(
                    "adoptable repository {name} was modified without being adopted: {want:?} -> {have:?}"
                )),
                Some(_) => {}
            }
        }
        for name in self.record.retained.keys() {
            if !snaps.contains_key(name) {
                v.push(format!(
                    "repository {name} (deletionPolicy Retain) was deleted"
                ));
            }
        }
        // No orphans: every repository is unowned-and-seeded, retained, or owned by a live object.
        for (name, snap) in &snaps {
            match snap.tags.get(OWNER_TAG) {
                None if self.record.unowned.contains_key(name)
                    || self.record.adoptable.contains_key(name) => {}
                None => v.push(format!(
                    "repository {name} has no owner and nobody seeded it"
                )),
                Some(o) if live_owners.contains(o) => {}
                Some(o) if self.record.retained.get(name) == Some(o) => {}
                // Deleted after its policy was changed to Retain (also mid-deletion): kept.
                Some(o) if self.record.last_retain.get(o) == Some(&true) => {}
                Some(o) => v.push(format!(
                    "orphaned repository {name}: owner {o} no longer exists and did not retain it"
                )),
            }
        }

        // Ready Repositories match ECR exactly; no two claim one repository.
        let mut claimed: BTreeMap<String, String> = BTreeMap::new();
        for r in repos.iter().filter(|r| is_ready(*r)) {
            let key = format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any());
            let name = r.ecr_name();
            if let Some(other) = claimed.insert(name.clone(), key.clone()) {
                v.push(format!(
                    "duplicate: {other} and {key} are both Ready for ECR repository {name}"
                ));
            }
            let Some(have) = snaps.get(&name) else {
                v.push(format!("{key} is Ready but ECR has no repository {name}"));
                continue;
            };
            let info = ecr_repos.iter().find(|i| i.name == name);
            let owner = format!("{cluster}/{key}");
            let mut problems = Vec::new();
            // An adopter manages the tags it sets and its own policy: what the repository held
            // before, as seeded, may stay.
            let seeded = self.record.adoptable.get(&name).filter(|_| {
                r.status.as_ref().and_then(|s| s.ownership) == Some(Ownership::Adopted)
            });
            if have.tag_mutability != r.spec.image_tag_mutability.as_ecr() {
                problems.push(format!("tag mutability {}", have.tag_mutability));
            }
            if have.scan_on_push != r.spec.scan_on_push {
                problems.push(format!("scanOnPush {}", have.scan_on_push));
            }
            if let (Some(e), Some(i)) = (&r.spec.encryption, info)
                && i.encryption_type != e.encryption_type.as_ecr()
            {
                problems.push(format!("encryption {}", i.encryption_type));
            }
            if have.tags.get(OWNER_TAG) != Some(&owner) {
                problems.push(format!("owner tag {:?}", have.tags.get(OWNER_TAG)));
            }
            for (k, val) in &r.spec.tags {
                if have.tags.get(k) != Some(val) {
                    problems.push(format!("tag {k}={:?}", have.tags.get(k)));
                }
            }
            for (k, val) in &have.tags {
                let kept = seeded.is_some_and(|s| s.tags.get(k) == Some(val));
                if k != OWNER_TAG && !r.spec.tags.contains_key(k) && !kept {
                    problems.push(format!("extra tag {k}"));
                }
            }
            match (&r.spec.policy, &have.policy) {
                (Some(p), Some(h)) if policy::equivalent(h, &policy::render(p)) => {}
                (None, None) => {}
                (None, Some(h)) if seeded.is_some_and(|s| s.policy.as_ref() == Some(h)) => {}
                (want, have) => problems.push(format!(
                    "policy {have:?}, spec {:?}",
                    want.as_ref().map(policy::render)
                )),
            }
            if !problems.is_empty() {
                v.push(format!(
                    "{key} is Ready but ECR {name} differs: {}; generation {:?}, status {:?}",
                    problems.join(", "),
                    r.metadata.generation,
                    r.status
                ));
            }
        }

        // Lifecycle policies: Ready ones are in ECR; ECR holds none that no object asks for.
        let mut wanted_lifecycle: BTreeMap<String, String> = BTreeMap::new();
        for l in &lcps {
            let key = format!("{}/{}", l.namespace().unwrap_or_default(), l.name_any());
            let target = repos.iter().find(|r| {
                r.namespace() == l.namespace() && r.name_any() == l.spec.repository_ref.name
            });
            if let Some(t) = target {
                wanted_lifecycle.insert(t.ecr_name(), key.clone());
            }
            if !is_ready(l) {
                continue;
            }
            let Some(t) = target else {
                v.push(format!(
                    "{key} is Ready but its Repository {} does not exist",
                    l.spec.repository_ref.name
                ));
                continue;
            };
            let want = match lifecycle_policy::render_spec(&l.spec) {
                Ok((_, text)) => serde_json::from_str::<Value>(&text).ok(),
                Err(e) => {
                    v.push(format!("{key} is Ready but its rules do not render: {e}"));
                    continue;
                }
            };
            let have = snaps.get(&t.ecr_name()).and_then(|s| s.lifecycle.clone());
            let same = match (&have, &want) {
                (Some(h), Some(w)) => {
                    ecr_operator::lifecycle::policies_equivalent(&h.to_string(), &w.to_string())
                }
                _ => false,
            };
            if !same {
                v.push(format!(
                    "{key} is Ready but ECR {} holds lifecycle policy {have:?}",
                    t.ecr_name()
                ));
            }
        }
        for (name, snap) in &snaps {
            let ours = snap
                .tags
                .get(OWNER_TAG)
                .is_some_and(|o| live_owners.contains(o));
            if ours && snap.lifecycle.is_some() && !wanted_lifecycle.contains_key(name) {
                v.push(format!(
                    "orphaned lifecycle policy on {name}: no LifecyclePolicy targets it"
                ));
            }
        }

        // Registry-level settings: the merge of the objects, or nothing when there are none.
        singleton_holds::<Replication>(&rcs, reg, &mut v).await;
        singleton_holds::<Scanning>(&sps, reg, &mut v).await;

        // Pull-through cache rules: Ready ones exist as specified; no rule without an object.
        match self
            .env
            .ecr()
            .describe_pull_through_cache_rules()
            .send()
            .await
        {
            Err(e) => v.push(format!("DescribePullThroughCacheRules: {e}")),
            Ok(out) => {
                let rules: BTreeMap<String, String> = out
                    .pull_through_cache_rules()
                    .iter()
                    .map(|r| {
                        (
                            r.ecr_repository_prefix().unwrap_or_default().to_string(),
                            r.upstream_registry_url().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let mut ready_prefixes = BTreeMap::new();
                for p in ptcs.iter().filter(|p| is_ready(*p)) {
                    let prefix = &p.spec.ecr_repository_prefix;
                    if let Some(other) = ready_prefixes.insert(prefix.clone(), p.name_any()) {
                        v.push(format!("duplicate: PullThroughCacheRules {other} and {} both Ready for {prefix}", p.name_any()));
                    }
                    if rules.get(prefix) != Some(&p.spec.upstream_registry_url) {
                        v.push(format!(
                            "PullThroughCacheRule {} is Ready but ECR has {:?}",
                            p.name_any(),
                            rules.get(prefix)
                        ));
                    }
                }
                for prefix in rules.keys() {
                    if !ptcs.iter().any(|p| &p.spec.ecr_repository_prefix == prefix) {
                        v.push(format!("orphaned pull-through cache rule {prefix}"));
                    }
                }
            }
        }

        // Scan reports describe images that exist.
        for report in &reports {
            let s = &report.spec;
            let exists = match reg.list_images(&s.repository_name).await {
                Ok(images) => images.iter().any(|i| i.digest == s.image_digest),
                Err(_) => false,
            };
            if !exists {
                v.push(format!(
                    "ImageScanReport {} describes {}@{}, which ECR does not hold",
                    report.name_any(),
                    s.repository_name,
                    s.image_digest
                ));
            }
        }
        v
    }
}

/// Whether `hit` becomes true within two seconds (a fault's effect on the double runs in its
/// own tasks, and a watcher resumes after its own backoff).
async fn landed_soon(hit: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if hit() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hit()
}

/// `attempt` until it gives an answer (ECR faults end: each is for the next few calls).
async fn retrying<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(t) = attempt().await {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: ECR kept failing");
}

/// An object in the scope of the run's operator.
fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    common::in_scope(
        serde_json::from_value(json!({
            "apiVersion": "ecr.operator.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn is_ready<K: Reported>(obj: &K) -> bool {
    obj.status()
        .is_some_and(|s| conditions::is_ready_at(&K::common(s).conditions, obj.meta().generation))
}

/// Every object was acted on at its generation and has a Ready condition; when not Ready, the
/// condition gives a reason and a message, and the reason is not a transient one (faults have
/// stopped, so a transient error must have cleared).
fn conditions_hold<K: Reported>(objects: &[K], v: &mut Vec<String>) {
    for o in objects {
        let key = format!("{} {}", K::KIND, ecr_operator::controllers::object_key(o));
        let Some(status) = o.status() else {
            v.push(format!("{key} has no status"));
            continue;
        };
        let common = K::common(status);
        let Some(ready) = conditions::find_ready(&common.conditions) else {
            v.push(format!("{key} has no Ready condition"));
            continue;
        };
        if o.meta().deletion_timestamp.is_some() {
            if ready.reason != "RepositoryNotEmpty" {
                v.push(format!(
                    "{key} is still being deleted: {} {}",
                    ready.reason, ready.message
                ));
            }
            continue;
        }
        if common.observed_generation != o.meta().generation {
            v.push(format!(
                "{key} generation {:?} not observed (status at {:?})",
                o.meta().generation,
                common.observed_generation
            ));
            continue;
        }
        if ready.status != "True" {
            if ready.reason.is_empty() || ready.message.is_empty() {
                v.push(format!(
                    "{key} is not Ready and does not say why: {ready:?}"
                ));
            } else if ["TransientError", "Throttled", "Unknown"].contains(&ready.reason.as_str()) {
                v.push(format!(
                    "{key} still failing after faults stopped: {} {}",
                    ready.reason, ready.message
                ));
            }
        }
    }
}

async fn singleton_holds<S>(objects: &[S::Object], reg: &EcrRegistry, v: &mut Vec<String>)
where
    S: Setting,
{
    let mut active: Vec<&S::Object> = objects
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .collect();
    active.sort_by_key(|o| age_key(*o));
    let valid: Vec<&S::Object> = active
        .into_iter()
        .filter(|o| S::validate(o).is_ok())
        .collect();
    let (want, _) = S::merge(&valid);
    let have = match S::read(reg as &dyn Registry).await {
        Ok(d) => d,
        Err(e) => {
            v.push(format!("reading the {}: {e}", S::WHAT));
            return;
        }
    };
    let any_ready = objects.iter().any(is_ready);
    if (any_ready || objects.is_empty())
        && !S::equivalent(&have, &want)
        && !(S::is_empty(&have) && S::is_empty(&want))
    {
        v.push(format!(
            "the {} in ECR is {have:?}; the objects ask for {want:?}",
            S::WHAT
        ));
    }
}

#[test]
fn the_fence_timeline_sees_two_open_fences_at_once() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut t = FenceTimeline::default();
    // a: 0..100, b: 100..200 (handover), a: 300..400 (still open at the close).
    for (ms, a, b) in [
        (0, true, false),
        (100, false, true),
        (200, false, false),
        (300, true, false),
    ] {
        t.observe(0, a, at(ms));
        t.observe(1, b, at(ms));
    }
    t.close(at(400));
    assert_eq!(t.intervals[0], [(at(0), at(100)), (at(300), at(400))]);
    assert!(t.overlaps(t0).is_empty(), "a handover is no overlap");
    t.intervals[1].push((at(350), at(360)));
    assert_eq!(t.overlaps(t0).len(), 1);
}

#[test]
fn an_empty_world_fails_the_minimums() {
    let none = BTreeMap::new();
    assert_eq!(ready_minimums(&none).len(), READY_MINIMUMS.len());
    let enough: BTreeMap<&str, usize> = READY_MINIMUMS.iter().copied().collect();
    assert!(ready_minimums(&enough).is_empty());
}
