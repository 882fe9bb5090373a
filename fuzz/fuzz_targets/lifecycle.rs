//! Lifecycle policy text as ECR returns it (or a user writes it): parse must not panic; parsed
//! rules render to text that parses back to the same rules; validation and the evaluator never
//! panic, and the evaluator expires each image at most once.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use ecr_operator_core::lifecycle::{self, Image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: how many images; the rest: the policy text. Images are derived from the text
    // bytes so tags and pattern matching meet the rules' prefixes.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(rules) = lifecycle::parse(text) else {
        return;
    };
    let _ = lifecycle::validate(&rules);
    let rendered = lifecycle::render(&rules);
    let again = lifecycle::parse(&rendered)
        .unwrap_or_else(|e| panic!("rendered policy {rendered:?} does not parse: {e}"));
    let mut sorted = rules.clone();
    sorted.sort_by_key(|r| r.rule_priority);
    assert_eq!(again, sorted, "render/parse round trip of {text:?}");
    assert!(lifecycle::policies_equivalent(&rendered, &lifecycle::render(&again)));

    let now: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let images: Vec<Image> = (0..usize::from(n % 32))
        .map(|i| Image {
            digest: format!("sha256:{i:064x}"),
            tags: words.iter().skip(i).step_by(3).take(i % 4).map(|w| (*w).to_string()).collect(),
            pushed_at: now - Duration::days((i as i64 * 7) % 400),
            ..Image::default()
        })
        .collect();
    let expired = lifecycle::evaluate(&rules, &images, now);
    let mut digests: Vec<&str> = expired.iter().map(|e| e.digest.as_str()).collect();
    digests.sort_unstable();
    let before = digests.len();
    digests.dedup();
    assert_eq!(before, digests.len(), "an image expired twice");
    assert!(expired.len() <= images.len());
});
