//! A block's membership filter: a Bloom filter over the 64-bit keys of the traces and indexed
//! attribute values a block holds (about 0.02% false positives at 20 bits per key, never a
//! false negative). Parts still being written are searched through their blocks' filters;
//! sealed parts through exact indexes (see [`super::parts`]).

/// Bits per key: about 0.02% false positives with [`NUM_PROBES`] probes. A trace lookup in a
/// part being written checks every block's filter, and a part holds a few thousand blocks: at
/// 10 bits (0.8%) each lookup decompressed some fifteen blocks that did not hold its trace.
/// Filters written with fewer bits per key (the size is read from the filter) still work.
const BITS_PER_KEY: usize = 20;
const NUM_PROBES: u64 = 7;
const MIN_BITS: usize = 64;

/// Builds the filter of `keys` (duplicates allowed).
pub(super) fn build(keys: &[u64]) -> Vec<u8> {
    let num_bits = (keys.len() * BITS_PER_KEY)
        .max(MIN_BITS)
        .next_multiple_of(8);
    let mut bits = vec![0_u8; num_bits / 8];
    for key in keys {
        for bit in probes(*key, num_bits) {
            bits[bit / 8] |= 1 << (bit % 8);
        }
    }
    bits
}

/// Whether `filter` may hold `key` (false: it certainly does not). An empty filter holds
/// nothing.
pub(super) fn may_contain(filter: &[u8], key: u64) -> bool {
    let num_bits = filter.len() * 8;
    if num_bits == 0 {
        return false;
    }
    probes(key, num_bits).all(|bit| filter[bit / 8] & (1 << (bit % 8)) != 0)
}

/// Double hashing (Kirsch–Mitzenmacher) from one well-mixed 64-bit key.
fn probes(key: u64, num_bits: usize) -> impl Iterator<Item = usize> {
    let mixed = crate::model::split_mix(key);
    let first = mixed & 0xffff_ffff;
    let step = (mixed >> 32) | 1;
    let num_bits = num_bits as u64;
    (0..NUM_PROBES)
        .map(move |probe| (first.wrapping_add(probe.wrapping_mul(step)) % num_bits) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_key_and_rarely_others() {
        let keys: Vec<u64> = (0..5_000_u64)
            .map(|no| no.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let filter = build(&keys);
        assert!(keys.iter().all(|key| may_contain(&filter, *key)));
        let num_false = (1_000_000_u64..1_100_000)
            .filter(|key| may_contain(&filter, *key))
            .count();
        assert!(num_false < 100, "{num_false} false positives in 100000");
        assert!(!may_contain(&[], 1));
        assert!(!may_contain(&build(&[]), 1));
    }
}
