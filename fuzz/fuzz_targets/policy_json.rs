//! Repository policy text as ECR returns it, compared with the desired document: never panics,
//! and the comparison is reflexive and symmetric (an asymmetric one would flap: write, read back,
//! "differs", write again).
#![no_main]

use ecr_operator_core::repository_policy as policy;
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
    // What the operator writes (compact text) compares equal to what it was rendered from;
    // serde_json's float_roundtrip feature makes this hold for fractional numbers too.
    assert!(policy::text_equivalent(&va.to_string(), &va));
});
