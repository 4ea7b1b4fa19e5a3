//! The recorder a worker thread owns, and the interval it hands to the stats thread.
//!
//! Recording writes into the active [`Interval`] only: counters and `hdrhistogram` buckets, no
//! lock, no allocation, no clock. A hand-off swaps the active interval with a cleared spare the
//! stats thread sent back, and sends the full one with `try_send`; both channels are bounded
//! and never block. Each worker owns exactly [`POOL`] intervals and the channels hold at most
//! that many, so a send cannot find a channel full; if no spare is back yet the worker keeps
//! recording into the active interval and hands it off at its next chance.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use hdrhistogram::Histogram;

use crate::proxy::{Direction, DropReason};
use crate::record::{Recorder, StreamEvent};

use super::{Counters, LATENCY_HIGH_NS, Series, latency_histogram};

/// How long the last hand-off (at shutdown) waits for the stats thread to recycle an interval.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// How many intervals each worker owns: the active one and one spare in flight.
pub(super) const POOL: usize = 2;

/// One worker's counters and histograms over one interval (or several, after a missed
/// hand-off).
#[derive(Debug)]
pub(super) struct Interval {
    pub(super) worker: usize,
    pub(super) counters: Counters,
    pub(super) latency: [Histogram<u64>; Series::ALL.len()],
    pub(super) started: Instant,
    pub(super) ended: Instant,
}

impl Interval {
    pub(super) fn new(worker: usize, now: Instant) -> Box<Interval> {
        Box::new(Interval {
            worker,
            counters: Counters::ZERO,
            latency: Series::ALL.map(|_| latency_histogram()),
            started: now,
            ended: now,
        })
    }

    /// Clears the data for reuse; keeps the histograms' memory.
    pub(super) fn clear(&mut self) {
        self.counters = Counters::ZERO;
        for h in &mut self.latency {
            h.reset();
        }
    }

    /// The time this interval covers.
    pub(super) fn period(&self) -> Duration {
        self.ended.saturating_duration_since(self.started)
    }
}

/// Statistics recorder of one worker thread. See the [module docs](super) for the contract.
///
/// Dropping it hands off what was recorded since the last hand-off, like [`WorkerStats::flush`].
#[derive(Debug)]
pub struct WorkerStats {
    active: Box<Interval>,
    spare: Option<Box<Interval>>,
    to_stats: Sender<Box<Interval>>,
    recycled: Receiver<Box<Interval>>,
    interval: Duration,
    due: Instant,
    kernel_drops_seen: u64,
    /// The open stream connections last reported (the gauge is handed off as changes).
    open_connections: i64,
    dirty: bool,
}

impl WorkerStats {
    pub(super) fn new(
        worker: usize,
        interval: Duration,
        to_stats: Sender<Box<Interval>>,
        recycled: Receiver<Box<Interval>>,
        now: Instant,
    ) -> WorkerStats {
        WorkerStats {
            active: Interval::new(worker, now),
            spare: None,
            to_stats,
            recycled,
            interval,
            due: now + interval,
            kernel_drops_seen: 0,
            open_connections: 0,
            dirty: false,
        }
    }

    /// Counts `n` received messages.
    #[inline]
    pub fn received(&mut self, n: u64) {
        self.active.counters.count_received(n);
        self.dirty = true;
    }

    /// Counts one forwarded message and records its latency (arrival to `send` returning).
    /// Latencies above [`LATENCY_HIGH_NS`] count as that.
    #[inline]
    pub fn forwarded(&mut self, direction: Direction, latency_ns: u64) {
        let latency_ns = latency_ns.min(LATENCY_HIGH_NS);
        let series = Series::forwarded(direction);
        self.active.latency[series as usize].saturating_record(latency_ns);
        self.active.counters.count_forwarded(direction, latency_ns);
        self.dirty = true;
    }

    /// Counts one local reply by status and records its latency (clamped like `forwarded`).
    #[inline]
    pub fn replied(&mut self, status: u16, latency_ns: u64) {
        let latency_ns = latency_ns.min(LATENCY_HIGH_NS);
        self.active.latency[Series::Reply as usize].saturating_record(latency_ns);
        self.active.counters.count_replied(status, latency_ns);
        self.dirty = true;
    }

    /// Counts one message the core dropped.
    #[inline]
    pub fn dropped(&mut self, reason: DropReason) {
        self.active.counters.count_dropped(reason);
        self.dirty = true;
    }

    /// A stream connection event (accepted, closed and why, a hand-off, a ping).
    pub fn stream_event(&mut self, event: StreamEvent) {
        self.active.counters.count_stream(event);
        self.dirty = true;
    }

    /// The worker's open stream connections now (a gauge, handed off as a change).
    pub fn open_connections(&mut self, open: usize) {
        let open = i64::try_from(open).unwrap_or(i64::MAX);
        self.active
            .counters
            .count_open_change(open - self.open_connections);
        self.open_connections = open;
        self.dirty = true;
    }

    /// Counts one failed send.
    #[inline]
    pub fn send_error(&mut self) {
        self.active.counters.count_send_error();
        self.dirty = true;
    }

    /// Takes the socket's cumulative kernel drop count (`SO_RXQ_OVFL`) and counts what is new
    /// since the last call. The kernel's counter is a `u32` that wraps; a value below the last
    /// one is taken as a wrap.
    #[inline]
    pub fn kernel_drops(&mut self, cumulative: u64) {
        let delta = match cumulative.checked_sub(self.kernel_drops_seen) {
            Some(delta) => delta,
            None => u64::from((cumulative as u32).wrapping_sub(self.kernel_drops_seen as u32)),
        };
        self.kernel_drops_seen = cumulative;
        if delta != 0 {
            self.active.counters.count_kernel_drops(delta);
            self.dirty = true;
        }
    }

    /// Hands the interval off when `now` has reached the end of the interval; otherwise only
    /// compares two instants. Call it at least once per interval (for example with a poll
    /// timeout no longer than the interval) so the "last interval" view stays current.
    #[inline]
    pub fn maybe_flush(&mut self, now: Instant) {
        if now >= self.due {
            self.hand_off(now);
        }
    }

    /// Hands off whatever was recorded since the last hand-off, now (at shutdown). Unlike
    /// the hand-offs while running, this one waits (up to a second) for the stats thread
    /// to send a cleared interval back, so the last interval is not left behind.
    pub fn flush(&mut self) {
        if self.spare.is_none() {
            self.spare = self.recycled.recv_timeout(FLUSH_WAIT).ok();
        }
        self.hand_off(Instant::now());
    }

    /// Whether the next hand-off can go out now: the stats thread has sent back a cleared
    /// interval. Fetches it if it has. For tests and diagnostics; recording does not need it.
    pub fn hand_off_ready(&mut self) -> bool {
        if self.spare.is_none() {
            self.spare = self.recycled.try_recv().ok();
        }
        self.spare.is_some()
    }

    fn hand_off(&mut self, now: Instant) {
        self.due = now + self.interval;
        if !self.hand_off_ready() {
            return; // keep accumulating; the next hand-off carries this interval too
        }
        let Some(mut next) = self.spare.take() else {
            return;
        };
        next.started = now;
        let mut full = std::mem::replace(&mut self.active, next);
        full.ended = now;
        match self.to_stats.try_send(full) {
            Ok(()) => self.dirty = false,
            // Full cannot happen (see the module docs); Disconnected means the stats thread
            // has stopped. Either way the data stays active and nothing is lost here.
            Err(TrySendError::Full(full) | TrySendError::Disconnected(full)) => {
                let next = std::mem::replace(&mut self.active, full);
                self.spare = Some(next);
            }
        }
    }
}

impl Drop for WorkerStats {
    fn drop(&mut self) {
        if self.dirty {
            self.flush();
        }
    }
}

/// The workers' recorder: each call is the inherent method of the same name.
impl Recorder for WorkerStats {
    fn received(&mut self, n: usize) {
        WorkerStats::received(self, n as u64);
    }

    fn forwarded(&mut self, direction: Direction, latency_ns: u64) {
        WorkerStats::forwarded(self, direction, latency_ns);
    }

    fn replied(&mut self, status: u16, latency_ns: u64) {
        WorkerStats::replied(self, status, latency_ns);
    }

    fn dropped(&mut self, reason: DropReason) {
        WorkerStats::dropped(self, reason);
    }

    fn send_error(&mut self) {
        WorkerStats::send_error(self);
    }

    fn kernel_drops(&mut self, cumulative: u64) {
        WorkerStats::kernel_drops(self, cumulative);
    }

    fn maybe_flush(&mut self, now: Instant) {
        WorkerStats::maybe_flush(self, now);
    }

    fn flush(&mut self) {
        WorkerStats::flush(self);
    }

    fn stream_event(&mut self, event: StreamEvent) {
        WorkerStats::stream_event(self, event);
    }

    fn open_connections(&mut self, open: usize) {
        WorkerStats::open_connections(self, open);
    }
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::bounded;

    use super::*;

    fn recorder() -> (
        WorkerStats,
        Receiver<Box<Interval>>,
        Sender<Box<Interval>>,
        Instant,
    ) {
        let now = Instant::now();
        let (to_stats, from_workers) = bounded(POOL);
        let (recycle, recycled) = bounded(POOL);
        recycle.send(Interval::new(0, now)).unwrap(); // capacity POOL >= 1
        let w = WorkerStats::new(0, Duration::from_secs(1), to_stats, recycled, now);
        (w, from_workers, recycle, now)
    }

    #[test]
    fn kernel_drops_store_the_delta_and_survive_a_u32_wrap() {
        let (mut w, _rx, _tx, _) = recorder();
        w.kernel_drops(5);
        w.kernel_drops(5);
        w.kernel_drops(12);
        assert_eq!(w.active.counters.kernel_drops(), 12);
        w.kernel_drops(u64::from(u32::MAX) - 1);
        w.kernel_drops(3); // wrapped: MAX-1 -> MAX -> 0 -> 1 -> 2 -> 3 is 5 more
        assert_eq!(
            w.active.counters.kernel_drops(),
            u64::from(u32::MAX) - 1 + 5
        );
    }

    #[test]
    fn maybe_flush_waits_for_the_interval_then_hands_off() {
        let (mut w, rx, _tx, now) = recorder();
        w.forwarded(Direction::Request, 1_500);
        w.maybe_flush(now + Duration::from_millis(999));
        assert!(rx.try_recv().is_err());
        w.maybe_flush(now + Duration::from_secs(1));
        let got = rx.try_recv().unwrap(); // the hand-off above sent exactly one
        assert_eq!(got.counters.forwarded(Direction::Request), 1);
        assert_eq!(got.latency[Series::Request as usize].len(), 1);
        assert_eq!(got.period(), Duration::from_secs(1));
        assert_eq!(w.active.counters, Counters::ZERO);
    }

    #[test]
    fn without_a_spare_the_worker_keeps_accumulating() {
        let (mut w, rx, tx, now) = recorder();
        w.received(1);
        w.flush(); // uses the only spare
        let mut first = rx.try_recv().unwrap(); // the flush above sent it
        assert_eq!(first.counters.received(), 1);
        w.received(2);
        w.maybe_flush(now + Duration::from_secs(5)); // no spare back: nothing sent
        assert!(rx.try_recv().is_err());
        w.received(3);
        first.clear();
        tx.send(first).unwrap(); // recycled, as the stats thread does
        w.flush();
        let second = rx.try_recv().unwrap(); // the flush above sent it
        assert_eq!(second.counters.received(), 5);
    }
}
