//! Reconnect delays: a small deterministic PRNG and the backoff arithmetic.

use core::time::Duration;

use super::config::{Jitter, ReconnectPolicy};

/// The smallest step exponential backoff grows from, so that a reconnection
/// time of zero (`retry: 0`) still backs off after failed attempts.
pub(crate) const BACKOFF_UNIT: Duration = Duration::from_millis(100);

/// splitmix64 (Steele, Lea and Flood): tiny, fast and good enough for jitter.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly distributed duration in `[lo, hi]` (nanosecond steps).
    /// Returns `lo` when `hi <= lo`.
    pub(crate) fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let Some(span) = hi.checked_sub(lo) else {
            return lo;
        };
        let span = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        if span == 0 {
            return lo;
        }
        let width = u128::from(span) + 1;
        let pick = (u128::from(self.next_u64()) * width) >> 64;
        let pick = u64::try_from(pick).unwrap_or(span);
        lo.saturating_add(Duration::from_nanos(pick))
    }
}

/// `d * 2^n`, saturating.
fn doubled(d: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    d.saturating_mul(factor)
}

/// The delay before the next attempt.
///
/// * `base`: the reconnection time (already clamped to the policy's floor and
///   ceiling). The result is never below it.
/// * `failures`: consecutive failed attempts so far. With 0 (the first
///   reconnect after a healthy connection) the result is exactly `base`.
/// * `prev`: the previous delay, for decorrelated jitter.
pub(crate) fn next_delay(
    policy: &ReconnectPolicy,
    base: Duration,
    failures: u32,
    prev: Duration,
    rng: &mut SplitMix64,
) -> Duration {
    if failures == 0 {
        return base;
    }
    let cap = policy.backoff_cap.max(base);
    let unit = base.max(BACKOFF_UNIT);
    let delay = match policy.jitter {
        Jitter::None => doubled(unit, failures).min(cap),
        Jitter::Full => rng.between(base, doubled(unit, failures).min(cap)),
        Jitter::Decorrelated => {
            let hi = prev.max(unit).saturating_mul(3).min(cap);
            rng.between(base, hi)
        }
    };
    delay.max(base).min(policy.max_delay.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_seed_dependent() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let mut c = SplitMix64::new(8);
        let xs: [u64; 4] = core::array::from_fn(|_| a.next_u64());
        let ys: [u64; 4] = core::array::from_fn(|_| b.next_u64());
        let zs: [u64; 4] = core::array::from_fn(|_| c.next_u64());
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn between_stays_in_bounds() {
        let mut rng = SplitMix64::new(1);
        let lo = Duration::from_millis(10);
        let hi = Duration::from_millis(20);
        for _ in 0..1000 {
            let d = rng.between(lo, hi);
            assert!(lo <= d && d <= hi);
        }
        assert_eq!(rng.between(hi, lo), hi);
        assert_eq!(rng.between(lo, lo), lo);
        let huge = rng.between(Duration::ZERO, Duration::MAX);
        assert!(huge <= Duration::MAX);
    }

    #[test]
    fn delays_grow_stay_capped_and_never_undercut_the_reconnection_time() {
        for jitter in [Jitter::None, Jitter::Full, Jitter::Decorrelated] {
            let policy = ReconnectPolicy::default()
                .jitter(jitter)
                .backoff_cap(Duration::from_secs(30));
            let mut rng = SplitMix64::new(42);
            let base = Duration::from_secs(1);
            let mut prev = base;
            assert_eq!(next_delay(&policy, base, 0, prev, &mut rng), base);
            for n in 1..100 {
                let d = next_delay(&policy, base, n, prev, &mut rng);
                assert!(d >= base, "{jitter:?} {n} {d:?}");
                assert!(d <= Duration::from_secs(30), "{jitter:?} {n} {d:?}");
                prev = d;
            }
        }
        let policy = ReconnectPolicy::default().jitter(Jitter::None);
        let mut rng = SplitMix64::new(0);
        let base = Duration::from_secs(1);
        let got: [Duration; 6] =
            core::array::from_fn(|n| next_delay(&policy, base, n as u32, base, &mut rng));
        let secs = got.map(|d| d.as_secs());
        assert_eq!(secs, [1, 2, 4, 8, 16, 30]);
    }

    #[test]
    fn a_reconnection_time_above_the_cap_wins() {
        let policy = ReconnectPolicy::default().backoff_cap(Duration::from_secs(5));
        let mut rng = SplitMix64::new(3);
        let base = Duration::from_secs(60);
        for n in 0..10 {
            assert_eq!(next_delay(&policy, base, n, base, &mut rng), base);
        }
    }

    #[test]
    fn zero_reconnection_time_still_backs_off() {
        let policy = ReconnectPolicy::default().jitter(Jitter::None);
        let mut rng = SplitMix64::new(3);
        assert_eq!(
            next_delay(&policy, Duration::ZERO, 0, Duration::ZERO, &mut rng),
            Duration::ZERO
        );
        assert_eq!(
            next_delay(&policy, Duration::ZERO, 3, Duration::ZERO, &mut rng),
            Duration::from_millis(800)
        );
        assert_eq!(
            next_delay(&policy, Duration::ZERO, u32::MAX, Duration::ZERO, &mut rng),
            Duration::from_secs(30)
        );
    }
}
