//! Tables for the pure part of `export`: names, policy documents, lifecycle policies (examples
//! from the ECR user guide and API reference), and a whole registry.

use std::collections::BTreeMap;

use ecr_operator::api::lifecycle_policy::{
    LifecycleActionType, LifecycleCountType, LifecycleCountUnit, LifecycleStorageClass,
    LifecycleTagStatus, LifecycleTargetStorageClass,
};
use ecr_operator::api::repository::{Effect, EncryptionType, TagMutability};
use ecr_operator::api::scan_policy::{EnforcementMode, ScanType};
use ecr_operator::api::tags::Tags;
use ecr_operator::registry::{
    CreationTemplate, PullThroughCacheRuleInfo, ReplicationRuleInfo, ReplicationSettings,
    RepositoryInfo, ScanningRuleInfo, ScanningSettings,
};

use super::convert::{Object, Observed, ObservedRepository, Options, export};
use super::names::{is_subdomain, object_names};
use super::policy::{lifecycle_rules, registry_policy, repository_policy};
use super::to_yaml;

/// ECR names in, (ECR name, object name) pairs expected.
type NameCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

#[test]
fn object_names_are_subdomains_and_collisions_are_told_apart() {
    let cases: &[NameCase] = &[
        (&["team/a__b"], &[("team/a__b", "team.a--b")]),
        (&["web--frontend"], &[("web--frontend", "web--frontend")]),
        (&["ROOT", "prod/"], &[("ROOT", "root"), ("prod/", "prod")]),
        // `a-b` is its own name and keeps it; `a_b` maps onto it and takes a hash.
        (&["a_b", "a-b"], &[("a-b", "a-b"), ("a_b", "a-b-04f4ad51")]),
        // `x.y` is the shared name; `x/y` takes a hash; `x_y.z` has its own name.
        (
            &["x/y", "x.y", "x_y.z"],
            &[("x.y", "x.y"), ("x/y", "x.y-7f2d6333"), ("x_y.z", "x-y.z")],
        ),
        // Neither is the shared name `g-h.i`: both take a hash of their own.
        (
            &["g_h/i", "g_h.i"],
            &[("g_h/i", "g-h.i-f9f101e1"), ("g_h.i", "g-h.i-f9f4bb24")],
        ),
    ];
    for (input, want) in cases {
        let got = object_names(input.iter().copied());
        let reversed = object_names(input.iter().rev().copied());
        assert_eq!(got, reversed, "order of listing must not matter: {input:?}");
        for (ecr, name) in *want {
            assert_eq!(got[*ecr], *name, "{ecr}");
            assert!(is_subdomain(name), "{name}");
        }
    }
    let long = format!("{}/{}", "a".repeat(200), "b".repeat(55));
    let name = &object_names([long.as_str()])[&long];
    assert!(name.len() <= 253 && is_subdomain(name), "{name}");
}

/// "Repository policy examples" (ECR user guide): allow another account to pull.
const PULL_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "AllowPull",
    "Effect": "Allow",
    "Principal": {"AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:root"]},
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}
  }]
}"#;

#[test]
fn repository_policies_read_into_the_typed_form_or_are_refused() {
    let typed = repository_policy(PULL_POLICY).unwrap();
    assert_eq!(typed.version.as_deref(), Some("2012-10-17"));
    let s = &typed.statements[0];
    assert_eq!(s.sid.as_deref(), Some("AllowPull"));
    assert_eq!(s.effect, Effect::Allow);
    assert_eq!(s.principals.aws.len(), 2);
    assert_eq!(
        s.actions,
        ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    );
    assert_eq!(
        s.conditions["StringEquals"]["aws:PrincipalOrgID"],
        ["o-abc123"]
    );
    // One statement as an object, a service principal, an action as a string.
    let one = r#"{"Version":"2008-10-17","Statement":{"Effect":"Deny","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"ecr:*"}}"#;
    let typed = repository_policy(one).unwrap();
    assert_eq!(
        typed.statements[0].principals.service,
        ["codebuild.amazonaws.com"]
    );
    assert_eq!(typed.statements[0].effect, Effect::Deny);

    let statement = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#);
    let refused = [
        ("not json", "{".to_string(), "not JSON"),
        (
            "NotPrincipal",
            statement(
                r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::1:root"},"Action":"ecr:*"}"#,
            ),
            "NotPrincipal has no typed field",
        ),
        (
            "Principal *",
            statement(r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*"}"#),
            "\"*\" alone has no typed form",
        ),
        (
            "federated principal",
            statement(r#"{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"ecr:*"}"#),
            "Principal Federated",
        ),
        (
            "boolean condition",
            statement(
                r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":false}}}"#,
            ),
            "not a string",
        ),
        (
            "Resource in a repository policy",
            statement(
                r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:*","Resource":"*"}"#,
            ),
            "Resource has no typed field",
        ),
        (
            "another service's action",
            statement(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject"}"#),
            "s3:GetObject is not an ecr: action",
        ),
        (
            "sid with a dash",
            statement(r#"{"Sid":"a-b","Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:*"}"#),
            "letters and digits",
        ),
        (
            "no version",
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:*"}]}"#
                .to_string(),
            "Version is missing",
        ),
        (
            "version",
            r#"{"Version":"2010-01-01","Statement":[]}"#.to_string(),
            "Version",
        ),
    ];
    for (what, text, want) in refused {
        let err = repository_policy(&text).unwrap_err();
        assert!(err.contains(want), "{what}: {err}");
    }
}

#[test]
fn registry_policies_read_into_the_typed_form_or_are_refused() {
    // "Private registry policy examples": replication to another account.
    let guide = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReplicationAccessCrossAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":["arn:aws:ecr:us-west-2:444455556666:repository/*"]}]}"#;
    let spec = registry_policy(guide).unwrap();
    let s = &spec.statements[0];
    assert_eq!(
        s.statement.sid.as_deref(),
        Some("ReplicationAccessCrossAccount")
    );
    assert_eq!(
        s.resources,
        ["arn:aws:ecr:us-west-2:444455556666:repository/*"]
    );
    assert_eq!(
        s.statement.actions,
        ["ecr:CreateRepository", "ecr:ReplicateImage"]
    );
    let cases = [
        (guide.replace("2012-10-17", "2008-10-17"), "Version"),
        (
            guide.replace(
                r#","Resource":["arn:aws:ecr:us-west-2:444455556666:repository/*"]"#,
                "",
            ),
            "Resource is missing",
        ),
        (
            guide.replace(r#"["ecr:CreateRepository","ecr:ReplicateImage"]"#, r#""*""#),
            "* is not an ECR action",
        ),
    ];
    for (text, want) in cases {
        let err = registry_policy(&text).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn lifecycle_policies_read_into_typed_rules_or_are_refused() {
    // "Examples of lifecycle policies": untagged images older than 14 days, keep 30 prod images,
    // and the archive pair (archive after 30 days without pull, expire 365 days after).
    let text = r#"{"rules":[
      {"rulePriority":1,"description":"Expire images older than 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}},
      {"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":30},"action":{"type":"expire"}},
      {"rulePriority":3,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}},
      {"rulePriority":4,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}
    ]}"#;
    let rules = lifecycle_rules(text).unwrap();
    let summary: Vec<_> = rules
        .iter()
        .map(|r| {
            let s = &r.selection;
            (
                r.rule_priority,
                s.tag_status,
                s.storage_class,
                s.count_type,
                s.count_unit,
                s.count_number,
                r.action.type_,
                r.action.target_storage_class,
            )
        })
        .collect();
    use LifecycleCountType as C;
    use LifecycleTagStatus as T;
    let days = Some(LifecycleCountUnit::Days);
    assert_eq!(
        summary,
        [
            (
                1,
                T::Untagged,
                None,
                C::SinceImagePushed,
                days,
                14,
                LifecycleActionType::Expire,
                None
            ),
            (
                2,
                T::Tagged,
                None,
                C::ImageCountMoreThan,
                None,
                30,
                LifecycleActionType::Expire,
                None
            ),
            (
                3,
                T::Any,
                None,
                C::SinceImagePulled,
                days,
                30,
                LifecycleActionType::Transition,
                Some(LifecycleTargetStorageClass::Archive)
            ),
            (
                4,
                T::Any,
                Some(LifecycleStorageClass::Archive),
                C::SinceImageTransitioned,
                days,
                365,
                LifecycleActionType::Expire,
                None
            ),
        ]
    );
    assert_eq!(
        rules[0].description.as_deref(),
        Some("Expire images older than 14 days")
    );
    assert_eq!(rules[1].selection.tag_prefix_list, ["prod"]);
    for (text, want) in [
        ("[]", "expected a JSON object"),
        (
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"},"extra":1}]}"#,
            "extra",
        ),
        // Two `any` rules of one storage class: the kind's validation refuses what it cannot hold.
        (
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}"#,
            "invalid lifecycle rules",
        ),
    ] {
        let err = lifecycle_rules(text).unwrap_err();
        assert!(err.contains(want), "{text}: {err}");
    }
}

fn repo(
    name: &str,
    tags: &[(&str, &str)],
    policy: Option<&str>,
    lifecycle: Option<&str>,
) -> ObservedRepository {
    ObservedRepository {
        info: RepositoryInfo {
            name: name.to_string(),
            arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{name}"),
            uri: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}"),
            registry_id: "123456789012".to_string(),
            created_at: None,
            tag_mutability: "IMMUTABLE_WITH_EXCLUSION".to_string(),
            tag_mutability_exclusions: vec!["latest".to_string()],
            scan_on_push: true,
            encryption_type: "KMS".to_string(),
            kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/k".to_string()),
        },
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        policy: policy.map(str::to_string),
        lifecycle_policy: lifecycle.map(str::to_string),
    }
}

fn registry() -> Observed {
    let lifecycle = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    Observed {
        repositories: vec![
            repo("team/a__b", &[("env", "prod"), ("aws:cloudformation:stack-name", "s")], Some(PULL_POLICY), Some(lifecycle)),
            repo("owned", &[("ecr.operator.dev/owner", "c/ns/owned")], None, None),
            repo("bad/policy", &[("k", "v*")], Some(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#), None),
        ],
        replication: ReplicationSettings {
            rules: vec![ReplicationRuleInfo {
                destinations: vec![("eu-west-1".to_string(), "123456789012".to_string())],
                filters: vec!["team".to_string()],
                delete_replication: false,
            }],
        },
        scanning: ScanningSettings {
            scan_type: "ENHANCED".to_string(),
            rules: vec![ScanningRuleInfo { frequency: "CONTINUOUS_SCAN".to_string(), filters: vec!["team/*".to_string()] }],
        },
        registry_policy: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}"#.to_string()),
        pull_through_cache_rules: vec![PullThroughCacheRuleInfo {
            prefix: "quay".to_string(),
            upstream_registry_url: "quay.io".to_string(),
            registry_id: "123456789012".to_string(),
            upstream_registry: Some("quay".to_string()),
            upstream_repository_prefix: Some("ROOT".to_string()),
            credential_arn: None,
            custom_role_arn: None,
            created_at: None,
            updated_at: None,
        }],
        templates: vec![CreationTemplate {
            prefix: "prod/".to_string(),
            encryption_type: "AES256".to_string(),
            tag_mutability: "IMMUTABLE".to_string(),
            lifecycle_policy: Some(lifecycle.to_string()),
            applied_for: vec!["REPLICATION".to_string(), "PULL_THROUGH_CACHE".to_string()],
            resource_tags: BTreeMap::from([("team".to_string(), "a".to_string())]),
            ..Default::default()
        }],
        // Exported on their own (export/registry_settings.rs); none here.
        registry_settings: Default::default(),
    }
}

fn kind_and_name(o: &Object) -> (&'static str, String) {
    use kube::ResourceExt;
    match o {
        Object::RepositoryAccessPolicy(o) => ("RepositoryAccessPolicy", o.name_any()),
        Object::Repository(o) => ("Repository", o.name_any()),
        Object::LifecyclePolicy(o) => ("LifecyclePolicy", o.name_any()),
        Object::ReplicationConfig(o) => ("ReplicationConfig", o.name_any()),
        Object::ScanPolicy(o) => ("ScanPolicy", o.name_any()),
        Object::RegistryPolicy(o) => ("RegistryPolicy", o.name_any()),
        Object::PullThroughCacheRule(o) => ("PullThroughCacheRule", o.name_any()),
        Object::RepositoryCreationTemplate(o) => ("RepositoryCreationTemplate", o.name_any()),
        Object::RegistrySettings(o) => ("RegistrySettings", o.name_any()),
    }
}

#[test]
fn a_registry_exports_in_a_stable_order_with_what_was_left_out() {
    let options = Options {
        namespace: "imported".to_string(),
        access_policy: true,
    };
    let out = export(&registry(), &options);
    let listed: Vec<_> = out.objects.iter().map(kind_and_name).collect();
    let want = [
        ("RepositoryAccessPolicy", "ecr-export-imported"),
        ("Repository", "bad.policy"),
        ("Repository", "team.a--b"),
        ("LifecyclePolicy", "team.a--b"),
        ("ReplicationConfig", "replication"),
        ("ScanPolicy", "registry-scanning"),
        ("PullThroughCacheRule", "quay"),
        ("RepositoryCreationTemplate", "prod"),
    ];
    let want: Vec<_> = want.iter().map(|(k, n)| (*k, n.to_string())).collect();
    assert_eq!(listed, want);
    let notes: Vec<_> = out
        .notes
        .iter()
        .map(|n| (n.subject.as_str(), n.refused))
        .collect();
    assert_eq!(
        notes,
        [
            ("repository owned", false),
            ("repository bad/policy: tag k", true),
            ("repository bad/policy: policy", true),
            ("registry policy", true),
        ]
    );
    let Object::RepositoryAccessPolicy(grant) = &out.objects[0] else {
        panic!()
    };
    assert_eq!(grant.spec.repositories, ["bad/policy", "team/a__b"]);
    assert!(grant.spec.allow_adoption);
    let Object::Repository(r) = &out.objects[2] else {
        panic!()
    };
    assert_eq!(r.metadata.namespace.as_deref(), Some("imported"));
    assert_eq!(r.spec.repository_name.as_deref(), Some("team/a__b"));
    assert!(r.spec.adopt);
    assert_eq!(
        r.spec.image_tag_mutability,
        TagMutability::ImmutableWithExclusion
    );
    assert_eq!(
        r.spec.image_tag_mutability_exclusion_filters[0].filter,
        "latest"
    );
    let encryption = r.spec.encryption.as_ref().unwrap();
    assert_eq!(encryption.encryption_type, EncryptionType::Kms);
    assert!(r.spec.scan_on_push);
    // aws: tags are AWS's; they are neither exported nor reported.
    assert_eq!(r.spec.tags, Tags::from_iter([("env", "prod")]));
    assert!(r.spec.policy.is_some());
    let Object::LifecyclePolicy(lp) = &out.objects[3] else {
        panic!()
    };
    assert_eq!(lp.spec.repository_ref.name, "team.a--b");
    let Object::ScanPolicy(scan) = &out.objects[5] else {
        panic!()
    };
    assert_eq!(scan.spec.scan_type, ScanType::Enhanced);
    assert_eq!(scan.spec.enforcement.mode, EnforcementMode::Audit);
    let Object::PullThroughCacheRule(ptc) = &out.objects[6] else {
        panic!()
    };
    assert_eq!(ptc.spec.upstream_repository_prefix, None);
    assert!(ptc.spec.adopt);
    let Object::RepositoryCreationTemplate(t) = &out.objects[7] else {
        panic!()
    };
    assert_eq!(t.spec.prefix, "prod/");
    assert_eq!(t.spec.lifecycle_rules.len(), 1);
    assert!(t.spec.encryption.is_none() && t.spec.adopt);

    let without = export(
        &registry(),
        &Options {
            access_policy: false,
            ..options
        },
    );
    assert_eq!(without.objects.len(), out.objects.len() - 1);
}

#[test]
fn registry_settings_nobody_configured_export_nothing() {
    let out = export(
        &Observed::default(),
        &Options {
            namespace: "default".to_string(),
            access_policy: true,
        },
    );
    assert!(
        out.objects.is_empty() && out.notes.is_empty(),
        "{:?}",
        out.notes
    );
}

#[test]
fn yaml_documents_read_back_as_the_objects() {
    let out = export(
        &registry(),
        &Options {
            namespace: "imported".to_string(),
            access_policy: true,
        },
    );
    let yaml = to_yaml(&out.objects).unwrap();
    assert!(
        yaml.starts_with(
            "---\napiVersion: ecr.operator.dev/v1alpha1\nkind: RepositoryAccessPolicy\n"
        ),
        "{yaml}"
    );
    assert!(!yaml.contains("status"), "{yaml}");
    // Quoted, or YAML 1.1 readers (kubectl) would read a timestamp.
    assert!(yaml.contains("    version: '2012-10-17'\n"), "{yaml}");
    assert!(!yaml.contains(": 2012-10-17"), "{yaml}");
    assert!(
        !yaml.contains("[]"),
        "empty lists are left to the defaults: {yaml}"
    );
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), out.objects.len());
    let Object::Repository(r) = &out.objects[2] else {
        panic!()
    };
    let back: ecr_operator::api::Repository = serde_yaml::from_value(docs[2].clone()).unwrap();
    assert_eq!(back.spec, r.spec);
    let Object::LifecyclePolicy(lp) = &out.objects[3] else {
        panic!()
    };
    let back: ecr_operator::api::LifecyclePolicy = serde_yaml::from_value(docs[3].clone()).unwrap();
    assert_eq!(back.spec, lp.spec);
    let Object::ScanPolicy(scan) = &out.objects[5] else {
        panic!()
    };
    let back: ecr_operator::api::ScanPolicy = serde_yaml::from_value(docs[5].clone()).unwrap();
    assert_eq!(back.spec, scan.spec);
    // The same registry, the same text.
    assert_eq!(
        yaml,
        to_yaml(
            &export(
                &registry(),
                &Options {
                    namespace: "imported".to_string(),
                    access_policy: true
                }
            )
            .objects
        )
        .unwrap()
    );
}

#[test]
fn date_like_scalars_are_quoted() {
    for (line, want) in [
        ("    version: 2012-10-17", "    version: '2012-10-17'"),
        ("  - 2008-10-17", "  - '2008-10-17'"),
        ("    version: '2012-10-17'", "    version: '2012-10-17'"),
        ("  name: 2012-10-17x", "  name: 2012-10-17x"),
        (
            "  description: released 2012-10-17",
            "  description: released 2012-10-17",
        ),
        ("  countNumber: 14", "  countNumber: 14"),
    ] {
        assert_eq!(super::quote_date(line), want);
    }
}
