//! Secret values mirrored from Kubernetes into Secrets Manager never reach the operator's logs,
//! at any level, in either format (issue #9). Its own test binary: the capturing subscriber
//! must be the process's global one before the operator logs anything.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{Env, create, ready, restart_with_secrets, wait_for};
use ecr_operator::api::PullThroughCacheRule;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};

/// Every byte logged, from every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

fn secret(token: &str) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("ghcr-creds".to_string()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("username".to_string(), ByteString(b"bot".to_vec())),
            (
                "accessToken".to_string(),
                ByteString(token.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

#[tokio::test]
async fn mirrored_secret_values_are_never_logged() {
    let logs = Captured::default();
    tracing::subscriber::set_global_default(ecr_operator::telemetry::subscriber(
        "json",
        // Everything the operator says, down to trace; the libraries at debug.
        tracing_subscriber::EnvFilter::new("debug,ecr_operator=trace"),
        logs.clone(),
    ))
    .expect("the only test of this binary sets the global subscriber");

    let mut env = Env::start().await;
    let ops = env.kube.namespace("ops").await.unwrap();
    restart_with_secrets(&mut env, &ops);
    let rules: Api<PullThroughCacheRule> = Api::all(env.kube.client());
    let secrets: Api<Secret> = Api::namespaced(env.kube.client(), &ops);
    secrets
        .create(&PostParams::default(), &secret("s3cr3t-token-one"))
        .await
        .unwrap();
    create(
        &rules,
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: PullThroughCacheRule\nmetadata: {name: ghcr}\nspec: {ecrRepositoryPrefix: ghcr, upstreamRegistryUrl: ghcr.io, credentialsSecretRef: {name: ghcr-creds}}\n",
    )
    .await;
    wait_for(&rules, "ghcr", "Ready with mirrored credentials", ready).await;
    // A rotation: the new value is read, compared and written too.
    secrets
        .replace(
            "ghcr-creds",
            &PostParams::default(),
            &secret("s3cr3t-token-two"),
        )
        .await
        .unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&env.moto.sdk_config());
    testbed::wait::until("the rotated value in Secrets Manager", common::WAIT, || {
        let sm = sm.clone();
        async move {
            let out = sm
                .get_secret_value()
                .secret_id("ecr-pullthroughcache/ghcr")
                .send()
                .await
                .ok()?;
            out.secret_string()?
                .contains("s3cr3t-token-two")
                .then_some(())
        }
    })
    .await
    .unwrap();

    let text = logs.text();
    // The capture works: the operator's own lines about this rule are there.
    assert!(
        text.contains("ghcr") && text.contains("ecr_operator"),
        "nothing captured"
    );
    for value in ["s3cr3t-token-one", "s3cr3t-token-two"] {
        assert!(
            !text.contains(value),
            "{value} logged:\n{}",
            text.lines()
                .filter(|l| l.contains(value))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
