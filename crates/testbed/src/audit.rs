//! The API server's audit log ([`crate::envtest::Options::audit_policy`]): which requests a
//! user made and what the server answered, as RBAC sees them.
//!
//! An event is one request at one stage (`ResponseStarted` for watches, `ResponseComplete`);
//! [`requests`] keeps one per request (its `auditID`), the last stage logged.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// One audit event (`audit.k8s.io/v1` `Event`), the fields RBAC decisions depend on.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: String,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// The Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection` for resources; the HTTP method in lower case for other paths.
    pub verb: String,
    pub user: UserInfo,
    /// `None` for non-resource paths (`/api`, `/version`, ...).
    pub object_ref: Option<ObjectRef>,
    pub response_status: Option<ResponseStatus>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub subresource: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    /// `""` for the core group.
    #[serde(default)]
    pub api_group: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ResponseStatus {
    #[serde(default)]
    pub code: u16,
}

impl Event {
    /// The HTTP status the server answered (200 while a watch is open).
    pub fn code(&self) -> u16 {
        self.response_status.as_ref().map_or(0, |s| s.code)
    }

    /// `resource` or `resource/subresource`, as RBAC rules name it.
    pub fn resource(&self) -> Option<String> {
        let r = self.object_ref.as_ref()?;
        Some(if r.subresource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        })
    }
}

/// Every event of the log at `path`, in order.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| Error::Io {
                path: path.display().to_string(),
                message: format!("audit event {}: {e}", i + 1),
            })
        })
        .collect()
}

/// One event per request of `username` (the last stage logged of each `auditID`), in the
/// order the requests were first logged.
pub fn requests(events: &[Event], username: &str) -> Vec<Event> {
    let mut order = Vec::new();
    let mut last: BTreeMap<&str, &Event> = BTreeMap::new();
    for e in events.iter().filter(|e| e.user.username == username) {
        if last.insert(&e.audit_id, e).is_none() {
            order.push(e.audit_id.as_str());
        }
    }
    order
        .into_iter()
        .filter_map(|id| last.get(id).map(|e| (*e).clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_audit_id_with_its_last_stage() {
        let line = |id: &str, stage: &str, user: &str, code: u16| {
            serde_json::json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                "auditID": id, "stage": stage, "requestURI": "/api/v1/pods?watch=true",
                "verb": "watch", "user": {"username": user, "groups": ["g"]},
                "objectRef": {"resource": "pods", "apiVersion": "v1"},
                "responseStatus": {"metadata": {}, "code": code},
            })
            .to_string()
        };
        let dir = std::env::temp_dir().join(format!("audit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("audit.log");
        let log = [
            line("a", "ResponseStarted", "sa", 200),
            line("b", "ResponseComplete", "other", 403),
            line("a", "ResponseComplete", "sa", 500),
        ]
        .join("\n");
        std::fs::write(&path, log).expect("write the log");
        let events = read(&path).expect("a valid log");
        assert_eq!(events.len(), 3);
        let mine = requests(&events, "sa");
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].stage, "ResponseComplete");
        assert_eq!(mine[0].code(), 500);
        assert_eq!(mine[0].resource().as_deref(), Some("pods"));
        assert_eq!(
            mine[0].object_ref.as_ref().map(|r| r.api_group.as_str()),
            Some("")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
