//! A small PRNG kept inside the crate so the demo clinic never changes with a
//! dependency upgrade: the same `(seed, index)` gives the same patient forever.
//!
//! SplitMix64, with only integer arithmetic and exactly rounded float
//! operations (no `ln`, `cos`, `pow`), so values are identical on every
//! platform.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a good 64-bit mixing function on its own.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// True for exactly one index in every `period` consecutive indices; which
/// one depends on the seed and `salt`. Rare cases placed this way occur a
/// known number of times in any population, whatever the seed.
pub(crate) fn one_in(seed: u64, salt: u64, period: u64, index: usize) -> bool {
    (index as u64 + mix(seed ^ salt) % period).is_multiple_of(period)
}

#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// An independent stream per `(seed, purpose, index)`, so adding a draw in
    /// one part of a patient does not shift every value drawn after it elsewhere.
    pub fn new(seed: u64, stream: u64, index: u64) -> Self {
        let state = mix(seed ^ mix(stream.wrapping_mul(GOLDEN) ^ 0x5DEE_CE66_D1CE_4E5B))
            ^ mix(index.wrapping_add(1).wrapping_mul(GOLDEN));
        Rng { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift; the tiny bias is irrelevant here.
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Roughly normal (Irwin–Hall of four uniforms): bounded tails, which is
    /// what a demo wants, and no transcendental functions.
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let sum: f64 = (0..4).map(|_| self.unit()).sum();
        // Four uniforms: mean 2, variance 4/12.
        mean + sd * (sum - 2.0) * 1.732_050_807_568_877_2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation).
        let mut state = 0u64;
        let mut next = || {
            state = state.wrapping_add(GOLDEN);
            mix(state)
        };
        assert_eq!(next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn streams_differ_by_seed_index_and_purpose() {
        let first = |s, p, i| Rng::new(s, p, i).next_u64();
        assert_ne!(first(1, 0, 0), first(2, 0, 0));
        assert_ne!(first(1, 0, 0), first(1, 1, 0));
        assert_ne!(first(1, 0, 0), first(1, 0, 1));
        assert_eq!(first(7, 3, 11), first(7, 3, 11));
    }

    #[test]
    fn one_in_a_period_is_exactly_one() {
        for seed in [0, 1, 7, u64::MAX] {
            for start in [0usize, 13, 1000] {
                let hits = (start..start + 50)
                    .filter(|&i| one_in(seed, 3, 50, i))
                    .count();
                assert_eq!(hits, 1, "seed {seed} from {start}");
            }
        }
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut rng = Rng::new(42, 0, 0);
        for _ in 0..10_000 {
            let r = rng.range(-3, 5);
            assert!((-3..=5).contains(&r));
            let b = rng.below(7);
            assert!(b < 7);
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            let n = rng.normal(10.0, 1.0);
            assert!((10.0 - 3.5..=10.0 + 3.5).contains(&n));
        }
    }
}
