//! Table tests of the PullThroughCacheRule controller's decisions (`plan.rs`).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;

use super::adopt as adopt_status;
use super::*;
use crate::api::pull_through_cache_rule::SecretReference;

const ROLE: &str = "arn:aws:iam::111122223333:role/puller";
const CRED: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/quay-AbCdEf";
const OTHER_CRED: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/other-XyZ123";

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).expect("valid time")
}

/// The object was created at `at(0)`.
const BEFORE: i64 = -60;
const AFTER: i64 = 5;

/// A spec, what ECR shows for its prefix, and the status.
#[derive(Clone, Debug)]
struct Scenario {
    spec: PullThroughCacheRuleSpec,
    observed: Option<PullThroughCacheRuleInfo>,
    status: PullThroughCacheRuleStatus,
}

impl Scenario {
    /// Quay with a credential: every field but the ECR-only ones.
    fn quay() -> Self {
        Scenario {
            spec: PullThroughCacheRuleSpec {
                ecr_repository_prefix: "quay".into(),
                upstream_registry_url: "quay.io".into(),
                credential_arn: Some(CRED.into()),
                ..Default::default()
            },
            observed: None,
            status: PullThroughCacheRuleStatus::default(),
        }
    }

    /// Another ECR registry: upstream prefix and role.
    fn ecr() -> Self {
        Scenario {
            spec: PullThroughCacheRuleSpec {
                ecr_repository_prefix: "mirror".into(),
                upstream_registry_url: "111122223333.dkr.ecr.eu-west-1.amazonaws.com".into(),
                upstream_repository_prefix: Some("team".into()),
                custom_role_arn: Some(ROLE.into()),
                ..Default::default()
            },
            observed: None,
            status: PullThroughCacheRuleStatus::default(),
        }
    }

    fn desired(&self) -> NewPullThroughCacheRule {
        desired(&self.spec, self.spec.credential_arn.clone())
    }

    /// ECR holds the rule the spec asks for now, created at `at(created)`.
    fn found(mut self, created: i64) -> Self {
        let d = self.desired();
        self.observed = Some(PullThroughCacheRuleInfo {
            prefix: d.prefix,
            upstream_registry_url: d.upstream_registry_url,
            registry_id: "123456789012".into(),
            upstream_registry: Some("quay".into()),
            upstream_repository_prefix: d.upstream_repository_prefix,
            credential_arn: d.credential_arn,
            custom_role_arn: d.custom_role_arn,
            created_at: Some(at(created)),
            updated_at: Some(at(created)),
        });
        self
    }

    /// The status records the rule created at `at(created)` as this object's.
    fn recorded(mut self, created: i64) -> Self {
        self.status.created_at = Some(at(created).to_string());
        self
    }

    /// The spec changes.
    fn spec(mut self, f: impl FnOnce(&mut PullThroughCacheRuleSpec)) -> Self {
        f(&mut self.spec);
        self
    }

    /// The rule changes in ECR (the console, another tool).
    fn ecr_edit(mut self, f: impl FnOnce(&mut PullThroughCacheRuleInfo)) -> Self {
        if let Some(info) = self.observed.as_mut() {
            f(info);
        }
        self
    }

    fn decide(&self) -> Want {
        let desired = self.desired();
        let observed = self.observed.as_ref();
        let created = Some(at(0));
        if let Err(e) = refuse_foreign(&desired.prefix, observed, &self.status, created) {
            assert!(is_foreign(&e), "{e}");
            return Want::Refused;
        }
        match plan(&desired, observed, &self.status, created) {
            Ok(p) => Want::Write(p.write, p.announcement.map(|a| a.reason)),
            Err(e) => {
                assert!(is_foreign(&e), "{e}");
                Want::Conflict
            }
        }
    }
}

fn is_foreign(e: &Error) -> bool {
    matches!(e, Error::Conflict(m) if m.contains("was not created by this object"))
}

#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// The write and the event's reason.
    Write(RuleWrite, Option<&'static str>),
    /// Conflict before any credential is mirrored.
    Refused,
    /// Conflict once the desired rule (with its credential) is known.
    Conflict,
}

#[test]
fn rule_table() {
    use RuleWrite::*;
    use Want::*;
    let (quay, ecr) = (Scenario::quay, Scenario::ecr);
    let cases: Vec<(&str, Scenario, Want)> = vec![
        // Create.
        ("nothing there", quay(), Write(Create, Some("Created"))),
        (
            "ECR upstream, nothing there",
            ecr(),
            Write(Create, Some("Created")),
        ),
        (
            "recorded rule deleted outside",
            quay().recorded(AFTER),
            Write(Create, Some("DriftCorrected")),
        ),
        // Adopt or conflict.
        (
            "recorded, in sync",
            quay().found(AFTER).recorded(AFTER),
            Write(Keep, None),
        ),
        (
            "ECR upstream, in sync",
            ecr().found(AFTER).recorded(AFTER),
            Write(Keep, None),
        ),
        (
            "unrecorded, created after the object as desired (a crash before the status write)",
            quay().found(AFTER),
            Write(Keep, None),
        ),
        (
            "unrecorded, created with the object",
            quay().found(0),
            Write(Keep, None),
        ),
        (
            "unrecorded, created before the object",
            quay().found(BEFORE),
            Refused,
        ),
        (
            "unrecorded, no creation time",
            quay().found(AFTER).ecr_edit(|i| i.created_at = None),
            Refused,
        ),
        (
            "another rule in place of the recorded one, created before the object",
            quay().found(BEFORE).recorded(AFTER),
            Refused,
        ),
        (
            "unrecorded, created after the object, another upstream",
            quay()
                .found(AFTER)
                .ecr_edit(|i| i.upstream_registry_url = "public.ecr.aws".into()),
            Conflict,
        ),
        (
            "unrecorded, created after the object, another credential",
            quay()
                .found(AFTER)
                .ecr_edit(|i| i.credential_arn = Some(OTHER_CRED.into())),
            Conflict,
        ),
        (
            "unrecorded, created after the object, another role",
            ecr().found(AFTER).ecr_edit(|i| i.custom_role_arn = None),
            Conflict,
        ),
        (
            "unrecorded, created after the object, another upstream prefix",
            ecr()
                .found(AFTER)
                .ecr_edit(|i| i.upstream_repository_prefix = None),
            Conflict,
        ),
        // Drift of every field of the rule.
        (
            "upstream URL",
            quay()
                .found(AFTER)
                .recorded(AFTER)
                .spec(|s| s.upstream_registry_url = "public.ecr.aws".into()),
            Write(Replace, Some("Replaced")),
        ),
        (
            "upstream URL with spaces around it is the same",
            quay()
                .found(AFTER)
                .recorded(AFTER)
                .spec(|s| s.upstream_registry_url = " quay.io ".into()),
            Write(Keep, None),
        ),
        (
            "upstream prefix",
            ecr()
                .found(AFTER)
                .recorded(AFTER)
                .ecr_edit(|i| i.upstream_repository_prefix = Some("other".into())),
            Write(Replace, Some("Replaced")),
        ),
        (
            "upstream prefix ROOT is the default",
            ecr()
                .spec(|s| s.upstream_repository_prefix = None)
                .found(AFTER)
                .recorded(AFTER)
                .ecr_edit(|i| i.upstream_repository_prefix = Some("ROOT".into())),
            Write(Keep, None),
        ),
        (
            "credential changed",
            quay()
                .found(AFTER)
                .recorded(AFTER)
                .ecr_edit(|i| i.credential_arn = Some(OTHER_CRED.into())),
            Write(UpdateCredentials, Some("Updated")),
        ),
        (
            "credential added",
            quay()
                .found(AFTER)
                .recorded(AFTER)
                .ecr_edit(|i| i.credential_arn = None),
            Write(UpdateCredentials, Some("Updated")),
        ),
        (
            "credential dropped by the spec",
            quay()
                .found(AFTER)
                .recorded(AFTER)
                .spec(|s| s.credential_arn = None),
            Write(Replace, Some("Replaced")),
        ),
        (
            "role changed",
            ecr()
                .found(AFTER)
                .recorded(AFTER)
                .ecr_edit(|i| i.custom_role_arn = Some("arn:aws:iam::111122223333:role/x".into())),
            Write(UpdateCredentials, Some("Updated")),
        ),
        (
            "role added",
            ecr()
                .found(AFTER)
                .recorded(AFTER)
                .ecr_edit(|i| i.custom_role_arn = None),
            Write(UpdateCredentials, Some("Updated")),
        ),
        (
            "role dropped by the spec",
            ecr()
                .found(AFTER)
                .recorded(AFTER)
                .spec(|s| s.custom_role_arn = None),
            Write(Replace, Some("Replaced")),
        ),
        (
            "fields only ECR sets",
            quay().found(AFTER).recorded(AFTER).ecr_edit(|i| {
                i.registry_id = "210987654321".into();
                i.upstream_registry = Some("other".into());
                i.updated_at = Some(at(3600));
            }),
            Write(Keep, None),
        ),
    ];
    for (what, scenario, want) in cases {
        assert_eq!(scenario.decide(), want, "{what}: {scenario:?}");
    }
}

#[test]
fn announcements_name_the_rule() {
    let created = plan(&Scenario::quay().desired(), None, &Default::default(), None);
    assert_eq!(
        created
            .map(|p| p.announcement.map(|a| a.note))
            .ok()
            .flatten(),
        Some("Created pull-through cache rule quay for quay.io".to_string())
    );
    let s = Scenario::quay().found(BEFORE);
    let err = refuse_foreign("quay", s.observed.as_ref(), &s.status, Some(at(0)));
    assert!(
        matches!(&err, Err(Error::Conflict(m)) if m.contains("prefix quay (upstream quay.io)")),
        "{err:?}"
    );
}

/// (what, status records a rule created at, rule in ECR created at, expected removal, event).
#[test]
fn removal_table() {
    type Case = (
        &'static str,
        Option<i64>,
        Option<i64>,
        Removal,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "never created, nothing there",
            None,
            None,
            Removal::Nothing,
            None,
        ),
        // Not even read: the status records no rule.
        (
            "never created, a rule there",
            None,
            Some(BEFORE),
            Removal::Nothing,
            None,
        ),
        (
            "ours",
            Some(AFTER),
            Some(AFTER),
            Removal::Delete,
            Some("Deleted"),
        ),
        (
            "another rule in its place",
            Some(AFTER),
            Some(60),
            Removal::NotOwned,
            Some("NotOwned"),
        ),
        ("already gone", Some(AFTER), None, Removal::Nothing, None),
    ];
    for (what, recorded, found, want, reason) in cases {
        let mut s = Scenario::quay();
        if let Some(t) = found {
            s = s.found(t);
        }
        if let Some(t) = recorded {
            s = s.recorded(t);
        }
        assert_eq!(removal_reads(&s.status), recorded.is_some(), "{what}");
        let got = plan_removal(&s.status, s.observed.as_ref());
        assert_eq!(got, want, "{what}");
        assert_eq!(got.announcement("quay").map(|a| a.reason), reason, "{what}");
    }
}

fn secret_value(arn: &str, value: &str) -> SecretValue {
    SecretValue {
        arn: arn.into(),
        value: value.into(),
    }
}

/// (what, secret in Secrets Manager, ARN the status records, owner tag, expected).
#[test]
fn secret_table() {
    let value = r#"{"username":"bot","accessToken":"t1"}"#;
    // The same credentials, as another tool may have written them.
    let same = r#"{ "accessToken": "t1", "username": "bot" }"#;
    let rotated = r#"{"username":"bot","accessToken":"t2"}"#;
    let ours = "local/quay";
    type Case = (
        &'static str,
        Option<SecretValue>,
        Option<&'static str>,
        Option<&'static str>,
        Result<SecretWrite, &'static str>,
    );
    let cases: Vec<Case> = vec![
        ("absent", None, None, None, Ok(SecretWrite::Create)),
        (
            "recorded, same value",
            Some(secret_value(CRED, same)),
            Some(CRED),
            None,
            Ok(SecretWrite::Keep(CRED.into())),
        ),
        (
            "recorded, value rotated",
            Some(secret_value(CRED, rotated)),
            Some(CRED),
            None,
            Ok(SecretWrite::Put(CRED.into())),
        ),
        (
            "unrecorded, tagged ours",
            Some(secret_value(CRED, value)),
            None,
            Some(ours),
            Ok(SecretWrite::Keep(CRED.into())),
        ),
        (
            "status records another ARN, tagged ours",
            Some(secret_value(CRED, rotated)),
            Some(OTHER_CRED),
            Some(ours),
            Ok(SecretWrite::Put(CRED.into())),
        ),
        (
            "unrecorded, tagged by another owner",
            Some(secret_value(CRED, value)),
            None,
            Some("other-cluster/quay"),
            Err("tag ecr.operator.dev/owner is other-cluster/quay"),
        ),
        (
            "unrecorded, untagged",
            Some(secret_value(CRED, value)),
            None,
            None,
            Err("is absent"),
        ),
    ];
    for (what, current, recorded, tag, want) in cases {
        let status = PullThroughCacheRuleStatus {
            credential_arn: recorded.map(str::to_string),
            ..Default::default()
        };
        if let Some(c) = &current {
            assert_eq!(
                secret_owner_unproven(&status, &c.arn),
                recorded != Some(CRED),
                "{what}"
            );
        }
        let got = plan_secret(
            "ecr-pullthroughcache/quay",
            current.as_ref(),
            &status,
            tag,
            ours,
            value,
        );
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{what}"),
            (Err(Error::Conflict(m)), Err(part)) => {
                assert!(
                    m.contains(part) && m.contains("left untouched"),
                    "{what}: {m}"
                )
            }
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn mirrored_secret_is_removed_only_when_unused() {
    let by_secret = |name: &str| PullThroughCacheRuleSpec {
        credentials_secret_ref: Some(SecretReference {
            name: name.into(),
            namespace: None,
        }),
        ..Default::default()
    };
    let status = |arn: Option<&str>| PullThroughCacheRuleStatus {
        credential_arn: arn.map(str::to_string),
        ..Default::default()
    };
    let name = secret_name("quay");
    assert_eq!(name, "ecr-pullthroughcache/quay");
    let none = PullThroughCacheRuleSpec::default();
    // (what, spec, recorded ARN, expected)
    let cases = [
        ("still referenced", by_secret("creds"), Some(CRED), false),
        (
            "spec moved away from the Secret",
            none.clone(),
            Some(CRED),
            true,
        ),
        (
            "a credential ARN of the user's",
            none.clone(),
            Some(OTHER_CRED),
            false,
        ),
        ("nothing recorded", none, None, false),
    ];
    for (what, spec, recorded, want) in cases {
        assert_eq!(
            mirrored_secret_unused(&spec, &status(recorded), &name),
            want,
            "{what}"
        );
    }
}

#[test]
fn credentials_are_read_from_data_or_string_data() {
    let secret = |data: &[(&str, &str)], string_data: &[(&str, &str)]| Secret {
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        string_data: Some(
            string_data
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    let json = credentials_json(&secret(&[("username", "bot")], &[("accessToken", "t")]));
    let parsed: Option<serde_json::Value> = json.ok().and_then(|j| serde_json::from_str(&j).ok());
    assert_eq!(
        parsed,
        Some(serde_json::json!({"username": "bot", "accessToken": "t"}))
    );
    assert_eq!(
        credentials_json(&secret(&[], &[])),
        Err("username and accessToken".to_string())
    );
    // An empty value is a missing one.
    assert_eq!(
        credentials_json(&secret(&[("username", "bot"), ("accessToken", "")], &[])),
        Err("accessToken".to_string())
    );
}

#[test]
fn status_records_the_rule_in_place() {
    let s = Scenario::quay().found(AFTER);
    let Some(info) = s.observed.clone() else {
        panic!("found")
    };
    let desired = s
        .spec(|s| s.credential_arn = Some(OTHER_CRED.into()))
        .desired();
    let info = updated(info, &desired, at(120));
    assert_eq!(info.credential_arn.as_deref(), Some(OTHER_CRED));
    let status = synced_status(Default::default(), &info, Some(OTHER_CRED.into()));
    assert_eq!(status.created_at, Some(at(AFTER).to_string()));
    assert_eq!(status.updated_at, Some(at(120).to_string()));
    assert_eq!(status.registry_id.as_deref(), Some("123456789012"));
    assert_eq!(status.upstream_registry.as_deref(), Some("quay"));
    assert!(status_owns(&status, &info));
    let empty_id = PullThroughCacheRuleInfo {
        registry_id: String::new(),
        ..info
    };
    assert_eq!(synced_status(status, &empty_id, None).registry_id, None);
    assert_eq!(
        ready_message(&desired, &Upstream::Quay),
        "pull-through cache rule quay caches quay.io (Quay)"
    );
}

/// `spec.adopt` claims a rule made before the object only while the status records none; the
/// claimed rule is then planned like one this object created (kept when it is as the spec says,
/// its credentials updated when they differ), and a status recording another rule stays as it is.
#[test]
fn adoption_claims_a_rule_the_status_does_not_record() {
    let claim = |s: &Scenario, adopt: bool| {
        let status = adopt_status(s.status.clone(), adopt, s.observed.as_ref());
        let result = refuse_foreign("quay", s.observed.as_ref(), &status, Some(at(0)))
            .and_then(|()| plan(&s.desired(), s.observed.as_ref(), &status, Some(at(0))));
        result.map(|p| p.write).map_err(|e| is_foreign(&e))
    };
    let before = Scenario::quay().found(BEFORE);
    let changed = Scenario::quay()
        .found(BEFORE)
        .ecr_edit(|r| r.credential_arn = Some(OTHER_CRED.into()));
    let ours_re_created = Scenario::quay().found(BEFORE).recorded(BEFORE - 10);
    let cases = [
        ("without adopt: foreign", &before, false, Err(true)),
        ("as the spec says: kept", &before, true, Ok(RuleWrite::Keep)),
        (
            "credentials differ: updated",
            &changed,
            true,
            Ok(RuleWrite::UpdateCredentials),
        ),
        (
            "status records another rule",
            &ours_re_created,
            true,
            Err(true),
        ),
        (
            "no rule: created",
            &Scenario::quay(),
            true,
            Ok(RuleWrite::Create),
        ),
    ];
    for (what, scenario, adopt, want) in cases {
        assert_eq!(claim(scenario, adopt), want, "{what}");
    }
    let adopted = adopt_status(before.status.clone(), true, before.observed.as_ref());
    assert_eq!(adopted.created_at, Some(at(BEFORE).to_string()));
}

/// One object per prefix and registry: `quay` and `quay/` are one rule in one registry, and the
/// same prefix in another registry (a RegistryTarget, or the own one) is another rule.
#[test]
fn a_rule_is_a_prefix_in_one_registry() {
    use crate::api::registry_target::RegistryRef;
    let spec = |prefix: &str, target: Option<&str>| PullThroughCacheRuleSpec {
        registry_ref: target.map(|t| RegistryRef { name: t.into() }),
        ecr_repository_prefix: prefix.into(),
        ..Default::default()
    };
    let cases = [
        (
            "same prefix, own registry",
            ("quay", None),
            ("quay/", None),
            true,
        ),
        (
            "same prefix, same target",
            ("quay", Some("b")),
            ("quay", Some("b")),
            true,
        ),
        (
            "own and a target",
            ("quay", None),
            ("quay", Some("b")),
            false,
        ),
        (
            "two targets",
            ("quay", Some("b")),
            ("quay/", Some("c")),
            false,
        ),
        (
            "another prefix",
            ("quay", Some("b")),
            ("ghcr", Some("b")),
            false,
        ),
        ("ROOT", ("ROOT", None), ("ROOT", None), true),
    ];
    for (what, (pa, ta), (pb, tb), want) in cases {
        assert_eq!(same_rule(&spec(pa, ta), &spec(pb, tb)), want, "{what}");
        assert_eq!(
            same_rule(&spec(pb, tb), &spec(pa, ta)),
            want,
            "{what}, reversed"
        );
    }
}
