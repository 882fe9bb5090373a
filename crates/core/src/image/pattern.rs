//! Wildcard patterns: `*` stands for any run of characters (possibly empty, `/` included) and
//! everything else is literal; a pattern matches a whole string. ECR's lifecycle `tagPatternList`,
//! the ScanPolicy image and namespace patterns, and the RepositoryAccessPolicy repository
//! patterns all mean this.

/// Matches `text` against `pattern`, where `*` stands for any run of characters (possibly empty)
/// and everything else is literal; the whole tag must match (`prod*` matches `prod`, `prod1`).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        // No wildcard at all: an exact match.
        return rest.is_empty();
    };
    // Taking the leftmost occurrence of each middle part is optimal for `*`-only globs: it leaves
    // the longest remainder for the parts after it.
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcard_examples_from_the_docs() {
        // "Automate the cleanup of images": `prod*` and `*prod*`.
        for tag in ["prod", "prod1", "production-team1"] {
            assert!(wildcard_match("prod*", tag), "{tag}");
        }
        for tag in ["repo-production", "prod-team"] {
            assert!(wildcard_match("*prod*", tag), "{tag}");
        }
        assert!(!wildcard_match("prod*", "my-prod"));
        assert!(
            !wildcard_match("prod", "prod1"),
            "without `*` the match is exact"
        );
        assert!(wildcard_match("prod", "prod"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*a", "aba"));
        assert!(
            !wildcard_match("a*a", "a"),
            "prefix and suffix may not overlap"
        );
        assert!(wildcard_match("*test*1*2*3", "xtesty1z2w3"));
        assert!(
            wildcard_match("v*-é*", "v1-é-rc"),
            "non-ASCII tags do not panic"
        );
    }

    #[test]
    fn wildcards_match_whole_strings() {
        for (pattern, text, want) in [
            ("*", "anything/at:all", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "aXbYc", true),
            ("a*a", "a", false),
            ("abc", "abcd", false),
            ("*b", "abc", false),
            ("shop", "shop", true),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(wildcard_match(pattern, text), want, "{pattern} vs {text}");
        }
    }

    proptest! {
        #[test]
        fn wildcard_agrees_with_a_reference_matcher(pattern in "[ab*]{0,7}", text in "[ab]{0,7}") {
            prop_assert_eq!(wildcard_match(&pattern, &text), reference_match(pattern.as_bytes(), text.as_bytes()));
        }
    }

    /// Textbook recursive glob matcher, obviously correct and slow.
    fn reference_match(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|skip| reference_match(rest, &text[skip..])),
            Some((c, rest)) => text.first() == Some(c) && reference_match(rest, &text[1..]),
        }
    }
}
