//! Values that many entries of an in-memory index share (a registry id, a RegistryTarget's
//! name, the settings and ARN prefix of a registry's repositories): held once, each entry
//! holding a pointer to it. At 100,000 repositories one copy per entry is megabytes.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// The shared values of one index. Values no entry holds any more are dropped once the set has
/// doubled since the last purge, so that it holds at most about twice what is in use.
#[derive(Debug)]
pub struct Interned<T: ?Sized = str> {
    values: HashSet<Arc<T>>,
    /// The size after the last purge.
    kept: usize,
}

impl<T: ?Sized> Default for Interned<T> {
    fn default() -> Self {
        Interned {
            values: HashSet::new(),
            kept: 0,
        }
    }
}

/// The set is not purged below this size: a purge would cost more than it frees.
const PURGE_FLOOR: usize = 64;

impl<T: ?Sized + Hash + Eq> Interned<T> {
    /// Keeps `shared`, a value not held yet, first dropping the values no entry holds when the
    /// set has doubled since the last purge.
    fn insert(&mut self, shared: Arc<T>) -> Arc<T> {
        if self.values.len() >= (2 * self.kept).max(PURGE_FLOOR) {
            // Held only by the set: no entry uses it.
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.kept = self.values.len();
        }
        self.values.insert(shared.clone());
        shared
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Interned<str> {
    /// The shared copy of `s`.
    pub fn share(&mut self, s: &str) -> Arc<str> {
        match self.values.get(s) {
            Some(shared) => shared.clone(),
            None => self.insert(Arc::from(s)),
        }
    }
}

impl<T: Hash + Eq> Interned<T> {
    /// The shared value equal to `value`.
    pub fn share_value(&mut self, value: T) -> Arc<T> {
        match self.values.get(&value) {
            Some(shared) => shared.clone(),
            None => self.insert(Arc::new(value)),
        }
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

    #[test]
    fn equal_values_are_one_copy() {
        let mut interned = Interned::<(String, bool)>::default();
        let a = interned.share_value(("KMS".to_string(), true));
        let b = interned.share_value(("KMS".to_string(), true));
        let c = interned.share_value(("KMS".to_string(), false));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(interned.len(), 2);
    }

    /// Values that entries stopped using do not accumulate: the set stays within twice what is
    /// in use (and the purge floor).
    #[test]
    fn unused_values_are_purged() {
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
            "values in use are never dropped"
        );
    }
}
