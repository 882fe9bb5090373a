//! Registry policy: the typed statements of RegistryPolicy objects rendered to the IAM JSON of
//! ECR's one registry policy (PutRegistryPolicy). Comparison with what ECR holds is the
//! repository policy's ([`crate::repository_policy::equivalent`]).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::api::registry_policy::{RegistryPolicySpec, RegistryPolicyStatement};
use crate::repository_policy::{list_or_one, render_statement};

/// The longest registry policy text ECR accepts, in characters: shape RegistryPolicyText
/// (`max: 10240`, the `policyText` of PutRegistryPolicy) in the ECR API model (botocore
/// `data/ecr/2015-09-21/service-2.json`).
pub const MAX_REGISTRY_POLICY_CHARS: usize = 10_240;

/// The policy language version of the merged document.
pub const VERSION: &str = "2012-10-17";

/// One statement in IAM's JSON shape, with its `Resource`.
pub fn render_statement_with_resources(s: &RegistryPolicyStatement) -> Value {
    let mut st = render_statement(&s.statement);
    st.insert("Resource".into(), list_or_one(&s.resources));
    Value::Object(st)
}

/// The registry policy document holding `statements` (already rendered), in order.
pub fn document(statements: &[Value]) -> Value {
    json!({ "Version": VERSION, "Statement": statements })
}

/// The length ECR counts of a document: characters of its compact JSON, the text the
/// controller sends.
pub fn text_chars(doc: &Value) -> usize {
    doc.to_string().chars().count()
}

/// Problems in one object's statements that its schema does not catch (or that a client
/// skipping validation could send): a statement id used twice, an action that is not an ECR
/// action (scope V2 allows every ECR action and nothing else).
pub fn validate(spec: &RegistryPolicySpec) -> Result<(), String> {
    let mut problems = Vec::new();
    if spec.statements.is_empty() {
        problems.push("spec.statements: at least one statement is needed".to_string());
    }
    let mut seen = BTreeSet::new();
    for (i, s) in spec.statements.iter().enumerate() {
        if let Some(sid) = &s.statement.sid
            && !seen.insert(sid.as_str())
        {
            problems.push(format!(
                "spec.statements[{i}].sid: {sid} is used by an earlier statement; statement ids must be unique"
            ));
        }
        for a in s
            .statement
            .actions
            .iter()
            .filter(|a| !a.starts_with("ecr:"))
        {
            problems.push(format!(
                "spec.statements[{i}].actions: {a} is not an ECR action; a registry policy grants only ecr: actions"
            ));
        }
        if s.resources.is_empty() {
            problems.push(format!(
                "spec.statements[{i}].resources: at least one resource is needed"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The statement ids of `spec`, in order.
pub fn sids(spec: &RegistryPolicySpec) -> impl Iterator<Item = &str> {
    spec.statements
        .iter()
        .filter_map(|s| s.statement.sid.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repository::{Effect, PolicyStatement, Principals};
    use crate::repository_policy::text_equivalent;

    fn statement(sid: Option<&str>, actions: &[&str]) -> RegistryPolicyStatement {
        RegistryPolicyStatement {
            statement: PolicyStatement {
                sid: sid.map(str::to_string),
                effect: Effect::Allow,
                principals: Principals {
                    aws: vec!["arn:aws:iam::111122223333:root".into()],
                    service: vec![],
                },
                actions: actions.iter().map(|a| a.to_string()).collect(),
                conditions: Default::default(),
            },
            resources: vec!["arn:aws:ecr:us-west-2:444455556666:repository/*".into()],
        }
    }

    #[test]
    fn renders_the_user_guide_example() {
        // "Private registry policy examples": replicate all repositories.
        let st = statement(
            Some("ReplicationAccessCrossAccount"),
            &["ecr:CreateRepository", "ecr:ReplicateImage"],
        );
        let doc = document(&[render_statement_with_resources(&st)]);
        let guide = r#"{
            "Version":"2012-10-17",
            "Statement":[{
                "Sid":"ReplicationAccessCrossAccount",
                "Effect":"Allow",
                "Principal":{"AWS":"arn:aws:iam::111122223333:root"},
                "Action":["ecr:CreateRepository","ecr:ReplicateImage"],
                "Resource":["arn:aws:ecr:us-west-2:444455556666:repository/*"]
            }]
        }"#;
        assert!(text_equivalent(guide, &doc), "{doc}");
        assert_eq!(text_chars(&doc), doc.to_string().len());
    }

    #[test]
    fn validation_table() {
        let ok = ["ecr:ReplicateImage"];
        let cases: Vec<(&str, Vec<RegistryPolicyStatement>, Option<&str>)> = vec![
            ("one statement", vec![statement(Some("A"), &ok)], None),
            (
                "statements without sids",
                vec![statement(None, &ok), statement(None, &ok)],
                None,
            ),
            ("no statement", vec![], Some("at least one statement")),
            (
                "a sid twice",
                vec![statement(Some("A"), &ok), statement(Some("A"), &ok)],
                Some("statements[1].sid: A is used by an earlier statement"),
            ),
            (
                "another service's action",
                vec![statement(
                    Some("A"),
                    &["ecr:ReplicateImage", "s3:GetObject"],
                )],
                Some("s3:GetObject is not an ECR action"),
            ),
            (
                "every action of every service",
                vec![statement(Some("A"), &["*"])],
                Some("* is not an ECR action"),
            ),
            (
                "ECR's wildcard",
                vec![statement(Some("A"), &["ecr:*"])],
                None,
            ),
            (
                "no resource",
                vec![RegistryPolicyStatement {
                    resources: vec![],
                    ..statement(Some("A"), &ok)
                }],
                Some("statements[0].resources: at least one resource"),
            ),
        ];
        for (what, statements, want) in cases {
            let spec = RegistryPolicySpec {
                registry_ref: None,
                statements,
            };
            match (validate(&spec), want) {
                (Ok(()), None) => {}
                (Err(m), Some(part)) => assert!(m.contains(part), "{what}: {m}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }
}
