//! A tiny seeded generator for backoff and renewal jitter (SplitMix64).
//!
//! Jitter needs spread, not secrecy; what matters is that the same seed gives the same
//! sequence on every platform, so a transcript or a fuzz case replays exactly.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration uniformly drawn from `[lo, hi]` at millisecond resolution.
    pub(crate) fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_ms = lo.as_millis() as u64;
        let hi_ms = (hi.as_millis() as u64).max(lo_ms);
        let span = hi_ms - lo_ms;
        let pick = if span == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (span + 1)
        };
        Duration::from_millis(lo_ms + pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = a.between(Duration::from_millis(500), Duration::from_millis(1000));
            assert_eq!(
                x,
                b.between(Duration::from_millis(500), Duration::from_millis(1000))
            );
            assert!(x >= Duration::from_millis(500) && x <= Duration::from_millis(1000));
        }
        assert_eq!(
            a.between(Duration::from_secs(2), Duration::from_secs(1)),
            Duration::from_secs(2)
        );
    }
}
