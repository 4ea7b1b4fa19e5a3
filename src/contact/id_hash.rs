//! The table's map hasher: a SplitMix64 finaliser over keys that are already unpredictable.
//!
//! The table's maps are keyed by entry ids and by keyed SipHash fingerprints. An outsider
//! can choose neither: ids are handed out by the table and reach a lookup only inside a token
//! whose MAC verified, and fingerprints are keyed with a secret. So the maps need no keyed
//! hash of their own, only a good bit mixer (papaya takes its tag bits from the top and its
//! bucket from the bottom of the hash, and sequential ids must spread over both).

use std::hash::{BuildHasher, Hasher};

/// Builds [`IdHasher`]s.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHash;

/// Folds each written word into its state and mixes on `finish`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher {
    state: u64,
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher::default()
    }
}

/// The SplitMix64 output function: every input bit affects every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let word = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            self.write_u64(word);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u128(&mut self, word: u128) {
        self.write_u64(word as u64);
        self.write_u64((word >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        mix(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash<T: std::hash::Hash>(value: T) -> u64 {
        IdHash.hash_one(value)
    }

    #[test]
    fn sequential_ids_spread_over_top_and_bottom_bits() {
        let mut top = [0u32; 128];
        let mut bottom = [0u32; 128];
        for id in 0..128_000u64 {
            let h = hash(id);
            top[(h >> 57) as usize] += 1;
            bottom[(h & 127) as usize] += 1;
        }
        // 1000 expected in each bucket; a poor mixer leaves buckets empty or doubled.
        for n in top.iter().chain(bottom.iter()) {
            assert!((800..1200).contains(n), "bucket holds {n}");
        }
    }

    #[test]
    fn distinct_words_distinct_hashes() {
        assert_ne!(hash(1u64), hash(2u64));
        assert_ne!(hash(1u128), hash(1u128 << 64));
        assert_eq!(hash(5u64), hash(5u64));
    }
}
