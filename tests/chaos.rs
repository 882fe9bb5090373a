//! The chaos run (issue #9): a seeded random schedule that creates, changes and deletes objects of
//! every kind (valid and invalid) while ECR (moto, through the launcher's fault switch) throttles,
//! fails, answers slowly or not in time, and restarts; the API server double restarts, drops
//! watches and answers `410 Gone`; and the operator is killed mid-reconcile and started again.
//! Then faults stop, the system settles, and invariants are checked against moto and the double.
//!
//! `chaos_quick` runs in CI (`CHAOS_STEPS`, default 150). The full size is `chaos_full`
//! (ignored by default; README `## Reliability`):
//! `CHAOS_SEED=7 CHAOS_STEPS=2000 cargo test --test chaos -- --ignored --nocapture chaos_full`.
//! Either prints `figure chaos_steps N`, `figure chaos_faults N`,
//! `figure chaos_invariant_violations N` and the seed to replay it with.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_ecr::config::timeout::TimeoutConfig;
use ecr_operator::api::conditions;
use ecr_operator::api::repository::OWNER_TAG;
use ecr_operator::api::{
    ImageScanReport, LifecyclePolicy, PullThroughCacheRule, ReplicationConfig, Repository,
    ScanPolicy,
};
use ecr_operator::controllers::replication_config::Replication;
use ecr_operator::controllers::scan_policy::Scanning;
use ecr_operator::controllers::singleton::Setting;
use ecr_operator::controllers::status::{Reported, age_key};
use ecr_operator::controllers::{self, Context, lifecycle_policy, policy};
use ecr_operator::registry::{EcrRegistry, Registry};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use testbed::moto::{FaultKind, FaultScope};

const GROUP: &str = "apiVersion: ecr.operator.dev/v1alpha1";
/// How long the system may take to converge once faults stop.
const SETTLE: Duration = Duration::from_secs(180);
/// Per-attempt timeout of the operator's ECR client: `Latency` faults longer than this are
/// timeouts, which the SDK retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

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

/// The operator as a process under a supervisor: `run` again when it exits (as kubelet restarts
/// a container that failed fast, e.g. because the API server was down at start).
struct Operator {
    client: kube::Client,
    registry: Arc<EcrRegistry>,
    config: controllers::Config,
    task: Option<tokio::task::JoinHandle<()>>,
    exits: Arc<AtomicUsize>,
}

impl Operator {
    fn start(&mut self) {
        let (client, registry, config) = (
            self.client.clone(),
            self.registry.clone(),
            self.config.clone(),
        );
        let exits = self.exits.clone();
        self.task = Some(tokio::spawn(async move {
            loop {
                let ctx = Arc::new(Context::new(
                    client.clone(),
                    registry.clone(),
                    config.clone(),
                ));
                match controllers::run(ctx, std::future::pending::<()>()).await {
                    Ok(()) => break,
                    Err(e) => {
                        exits.fetch_add(1, Ordering::SeqCst);
                        eprintln!("operator exited ({e}); restarting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }));
    }

    /// Kills it at once, wherever it is (mid-reconcile included).
    fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the schedule did that the invariants depend on.
#[derive(Default)]
struct Record {
    steps: u64,
    faults: BTreeMap<&'static str, u64>,
    /// Unowned repositories seeded in ECR, with what they held: never to be touched.
    unowned: BTreeMap<String, Snapshot>,
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
/// Repository object names; `t*` set spec.repositoryName `team/t*`; `legacy*` target the
/// unowned repositories (never with adopt).
const REPO_NAMES: [&str; 9] = [
    "r0", "r1", "r2", "r3", "r4", "t0", "t1", "legacy0", "legacy1",
];
const UNOWNED: [&str; 2] = ["legacy0", "legacy1"];
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
    let repo = *rng.pick(&REPO_NAMES[..7]);
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
}

async fn run(seed: u64, steps: u64) {
    count_panics();
    println!("chaos seed {seed} steps {steps}");
    let started = Instant::now();
    // The double: the run restarts it, drops its watches and compacts it.
    let mut env = common::Env::start_on_double().await;
    // The harness supervises its own operator (restarting it when it exits, as kubelet would).
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
    let registry = Arc::new(EcrRegistry::from_client(aws_sdk_ecr::Client::new(&sdk)));
    let mut operator = Operator {
        client: client.clone(),
        registry,
        config: env.config.clone(),
        task: None,
        exits: Arc::new(AtomicUsize::new(0)),
    };
    operator.start();
    let checker = EcrRegistry::from_client(env.moto.ecr_client());
    let mut chaos = Chaos {
        env,
        operator,
        client,
        checker,
        rng: Rng(seed),
        record: Record {
            started: Some(started),
            ..Record::default()
        },
    };
    chaos.seed_unowned().await;

    for _ in 0..steps {
        chaos.step().await;
        chaos.record.steps += 1;
        // A short random pause lets reconciles run between steps.
        let pause = chaos.rng.below(40);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    let schedule_took = started.elapsed();

    let violations = chaos.settle_and_check().await;
    println!("chaos final state: {}", chaos.summary().await);
    if violations.is_empty() {
        chaos.self_test().await;
    }
    let r = &chaos.record;
    println!(
        "chaos seed {seed}: schedule {schedule_took:?}, total {:?}",
        started.elapsed()
    );
    println!("chaos faults by kind: {:?}", r.faults);
    println!(
        "chaos operator exits (fail-fast at start, restarted): {}",
        chaos.operator.exits.load(Ordering::SeqCst)
    );
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
    println!("figure chaos_invariant_violations {}", violations.len());
    println!("chaos seed {seed} (replay: CHAOS_SEED={seed} CHAOS_STEPS={steps})");
    assert!(
        violations.is_empty(),
        "{} invariant violations with seed {seed}",
        violations.len()
    );
}

impl Chaos {
    fn server(&self) -> Option<&apiserver_double::ApiServer> {
        self.env.kube.server()
    }

    /// Creates the repositories nobody in the cluster owns, with settings to notice any change.
    async fn seed_unowned(&mut self) {
        let ecr = self.env.ecr();
        for name in UNOWNED {
            let created = ecr
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
                .await;
            if created.is_err() {
                // After a moto restart the operator may have created it first, for an object
                // that targets this name: then it is the operator's, legitimately.
                self.record.unowned.remove(name);
                continue;
            }
            ecr.set_repository_policy()
                .repository_name(name)
                .policy_text(
                    json!({"Version": "2012-10-17", "Statement": [{"Sid": "Legacy", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "ecr:BatchGetImage"}]}).to_string(),
                )
                .send()
                .await
                .unwrap();
            let snap = snapshot(&self.checker, name).await.unwrap().unwrap();
            self.record.unowned.insert(name.to_string(), snap);
        }
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
        let object = *self.rng.pick(&REPO_NAMES[..7]);
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
        match self.rng.below(12) {
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
                        FaultKind::Latency(ATTEMPT_TIMEOUT + Duration::from_millis(500)),
                        FaultScope::Next(n),
                    )
                    .await;
                self.record.fault("timeout");
            }
            7 => {
                if self.rng.chance(0.5) {
                    // ECR state is lost: nothing from before can be expected to remain.
                    self.record.retained.clear();
                    if self.env.moto.restart().await.is_ok() {
                        self.seed_unowned().await;
                    }
                    self.record.fault("moto_restart");
                } else {
                    self.operator.kill();
                    self.operator.start();
                    self.record.fault("operator_restart");
                }
            }
            8 => {
                let down = self.rng.range(50, 800);
                if let Some(s) = self.server() {
                    s.stop().await;
                    tokio::time::sleep(Duration::from_millis(down)).await;
                    s.restart().await.unwrap();
                    self.record.fault("apiserver_restart");
                }
            }
            9 => {
                if let Some(s) = self.server() {
                    s.drop_watches();
                    self.record.fault("dropped_watches");
                }
            }
            10 => {
                if let Some(s) = self.server() {
                    s.expire_watches();
                    self.record.fault("watch_410_gone");
                }
            }
            _ => {
                // Killed mid-reconcile: right after a change, while ECR answers slowly.
                let _ = moto
                    .inject(
                        "*",
                        FaultKind::Latency(Duration::from_millis(400)),
                        FaultScope::Next(3),
                    )
                    .await;
                self.repository_op().await;
                let after = self.rng.below(300);
                tokio::time::sleep(Duration::from_millis(after)).await;
                self.operator.kill();
                self.operator.start();
                self.record.fault("operator_kill_mid_reconcile");
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
        if self.operator.task.as_ref().is_none_or(|t| t.is_finished()) {
            self.operator.start();
        }
        let settle_started = Instant::now();
        let mut violations = Vec::new();
        while settle_started.elapsed() < SETTLE {
            violations = self.check().await;
            if violations.is_empty() {
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
        self.operator.kill();
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
        self.operator.start();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut left = seen;
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            left = self.check().await;
        }
        assert!(left.is_empty(), "drift on {name} not corrected: {left:?}");
        println!("chaos self-test: drift on {name} detected, then corrected");
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
                None if self.record.unowned.contains_key(name) => {}
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
            for k in have.tags.keys() {
                if k != OWNER_TAG && !r.spec.tags.contains_key(k) {
                    problems.push(format!("extra tag {k}"));
                }
            }
            match (&r.spec.policy, &have.policy) {
                (Some(p), Some(h)) if policy::equivalent(h, &policy::render(p)) => {}
                (None, None) => {}
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
