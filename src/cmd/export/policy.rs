//! Policy documents as ECR holds them, read back into the typed forms of our kinds.
//!
//! Every conversion ends with the controller's own comparison: the typed form, rendered as the
//! controller renders it, must mean the same as the text ECR holds ([`text_equivalent`],
//! [`lifecycle::policies_equivalent`]). A document that does not survive the round trip (a
//! `NotPrincipal`, `"Principal": "*"`, a boolean condition value, ...) is refused with the
//! reason, never exported changed: applying it would make the operator rewrite the policy.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use ecr_operator::api::lifecycle_policy::{
    LifecycleAction, LifecycleActionType, LifecycleCountType, LifecycleCountUnit, LifecycleRule,
    LifecycleSelection, LifecycleStorageClass, LifecycleTagStatus, LifecycleTargetStorageClass,
};
use ecr_operator::api::registry_policy::{RegistryPolicySpec, RegistryPolicyStatement};
use ecr_operator::api::repository::{Effect, PolicyStatement, Principals, RepositoryPolicy};
use ecr_operator::controllers::lifecycle_policy::render_rules;
use ecr_operator::lifecycle::{self, Action, Count, StorageClass, TagStatus};
use ecr_operator::registry_policy::{document, render_statement_with_resources};
use ecr_operator::repository_policy::{render_checked, text_equivalent};

/// The statement members each form takes; any other member has no typed field.
const REPOSITORY_MEMBERS: &[&str] = &["Sid", "Effect", "Principal", "Action", "Condition"];
const REGISTRY_MEMBERS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "Action",
    "Condition",
    "Resource",
];

/// A repository policy's text as the typed `spec.policy` of a Repository.
pub fn repository_policy(text: &str) -> Result<RepositoryPolicy, String> {
    let doc = parse_json(text)?;
    let version = version(&doc)?;
    let statements = statements(&doc)?
        .iter()
        .enumerate()
        .map(|(i, s)| statement(s, REPOSITORY_MEMBERS).map_err(|e| format!("Statement[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    // The kind's schema: a repository policy grants ECR actions only.
    if let Some(a) = statements
        .iter()
        .flat_map(|s| &s.actions)
        .find(|a| *a != "*" && !a.starts_with("ecr:"))
    {
        return Err(format!(
            "action {a} is not an ecr: action, which a Repository's policy takes"
        ));
    }
    let policy = RepositoryPolicy {
        version: Some(version),
        statements,
    };
    let rendered = render_checked(&policy).map_err(|e| e.to_string())?;
    if !text_equivalent(text, &rendered) {
        return Err(not_the_same());
    }
    Ok(policy)
}

/// The registry policy's text as the typed `spec` of a RegistryPolicy.
pub fn registry_policy(text: &str) -> Result<RegistryPolicySpec, String> {
    let doc = parse_json(text)?;
    if version(&doc)? != ecr_operator::registry_policy::VERSION {
        return Err(format!(
            "Version is not {}, the only version a RegistryPolicy renders",
            ecr_operator::registry_policy::VERSION
        ));
    }
    let statements = statements(&doc)?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let resources = strings(s.get("Resource"), "Resource")
                .map_err(|e| format!("Statement[{i}]: {e}"))?;
            let statement =
                statement(s, REGISTRY_MEMBERS).map_err(|e| format!("Statement[{i}]: {e}"))?;
            Ok(RegistryPolicyStatement {
                statement,
                resources,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let spec = RegistryPolicySpec {
        registry_ref: None,
        statements,
    };
    ecr_operator::registry_policy::validate(&spec)?;
    let rendered: Vec<Value> = spec
        .statements
        .iter()
        .map(render_statement_with_resources)
        .collect();
    if !text_equivalent(text, &document(&rendered)) {
        return Err(not_the_same());
    }
    Ok(spec)
}

fn not_the_same() -> String {
    "the typed form would render a document that differs from ECR's (the operator would rewrite it)"
        .to_string()
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

fn version(doc: &Value) -> Result<String, String> {
    match doc.get("Version") {
        // IAM reads a policy without Version as 2008-10-17; the renderers always write one.
        None => Err("Version is missing, which the typed form cannot leave out".to_string()),
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => Ok(v.clone()),
        Some(other) => Err(format!("Version {other} is not 2012-10-17 or 2008-10-17")),
    }
}

fn statements(doc: &Value) -> Result<Vec<Map<String, Value>>, String> {
    let Some(object) = doc.as_object() else {
        return Err("not a JSON object".to_string());
    };
    if let Some(key) = object
        .keys()
        .find(|k| !["Version", "Statement"].contains(&k.as_str()))
    {
        return Err(format!("member {key} has no typed field"));
    }
    let list = match object.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err("Statement is missing or not a list".to_string()),
    };
    list.into_iter()
        .map(|s| match s {
            Value::Object(m) => Ok(m),
            _ => Err("a statement is not an object".to_string()),
        })
        .collect()
}

fn statement(s: &Map<String, Value>, members: &[&str]) -> Result<PolicyStatement, String> {
    if let Some(key) = s.keys().find(|k| !members.contains(&k.as_str())) {
        return Err(format!("member {key} has no typed field"));
    }
    let sid = match s.get("Sid") {
        None => None,
        // The kind's schema: letters and digits, at most 100.
        Some(Value::String(sid))
            if sid.len() <= 100 && sid.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(sid.clone())
        }
        Some(other) => return Err(format!("Sid {other} is not 0 to 100 letters and digits")),
    };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => return Err(format!("Effect {other:?} is not Allow or Deny")),
    };
    Ok(PolicyStatement {
        sid,
        effect,
        principals: principals(s.get("Principal"))?,
        actions: strings(s.get("Action"), "Action")?,
        conditions: conditions(s.get("Condition"))?,
    })
}

fn principals(value: Option<&Value>) -> Result<Principals, String> {
    let Some(Value::Object(map)) = value else {
        return Err(
            "Principal must be an object of AWS and Service principals (\"*\" alone has no typed form: write {\"AWS\": \"*\"})"
                .to_string(),
        );
    };
    if let Some(key) = map.keys().find(|k| *k != "AWS" && *k != "Service") {
        return Err(format!("Principal {key} has no typed field"));
    }
    Ok(Principals {
        aws: optional_strings(map.get("AWS"), "Principal.AWS")?,
        service: optional_strings(map.get("Service"), "Principal.Service")?,
    })
}

type Conditions = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn conditions(value: Option<&Value>) -> Result<Conditions, String> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(operators) = value else {
        return Err("Condition is not an object".to_string());
    };
    operators
        .iter()
        .map(|(op, keys)| {
            let Value::Object(keys) = keys else {
                return Err(format!("Condition.{op} is not an object"));
            };
            let keys = keys
                .iter()
                .map(|(k, v)| Ok((k.clone(), strings(Some(v), &format!("Condition.{op}.{k}"))?)))
                .collect::<Result<BTreeMap<_, _>, String>>()?;
            Ok((op.clone(), keys))
        })
        .collect()
}

fn optional_strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match value {
        None => Ok(Vec::new()),
        some => strings(some, what),
    }
}

/// A string or a list of strings; IAM takes both, and the renderer writes a list of one as the
/// string, which IAM (and the comparison) reads as the same.
fn strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    let list = match value {
        Some(Value::String(s)) => return Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(format!(
                "{what} is missing or not a string or a list of strings"
            ));
        }
    };
    list.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("{what} holds {other}, not a string")),
        })
        .collect()
}

/// A lifecycle policy's text as typed rules, which the controller renders back to the same
/// meaning (its own validation included: a policy ECR holds but the kind refuses is refused).
pub fn lifecycle_rules(text: &str) -> Result<Vec<LifecycleRule>, String> {
    let parsed = lifecycle::parse(text).map_err(|e| e.to_string())?;
    let typed = parsed
        .iter()
        .map(lifecycle_rule)
        .collect::<Result<Vec<_>, String>>()?;
    let (_, rendered) = render_rules(&typed)?;
    if !lifecycle::policies_equivalent(&rendered, text) {
        return Err(not_the_same());
    }
    Ok(typed)
}

fn lifecycle_rule(rule: &lifecycle::Rule) -> Result<LifecycleRule, String> {
    let s = &rule.selection;
    let number = |n: u32| {
        i32::try_from(n).map_err(|_| format!("countNumber {n} is larger than the kind takes"))
    };
    let (count_type, count_number) = match s.count {
        Count::ImageCountMoreThan(n) => (LifecycleCountType::ImageCountMoreThan, number(n)?),
        Count::SinceImagePushed { days } => (LifecycleCountType::SinceImagePushed, number(days)?),
        Count::SinceImagePulled { days } => (LifecycleCountType::SinceImagePulled, number(days)?),
        Count::SinceImageTransitioned { days } => {
            (LifecycleCountType::SinceImageTransitioned, number(days)?)
        }
    };
    Ok(LifecycleRule {
        rule_priority: i32::try_from(rule.rule_priority)
            .map_err(|_| format!("rulePriority {} is too large", rule.rule_priority))?,
        description: rule.description.clone(),
        selection: LifecycleSelection {
            tag_status: match s.tag_status {
                TagStatus::Tagged => LifecycleTagStatus::Tagged,
                TagStatus::Untagged => LifecycleTagStatus::Untagged,
                TagStatus::Any => LifecycleTagStatus::Any,
            },
            tag_prefix_list: s.tag_prefix_list.clone(),
            tag_pattern_list: s.tag_pattern_list.clone(),
            // ECR's default, left out as the renderer leaves it out.
            storage_class: match s.storage_class {
                StorageClass::Standard => None,
                StorageClass::Archive => Some(LifecycleStorageClass::Archive),
            },
            count_type,
            count_unit: s.count.has_unit().then_some(LifecycleCountUnit::Days),
            count_number,
        },
        action: match rule.action {
            Action::Expire => LifecycleAction {
                type_: LifecycleActionType::Expire,
                target_storage_class: None,
            },
            Action::Transition => LifecycleAction {
                type_: LifecycleActionType::Transition,
                target_storage_class: Some(LifecycleTargetStorageClass::Archive),
            },
        },
    })
}
