//! The register floor: the least any UDP registrar can do for sipp's REGISTER-with-digest
//! scenario (`tests/sipp/register_auth.xml`), so that a registrar's CPU per registration can be
//! set against what the kernel and a minimal answer cost on the same machine in the same run.
//!
//! One thread, one blocking socket, two system calls per datagram — `recvfrom` (sleeping in
//! the kernel until a datagram arrives, as Kamailio's UDP children do) and `sendto` — and the
//! canned answers of [`crate::sip::register`]: a 401 for a REGISTER without credentials, a 200
//! listing its Contact for one with them. No table, no nonce, no digest check: whatever a real
//! registrar spends above this is its own work.
//!
//! [`serve_epoll`] answers the same way through the I/O shape of ferrovia's workers instead —
//! a non-blocking socket in an edge-triggered `epoll` set (mio), `recvmmsg` batches drained
//! until a short batch, one `sendmmsg` per batch, an optional `epoll_wait` timeout — so that
//! the kernel's cost of that shape can be set against the blocking one's in the same run.
//!
//! Bounded: it stops after `count` answers, or when the stop flag is raised (a signal, or the
//! alarm `duration` sets); a blocking receive is interrupted by either signal.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use socket2::SockAddr;

use crate::batch::{RecvBatch, SendScratch, flush};
use crate::sip::{FloorAnswer, register_answer};

/// Largest datagram read; SIP over UDP stays far below (RFC 3261 §18.1.1).
const RECV_SLOT: usize = 16 * 1024;
/// Largest answer; the 200 copies only a few headers of the request.
const REPLY_SLOT: usize = 8 * 1024;

/// What the floor did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloorCounts {
    pub received: u64,
    pub challenged: u64,
    pub registered: u64,
    pub ignored: u64,
    pub malformed: u64,
    pub send_failed: u64,
}

impl FloorCounts {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "mode": "register-floor", "received": self.received,
            "challenged": self.challenged, "registered": self.registered,
            "ignored": self.ignored, "malformed": self.malformed,
            "send_failed": self.send_failed,
        })
    }
}

/// A blocking UDP socket bound to `listen`.
pub fn bind(listen: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::bind(listen)
}

/// Answers on `socket` until `count` answers are sent or `stop` is raised.
pub fn serve(socket: &UdpSocket, count: u64, stop: &AtomicBool) -> io::Result<FloorCounts> {
    let mut input = vec![0u8; RECV_SLOT];
    let mut output = vec![0u8; REPLY_SLOT];
    let mut counts = FloorCounts::default();
    while counts.challenged + counts.registered < count && !stop.load(Ordering::Relaxed) {
        let (len, source) = match socket.recv_from(&mut input) {
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        counts.received += 1;
        let Some(len) = counts.answer(&input[..len], &mut output) else {
            continue;
        };
        if socket.send_to(&output[..len], source).is_err() {
            counts.send_failed += 1;
        }
    }
    Ok(counts)
}

/// Answers on `socket` through an edge-triggered epoll set, `recvmmsg` / `sendmmsg` batches of
/// up to `batch` datagrams, waiting in `epoll_wait` with `timeout` (`None`: until a datagram
/// or a signal, which interrupts the wait), until `count` answers are sent or `stop` is raised.
pub fn serve_epoll(
    socket: UdpSocket,
    batch: usize,
    timeout: Option<Duration>,
    count: u64,
    stop: &AtomicBool,
) -> io::Result<FloorCounts> {
    socket.set_nonblocking(true)?;
    let mut socket = mio::net::UdpSocket::from_std(socket);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut socket, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut io = Batches::new(batch);
    let mut counts = FloorCounts::default();
    while counts.challenged + counts.registered < count && !stop.load(Ordering::Relaxed) {
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if !events.is_empty() {
            io.drain(&socket, &mut counts)?;
        }
    }
    Ok(counts)
}

impl FloorCounts {
    /// Counts `datagram` and writes its answer into `out`; the answer's length, if any.
    fn answer(&mut self, datagram: &[u8], out: &mut [u8]) -> Option<usize> {
        self.received += 1;
        match register_answer(datagram, out) {
            Ok(FloorAnswer::Challenge(len)) => {
                self.challenged += 1;
                Some(len)
            }
            Ok(FloorAnswer::Registered(len)) => {
                self.registered += 1;
                Some(len)
            }
            Ok(FloorAnswer::Ignored) => {
                self.ignored += 1;
                None
            }
            Err(_) => {
                self.malformed += 1;
                None
            }
        }
    }
}

/// The epoll shape's buffers: one receive batch, its answers and their destinations.
struct Batches {
    recv: RecvBatch,
    replies: Vec<u8>,
    lens: Vec<usize>,
    dests: Vec<SockAddr>,
    scratch: SendScratch,
}

impl Batches {
    fn new(batch: usize) -> Batches {
        let batch = batch.max(1);
        Batches {
            recv: RecvBatch::new(batch, RECV_SLOT),
            replies: vec![0; batch * REPLY_SLOT],
            lens: Vec::with_capacity(batch),
            dests: Vec::with_capacity(batch),
            scratch: SendScratch::new(batch),
        }
    }

    /// Receives, answers and sends batches until one comes back short (the kernel met an
    /// empty queue, so a later datagram raises a new edge) or the socket would block.
    fn drain(&mut self, socket: &mio::net::UdpSocket, counts: &mut FloorCounts) -> io::Result<()> {
        loop {
            let n = match self.recv.recv(socket) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.answer(socket, counts);
            if !self.recv.is_full() || n == 0 {
                return Ok(());
            }
        }
    }

    fn answer(&mut self, socket: &mio::net::UdpSocket, counts: &mut FloorCounts) {
        self.lens.clear();
        self.dests.clear();
        for datagram in self.recv.datagrams() {
            let (Some(source), false) = (datagram.source, datagram.truncated) else {
                counts.received += 1;
                counts.malformed += 1;
                continue;
            };
            let start = self.lens.len() * REPLY_SLOT;
            let Some(slot) = self.replies.get_mut(start..start + REPLY_SLOT) else {
                break;
            };
            if let Some(len) = counts.answer(datagram.bytes, slot) {
                self.lens.push(len);
                self.dests.push(SockAddr::from(source));
            }
        }
        let mut queue = self.scratch.queue();
        for ((slot, &len), dest) in self
            .replies
            .chunks(REPLY_SLOT)
            .zip(&self.lens)
            .zip(&self.dests)
        {
            queue.push(&slot[..len], Some(dest));
        }
        let done = flush(&mut queue, socket, |_, _| {});
        counts.send_failed += (done.failed + queue.pending()) as u64;
    }
}
