//! Kubernetes object names for ECR names: repository names (`team/a__b`) and prefixes
//! (`hub/`, `ROOT`) become DNS-1123 subdomains; the spec keeps the ECR name itself.

use std::collections::BTreeMap;

/// The longest DNS-1123 subdomain, what `metadata.name` takes.
const MAX_NAME: usize = 253;

/// The object name each ECR name gets: `/` becomes `.`, `_` becomes `-`, upper case (`ROOT`)
/// lower case, a trailing `/` goes. Names that map to the same object name are told apart
/// deterministically: the one equal to the shared name (if any) keeps it, the others get
/// `-` and 8 hex digits of a hash of their ECR name, so the result depends only on the
/// registry, not on the order ECR lists it in.
pub fn object_names<'a>(ecr_names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let mut by_base: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for name in ecr_names {
        by_base.entry(base(name)).or_default().push(name);
    }
    let mut names = BTreeMap::new();
    for (base, mut members) in by_base {
        members.sort_unstable();
        members.dedup();
        let shared = members.len() > 1;
        for member in members {
            let name = if shared && member != base {
                suffixed(&base, member)
            } else {
                base.clone()
            };
            names.insert(member.to_string(), name);
        }
    }
    names
}

/// The name before collisions are handled; a name too long or not a subdomain is shortened
/// with the hash, so it is one.
fn base(ecr: &str) -> String {
    let mapped: String = ecr
        .trim_end_matches('/')
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            '/' => '.',
            _ => '-',
        })
        .collect();
    if is_subdomain(&mapped) {
        mapped
    } else {
        let trimmed: String = mapped
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string();
        suffixed(if trimmed.is_empty() { "x" } else { &trimmed }, ecr)
    }
}

/// `base` shortened to leave room for `-<hash>` of `ecr`.
fn suffixed(base: &str, ecr: &str) -> String {
    let hash = format!("{:08x}", fnv1a(ecr) as u32);
    let room = MAX_NAME - hash.len() - 1;
    let head: String = base.chars().take(room).collect();
    let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{head}-{hash}")
}

/// FNV-1a, 64 bits: stable across releases and platforms, unlike std's hasher.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// RFC 1123 subdomain, as Kubernetes checks `metadata.name`: dot-separated labels of lower
/// case letters, digits and `-`, each starting and ending with a letter or digit.
pub fn is_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
