//! Which ECR repositories a namespace's objects may manage: the pure decision behind every
//! Repository and LifecyclePolicy write.
//!
//! The rules:
//! - A RepositoryAccessPolicy selects a namespace when `spec.namespaces.names` lists it or its
//!   `selector` matches the namespace's labels (Kubernetes selector semantics; a selector that
//!   cannot be evaluated selects nothing, and its policy reports itself Invalid).
//! - A namespace no policy selects gets the default grant: repositories under `<namespace>/`
//!   (the pattern `{namespace}/*`), no adoption.
//! - A namespace some policies select gets exactly what they grant together: a repository is
//!   granted when a pattern of any of them matches its whole name (`{namespace}` replaced by the
//!   namespace first); adoption is allowed when one of the policies whose pattern matches says
//!   `allowAdoption: true`. The default grant does not apply then: an admin can narrow it.
//! - Grants are per registry: a policy without `registryTargets` grants in the operator's own
//!   registry only, one with them in the RegistryTargets it names (`*`: every one). A
//!   namespace no policy selects uses only the operator's own registry. A namespace some
//!   policies select may use a registry only when one of them covers it, and there gets what
//!   the covering ones grant together.
//! - Every refusal names the policies that were consulted and what they allow, so the tenant
//!   knows whom to ask.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use crate::api::repository_access_policy::RepositoryAccessPolicy;
use crate::image::{selector_matches, wildcard_match};

/// The pattern standing for the managing object's namespace.
pub const NAMESPACE_PLACEHOLDER: &str = "{namespace}";
/// What a namespace no policy selects may manage.
pub const DEFAULT_PATTERN: &str = "{namespace}/*";

/// What a namespace may do with one ECR repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// The repository is the namespace's to manage; `adopt` says whether an existing
    /// repository without an owner tag may be taken over.
    Granted {
        adopt: bool,
        /// The policy that grants it (the first by name), `None` for the default grant.
        by: Option<String>,
    },
    /// Not the namespace's: the message says why and who decides.
    Forbidden(String),
}

impl Access {
    pub fn is_granted(&self) -> bool {
        matches!(self, Access::Granted { .. })
    }
}

/// Whether `policy` applies to the namespace `namespace` with `labels`.
pub fn selects(
    policy: &RepositoryAccessPolicy,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let selection = &policy.spec.namespaces;
    selection.names.iter().any(|n| n == namespace)
        || selection
            .selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, labels).unwrap_or(false))
}

/// `pattern` with `{namespace}` replaced.
pub fn expand(pattern: &str, namespace: &str) -> String {
    pattern.replace(NAMESPACE_PLACEHOLDER, namespace)
}

/// What objects of `namespace` (with `labels`) may do with the ECR repository `repository` of
/// the operator's own registry, given every RepositoryAccessPolicy in the cluster.
/// `policies` as owned values or as the `Arc`s a reflector store holds (no copy per decision).
pub fn access<P: Borrow<RepositoryAccessPolicy>>(
    policies: &[P],
    namespace: &str,
    labels: &BTreeMap<String, String>,
    repository: &str,
) -> Access {
    access_on(policies, namespace, labels, None, repository)
}

/// Whether `policy` grants in the registry of `target` (`None`: the operator's own).
pub fn covers(policy: &RepositoryAccessPolicy, target: Option<&str>) -> bool {
    let targets = &policy.spec.registry_targets;
    match target {
        None => targets.is_empty(),
        Some(t) => targets.iter().any(|g| g == "*" || g == t),
    }
}

/// [`access`] in the registry of the RegistryTarget `target` (`None`: the operator's own).
pub fn access_on<P: Borrow<RepositoryAccessPolicy>>(
    policies: &[P],
    namespace: &str,
    labels: &BTreeMap<String, String>,
    target: Option<&str>,
    repository: &str,
) -> Access {
    let mut selecting: Vec<&RepositoryAccessPolicy> = policies
        .iter()
        .map(Borrow::borrow)
        .filter(|p| selects(p, namespace, labels))
        .collect();
    if let Some(refusal) = target_refusal(&selecting, namespace, target) {
        return Access::Forbidden(refusal);
    }
    selecting.retain(|p| covers(p, target));
    if selecting.is_empty() {
        let default = expand(DEFAULT_PATTERN, namespace);
        return if wildcard_match(&default, repository) {
            Access::Granted {
                adopt: false,
                by: None,
            }
        } else {
            Access::Forbidden(format!(
                "ECR repository {repository} is not granted to namespace {namespace}: no \
                 RepositoryAccessPolicy selects the namespace, and the default grant is {default} \
                 only (name the repository {namespace}/..., or ask a cluster admin for a \
                 RepositoryAccessPolicy)"
            ))
        };
    }
    selecting.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let granting: Vec<&&RepositoryAccessPolicy> = selecting
        .iter()
        .filter(|p| {
            p.spec
                .repositories
                .iter()
                .any(|pattern| wildcard_match(&expand(pattern, namespace), repository))
        })
        .collect();
    match granting.first() {
        Some(first) => Access::Granted {
            adopt: granting.iter().any(|p| p.spec.allow_adoption),
            by: first.metadata.name.clone(),
        },
        None => Access::Forbidden(format!(
            "ECR repository {repository} is not granted to namespace {namespace}: {}",
            describe(&selecting, namespace)
        )),
    }
}

/// Why the namespace may not use the registry of `target` at all, given the policies that
/// select it (`None` when one of them covers it, or for the own registry with none selecting).
fn target_refusal(
    selecting: &[&RepositoryAccessPolicy],
    namespace: &str,
    target: Option<&str>,
) -> Option<String> {
    if selecting.iter().any(|p| covers(p, target)) {
        return None;
    }
    let registry = match target {
        Some(t) => format!("RegistryTarget {t}"),
        None if selecting.is_empty() => return None,
        None => "the operator's own registry".to_string(),
    };
    if selecting.is_empty() {
        return Some(format!(
            "{registry} is not granted to namespace {namespace}: no RepositoryAccessPolicy \
             selects the namespace, and the default grant is the operator's own registry only \
             (ask a cluster admin for a RepositoryAccessPolicy with registryTargets)"
        ));
    }
    let parts: Vec<String> = selecting
        .iter()
        .map(|p| {
            let targets = &p.spec.registry_targets;
            let on = if targets.is_empty() {
                "the operator's own registry".to_string()
            } else {
                format!("RegistryTargets {}", targets.join(", "))
            };
            let name = p.metadata.name.as_deref().unwrap_or_default();
            format!("RepositoryAccessPolicy {name} grants on {on}")
        })
        .collect();
    Some(format!(
        "{registry} is not granted to namespace {namespace}: {}",
        parts.join("; ")
    ))
}

/// Why adoption of `repository` is refused under `access` (`None` when it is allowed).
pub fn adoption_refusal(access: &Access, namespace: &str, repository: &str) -> Option<String> {
    match access {
        Access::Granted { adopt: true, .. } => None,
        Access::Granted { by: None, .. } => Some(format!(
            "adopting ECR repository {repository} is not allowed for namespace {namespace}: no \
             RepositoryAccessPolicy selects the namespace, and the default grant allows no \
             adoption (ask a cluster admin for a RepositoryAccessPolicy with allowAdoption: true)"
        )),
        Access::Granted { by: Some(by), .. } => Some(format!(
            "adopting ECR repository {repository} is not allowed for namespace {namespace}: \
             RepositoryAccessPolicy {by} grants it without allowAdoption"
        )),
        Access::Forbidden(message) => Some(message.clone()),
    }
}

/// `RepositoryAccessPolicy a allows x/*, y; b allows z`: what the consulted policies allow.
fn describe(policies: &[&RepositoryAccessPolicy], namespace: &str) -> String {
    let parts: Vec<String> = policies
        .iter()
        .map(|p| {
            let patterns: Vec<String> = p
                .spec
                .repositories
                .iter()
                .map(|r| expand(r, namespace))
                .collect();
            format!(
                "RepositoryAccessPolicy {} allows {}",
                p.metadata.name.as_deref().unwrap_or_default(),
                patterns.join(", ")
            )
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repository_access_policy::{NamespaceSelection, RepositoryAccessPolicySpec};
    use crate::image::selector::selector;
    use proptest::prelude::*;

    fn policy(
        name: &str,
        names: &[&str],
        labels: &[(&str, &str)],
        repositories: &[&str],
        allow_adoption: bool,
    ) -> RepositoryAccessPolicy {
        RepositoryAccessPolicy::new(
            name,
            RepositoryAccessPolicySpec {
                namespaces: NamespaceSelection {
                    names: names.iter().map(|s| s.to_string()).collect(),
                    selector: (!labels.is_empty()).then(|| selector(labels, &[])),
                },
                repositories: repositories.iter().map(|s| s.to_string()).collect(),
                allow_adoption,
                registry_targets: Vec::new(),
            },
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What a decision comes to: granted (with adoption or not, by which policy) or forbidden
    /// (with a piece of the message).
    #[derive(Debug)]
    enum Want {
        Granted(bool, Option<&'static str>),
        Forbidden(&'static str),
    }

    /// (what, policies, namespace, namespace labels, repository, expected).
    type Case<'a> = (
        &'a str,
        Vec<RepositoryAccessPolicy>,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a str,
        Want,
    );

    #[test]
    fn decision_table() {
        let shared = policy("shared", &["team-a"], &[], &["shared/*"], false);
        let adopt_legacy = policy("legacy", &["team-a"], &[], &["legacy-*"], true);
        let by_label = policy("platform", &[], &[("tier", "platform")], &["*"], true);
        let per_ns = policy("per-ns", &["team-b"], &[], &["apps/{namespace}-*"], false);
        let everyone = policy("everyone", &[], &[], &["public/*"], false);
        let mut everyone_selector = everyone.clone();
        everyone_selector.spec.namespaces.selector = Some(selector(&[], &[]));
        let bad_selector = {
            let mut p = policy("bad", &[], &[], &["*"], true);
            p.spec.namespaces.selector = Some(selector(&[], &[("tier", "In", &[])]));
            p
        };
        let none: Vec<RepositoryAccessPolicy> = vec![];
        let cases: Vec<Case> = vec![
            // The default: own prefix, no adoption.
            (
                "default own prefix",
                none.clone(),
                "team-a",
                &[],
                "team-a/app",
                Want::Granted(false, None),
            ),
            (
                "default nested",
                none.clone(),
                "team-a",
                &[],
                "team-a/x/y",
                Want::Granted(false, None),
            ),
            (
                "default bare name",
                none.clone(),
                "team-a",
                &[],
                "app",
                Want::Forbidden("default grant is team-a/* only"),
            ),
            (
                "default other team",
                none.clone(),
                "team-a",
                &[],
                "team-b/app",
                Want::Forbidden("no RepositoryAccessPolicy selects"),
            ),
            (
                "default prefix is not a name prefix",
                none.clone(),
                "team",
                &[],
                "team-a/app",
                Want::Forbidden("team/*"),
            ),
            (
                "default exact namespace name",
                none.clone(),
                "team-a",
                &[],
                "team-a",
                Want::Forbidden("team-a/*"),
            ),
            // A selecting policy replaces the default.
            (
                "policy grants",
                vec![shared.clone()],
                "team-a",
                &[],
                "shared/base",
                Want::Granted(false, Some("shared")),
            ),
            (
                "policy replaces default",
                vec![shared.clone()],
                "team-a",
                &[],
                "team-a/app",
                Want::Forbidden("RepositoryAccessPolicy shared allows shared/*"),
            ),
            (
                "policy for another namespace",
                vec![shared.clone()],
                "team-b",
                &[],
                "shared/base",
                Want::Forbidden("no RepositoryAccessPolicy selects"),
            ),
            (
                "other namespace keeps default",
                vec![shared.clone()],
                "team-b",
                &[],
                "team-b/app",
                Want::Granted(false, None),
            ),
            // Adoption only from a policy whose pattern matches.
            (
                "adoption allowed",
                vec![shared.clone(), adopt_legacy.clone()],
                "team-a",
                &[],
                "legacy-billing",
                Want::Granted(true, Some("legacy")),
            ),
            (
                "adoption not from another pattern",
                vec![shared.clone(), adopt_legacy.clone()],
                "team-a",
                &[],
                "shared/base",
                Want::Granted(false, Some("shared")),
            ),
            (
                "both consulted in refusal",
                vec![shared.clone(), adopt_legacy.clone()],
                "team-a",
                &[],
                "prod/db",
                Want::Forbidden(
                    "RepositoryAccessPolicy legacy allows legacy-*; RepositoryAccessPolicy shared allows shared/*",
                ),
            ),
            // Label selectors.
            (
                "selected by label",
                vec![by_label.clone()],
                "infra",
                &[("tier", "platform")],
                "anything/at/all",
                Want::Granted(true, Some("platform")),
            ),
            (
                "label missing",
                vec![by_label.clone()],
                "infra",
                &[("tier", "apps")],
                "anything",
                Want::Forbidden("no RepositoryAccessPolicy selects"),
            ),
            (
                "empty selector selects all",
                vec![everyone_selector.clone()],
                "zeta",
                &[],
                "public/img",
                Want::Granted(false, Some("everyone")),
            ),
            (
                "no names no selector selects none",
                vec![everyone.clone()],
                "zeta",
                &[],
                "public/img",
                Want::Forbidden("default grant is zeta/*"),
            ),
            (
                "invalid selector selects none",
                vec![bad_selector],
                "team-a",
                &[("tier", "x")],
                "team-a/app",
                Want::Granted(false, None),
            ),
            // {namespace} substitution.
            (
                "placeholder",
                vec![per_ns.clone()],
                "team-b",
                &[],
                "apps/team-b-web",
                Want::Granted(false, Some("per-ns")),
            ),
            (
                "placeholder other ns",
                vec![per_ns.clone()],
                "team-b",
                &[],
                "apps/team-c-web",
                Want::Forbidden("allows apps/team-b-*"),
            ),
            // Several policies: union, first by name reported.
            (
                "union",
                vec![by_label.clone(), shared.clone()],
                "team-a",
                &[("tier", "platform")],
                "shared/x",
                Want::Granted(true, Some("platform")),
            ),
        ];
        for (what, policies, ns, ns_labels, repository, want) in cases {
            let got = access(&policies, ns, &labels(ns_labels), repository);
            match (&got, &want) {
                (Access::Granted { adopt, by }, Want::Granted(w_adopt, w_by)) => {
                    assert_eq!(*adopt, *w_adopt, "{what}: adopt");
                    assert_eq!(by.as_deref(), *w_by, "{what}: by");
                }
                (Access::Forbidden(m), Want::Forbidden(part)) => {
                    assert!(m.contains(part), "{what}: {m:?} lacks {part:?}");
                    assert!(m.contains(repository) && m.contains(ns), "{what}: {m}");
                }
                _ => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// `policy` granting in the registries of `targets` (names, `*`).
    fn on(mut p: RepositoryAccessPolicy, targets: &[&str]) -> RepositoryAccessPolicy {
        p.spec.registry_targets = targets.iter().map(|t| t.to_string()).collect();
        p
    }

    /// (what, policies, namespace, target, repository, granted, piece of the refusal).
    type TargetCase<'a> = (
        &'a str,
        &'a [RepositoryAccessPolicy],
        &'a str,
        Option<&'a str>,
        &'a str,
        bool,
        &'a str,
    );

    /// Registry targets: the default is the own registry only; a policy grants in the registries
    /// it names (empty: own), and a namespace some policies select may use only those.
    #[test]
    fn grants_are_per_registry() {
        let own = policy("own", &["team-a"], &[], &["{namespace}/*"], false);
        let prod = on(
            policy("prod", &["team-a"], &[], &["prod/*"], true),
            &["prod"],
        );
        let all = on(policy("all", &["team-b"], &[], &["*"], false), &["*"]);
        let both = [own, prod, all];
        let none: [RepositoryAccessPolicy; 0] = [];
        let no_labels = BTreeMap::new();
        let cases: Vec<TargetCase> = vec![
            (
                "default, own registry",
                &none,
                "team-a",
                None,
                "team-a/x",
                true,
                "",
            ),
            (
                "default, a target",
                &none,
                "team-a",
                Some("prod"),
                "team-a/x",
                false,
                "RegistryTarget prod is not granted to namespace team-a: no RepositoryAccessPolicy",
            ),
            (
                "own policy, own registry",
                &both,
                "team-a",
                None,
                "team-a/x",
                true,
                "",
            ),
            (
                "own policy's names are not prod's",
                &both,
                "team-a",
                None,
                "prod/x",
                false,
                "RepositoryAccessPolicy own allows team-a/*",
            ),
            (
                "prod policy in prod",
                &both,
                "team-a",
                Some("prod"),
                "prod/x",
                true,
                "",
            ),
            (
                "prod's names only",
                &both,
                "team-a",
                Some("prod"),
                "team-a/x",
                false,
                "RepositoryAccessPolicy prod allows prod/*",
            ),
            (
                "a target nobody granted",
                &both,
                "team-a",
                Some("dev"),
                "prod/x",
                false,
                "RegistryTarget dev is not granted to namespace team-a: RepositoryAccessPolicy own grants on the operator's own registry; RepositoryAccessPolicy prod grants on RegistryTargets prod",
            ),
            (
                "* covers every target",
                &both,
                "team-b",
                Some("dev"),
                "x",
                true,
                "",
            ),
            (
                "but not the own registry",
                &both,
                "team-b",
                None,
                "team-b/x",
                false,
                "the operator's own registry is not granted to namespace team-b: RepositoryAccessPolicy all grants on RegistryTargets *",
            ),
        ];
        for (what, policies, ns, target, repo, granted, piece) in cases {
            let got = access_on(policies, ns, &no_labels, target, repo);
            assert_eq!(got.is_granted(), granted, "{what}: {got:?}");
            if let Access::Forbidden(message) = &got {
                assert!(message.contains(piece), "{what}: {message}");
            }
        }
        // Adoption follows the covering policies only.
        let got = access_on(&both, "team-a", &no_labels, Some("prod"), "prod/x");
        assert!(
            matches!(got, Access::Granted { adopt: true, .. }),
            "{got:?}"
        );
    }

    #[test]
    fn adoption_refusals_say_who_decides() {
        let granted_default = Access::Granted {
            adopt: false,
            by: None,
        };
        let msg = adoption_refusal(&granted_default, "team-a", "team-a/app").unwrap_or_default();
        assert!(msg.contains("default grant allows no adoption"), "{msg}");
        let granted_by = Access::Granted {
            adopt: false,
            by: Some("shared".into()),
        };
        let msg = adoption_refusal(&granted_by, "team-a", "shared/x").unwrap_or_default();
        assert!(msg.contains("RepositoryAccessPolicy shared grants it without allowAdoption"));
        let allowed = Access::Granted {
            adopt: true,
            by: Some("legacy".into()),
        };
        assert_eq!(adoption_refusal(&allowed, "team-a", "legacy-x"), None);
        let forbidden = Access::Forbidden("no".into());
        assert_eq!(
            adoption_refusal(&forbidden, "team-a", "x"),
            Some("no".into())
        );
    }

    proptest! {
        /// With no policy, exactly the names under `<namespace>/` are granted, never adoption.
        #[test]
        fn the_default_is_the_namespace_prefix(ns in "[a-z]{1,6}", name in "[a-z/]{0,12}") {
            let got = access::<RepositoryAccessPolicy>(&[], &ns, &BTreeMap::new(), &name);
            let own = name.starts_with(&format!("{ns}/"));
            prop_assert_eq!(got.is_granted(), own);
            if let Access::Granted { adopt, .. } = got {
                prop_assert!(!adopt);
            }
        }

        /// Adding a policy never widens what another namespace may do.
        #[test]
        fn a_policy_only_affects_the_namespaces_it_selects(
            target in "[a-z]{1,4}", other in "[a-z]{1,4}", name in "[a-z/*]{0,10}", pattern in "[a-z/*]{1,6}"
        ) {
            prop_assume!(target != other);
            let p = policy("p", &[target.as_str()], &[], &[pattern.as_str()], true);
            let with = access(std::slice::from_ref(&p), &other, &BTreeMap::new(), &name);
            let without = access::<RepositoryAccessPolicy>(&[], &other, &BTreeMap::new(), &name);
            prop_assert_eq!(with, without);
        }

        /// A granted name always matches one of the patterns that applied.
        #[test]
        fn granted_names_match_a_pattern(name in "[a-z/-]{1,10}", patterns in proptest::collection::vec("[a-z/*{}-]{1,8}", 1..4)) {
            let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
            let p = policy("p", &["ns"], &[], &refs, false);
            if access(std::slice::from_ref(&p), "ns", &BTreeMap::new(), &name).is_granted() {
                prop_assert!(patterns.iter().any(|pat| wildcard_match(&expand(pat, "ns"), &name)));
            }
        }
    }
}
