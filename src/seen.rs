//! Sets that remember what was seen by a 128-bit keyed hash of it, not by a
//! copy of it: a walk or a plan of a million items remembers a million
//! addresses and ids, and 16 bytes each is what keeps that in flat memory.
//!
//! The hash is SipHash with secret keys drawn at random (the standard
//! library's [`RandomState`]), taken twice with two different keys into 128
//! bits, so a catalog cannot be made to collide on purpose, and two
//! different values share a hash with a probability of about n²/2¹²⁹ (for a
//! billion values, under one in 10²⁰).

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// A set of values kept as their 128-bit keyed hashes.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    keys: [std::collections::hash_map::RandomState; 2],
    hashes: HashSet<u128, BuildHasherDefault<Spread>>,
}

impl Seen {
    /// An empty set.
    pub fn new() -> Seen {
        Seen::default()
    }

    /// Adds `value`; false if it was there already.
    pub fn insert<T: Hash + ?Sized>(&mut self, value: &T) -> bool {
        let hash = self.hash(value);
        self.hashes.insert(hash)
    }

    /// Whether `value` is in the set.
    pub fn contains<T: Hash + ?Sized>(&self, value: &T) -> bool {
        self.hashes.contains(&self.hash(value))
    }

    /// Values in the set.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    fn hash<T: Hash + ?Sized>(&self, value: &T) -> u128 {
        let [first, second] = &self.keys;
        (u128::from(first.hash_one(value)) << 64) | u128::from(second.hash_one(value))
    }
}

/// The hasher of the set's own table: its keys are random already, so their
/// low bits are used as they are.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed; this is for completeness.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_what_it_saw_and_nothing_else() {
        let mut seen = Seen::new();
        assert!(seen.insert("https://example.com/a.json"));
        assert!(!seen.insert("https://example.com/a.json"));
        assert!(seen.insert("https://example.com/b.json"));
        assert!(seen.contains("https://example.com/a.json"));
        assert!(!seen.contains("https://example.com/c.json"));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn tuples_are_told_apart_where_their_parts_meet() {
        let mut seen = Seen::new();
        assert!(seen.insert(&(Some("ab"), "c")));
        assert!(seen.insert(&(Some("a"), "bc")));
        assert!(seen.insert(&(None::<&str>, "abc")));
        assert!(!seen.insert(&(Some("ab"), "c")));
    }

    #[test]
    fn a_hundred_thousand_values_are_all_kept_apart() {
        let mut seen = Seen::new();
        for n in 0..100_000 {
            assert!(seen.insert(&format!("item-{n}")));
        }
        assert_eq!(seen.len(), 100_000);
    }
}
