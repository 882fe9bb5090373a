//! The cluster id: the first part of every owner tag the operator writes to ECR, so that two
//! clusters sharing a registry never take each other's repositories.
//!
//! Either set explicitly (`--cluster-id`, the chart's `clusterId`) or derived from the uid of the
//! cluster's `kube-system` namespace, which is unique per cluster and lives as long as it. A
//! derived id reads `kube-system:<uid>`, so the owner tag says which kind of id it is; explicit
//! ids may therefore not contain `:`. The old default, `default`, is refused: two clusters left
//! on it owned each other's repositories.

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

/// The prefix of a derived cluster id.
pub const DERIVED_PREFIX: &str = "kube-system:";

/// Why a cluster id cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterIdError {
    #[error(
        "cluster id {0:?} is not allowed: use 1 to 63 letters, digits, '.', '_' or '-', not \
         \"default\" (two clusters left on the same id own each other's repositories); or leave \
         it unset to derive it from the kube-system namespace's uid"
    )]
    Invalid(String),
    #[error(
        "cannot read the kube-system namespace to derive the cluster id ({0}); set --cluster-id"
    )]
    Derive(#[source] kube::Error),
    #[error("the kube-system namespace has no uid; set --cluster-id")]
    NoUid,
}

/// Checks an explicit cluster id.
pub fn validate(id: &str) -> Result<(), ClusterIdError> {
    let ok = (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id != "default";
    if ok {
        Ok(())
    } else {
        Err(ClusterIdError::Invalid(id.to_string()))
    }
}

/// The id derived from the `kube-system` namespace's uid.
pub fn derived(kube_system_uid: &str) -> String {
    format!("{DERIVED_PREFIX}{kube_system_uid}")
}

/// The explicit id when given (checked), else the one derived from this cluster.
pub async fn resolve(
    explicit: Option<&str>,
    client: &kube::Client,
) -> Result<String, ClusterIdError> {
    if let Some(id) = explicit.filter(|id| !id.is_empty()) {
        validate(id)?;
        return Ok(id.to_string());
    }
    let ns = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await
        .map_err(ClusterIdError::Derive)?;
    ns.metadata
        .uid
        .filter(|u| !u.is_empty())
        .map(|u| derived(&u))
        .ok_or(ClusterIdError::NoUid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_ids() {
        for ok in ["prod-eu-1", "a", "cluster_2.example", &"x".repeat(63)] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        // `default` was shared by every cluster left on it; `/` separates the owner tag's
        // parts; `:` marks derived ids; tag values allow no spaces in our format.
        for bad in [
            "",
            "default",
            "a/b",
            "kube-system:x",
            "has space",
            &"x".repeat(64),
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_ids_say_where_they_come_from() {
        let id = derived("6f1c2d9e-0000-4000-8000-000000000001");
        assert_eq!(id, "kube-system:6f1c2d9e-0000-4000-8000-000000000001");
        assert!(
            validate(&id).is_err(),
            "a derived id cannot be passed as an explicit one"
        );
    }
}
