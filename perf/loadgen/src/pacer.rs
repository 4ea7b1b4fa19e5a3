//! Offered load at a fixed rate: how many requests are due at a given moment of a run, released
//! in small bursts so that a run of R requests/s sends about R × elapsed requests at any time.
//!
//! Time is an input (nanoseconds since the run started); the pacer reads no clock.

const NS_PER_SEC: u128 = 1_000_000_000;

/// Releases `limit` requests at `rate` per second, at most `max_burst` at a time.
#[derive(Clone, Debug)]
pub struct Pacer {
    rate: u64,
    limit: u64,
    max_burst: u64,
    released: u64,
}

impl Pacer {
    /// `rate` requests/s (at least 1), `limit` in all, bursts of at most `max_burst` (at least 1).
    pub fn new(rate: u64, limit: u64, max_burst: u64) -> Pacer {
        Pacer {
            rate: rate.max(1),
            limit,
            max_burst: max_burst.max(1),
            released: 0,
        }
    }

    /// How many may go now: the schedule's count at `elapsed_ns` (the first request is due at
    /// 0) less those released, capped by the burst size and the limit.
    pub fn due(&self, elapsed_ns: u64) -> u64 {
        let scheduled = u128::from(elapsed_ns) * u128::from(self.rate) / NS_PER_SEC + 1;
        let scheduled = u64::try_from(scheduled).unwrap_or(u64::MAX).min(self.limit);
        scheduled.saturating_sub(self.released).min(self.max_burst)
    }

    /// `n` more requests went out.
    pub fn release(&mut self, n: u64) {
        self.released = self.released.saturating_add(n).min(self.limit);
    }

    /// Nanoseconds until the next request is due (0: now); `None` once all are released.
    pub fn wait_ns(&self, elapsed_ns: u64) -> Option<u64> {
        if self.released >= self.limit {
            return None;
        }
        let due_at = u128::from(self.released) * NS_PER_SEC / u128::from(self.rate);
        let due_at = u64::try_from(due_at).unwrap_or(u64::MAX);
        Some(due_at.saturating_sub(elapsed_ns))
    }

    pub fn released(&self) -> u64 {
        self.released
    }

    pub fn is_done(&self) -> bool {
        self.released >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn releases_follow_the_rate() {
        let mut p = Pacer::new(10_000, 1_000_000, 1_000);
        assert_eq!(p.due(0), 1);
        p.release(1);
        assert_eq!(p.due(MS), 10); // 10 per ms, the first one already gone
        p.release(10);
        assert_eq!(p.due(MS), 0);
        assert_eq!(p.wait_ns(MS), Some(100_000));
        assert_eq!(p.due(100 * MS), 990);
    }

    #[test]
    fn bursts_are_capped_and_the_backlog_comes_later() {
        let mut p = Pacer::new(1_000_000, 10_000, 64);
        assert_eq!(p.due(5 * MS), 64);
        p.release(64);
        assert_eq!(p.due(5 * MS), 64);
    }

    #[test]
    fn the_limit_ends_the_run() {
        let mut p = Pacer::new(1_000, 5, 100);
        assert_eq!(p.due(10_000 * MS), 5);
        p.release(5);
        assert!(p.is_done());
        assert_eq!(p.due(20_000 * MS), 0);
        assert_eq!(p.wait_ns(20_000 * MS), None);
    }

    #[test]
    fn huge_times_and_rates_do_not_overflow() {
        let p = Pacer::new(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(p.due(u64::MAX), u64::MAX);
        assert_eq!(p.wait_ns(u64::MAX), Some(0));
    }
}
