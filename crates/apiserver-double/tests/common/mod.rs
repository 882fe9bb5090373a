//! Shared test fixtures: a small CRD with schema and CEL validation, and waiting helpers.
#![allow(dead_code)]

use std::{future::Future, time::Duration};

use apiserver_double::ApiServer;
use kube::{Api, Client, CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "test.apiserver-double.dev";

/// A namespaced test kind with a status subresource, a pattern, defaults, an enum, a root CEL
/// rule, a CEL rule with `messageExpression`, and an immutable (transition rule) field.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "test.apiserver-double.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    derive = "PartialEq",
    category = "testing",
    validation = Rule::new("self.spec.replicas <= self.spec.maxReplicas").message("replicas must not exceed maxReplicas")
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"), length(max = 30))]
    pub repository_name: String,
    #[serde(default = "default_encryption")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("encryption is immutable"))]
    pub encryption: String,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default = "default_max_replicas")]
    pub max_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(t, t.size() <= 10)").message(Message::Expression("'tag too long: ' + self.filter(t, t.size() > 10)[0]".into())))]
    pub tags: Vec<String>,
}

fn default_encryption() -> String {
    "AES256".into()
}

fn default_max_replicas() -> i32 {
    5
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub enum Mode {
    Fast,
    Safe,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A cluster-scoped kind without a status subresource.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(group = "test.apiserver-double.dev", version = "v1", kind = "Gadget")]
pub struct GadgetSpec {
    pub size: i64,
}

pub fn widget(name: &str, repository_name: &str) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            repository_name: repository_name.into(),
            encryption: "AES256".into(),
            replicas: 1,
            max_replicas: 5,
            ..WidgetSpec::default()
        },
    )
}

/// A server with the test CRDs, and a client.
pub async fn start() -> (ApiServer, Client) {
    let server = ApiServer::builder()
        .crd(Widget::crd())
        .crd(Gadget::crd())
        .namespace("test")
        .start()
        .await
        .expect("server starts");
    let client = server.client().expect("client");
    (server, client)
}

pub fn widgets(client: &Client) -> Api<Widget> {
    Api::namespaced(client.clone(), "test")
}

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `check` until it returns `Some`, failing the test after `TIMEOUT`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits a future with `TIMEOUT`.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The `Status` of a failed kube call.
pub fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}
