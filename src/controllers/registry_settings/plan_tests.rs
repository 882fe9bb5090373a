use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::api::registry_settings::{
    AccountSettings, BlobMounting, RegistryPolicyScope, SigningRepositoryFilter, SigningRule,
};

const PROFILE: &str = "arn:aws:signer:us-east-1:111122223333:/signing-profiles/Prod";
const OTHER_PROFILE: &str = "arn:aws:signer:us-east-1:111122223333:/signing-profiles/Other";
const CI: &str = "arn:aws:iam::111122223333:role/ci";
const SCANNER: &str = "arn:aws:iam::111122223333:role/scanner";
const OUTSIDE: &str = "arn:aws:iam::111122223333:user/outside";

fn rule(profile: &str, filters: &[&str]) -> SigningRule {
    SigningRule {
        signing_profile_arn: profile.to_string(),
        repository_filters: filters
            .iter()
            .map(|f| SigningRepositoryFilter {
                filter: f.to_string(),
                ..Default::default()
            })
            .collect(),
    }
}

fn info(profile: &str, filters: &[&str]) -> SigningRuleInfo {
    SigningRuleInfo {
        profile_arn: profile.to_string(),
        repository_filters: filters.iter().map(|f| f.to_string()).collect(),
    }
}

fn spec_signing(rules: Vec<SigningRule>) -> RegistrySettingsSpec {
    RegistrySettingsSpec {
        registry_ref: None,
        signing: Some(SigningConfiguration { rules }),
        ..Default::default()
    }
}

fn owned() -> RegistrySettingsStatus {
    RegistrySettingsStatus {
        signing_owned: Some(true),
        ..Default::default()
    }
}

fn seen_signing(rules: Option<Vec<SigningRuleInfo>>) -> Observed {
    Observed {
        signing: Some(rules),
        ..Default::default()
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reads_only_what_the_spec_sets_or_this_object_wrote() {
    let nothing = RegistrySettingsSpec::default();
    let none = RegistrySettingsStatus::default();
    assert_eq!(
        reads(&nothing, &none),
        Reads {
            account_settings: vec![],
            signing: false,
            exclusions: false
        }
    );
    let mounting = RegistrySettingsSpec {
        registry_ref: None,
        account_settings: Some(AccountSettings {
            blob_mounting: Some(BlobMounting::Enabled),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        reads(&mounting, &none).account_settings,
        vec!["BLOB_MOUNTING"]
    );
    // Dropped from the spec, but written before: read, so that it can be removed.
    let wrote = RegistrySettingsStatus {
        signing_owned: Some(true),
        registered_exclusions: vec![CI.to_string()],
        ..Default::default()
    };
    let r = reads(&nothing, &wrote);
    assert!(r.signing && r.exclusions);
}

#[test]
fn account_settings_are_written_only_where_ecr_differs() {
    let spec = RegistrySettingsSpec {
        registry_ref: None,
        account_settings: Some(AccountSettings {
            blob_mounting: Some(BlobMounting::Enabled),
            registry_policy_scope: Some(RegistryPolicyScope::V2),
            basic_scan_type_version: None,
        }),
        ..Default::default()
    };
    let observed = Observed {
        account_settings: BTreeMap::from([
            ("BLOB_MOUNTING".to_string(), "DISABLED".to_string()),
            ("REGISTRY_POLICY_SCOPE".to_string(), "V2".to_string()),
        ]),
        ..Default::default()
    };
    let p = plan(&spec, &RegistrySettingsStatus::default(), &observed).expect("plan");
    assert_eq!(p.account_settings, vec![("BLOB_MOUNTING", "ENABLED")]);
    assert_eq!(p.signing, SigningWrite::Keep);
    let st = synced_status(Default::default(), &spec, &observed, &p);
    assert_eq!(
        st.account_settings.get("BLOB_MOUNTING").map(String::as_str),
        Some("ENABLED")
    );
    assert_eq!(
        st.account_settings
            .get("REGISTRY_POLICY_SCOPE")
            .map(String::as_str),
        Some("V2")
    );
}

/// (case, spec signing rules (None: unset), status owns it, ECR's configuration, expected)
type SigningCase = (
    &'static str,
    Option<Vec<SigningRule>>,
    bool,
    Option<Vec<SigningRuleInfo>>,
    Result<SigningWrite, &'static str>,
);

#[test]
fn signing_table() {
    let prod = || vec![rule(PROFILE, &["prod/*", "*/release"])];
    let cases: Vec<SigningCase> = vec![
        (
            "none in ECR: written",
            Some(prod()),
            false,
            None,
            Ok(SigningWrite::Put(vec![info(
                PROFILE,
                &["prod/*", "*/release"],
            )])),
        ),
        (
            "an empty one in ECR is no one's: written",
            Some(prod()),
            false,
            Some(vec![]),
            Ok(SigningWrite::Put(vec![info(
                PROFILE,
                &["prod/*", "*/release"],
            )])),
        ),
        (
            "exactly the spec, filters in another order: taken as is",
            Some(prod()),
            false,
            Some(vec![info(PROFILE, &["*/release", "prod/*"])]),
            Ok(SigningWrite::Keep),
        ),
        (
            "someone else's: Conflict",
            Some(prod()),
            false,
            Some(vec![info(OTHER_PROFILE, &[])]),
            Err("Conflict"),
        ),
        (
            "ours, changed outside: rewritten",
            Some(prod()),
            true,
            Some(vec![info(OTHER_PROFILE, &[])]),
            Ok(SigningWrite::Put(vec![info(
                PROFILE,
                &["prod/*", "*/release"],
            )])),
        ),
        (
            "ours, deleted outside: rewritten",
            Some(prod()),
            true,
            None,
            Ok(SigningWrite::Put(vec![info(
                PROFILE,
                &["prod/*", "*/release"],
            )])),
        ),
        (
            "rules order matters",
            Some(vec![rule(PROFILE, &[]), rule(OTHER_PROFILE, &[])]),
            true,
            Some(vec![info(OTHER_PROFILE, &[]), info(PROFILE, &[])]),
            Ok(SigningWrite::Put(vec![
                info(PROFILE, &[]),
                info(OTHER_PROFILE, &[]),
            ])),
        ),
        (
            "rules: [] over ours: written empty",
            Some(vec![]),
            true,
            Some(vec![info(PROFILE, &[])]),
            Ok(SigningWrite::Put(vec![])),
        ),
        (
            "dropped from the spec, ours: deleted",
            None,
            true,
            Some(vec![info(PROFILE, &[])]),
            Ok(SigningWrite::Delete),
        ),
        (
            "dropped, ours, already gone: nothing",
            None,
            true,
            None,
            Ok(SigningWrite::Keep),
        ),
        (
            "unset, not ours: untouched",
            None,
            false,
            Some(vec![info(PROFILE, &[])]),
            Ok(SigningWrite::Keep),
        ),
    ];
    for (case, rules, is_owned, seen, expected) in cases {
        let spec = match rules {
            Some(r) => spec_signing(r),
            None => RegistrySettingsSpec::default(),
        };
        let status = if is_owned {
            owned()
        } else {
            Default::default()
        };
        let got = plan(&spec, &status, &seen_signing(seen));
        match (got, expected) {
            (Ok(p), Ok(want)) => assert_eq!(p.signing, want, "{case}"),
            (Err(Error::Conflict(m)), Err("Conflict")) => {
                assert!(m.contains("did not write"), "{case}: {m}")
            }
            (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn a_signing_conflict_writes_nothing_else_either() {
    let mut spec = spec_signing(vec![rule(PROFILE, &[])]);
    spec.account_settings = Some(AccountSettings {
        blob_mounting: Some(BlobMounting::Enabled),
        ..Default::default()
    });
    let observed = Observed {
        account_settings: BTreeMap::from([("BLOB_MOUNTING".to_string(), "DISABLED".to_string())]),
        signing: Some(Some(vec![info(OTHER_PROFILE, &[])])),
        exclusions: None,
    };
    assert!(matches!(
        plan(&spec, &RegistrySettingsStatus::default(), &observed),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn signing_ownership_follows_the_spec() {
    let spec = spec_signing(vec![rule(PROFILE, &[])]);
    let observed = seen_signing(Some(vec![info(PROFILE, &[])]));
    let p = plan(&spec, &Default::default(), &observed).expect("plan");
    let st = synced_status(Default::default(), &spec, &observed, &p);
    assert_eq!(
        (st.signing_owned, st.signing_rule_count),
        (Some(true), Some(1))
    );
    // Dropped and deleted: no longer ours.
    let unset = RegistrySettingsSpec::default();
    let p = plan(&unset, &st, &observed).expect("plan");
    assert_eq!(p.signing, SigningWrite::Delete);
    let st = synced_status(st, &unset, &observed, &p);
    assert_eq!((st.signing_owned, st.signing_rule_count), (None, None));
}

/// (case, spec exclusions, recorded as registered by this object, ECR's, register, deregister,
/// recorded after)
type ExclusionCase = (
    &'static str,
    Option<Vec<&'static str>>,
    Vec<&'static str>,
    Vec<&'static str>,
    Vec<&'static str>,
    Vec<&'static str>,
    Vec<&'static str>,
);

#[test]
fn exclusions_table() {
    let cases: Vec<ExclusionCase> = vec![
        (
            "new: registered and recorded",
            Some(vec![CI, SCANNER]),
            vec![],
            vec![],
            vec![CI, SCANNER],
            vec![],
            vec![CI, SCANNER],
        ),
        (
            "present already, registered outside: not recorded",
            Some(vec![CI]),
            vec![],
            vec![CI],
            vec![],
            vec![],
            vec![],
        ),
        (
            "ours, removed outside: registered again",
            Some(vec![CI]),
            vec![CI],
            vec![],
            vec![CI],
            vec![],
            vec![CI],
        ),
        (
            "ours, dropped from the spec: deregistered",
            Some(vec![]),
            vec![CI],
            vec![CI, OUTSIDE],
            vec![],
            vec![CI],
            vec![],
        ),
        (
            "outside ones stay, listed or not",
            Some(vec![SCANNER]),
            vec![],
            vec![OUTSIDE],
            vec![SCANNER],
            vec![],
            vec![SCANNER],
        ),
        (
            "ours, dropped and already gone: forgotten",
            Some(vec![]),
            vec![CI],
            vec![],
            vec![],
            vec![],
            vec![],
        ),
        (
            "field unset, ours recorded: deregistered",
            None,
            vec![CI],
            vec![CI],
            vec![],
            vec![CI],
            vec![],
        ),
    ];
    for (case, desired, recorded, seen, register, deregister, after) in cases {
        let spec = RegistrySettingsSpec {
            registry_ref: None,
            pull_time_update_exclusions: desired.map(|d| d.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let status = RegistrySettingsStatus {
            registered_exclusions: recorded.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(
            reads(&spec, &status).exclusions || recorded.is_empty(),
            "{case}"
        );
        let observed = Observed {
            exclusions: Some(set(&seen)),
            ..Default::default()
        };
        let p = plan(&spec, &status, &observed).expect("plan");
        assert_eq!(
            set(&p.register.iter().map(String::as_str).collect::<Vec<_>>()),
            set(&register),
            "{case}: register"
        );
        assert_eq!(
            p.deregister,
            deregister.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{case}: deregister"
        );
        let st = synced_status(status, &spec, &observed, &p);
        assert_eq!(
            set(&st
                .registered_exclusions
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()),
            set(&after),
            "{case}: recorded"
        );
    }
}

#[test]
fn in_sync_means_no_write_and_no_event() {
    let spec = RegistrySettingsSpec {
        registry_ref: None,
        account_settings: Some(AccountSettings {
            blob_mounting: Some(BlobMounting::Disabled),
            ..Default::default()
        }),
        signing: Some(SigningConfiguration {
            rules: vec![rule(PROFILE, &["a/*"])],
        }),
        pull_time_update_exclusions: Some(vec![CI.to_string()]),
        deletion_policy: DeletionPolicy::Retain,
    };
    let status = RegistrySettingsStatus {
        signing_owned: Some(true),
        registered_exclusions: vec![CI.to_string()],
        ..Default::default()
    };
    let observed = Observed {
        account_settings: BTreeMap::from([("BLOB_MOUNTING".to_string(), "DISABLED".to_string())]),
        signing: Some(Some(vec![info(PROFILE, &["a/*"])])),
        exclusions: Some(set(&[CI, OUTSIDE])),
    };
    let p = plan(&spec, &status, &observed).expect("plan");
    assert!(!p.writes(), "{p:?}");
    assert_eq!(announcement(&p, true), None);
}

#[test]
fn events_say_why_it_wrote() {
    let p = Plan {
        account_settings: vec![("BLOB_MOUNTING", "ENABLED")],
        signing: SigningWrite::Delete,
        register: vec![CI.to_string()],
        deregister: vec![],
    };
    let applied = announcement(&p, true).expect("event");
    assert_eq!(applied.reason, "Applied");
    assert!(
        applied.note.contains("set BLOB_MOUNTING to ENABLED"),
        "{}",
        applied.note
    );
    assert!(applied.note.contains("deleted the signing configuration"));
    assert_eq!(
        announcement(&p, false).expect("event").reason,
        "DriftCorrected"
    );
}

#[test]
fn removal_table() {
    let status = RegistrySettingsStatus {
        signing_owned: Some(true),
        registered_exclusions: vec![CI.to_string()],
        ..Default::default()
    };
    let retain = plan_removal(DeletionPolicy::Retain, &status);
    assert_eq!((retain.delete_signing, retain.deregister.len()), (false, 0));
    assert_eq!(
        retain.announcement(DeletionPolicy::Retain).reason,
        "Retained"
    );
    let delete = plan_removal(DeletionPolicy::Delete, &status);
    assert_eq!(
        (delete.delete_signing, delete.deregister.clone()),
        (true, vec![CI.to_string()])
    );
    assert_eq!(
        delete.announcement(DeletionPolicy::Delete).reason,
        "Deleted"
    );
    // Nothing of ours: nothing goes, whatever the policy.
    let foreign = plan_removal(DeletionPolicy::Delete, &RegistrySettingsStatus::default());
    assert_eq!(
        (foreign.delete_signing, foreign.deregister.len()),
        (false, 0)
    );
}

#[test]
fn one_object_per_registry() {
    assert!(refuse_younger(None).is_ok());
    match refuse_younger(Some("first".to_string())) {
        Err(Error::Conflict(m)) => assert!(m.contains("RegistrySettings first"), "{m}"),
        other => panic!("{other:?}"),
    }
}
