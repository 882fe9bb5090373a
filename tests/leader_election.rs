//! Leader election: two operator instances against the API server and moto; one reconciles,
//! the other takes over after the first stops (at once when it released the lease, within the
//! lease duration when it crashed), and a leader cut off from the API server stops writing to
//! ECR at its renew deadline, before anyone else may lead.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{create, is_ready, test_config, wait_for};
use ecr_operator::api::Repository;
use ecr_operator::controllers::{self, Context};
use ecr_operator::leader::{Fence, LeaderElector, LeaseConfig};
use ecr_operator::registry::{EcrRegistry, Registry};
use kube::api::Api;
use testbed::kube_env::KubeEnv;
use testbed::moto::Moto;

const LEASE: Duration = Duration::from_secs(3);
/// The release test's lease: long enough that a handover by release and one by expiry stay
/// seconds apart on a loaded machine (the stopped leader's work and its release are API calls).
const RELEASED_LEASE: Duration = Duration::from_secs(10);
const RENEW_DEADLINE: Duration = Duration::from_secs(2);
const RENEW_EVERY: Duration = Duration::from_millis(500);

struct Instance {
    registry: Arc<EcrRegistry>,
    leading: Arc<std::sync::atomic::AtomicBool>,
    fence: Fence,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// An operator instance exactly as `run` wires it: controllers inside leader election, ECR
/// writes behind the elector's fence. `lease` is the test's own Lease: tests share one API
/// server.
/// Each test's instances watch only `namespace`: tests share one API server.
fn instance(kube: &KubeEnv, moto: &Moto, lease: &str, identity: &str, namespace: &str) -> Instance {
    instance_with(kube.client(), moto, lease, identity, namespace, LEASE)
}

fn instance_with(
    client: kube::Client,
    moto: &Moto,
    lease: &str,
    identity: &str,
    namespace: &str,
    lease_duration: Duration,
) -> Instance {
    let mut config = test_config();
    config.watch = controllers::WatchScope::new(&[namespace.to_string()], None).unwrap();
    let fence = Fence::shut();
    let registry = Arc::new(EcrRegistry::from_client(moto.ecr_client()).with_fence(fence.clone()));
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig {
            namespace: "default".into(),
            name: lease.into(),
            identity: identity.into(),
            lease_duration,
            renew_deadline: RENEW_DEADLINE,
            renew_every: RENEW_EVERY,
        },
    )
    .with_fence(fence.clone());
    let leading = elector.leading_flag();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reg = registry.clone();
    let task = tokio::spawn(elector.run(
        async move {
            let _ = stop_rx.await;
        },
        move |mut lost| {
            let ctx = Arc::new(Context::new(client.clone(), reg.clone(), config.clone()));
            async move {
                let stop = async move {
                    let _ = lost.wait_for(|l| *l).await;
                };
                let _ = controllers::run(ctx, stop).await;
            }
        },
    ));
    Instance {
        registry,
        leading,
        fence,
        stop: Some(stop),
        task,
    }
}

async fn wait_leader(a: &Instance, b: &Instance) -> bool {
    testbed::wait::until("a leader", common::WAIT, || async {
        let (la, lb) = (
            a.leading.load(Ordering::SeqCst),
            b.leading.load(Ordering::SeqCst),
        );
        (la || lb).then_some(la)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn one_instance_reconciles_and_the_other_takes_over_on_release() {
    // Printed only when the test fails: which controller was slow to stop, whether the release
    // was written.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ecr_operator::controllers=warn,ecr_operator::leader=info")
        .with_test_writer()
        .try_init();
    let moto = Moto::start().await.unwrap();
    let kube = KubeEnv::start().await.unwrap();
    let lease = testbed::kube_env::unique_name("ecr-operator-leader");
    let ns = kube.namespace("leader").await.unwrap();
    let api: Api<Repository> = Api::namespaced(kube.client(), &ns);
    let instance =
        |identity| instance_with(kube.client(), &moto, &lease, identity, &ns, RELEASED_LEASE);
    let mut a = instance("pod-a");
    let mut b = instance("pod-b");
    let a_leads = wait_leader(&a, &b).await;
    let (leader, follower) = if a_leads {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        !follower.leading.load(Ordering::SeqCst),
        "exactly one leader"
    );

    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: one}}, spec: {{repositoryName: {ns}/one}}}}")).await;
    wait_for(&api, "one", "Ready", is_ready).await;
    assert_eq!(leader.registry.stats().operation("CreateRepository"), 1);
    assert_eq!(
        follower.registry.stats().total(),
        0,
        "the follower made no ECR call"
    );

    // Graceful stop: the leader releases the lease and the follower leads at once.
    let started = std::time::Instant::now();
    let _ = leader.stop.take().unwrap().send(());
    testbed::wait::until("follower leads", common::WAIT, || async {
        follower.leading.load(Ordering::SeqCst).then_some(())
    })
    .await
    .unwrap();
    let handover = started.elapsed();
    assert!(
        handover < RELEASED_LEASE,
        "released lease taken over in {handover:?}, before it expired"
    );
    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: two}}, spec: {{repositoryName: {ns}/two}}}}")).await;
    wait_for(&api, "two", "Ready", is_ready).await;
    assert_eq!(follower.registry.stats().operation("CreateRepository"), 1);
    println!("handover after release: {handover:?}");
}

#[tokio::test]
async fn a_crashed_leader_is_replaced_after_the_lease_expires() {
    let moto = Moto::start().await.unwrap();
    let kube = KubeEnv::start().await.unwrap();
    let lease = testbed::kube_env::unique_name("ecr-operator-leader");
    let ns = kube.namespace("crash").await.unwrap();
    let a = instance(&kube, &moto, &lease, "pod-a", &ns);
    let b = instance(&kube, &moto, &lease, "pod-b", &ns);
    let a_leads = wait_leader(&a, &b).await;
    let (leader, follower) = if a_leads { (a, b) } else { (b, a) };
    // A crash: the task dies without releasing the lease.
    leader.task.abort();
    let started = std::time::Instant::now();
    testbed::wait::until("follower leads", common::WAIT, || async {
        follower.leading.load(Ordering::SeqCst).then_some(())
    })
    .await
    .unwrap();
    let takeover = started.elapsed();
    // Not before the lease expired (renewTime has second precision in some servers: allow 1 s),
    // and within lease duration plus one renew period.
    assert!(
        takeover + Duration::from_secs(1) >= LEASE,
        "took over too early: {takeover:?}"
    );
    assert!(
        takeover <= LEASE + Duration::from_secs(2),
        "took over late: {takeover:?}"
    );
    println!("takeover after crash: {takeover:?}");
}

/// A shut fence refuses every write before it is sent (ECR never sees it) and lets reads through;
/// opened, the same client writes.
#[tokio::test]
async fn a_shut_fence_refuses_writes_before_they_are_sent() {
    let moto = Moto::start().await.unwrap();
    let fence = Fence::shut();
    let registry = EcrRegistry::from_client(moto.ecr_client()).with_fence(fence.clone());
    let new = ecr_operator::registry::NewRepository {
        name: "fenced/app".into(),
        tag_mutability: "MUTABLE".into(),
        tag_mutability_exclusions: Vec::new(),
        scan_on_push: false,
        encryption_type: "AES256".into(),
        kms_key: None,
        tags: Default::default(),
    };
    let refused = registry.create_repository(&new).await.unwrap_err();
    assert_eq!(
        refused.class,
        ecr_operator::registry::ErrorClass::Fenced,
        "{refused}"
    );
    assert!(refused.to_string().contains("leader lease"), "{refused}");
    let listed = moto
        .ecr_client()
        .describe_repositories()
        .send()
        .await
        .unwrap();
    assert!(listed.repositories().is_empty(), "ECR never saw the write");
    assert!(
        registry.list_repositories().await.unwrap().is_empty(),
        "reads pass"
    );
    assert_eq!(registry.stats().operation("CreateRepository"), 1);
    assert_eq!(registry.stats().writes(), 0);

    fence.open_until(std::time::Instant::now() + Duration::from_secs(60));
    registry.create_repository(&new).await.unwrap();
    assert_eq!(registry.stats().writes(), 1);
}

/// A leader cut off from the API server (its own connections only, through a proxy the test
/// cuts) while a second replica campaigns: its fence shuts at its renew deadline, the second
/// replica leads only after that, and from then on only the second replica writes to ECR,
/// though the first still reaches ECR and its stale stores still hold the objects.
#[tokio::test]
async fn a_partitioned_leader_stops_writing_before_another_leads() {
    let moto = Moto::start().await.unwrap();
    let kube = KubeEnv::require_real().await;
    let lease = testbed::kube_env::unique_name("ecr-operator-leader");
    let ns = kube.namespace("partition").await.unwrap();
    let api: Api<Repository> = Api::namespaced(kube.client(), &ns);
    let (client_a, proxy_a) = kube.partitionable_client().await.unwrap();
    let a = instance_with(client_a, &moto, &lease, "pod-a", &ns, LEASE);
    testbed::wait::until("a leads", common::WAIT, || async {
        a.leading.load(Ordering::SeqCst).then_some(())
    })
    .await
    .unwrap();
    let b = instance(&kube, &moto, &lease, "pod-b", &ns);
    let name = format!("{ns}/app");
    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: app}}, spec: {{repositoryName: {name}}}}}")).await;
    wait_for(&api, "app", "Ready", is_ready).await;
    assert_eq!(a.registry.stats().operation("CreateRepository"), 1);
    assert_eq!(b.registry.stats().writes(), 0, "the follower wrote nothing");

    let cut_at = std::time::Instant::now();
    proxy_a.cut();
    testbed::wait::until("a's fence shuts", common::WAIT, || async {
        (!a.fence.is_open()).then_some(())
    })
    .await
    .unwrap();
    let fence_shut_after = cut_at.elapsed();
    testbed::wait::until("a steps down", common::WAIT, || async {
        (!a.leading.load(Ordering::SeqCst)).then_some(())
    })
    .await
    .unwrap();
    let a_writes = a.registry.stats().writes();
    testbed::wait::until("b leads", common::WAIT, || async {
        b.leading.load(Ordering::SeqCst).then_some(())
    })
    .await
    .unwrap();
    let b_leads_after = cut_at.elapsed();
    assert!(
        fence_shut_after <= RENEW_DEADLINE + RENEW_EVERY,
        "a's fence shut {fence_shut_after:?} after the cut, later than its renew deadline"
    );
    assert!(
        b_leads_after >= fence_shut_after,
        "b led at {b_leads_after:?}, before a's fence shut at {fence_shut_after:?}"
    );

    // Drift in ECR, which both replicas still reach: only the new leader repairs it.
    moto.ecr_client()
        .put_image_tag_mutability()
        .repository_name(&name)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    testbed::wait::until("b repairs the drift", common::WAIT, || async {
        let info = b.registry.describe_repository(&name).await.ok()??;
        (info.tag_mutability == "MUTABLE").then_some(())
    })
    .await
    .unwrap();
    assert!(b.registry.stats().operation("PutImageTagMutability") >= 1);
    assert_eq!(
        a.registry.stats().writes(),
        a_writes,
        "the cut-off leader wrote to ECR after its fence shut"
    );

    // Back on the network, the old leader finds the lease held and stays a follower: the next
    // object is b's alone.
    proxy_a.restore();
    create(&api, &format!("{{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {{name: next}}, spec: {{repositoryName: {ns}/next}}}}")).await;
    wait_for(&api, "next", "Ready", is_ready).await;
    assert!(!a.leading.load(Ordering::SeqCst));
    assert_eq!(a.registry.stats().writes(), a_writes);
    println!(
        "fence shut {fence_shut_after:?} after the cut, b led after {b_leads_after:?}; a's writes refused by the fence: {}",
        a.registry
            .stats()
            .snapshot()
            .iter()
            .filter(|((_, outcome), _)| *outcome == "fenced")
            .map(|(_, n)| n)
            .sum::<u64>()
    );
}
