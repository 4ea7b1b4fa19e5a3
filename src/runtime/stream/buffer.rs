//! A connection's two byte buffers.
//!
//! [`ReadBuffer`] holds what was read and not yet framed. It starts small and doubles, up to
//! a fixed limit, only when one message needs the room; before each read the unread tail
//! (the start of the next message) moves to the front, so a long-lived connection allocates
//! nothing once it has grown to its largest message.
//!
//! [`SendQueue`] holds what the kernel would not take yet (and, while an outbound connection
//! is being set up, everything sent to it). It is bounded: a push past the bound fails, and
//! the caller drops the connection rather than let a stalled peer grow memory.

use std::io::{self, Read, Write};

/// Bytes read from a connection, from the start of the next message.
pub(crate) struct ReadBuffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
    limit: usize,
}

impl ReadBuffer {
    /// A buffer of `initial` bytes that may grow to `limit` (at least `initial`).
    pub(crate) fn new(initial: usize, limit: usize) -> ReadBuffer {
        let initial = initial.clamp(1, limit.max(1));
        ReadBuffer {
            bytes: vec![0; initial].into_boxed_slice(),
            start: 0,
            end: 0,
            limit: limit.max(initial),
        }
    }

    /// The unread bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// The unread bytes, to change in place (a WebSocket payload is unmasked there).
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.end]
    }

    /// Removes `data()[at..at + n]`, moving the bytes behind it up (a WebSocket fragment's
    /// header or a control frame between fragments). Out of bounds: clamped.
    pub(crate) fn cut(&mut self, at: usize, n: usize) {
        let from = self.start.saturating_add(at).min(self.end);
        let to = from.saturating_add(n).min(self.end);
        self.bytes.copy_within(to..self.end, from);
        self.end -= to - from;
    }

    /// The limit the buffer may grow to.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// `data()[range]` without a panic: empty when out of bounds.
    #[cfg(test)]
    pub(crate) fn slice(&self, len: usize) -> &[u8] {
        self.data().get(..len).unwrap_or_default()
    }

    /// The last read filled the buffer to its end (the kernel may hold more).
    pub(crate) fn is_full(&self) -> bool {
        self.end == self.bytes.len()
    }

    /// Drops `n` bytes from the front (all of them when `n` is larger).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `source` into the free room, first moving the unread bytes to the
    /// front and growing (up to the limit) when the buffer is full. `Ok(Some(0))` is the end
    /// of the stream; `Ok(None)` means the buffer is full at its limit and nothing was read.
    pub(crate) fn read_from(&mut self, source: &mut impl Read) -> io::Result<Option<usize>> {
        if !self.make_room() {
            return Ok(None);
        }
        let n = source.read(&mut self.bytes[self.end..])?;
        self.end += n;
        Ok(Some(n))
    }

    /// Moves the unread bytes (the start of a message, usually short) to the front, then
    /// makes sure there is free room after them, growing when one message fills the buffer;
    /// false when the buffer is full at its limit.
    fn make_room(&mut self) -> bool {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end < self.bytes.len() {
            return true;
        }
        if self.bytes.len() >= self.limit {
            return false;
        }
        let grown = (self.bytes.len() * 2).min(self.limit);
        let mut bytes = vec![0; grown].into_boxed_slice();
        bytes[..self.end].copy_from_slice(&self.bytes[..self.end]);
        self.bytes = bytes;
        true
    }

    /// The buffer's current size.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

/// The push would take the queue past its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

/// Bytes waiting to be written, in order, with the count of messages among them.
pub(crate) struct SendQueue {
    bytes: Vec<u8>,
    start: usize,
    limit: usize,
    messages: usize,
}

/// Capacity a drained queue keeps; a burst larger than this is given back once written.
const KEEP: usize = 64 * 1024;

impl SendQueue {
    pub(crate) fn new(limit: usize) -> SendQueue {
        SendQueue {
            bytes: Vec::new(),
            start: 0,
            limit,
            messages: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// Messages queued and not yet wholly written (approximate once a write was partial).
    pub(crate) fn messages(&self) -> usize {
        self.messages
    }

    /// Queues `bytes` (one message, or its unwritten tail when `message` is false).
    pub(crate) fn push(&mut self, bytes: &[u8], message: bool) -> Result<(), Overflow> {
        if self.bytes.len() - self.start + bytes.len() > self.limit {
            return Err(Overflow);
        }
        if self.start > 0 {
            // Drop what was written so the queue never holds more than its bound.
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(bytes);
        self.messages += usize::from(message);
        Ok(())
    }

    /// Writes as much as `sink` takes; `Ok(true)` once the queue is empty.
    pub(crate) fn write_to(&mut self, sink: &mut impl Write) -> io::Result<bool> {
        while !self.is_empty() {
            match sink.write(&self.bytes[self.start..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.bytes.clear();
        self.start = 0;
        self.messages = 0;
        if self.bytes.capacity() > KEEP {
            self.bytes.shrink_to(KEEP);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes `chunk` at a time.
    struct Chunks<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_read_buffer_grows_to_its_limit_and_no_further() {
        let data = [7u8; 100];
        let mut source = Chunks {
            bytes: &data,
            chunk: 100,
        };
        let mut buf = ReadBuffer::new(16, 40);
        let mut total = 0;
        while let Some(n) = buf.read_from(&mut source).unwrap() {
            total += n;
        }
        assert_eq!((total, buf.capacity(), buf.data().len()), (40, 40, 40));
        buf.consume(30);
        assert_eq!(buf.read_from(&mut source).unwrap(), Some(30));
        assert_eq!(buf.data().len(), 40);
        buf.consume(1);
        buf.consume(usize::MAX);
        assert!(buf.data().is_empty());
        assert_eq!(buf.slice(5), b"");
    }

    /// A writer that takes at most `room` bytes in total, then would block.
    struct Room {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Room {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.room.min(buf.len());
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_send_queue_is_bounded_and_drains_in_order() {
        let mut q = SendQueue::new(10);
        q.push(b"hello", true).unwrap();
        q.push(b"world", true).unwrap();
        assert_eq!(q.push(b"!", true), Err(Overflow));
        assert_eq!(q.messages(), 2);
        let mut sink = Room {
            taken: Vec::new(),
            room: 7,
        };
        assert!(!q.write_to(&mut sink).unwrap());
        q.push(b"!!", false).unwrap();
        sink.room = 100;
        assert!(q.write_to(&mut sink).unwrap());
        assert_eq!(sink.taken, b"helloworld!!");
        assert!(q.is_empty());
        assert_eq!(q.messages(), 0);
    }
}
