//! Repository policy: rendering typed statements to IAM JSON, and semantic comparison.
//!
//! ECR returns policy text reformatted, and IAM treats `"x"` and `["x"]` alike and lists as
//! sets. Comparing text would rewrite the policy on every resync (ACK's endless update loop);
//! comparing normalized JSON writes only when the meaning changed.
//!
//! ECR also bounds the text (10,240 characters): [`render_checked`] refuses a longer policy before
//! any call, so the controller reports it as an invalid spec instead of sending it.

use serde_json::{Map, Value, json};

use crate::api::repository::{Effect, PolicyStatement, RepositoryPolicy};

/// The IAM policy document for a typed policy.
pub fn render(policy: &RepositoryPolicy) -> Value {
    let statements: Vec<Value> = policy
        .statements
        .iter()
        .map(|s| Value::Object(render_statement(s)))
        .collect();
    json!({
        "Version": policy.version.as_deref().unwrap_or("2012-10-17"),
        "Statement": statements,
    })
}

/// One statement in IAM's JSON shape: `Sid`, `Effect`, `Principal`, `Action`, `Condition`.
/// Shared with the registry policy, which adds `Resource`.
pub fn render_statement(s: &PolicyStatement) -> Map<String, Value> {
    let mut principal = Map::new();
    if !s.principals.aws.is_empty() {
        principal.insert("AWS".into(), list_or_one(&s.principals.aws));
    }
    if !s.principals.service.is_empty() {
        principal.insert("Service".into(), list_or_one(&s.principals.service));
    }
    let mut st = Map::new();
    if let Some(sid) = &s.sid {
        st.insert("Sid".into(), json!(sid));
    }
    st.insert(
        "Effect".into(),
        json!(match s.effect {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }),
    );
    st.insert("Principal".into(), Value::Object(principal));
    st.insert("Action".into(), list_or_one(&s.actions));
    if !s.conditions.is_empty() {
        let cond: Map<String, Value> = s
            .conditions
            .iter()
            .map(|(op, kv)| {
                let inner: Map<String, Value> = kv
                    .iter()
                    .map(|(k, v)| (k.clone(), list_or_one(v)))
                    .collect();
                (op.clone(), Value::Object(inner))
            })
            .collect();
        st.insert("Condition".into(), Value::Object(cond));
    }
    st
}

/// The longest repository policy text ECR accepts, in characters: shape RepositoryPolicyText
/// (`max: 10240`, the `policyText` of SetRepositoryPolicy) in the ECR API model (botocore
/// `data/ecr/2015-09-21/service-2.json`). ECR refuses a longer one with
/// InvalidParameterException.
pub const MAX_POLICY_CHARS: usize = 10_240;

/// A rendered policy longer than ECR accepts: refused before any call, as an invalid spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "spec.policy renders to {chars} characters of policy text; ECR accepts at most {MAX_POLICY_CHARS} (RepositoryPolicyText): remove statements, principals or actions, or use wildcards such as ecr:BatchGet*"
)]
pub struct PolicyTooLarge {
    /// The rendered text's length in characters.
    pub chars: usize,
}

/// Checks policy text against [`MAX_POLICY_CHARS`]. ECR's limit counts characters, not bytes.
pub fn check_size(text: &str) -> Result<(), PolicyTooLarge> {
    let chars = text.chars().count();
    if chars > MAX_POLICY_CHARS {
        Err(PolicyTooLarge { chars })
    } else {
        Ok(())
    }
}

/// [`render`], refused when the text the controller sends (the document's compact JSON,
/// `Value::to_string`) is longer than ECR accepts.
pub fn render_checked(policy: &RepositoryPolicy) -> Result<Value, PolicyTooLarge> {
    let doc = render(policy);
    check_size(&doc.to_string())?;
    Ok(doc)
}

pub(crate) fn list_or_one(items: &[String]) -> Value {
    match items {
        [one] => json!(one),
        many => json!(many),
    }
}

/// True when two policy documents mean the same: key order, whitespace, list order,
/// duplicates and `"x"` versus `["x"]` do not matter.
pub fn equivalent(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

/// [`equivalent`] for policy text as ECR returns it; text that is not JSON never matches.
pub fn text_equivalent(text: &str, desired: &Value) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| equivalent(&v, desired))
}

fn normalize(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut norm: Vec<Value> = items.iter().map(normalize).collect();
            norm.sort_by_key(|x| x.to_string());
            norm.dedup();
            if norm.len() == 1 {
                norm.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(norm)
            }
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repository::Principals;
    use proptest::prelude::*;

    fn pull_policy() -> RepositoryPolicy {
        RepositoryPolicy {
            version: Some("2012-10-17".into()),
            statements: vec![PolicyStatement {
                sid: Some("Pull".into()),
                effect: Effect::Allow,
                principals: Principals {
                    aws: vec!["arn:aws:iam::111122223333:root".into()],
                    service: vec![],
                },
                actions: vec![
                    "ecr:BatchGetImage".into(),
                    "ecr:GetDownloadUrlForLayer".into(),
                ],
                conditions: Default::default(),
            }],
        }
    }

    #[test]
    fn renders_iam_shape() {
        let v = render(&pull_policy());
        assert_eq!(
            v["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(v["Statement"][0]["Action"][1], "ecr:GetDownloadUrlForLayer");
        assert_eq!(v["Version"], "2012-10-17");
    }

    #[test]
    fn reformatted_and_reordered_text_is_equivalent() {
        let desired = render(&pull_policy());
        let ecr_text = r#"{
          "Statement" : [ {
            "Action" : [ "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage" ],
            "Principal" : { "AWS" : [ "arn:aws:iam::111122223333:root" ] },
            "Effect" : "Allow", "Sid" : "Pull"
          } ],
          "Version" : "2012-10-17"
        }"#;
        assert!(text_equivalent(ecr_text, &desired));
    }

    #[test]
    fn changed_meaning_is_not_equivalent() {
        let desired = render(&pull_policy());
        let mut other = pull_policy();
        other.statements[0].effect = Effect::Deny;
        assert!(!equivalent(&desired, &render(&other)));
        let mut more = pull_policy();
        more.statements[0].actions.push("ecr:PutImage".into());
        assert!(!equivalent(&desired, &render(&more)));
        assert!(!text_equivalent("not json", &desired));
    }

    /// fuzz/seeds/policy_json/crash-float-roundtrip: a number with more digits than an f64 holds
    /// must print back to the value it was parsed as, or a document read from ECR would not equal
    /// itself after the operator writes it back (serde_json's float_roundtrip).
    #[test]
    fn long_numbers_survive_print_and_parse() {
        let text = include_str!("../../../fuzz/seeds/policy_json/crash-float-roundtrip");
        let v: Value = serde_json::from_str(text).unwrap();
        assert!(text_equivalent(&v.to_string(), &v));
        let doc: Value =
            serde_json::from_str(r#"{"Version":"2012-10-17","n":0.30000000000000004,"m":1e-320}"#)
                .unwrap();
        assert!(text_equivalent(&doc.to_string(), &doc));
    }

    /// The pull policy with one more action, padded so that the rendered text is `chars` long.
    fn policy_of(chars: usize, pad: char) -> RepositoryPolicy {
        let mut p = pull_policy();
        p.statements[0].actions.push("ecr:".into());
        let base = render(&p).to_string().chars().count();
        let action = format!("ecr:{}", pad.to_string().repeat(chars - base));
        p.statements[0].actions[2] = action;
        p
    }

    #[test]
    fn policy_text_is_refused_past_ecrs_limit() {
        let at_limit = policy_of(MAX_POLICY_CHARS, 'A');
        let doc = render_checked(&at_limit).unwrap();
        assert_eq!(doc.to_string().chars().count(), MAX_POLICY_CHARS);
        assert_eq!(doc, render(&at_limit));
        let over = policy_of(MAX_POLICY_CHARS + 1, 'A');
        let err = render_checked(&over).unwrap_err();
        assert_eq!(err, PolicyTooLarge { chars: 10_241 });
        let msg = err.to_string();
        assert!(
            msg.contains("10241 characters") && msg.contains("at most 10240"),
            "{msg}"
        );
        assert!(msg.starts_with("spec.policy"), "{msg}");
        // Characters, not bytes: 10,240 characters of which many take two bytes still fit.
        let wide = policy_of(MAX_POLICY_CHARS, 'é');
        assert!(render(&wide).to_string().len() > MAX_POLICY_CHARS);
        assert!(render_checked(&wide).is_ok());
        assert!(check_size("").is_ok());
        assert!(check_size(&"x".repeat(MAX_POLICY_CHARS + 1)).is_err());
    }

    proptest! {
        #[test]
        fn float_text_round_trips(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let v = serde_json::json!({"n": x});
            prop_assert!(text_equivalent(&v.to_string(), &v));
        }

        #[test]
        fn equivalence_ignores_order_and_duplicates(mut actions in proptest::collection::vec("ecr:[A-Za-z]{1,12}", 1..8), seed in any::<u64>()) {
            let mut p = pull_policy();
            p.statements[0].actions = actions.clone();
            let a = render(&p);
            // Shuffle deterministically and duplicate one entry.
            let n = actions.len();
            actions.rotate_left((seed as usize) % n);
            actions.push(actions[0].clone());
            p.statements[0].actions = actions;
            let b = render(&p);
            prop_assert!(equivalent(&a, &b));
            prop_assert!(equivalent(&b, &a));
        }
    }
}
