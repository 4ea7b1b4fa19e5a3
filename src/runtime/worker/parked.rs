//! The worker's side of parking: a message the core parked has its query handed to the side
//! thread; answers are taken when the waker fires (or on any turn), queries that outlived the
//! parking timeout are answered as timed out, and each resumed message leaves through the
//! same queues as any other, with its original arrival time for the latency.
//!
//! The parked messages themselves are in the core's `WorkerState`; the worker keeps only
//! their arrival times, by parking slot.

use std::time::{Duration, Instant};

use super::Worker;
use crate::proxy::{Answer, Context, DropReason, OUTPUT_BUFFER_SIZE, Ticket};
use crate::record::Recorder;

/// How often, at most, the worker looks for timed-out queries while something is parked.
const PARKING_TICK_MAX: Duration = Duration::from_millis(50);

impl<R: Recorder> Worker<R> {
    /// The core parked the message of output slot `slot` (which it left unused): ask the side
    /// thread, or, when there is none or its queue is full, resume it at once as timed out.
    pub(super) fn ask(&mut self, slot: usize, ticket: Ticket, arrival_ns: u64) {
        if let Some(at) = self.parked_arrival.get_mut(ticket.slot()) {
            *at = arrival_ns;
        }
        let query = self.state.parking.query(ticket);
        let asked = query.is_some_and(|query| self.side.ask(ticket, query));
        if !asked {
            self.resume(slot, ticket, Answer::TimedOut);
        }
    }

    /// Resumes every answered query, then every timed-out one, and sends what they produced.
    /// Answers are taken even with nothing parked, so late ones (for messages that timed out)
    /// never fill the worker's answer queue.
    pub(super) fn turn_parked(&mut self, now: Instant) {
        let mut resumed = false;
        while let Some(answered) = self.side.next_answer() {
            let slot = self.next_slot();
            self.resume(slot, answered.ticket, answered.answer);
            resumed = true;
        }
        while let Some(ticket) = self.state.parking.next_expired(now) {
            let slot = self.next_slot();
            self.resume(slot, ticket, Answer::TimedOut);
            resumed = true;
        }
        if resumed {
            self.send_queued();
        }
    }

    /// How long the worker may sleep with messages parked: a fraction of the timeout.
    pub(super) fn parking_tick(&self) -> Option<Duration> {
        if self.state.parking.is_empty() {
            return None;
        }
        let timeout = self.state.parking.limits().timeout;
        Some((timeout / 4).min(PARKING_TICK_MAX))
    }

    /// At shutdown: every message still parked is dropped and counted.
    pub(super) fn drop_parked(&mut self) {
        let dropped = self.state.parking.clear();
        (0..dropped).for_each(|_| self.recorder.dropped(DropReason::ParkedAtShutdown));
    }

    /// The next free output slot, sending the batch first when all are taken.
    fn next_slot(&mut self) -> usize {
        if self.used == self.batch {
            self.send_queued();
        }
        self.used += 1;
        self.used - 1
    }

    /// Hands `answer` to the core for the message parked under `ticket`, writing into output
    /// slot `slot`; a ticket that finds nothing (already timed out) is ignored.
    fn resume(&mut self, slot: usize, ticket: Ticket, answer: Answer) {
        let start = slot * OUTPUT_BUFFER_SIZE;
        let out = &mut self.out[start..start + OUTPUT_BUFFER_SIZE];
        let mut ctx = Context::new(&self.tables, &mut self.state);
        let Some(outcome) = self.proxy.resume(ticket, answer, &mut ctx, out) else {
            return;
        };
        let arrival_ns = self.parked_arrival.get(ticket.slot()).copied().unwrap_or(0);
        self.enqueue(slot, outcome, arrival_ns);
    }
}
