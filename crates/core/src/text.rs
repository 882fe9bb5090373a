//! Text shortened for the places that bound it: error messages echoing input, admission
//! warnings, Event notes.

/// `s` cut to at most `max` bytes on a character boundary, ending in `...` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::clip;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_kept_and_long_text_ends_in_dots() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcdef", 5), "ab...");
        // "é" is two bytes: the cut moves back to a character boundary.
        assert_eq!(clip("aéé", 4), "a...");
        assert_eq!(clip("", 0), "");
    }

    proptest! {
        #[test]
        fn clipped_text_fits_and_is_a_prefix(s in "\\PC{0,40}", max in 3usize..50) {
            let c = clip(&s, max);
            prop_assert!(c.len() <= max);
            if s.len() <= max {
                prop_assert_eq!(&c, &s);
            } else {
                let kept = c.strip_suffix("...").expect("a cut ends in ...");
                prop_assert!(s.starts_with(kept));
            }
        }
    }
}
