//! Which objects this operator acts on: `--watch-namespaces` and `--watch-selector`. Shared by
//! the controllers and the webhook's cache.
//!
//! One operator per team or per account on a shared cluster (as ACK's `--watch-namespace`
//! allows) needs both: namespaces scope the namespaced kinds (Repository, LifecyclePolicy) and
//! the pods whose images get scan reports; the label selector scopes every kind, cluster-scoped
//! ones included, and the pods. Objects outside the scope are never read into a store, so the
//! operator neither reconciles nor reports on them, and its webhook enforces only the
//! ScanPolicies and reads only the ImageScanReports in its scope.
//!
//! The selector is a list of `key=value` terms: the ImageScanReports the operator writes carry
//! those labels, so an operator always sees its own reports. Set-based terms could not be
//! written onto a report and are refused at start.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::runtime::watcher;
use kube::{Client, Resource};

/// What is in scope. The default (no namespaces, no selector) is everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchScope {
    /// Namespaces whose namespaced objects and pods are in scope; all when empty.
    namespaces: Vec<String>,
    /// Labels every object in scope carries (the selector's `key=value` terms).
    labels: BTreeMap<String, String>,
}

/// A `--watch-selector` or `--watch-namespaces` value that cannot be used.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    #[error(
        "watch selector term {0:?} is not key=value: only equality terms can be written onto the reports the operator creates"
    )]
    SelectorTerm(String),
    #[error("watch namespace {0:?} is not a namespace name (RFC 1123 label)")]
    Namespace(String),
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl WatchScope {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// From the flags: namespaces (empty entries ignored) and a selector of `key=value` terms
    /// separated by commas (`key==value` too).
    pub fn new(namespaces: &[String], selector: Option<&str>) -> Result<Self, ScopeError> {
        let mut scope = WatchScope::default();
        for ns in namespaces
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
        {
            if !is_dns_label(ns) {
                return Err(ScopeError::Namespace(ns.to_string()));
            }
            scope.namespaces.push(ns.to_string());
        }
        scope.namespaces.sort();
        scope.namespaces.dedup();
        for term in selector
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let (key, value) = term
                .split_once("==")
                .or_else(|| term.split_once('='))
                .filter(|(k, v)| !k.is_empty() && !k.ends_with('!') && !v.contains('='))
                .ok_or_else(|| ScopeError::SelectorTerm(term.to_string()))?;
            scope
                .labels
                .insert(key.trim().to_string(), value.trim().to_string());
        }
        Ok(scope)
    }

    /// The label selector as the API server takes it; `None` for no selector.
    pub fn label_selector(&self) -> Option<String> {
        (!self.labels.is_empty()).then(|| {
            self.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// Labels to put on objects the operator creates, so they are in its own scope.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// Whether a namespaced object in `namespace` is in scope (cluster-scoped: `None`, always).
    pub fn includes_namespace(&self, namespace: Option<&str>) -> bool {
        match namespace {
            Some(ns) => self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns),
            None => true,
        }
    }

    /// The watch settings: the selector applied by the API server.
    pub fn watcher_config(&self) -> watcher::Config {
        match self.label_selector() {
            Some(selector) => watcher::Config::default().labels(&selector),
            None => watcher::Config::default(),
        }
    }

    /// List settings with the selector applied by the API server.
    pub fn list_params(&self) -> ListParams {
        match self.label_selector() {
            Some(selector) => ListParams::default().labels(&selector),
            None => ListParams::default(),
        }
    }

    /// The API to watch or list `K` in scope with: one namespace is watched in that namespace
    /// (a namespaced Role is then enough); several are watched cluster-wide and filtered with
    /// [`WatchScope::includes_namespace`].
    pub fn api<K>(&self, client: &Client) -> kube::Api<DynamicObject>
    where
        K: Resource<DynamicType = ()>,
        K::Scope: 'static,
    {
        let ar = ApiResource::erase::<K>(&());
        match self.namespaces.as_slice() {
            [only] if is_namespaced::<K>() => kube::Api::namespaced_with(client.clone(), only, &ar),
            _ => kube::Api::all_with(client.clone(), &ar),
        }
    }

    /// [`WatchScope::api`] for a typed namespaced kind (pods, Repository metadata).
    pub fn namespaced_api<K>(&self, client: &Client) -> kube::Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match self.namespaces.as_slice() {
            [only] => kube::Api::namespaced(client.clone(), only),
            _ => kube::Api::all(client.clone()),
        }
    }
}

/// Whether `K` is a namespaced kind.
pub fn is_namespaced<K: Resource>() -> bool
where
    K::Scope: 'static,
{
    std::any::TypeId::of::<K::Scope>()
        == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Repository, ScanPolicy};

    #[test]
    fn selector_terms_parse_into_labels() {
        let table: &[(&str, Result<Option<&str>, ScopeError>)] = &[
            ("", Ok(None)),
            ("team=a", Ok(Some("team=a"))),
            ("team==a", Ok(Some("team=a"))),
            (" b=2 , a=1 ", Ok(Some("a=1,b=2"))),
            (
                "app.kubernetes.io/part-of=x",
                Ok(Some("app.kubernetes.io/part-of=x")),
            ),
            ("team=", Ok(Some("team="))),
            ("team!=a", Err(ScopeError::SelectorTerm("team!=a".into()))),
            (
                "team in (a,b)",
                Err(ScopeError::SelectorTerm("team in (a".into())),
            ),
            ("team", Err(ScopeError::SelectorTerm("team".into()))),
            ("!team", Err(ScopeError::SelectorTerm("!team".into()))),
            ("=a", Err(ScopeError::SelectorTerm("=a".into()))),
        ];
        for (input, want) in table {
            let got = WatchScope::new(&[], Some(input)).map(|s| s.label_selector());
            let want = want.clone().map(|w| w.map(str::to_string));
            assert_eq!(got, want, "selector {input:?}");
        }
    }

    #[test]
    fn namespaces_scope_namespaced_objects_only() {
        let all = WatchScope::all();
        assert!(all.includes_namespace(Some("x")));
        let two = WatchScope::new(&["b".into(), "a".into(), "".into()], None).unwrap();
        assert!(two.includes_namespace(Some("a")));
        assert!(two.includes_namespace(Some("b")));
        assert!(!two.includes_namespace(Some("c")));
        assert!(
            two.includes_namespace(None),
            "cluster-scoped objects are in scope"
        );
        assert_eq!(
            WatchScope::new(&["Team_A".into()], None),
            Err(ScopeError::Namespace("Team_A".into()))
        );
    }

    #[test]
    fn namespaced_kinds_are_told_apart() {
        assert!(is_namespaced::<Repository>());
        assert!(!is_namespaced::<ScanPolicy>());
    }
}
