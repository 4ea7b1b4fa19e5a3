//! The plain counters one worker keeps, as interval deltas or as sums.
//!
//! A `Counters` is fixed-size (no heap): adding to it is an array index and an increment.
//! Statuses 100..=699 have a slot each; any other status (the core never builds one) is
//! counted under status 0.

use crate::proxy::{Direction, DropReason};
use crate::record::StreamEvent;

use super::Series;

/// Slots for local-reply statuses: 100..=699, then one slot for anything else.
const STATUS_SLOTS: usize = 601;
const STATUS_OTHER: usize = STATUS_SLOTS - 1;

/// Message counters of one worker (or the sum over workers).
///
/// Malformed messages are counted where they ended: dropped under
/// [`DropReason::MalformedRequest`], [`DropReason::MalformedResponse`] or
/// [`DropReason::NotSip`] (the runtime uses the same reasons for what it rejects before the
/// core, e.g. `too_large` for a truncated datagram), answered under `replied(400)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    received: u64,
    forwarded: [u64; 2],
    replied: [u64; STATUS_SLOTS],
    dropped: [u64; DropReason::COUNT],
    send_errors: u64,
    kernel_drops: u64,
    latency_sum_ns: [u64; Series::ALL.len()],
    /// Stream connection events by kind.
    stream: [u64; StreamEvent::COUNT],
    /// Changes in the open stream connections: summed over intervals, the number open now;
    /// summed over workers, the total.
    open_delta: i64,
}

impl Counters {
    /// All counters at zero.
    pub const ZERO: Counters = Counters {
        received: 0,
        forwarded: [0; 2],
        replied: [0; STATUS_SLOTS],
        dropped: [0; DropReason::COUNT],
        send_errors: 0,
        kernel_drops: 0,
        latency_sum_ns: [0; Series::ALL.len()],
        stream: [0; StreamEvent::COUNT],
        open_delta: 0,
    };

    /// Messages received (datagrams, or framed messages on streams).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages forwarded in one direction.
    pub fn forwarded(&self, direction: Direction) -> u64 {
        self.forwarded[direction as usize]
    }

    /// Messages forwarded in both directions.
    pub fn forwarded_total(&self) -> u64 {
        self.forwarded.iter().sum()
    }

    /// Local replies sent with this status (0: statuses outside 100..=699).
    pub fn replied(&self, status: u16) -> u64 {
        match status {
            0 => self.replied[STATUS_OTHER],
            100..=699 => self.replied[usize::from(status - 100)],
            _ => 0,
        }
    }

    /// `(status, count)` for every status with a non-zero count, in ascending status order
    /// (status 0, "outside 100..=699", comes first).
    pub fn replies(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        let other = std::iter::once((0, self.replied[STATUS_OTHER]));
        let regular = (100..=699u16).zip(self.replied[..STATUS_OTHER].iter().copied());
        other.chain(regular).filter(|&(_, n)| n != 0)
    }

    /// Local replies of any status.
    pub fn replied_total(&self) -> u64 {
        self.replied.iter().sum()
    }

    /// Messages dropped for this reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }

    /// Messages dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Sends that failed (the message was forwarded or answered but the system call failed).
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// Datagrams the kernel dropped because the socket's receive queue was full.
    pub fn kernel_drops(&self) -> u64 {
        self.kernel_drops
    }

    /// The exact sum of the latencies recorded for a series, in nanoseconds.
    pub fn latency_sum_ns(&self, series: Series) -> u64 {
        self.latency_sum_ns[series as usize]
    }

    /// Stream connection events of this kind.
    pub fn stream(&self, event: StreamEvent) -> u64 {
        self.stream[event as usize]
    }

    /// Open stream connections (in a since-start view; a last-interval view holds the change).
    pub fn open_connections(&self) -> i64 {
        self.open_delta
    }

    /// Adds every counter of `other` to this one (saturating: a sum stuck at `u64::MAX` is
    /// better than a stats thread that panics).
    pub fn add(&mut self, other: &Counters) {
        self.received = self.received.saturating_add(other.received);
        add_all(&mut self.forwarded, &other.forwarded);
        add_all(&mut self.replied, &other.replied);
        add_all(&mut self.dropped, &other.dropped);
        self.send_errors = self.send_errors.saturating_add(other.send_errors);
        self.kernel_drops = self.kernel_drops.saturating_add(other.kernel_drops);
        add_all(&mut self.latency_sum_ns, &other.latency_sum_ns);
        add_all(&mut self.stream, &other.stream);
        self.open_delta = self.open_delta.saturating_add(other.open_delta);
    }

    pub(super) fn count_stream(&mut self, event: StreamEvent) {
        self.stream[event as usize] += 1;
    }

    pub(super) fn count_open_change(&mut self, delta: i64) {
        self.open_delta = self.open_delta.saturating_add(delta);
    }

    pub(super) fn count_received(&mut self, n: u64) {
        self.received += n;
    }

    pub(super) fn count_forwarded(&mut self, direction: Direction, latency_ns: u64) {
        self.forwarded[direction as usize] += 1;
        self.add_latency(Series::forwarded(direction), latency_ns);
    }

    pub(super) fn count_replied(&mut self, status: u16, latency_ns: u64) {
        let slot = match status {
            100..=699 => usize::from(status - 100),
            _ => STATUS_OTHER,
        };
        self.replied[slot] += 1;
        self.add_latency(Series::Reply, latency_ns);
    }

    pub(super) fn count_dropped(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }

    pub(super) fn count_send_error(&mut self) {
        self.send_errors += 1;
    }

    pub(super) fn count_kernel_drops(&mut self, n: u64) {
        self.kernel_drops = self.kernel_drops.saturating_add(n);
    }

    fn add_latency(&mut self, series: Series, latency_ns: u64) {
        let sum = &mut self.latency_sum_ns[series as usize];
        *sum = sum.saturating_add(latency_ns);
    }
}

impl Default for Counters {
    fn default() -> Counters {
        Counters::ZERO
    }
}

fn add_all(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.saturating_add(*b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_their_own_slots_and_others_go_to_zero() {
        let mut c = Counters::ZERO;
        c.count_replied(100, 1);
        c.count_replied(483, 1);
        c.count_replied(483, 1);
        c.count_replied(699, 1);
        c.count_replied(700, 1);
        c.count_replied(99, 1);
        assert_eq!(c.replied(100), 1);
        assert_eq!(c.replied(483), 2);
        assert_eq!(c.replied(699), 1);
        assert_eq!(c.replied(0), 2);
        assert_eq!(c.replied(700), 0);
        assert_eq!(c.replied_total(), 6);
        let seen: Vec<_> = c.replies().collect();
        assert_eq!(seen, [(0, 2), (100, 1), (483, 2), (699, 1)]);
        assert_eq!(c.latency_sum_ns(Series::Reply), 6);
    }

    #[test]
    fn add_sums_every_counter() {
        let mut a = Counters::ZERO;
        a.count_received(3);
        a.count_forwarded(Direction::Request, 10);
        a.count_dropped(DropReason::ALL[0]);
        let mut b = a.clone();
        b.count_forwarded(Direction::Response, 5);
        b.count_send_error();
        b.count_kernel_drops(7);
        a.add(&b);
        assert_eq!(a.received(), 6);
        assert_eq!(a.forwarded(Direction::Request), 2);
        assert_eq!(a.forwarded(Direction::Response), 1);
        assert_eq!(a.forwarded_total(), 3);
        assert_eq!(a.dropped(DropReason::ALL[0]), 2);
        assert_eq!(a.dropped_total(), 2);
        assert_eq!(a.send_errors(), 1);
        assert_eq!(a.kernel_drops(), 7);
        assert_eq!(a.latency_sum_ns(Series::Request), 20);
        assert_eq!(a.latency_sum_ns(Series::Response), 5);
    }
}
