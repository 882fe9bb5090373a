//! Server-side apply's removal of fields: when a field manager applies again without a field it
//! applied before, and no other manager applies that field, the field is removed, as a real API
//! server does (status fields included, on the `status` subresource).
//!
//! What each manager last applied is kept here per object (by uid, so a re-created object starts
//! afresh), as the set of leaf paths of its applied configuration; objects carry no
//! `managedFields`. Fields written by updates and patches other than apply are not tracked:
//! only appliers own fields here (the real server also counts updaters as owners).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

/// One field: the keys from the object's root to a leaf (a scalar, a list, or an empty map).
type FieldPath = Vec<String>;

/// Metadata fields that identify the object rather than configure it: never owned.
const IDENTITY: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Owner {
    object: String,
    uid: String,
    manager: String,
    status: bool,
}

/// What every field manager last applied, per object.
#[derive(Debug, Default)]
pub(crate) struct AppliedFields {
    sets: Mutex<HashMap<Owner, Vec<FieldPath>>>,
}

/// The fields `applied` sets on the main resource (`status == false`: everything but `status`
/// when the kind has a status subresource) or on `status`.
pub(crate) fn fields_of(applied: &Value, status: bool, status_subresource: bool) -> Vec<FieldPath> {
    let mut out = Vec::new();
    let Some(map) = applied.as_object() else {
        return out;
    };
    for (key, value) in map {
        let keep = match key.as_str() {
            "apiVersion" | "kind" => false,
            "status" => status || !status_subresource,
            _ => !status,
        };
        if !keep {
            continue;
        }
        if key == "metadata" {
            for (mkey, mvalue) in value.as_object().into_iter().flatten() {
                if !IDENTITY.contains(&mkey.as_str()) {
                    leaves(mvalue, vec![key.clone(), mkey.clone()], &mut out);
                }
            }
        } else {
            leaves(value, vec![key.clone()], &mut out);
        }
    }
    out
}

fn leaves(value: &Value, path: FieldPath, out: &mut Vec<FieldPath>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let mut p = path.clone();
                p.push(key.clone());
                leaves(child, p, out);
            }
        }
        _ => out.push(path),
    }
}

/// Whether `owned` still holds `field`: the same field, a field inside it, or one containing it.
fn holds(owned: &[FieldPath], field: &[String]) -> bool {
    owned
        .iter()
        .any(|o| o.starts_with(field) || field.starts_with(o))
}

/// Removes `field` from `object`, and the maps the removal leaves empty below the top level.
fn remove(object: &mut Value, field: &[String]) {
    let Some((last, parents)) = field.split_last() else {
        return;
    };
    let mut node = &mut *object;
    for key in parents {
        match node.get_mut(key.as_str()) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last.as_str());
    }
    if parents.len() > 1
        && object
            .pointer(&format!("/{}", parents.join("/")))
            .is_some_and(|p| p.as_object().is_some_and(|m| m.is_empty()))
    {
        remove(object, parents);
    }
}

impl AppliedFields {
    /// Removes from `new` (the object after merging the applied configuration) the fields that
    /// `manager` applied last time and not now, unless another manager applies them.
    pub fn prune(
        &self,
        object: &str,
        uid: &str,
        manager: &str,
        status: bool,
        now: &[FieldPath],
        new: &mut Value,
    ) {
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        let me = Owner {
            object: object.to_string(),
            uid: uid.to_string(),
            manager: manager.to_string(),
            status,
        };
        let Some(before) = sets.get(&me) else { return };
        let others: Vec<&Vec<FieldPath>> = sets
            .iter()
            .filter(|(o, _)| o.object == me.object && o.uid == me.uid && o.manager != me.manager)
            .map(|(_, set)| set)
            .collect();
        for field in before {
            if holds(now, field) || others.iter().any(|set| holds(set, field)) {
                continue;
            }
            remove(new, field);
        }
    }

    /// Records what `manager` applied to the object with `uid`.
    pub fn record(
        &self,
        object: &str,
        uid: &str,
        manager: &str,
        status: bool,
        now: Vec<FieldPath>,
    ) {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.retain(|o, _| o.object != object || o.uid == uid);
        sets.insert(
            Owner {
                object: object.to_string(),
                uid: uid.to_string(),
                manager: manager.to_string(),
                status,
            },
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(fields: &AppliedFields, manager: &str, stored: &Value, applied: &Value) -> Value {
        let now = fields_of(applied, false, true);
        let mut new = stored.clone();
        crate::patch::merge(&mut new, applied);
        fields.prune("ns/x", "u1", manager, false, &now, &mut new);
        fields.record("ns/x", "u1", manager, false, now);
        new
    }

    #[test]
    fn fields_a_manager_stops_applying_are_removed_unless_another_applies_them() {
        let fields = AppliedFields::default();
        let obj = json!({"metadata": {"name": "x"}, "spec": {}});
        let obj = apply(
            &fields,
            "a",
            &obj,
            &json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "x", "labels": {"l": "1"}},
                    "spec": {"tags": {"t1": "1", "t2": "2"}, "n": 1}}),
        );
        let obj = apply(
            &fields,
            "b",
            &obj,
            &json!({"apiVersion": "v1", "kind": "K", "spec": {"tags": {"t2": "2"}, "other": true}}),
        );
        // `a` applies again without t1, t2, the label and n.
        let obj = apply(
            &fields,
            "a",
            &obj,
            &json!({"apiVersion": "v1", "kind": "K", "spec": {"tags": {"t3": "3"}}}),
        );
        assert_eq!(
            obj["spec"],
            json!({"tags": {"t2": "2", "t3": "3"}, "other": true}),
            "t1 and n removed, t2 kept: b applies it"
        );
        assert_eq!(
            obj["metadata"],
            json!({"name": "x"}),
            "the empty labels map goes too"
        );
    }

    #[test]
    fn status_and_main_resource_are_owned_apart() {
        let main = fields_of(
            &json!({"metadata": {"name": "x", "finalizers": ["f"]}, "spec": {"a": 1}, "status": {"s": 1}}),
            false,
            true,
        );
        assert_eq!(
            main,
            vec![
                vec!["metadata".to_string(), "finalizers".to_string()],
                vec!["spec".to_string(), "a".to_string()],
            ]
        );
        let status = fields_of(
            &json!({"spec": {"a": 1}, "status": {"s": {"t": 1}}}),
            true,
            true,
        );
        assert_eq!(
            status,
            vec![vec!["status".to_string(), "s".to_string(), "t".to_string()]]
        );
    }

    #[test]
    fn a_recreated_object_starts_afresh() {
        let fields = AppliedFields::default();
        fields.record(
            "ns/x",
            "u1",
            "a",
            false,
            vec![vec!["spec".into(), "a".into()]],
        );
        fields.record("ns/x", "u2", "a", false, vec![]);
        let mut obj = json!({"spec": {"a": 1}});
        fields.prune("ns/x", "u2", "a", false, &[], &mut obj);
        assert_eq!(
            obj,
            json!({"spec": {"a": 1}}),
            "u1's record is gone with u1"
        );
    }
}
