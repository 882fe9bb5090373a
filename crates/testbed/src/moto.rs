//! moto in server mode as the ECR peer, through our launcher.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{Error, Result, http, workspace_root};

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// moto's default account id.
pub const ACCOUNT: &str = "123456789012";

/// A fault the launcher injects into ECR calls.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// `ThrottlingException` (HTTP 400), which the SDK retries with backoff.
    Throttle,
    /// HTTP 500 `ServerException`.
    ServerError,
    /// Added latency before the call proceeds.
    Latency(Duration),
    /// Any AWS error: the code and HTTP status the service answers with.
    Error { code: String, http_status: u16 },
}

/// Which calls a fault hits.
#[derive(Clone, Debug)]
pub enum FaultScope {
    /// The next N matching calls.
    Next(u32),
    /// A fraction of matching calls, with a seed for replay.
    Fraction { fraction: f64, seed: u64 },
}

/// A running moto server; stopped when dropped.
pub struct Moto {
    child: Option<Child>,
    endpoint: String,
    port: u16,
}

fn python() -> PathBuf {
    std::env::var_os("ECR_OPERATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

impl Moto {
    /// Starts moto on 127.0.0.1 on a free port and waits until it answers.
    pub async fn start() -> Result<Moto> {
        Self::start_on(0).await
    }

    async fn start_on(port: u16) -> Result<Moto> {
        let python = python();
        if !python.exists() {
            return Err(Error::MotoMissing(format!(
                "{} not found",
                python.display()
            )));
        }
        let launcher = workspace_root().join("tests/support/moto_launcher.py");
        let mut child = Command::new(&python)
            .arg(&launcher)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::piped()) // the launcher exits when this closes, so moto never outlives us
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::MotoMissing(format!("{}: {e}", python.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::MotoStart("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("READY ") {
                    return Some(url.trim().to_string());
                }
                if line.contains("No module named") {
                    return None;
                }
            }
            None
        })
        .await;
        let endpoint = match ready {
            Ok(Some(url)) => url,
            Ok(None) => {
                return Err(Error::MotoMissing(
                    "the launcher exited before it was ready (is moto[server] installed?)".into(),
                ));
            }
            Err(_) => return Err(Error::MotoStart("not ready within 60 s".into())),
        };
        // Keep draining stdout so the launcher never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .ok_or_else(|| Error::MotoStart(format!("bad READY url {endpoint}")))?;
        Ok(Moto {
            child: Some(child),
            endpoint,
            port,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The environment an operator process needs to reach this moto with the standard AWS
    /// variables (what `ecr-operator run` honours).
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }

    /// An SDK config for this moto: endpoint override, dummy static credentials, the standard
    /// retry mode with 3 attempts (the SDK default).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ecr::config::SharedCredentialsProvider::new(
                Credentials::new("testing", "testing", None, None, "testbed"),
            ))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
            .build()
    }

    /// An aws-sdk-ecr client talking to this moto.
    pub fn ecr_client(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.sdk_config())
    }

    /// An aws-sdk-sqs client talking to this moto.
    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config())
    }

    /// A new SQS queue fed by an EventBridge rule with ECR's and Inspector's scan and image
    /// events, as the operator's docs tell users to set it up; returns the queue URL.
    pub async fn scan_event_queue(&self, name: &str) -> Result<String> {
        let sqs = self.sqs_client();
        let err = |message: String| Error::Http {
            url: self.endpoint.clone(),
            message,
        };
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| err(format!("CreateQueue: {e:?}")))?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| err(format!("GetQueueAttributes: {e:?}")))?
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        let pattern = serde_json::json!({
            "source": ["aws.ecr", "aws.inspector2"],
            "detail-type": ["ECR Image Scan", "ECR Image Action", "Inspector2 Scan", "Inspector2 Finding"],
        });
        self.events(
            "PutRule",
            &serde_json::json!({
                "Name": name,
                "EventPattern": pattern.to_string(),
            }),
        )
        .await?;
        self.events(
            "PutTargets",
            &serde_json::json!({
                "Rule": name,
                "Targets": [{"Id": "queue", "Arn": arn}],
            }),
        )
        .await?;
        Ok(url)
    }

    /// One EventBridge API call (JSON protocol; moto does not check signatures).
    async fn events(&self, operation: &str, body: &serde_json::Value) -> Result<()> {
        let target = format!("AWSEvents.{operation}");
        let (status, value) = http::json_with(
            hyper::Method::POST,
            &self.endpoint,
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", &target),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/events/aws4_request",
                ),
            ],
            Some(body),
        )
        .await?;
        if status >= 300 {
            return Err(Error::Http {
                url: self.endpoint.clone(),
                message: format!("{operation}: HTTP {status}: {value}"),
            });
        }
        Ok(())
    }

    /// A new scan of an image ECR already scanned, complete at once with the next injected
    /// result (the extension's stand-in for a continuous rescan), announced on EventBridge.
    pub async fn rescan(&self, repository: &str, digest: &str) -> Result<()> {
        self.post(
            "/moto-api/ecr-ext/rescan",
            &serde_json::json!({ "repositoryName": repository, "imageDigest": digest }),
        )
        .await
    }

    /// Creates repositories in bulk (`requests`: CreateRepository requests as JSON), as
    /// CreateRepository does but without a signed call each and without counting calls: how a
    /// benchmark seeds 100,000 repositories. Sent in batches of 5,000.
    pub async fn seed_repositories(&self, requests: &[serde_json::Value]) -> Result<()> {
        for batch in requests.chunks(5_000) {
            self.post(
                "/moto-api/ecr-ext/repositories",
                &serde_json::json!({ "region": REGION, "repositories": batch }),
            )
            .await?;
        }
        Ok(())
    }

    /// Creates the IAM role `name` in `account` with the trust policy `trust` (JSON); returns its
    /// ARN. moto then grants AssumeRole of it only as the policy says (tests/support/
    /// moto_sts_ext.py): how a test gets a role the operator cannot assume. Through boto3 in
    /// moto's own Python (the workspace has no IAM client), signed for `account` with moto's
    /// `x-moto-account-id` header.
    pub async fn create_role(&self, account: &str, name: &str, trust: &str) -> Result<String> {
        const SCRIPT: &str = "import sys, boto3
url, account, name, trust = sys.argv[1:5]
iam = boto3.client('iam', endpoint_url=url, region_name='us-east-1',
                   aws_access_key_id='testing', aws_secret_access_key='testing')
iam.meta.events.register('before-sign.iam.*',
                         lambda request, **_: request.headers.__setitem__('x-moto-account-id', account))
print(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)['Role']['Arn'])
";
        let out = Command::new(python())
            .args(["-c", SCRIPT, &self.endpoint, account, name, trust])
            .output()
            .await
            .map_err(|e| Error::MotoStart(format!("running boto3: {e}")))?;
        if !out.status.success() {
            return Err(Error::MotoStart(format!(
                "CreateRole {name} in {account}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Forgets all state (moto's and our extensions').
    pub async fn reset(&self) -> Result<()> {
        self.post("/moto-api/reset", &serde_json::json!({})).await
    }

    /// Injects a fault into calls of `operation` (`*` for every ECR operation).
    pub async fn inject(&self, operation: &str, kind: FaultKind, scope: FaultScope) -> Result<()> {
        let mut body = serde_json::json!({ "operation": operation });
        match kind {
            FaultKind::Throttle => body["kind"] = "throttle".into(),
            FaultKind::ServerError => body["kind"] = "server_error".into(),
            FaultKind::Latency(d) => {
                body["kind"] = "latency".into();
                body["latencyMs"] = (d.as_millis() as u64).into();
            }
            FaultKind::Error { code, http_status } => {
                body["kind"] = if http_status >= 500 {
                    "server_error"
                } else {
                    "throttle"
                }
                .into();
                body["errorCode"] = code.into();
                body["httpStatus"] = http_status.into();
            }
        }
        match scope {
            FaultScope::Next(n) => body["count"] = n.into(),
            FaultScope::Fraction { fraction, seed } => {
                body["fraction"] = fraction.into();
                body["seed"] = seed.into();
            }
        }
        self.post("/moto-api/ecr-ext/faults", &body).await
    }

    /// Removes every injected fault.
    pub async fn clear_faults(&self) -> Result<()> {
        let url = format!("{}/moto-api/ecr-ext/faults", self.endpoint);
        http::json(hyper::Method::DELETE, &url, None)
            .await
            .map(drop)
    }

    /// Runs a Python `script` with boto3 against this moto (the standard AWS variables of
    /// [`Self::aws_env`] set) and returns what it prints: an independent client, for what the
    /// Rust SDK cannot see (members it does not model).
    pub async fn boto3(&self, script: &str) -> Result<String> {
        let out = Command::new(python())
            .arg("-c")
            .arg(script)
            .envs(self.aws_env())
            // botocore reads the region from this one.
            .env("AWS_DEFAULT_REGION", REGION)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Error::Io {
                path: python().display().to_string(),
                message: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(Error::Io {
                path: "boto3 script".to_string(),
                message: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// ECR calls moto received, by operation (server-side count).
    pub async fn calls(&self) -> Result<BTreeMap<String, u64>> {
        self.calls_of("ecr").await
    }

    /// Calls of `service` (`ecr`, `ecr-public`, `secretsmanager`, ...) moto received, by
    /// operation without the service's prefix (server-side count, every account and region).
    pub async fn calls_of(&self, service: &str) -> Result<BTreeMap<String, u64>> {
        let url = format!("{}/moto-api/ecr-ext/calls?service={service}", self.endpoint);
        let (_, v) = http::json(hyper::Method::GET, &url, None).await?;
        Ok(v.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Injected faults that hit ECR calls (server-side count), by operation, then by what was
    /// served: `throttle:<error code>`, `server_error:<error code>` (e.g.
    /// `server_error:ServiceUnavailableException`) or `latency:<ms>ms`. A fault counts only when
    /// it fired; one that expired, was cleared or was lost with a restart unserved counts nothing.
    /// Counts start again from zero when moto restarts.
    pub async fn faults_served(&self) -> Result<BTreeMap<String, BTreeMap<String, u64>>> {
        let url = format!("{}/moto-api/ecr-ext/calls/served", self.endpoint);
        let (status, v) = http::json(hyper::Method::GET, &url, None).await?;
        if status >= 300 {
            return Err(Error::Http {
                url,
                message: format!("HTTP {status}: {v}"),
            });
        }
        Ok(v.as_object()
            .map(|ops| {
                ops.iter()
                    .map(|(op, served)| {
                        let by_kind = served
                            .as_object()
                            .map(|m| {
                                m.iter()
                                    .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (op.clone(), by_kind)
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Injects scan findings moto returns for an image (moto's own static endpoint).
    pub async fn inject_scan_findings(&self, body: &serde_json::Value) -> Result<()> {
        self.post("/moto-api/static/ecr/scan-finding-results", body)
            .await
    }

    /// Kills moto and starts a fresh one on the same port (state is lost, as after a crash).
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        let fresh = Self::start_on(self.port).await?;
        *self = fresh;
        Ok(())
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<()> {
        let url = format!("{}{path}", self.endpoint);
        let (status, value) = http::json(hyper::Method::POST, &url, Some(body)).await?;
        if status >= 300 {
            return Err(Error::Http {
                url,
                message: format!("HTTP {status}: {value}"),
            });
        }
        Ok(())
    }
}
