//! The reflector: a UDP SIP "UAS" that answers every request but ACK with a stateless 200 OK
//! (see [`crate::sip::reply`]) sent back to the datagram's source address, and counts what it did.
//!
//! Batched: one `recvmmsg` brings in up to `batch` requests, one `sendmmsg` answers them. It runs
//! until its duration ends or the stop flag is raised; `threads > 1` binds that many sockets to
//! the same address with `SO_REUSEPORT`. One thread may also serve several addresses
//! ([`bind_many`], [`run_sets`]): one process answering as several destinations wakes like one
//! destination, not like several processes. Malformed datagrams are counted and skipped.

use std::io;
use std::net::SocketAddr;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use socket2::SockAddr;

use crate::batch::{RecvBatch, SendScratch, flush};
use crate::net::{Sharing, udp_socket};
use crate::sip::{Answer, answer};

/// The To tag of every 200 the reflector sends.
const TO_TAG: &[u8] = b"ferrovia-reflector";
/// Largest datagram read; SIP over UDP stays far below (RFC 3261 §18.1.1).
const RECV_SLOT: usize = 16 * 1024;
/// Largest answer; the 200 copies only a few headers of the request.
const REPLY_SLOT: usize = 8 * 1024;
/// How often the loop looks at the stop flag and the clock when idle.
const IDLE_TICK: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
pub struct ReflectorConfig {
    pub listen: SocketAddr,
    pub threads: usize,
    pub batch: usize,
    pub duration: Duration,
}

/// What the reflector did, summed over its threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReflectorCounts {
    pub received: u64,
    pub answered: u64,
    pub acks: u64,
    pub responses: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub send_failed: u64,
    /// Answers dropped because the socket's send buffer was full.
    pub send_blocked: u64,
}

impl AddAssign for ReflectorCounts {
    fn add_assign(&mut self, o: ReflectorCounts) {
        self.received += o.received;
        self.answered += o.answered;
        self.acks += o.acks;
        self.responses += o.responses;
        self.malformed += o.malformed;
        self.truncated += o.truncated;
        self.send_failed += o.send_failed;
        self.send_blocked += o.send_blocked;
    }
}

impl ReflectorCounts {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "mode": "reflect", "received": self.received, "answered": self.answered,
            "acks": self.acks, "responses": self.responses, "malformed": self.malformed,
            "truncated": self.truncated, "send_failed": self.send_failed,
            "send_blocked": self.send_blocked,
        })
    }
}

/// Binds the reflector's sockets (port 0 picks one port for all threads).
pub fn bind(config: &ReflectorConfig) -> io::Result<Vec<UdpSocket>> {
    let first = udp_socket(config.listen, Sharing::ReusePort)?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..config.threads.max(1) {
        sockets.push(udp_socket(addr, Sharing::ReusePort)?);
    }
    Ok(sockets)
}

/// Binds `config.listen` and every address of `more` once per thread: set `t` holds thread
/// `t`'s socket on each address, in that order (port 0 picks one port per address).
pub fn bind_many(config: &ReflectorConfig, more: &[SocketAddr]) -> io::Result<Vec<Vec<UdpSocket>>> {
    let threads = config.threads.max(1);
    let mut sets: Vec<Vec<UdpSocket>> = (0..threads).map(|_| Vec::new()).collect();
    for &listen in std::iter::once(&config.listen).chain(more) {
        let one = ReflectorConfig { listen, ..*config };
        for (set, socket) in sets.iter_mut().zip(bind(&one)?) {
            set.push(socket);
        }
    }
    Ok(sets)
}

/// Serves on every socket (one thread each) until the duration ends or `stop` is raised.
pub fn run(
    sockets: Vec<UdpSocket>,
    config: &ReflectorConfig,
    stop: &AtomicBool,
) -> io::Result<ReflectorCounts> {
    run_sets(sockets.into_iter().map(|s| vec![s]).collect(), config, stop)
}

/// Serves every set of sockets (one thread each, [`bind_many`]) until the duration ends or
/// `stop` is raised.
pub fn run_sets(
    sets: Vec<Vec<UdpSocket>>,
    config: &ReflectorConfig,
    stop: &AtomicBool,
) -> io::Result<ReflectorCounts> {
    let deadline = Instant::now() + config.duration;
    let batch = config.batch;
    std::thread::scope(|scope| {
        let workers: Vec<_> = sets
            .into_iter()
            .map(|sockets| scope.spawn(move || serve(sockets, batch, deadline, stop)))
            .collect();
        let mut total = ReflectorCounts::default();
        for worker in workers {
            let counts = worker
                .join()
                .map_err(|_| io::Error::other("reflector thread panicked"))??;
            total += counts;
        }
        Ok(total)
    })
}

fn serve(
    mut sockets: Vec<UdpSocket>,
    batch: usize,
    deadline: Instant,
    stop: &AtomicBool,
) -> io::Result<ReflectorCounts> {
    let poll = Poll::new()?;
    for (i, socket) in sockets.iter_mut().enumerate() {
        poll.registry()
            .register(socket, Token(i), Interest::READABLE)?;
    }
    let mut poll = poll;
    let mut events = Events::with_capacity(8);
    let mut io = ReplyBuffers::new(batch);
    let mut counts = ReflectorCounts::default();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match poll.poll(&mut events, Some(IDLE_TICK)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if let Some(socket) = sockets.get(event.token().0) {
                drain(socket, &mut io, &mut counts)?;
            }
        }
    }
    Ok(counts)
}

/// Receives and answers until the socket has nothing more.
fn drain(
    socket: &UdpSocket,
    io: &mut ReplyBuffers,
    counts: &mut ReflectorCounts,
) -> io::Result<()> {
    loop {
        match io.recv.recv(socket) {
            Ok(_) => io.answer_batch(socket, counts),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One thread's buffers: received requests, built answers, their destinations.
struct ReplyBuffers {
    recv: RecvBatch,
    replies: Vec<u8>,
    reply_lens: Vec<usize>,
    dests: Vec<SockAddr>,
    scratch: SendScratch,
}

impl ReplyBuffers {
    fn new(batch: usize) -> ReplyBuffers {
        let batch = batch.max(1);
        ReplyBuffers {
            recv: RecvBatch::new(batch, RECV_SLOT),
            replies: vec![0; batch * REPLY_SLOT],
            reply_lens: Vec::with_capacity(batch),
            dests: Vec::with_capacity(batch),
            scratch: SendScratch::new(batch),
        }
    }

    /// Builds an answer for each datagram of the last receive, then sends them all.
    fn answer_batch(&mut self, socket: &UdpSocket, counts: &mut ReflectorCounts) {
        self.reply_lens.clear();
        self.dests.clear();
        for datagram in self.recv.datagrams() {
            counts.received += 1;
            let Some(source) = datagram.source else {
                counts.malformed += 1;
                continue;
            };
            if datagram.truncated {
                counts.truncated += 1;
                continue;
            }
            // One reply slot per datagram a receive can bring: the next free slot always exists.
            let start = self.reply_lens.len() * REPLY_SLOT;
            let Some(slot) = self.replies.get_mut(start..start + REPLY_SLOT) else {
                break;
            };
            match answer(datagram.bytes, TO_TAG, slot) {
                Ok(Answer::Ok(len)) => {
                    self.reply_lens.push(len);
                    self.dests.push(SockAddr::from(source));
                }
                Ok(Answer::Ack) => counts.acks += 1,
                Ok(Answer::Response) => counts.responses += 1,
                Err(_) => counts.malformed += 1,
            }
        }
        self.send_replies(socket, counts);
    }

    fn send_replies(&mut self, socket: &UdpSocket, counts: &mut ReflectorCounts) {
        let mut queue = self.scratch.queue();
        let slots = self.replies.chunks(REPLY_SLOT);
        for ((slot, &len), dest) in slots.zip(&self.reply_lens).zip(&self.dests) {
            queue.push(&slot[..len], Some(dest));
        }
        let done = flush(&mut queue, socket, |_, _| {});
        counts.answered += done.sent as u64;
        counts.send_failed += done.failed as u64;
        counts.send_blocked += queue.pending() as u64;
    }
}
