//! Trace ids: one per reconcile and per admission request, so that every log line of one unit of
//! work can be found by one field. W3C Trace Context shaped (32 lowercase hex digits, not all
//! zero), so an id taken from an incoming `traceparent` header joins the caller's trace.

use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};

/// A new random 128-bit trace id, as 32 lowercase hex digits.
pub fn new_trace_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .is_ok();
    if !filled || bytes == [0; 16] {
        // The system RNG failing must not stop a reconcile: SipHash with a per-process
        // random key is unpredictable enough for correlating logs.
        for (i, half) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default()
                    .as_nanos(),
            );
            half.copy_from_slice(&h.finish().to_be_bytes());
        }
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The trace id of a W3C `traceparent` header (`00-<trace-id>-<parent-id>-<flags>`), if the
/// header is well formed and the id is valid (not all zeros).
pub fn trace_id_from_traceparent(header: &str) -> Option<String> {
    let mut parts = header.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    // Version ff is invalid; version 00 has exactly four fields, later versions may add more.
    if !is_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !is_hex(trace_id, 32) || !is_hex(parent_id, 16) || !is_hex(flags, 2) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace_id.to_owned())
}

/// Whether `s` looks like a trace id this module makes or accepts.
pub fn is_trace_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_32_hex_and_distinct() {
        let a = new_trace_id();
        let b = new_trace_id();
        assert!(is_trace_id(&a), "{a}");
        assert!(is_trace_id(&b), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn traceparent_parsing() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let ok = format!("00-{id}-00f067aa0ba902b7-01");
        assert_eq!(trace_id_from_traceparent(&ok).as_deref(), Some(id));
        assert_eq!(
            trace_id_from_traceparent(&format!("01-{id}-00f067aa0ba902b7-01-future")).as_deref(),
            Some(id)
        );
        for bad in [
            String::new(),
            "garbage".to_owned(),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{id}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{id}-00f067aa0ba902b7-01-extra"),
            format!("00-{id}-00f067aa0ba902b7"),
        ] {
            assert_eq!(trace_id_from_traceparent(&bad), None, "{bad}");
        }
    }
}
