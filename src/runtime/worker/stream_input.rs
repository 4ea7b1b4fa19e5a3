//! The worker's TCP turn: read each ready connection, split what was read into messages,
//! and hand each message to the core with its own output slot, exactly as datagrams are.
//!
//! A connection is read at most [`READS_PER_TURN`] times per turn, so one busy client cannot
//! starve the others; a read that leaves room in the buffer means the kernel had no more, and
//! a later arrival raises a new edge (as for a short UDP batch) — except after the kernel
//! reported the peer's FIN, which raises no further edge: then it is read to the end. A closing connection's input
//! is read and discarded, so that closing it does not reset the peer before it reads our last
//! reply.

use std::io;
use std::time::Instant;

use super::Worker;
use crate::proxy::{Context, Input, OUTPUT_BUFFER_SIZE};
use crate::record::Recorder;
use crate::runtime::stream::{Phase, StreamEvent};
use crate::runtime::sys;
use crate::sip::{Flow, Frame, Transport, next_frame};

/// Reads from one connection before the loop turns to the others.
const READS_PER_TURN: usize = 4;

/// What one read did.
enum Read {
    /// Bytes arrived; `drained` when the kernel had no more.
    Data { drained: bool },
    /// Nothing more now, or the connection is gone.
    Done,
    /// Try again (interrupted).
    Again,
}

impl<R: Recorder> Worker<R> {
    /// One TCP turn (see the module docs of `worker`).
    pub(super) fn turn_streams(&mut self, now: Instant) {
        self.streams.receive_handoffs(&mut self.recorder);
        self.streams.accept(&mut self.recorder);
        self.streams.writable(now, &mut self.recorder);
        let listed = self.streams.readable().len();
        for i in 0..listed {
            let slot = self.streams.readable()[i];
            if let Some(conn) = self.streams.connection_mut(slot) {
                conn.read_ready = false;
                if !self.serve(slot, now) {
                    self.streams.read_again(slot);
                }
            }
        }
        self.streams.read_done(listed);
        self.send_queued();
        self.streams.sweep(now, &mut self.recorder);
        // A failed TCP/TLS connect to a group destination takes it down.
        let groups = self.tables.groups.as_deref();
        self.streams.take_failed_connects(|addr| {
            if let Some(groups) = groups {
                groups.note_unreachable(addr, Transport::Tcp, now);
            }
        });
    }

    /// Reads `slot` until the kernel has no more (`true`) or its turn is over (`false`).
    fn serve(&mut self, slot: u32, now: Instant) -> bool {
        let arrival_ns = sys::realtime_ns();
        for _ in 0..READS_PER_TURN {
            match self.read_once(slot, now) {
                Read::Data { drained } => {
                    self.frame(slot, now, arrival_ns);
                    if drained {
                        return true;
                    }
                }
                Read::Done => return true,
                Read::Again => {}
            }
        }
        false
    }

    fn read_once(&mut self, slot: u32, now: Instant) -> Read {
        let Some(conn) = self.streams.connection_mut(slot) else {
            return Read::Done;
        };
        let closing = match conn.phase {
            Phase::Connecting(_) => return Read::Done,
            Phase::Open => false,
            Phase::Closing(..) => true,
        };
        if closing {
            conn.rx.consume(usize::MAX);
        }
        let read = conn.read_in();
        if let Some(event) = conn.handshake_news() {
            self.streams.handshake_done(slot, event, &mut self.recorder);
        }
        let Some(conn) = self.streams.connection_mut(slot) else {
            return Read::Done;
        };
        match read {
            Ok(Some(0)) => {
                self.streams.end_of_stream(slot, now, &mut self.recorder);
                Read::Done
            }
            Ok(Some(_)) if closing => Read::Again,
            Ok(Some(_)) => {
                conn.last_active = now;
                Read::Data {
                    drained: conn.drained(),
                }
            }
            // Full at the limit: framing decides before that, so this is a peer that kept
            // sending after its oversized message was answered.
            Ok(None) => {
                self.streams
                    .close(slot, StreamEvent::ClosedOversized, &mut self.recorder);
                Read::Done
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Done,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Read::Again,
            Err(_) => {
                self.streams
                    .close(slot, StreamEvent::ClosedError, &mut self.recorder);
                Read::Done
            }
        }
    }

    /// Hands every whole message now in `slot`'s buffer to the core.
    fn frame(&mut self, slot: u32, now: Instant, arrival_ns: u64) {
        if self
            .streams
            .connection(slot)
            .is_some_and(|c| c.layers.ws.is_some())
        {
            return self.frame_ws(slot, now, arrival_ns);
        }
        let at = self.streams.reference(slot);
        let limit = self.streams.max_message();
        let mut completed = false;
        loop {
            let Some(conn) = self.streams.connection(slot) else {
                return;
            };
            if self.streams.reference(slot) != at || !conn.usable() {
                return;
            }
            let frame = next_frame(conn.rx.data(), limit);
            if frame == Frame::Partial {
                break;
            }
            completed |= matches!(frame, Frame::Message(_));
            let (consumed, closing) = self.take(slot, frame, now, arrival_ns);
            if self.streams.reference(slot) != at {
                return; // closed while its message was sent (the slot may be reused)
            }
            if let Some(conn) = self.streams.connection_mut(slot) {
                conn.rx.consume(consumed);
            }
            if let Some(event) = closing {
                let recorder = &mut self.recorder;
                return self.streams.close_after_sending(slot, event, now, recorder);
            }
        }
        if let Some(conn) = self.streams.connection_mut(slot) {
            conn.note_progress(completed, now);
        }
    }

    /// Acts on one frame of `slot`'s buffer; returns the bytes it took and, when the
    /// connection must close after its reply, why.
    fn take(
        &mut self,
        slot: u32,
        frame: Frame,
        now: Instant,
        arrival_ns: u64,
    ) -> (usize, Option<StreamEvent>) {
        match frame {
            Frame::Message(len) => {
                self.streams.note_read(slot, len);
                self.handle(slot, (0, len), false, now, arrival_ns);
                (len, None)
            }
            Frame::Ping => {
                self.streams.pong(slot, &mut self.recorder);
                (4, None)
            }
            Frame::Skip(n) => (n, None),
            Frame::Partial => (0, None),
            Frame::Unframed(len) => {
                self.handle(slot, (0, len), false, now, arrival_ns);
                (len, Some(StreamEvent::ClosedUnframed))
            }
            Frame::Oversized(len) => {
                self.handle(slot, (0, len), true, now, arrival_ns);
                (len, Some(StreamEvent::ClosedOversized))
            }
        }
    }

    /// Hands `len` bytes from `start` of `slot`'s buffer to the core in the next output slot.
    pub(super) fn handle(
        &mut self,
        slot: u32,
        (start, len): (usize, usize),
        oversized: bool,
        now: Instant,
        arrival_ns: u64,
    ) {
        if self.used == self.batch {
            self.send_queued();
        }
        let k = self.used;
        self.used += 1;
        let id = self.streams.reference(slot).id();
        let Some(conn) = self.streams.connection(slot) else {
            return;
        };
        let end = start.saturating_add(len);
        let input = Input {
            data: conn.rx.data().get(start..end).unwrap_or_default(),
            flow: Flow::new(conn.layers.transport, conn.peer, conn.local).on(id),
            now,
        };
        let at = k * OUTPUT_BUFFER_SIZE;
        let out = &mut self.out[at..at + OUTPUT_BUFFER_SIZE];
        let outcome = if oversized {
            self.proxy.handle_oversized(input, out)
        } else {
            let mut ctx = Context::new(&self.tables, &mut self.state);
            super::screen_then_handle(self.protect.as_deref(), &self.proxy, &mut ctx, input, out)
        };
        self.recorder.received(1);
        self.enqueue(k, outcome, arrival_ns);
    }
}
