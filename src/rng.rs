//! A small, fast pseudo-random generator for random picks (RANDOMKEY, SPOP,
//! SRANDMEMBER, HRANDFIELD). Not for anything security-related.

use std::hash::{BuildHasher, Hasher};

/// xorshift64* (Vigna), seeded from the process's random hasher keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn from_entropy() -> Rng {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        Rng::with_seed(h.finish())
    }

    pub fn with_seed(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_spreads() {
        let mut r = Rng::with_seed(42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }
}
