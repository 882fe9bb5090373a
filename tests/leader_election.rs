//! Leader election: two operator instances against the API server double and moto; one
//! reconciles, the other takes over after the first stops (at once when it released the
//! lease, within the lease duration when it crashed).

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{create, is_ready, test_config, wait_for};
use ecr_operator::api::Repository;
use ecr_operator::controllers::{self, Context};
use ecr_operator::leader::{LeaderElector, LeaseConfig};
use ecr_operator::registry::{EcrRegistry, Registry};
use kube::api::Api;
use testbed::kube_env::KubeEnv;
use testbed::moto::Moto;

const LEASE: Duration = Duration::from_secs(3);

struct Instance {
    registry: Arc<EcrRegistry>,
    leading: Arc<std::sync::atomic::AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// An operator instance exactly as `run` wires it: controllers inside leader election.
/// `lease` is the test's own Lease: tests share one API server.
fn instance(kube: &KubeEnv, moto: &Moto, lease: &str, identity: &str) -> Instance {
    let registry = Arc::new(EcrRegistry::from_client(moto.ecr_client()));
    let elector = LeaderElector::new(
        kube.client(),
        LeaseConfig {
            namespace: "default".into(),
            name: lease.into(),
            identity: identity.into(),
            lease_duration: LEASE,
            renew_every: Duration::from_millis(500),
        },
    );
    let leading = elector.leading_flag();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = kube.client();
    let reg = registry.clone();
    let task = tokio::spawn(elector.run(
        async move {
            let _ = stop_rx.await;
        },
        move |mut lost| {
            let ctx = Arc::new(Context::new(client.clone(), reg.clone(), test_config()));
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
    let moto = Moto::start().await.unwrap();
    let kube = KubeEnv::start().await.unwrap();
    let lease = testbed::kube_env::unique_name("ecr-operator-leader");
    let ns = kube.namespace("leader").await.unwrap();
    let api: Api<Repository> = Api::namespaced(kube.client(), &ns);
    let mut a = instance(&kube, &moto, &lease, "pod-a");
    let mut b = instance(&kube, &moto, &lease, "pod-b");
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

    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: one}, spec: {}}").await;
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
        handover < LEASE,
        "released lease taken over in {handover:?}, before it expired"
    );
    create(&api, "{apiVersion: ecr.operator.dev/v1alpha1, kind: Repository, metadata: {name: two}, spec: {}}").await;
    wait_for(&api, "two", "Ready", is_ready).await;
    assert_eq!(follower.registry.stats().operation("CreateRepository"), 1);
    println!("handover after release: {handover:?}");
}

#[tokio::test]
async fn a_crashed_leader_is_replaced_after_the_lease_expires() {
    let moto = Moto::start().await.unwrap();
    let kube = KubeEnv::start().await.unwrap();
    let lease = testbed::kube_env::unique_name("ecr-operator-leader");
    let a = instance(&kube, &moto, &lease, "pod-a");
    let b = instance(&kube, &moto, &lease, "pod-b");
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
