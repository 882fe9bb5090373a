//! `deleteReplication` of a replication rule, which ECR's API model has (botocore's ecr
//! 2015-09-21: `ReplicationRule.deleteReplication.enabled`, "replicates image deletions and
//! image tag removals") and aws-sdk-ecr 1.138 does not: the SDK neither sends nor parses it.
//!
//! Without this, the operator could not declare it, and worse, every PutReplicationConfiguration
//! it sent dropped a `deleteReplication` set in the console. So the member travels in the JSON
//! itself: added to the serialized PutReplicationConfiguration body before signing, and read
//! from DescribeRegistry's response body, which the SDK has already read into memory after
//! deserialization. Both edits are pure functions, tested below; the rest of each call is the
//! SDK's. When the SDK learns the member, this file goes.

use std::sync::{Arc, Mutex};

use aws_sdk_ecr::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_ecr::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};

/// PutReplicationConfiguration's JSON body with `deleteReplication: {enabled: true}` on the
/// rules whose flag is set (rules in the order they were serialized, which is ours).
pub fn with_delete_replication(body: &[u8], flags: &[bool]) -> Result<Vec<u8>, serde_json::Error> {
    let mut doc: Value = serde_json::from_slice(body)?;
    if let Some(rules) = doc
        .pointer_mut("/replicationConfiguration/rules")
        .and_then(Value::as_array_mut)
    {
        for (rule, _) in rules.iter_mut().zip(flags).filter(|(_, on)| **on) {
            if let Some(rule) = rule.as_object_mut() {
                rule.insert("deleteReplication".into(), json!({"enabled": true}));
            }
        }
    }
    serde_json::to_vec(&doc)
}

/// Each rule's `deleteReplication.enabled` in a DescribeRegistry response body (false where
/// absent; empty when the body cannot be read as JSON, which the SDK would have refused first).
pub fn delete_replication_flags(body: &[u8]) -> Vec<bool> {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    doc.pointer("/replicationConfiguration/rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|r| r.pointer("/deleteReplication/enabled") == Some(&Value::Bool(true)))
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrites the request body of one PutReplicationConfiguration (with its content length).
pub fn add_to_request(
    flags: Vec<bool>,
) -> impl Fn(
    aws_smithy_runtime_api::client::orchestrator::HttpRequest,
) -> Result<aws_smithy_runtime_api::client::orchestrator::HttpRequest, serde_json::Error>
+ Send
+ Sync
+ 'static {
    move |mut request| {
        if !flags.iter().any(|on| *on) {
            return Ok(request);
        }
        let Some(body) = request.body().bytes() else {
            return Ok(request);
        };
        let body = with_delete_replication(body, &flags)?;
        request
            .headers_mut()
            .insert("content-length", body.len().to_string());
        *request.body_mut() = SdkBody::from(body);
        Ok(request)
    }
}

/// Keeps the response body of the one call it is added to.
#[derive(Debug, Default, Clone)]
pub struct ResponseBody(pub Arc<Mutex<Option<Vec<u8>>>>);

impl ResponseBody {
    pub fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Intercept for ResponseBody {
    fn name(&self) -> &'static str {
        "ResponseBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes.to_vec());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The request shape of the PutReplicationConfiguration API reference.
    const PUT: &str = r#"{"replicationConfiguration":{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"111122223333"}]},{"destinations":[{"region":"us-west-2","registryId":"111122223333"}],"repositoryFilters":[{"filter":"prod","filterType":"PREFIX_MATCH"}]}]}}"#;

    #[test]
    fn the_flagged_rules_get_the_member_and_nothing_else_changes() {
        let out = with_delete_replication(PUT.as_bytes(), &[false, true]).expect("json");
        let doc: Value = serde_json::from_slice(&out).expect("json");
        let rules = doc["replicationConfiguration"]["rules"]
            .as_array()
            .expect("rules");
        assert!(rules[0].get("deleteReplication").is_none());
        assert_eq!(rules[1]["deleteReplication"], json!({"enabled": true}));
        assert_eq!(rules[1]["repositoryFilters"][0]["filter"], "prod");
        let mut without = doc.clone();
        without["replicationConfiguration"]["rules"][1]
            .as_object_mut()
            .expect("rule")
            .remove("deleteReplication");
        assert_eq!(without, serde_json::from_str::<Value>(PUT).expect("json"));
    }

    #[test]
    fn flags_are_read_per_rule() {
        // DescribeRegistry's response shape (API reference), one rule with the member.
        let body = br#"{"registryId":"123456789012","replicationConfiguration":{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"123456789012"}],"deleteReplication":{"enabled":true}},{"destinations":[]},{"destinations":[],"deleteReplication":{"enabled":false}}]}}"#;
        assert_eq!(delete_replication_flags(body), vec![true, false, false]);
        assert_eq!(
            delete_replication_flags(br#"{"registryId":"123456789012"}"#),
            Vec::<bool>::new()
        );
        assert_eq!(delete_replication_flags(b"not json"), Vec::<bool>::new());
    }

    #[test]
    fn a_request_without_flags_is_left_as_sent() {
        assert_eq!(
            delete_replication_flags(&with_delete_replication(PUT.as_bytes(), &[]).expect("json")),
            vec![false, false]
        );
    }
}
