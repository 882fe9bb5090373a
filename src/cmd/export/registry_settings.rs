//! The RegistrySettings part of the conversion: account settings, managed signing and pull-time
//! update exclusions, each exported only when the kind can say it exactly.

use std::collections::{BTreeMap, BTreeSet};

use ecr_operator::api::RegistrySettings;
use ecr_operator::api::registry_settings::{
    AccountSettings, BasicScanTypeVersion, BlobMounting, RegistryPolicyScope, RegistrySettingsSpec,
    SigningConfiguration, SigningRepositoryFilter, SigningRule,
};
use ecr_operator::registry::SigningRuleInfo;

use super::convert::Note;

/// The object name of the registry's one RegistrySettings.
pub const REGISTRY_SETTINGS_NAME: &str = "registry";

/// The account settings ECR names (GetAccountSetting), read one by one.
pub const ACCOUNT_SETTINGS: [&str; 3] = [
    "BASIC_SCAN_TYPE_VERSION",
    "REGISTRY_POLICY_SCOPE",
    "BLOB_MOUNTING",
];

/// What was read of the registry's switches.
#[derive(Clone, Debug, Default)]
pub struct ObservedSettings {
    /// Name → value, for [`ACCOUNT_SETTINGS`].
    pub account: BTreeMap<String, String>,
    pub signing: Option<Vec<SigningRuleInfo>>,
    pub exclusions: BTreeSet<String>,
}

/// The RegistrySettings that says what the registry holds; none when nothing can be said.
pub fn registry_settings(
    observed: &ObservedSettings,
    notes: &mut Vec<Note>,
) -> Option<RegistrySettings> {
    let account = account_settings(&observed.account, notes);
    let signing = observed
        .signing
        .as_ref()
        .and_then(|rules| signing(rules, notes));
    let exclusions = (!observed.exclusions.is_empty())
        .then(|| observed.exclusions.iter().cloned().collect::<Vec<_>>());
    if account == AccountSettings::default() && signing.is_none() && exclusions.is_none() {
        return None;
    }
    Some(RegistrySettings::new(
        REGISTRY_SETTINGS_NAME,
        RegistrySettingsSpec {
            registry_ref: None,
            account_settings: (account != AccountSettings::default()).then_some(account),
            signing,
            pull_time_update_exclusions: exclusions,
            deletion_policy: Default::default(),
        },
    ))
}

/// The values PutAccountSetting takes; others (CLAIR, V1: what older registries read) cannot
/// be declared, and are left as they are.
fn account_settings(read: &BTreeMap<String, String>, notes: &mut Vec<Note>) -> AccountSettings {
    let mut out = AccountSettings::default();
    for (name, value) in read {
        match (name.as_str(), value.as_str()) {
            ("BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE") => {
                out.basic_scan_type_version = Some(BasicScanTypeVersion::AwsNative)
            }
            ("REGISTRY_POLICY_SCOPE", "V2") => {
                out.registry_policy_scope = Some(RegistryPolicyScope::V2)
            }
            ("BLOB_MOUNTING", "ENABLED") => out.blob_mounting = Some(BlobMounting::Enabled),
            ("BLOB_MOUNTING", "DISABLED") => out.blob_mounting = Some(BlobMounting::Disabled),
            (name, value) => notes.push(Note {
                subject: format!("account setting {name}"),
                reason: format!(
                    "{value} cannot be declared (PutAccountSetting does not take it); left as it is"
                ),
                refused: false,
            }),
        }
    }
    out
}

/// The signing rules, or none when a filter is one the kind refuses (the configuration is one
/// document: the operator would rewrite it whole).
fn signing(rules: &[SigningRuleInfo], notes: &mut Vec<Note>) -> Option<SigningConfiguration> {
    let too_many = rules.len() > 10 || rules.iter().any(|r| r.repository_filters.len() > 100);
    if too_many {
        notes.push(Note::refused(
            "signing configuration",
            "more rules or filters than the RegistrySettings kind takes (10 rules of 100 filters)",
        ));
        return None;
    }
    Some(SigningConfiguration {
        rules: rules
            .iter()
            .map(|r| SigningRule {
                signing_profile_arn: r.profile_arn.clone(),
                repository_filters: r
                    .repository_filters
                    .iter()
                    .map(|f| SigningRepositoryFilter {
                        filter: f.clone(),
                        filter_type: Default::default(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn what_put_account_setting_takes_is_declared_the_rest_noted() {
        let mut notes = Vec::new();
        let read = account(&[
            ("BASIC_SCAN_TYPE_VERSION", "CLAIR"),
            ("REGISTRY_POLICY_SCOPE", "V2"),
            ("BLOB_MOUNTING", "DISABLED"),
        ]);
        let observed = ObservedSettings {
            account: read,
            ..Default::default()
        };
        let settings = registry_settings(&observed, &mut notes).expect("an object");
        let a = settings.spec.account_settings.expect("account settings");
        assert_eq!(a.basic_scan_type_version, None);
        assert_eq!(a.registry_policy_scope, Some(RegistryPolicyScope::V2));
        assert_eq!(a.blob_mounting, Some(BlobMounting::Disabled));
        assert_eq!(notes.len(), 1);
        assert!(
            !notes[0].refused && notes[0].reason.contains("CLAIR"),
            "{notes:?}"
        );
    }

    #[test]
    fn signing_and_exclusions_are_exported_as_read() {
        let mut notes = Vec::new();
        let observed = ObservedSettings {
            signing: Some(vec![SigningRuleInfo {
                profile_arn: "arn:aws:signer:us-east-1:123456789012:/signing-profiles/P".into(),
                repository_filters: vec!["prod/*".into()],
            }]),
            exclusions: ["arn:aws:iam::123456789012:role/ci".to_string()].into(),
            ..Default::default()
        };
        let s = registry_settings(&observed, &mut notes)
            .expect("an object")
            .spec;
        assert_eq!(s.account_settings, None);
        let rules = s.signing.expect("signing").rules;
        assert_eq!(rules[0].repository_filters[0].filter, "prod/*");
        assert_eq!(
            s.pull_time_update_exclusions,
            Some(vec!["arn:aws:iam::123456789012:role/ci".to_string()])
        );
        assert!(notes.is_empty());
        // Nothing at all: no object.
        assert!(registry_settings(&ObservedSettings::default(), &mut notes).is_none());
    }

    #[test]
    fn a_signing_configuration_the_kind_cannot_hold_is_refused_whole() {
        let mut notes = Vec::new();
        let rule = SigningRuleInfo {
            profile_arn: "arn:aws:signer:us-east-1:123456789012:/signing-profiles/P".into(),
            repository_filters: vec![],
        };
        let observed = ObservedSettings {
            signing: Some(vec![rule; 11]),
            ..Default::default()
        };
        assert!(registry_settings(&observed, &mut notes).is_none());
        assert!(notes[0].refused);
    }
}
