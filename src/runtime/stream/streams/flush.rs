//! Writing: a batch's messages go out with one `writev` per connection straight from the
//! output slots; only what the kernel does not take is copied into the connection's bounded
//! send queue, written when the socket reports writable again.

use std::io::{self, IoSlice, Write};
use std::time::Instant;

use super::super::connection::Phase;
use super::{Fate, Streams};
use crate::record::Recorder;
use crate::record::StreamEvent;
use crate::runtime::note::Note;
use crate::runtime::sys;

/// Messages gathered into one `writev`.
const GATHER: usize = 16;

/// What a write left behind.
enum Wrote {
    /// Everything the kernel took (it may be all of it).
    Bytes(usize),
    /// The connection failed and must close.
    Failed,
}

impl Streams {
    /// Writes the batch's messages, records each one's fate, moves closing connections on,
    /// and wakes the workers this batch handed messages to. `out` holds the output slots.
    pub(crate) fn flush(&mut self, out: &[u8], recorder: &mut impl Recorder) {
        if !self.outgoing.is_empty() {
            self.write_outgoing(out, recorder);
        }
        self.finish_closing_all(recorder);
        self.wake_peers();
    }

    /// Writes the batch's messages and records each one's fate with one clock read.
    fn write_outgoing(&mut self, out: &[u8], recorder: &mut impl Recorder) {
        for i in 0..self.outgoing.len() {
            if self.outgoing[i].fate == Fate::Pending {
                self.write_connection(i, out, recorder);
            }
        }
        let sent_ns = sys::realtime_ns();
        for entry in self.outgoing.drain(..) {
            match entry.fate {
                Fate::Sent => entry.note.sent(recorder, sent_ns),
                Fate::Pending | Fate::Failed => recorder.send_error(),
            }
        }
    }

    /// Writes every pending message of the connection `outgoing[first]` is for, in order.
    fn write_connection(&mut self, first: usize, out: &[u8], recorder: &mut impl Recorder) {
        let slot = self.outgoing[first].connection;
        let mut next = first;
        while let Some((count, last)) = self.gather(slot, next) {
            if !self.write_run(slot, next, count, out) {
                self.fail_pending(slot);
                return self.close(slot, StreamEvent::ClosedSendOverflow, recorder);
            }
            next = last + 1;
        }
        self.drain_queue(slot, recorder);
    }

    /// The number of pending entries for `slot` from `from` on (at most [`GATHER`]), and the
    /// index of the last one.
    fn gather(&self, slot: u32, from: usize) -> Option<(usize, usize)> {
        let mut count = 0;
        let mut last = None;
        for (i, e) in self.outgoing.iter().enumerate().skip(from) {
            if e.connection == slot && e.fate == Fate::Pending {
                count += 1;
                last = Some(i);
                if count == GATHER {
                    break;
                }
            }
        }
        last.map(|l| (count, l))
    }

    /// Writes (or queues) the next `count` pending entries for `slot`, found from `from`;
    /// false when the send queue overflowed.
    fn write_run(&mut self, slot: u32, from: usize, count: usize, out: &[u8]) -> bool {
        let mut picked = [0usize; GATHER];
        let mut n = 0;
        for (i, e) in self.outgoing.iter().enumerate().skip(from) {
            if n < count && e.connection == slot && e.fate == Fate::Pending {
                picked[n] = i;
                n += 1;
            }
        }
        let wrote = self.write_direct(slot, &picked[..n], out);
        let mut written = match wrote {
            Wrote::Bytes(written) => written,
            Wrote::Failed => {
                picked[..n]
                    .iter()
                    .for_each(|&i| self.outgoing[i].fate = Fate::Failed);
                return true;
            }
        };
        for &i in &picked[..n] {
            let entry = self.outgoing[i];
            let bytes = out
                .get(entry.start..entry.start + entry.len)
                .unwrap_or_default();
            let taken = written.min(bytes.len());
            written -= taken;
            if taken < bytes.len() && !self.queue(slot, &bytes[taken..]) {
                return false;
            }
            self.outgoing[i].fate = Fate::Sent;
        }
        true
    }

    /// One `writev` of the entries' bytes when the connection can take them directly (open,
    /// nothing queued before them); else nothing is written.
    fn write_direct(&mut self, slot: u32, picked: &[usize], out: &[u8]) -> Wrote {
        let Some(conn) = self.table.get_mut(slot) else {
            return Wrote::Failed;
        };
        if matches!(conn.phase, Phase::Connecting(_)) || !conn.tx.is_empty() || !conn.direct() {
            return Wrote::Bytes(0);
        }
        let mut slices = [IoSlice::new(&[]); GATHER];
        for (s, &i) in slices.iter_mut().zip(picked) {
            let e = &self.outgoing[i];
            *s = IoSlice::new(out.get(e.start..e.start + e.len).unwrap_or_default());
        }
        loop {
            match conn.socket.write_vectored(&slices[..picked.len()]) {
                Ok(n) => return Wrote::Bytes(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Wrote::Bytes(0),
                Err(_) => return Wrote::Failed,
            }
        }
    }

    /// Queues a message (or its unwritten tail) on `slot`; false on overflow.
    fn queue(&mut self, slot: u32, bytes: &[u8]) -> bool {
        match self.table.get_mut(slot) {
            Some(conn) => conn.queue_message(bytes, true).is_ok(),
            None => false,
        }
    }

    /// Marks every still-pending entry for `slot` failed (its connection is closing).
    fn fail_pending(&mut self, slot: u32) {
        for e in self.outgoing.iter_mut() {
            if e.connection == slot && e.fate == Fate::Pending {
                e.fate = Fate::Failed;
            }
        }
    }

    /// Writes `slot`'s send queue until it is empty or the kernel would block (so that a
    /// writable event follows); closes the connection on an error.
    pub(super) fn drain_queue(&mut self, slot: u32, recorder: &mut impl Recorder) {
        let Some(conn) = self.table.get_mut(slot) else {
            return;
        };
        if matches!(conn.phase, Phase::Connecting(_)) || !conn.has_output() {
            return;
        }
        match conn.write_out() {
            Ok(_) => {}
            Err(_) => {
                self.fail_pending(slot);
                self.close(slot, StreamEvent::ClosedError, recorder);
            }
        }
    }

    /// Writes one message that is not in an output slot (a hand-off, a pong) on `slot`.
    pub(super) fn send_bytes(
        &mut self,
        slot: u32,
        bytes: &[u8],
        note: Option<Note>,
        recorder: &mut impl Recorder,
    ) {
        let queued = match self.table.get_mut(slot) {
            Some(conn) => conn.queue_message(bytes, note.is_some()).is_ok(),
            None => false,
        };
        if !queued {
            if note.is_some() {
                recorder.send_error();
            }
            return self.close(slot, StreamEvent::ClosedSendOverflow, recorder);
        }
        self.drain_queue(slot, recorder);
        if let Some(note) = note {
            note.sent(recorder, sys::realtime_ns());
        }
        self.finish_closing(slot, recorder);
    }

    /// Answers a double-CRLF ping on `slot` with a single CRLF (RFC 5626 §3.5.1).
    pub(crate) fn pong(&mut self, slot: u32, recorder: &mut impl Recorder) {
        recorder.stream_event(StreamEvent::Ping);
        self.send_bytes(slot, b"\r\n", None, recorder);
    }

    /// Acts on connections that reported writable: finishes connects, writes send queues.
    pub(crate) fn writable(&mut self, now: Instant, recorder: &mut impl Recorder) {
        while let Some(slot) = self.writable.pop() {
            let Some(conn) = self.table.get_mut(slot) else {
                continue;
            };
            conn.write_ready = false;
            if matches!(conn.phase, Phase::Connecting(_)) {
                if !self.finish_connect(slot, recorder) {
                    continue;
                }
                // A readable edge that came while connecting was not acted on.
                self.read_again(slot);
            }
            if let Some(conn) = self.table.get_mut(slot) {
                conn.last_active = now;
            }
            self.drain_queue(slot, recorder);
            self.finish_closing(slot, recorder);
        }
    }
}
