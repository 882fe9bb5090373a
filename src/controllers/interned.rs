//! Strings that many entries of an in-memory index share (a registry id, a RegistryTarget's
//! name, an ARN's prefix): held once, each entry holding a pointer to it. At 100,000
//! repositories one copy per entry is megabytes.

use std::collections::HashSet;
use std::sync::Arc;

/// The shared strings of one index. Strings no entry holds any more are dropped once the set
/// has doubled since the last purge, so that it holds at most about twice what is in use.
#[derive(Debug, Default)]
pub struct Interned {
    strings: HashSet<Arc<str>>,
    /// The size after the last purge.
    kept: usize,
}

/// The set is not purged below this size: a purge would cost more than it frees.
const PURGE_FLOOR: usize = 64;

impl Interned {
    /// The shared copy of `s`.
    pub fn share(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        if self.strings.len() >= (2 * self.kept).max(PURGE_FLOOR) {
            // Held only by the set: no entry uses it.
            self.strings.retain(|s| Arc::strong_count(s) > 1);
            self.kept = self.strings.len();
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(shared.clone());
        shared
    }

    /// How many strings are held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_are_one_copy() {
        let mut interned = Interned::default();
        let a = interned.share("123456789012");
        let b = interned.share(&String::from("123456789012"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "123456789012");
        assert_eq!(interned.len(), 1);
    }

    /// Strings that entries stopped using do not accumulate: the set stays within twice what
    /// is in use (and the purge floor).
    #[test]
    fn unused_strings_are_purged() {
        let mut interned = Interned::default();
        let in_use: Vec<_> = (0..10)
            .map(|i| interned.share(&format!("kept-{i}")))
            .collect();
        for i in 0..10_000 {
            drop(interned.share(&format!("gone-{i}")));
            assert!(
                interned.len() <= PURGE_FLOOR.max(2 * in_use.len()) + 1,
                "at {i}"
            );
        }
        let again = interned.share("kept-3");
        assert!(
            Arc::ptr_eq(&again, &in_use[3]),
            "strings in use are never dropped"
        );
    }
}
