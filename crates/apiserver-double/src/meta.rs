//! Object metadata helpers: names, uids, timestamps, resource versions.

use std::sync::{
    LazyLock,
    atomic::{AtomicU64, Ordering},
};

use regex::Regex;
use serde_json::{Map, Value};

use crate::status::Cause;

static RNG: LazyLock<AtomicU64> = LazyLock::new(|| {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    AtomicU64::new(seed)
});

/// splitmix64 over a shared counter: good enough for uids and generated names.
fn next_random() -> u64 {
    let mut z = RNG
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random version-4 UUID string.
pub(crate) fn new_uid() -> String {
    let hi = next_random();
    let lo = next_random();
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// The 5-character suffix of `generateName`, from the API server's alphabet.
pub(crate) fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = next_random();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Now, as the API server writes timestamps.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Makes sure `object` is a JSON object with an object `metadata`.
pub(crate) fn ensure_metadata(object: &mut Value) {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    if let Some(map) = object.as_object_mut() {
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
    }
}

/// `metadata` of an object, if it has one.
pub(crate) fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    object.get_mut("metadata").and_then(Value::as_object_mut)
}

/// Sets `metadata.<field>` (creating `metadata` when needed).
pub(crate) fn set_meta(object: &mut Value, field: &str, value: Value) {
    ensure_metadata(object);
    if let Some(meta) = metadata_mut(object) {
        meta.insert(field.to_string(), value);
    }
}

/// Removes `metadata.<field>`.
pub(crate) fn remove_meta(object: &mut Value, field: &str) {
    if let Some(meta) = metadata_mut(object) {
        meta.remove(field);
    }
}

/// A string field of `metadata`.
pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// `metadata.resourceVersion` as a number.
pub(crate) fn resource_version(object: &Value) -> Option<u64> {
    meta_str(object, "resourceVersion").and_then(|s| s.parse().ok())
}

/// `metadata.finalizers` as strings.
pub(crate) fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

static SUBDOMAIN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").ok()
});
static LABEL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").ok());

/// Validates `metadata.name` (RFC 1123 subdomain, or label for namespaces).
pub(crate) fn validate_name(name: &str, label: bool) -> Option<Cause> {
    let (ok, detail) = if label {
        (
            name.len() <= 63 && LABEL.as_ref().is_some_and(|r| r.is_match(name)),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )
    } else {
        (
            name.len() <= 253 && SUBDOMAIN.as_ref().is_some_and(|r| r.is_match(name)),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    };
    (!ok).then(|| Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {name:?}: {detail}"),
        field: "metadata.name".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_and_suffixes() {
        let a = new_uid();
        assert_eq!(a.len(), 36);
        assert_ne!(a, new_uid());
        assert_eq!(name_suffix().len(), 5);
    }

    #[test]
    fn names() {
        assert!(validate_name("ok-name.x", false).is_none());
        assert!(validate_name("Bad", false).is_some());
        assert!(validate_name("a.b", true).is_some());
    }
}
