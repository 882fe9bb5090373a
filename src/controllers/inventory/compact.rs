//! A repository's description as the inventory keeps it, one for every repository of the
//! registry. What repositories have in common (the ARN's and URI's prefix before the name, the
//! registry id, the settings) is one shared [`Profile`], so that an entry is a pointer, a
//! creation time and a flag. Lossless: [`Compact::expand`] gives back exactly the description
//! that went in.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::controllers::interned::Interned;
use crate::registry::RepositoryInfo;

/// A string that is, for nearly every repository, a shared prefix followed by its name.
#[derive(Debug, PartialEq, Eq, Hash)]
enum NamedString {
    /// The prefix; the name follows it.
    Prefix(Box<str>),
    /// Anything else, kept whole (and the profile with it is this repository's alone).
    Whole(Box<str>),
}

/// What a registry's repositories with the same settings have in common.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Profile {
    arn: NamedString,
    uri: NamedString,
    registry_id: Box<str>,
    tag_mutability: Box<str>,
    tag_mutability_exclusions: Box<[String]>,
    encryption_type: Box<str>,
    kms_key: Option<Box<str>>,
}

/// A repository's description without its name (the inventory's key): its profile, shared.
#[derive(Debug)]
pub(super) struct Compact {
    profile: Arc<Profile>,
    created_at: Option<Timestamp>,
    scan_on_push: bool,
}

/// The profiles descriptions share: one for each combination of settings in use.
#[derive(Debug, Default)]
pub(super) struct Profiles {
    profiles: Interned<Profile>,
}

fn named(whole: String, name: &str) -> NamedString {
    match whole.strip_suffix(name) {
        Some(prefix) if !name.is_empty() => NamedString::Prefix(prefix.into()),
        _ => NamedString::Whole(whole.into_boxed_str()),
    }
}

impl Profiles {
    /// `info` as the inventory keeps it, under its name.
    pub(super) fn compact(&mut self, info: RepositoryInfo) -> Compact {
        let name = info.name.as_str();
        let profile = Profile {
            arn: named(info.arn, name),
            uri: named(info.uri, name),
            registry_id: info.registry_id.into_boxed_str(),
            tag_mutability: info.tag_mutability.into_boxed_str(),
            tag_mutability_exclusions: info.tag_mutability_exclusions.into_boxed_slice(),
            encryption_type: info.encryption_type.into_boxed_str(),
            kms_key: info.kms_key.map(String::into_boxed_str),
        };
        Compact {
            profile: self.profiles.share_value(profile),
            created_at: info.created_at,
            scan_on_push: info.scan_on_push,
        }
    }

    /// How many profiles are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.profiles.len()
    }
}

impl NamedString {
    fn expand(&self, name: &str) -> String {
        match self {
            NamedString::Prefix(prefix) => format!("{prefix}{name}"),
            NamedString::Whole(whole) => whole.to_string(),
        }
    }
}

impl Compact {
    /// The description of the repository named `name` that was compacted.
    pub(super) fn expand(&self, name: &str) -> RepositoryInfo {
        let p = &self.profile;
        RepositoryInfo {
            name: name.to_string(),
            arn: p.arn.expand(name),
            uri: p.uri.expand(name),
            registry_id: p.registry_id.to_string(),
            created_at: self.created_at,
            tag_mutability: p.tag_mutability.to_string(),
            tag_mutability_exclusions: p.tag_mutability_exclusions.to_vec(),
            scan_on_push: self.scan_on_push,
            encryption_type: p.encryption_type.to_string(),
            kms_key: p.kms_key.as_deref().map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> RepositoryInfo {
        RepositoryInfo {
            name: name.into(),
            arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{name}"),
            uri: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}"),
            registry_id: "123456789012".into(),
            created_at: Some(Timestamp::from_second(1_764_892_800).unwrap()),
            tag_mutability: "IMMUTABLE_WITH_EXCLUSION".into(),
            tag_mutability_exclusions: vec!["latest".into(), "dev-*".into()],
            scan_on_push: true,
            encryption_type: "KMS".into(),
            kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/k1".into()),
        }
    }

    /// Whatever goes in comes back out, including strings that do not follow the pattern.
    #[test]
    fn expanding_gives_back_the_description() {
        let mut shared = Profiles::default();
        let unusual = RepositoryInfo {
            arn: "arn:aws:ecr:us-east-1:123456789012:repository/renamed".into(),
            uri: String::new(),
            kms_key: None,
            tag_mutability_exclusions: Vec::new(),
            ..info("team/app")
        };
        let unnamed = RepositoryInfo {
            name: String::new(),
            ..info("x")
        };
        for original in [info("team/app"), info("a"), unusual, unnamed] {
            let name = original.name.clone();
            let kept = shared.compact(original.clone());
            assert_eq!(kept.expand(&name), original);
        }
    }

    /// A registry's repositories with the same settings share one profile: 10,000 of them add
    /// nothing after the first; other settings are another profile.
    #[test]
    fn repositories_with_the_same_settings_share_a_profile() {
        let mut shared = Profiles::default();
        let first = shared.compact(info("r0"));
        let kept: Vec<_> = (1..10_000)
            .map(|i| shared.compact(info(&format!("team/r{i}"))))
            .collect();
        assert_eq!(shared.len(), 1);
        assert!(Arc::ptr_eq(&first.profile, &kept[9_998].profile));
        let mutable = shared.compact(RepositoryInfo {
            tag_mutability: "MUTABLE".into(),
            ..info("other")
        });
        assert!(!Arc::ptr_eq(&first.profile, &mutable.profile));
        assert_eq!(shared.len(), 2);
    }
}
