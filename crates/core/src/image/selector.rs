//! Kubernetes label selectors (`matchLabels` and `matchExpressions`), evaluated the way the API
//! server does: used for ScanPolicy namespace selectors and RepositoryAccessPolicy namespace
//! selectors alike.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Why a label selector cannot be evaluated (Kubernetes rejects the same selectors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The operator is not one Kubernetes knows.
    #[error(
        "matchExpressions[{index}]: operator {operator:?} is not In, NotIn, Exists or DoesNotExist"
    )]
    UnknownOperator {
        /// Position in `matchExpressions`.
        index: usize,
        /// The operator as written.
        operator: String,
    },
    /// `In` and `NotIn` need values.
    #[error("matchExpressions[{index}]: operator {operator} needs at least one value")]
    MissingValues {
        /// Position in `matchExpressions`.
        index: usize,
        /// The operator.
        operator: String,
    },
    /// `Exists` and `DoesNotExist` take none.
    #[error("matchExpressions[{index}]: operator {operator} takes no values")]
    UnexpectedValues {
        /// Position in `matchExpressions`.
        index: usize,
        /// The operator.
        operator: String,
    },
}

/// Whether `selector` selects an object with `labels`, with Kubernetes' semantics: `matchLabels`
/// and every `matchExpressions` entry must hold; an empty selector selects everything. The
/// controller can use this to validate a ScanPolicy's selector.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, SelectorError> {
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    // Validate every expression before evaluating any, as Kubernetes converts the whole selector.
    for (index, e) in expressions.iter().enumerate() {
        let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
        let operator = e.operator.clone();
        match e.operator.as_str() {
            "In" | "NotIn" if !has_values => {
                return Err(SelectorError::MissingValues { index, operator });
            }
            "Exists" | "DoesNotExist" if has_values => {
                return Err(SelectorError::UnexpectedValues { index, operator });
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => return Err(SelectorError::UnknownOperator { index, operator }),
        }
    }
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = expressions.iter().all(|e| {
        let value = labels.get(&e.key);
        let listed = || value.is_some_and(|v| e.values.iter().flatten().any(|x| x == v));
        match e.operator.as_str() {
            "In" => listed(),
            "NotIn" => !listed(),
            "Exists" => value.is_some(),
            _ => value.is_none(),
        }
    });
    Ok(labels_ok && expressions_ok)
}

/// Builds selectors for tests: `labels` as `matchLabels`, `exprs` as `(key, operator, values)`.
#[cfg(test)]
pub(crate) fn selector(labels: &[(&str, &str)], exprs: &[(&str, &str, &[&str])]) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty()).then(|| {
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        }),
        match_expressions: (!exprs.is_empty()).then(|| {
            exprs
                .iter()
                .map(|(key, operator, values)| {
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                        key: (*key).into(),
                        operator: (*operator).into(),
                        values: (!values.is_empty())
                            .then(|| values.iter().map(|v| (*v).to_owned()).collect()),
                    }
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_follow_kubernetes() {
        let labels: BTreeMap<String, String> = [("env", "prod"), ("team", "a")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let cases: Vec<(LabelSelector, Result<bool, &str>)> = vec![
            (LabelSelector::default(), Ok(true)),
            (selector(&[("env", "prod")], &[]), Ok(true)),
            (selector(&[("env", "prod"), ("team", "b")], &[]), Ok(false)),
            (selector(&[], &[("env", "In", &["dev", "prod"])]), Ok(true)),
            (selector(&[], &[("env", "In", &["dev"])]), Ok(false)),
            (selector(&[], &[("tier", "In", &["web"])]), Ok(false)),
            (selector(&[], &[("env", "NotIn", &["dev"])]), Ok(true)),
            (selector(&[], &[("tier", "NotIn", &["web"])]), Ok(true)),
            (selector(&[], &[("env", "NotIn", &["prod"])]), Ok(false)),
            (selector(&[], &[("team", "Exists", &[])]), Ok(true)),
            (selector(&[], &[("tier", "Exists", &[])]), Ok(false)),
            (selector(&[], &[("tier", "DoesNotExist", &[])]), Ok(true)),
            (selector(&[], &[("env", "DoesNotExist", &[])]), Ok(false)),
            (
                selector(
                    &[("env", "prod")],
                    &[("team", "Exists", &[]), ("env", "In", &["dev"])],
                ),
                Ok(false),
            ),
            (
                selector(&[], &[("env", "in", &["prod"])]),
                Err("is not In, NotIn"),
            ),
            (
                selector(&[], &[("env", "In", &[])]),
                Err("needs at least one value"),
            ),
            (
                selector(&[], &[("env", "Exists", &["x"])]),
                Err("takes no values"),
            ),
            (
                selector(&[("env", "dev")], &[("env", "Exists", &["x"])]),
                Err("matchExpressions[0]"),
            ),
        ];
        for (sel, want) in cases {
            match (selector_matches(&sel, &labels), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{sel:?}"),
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{e}"),
                (got, want) => panic!("{sel:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
