//! Whether a destination is up: the probe verdicts counted into up/down transitions
//! ([`Tracker`], pure), and the shared counters one destination exposes
//! ([`DestinationHealth`], atomics written by the prober and the workers).
//!
//! The hot path reads a group's live set as one atomic `u64` (see [`Group`](super::Group));
//! only the prober thread (probe verdicts) and the passive signals a worker sees (a 503 with
//! Retry-After, [`DestinationHealth::hold_down`]; an ICMP unreachable or a failed connect,
//! [`DestinationHealth::mark_unreachable`]) change it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Counts consecutive probe verdicts: down after `down_after` failures in a row, up after
/// `up_after` successes in a row. Starts up (traffic flows before the first probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tracker {
    pub up: bool,
    failures: u32,
    successes: u32,
}

/// A change of state, for the log and the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    WentUp,
    WentDown,
}

impl Tracker {
    pub(crate) fn new() -> Tracker {
        Tracker {
            up: true,
            failures: 0,
            successes: 0,
        }
    }

    /// Counts one probe verdict; the change it caused, if any.
    pub(crate) fn observe(
        &mut self,
        alive: bool,
        down_after: u32,
        up_after: u32,
    ) -> Option<Change> {
        if alive {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.up && self.successes >= up_after {
                self.up = true;
                return Some(Change::WentUp);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.up && self.failures >= down_after {
                self.up = false;
                return Some(Change::WentDown);
            }
        }
        None
    }

    /// Forced down (a passive signal): it must earn `up_after` successes again.
    pub(crate) fn force_down(&mut self) -> Option<Change> {
        self.successes = 0;
        std::mem::replace(&mut self.up, false).then_some(Change::WentDown)
    }
}

/// One destination's shared counters and its probe answer slot. Every field is an atomic
/// with relaxed ordering except where noted: counters for operators, not synchronization.
#[derive(Debug, Default)]
pub struct DestinationHealth {
    pub probes_sent: AtomicU64,
    pub probes_failed: AtomicU64,
    /// The round-trip time of the last answered probe, in microseconds (0: none yet).
    pub last_rtt_us: AtomicU64,
    pub went_down: AtomicU64,
    pub went_up: AtomicU64,
    /// Passive signals that took it down: 503s with Retry-After, ICMP unreachable errors
    /// and failed connects.
    pub passive_downs: AtomicU64,
    /// An ICMP unreachable or a failed connect not yet seen by the prober (which forces the
    /// destination down until probes bring it back).
    unreachable: AtomicBool,
    /// The last probe answer a worker saw: `seq << 32 | code` (see [`Self::note_answer`]).
    answer: AtomicU64,
    /// When that answer arrived, in nanoseconds since the table's epoch.
    answered_at: AtomicU64,
    /// Held down until this time (nanoseconds since the epoch) by a 503 with Retry-After.
    held_until: AtomicU64,
    /// The last probe status code seen (0: none).
    pub last_code: AtomicU32,
}

/// A probe answer as the prober reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProbeAnswer {
    pub seq: u32,
    pub code: u16,
    pub at_nanos: u64,
}

impl DestinationHealth {
    /// A worker saw the answer to probe `seq`: `code` at `at_nanos`.
    pub(crate) fn note_answer(&self, seq: u32, code: u16, at_nanos: u64) {
        self.answered_at.store(at_nanos, Relaxed);
        self.last_code.store(u32::from(code), Relaxed);
        // Release: whoever reads this seq also reads the time stored before it.
        self.answer.store(
            u64::from(seq) << 32 | u64::from(code),
            std::sync::atomic::Ordering::Release,
        );
    }

    /// The last probe answer seen, if any.
    pub(crate) fn last_answer(&self) -> Option<ProbeAnswer> {
        let packed = self.answer.load(std::sync::atomic::Ordering::Acquire);
        (packed != 0).then(|| ProbeAnswer {
            seq: (packed >> 32) as u32,
            code: (packed & 0xffff) as u16,
            at_nanos: self.answered_at.load(Relaxed),
        })
    }

    /// A 503 with Retry-After: held down until `until_nanos` (the later hold wins).
    pub(crate) fn hold_down(&self, until_nanos: u64) {
        self.held_until.fetch_max(until_nanos, Relaxed);
        self.passive_downs.fetch_add(1, Relaxed);
    }

    /// An ICMP unreachable for a datagram sent to it, or a failed connect: the worker has
    /// cleared its live bit; the prober takes the flag ([`Self::take_unreachable`]) and keeps
    /// it down until probes bring it back. `hold_until` (nanoseconds since the epoch, 0 for
    /// none) holds down a destination no probe can bring back, for a while.
    pub(crate) fn mark_unreachable(&self, hold_until: u64) {
        if hold_until > 0 {
            self.held_until.fetch_max(hold_until, Relaxed);
        }
        self.passive_downs.fetch_add(1, Relaxed);
        // SeqCst with the live-bit updates: the prober re-reads this flag after setting the
        // bit, so a signal racing with a probe verdict is never lost (see `Prober::settle`).
        self.unreachable
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether an unreachable signal is waiting (without taking it).
    pub(crate) fn unreachable_pending(&self) -> bool {
        self.unreachable.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Takes the unreachable signal, if one is waiting.
    pub(crate) fn take_unreachable(&self) -> bool {
        self.unreachable
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    /// Held down (by a passive signal) at `now_nanos`.
    pub(crate) fn held_at(&self, now_nanos: u64) -> bool {
        self.held_until.load(Relaxed) > now_nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_n_failures_up_after_m_successes() {
        let mut t = Tracker::new();
        assert!(t.up);
        assert_eq!(t.observe(false, 2, 1), None);
        assert_eq!(t.observe(true, 2, 1), None, "a success resets the failures");
        assert_eq!(t.observe(false, 2, 1), None);
        assert_eq!(t.observe(false, 2, 1), Some(Change::WentDown));
        assert_eq!(t.observe(false, 2, 1), None);
        assert!(!t.up);
        assert_eq!(t.observe(true, 2, 1), Some(Change::WentUp));

        let mut t = Tracker::new();
        assert_eq!(t.observe(false, 1, 3), Some(Change::WentDown));
        assert_eq!(t.observe(true, 1, 3), None);
        assert_eq!(t.observe(true, 1, 3), None);
        assert_eq!(
            t.observe(false, 1, 3),
            None,
            "a failure resets the successes"
        );
        for _ in 0..2 {
            assert_eq!(t.observe(true, 1, 3), None);
        }
        assert_eq!(t.observe(true, 1, 3), Some(Change::WentUp));
    }

    #[test]
    fn forced_down_must_earn_its_way_back() {
        let mut t = Tracker::new();
        assert_eq!(t.observe(true, 2, 2), None);
        assert_eq!(t.force_down(), Some(Change::WentDown));
        assert_eq!(t.force_down(), None);
        assert_eq!(t.observe(true, 2, 2), None);
        assert_eq!(t.observe(true, 2, 2), Some(Change::WentUp));
    }

    #[test]
    fn answers_and_holds() {
        let h = DestinationHealth::default();
        assert_eq!(h.last_answer(), None);
        h.note_answer(7, 200, 1234);
        assert_eq!(
            h.last_answer(),
            Some(ProbeAnswer {
                seq: 7,
                code: 200,
                at_nanos: 1234
            })
        );
        assert!(!h.held_at(10));
        h.hold_down(100);
        h.hold_down(50);
        assert!(h.held_at(99));
        assert!(!h.held_at(100));
        assert_eq!(h.passive_downs.load(Relaxed), 2);
    }

    #[test]
    fn an_unreachable_signal_is_taken_once() {
        let h = DestinationHealth::default();
        assert!(!h.take_unreachable());
        h.mark_unreachable(0);
        assert!(h.unreachable_pending());
        assert!(!h.held_at(1), "no hold asked");
        assert!(h.take_unreachable());
        assert!(!h.take_unreachable());
        h.mark_unreachable(500);
        assert!(h.held_at(499));
        assert_eq!(h.passive_downs.load(Relaxed), 2);
    }
}
