//! What a worker records about the messages it moves.
//!
//! [`Counters`] is the built-in [`Recorder`] (plain integers, merged after the workers stop).

use std::fmt;
use std::time::Instant;

use crate::proxy::{Direction, DropReason};
pub use crate::record::{Recorder, StreamEvent};

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
