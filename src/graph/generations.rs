//! A map whose entries live for one to two TTLs without per-entry timers: lookups see the
//! current and the previous generation; once per TTL (or when the current one is full) the
//! previous generation is handed back to the caller (to count what it held) and the current
//! one becomes the previous. O(1) per operation, at most `2 × max_entries` entries.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use super::hash::FoldBuildHasher;

pub struct Generations<K, V, S = FoldBuildHasher> {
    current: HashMap<K, V, S>,
    previous: HashMap<K, V, S>,
    rotated_at_unix_nano: u64,
    ttl_nanos: u64,
    max_entries: usize,
    num_early_rotations: u64,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Generations<K, V, S> {
    pub fn new(ttl_nanos: u64, max_entries: usize) -> Self {
        debug_assert!(max_entries > 0);
        Self {
            current: HashMap::default(),
            previous: HashMap::default(),
            rotated_at_unix_nano: 0,
            ttl_nanos,
            max_entries,
            num_early_rotations: 0,
        }
    }

    /// Times the current generation filled up before its TTL (its entries then lived
    /// shorter than intended).
    pub fn num_early_rotations(&self) -> u64 {
        self.num_early_rotations
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Once per TTL: forgets the older generation, handing each value to `on_forget`.
    pub fn rotate_if_due(&mut self, now_unix_nano: u64, on_forget: impl FnMut(V)) {
        if now_unix_nano.saturating_sub(self.rotated_at_unix_nano) >= self.ttl_nanos {
            self.rotate(now_unix_nano, on_forget);
        }
    }

    /// The current generation becomes the previous one; the previous one is emptied (keeping
    /// its allocation) and becomes the current one.
    fn rotate(&mut self, now_unix_nano: u64, on_forget: impl FnMut(V)) {
        self.rotated_at_unix_nano = now_unix_nano;
        std::mem::swap(&mut self.current, &mut self.previous);
        self.current
            .drain()
            .map(|(_, value)| value)
            .for_each(on_forget);
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self.current.get_mut(key) {
            Some(value) => Some(value),
            None => self.previous.get_mut(key),
        }
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.current.contains_key(key) || self.previous.contains_key(key)
    }

    /// Inserts into the current generation, rotating first (forgetting the older
    /// generation into `on_forget`) if it is full.
    pub fn insert(&mut self, key: K, value: V, now_unix_nano: u64, on_forget: impl FnMut(V)) {
        if self.current.len() >= self.max_entries {
            self.num_early_rotations += 1;
            self.rotate(now_unix_nano, on_forget);
        }
        self.current.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_one_to_two_ttls_and_the_bound_holds() {
        let mut map: Generations<u32, &str> = Generations::new(10, 3);
        let mut forgotten = Vec::new();
        map.insert(1, "a", 0, |value| forgotten.push(value));
        map.rotate_if_due(5, |value| forgotten.push(value));
        map.rotate_if_due(10, |value| forgotten.push(value));
        assert!(forgotten.is_empty());
        assert_eq!(
            map.get_mut(&1).map(|value| *value),
            Some("a"),
            "one TTL: still there"
        );
        map.rotate_if_due(20, |value| forgotten.push(value));
        assert_eq!(forgotten, ["a"], "two TTLs: gone");
        assert!(!map.contains_key(&1));

        for key in 0..10 {
            map.insert(key, "x", 21, |value| forgotten.push(value));
            assert!(map.len() <= 6);
        }
        assert!(map.num_early_rotations() > 0);
        assert_eq!(
            forgotten.len(),
            1 + 3 + 3,
            "two early rotations forgot 3 each"
        );
    }
}
