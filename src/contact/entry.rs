//! One table entry: the original Contact URI, the flow it came over, and when it expires.
//!
//! The URI and flow never change after insertion, so readers need no synchronisation to read
//! them. The deadline is one atomic, in milliseconds on the table's own clock (see
//! [`Clock`]); `0` marks an entry that a sweep has claimed for removal, and such an entry is
//! never brought back to life.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sip::Flow;

/// How long a new or refreshed entry lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// A REGISTER's Contact: the binding's expires (capped by the table's `max_expires`).
    Registration(Duration),
    /// A dialog's Contact (INVITE, SUBSCRIBE and their 2xx): the table's idle timeout.
    Dialog,
}

/// A contact as the table holds it. Handed to the `lookup` closure by reference.
#[derive(Debug)]
pub struct ContactEntry {
    uri: Box<[u8]>,
    flow: Flow,
    deadline: AtomicU64,
}

/// A table's clock: milliseconds since the table was made, plus one so that a live deadline
/// is never the `0` that marks a dead entry. The caller supplies every `now`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new(epoch: Instant) -> Clock {
        Clock { epoch }
    }

    /// `now` on this clock; instants before the epoch read as the epoch.
    pub(crate) fn ticks(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.epoch)).saturating_add(1)
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ContactEntry {
    pub(crate) fn new(uri: &[u8], flow: Flow, deadline: u64) -> ContactEntry {
        ContactEntry {
            uri: uri.into(),
            flow,
            deadline: AtomicU64::new(deadline.max(1)),
        }
    }

    /// The Contact URI as the client wrote it, e.g. `sip:alice@192.168.1.10:5060`.
    pub fn original_uri(&self) -> &[u8] {
        &self.uri
    }

    /// The flow the contact came over: where to send a request for it.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// Whether this entry is for this URI over this flow.
    pub(crate) fn is_for(&self, uri: &[u8], flow: &Flow) -> bool {
        self.flow == *flow && *self.uri == *uri
    }

    /// Moves the deadline later to `until` (never earlier). False if the entry is dead.
    pub(crate) fn extend(&self, until: u64) -> bool {
        self.deadline
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                (d != 0 && d < until).then_some(until)
            })
            .map_or_else(|d| d != 0, |_| true)
    }

    /// Whether the entry is live at `now`; if so and `until` is given, its deadline becomes
    /// `until`, earlier or later than before. Unlike [`extend`](Self::extend) this may shorten
    /// the entry (a registrar granted less than was asked); an expired or dead entry is left
    /// as it is and never revived.
    pub(crate) fn settle(&self, now: u64, until: Option<u64>) -> bool {
        let Some(until) = until else {
            return self.deadline.load(Ordering::Acquire) > now;
        };
        self.deadline
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                (d > now).then_some(until.max(1))
            })
            .is_ok()
    }

    /// Whether the entry is live at `now`; a live entry is kept at least `idle` past `now`.
    /// Writes the deadline only when it falls within the last eighth of `idle`, so a busy
    /// entry is written about eight times per idle period, not on every read.
    pub(crate) fn touch(&self, now: u64, idle: u64) -> bool {
        let deadline = self.deadline.load(Ordering::Acquire);
        if deadline <= now {
            return false; // expired, or dead (0)
        }
        let wanted = now.saturating_add(idle);
        if deadline < wanted.saturating_sub(idle / 8) {
            return self.extend(wanted);
        }
        true
    }

    /// Marks the entry dead if it has expired at `now`. True for exactly one caller, the one
    /// that must then remove it from the table.
    pub(crate) fn claim_if_expired(&self, now: u64) -> bool {
        self.deadline
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                (d != 0 && d <= now).then_some(0)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{ConnectionId, Transport};

    fn flow() -> Flow {
        Flow::new(
            Transport::Udp,
            "203.0.113.7:40000".parse().unwrap(),
            "198.51.100.1:5060".parse().unwrap(),
        )
    }

    #[test]
    fn extend_only_moves_later_and_never_revives() {
        let e = ContactEntry::new(b"sip:a@10.0.0.1", flow(), 100);
        assert!(e.extend(50));
        assert_eq!(e.deadline.load(Ordering::Relaxed), 100);
        assert!(e.extend(200));
        assert_eq!(e.deadline.load(Ordering::Relaxed), 200);
        assert!(!e.claim_if_expired(199));
        assert!(e.claim_if_expired(200));
        assert!(!e.claim_if_expired(300), "claimed once only");
        assert!(!e.extend(1_000));
        assert!(!e.touch(1, 10));
    }

    #[test]
    fn settle_moves_either_way_but_never_revives() {
        let e = ContactEntry::new(b"sip:a@10.0.0.1", flow(), 1_000);
        assert!(e.settle(10, None));
        assert_eq!(e.deadline.load(Ordering::Relaxed), 1_000);
        assert!(e.settle(10, Some(200)), "shortened");
        assert_eq!(e.deadline.load(Ordering::Relaxed), 200);
        assert!(e.settle(10, Some(5_000)), "lengthened");
        assert_eq!(e.deadline.load(Ordering::Relaxed), 5_000);
        assert!(!e.settle(5_000, Some(9_000)), "expired at its deadline");
        assert_eq!(e.deadline.load(Ordering::Relaxed), 5_000);
        assert!(e.claim_if_expired(5_000));
        assert!(!e.settle(1, Some(9_000)), "a dead entry stays dead");
        assert!(!e.settle(1, None));
    }

    #[test]
    fn touch_refreshes_near_the_end_only() {
        let e = ContactEntry::new(b"sip:a@10.0.0.1", flow(), 1_000);
        assert!(e.touch(100, 1_000)); // 1000 >= 1100 - 125: not written
        assert_eq!(e.deadline.load(Ordering::Relaxed), 1_000);
        assert!(e.touch(500, 1_000)); // 1000 < 1500 - 125: pushed to 1500
        assert_eq!(e.deadline.load(Ordering::Relaxed), 1_500);
        assert!(!e.touch(1_500, 1_000), "expired at its deadline");
    }

    #[test]
    fn clock_starts_at_one_and_saturates_before_epoch() {
        let epoch = Instant::now();
        let clock = Clock::new(epoch);
        assert_eq!(clock.ticks(epoch), 1);
        assert_eq!(clock.ticks(epoch + Duration::from_millis(1500)), 1_501);
        if let Some(before) = epoch.checked_sub(Duration::from_secs(1)) {
            assert_eq!(clock.ticks(before), 1);
        }
    }

    #[test]
    fn identity_is_uri_and_flow() {
        let e = ContactEntry::new(b"sip:a@10.0.0.1", flow(), 1);
        assert!(e.is_for(b"sip:a@10.0.0.1", &flow()));
        assert!(!e.is_for(b"sip:b@10.0.0.1", &flow()));
        let mut other = flow();
        other.conn = Some(ConnectionId(3));
        assert!(!e.is_for(b"sip:a@10.0.0.1", &other));
    }
}
