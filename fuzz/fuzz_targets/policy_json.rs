//! Repository policy text as ECR returns it, compared with the desired document: never panics,
//! and the comparison is reflexive and symmetric (an asymmetric one would flap: write, read back,
//! "differs", write again).
#![no_main]

use ecr_operator::controllers::policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Two documents: split at the first NUL, or the same one twice.
    let (a, b) = text.split_once('\0').unwrap_or((text, text));
    let (Ok(va), Ok(vb)) = (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) else {
        let _ = serde_json::from_str::<serde_json::Value>(b)
            .map(|vb| policy::text_equivalent(a, &vb));
        return;
    };
    assert!(policy::equivalent(&va, &va), "not reflexive: {a}");
    assert_eq!(
        policy::equivalent(&va, &vb),
        policy::equivalent(&vb, &va),
        "not symmetric: {a} vs {b}"
    );
    assert_eq!(policy::text_equivalent(a, &vb), policy::equivalent(&va, &vb));
    // What the operator writes (compact text) compares equal to what it was rendered from.
    // The operator renders strings only (policy::render); a fractional number does not survive
    // print-and-parse exactly with serde_json's default float parsing, so such documents are
    // left out of this one property (a desired document never holds one, and a document read
    // from ECR with one differs from the desired one whichever way it is parsed).
    if !has_fraction(&va) {
        assert!(policy::text_equivalent(&va.to_string(), &va));
    }
});

fn has_fraction(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_fraction),
        serde_json::Value::Object(map) => map.values().any(has_fraction),
        _ => false,
    }
}
