//! What a worker records about the messages it moves.
//!
//! [`Recorder`] is the hook: the worker calls it once per message outcome, and once per TCP
//! connection change ([`StreamEvent`]), on its own thread, with no lock. [`Counters`] is the
//! built-in recorder (plain integers, merged after the workers stop). The stats module's per-worker histograms plug in by implementing
//! `Recorder` and starting the server with [`Server::start_with`](super::Server::start_with).

use std::fmt;
use std::time::Instant;

use super::stream::StreamEvent;
use crate::proxy::{Direction, DropReason};

/// Per-worker sink for the hot path's events. Must not lock or allocate per call.
pub trait Recorder: Send + 'static {
    /// `n` datagrams were received in one batch.
    fn received(&mut self, n: usize);
    /// A message was forwarded; `latency_ns` runs from its arrival to its send returning.
    fn forwarded(&mut self, direction: Direction, latency_ns: u64);
    /// A locally generated reply with `status` was sent.
    fn replied(&mut self, status: u16, latency_ns: u64);
    /// A message was dropped for `reason`.
    fn dropped(&mut self, reason: DropReason);
    /// The kernel refused a send (or reported an earlier one's ICMP error).
    fn send_error(&mut self);
    /// The worker's sockets' kernel receive-queue drops so far (cumulative, `SO_RXQ_OVFL`).
    fn kernel_drops(&mut self, cumulative: u64);
    /// Called at least a few times a second, even when idle; may hand data to an exporter.
    fn maybe_flush(&mut self, now: Instant);
    /// Called once when the worker stops.
    fn flush(&mut self);
    /// A stream connection event: accepted, closed and why, a hand-off, a ping. Called per
    /// connection change, not per ordinary message. The default ignores it.
    fn stream_event(&mut self, event: StreamEvent) {
        let _ = event;
    }
    /// The worker's open stream connections, after each change. The default ignores it.
    fn open_connections(&mut self, open: usize) {
        let _ = open;
    }
}

/// The first status a reply can carry; replies are counted by `status - FIRST_STATUS`.
const FIRST_STATUS: u16 = 100;
/// Statuses 100..=699 each have a counter.
const STATUS_SLOTS: usize = 600;

/// Plain per-worker counters: the default [`Recorder`].
#[derive(Clone, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    pub forwarded_requests: u64,
    pub forwarded_responses: u64,
    pub send_errors: u64,
    /// Cumulative kernel receive-queue drops across the worker's sockets.
    pub kernel_drops: u64,
    /// Drops by reason, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Stream connection events, indexed by `StreamEvent as usize`.
    pub stream: [u64; StreamEvent::COUNT],
    /// Open stream connections when last reported (summed across workers by `merge`).
    pub open_connections: u64,
    replies: Box<[u64]>,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            received: 0,
            forwarded_requests: 0,
            forwarded_responses: 0,
            send_errors: 0,
            kernel_drops: 0,
            drops: [0; DropReason::COUNT],
            stream: [0; StreamEvent::COUNT],
            open_connections: 0,
            replies: vec![0; STATUS_SLOTS].into_boxed_slice(),
        }
    }
}

impl Counters {
    /// Forwarded requests and responses together.
    pub fn total_forwarded(&self) -> u64 {
        self.forwarded_requests + self.forwarded_responses
    }

    /// How many messages were dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops, whatever the reason.
    pub fn total_dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// How many times stream `event` happened.
    pub fn stream_count(&self, event: StreamEvent) -> u64 {
        self.stream[event as usize]
    }

    /// Locally generated replies sent, by status, lowest status first (non-zero only).
    pub fn replies(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (FIRST_STATUS..)
            .zip(self.replies.iter().copied())
            .filter(|&(_, n)| n > 0)
    }

    /// All locally generated replies sent.
    pub fn total_replied(&self) -> u64 {
        self.replies.iter().sum()
    }

    /// Adds another worker's counters into these.
    pub fn merge(&mut self, other: &Counters) {
        self.received += other.received;
        self.forwarded_requests += other.forwarded_requests;
        self.forwarded_responses += other.forwarded_responses;
        self.send_errors += other.send_errors;
        self.kernel_drops += other.kernel_drops;
        for (mine, theirs) in self.drops.iter_mut().zip(other.drops.iter()) {
            *mine += theirs;
        }
        for (mine, theirs) in self.stream.iter_mut().zip(other.stream.iter()) {
            *mine += theirs;
        }
        self.open_connections += other.open_connections;
        for (mine, theirs) in self.replies.iter_mut().zip(other.replies.iter()) {
            *mine += theirs;
        }
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let drops: Vec<(&str, u64)> = DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.dropped_for(*r)))
            .filter(|&(_, n)| n > 0)
            .collect();
        let stream: Vec<(&str, u64)> = StreamEvent::ALL
            .iter()
            .map(|e| (e.name(), self.stream_count(*e)))
            .filter(|&(_, n)| n > 0)
            .collect();
        f.debug_struct("Counters")
            .field("received", &self.received)
            .field("forwarded_requests", &self.forwarded_requests)
            .field("forwarded_responses", &self.forwarded_responses)
            .field("replies", &self.replies().collect::<Vec<_>>())
            .field("drops", &drops)
            .field("send_errors", &self.send_errors)
            .field("kernel_drops", &self.kernel_drops)
            .field("stream", &stream)
            .field("open_connections", &self.open_connections)
            .finish()
    }
}

impl Recorder for Counters {
    fn received(&mut self, n: usize) {
        self.received += n as u64;
    }

    fn forwarded(&mut self, direction: Direction, _latency_ns: u64) {
        match direction {
            Direction::Request => self.forwarded_requests += 1,
            Direction::Response => self.forwarded_responses += 1,
        }
    }

    fn replied(&mut self, status: u16, _latency_ns: u64) {
        let slot = usize::from(status.saturating_sub(FIRST_STATUS)).min(STATUS_SLOTS - 1);
        self.replies[slot] += 1;
    }

    fn dropped(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    fn send_error(&mut self) {
        self.send_errors += 1;
    }

    fn kernel_drops(&mut self, cumulative: u64) {
        self.kernel_drops = cumulative;
    }

    fn maybe_flush(&mut self, _now: Instant) {}

    fn flush(&mut self) {}

    fn stream_event(&mut self, event: StreamEvent) {
        self.stream[event as usize] += 1;
    }

    fn open_connections(&mut self, open: usize) {
        self.open_connections = open as u64;
    }
}

/// The stats module's per-worker histograms and counters, as the workers' recorder.
impl Recorder for crate::stats::WorkerStats {
    fn received(&mut self, n: usize) {
        crate::stats::WorkerStats::received(self, n as u64);
    }

    fn forwarded(&mut self, direction: Direction, latency_ns: u64) {
        crate::stats::WorkerStats::forwarded(self, direction, latency_ns);
    }

    fn replied(&mut self, status: u16, latency_ns: u64) {
        crate::stats::WorkerStats::replied(self, status, latency_ns);
    }

    fn dropped(&mut self, reason: DropReason) {
        crate::stats::WorkerStats::dropped(self, reason);
    }

    fn send_error(&mut self) {
        crate::stats::WorkerStats::send_error(self);
    }

    fn kernel_drops(&mut self, cumulative: u64) {
        crate::stats::WorkerStats::kernel_drops(self, cumulative);
    }

    fn maybe_flush(&mut self, now: Instant) {
        crate::stats::WorkerStats::maybe_flush(self, now);
    }

    fn flush(&mut self) {
        crate::stats::WorkerStats::flush(self);
    }

    fn stream_event(&mut self, event: StreamEvent) {
        crate::stats::WorkerStats::stream_event(self, event);
    }

    fn open_connections(&mut self, open: usize) {
        crate::stats::WorkerStats::open_connections(self, open);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_and_merge() {
        let mut a = Counters::default();
        a.received(3);
        a.forwarded(Direction::Request, 10);
        a.forwarded(Direction::Response, 10);
        a.replied(483, 5);
        a.dropped(DropReason::NotSip);
        a.kernel_drops(7);
        a.stream_event(StreamEvent::Accepted);
        a.open_connections(3);
        let mut b = Counters::default();
        b.replied(483, 5);
        b.replied(9999, 5);
        b.send_error();
        b.merge(&a);
        assert_eq!(b.received, 3);
        assert_eq!(b.total_forwarded(), 2);
        assert_eq!(b.replies().collect::<Vec<_>>(), [(483, 2), (699, 1)]);
        assert_eq!(b.total_replied(), 3);
        assert_eq!(b.dropped_for(DropReason::NotSip), 1);
        assert_eq!(b.total_dropped(), 1);
        assert_eq!((b.send_errors, b.kernel_drops), (1, 7));
        b.stream_event(StreamEvent::Accepted);
        b.open_connections(1);
        assert_eq!(b.stream_count(StreamEvent::Accepted), 2);
        assert_eq!(b.stream_count(StreamEvent::Ping), 0);
    }
}
