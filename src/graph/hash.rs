//! A fast keyed hasher for the engine's hot maps (std only).
//!
//! Keys are trace and span ids and names sent by clients, so the hash must not be predictable:
//! each map gets random keys (from std's `RandomState`), and every word is mixed with a
//! folded 64×64→128-bit multiply, whose high half carries every input bit into the bucket bits.
//! That is the construction of `foldhash`/`ahash`'s fallback: not a cryptographic MAC, but it
//! leaves no seed-independent collisions to flood a map with, at a fraction of SipHash's cost.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher, RandomState};

/// `HashMap` with [`FoldBuildHasher`].
pub type FastMap<K, V> = HashMap<K, V, FoldBuildHasher>;
/// `HashSet` with [`FoldBuildHasher`].
pub type FastSet<K> = HashSet<K, FoldBuildHasher>;

/// Creates hashers sharing this map's random keys.
#[derive(Debug, Clone)]
pub struct FoldBuildHasher {
    seed: u64,
    multiplier: u64,
}

impl Default for FoldBuildHasher {
    fn default() -> Self {
        let random = RandomState::new();
        Self {
            seed: random.hash_one(0x5eed_u64),
            // Odd, so the multiply is a bijection before folding.
            multiplier: random.hash_one(0xfeed_u64) | 1,
        }
    }
}

impl BuildHasher for FoldBuildHasher {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            state: self.seed,
            multiplier: self.multiplier,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FoldHasher {
    state: u64,
    multiplier: u64,
}

/// The high and low halves of the full product, xored: every input bit reaches every output bit.
#[inline]
fn folded_multiply(left: u64, right: u64) -> u64 {
    let product = u128::from(left) * u128::from(right);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for FoldHasher {
    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, self.multiplier);
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        // The length keeps "ab" + "" apart from "a" + "b".
        self.write_u64(u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    #[inline]
    fn write_isize(&mut self, value: isize) {
        self.write_u64(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.state, self.multiplier.rotate_left(29) | 1)
    }
}

/// For `u64` keys that already are outputs of a keyed hash (fingerprints): uses them as is,
/// so a map of fingerprints costs no second hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrehashedBuildHasher;

impl BuildHasher for PrehashedBuildHasher {
    type Hasher = PrehashedHasher;

    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    #[inline]
    fn write_u64(&mut self, fingerprint: u64) {
        self.0 = fingerprint;
    }

    fn write(&mut self, bytes: &[u8]) {
        debug_assert!(false, "only u64 fingerprints are prehashed");
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_inputs_hash_equally_and_small_changes_spread() {
        let build = FoldBuildHasher::default();
        assert_eq!(build.hash_one("checkout"), build.hash_one("checkout"));
        assert_ne!(build.hash_one("checkout"), build.hash_one("checkouu"));
        assert_ne!(build.hash_one(("ab", "")), build.hash_one(("a", "b")));
        // Ids differing only in their low bits must not share their low (bucket) bits.
        let low_bits: FastSet<u64> = (0..1024u64)
            .map(|id| build.hash_one(id << 32) & 0x3ff)
            .collect();
        assert!(low_bits.len() > 500, "{}", low_bits.len());
    }

    #[test]
    fn maps_get_different_keys() {
        let first = FoldBuildHasher::default();
        let second = FoldBuildHasher::default();
        assert_ne!(first.hash_one(42u64), second.hash_one(42u64));
    }
}
