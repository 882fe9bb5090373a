//! ECR and Inspector scan events, read from an SQS queue that an EventBridge rule feeds.
//!
//! ECR announces finished basic scans (`ECR Image Scan`) and pushes/deletes (`ECR Image
//! Action`); Amazon Inspector announces enhanced scans (`Inspector2 Scan`) and findings
//! (`Inspector2 Finding`). EventBridge delivers them at least once and best effort, so the
//! operator treats an event only as a hint to refresh one image's report now: the scheduled
//! refresh stays the source of truth, and a lost or repeated event changes nothing.

use std::sync::Arc;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;

use super::error::HttpStatus;
use super::{CallStats, RegistryError, Result};

/// An image whose report should be refreshed now.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScanEvent {
    /// The account (ECR registry id) the event came from, when it says.
    pub registry_id: Option<String>,
    pub repository: String,
    pub digest: String,
}

/// One message taken from the queue: its receipt (to delete it) and the event in it, if it is
/// one the operator understands.
#[derive(Clone, Debug)]
pub struct QueuedEvent {
    pub receipt: String,
    pub event: Option<ScanEvent>,
}

/// The SQS queue, with every call counted in the registry's [`CallStats`].
#[derive(Clone, Debug)]
pub struct ScanEventQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    stats: Arc<CallStats>,
}

/// SQS returns at most 10 messages a call, and deletes at most 10 a batch.
const BATCH: usize = 10;

impl ScanEventQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String, stats: Arc<CallStats>) -> Self {
        Self {
            client,
            queue_url,
            stats,
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    fn outcome<T, E, R>(
        &self,
        operation: &'static str,
        result: std::result::Result<T, SdkError<E, R>>,
    ) -> Result<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HttpStatus + 'static,
    {
        super::error::record_outcome(&self.stats, operation, result)
    }

    /// Up to 10 messages, waiting at most `wait_seconds` (long polling: one call per wait
    /// when the queue is idle, not a busy loop).
    pub async fn receive(&self, wait_seconds: i32) -> Result<Vec<QueuedEvent>> {
        let out = self.outcome(
            "ReceiveMessage",
            self.client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(BATCH as i32)
                .wait_time_seconds(wait_seconds.clamp(0, 20))
                .send()
                .await,
        )?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(QueuedEvent {
                    receipt: m.receipt_handle()?.to_string(),
                    event: m.body().and_then(parse_event),
                })
            })
            .collect())
    }

    /// Deletes handled messages, 10 a call.
    pub async fn delete(&self, receipts: &[String]) -> Result<()> {
        for (n, chunk) in receipts.chunks(BATCH).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(format!("m{n}-{i}"))
                        .receipt_handle(r)
                        .build()
                        .map_err(|e| {
                            RegistryError::new(
                                super::ErrorClass::Invalid,
                                "DeleteMessageBatch",
                                e.to_string(),
                            )
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            self.outcome(
                "DeleteMessageBatch",
                self.client
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await,
            )?;
        }
        Ok(())
    }
}

/// The image an EventBridge event (as delivered to SQS) is about, or `None` for any other
/// message. Pure, so every shape is tested without a queue.
pub fn parse_event(body: &str) -> Option<ScanEvent> {
    let v: Value = serde_json::from_str(body).ok()?;
    let account = v.get("account").and_then(Value::as_str).map(str::to_string);
    let detail = v.get("detail")?;
    let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    match (
        v.get("source").and_then(Value::as_str)?,
        v.get("detail-type").and_then(Value::as_str)?,
    ) {
        ("aws.ecr", "ECR Image Scan" | "ECR Image Action") => Some(ScanEvent {
            registry_id: account,
            repository: text(detail, "repository-name")?,
            digest: text(detail, "image-digest")?,
        }),
        // Inspector names the repository by ARN: arn:aws:ecr:REGION:ACCOUNT:repository/NAME.
        ("aws.inspector2", "Inspector2 Scan") => {
            let repository = text(detail, "repository-name")?;
            let (registry_id, repository) = match repository.split_once(":repository/") {
                Some((arn, name)) => (
                    arn.rsplit(':').next().map(str::to_string).or(account),
                    name.to_string(),
                ),
                None => (account, repository),
            };
            Some(ScanEvent {
                registry_id,
                repository,
                digest: text(detail, "image-digest")?,
            })
        }
        ("aws.inspector2", "Inspector2 Finding") => {
            let image = detail
                .get("resources")?
                .as_array()?
                .iter()
                .find_map(|r| r.get("details")?.get("awsEcrContainerImage"))?;
            Some(ScanEvent {
                registry_id: text(image, "registry").or(account),
                repository: text(image, "repositoryName")?,
                digest: text(image, "imageHash")?,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234";

    #[test]
    fn ecr_scan_and_action_events() {
        // The example of "Amazon ECR events and EventBridge" in the ECR user guide.
        let scan = r#"{"version":"0","id":"85fc3613-e913-7fc4-a80c-a3753e4aa9ae",
            "detail-type":"ECR Image Scan","source":"aws.ecr","account":"123456789012",
            "time":"2019-10-29T02:36:48Z","region":"us-east-1",
            "resources":["arn:aws:ecr:us-east-1:123456789012:repository/my-repository-name"],
            "detail":{"scan-status":"COMPLETE","repository-name":"my-repository-name",
              "finding-severity-counts":{"CRITICAL":10,"MEDIUM":9},
              "image-digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
              "image-tags":[]}}"#;
        assert_eq!(
            parse_event(scan),
            Some(ScanEvent {
                registry_id: Some("123456789012".into()),
                repository: "my-repository-name".into(),
                digest: DIGEST.into(),
            })
        );
        let push = scan
            .replace("ECR Image Scan", "ECR Image Action")
            .replace(r#""scan-status":"COMPLETE""#, r#""action-type":"PUSH""#);
        assert_eq!(
            parse_event(&push).map(|e| e.repository),
            Some("my-repository-name".into())
        );
    }

    #[test]
    fn inspector_events_name_the_repository_by_arn() {
        let scan = r#"{"detail-type":"Inspector2 Scan","source":"aws.inspector2",
            "account":"111111111111","detail":{"scan-status":"INITIAL_SCAN_COMPLETE",
            "repository-name":"arn:aws:ecr:us-east-1:222222222222:repository/team/app",
            "image-digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
            "finding-severity-counts":{"CRITICAL":0,"HIGH":1,"TOTAL":1}}}"#;
        assert_eq!(
            parse_event(scan),
            Some(ScanEvent {
                registry_id: Some("222222222222".into()),
                repository: "team/app".into(),
                digest: DIGEST.into(),
            })
        );
        let finding = r#"{"detail-type":"Inspector2 Finding","source":"aws.inspector2",
            "account":"111111111111","detail":{"severity":"HIGH","resources":[{
              "type":"AWS_ECR_CONTAINER_IMAGE","details":{"awsEcrContainerImage":{
                "registry":"333333333333","repositoryName":"base",
                "imageHash":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234"}}}]}}"#;
        assert_eq!(
            parse_event(finding),
            Some(ScanEvent {
                registry_id: Some("333333333333".into()),
                repository: "base".into(),
                digest: DIGEST.into(),
            })
        );
    }

    #[test]
    fn other_messages_are_not_events() {
        for body in [
            "",
            "not json",
            "[]",
            r#"{"source":"aws.ecr","detail-type":"ECR Image Scan"}"#,
            r#"{"source":"aws.ecr","detail-type":"ECR Image Scan","detail":{"repository-name":"a"}}"#,
            r#"{"source":"aws.s3","detail-type":"Object Created","detail":{"repository-name":"a","image-digest":"sha256:0"}}"#,
            r#"{"source":"aws.inspector2","detail-type":"Inspector2 Finding","detail":{"resources":[{"type":"AWS_EC2_INSTANCE","details":{}}]}}"#,
        ] {
            assert_eq!(parse_event(body), None, "{body}");
        }
    }
}
