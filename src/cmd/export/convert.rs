//! What was read of the registry → the custom resources that describe it. Pure: no I/O, tested
//! with tables in `tests.rs`.
//!
//! The rule throughout: an exported object, applied, makes the operator find ECR already as
//! the object says. What a kind cannot say is left out with a [`Note`]; where leaving a part out
//! is harmless (the operator leaves alone what a spec does not mention: a repository's policy,
//! lifecycle policy, other tags) only that part goes, otherwise (a registry-wide document, a
//! template, whose whole would be rewritten) the object goes.

use std::collections::BTreeMap;

use ecr_operator::api::common::LocalObjectReference;
use ecr_operator::api::lifecycle_policy::LifecyclePolicySpec;
use ecr_operator::api::repository::{
    Encryption, EncryptionType, ExclusionFilterType, OWNER_TAG, RepositorySpec, TagMutability,
    TagMutabilityExclusionFilter,
};
use ecr_operator::api::repository_access_policy::{NamespaceSelection, RepositoryAccessPolicySpec};
use ecr_operator::api::{
    LifecyclePolicy, PullThroughCacheRule, RegistryPolicy, RegistrySettings, ReplicationConfig,
    Repository, RepositoryAccessPolicy, RepositoryCreationTemplate, ScanPolicy,
};
use ecr_operator::registry::{
    CreationTemplate, PullThroughCacheRuleInfo, ReplicationSettings, RepositoryInfo,
    ScanningSettings,
};

use super::names::object_names;
use super::policy;
use super::settings::{
    pull_through_cache_rules, registry_policy, replication, scanning, templates,
};

/// What the export read of the registry.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub repositories: Vec<ObservedRepository>,
    pub replication: ReplicationSettings,
    pub scanning: ScanningSettings,
    pub registry_policy: Option<String>,
    pub pull_through_cache_rules: Vec<PullThroughCacheRuleInfo>,
    pub templates: Vec<CreationTemplate>,
    pub registry_settings: super::registry_settings::ObservedSettings,
}

/// One repository with what is read of it separately. Policy and lifecycle policy are not read
/// (`None`) for a repository the operator already owns.
#[derive(Clone, Debug)]
pub struct ObservedRepository {
    pub info: RepositoryInfo,
    pub tags: BTreeMap<String, String>,
    pub policy: Option<String>,
    pub lifecycle_policy: Option<String>,
}

/// Where the objects go and what comes with them.
#[derive(Clone, Debug)]
pub struct Options {
    /// The namespace of Repository and LifecyclePolicy objects.
    pub namespace: String,
    /// Also emit the RepositoryAccessPolicy that lets the namespace adopt the repositories.
    pub access_policy: bool,
}

/// One exported object.
#[derive(Clone, Debug)]
pub enum Object {
    RepositoryAccessPolicy(RepositoryAccessPolicy),
    Repository(Box<Repository>),
    LifecyclePolicy(LifecyclePolicy),
    ReplicationConfig(ReplicationConfig),
    ScanPolicy(ScanPolicy),
    RegistryPolicy(RegistryPolicy),
    PullThroughCacheRule(PullThroughCacheRule),
    RepositoryCreationTemplate(Box<RepositoryCreationTemplate>),
    RegistrySettings(RegistrySettings),
}

/// Something of the registry the export leaves out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// What was left out, e.g. `repository team/app: policy`.
    pub subject: String,
    pub reason: String,
    /// Left out because no object can say it (counts for `--strict`), rather than by choice
    /// (a repository the operator already owns).
    pub refused: bool,
}

impl Note {
    pub(super) fn refused(subject: impl Into<String>, reason: impl Into<String>) -> Note {
        Note {
            subject: subject.into(),
            reason: reason.into(),
            refused: true,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Export {
    /// In a stable order: access policy, repositories, lifecycle policies, registry settings,
    /// pull-through cache rules, templates, the registry's switches; within a kind by ECR name
    /// or prefix.
    pub objects: Vec<Object>,
    pub notes: Vec<Note>,
}

/// The custom resources describing `observed`.
pub fn export(observed: &Observed, options: &Options) -> Export {
    let mut out = Export::default();
    let mut adoptable: Vec<&ObservedRepository> = Vec::new();
    for r in &observed.repositories {
        match r.tags.get(OWNER_TAG) {
            Some(owner) => out.notes.push(Note {
                subject: format!("repository {}", r.info.name),
                reason: format!(
                    "already managed by ecr-operator ({owner}); export that object instead"
                ),
                refused: false,
            }),
            None => adoptable.push(r),
        }
    }
    adoptable.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let names = object_names(adoptable.iter().map(|r| r.info.name.as_str()));
    let mut repositories = Vec::new();
    let mut lifecycle_policies = Vec::new();
    for r in adoptable {
        let name = &names[&r.info.name];
        match repository(r, name, &options.namespace, &mut out.notes) {
            Some(repo) => repositories.push(Object::Repository(Box::new(repo))),
            None => continue,
        }
        if let Some(lp) = lifecycle_policy(r, name, &options.namespace, &mut out.notes) {
            lifecycle_policies.push(Object::LifecyclePolicy(lp));
        }
    }
    if options.access_policy {
        out.objects
            .extend(access_policies(&repositories, &options.namespace));
    }
    out.objects.extend(repositories);
    out.objects.extend(lifecycle_policies);
    let registry_wide = registry_wide(observed, &mut out.notes);
    out.objects.extend(registry_wide);
    out
}

/// The registry-wide objects: documents, rules and templates, then the registry's switches.
fn registry_wide(observed: &Observed, notes: &mut Vec<Note>) -> Vec<Object> {
    let documents = [
        replication(&observed.replication, notes).map(Object::ReplicationConfig),
        scanning(&observed.scanning, notes).map(Object::ScanPolicy),
        observed
            .registry_policy
            .as_deref()
            .and_then(|text| registry_policy(text, notes))
            .map(Object::RegistryPolicy),
    ];
    let mut objects: Vec<Object> = documents.into_iter().flatten().collect();
    objects.extend(
        pull_through_cache_rules(&observed.pull_through_cache_rules)
            .into_iter()
            .map(Object::PullThroughCacheRule),
    );
    objects.extend(
        templates(&observed.templates, notes)
            .into_iter()
            .map(|t| Object::RepositoryCreationTemplate(Box::new(t))),
    );
    objects.extend(
        super::registry_settings::registry_settings(&observed.registry_settings, notes)
            .map(Object::RegistrySettings),
    );
    objects
}

pub(super) fn tag_mutability(mode: &str) -> Option<TagMutability> {
    Some(match mode {
        "MUTABLE" => TagMutability::Mutable,
        "IMMUTABLE" => TagMutability::Immutable,
        "IMMUTABLE_WITH_EXCLUSION" => TagMutability::ImmutableWithExclusion,
        "MUTABLE_WITH_EXCLUSION" => TagMutability::MutableWithExclusion,
        _ => return None,
    })
}

pub(super) fn encryption_type(kind: &str) -> Option<EncryptionType> {
    Some(match kind {
        "AES256" => EncryptionType::Aes256,
        "KMS" => EncryptionType::Kms,
        "KMS_DSSE" => EncryptionType::KmsDsse,
        _ => return None,
    })
}

/// The mode and its exclusion filters, as both kinds with tag mutability take them (1 to 5
/// filters exactly with an *_WITH_EXCLUSION mode).
pub(super) fn mutability(
    mode: &str,
    exclusions: &[String],
) -> Result<(TagMutability, Vec<TagMutabilityExclusionFilter>), String> {
    let typed = tag_mutability(mode).ok_or_else(|| format!("tag mutability {mode} is unknown"))?;
    let filters: Vec<_> = exclusions
        .iter()
        .map(|f| TagMutabilityExclusionFilter {
            filter_type: ExclusionFilterType::Wildcard,
            filter: f.clone(),
        })
        .collect();
    if typed.has_exclusions() == filters.is_empty() || filters.len() > 5 {
        return Err(format!(
            "tag mutability {mode} with {} exclusion filters has no typed form",
            filters.len()
        ));
    }
    Ok((typed, filters))
}

/// A tag the kinds' CEL rules take: ECR's TagResource characters, not `aws:`, not our owner key.
pub(super) fn tag_accepted(key: &str, value: &str) -> bool {
    let chars_ok = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+@-".contains(c))
    };
    (1..=128).contains(&key.chars().count())
        && value.chars().count() <= 256
        && !key.starts_with("aws:")
        && key != OWNER_TAG
        && chars_ok(key)
        && chars_ok(value)
}

fn repository(
    r: &ObservedRepository,
    name: &str,
    namespace: &str,
    notes: &mut Vec<Note>,
) -> Option<Repository> {
    let info = &r.info;
    let subject = format!("repository {}", info.name);
    let settings =
        mutability(&info.tag_mutability, &info.tag_mutability_exclusions).and_then(|m| {
            match encryption_type(&info.encryption_type) {
                Some(e) => Ok((m, e)),
                None => Err(format!(
                    "encryption type {} is unknown",
                    info.encryption_type
                )),
            }
        });
    let ((mode, filters), etype) = match settings {
        Ok(s) => s,
        Err(reason) => {
            notes.push(Note::refused(subject, reason));
            return None;
        }
    };
    let tags = exported_tags(&subject, &r.tags, notes);
    let policy = r.policy.as_deref().and_then(|text| {
        policy::repository_policy(text)
            .map_err(|e| {
                notes.push(Note::refused(
                    format!("{subject}: policy"),
                    format!("{e}; left out, the operator leaves the policy as it is"),
                ))
            })
            .ok()
    });
    let spec = RepositorySpec {
        repository_name: Some(info.name.clone()),
        image_tag_mutability: mode,
        image_tag_mutability_exclusion_filters: filters,
        scan_on_push: info.scan_on_push,
        encryption: Some(Encryption {
            encryption_type: etype,
            kms_key: info.kms_key.clone(),
        }),
        tags: tags.into(),
        policy,
        adopt: true,
        ..Default::default()
    };
    let mut repo = Repository::new(name, spec);
    repo.metadata.namespace = Some(namespace.to_string());
    Some(repo)
}

/// The tags a Repository can declare. One left out stays as it is: the operator removes only
/// tags its objects set. `aws:` tags are AWS's own and never reported.
fn exported_tags(
    subject: &str,
    found: &BTreeMap<String, String>,
    notes: &mut Vec<Note>,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for (k, v) in found {
        if k.starts_with("aws:") {
            continue;
        } else if !tag_accepted(k, v) || tags.len() == 49 {
            notes.push(Note::refused(
                format!("{subject}: tag {k}"),
                "a Repository's tags cannot hold it (characters, length or the 49-tag bound); left as it is",
            ));
        } else {
            tags.insert(k.clone(), v.clone());
        }
    }
    tags
}

fn lifecycle_policy(
    r: &ObservedRepository,
    name: &str,
    namespace: &str,
    notes: &mut Vec<Note>,
) -> Option<LifecyclePolicy> {
    let text = r.lifecycle_policy.as_deref()?;
    match policy::lifecycle_rules(text) {
        Ok(rules) => {
            let spec = LifecyclePolicySpec {
                repository_ref: LocalObjectReference {
                    name: name.to_string(),
                    namespace: None,
                },
                rules,
                dry_run: false,
            };
            let mut lp = LifecyclePolicy::new(name, spec);
            lp.metadata.namespace = Some(namespace.to_string());
            Some(lp)
        }
        Err(e) => {
            notes.push(Note::refused(
                format!("repository {}: lifecycle policy", r.info.name),
                format!("{e}; left out, the operator leaves the lifecycle policy as it is"),
            ));
            None
        }
    }
}

/// The grant that lets `namespace` adopt exactly the exported repositories (100 names per
/// object, the kind's bound).
fn access_policies(repositories: &[Object], namespace: &str) -> Vec<Object> {
    let names: Vec<String> = repositories
        .iter()
        .filter_map(|o| match o {
            Object::Repository(r) => r.spec.repository_name.clone(),
            _ => None,
        })
        .collect();
    let chunks: Vec<&[String]> = names.chunks(100).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let name = match chunks.len() {
                1 => format!("ecr-export-{namespace}"),
                _ => format!("ecr-export-{namespace}-{}", i + 1),
            };
            Object::RepositoryAccessPolicy(RepositoryAccessPolicy::new(
                &name,
                RepositoryAccessPolicySpec {
                    namespaces: NamespaceSelection {
                        names: vec![namespace.to_string()],
                        selector: None,
                    },
                    repositories: chunk.to_vec(),
                    allow_adoption: true,
                    // The operator's own registry: the one exported.
                    registry_targets: Vec::new(),
                },
            ))
        })
        .collect()
}
