//! What a worker reports about the messages and connections it moves, and to whom.
//!
//! [`Recorder`] is the hook the runtime calls on the worker's own thread, once per message
//! outcome and once per stream connection change ([`StreamEvent`]); the statistics
//! (`stats::WorkerStats`) implement it. It sits below both so that neither imports the other:
//! `runtime` → `record` ← `stats`.

#![forbid(unsafe_code)]

mod event;

use std::time::Instant;

use crate::proxy::{Direction, DropReason};

pub use event::StreamEvent;

/// Per-worker sink for the hot path's events. Must not lock or allocate per call.
pub trait Recorder: Send + 'static {
    /// `n` messages were received (a batch of datagrams, or one framed stream message).
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
