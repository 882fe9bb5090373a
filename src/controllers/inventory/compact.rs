//! A repository's description as the inventory keeps it, one for every repository of the
//! registry: what is the same for all of them (the ARN's and URI's prefix before the name, the
//! registry id, the spellings of the settings) is held once and shared, so that an entry is
//! little more than its creation time. Lossless: [`Compact::expand`] gives back exactly the
//! description that went in.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::controllers::interned::Interned;
use crate::registry::RepositoryInfo;

/// A string that is, for nearly every repository, a shared prefix followed by its name.
#[derive(Debug)]
enum NamedString {
    /// The shared prefix; the name follows it.
    Prefix(Arc<str>),
    /// Anything else, kept whole.
    Whole(Box<str>),
}

/// A repository's description without its name (the inventory's key) and with the strings it
/// shares with the other repositories held once.
#[derive(Debug)]
pub(super) struct Compact {
    arn: NamedString,
    uri: NamedString,
    registry_id: Arc<str>,
    created_at: Option<Timestamp>,
    tag_mutability: Arc<str>,
    tag_mutability_exclusions: Box<[String]>,
    scan_on_push: bool,
    encryption_type: Arc<str>,
    kms_key: Option<Arc<str>>,
}

/// The strings descriptions share: a registry has one ARN prefix, one URI prefix, one id, four
/// tag mutabilities, three encryption types and a few KMS keys.
#[derive(Debug, Default)]
pub(super) struct SharedStrings {
    strings: Interned,
}

impl SharedStrings {
    fn share(&mut self, s: &str) -> Arc<str> {
        self.strings.share(s)
    }

    fn named(&mut self, whole: String, name: &str) -> NamedString {
        match whole.strip_suffix(name) {
            Some(prefix) if !name.is_empty() => NamedString::Prefix(self.share(prefix)),
            _ => NamedString::Whole(whole.into_boxed_str()),
        }
    }

    /// `info` as the inventory keeps it, under its name.
    pub(super) fn compact(&mut self, info: RepositoryInfo) -> Compact {
        let name = info.name.as_str();
        Compact {
            arn: self.named(info.arn, name),
            uri: self.named(info.uri, name),
            registry_id: self.share(&info.registry_id),
            created_at: info.created_at,
            tag_mutability: self.share(&info.tag_mutability),
            tag_mutability_exclusions: info.tag_mutability_exclusions.into_boxed_slice(),
            scan_on_push: info.scan_on_push,
            encryption_type: self.share(&info.encryption_type),
            kms_key: info.kms_key.as_deref().map(|k| self.share(k)),
        }
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
        RepositoryInfo {
            name: name.to_string(),
            arn: self.arn.expand(name),
            uri: self.uri.expand(name),
            registry_id: self.registry_id.to_string(),
            created_at: self.created_at,
            tag_mutability: self.tag_mutability.to_string(),
            tag_mutability_exclusions: self.tag_mutability_exclusions.to_vec(),
            scan_on_push: self.scan_on_push,
            encryption_type: self.encryption_type.to_string(),
            kms_key: self.kms_key.as_deref().map(str::to_string),
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
        let mut shared = SharedStrings::default();
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

    /// A registry's repositories share one copy of each common string: 10,000 of them add
    /// nothing to the shared strings after the first.
    #[test]
    fn common_strings_are_held_once() {
        let mut shared = SharedStrings::default();
        let first = shared.compact(info("r0"));
        let held = shared.strings.len();
        let kept: Vec<_> = (1..10_000)
            .map(|i| shared.compact(info(&format!("team/r{i}"))))
            .collect();
        assert_eq!(shared.strings.len(), held);
        let (NamedString::Prefix(a), NamedString::Prefix(b)) = (&first.arn, &kept[9_998].arn)
        else {
            panic!("ARNs of the usual form are a prefix and the name");
        };
        assert!(Arc::ptr_eq(a, b));
        assert!(Arc::ptr_eq(&first.registry_id, &kept[0].registry_id));
    }
}
