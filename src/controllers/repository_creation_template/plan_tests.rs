//! Table tests of the RepositoryCreationTemplate controller's decisions (`plan.rs`).

use std::collections::BTreeMap;

use super::*;
use crate::api::lifecycle_policy::LifecycleRule;
use crate::api::repository::{
    Encryption, EncryptionType, RepositoryPolicy, TagMutability, TagMutabilityExclusionFilter,
};
use crate::api::repository_creation_template::AppliedFor;

const ROLE: &str = "arn:aws:iam::123456789012:role/ecr-template";
const KMS: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).expect("valid time")
}

/// The object was created at `at(0)`.
const BEFORE: i64 = -60;
const AFTER: i64 = 5;

fn rules() -> Vec<LifecycleRule> {
    serde_json::from_value(serde_json::json!([{
        "rulePriority": 1,
        "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5}
    }]))
    .expect("rules")
}

fn policy() -> RepositoryPolicy {
    serde_json::from_value(serde_json::json!({"statements": [{
        "sid": "pull", "effect": "Allow", "principals": {"aws": ["123456789012"]},
        "actions": ["ecr:BatchGetImage"]
    }]}))
    .expect("policy")
}

/// Every field set.
fn spec() -> RepositoryCreationTemplateSpec {
    RepositoryCreationTemplateSpec {
        registry_ref: None,
        prefix: "prod".into(),
        applied_for: vec![AppliedFor::Replication, AppliedFor::PullThroughCache],
        description: Some("production".into()),
        image_tag_mutability: TagMutability::ImmutableWithExclusion,
        image_tag_mutability_exclusion_filters: vec![TagMutabilityExclusionFilter {
            filter: "latest".into(),
            ..Default::default()
        }],
        encryption: Some(Encryption {
            encryption_type: EncryptionType::Kms,
            kms_key: Some(KMS.into()),
        }),
        resource_tags: BTreeMap::from([("team".into(), "platform".into())]),
        custom_role_arn: Some(ROLE.into()),
        lifecycle_rules: rules(),
        repository_policy: Some(policy()),
        deletion_policy: DeletionPolicy::Retain,
        adopt: false,
    }
}

fn desired_of(spec: &RepositoryCreationTemplateSpec) -> CreationTemplate {
    desired(spec).expect("valid spec")
}

/// ECR holds `template`, created at `at(created)`.
fn found(template: CreationTemplate, created: i64) -> CreationTemplateInfo {
    CreationTemplateInfo {
        template,
        created_at: Some(at(created)),
        updated_at: Some(at(created)),
    }
}

/// The status of an object that created the template at `at(created)`.
fn owning(created: i64) -> RepositoryCreationTemplateStatus {
    RepositoryCreationTemplateStatus {
        created_at: recorded_time(Some(at(created))),
        ..Default::default()
    }
}

fn none() -> RepositoryCreationTemplateStatus {
    RepositoryCreationTemplateStatus::default()
}

#[test]
fn desired_renders_with_the_shared_renderers() {
    let d = desired_of(&spec());
    assert_eq!(d.prefix, "prod");
    assert_eq!(d.applied_for, vec!["PULL_THROUGH_CACHE", "REPLICATION"]);
    assert_eq!(d.encryption_type, "KMS");
    assert_eq!(d.kms_key.as_deref(), Some(KMS));
    assert_eq!(d.tag_mutability, "IMMUTABLE_WITH_EXCLUSION");
    assert_eq!(d.tag_mutability_exclusions, vec!["latest"]);
    let lifecycle_text =
        crate::lifecycle::render(&crate::controllers::lifecycle_policy::rules_of(&rules()));
    assert_eq!(d.lifecycle_policy.as_deref(), Some(lifecycle_text.as_str()));
    let policy_doc = repository_policy::render(&policy());
    assert_eq!(d.repository_policy, Some(policy_doc.to_string()));
    // Defaults: AES256, MUTABLE, nothing else.
    let bare = desired_of(&RepositoryCreationTemplateSpec {
        prefix: "ROOT".into(),
        applied_for: vec![AppliedFor::CreateOnPush],
        ..Default::default()
    });
    assert_eq!(
        (bare.encryption_type.as_str(), bare.tag_mutability.as_str()),
        ("AES256", "MUTABLE")
    );
    assert!(bare.lifecycle_policy.is_none() && bare.repository_policy.is_none());
}

#[test]
fn desired_refuses_what_ecr_refuses() {
    let mut two_any = spec();
    two_any.lifecycle_rules = serde_json::from_value(serde_json::json!([
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}},
        {"rulePriority": 2, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}}
    ]))
    .expect("rules");
    let err = desired(&two_any).unwrap_err();
    assert!(err.contains("invalid lifecycle rules"), "{err}");
    let mut large = spec();
    let principals: Vec<String> = (0..800).map(|i| format!("{:012}", i)).collect();
    large.repository_policy.as_mut().unwrap().statements[0]
        .principals
        .aws = principals;
    let err = desired(&large).unwrap_err();
    assert!(
        err.contains("spec.repositoryPolicy") && err.contains("10240"),
        "{err}"
    );
}

/// Each field, changed in the spec, is a difference; ECR's reformatting is not.
#[test]
fn differences_name_each_changed_field() {
    let base = desired_of(&spec());
    type Change = Box<dyn Fn(&mut RepositoryCreationTemplateSpec)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "description",
            Box::new(|s| s.description = Some("other".into())),
        ),
        ("encryption", Box::new(|s| s.encryption = None)),
        ("resourceTags", Box::new(|s| s.resource_tags.clear())),
        (
            "imageTagMutability",
            Box::new(|s| {
                s.image_tag_mutability = TagMutability::Mutable;
                s.image_tag_mutability_exclusion_filters.clear();
            }),
        ),
        (
            "imageTagMutability",
            Box::new(|s| s.image_tag_mutability_exclusion_filters[0].filter = "dev-*".into()),
        ),
        ("repositoryPolicy", Box::new(|s| s.repository_policy = None)),
        (
            "repositoryPolicy",
            Box::new(|s| {
                s.repository_policy.as_mut().unwrap().statements[0].actions = vec!["ecr:*".into()]
            }),
        ),
        ("lifecycleRules", Box::new(|s| s.lifecycle_rules.clear())),
        (
            "lifecycleRules",
            Box::new(|s| s.lifecycle_rules[0].selection.count_number = 9),
        ),
        (
            "appliedFor",
            Box::new(|s| s.applied_for = vec![AppliedFor::CreateOnPush]),
        ),
        ("customRoleArn", Box::new(|s| s.custom_role_arn = None)),
    ];
    for (field, change) in cases {
        let mut changed = spec();
        change(&mut changed);
        assert_eq!(
            differences(&desired_of(&changed), &base),
            vec![field],
            "{field}"
        );
    }
    // As ECR returns it: policies reformatted, lists reordered, empty values for absent ones.
    let mut reformatted = base.clone();
    let doc: serde_json::Value =
        serde_json::from_str(base.repository_policy.as_deref().unwrap()).unwrap();
    reformatted.repository_policy = Some(serde_json::to_string_pretty(&doc).unwrap());
    let rules: serde_json::Value =
        serde_json::from_str(base.lifecycle_policy.as_deref().unwrap()).unwrap();
    reformatted.lifecycle_policy = Some(serde_json::to_string_pretty(&rules).unwrap());
    reformatted.applied_for.reverse();
    assert_eq!(differences(&base, &reformatted), Vec::<&str>::new());
    let bare = desired_of(&RepositoryCreationTemplateSpec {
        prefix: "ROOT".into(),
        applied_for: vec![AppliedFor::CreateOnPush],
        ..Default::default()
    });
    let mut ecr = bare.clone();
    ecr.description = Some(String::new());
    ecr.custom_role_arn = Some(String::new());
    assert_eq!(differences(&bare, &ecr), Vec::<&str>::new());
}

/// The plan table: what ECR holds, the status, and whether the spec changed → the write and
/// the event reason, or Conflict.
#[test]
fn plan_table() {
    let d = desired_of(&spec());
    let mut drifted = d.clone();
    drifted.description = Some("changed in the console".into());
    type Case = (
        &'static str,
        Option<CreationTemplateInfo>,
        RepositoryCreationTemplateStatus,
        bool,
        Result<(Write, Option<&'static str>), ()>,
    );
    let cases: Vec<Case> = vec![
        (
            "absent: create",
            None,
            none(),
            true,
            Ok((Write::Create, Some("Created"))),
        ),
        (
            "deleted outside: re-create",
            None,
            owning(AFTER),
            false,
            Ok((Write::Create, Some("DriftCorrected"))),
        ),
        (
            "ours and equal: no write",
            Some(found(d.clone(), AFTER)),
            owning(AFTER),
            false,
            Ok((Write::Keep, None)),
        ),
        (
            "ours, spec changed: update",
            Some(found(drifted.clone(), AFTER)),
            owning(AFTER),
            true,
            Ok((Write::Update, Some("Updated"))),
        ),
        (
            "ours, changed outside: restore",
            Some(found(drifted.clone(), AFTER)),
            owning(AFTER),
            false,
            Ok((Write::Update, Some("DriftCorrected"))),
        ),
        (
            "created before the object: Conflict",
            Some(found(d.clone(), BEFORE)),
            none(),
            true,
            Err(()),
        ),
        (
            "another creation than the recorded one: Conflict",
            Some(found(d.clone(), AFTER + 10)),
            owning(AFTER),
            false,
            Err(()),
        ),
        (
            "created after the object with other settings: Conflict",
            Some(found(drifted.clone(), AFTER)),
            none(),
            true,
            Err(()),
        ),
        (
            "created after the object as desired (status lost): claimed",
            Some(found(d.clone(), AFTER)),
            none(),
            true,
            Ok((Write::Keep, None)),
        ),
    ];
    for (name, observed, status, spec_changed, want) in cases {
        let got = plan(&d, observed.as_ref(), &status, Some(at(0)), spec_changed);
        match (got, want) {
            (Ok(p), Ok((write, reason))) => {
                assert_eq!(p.write, write, "{name}");
                assert_eq!(p.announcement.map(|a| a.reason), reason, "{name}");
            }
            (Err(Error::Conflict(m)), Err(())) => assert!(m.contains("prod"), "{name}: {m}"),
            (got, _) => panic!("{name}: {got:?}"),
        }
    }
}

#[test]
fn update_event_names_the_fields() {
    let d = desired_of(&spec());
    let mut drifted = d.clone();
    drifted.custom_role_arn = None;
    drifted.applied_for = vec!["REPLICATION".into()];
    let p = plan(
        &d,
        Some(&found(drifted, AFTER)),
        &owning(AFTER),
        Some(at(0)),
        false,
    )
    .unwrap();
    let note = p.announcement.unwrap().note;
    assert!(note.contains("appliedFor, customRoleArn"), "{note}");
}

#[test]
fn status_records_the_creation() {
    let info = found(desired_of(&spec()), AFTER);
    let status = synced_status(none(), &info);
    assert_eq!(status.created_at, recorded_time(Some(at(AFTER))));
    assert!(status_owns(&status, &info));
    assert!(!status_owns(&none(), &info));
}

/// Deletion under each policy.
#[test]
fn removal_table() {
    let ours = found(desired_of(&spec()), AFTER);
    let other = found(desired_of(&spec()), AFTER + 30);
    let cases = [
        (
            "Retain keeps it",
            DeletionPolicy::Retain,
            owning(AFTER),
            Some(&ours),
            Removal::Retain,
        ),
        (
            "Delete removes ours",
            DeletionPolicy::Delete,
            owning(AFTER),
            Some(&ours),
            Removal::Delete,
        ),
        (
            "Delete leaves another",
            DeletionPolicy::Delete,
            owning(AFTER),
            Some(&other),
            Removal::NotOwned,
        ),
        (
            "already gone",
            DeletionPolicy::Delete,
            owning(AFTER),
            None,
            Removal::Nothing,
        ),
        (
            "never created",
            DeletionPolicy::Delete,
            none(),
            Some(&other),
            Removal::Nothing,
        ),
        (
            "never created, Retain",
            DeletionPolicy::Retain,
            none(),
            None,
            Removal::Nothing,
        ),
    ];
    for (name, policy, status, observed, want) in cases {
        assert_eq!(plan_removal(policy, &status, observed), want, "{name}");
    }
    assert!(removal_reads(DeletionPolicy::Delete, &owning(AFTER)));
    assert!(!removal_reads(DeletionPolicy::Retain, &owning(AFTER)));
    assert!(!removal_reads(DeletionPolicy::Delete, &none()));
    assert_eq!(
        Removal::Retain.announcement("prod").unwrap().reason,
        "Retained"
    );
    assert!(Removal::Nothing.announcement("prod").is_none());
}

/// One object per prefix and registry: of two objects naming the same prefix (`prod` and
/// `prod/` are one) in the same registry, the younger is refused with the older's name; the
/// older, an object of another prefix and one of the same prefix in a RegistryTarget go on, as
/// does a younger one in that target's registry only behind that target's older object.
#[test]
fn a_younger_object_for_the_prefix_is_conflict() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use crate::api::RepositoryCreationTemplate;
    use crate::api::registry_target::RegistryRef;
    use crate::controllers::repository_creation_template::older_claimant;

    let object = |name: &str, prefix: &str, created: i64| {
        let (prefix, target) = match prefix.split_once('@') {
            Some((p, t)) => (p, Some(RegistryRef { name: t.into() })),
            None => (prefix, None),
        };
        let mut o = RepositoryCreationTemplate::new(
            name,
            RepositoryCreationTemplateSpec {
                registry_ref: target,
                prefix: prefix.into(),
                applied_for: vec![AppliedFor::Replication],
                ..Default::default()
            },
        );
        o.metadata.uid = Some(format!("uid-{name}"));
        o.metadata.creation_timestamp = Some(Time(at(created)));
        o
    };
    let older = object("older", "prod", 0);
    let younger = object("younger", "prod/", AFTER);
    let other = object("other", "dev", AFTER);
    let in_b = object("in-b", "prod@b", AFTER);
    let in_b_younger = object("in-b-younger", "prod/@b", AFTER + 1);
    let in_c = object("in-c", "prod@c", AFTER + 2);
    let (store, mut writer) = reflector::store::<RepositoryCreationTemplate>();
    writer.apply_watcher_event(&Event::Init);
    for o in [&older, &younger, &other, &in_b, &in_b_younger, &in_c] {
        writer.apply_watcher_event(&Event::InitApply(o.clone()));
    }
    writer.apply_watcher_event(&Event::InitDone);

    let refused = refuse_younger("prod/", older_claimant(&store, &younger));
    match refused {
        Err(Error::Conflict(m)) => assert!(m.contains("older already manages"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(refuse_younger("prod", older_claimant(&store, &older)).is_ok());
    assert!(refuse_younger("dev", older_claimant(&store, &other)).is_ok());
    assert_eq!(
        older_claimant(&store, &in_b),
        None,
        "another registry's prefix"
    );
    assert_eq!(older_claimant(&store, &in_c), None);
    assert_eq!(
        older_claimant(&store, &in_b_younger).as_deref(),
        Some("in-b")
    );
}

/// `spec.adopt` claims a template made before the object only while the status records none;
/// it is then kept when it is as the spec says and updated when it differs, and a status that
/// records another template stays as it is (that one is foreign).
#[test]
fn adoption_claims_a_template_the_status_does_not_record() {
    let desired = desired_of(&spec());
    let same = found(desired.clone(), -60);
    let mut other = desired.clone();
    other.description = Some("console".into());
    let differs = found(other, -60);
    let recorded_other = RepositoryCreationTemplateStatus {
        created_at: Some(at(-120).to_string()),
        ..Default::default()
    };
    let cases = [
        (
            "without adopt: foreign",
            &same,
            false,
            Default::default(),
            None,
        ),
        (
            "as the spec says: kept",
            &same,
            true,
            Default::default(),
            Some(Write::Keep),
        ),
        (
            "differs: updated",
            &differs,
            true,
            Default::default(),
            Some(Write::Update),
        ),
        ("status records another", &same, true, recorded_other, None),
    ];
    for (what, info, adopt_it, status, want) in cases {
        let status = adopt(status, adopt_it, Some(info));
        let got = plan(&desired, Some(info), &status, Some(at(0)), true).map(|p| p.write);
        match (got, want) {
            (Ok(w), Some(want)) => assert_eq!(w, want, "{what}"),
            (Err(Error::Conflict(m)), None) => {
                assert!(m.contains("not created by this object"), "{what}: {m}")
            }
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}
