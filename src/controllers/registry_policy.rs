//! The RegistryPolicy controller: the statements of every RegistryPolicy object merge, oldest
//! first, into the registry's one permissions policy (see [`super::singleton`]).
//!
//! Statement ids are unique across the objects: an object reusing an older object's sid reports
//! Conflict and is left out. The merged text is checked against ECR's 10,240 characters before
//! any call: an object whose statements would not fit reports LimitExceeded and is left out,
//! the objects before it still apply. ECR's policy is compared by meaning
//! ([`repository_policy::equivalent`]), so ECR's reformatting is not drift.
//!
//! ECR calls per pass (for all objects together): one GetRegistryPolicy, and one
//! PutRegistryPolicy only when the merged policy differs from ECR's (DeleteRegistryPolicy when
//! the last object is gone). No calls while no RegistryPolicy exists.

use std::collections::BTreeMap;

use async_trait::async_trait;
use kube::ResourceExt;
use serde_json::Value;

use super::singleton::{Outcome, Setting};
use crate::api::RegistryPolicy;
use crate::api::registry_policy::RegistryPolicyStatus;
use crate::registry::{Registry, RegistryError};
use crate::registry_policy::{
    MAX_REGISTRY_POLICY_CHARS, document, render_statement_with_resources, sids, text_chars,
};
use crate::repository_policy;

pub struct RegistryPolicySetting;

/// The registry policy as the operator handles it: `None` when the registry has none.
pub type PolicyDoc = Option<Value>;

/// Merges objects (oldest first): each object's statements follow the older objects' ones.
pub fn merge(objects: &[&RegistryPolicy]) -> (PolicyDoc, Vec<Outcome>) {
    let mut statements: Vec<Value> = Vec::new();
    // sid -> the object that holds it.
    let mut owners: BTreeMap<&str, String> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(objects.len());
    for obj in objects {
        if let Some((sid, owner)) =
            sids(&obj.spec).find_map(|sid| owners.get(sid).map(|o| (sid, o)))
        {
            outcomes.push(Outcome::Conflict(format!(
                "statement id {sid} is already in the registry policy for the older RegistryPolicy {owner}; statement ids must be unique across RegistryPolicy objects"
            )));
            continue;
        }
        let mine: Vec<Value> = obj
            .spec
            .statements
            .iter()
            .map(render_statement_with_resources)
            .collect();
        let mut candidate = statements.clone();
        candidate.extend(mine.iter().cloned());
        let chars = text_chars(&document(&candidate));
        if chars > MAX_REGISTRY_POLICY_CHARS {
            outcomes.push(Outcome::LimitExceeded(format!(
                "with this object's {} statements the registry policy would be {chars} characters; ECR accepts at most {MAX_REGISTRY_POLICY_CHARS} (RegistryPolicyText), and older RegistryPolicy objects hold {} statements",
                mine.len(),
                statements.len()
            )));
            continue;
        }
        let first = statements.len();
        statements = candidate;
        for sid in sids(&obj.spec) {
            owners.insert(sid, obj.name_any());
        }
        outcomes.push(Outcome::Applied {
            first,
            count: mine.len(),
        });
    }
    let doc = (!statements.is_empty()).then(|| document(&statements));
    (doc, outcomes)
}

/// Policy text as ECR returns it: text that is not JSON is kept as a string, which is not
/// empty and matches no document the operator writes.
pub fn parse(text: Option<String>) -> PolicyDoc {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

#[async_trait]
impl Setting for RegistryPolicySetting {
    type Object = RegistryPolicy;
    type Doc = PolicyDoc;
    const WHAT: &'static str = "registry policy";

    fn validate(obj: &RegistryPolicy) -> Result<(), String> {
        crate::registry_policy::validate(&obj.spec)
    }

    fn merge(objects: &[&RegistryPolicy]) -> (PolicyDoc, Vec<Outcome>) {
        merge(objects)
    }

    fn is_empty(doc: &PolicyDoc) -> bool {
        doc.is_none()
    }

    fn equivalent(a: &PolicyDoc, b: &PolicyDoc) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => repository_policy::equivalent(a, b),
            _ => false,
        }
    }

    async fn read(registry: &dyn Registry) -> Result<PolicyDoc, RegistryError> {
        Ok(parse(registry.get_registry_policy().await?))
    }

    async fn write(registry: &dyn Registry, doc: &PolicyDoc) -> Result<(), RegistryError> {
        match doc {
            Some(doc) => registry.put_registry_policy(&doc.to_string()).await,
            None => registry.delete_registry_policy().await,
        }
    }

    fn set_applied(status: &mut RegistryPolicyStatus, outcome: &Outcome) {
        match outcome {
            Outcome::Applied { first, count } => {
                status.first_statement_index = Some(*first as i32);
                status.statement_count = Some(*count as i32);
            }
            _ => {
                status.first_statement_index = None;
                status.statement_count = None;
            }
        }
    }

    fn was_applied(obj: &RegistryPolicy) -> bool {
        obj.status
            .as_ref()
            .is_some_and(|s| s.first_statement_index.is_some())
    }

    fn target(obj: &RegistryPolicy) -> Option<&str> {
        obj.spec.registry_ref.as_ref().map(|r| r.name.as_str())
    }

    fn ready_message(outcome: &Outcome) -> String {
        match outcome {
            Outcome::Applied { first, count } => format!(
                "statements {}..{} of the registry policy",
                first,
                first + count
            ),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
#[path = "registry_policy_tests.rs"]
mod tests;
