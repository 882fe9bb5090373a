//! `config/iam/policy.json` grants exactly the AWS actions the operator calls.
//!
//! The calls are read from the source, not from a list kept here: every ECR and Secrets
//! Manager call goes through `EcrRegistry::outcome(OPERATION, ...)`, which counts it in
//! `CallStats`, so the operation names passed to `outcome` are the operator's API surface.
//! Adding a registry call without adding its action to the policy (or the other way round)
//! fails this test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The text of every `.rs` file under `dir`, by path.
fn sources(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).expect("read source");
                out.insert(p.display().to_string(), text);
            }
        }
    }
    out
}

/// The string literal or identifier at the start of `s` (after whitespace).
fn first_arg(s: &str) -> Option<Arg> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('"') {
        return rest.split('"').next().map(|l| Arg::Literal(l.to_string()));
    }
    let ident: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(Arg::Ident(ident))
}

enum Arg {
    Literal(String),
    Ident(String),
}

/// `const NAME: &str = "Value";` in a file.
fn string_consts(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, _) in text.match_indices("const ") {
        let rest = &text[i + "const ".len()..];
        let Some((name, rest)) = rest.split_once(':') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("&str") else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        if let Some(Arg::Literal(v)) = first_arg(rest) {
            out.entry(name.trim().to_string()).or_default().push(v);
        }
    }
    out
}

/// Every operation name passed to `outcome(...)` (a literal, or a `&str` constant of the same
/// file) or to `CallStats::record(...)` in `src/registry/`.
fn called_operations() -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (path, text) in sources(&root().join("src/registry")) {
        let consts = string_consts(&text);
        for pat in ["outcome(", ".record("] {
            for (i, _) in text.match_indices(pat) {
                // The definition `fn outcome<T, E, R>(` has no argument list here.
                match first_arg(&text[i + pat.len()..]) {
                    Some(Arg::Literal(op)) => {
                        ops.insert(op);
                    }
                    Some(Arg::Ident(id)) if id == "operation" || id == "self" || id == "op" => {}
                    Some(Arg::Ident(id)) => {
                        let values = consts.get(&id).unwrap_or_else(|| {
                            panic!("{path}: outcome({id}, ...) with {id} not a &str constant of the file")
                        });
                        // One `const OP` per function: each names its function's operation.
                        ops.extend(values.iter().cloned());
                    }
                    None => {}
                }
            }
        }
    }
    // ECR Public's calls are counted as `ecr-public:<Operation>`, their IAM action.
    ops.retain(|op| {
        op.strip_prefix("ecr-public:")
            .unwrap_or(op)
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
    });
    ops
}

/// Which AWS service an operation belongs to: Secrets Manager's operations all name a secret,
/// SQS's (the scan event queue) a message.
fn service_of(op: &str) -> &'static str {
    if op.contains("Secret") {
        "secretsmanager"
    } else if op.contains("Message") {
        "sqs"
    } else {
        "ecr"
    }
}

/// The IAM action that authorizes an operation: batch operations of SQS are authorized by
/// their single-message action ("DeleteMessageBatch" needs sqs:DeleteMessage).
fn action_of(op: &str) -> String {
    if op.starts_with("ecr-public:") {
        return op.to_string();
    }
    let service = service_of(op);
    match (service, op.strip_suffix("Batch")) {
        ("sqs", Some(single)) => format!("sqs:{single}"),
        _ => format!("{service}:{op}"),
    }
}

/// Actions the policy needs beyond the operations called, each with the source text that makes
/// it necessary: when the trigger disappears from the source, the action must go too.
const IMPLIED: &[(&str, &str, &str)] = &[
    (
        "secretsmanager:TagResource",
        "CreateSecret",
        "CreateSecret with tags (the operator tags the secrets it owns) also needs TagResource",
    ),
    (
        "kms:DescribeKey",
        "kms_key",
        "CreateRepository with a customer managed KMS key: ECR checks the key as the caller",
    ),
    (
        "kms:CreateGrant",
        "kms_key",
        "CreateRepository with a KMS key: ECR creates grants on the key on the caller's behalf",
    ),
    (
        "kms:RetireGrant",
        "kms_key",
        "DeleteRepository of a KMS-encrypted repository retires ECR's grants",
    ),
    (
        "iam:PassRole",
        "create_repository_creation_template()",
        "a repository creation template's customRoleArn is passed to ECR (the user guide, \"IAM permissions for creating repository creation templates\")",
    ),
];

struct Policy {
    /// action -> statement ids
    actions: BTreeMap<String, Vec<String>>,
}

fn policy() -> Policy {
    let path = root().join("config/iam/policy.json");
    let text = std::fs::read_to_string(&path).expect("config/iam/policy.json");
    let doc: Value = serde_json::from_str(&text).expect("policy JSON");
    assert_eq!(doc["Version"], "2012-10-17");
    let mut actions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for st in doc["Statement"].as_array().expect("Statement list") {
        assert_eq!(st["Effect"], "Allow", "{st}");
        assert!(
            st.get("NotAction").is_none() && st.get("NotResource").is_none(),
            "{st}"
        );
        let sid = st["Sid"]
            .as_str()
            .expect("every statement has a Sid")
            .to_string();
        let list: Vec<&str> = match &st["Action"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => panic!("{sid}: Action {other}"),
        };
        for a in list {
            assert!(!a.contains('*'), "{sid}: wildcard action {a}");
            assert!(
                actions.entry(a.to_string()).or_default().is_empty(),
                "{a} granted twice"
            );
            actions.get_mut(a).expect("just added").push(sid.clone());
        }
        assert!(
            st["Resource"].is_string() || st["Resource"].is_array(),
            "{sid}: Resource"
        );
    }
    Policy { actions }
}

#[test]
fn operations_are_found_in_the_source() {
    let ops = called_operations();
    // What the Repository controller has called from the start: the extraction works.
    for op in [
        "CreateRepository",
        "DescribeRepositories",
        "DeleteRepository",
        "TagResource",
        "SetRepositoryPolicy",
        // The PublicRepository controller's, counted under their IAM action.
        "ecr-public:CreateRepository",
        "ecr-public:PutRepositoryCatalogData",
    ] {
        assert!(ops.contains(op), "{op} not found in src/registry: {ops:?}");
    }
    // Every write operation CallStats knows is a call the code makes.
    let stats = std::fs::read_to_string(root().join("src/registry/stats.rs")).expect("stats.rs");
    let start = stats.find("WRITE_OPERATIONS").expect("WRITE_OPERATIONS");
    let end = start + stats[start..].find("];").expect("end of WRITE_OPERATIONS");
    for lit in stats[start..end].split('"').skip(1).step_by(2) {
        assert!(
            ops.contains(lit),
            "WRITE_OPERATIONS names {lit}, which src/registry never calls"
        );
    }
}

/// Verbs of operations that change something in AWS.
const WRITE_VERBS: &[&str] = &[
    "Create",
    "Put",
    "Delete",
    "Update",
    "Tag",
    "Untag",
    "Set",
    "Start",
    "Register",
    "Deregister",
];

#[test]
fn every_call_that_changes_something_is_a_fenced_counted_write() {
    let stats = std::fs::read_to_string(root().join("src/registry/stats.rs")).expect("stats.rs");
    let start = stats.find("WRITE_OPERATIONS").expect("WRITE_OPERATIONS");
    let end = start + stats[start..].find("];").expect("end of WRITE_OPERATIONS");
    let writes: BTreeSet<&str> = stats[start..end].split('"').skip(1).step_by(2).collect();
    let missing: Vec<String> = called_operations()
        .into_iter()
        // Deleting a read message from the scan event queue changes no registry.
        .filter(|op| service_of(op) != "sqs")
        .filter(|op| WRITE_VERBS.iter().any(|v| op.starts_with(v)))
        .filter(|op| !writes.contains(op.as_str()))
        .collect();
    // Outside WRITE_OPERATIONS, the leader fence lets the call through on a follower and the
    // tests that count writes do not see it.
    assert!(
        missing.is_empty(),
        "writes missing from WRITE_OPERATIONS: {missing:?}"
    );
}

#[test]
fn iam_policy_grants_exactly_the_calls_the_operator_makes() {
    let ops = called_operations();
    let all_source: String = sources(&root().join("src")).into_values().collect();
    let mut want: BTreeMap<String, String> = ops
        .iter()
        .map(|op| (action_of(op), format!("called as {op}")))
        .collect();
    for (action, trigger, why) in IMPLIED {
        if all_source.contains(trigger) {
            want.insert(action.to_string(), why.to_string());
        }
    }
    let policy = policy();
    let granted: BTreeSet<&String> = policy.actions.keys().collect();
    let wanted: BTreeSet<&String> = want.keys().collect();
    let missing: Vec<_> = wanted.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&wanted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "config/iam/policy.json differs from what src/ calls\n  missing: {missing:?}\n  not called: {extra:?}"
    );
    // Only the services the operator talks to.
    for action in granted {
        let service = action.split(':').next().unwrap_or_default();
        assert!(
            ["ecr", "ecr-public", "secretsmanager", "kms", "sqs", "iam"].contains(&service),
            "{action}"
        );
    }
}

/// Secrets Manager access is confined to the secrets the operator mirrors, KMS use to requests
/// that ECR makes, and roles are passed to ECR only.
#[test]
fn iam_policy_scopes_secrets_and_kms() {
    let text = std::fs::read_to_string(root().join("config/iam/policy.json")).expect("policy");
    let doc: Value = serde_json::from_str(&text).expect("policy JSON");
    for st in doc["Statement"].as_array().expect("statements") {
        let actions = st["Action"].to_string();
        if actions.contains("secretsmanager:") {
            assert_eq!(
                st["Resource"], "arn:aws:secretsmanager:*:*:secret:ecr-pullthroughcache/*",
                "{st}"
            );
        }
        if actions.contains("sqs:") {
            assert_eq!(st["Resource"], "arn:aws:sqs:*:*:ecr-operator-*", "{st}");
        }
        if actions.contains("iam:") {
            assert_eq!(
                st["Condition"]["StringEquals"]["iam:PassedToService"], "ecr.amazonaws.com",
                "{st}"
            );
        }
        if actions.contains("kms:") {
            assert_eq!(
                st["Condition"]["StringLike"]["kms:ViaService"], "ecr.*.amazonaws.com",
                "{st}"
            );
        }
    }
}

/// The derivation above is complete only while every AWS call goes through `src/registry/`:
/// no other module may use an AWS SDK client.
#[test]
fn aws_sdks_are_used_only_in_the_registry_module() {
    let registry = root().join("src/registry");
    for (path, text) in sources(&root().join("src")) {
        if Path::new(&path).starts_with(&registry) {
            continue;
        }
        for sdk in ["aws_sdk_", "aws_config::"] {
            assert!(
                !text.contains(sdk),
                "{path} uses {sdk}: route AWS calls through src/registry (counted by CallStats, \
                 checked against config/iam/policy.json)"
            );
        }
    }
}

/// The JSON documents of a fenced ```json block in `text`.
fn json_blocks(text: &str) -> Vec<serde_json::Value> {
    text.split("```json\n")
        .skip(1)
        .filter_map(|block| block.split("\n```").next())
        .map(|block| serde_json::from_str(block).expect("a JSON block"))
        .collect()
}

/// The two policies a RegistryTarget's role needs beside policy.json: the target role's trust
/// policy admits the operator's role to `sts:AssumeRole` (the one call through which aws-config's
/// assume-role provider reaches a target) under an external id; the operator's own role may
/// call `sts:AssumeRole` on target roles only. docs/install.md quotes both files as they are.
#[test]
fn target_role_policies_are_the_files_the_install_guide_quotes() {
    let read = |path: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(root().join(path)).expect(path);
        serde_json::from_str(&text).expect(path)
    };
    let trust = read("config/iam/target-trust-policy.json");
    let assume = read("config/iam/assume-target-roles.json");
    let statement = |doc: &serde_json::Value| doc["Statement"][0].clone();
    let (t, a) = (statement(&trust), statement(&assume));
    assert_eq!(trust["Statement"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (t["Effect"].as_str(), t["Action"].as_str()),
        (Some("Allow"), Some("sts:AssumeRole"))
    );
    let principal = t["Principal"]["AWS"].as_str().unwrap_or_default();
    assert!(
        principal.starts_with("arn:aws:iam::") && principal.contains(":role/"),
        "{principal}"
    );
    assert!(
        t["Condition"]["StringEquals"]["sts:ExternalId"].is_string(),
        "{t}"
    );
    assert_eq!(
        (a["Effect"].as_str(), a["Action"].as_str()),
        (Some("Allow"), Some("sts:AssumeRole"))
    );
    for resource in a["Resource"].as_array().expect("a list of role ARNs") {
        let arn = resource.as_str().unwrap_or_default();
        assert!(
            arn.starts_with("arn:aws:iam::") && arn.contains(":role/"),
            "{arn}"
        );
    }
    let guide = std::fs::read_to_string(root().join("docs/install.md")).expect("install guide");
    let quoted = json_blocks(&guide);
    for (path, doc) in [
        ("config/iam/target-trust-policy.json", &trust),
        ("config/iam/assume-target-roles.json", &assume),
    ] {
        assert!(guide.contains(path), "docs/install.md names {path}");
        assert!(
            quoted.contains(doc),
            "docs/install.md quotes {path} as it is"
        );
    }
}
