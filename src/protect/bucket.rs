//! One token bucket as a single number: the generic cell rate algorithm (GCRA, ITU-T I.371),
//! the "virtual scheduling" form of a token bucket.
//!
//! A bucket of `burst` tokens refilled at `per_second` is kept as its *theoretical arrival
//! time* `tat`: the time at which the bucket would be full again. A request at `now` is
//! admitted when `max(tat, now) + interval − now ≤ burst × interval`, and then `tat` moves to
//! `max(tat, now) + interval`. So a full bucket admits `burst` requests at once, then one per
//! `interval`; `tat ≤ now` means the bucket is full and the source owes nothing, which is what
//! makes a slot free to evict. One `u64` of state updates with one compare-and-swap.

/// A request rate and how far it may be exceeded in a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Sustained requests per second (at least 1).
    pub per_second: u32,
    /// Requests admitted at once from a full bucket (at least 1).
    pub burst: u32,
}

/// A [`Limit`] in nanoseconds, ready for [`Gcra::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Time one request costs.
    interval_ns: u64,
    /// The debt a bucket may carry: `burst × interval`.
    tolerance_ns: u64,
}

impl Gcra {
    pub(crate) fn new(limit: Limit) -> Gcra {
        let interval_ns = 1_000_000_000 / u64::from(limit.per_second.max(1));
        Gcra {
            interval_ns: interval_ns.max(1),
            tolerance_ns: interval_ns.max(1) * u64::from(limit.burst.max(1)),
        }
    }

    /// The new `tat` when a request at `now` is admitted, `None` when it is refused (and the
    /// bucket must be left as it was).
    pub(crate) fn admit(&self, tat: u64, now: u64) -> Option<u64> {
        let next = tat.max(now).saturating_add(self.interval_ns);
        (next - now <= self.tolerance_ns).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Offers `n` requests at `now`; returns how many were admitted.
    fn offer(g: &Gcra, tat: &mut u64, now: u64, n: u32) -> u32 {
        let mut admitted = 0;
        for _ in 0..n {
            if let Some(next) = g.admit(*tat, now) {
                *tat = next;
                admitted += 1;
            }
        }
        admitted
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_the_rate() {
        let g = Gcra::new(Limit {
            per_second: 1000,
            burst: 2000,
        });
        let mut tat = 0;
        let start = 5_000 * MS;
        assert_eq!(offer(&g, &mut tat, start, 2500), 2000);
        // One token per millisecond from then on.
        assert_eq!(offer(&g, &mut tat, start + MS, 10), 1);
        assert_eq!(offer(&g, &mut tat, start + 11 * MS, 50), 10);
        // Idle for the whole burst's worth: full again, no more.
        assert_eq!(offer(&g, &mut tat, start + 5_000 * MS, 3000), 2000);
    }

    #[test]
    fn a_steady_sender_at_the_rate_is_never_refused() {
        let g = Gcra::new(Limit {
            per_second: 100,
            burst: 1,
        });
        let mut tat = 0;
        for i in 0..1000 {
            assert_eq!(
                offer(&g, &mut tat, 1_000 * MS + i * 10 * MS, 1),
                1,
                "request {i}"
            );
        }
        // Twice the rate: every other one refused.
        let base = 20_000 * MS;
        let admitted: u32 = (0..1000)
            .map(|i| offer(&g, &mut tat, base + i * 5 * MS, 1))
            .sum();
        assert_eq!(admitted, 500);
    }

    #[test]
    fn a_bucket_past_its_debt_is_full() {
        let g = Gcra::new(Limit {
            per_second: 10,
            burst: 3,
        });
        let mut tat = 0;
        assert_eq!(offer(&g, &mut tat, 1_000 * MS, 5), 3);
        assert!(tat > 1_000 * MS);
        assert!(tat <= 1_300 * MS, "the debt is at most the burst's time");
        // Once `now` passes `tat`, the bucket owes nothing.
        let after = tat + 1;
        assert_eq!(offer(&g, &mut tat, after, 5), 3);
        // Extreme limits do not overflow or divide by zero.
        let g = Gcra::new(Limit {
            per_second: 0,
            burst: 0,
        });
        assert!(g.admit(u64::MAX - 1, 0).is_none());
        assert!(g.admit(0, 0).is_some());
    }
}
