//! The resolver's I/O: many [`Procedure`]s in flight, each question sent from a UDP socket of
//! its own and matched to its reply by socket, server, id and question; bounded retries over
//! the servers in turn; TCP when a reply is truncated; results written to the shared
//! [`DnsCache`].
//!
//! [`Resolver::resolve`] may be called from any thread (the side service's, a group
//! refresher's); one thread of its own (`ferrovia-resolve-rx`) waits for replies on every
//! question's socket (a `mio` poll) and runs the timers. Requests for a lookup already in
//! flight wait for the same procedure.
//!
//! Against off-path forgery (RFC 5452 §9.2: an unpredictable id *and* source port): every
//! attempt — every question, every retry — is sent from a fresh socket on an ephemeral port
//! the kernel chooses (Linux starts its search at a random point of `ip_local_port_range`),
//! connected to the server asked, so the kernel drops datagrams from anywhere else; the id is
//! a keyed hash of a counter; a reply must come from the server asked, on that attempt's
//! socket, with its id and its question (RFC 5452 §4.1–4.4), else it is counted as malformed
//! and ignored. A server on loopback is asked from a loopback address. Queries offer EDNS(0)
//! with a 1232-byte payload (RFC 6891); a server that answers FORMERR to it is asked again
//! without. A truncated reply is asked again over TCP (RFC 7766 §5), on a new connection to
//! the same server, on a short-lived thread so that the others' replies keep being read.

use std::collections::HashMap;
use std::hash::Hasher;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token};
use siphasher::sip::SipHasher13;

use super::cache::DnsCache;
use super::config::DnsConfig;
use super::lookup::Lookup;
use super::rfc3263::{Heard, Outcome, Procedure, Step, Target};
use super::wire::{self, Kind, Rcode};

/// What a lookup came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Found(Vec<Target>),
    NotFound,
    Failed,
}

/// Called once with the resolution (on the resolver's thread: it must not block).
pub type Done = Box<dyn FnOnce(&Resolution) + Send>;

/// The longest reply read over UDP (we offer 1232 bytes in EDNS; a server may still send
/// more).
const UDP_REPLY: usize = 4096;

/// The longest the reader waits before looking at its timers and stop flag.
const TICK: Duration = Duration::from_millis(200);

/// Lookups in flight at once (each holds one socket while it waits); more are answered as
/// failed.
const MAX_IN_FLIGHT: usize = 1024;

/// TCP retries of truncated replies at once (a thread each, for at most twice the timeout).
const MAX_TCP: usize = 16;

/// One attempt in flight: its socket (connected to `server`) and the token it is polled by.
struct Attempt {
    socket: UdpSocket,
    token: Token,
    server: SocketAddr,
}

struct Running {
    procedure: Procedure,
    question: (String, Kind),
    id: u16,
    /// Attempts made for the current question.
    attempt: u32,
    deadline: Instant,
    waiting: Vec<Done>,
    /// The attempt waiting for its reply; `None` when its send failed (the timer retries).
    asked: Option<Attempt>,
    /// Whether the question offers EDNS(0): until a server answers FORMERR to it.
    edns: bool,
}

#[derive(Default)]
struct State {
    running: HashMap<Lookup, Running>,
    by_token: HashMap<Token, Lookup>,
    counter: u64,
    next_token: usize,
}

struct Shared {
    registry: Registry,
    servers: Vec<SocketAddr>,
    config: DnsConfig,
    cache: Arc<DnsCache>,
    state: Mutex<State>,
    id_key: [u8; 16],
    stop: AtomicBool,
    /// TCP retries running (each on a thread of its own).
    tcp_in_flight: AtomicUsize,
}

/// A running resolver. Dropping it stops its thread.
pub struct Resolver {
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
}

impl Resolver {
    /// Starts the reader thread; sockets are opened per question.
    pub fn start(
        config: DnsConfig,
        cache: Arc<DnsCache>,
        id_key: [u8; 16],
    ) -> io::Result<Resolver> {
        let servers = config.effective_servers();
        let poll = Poll::new()?;
        let shared = Arc::new(Shared {
            registry: poll.registry().try_clone()?,
            servers,
            config,
            cache,
            state: Mutex::new(State::default()),
            id_key,
            stop: AtomicBool::new(false),
            tcp_in_flight: AtomicUsize::new(0),
        });
        let reader = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("ferrovia-resolve-rx".into())
                .spawn(move || shared.read_loop(poll))?
        };
        Ok(Resolver {
            shared,
            reader: Some(reader),
        })
    }

    /// The servers it asks.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.shared.servers
    }

    /// Resolves `lookup`, then calls `done`; joins a procedure in flight for the same lookup.
    pub fn resolve(&self, lookup: Lookup, done: Done) {
        let mut state = self.shared.lock();
        if let Some(running) = state.running.get_mut(&lookup) {
            running.waiting.push(done);
            return;
        }
        if state.running.len() >= MAX_IN_FLIGHT {
            drop(state);
            self.shared.cache.note_failure();
            done(&Resolution::Failed);
            return;
        }
        let (procedure, step) = Procedure::start_with(&lookup, self.shared.config.ipv6_first);
        let Step::Ask(name, kind) = step else {
            drop(state);
            done(&Resolution::Failed);
            return;
        };
        let running = Running {
            procedure,
            question: (name, kind),
            id: 0,
            attempt: 0,
            deadline: Instant::now(),
            waiting: vec![done],
            asked: None,
            edns: true,
        };
        state.running.insert(lookup, running);
        let finished = self.shared.ask(&mut state, lookup);
        drop(state);
        Shared::finish(finished);
    }

    /// Resolves `lookup` and waits for the outcome (at start, off the workers).
    pub fn resolve_blocking(&self, lookup: Lookup) -> Resolution {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.resolve(
            lookup,
            Box::new(move |r| {
                let _ = tx.send(r.clone());
            }),
        );
        // Bounded: every question ends after attempts × servers × timeout, per question.
        let c = &self.shared.config;
        let bound = c.timeout * (c.attempts.max(1) * self.shared.servers.len() as u32 + 1) * 24;
        rx.recv_timeout(bound).unwrap_or(Resolution::Failed)
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Callbacks to call once the state's lock is released, with their resolution.
type Finished = Vec<(Vec<Done>, Resolution)>;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A callback never runs under the lock, so a poisoned lock only means a panic in
        // this module's own bookkeeping: keep going with the state as it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the current question of `lookup` to the next server, from a fresh socket with a
    /// fresh id (the previous attempt's socket is closed: a late reply to it is dropped by the
    /// kernel); returns what finished when the question cannot be sent at all.
    fn ask(&self, state: &mut State, lookup: Lookup) -> Finished {
        let id = self.fresh_id(state);
        let token = Token(state.next_token);
        state.next_token = state.next_token.wrapping_add(1);
        let Some(running) = state.running.get_mut(&lookup) else {
            return Vec::new();
        };
        if let Some(mut old) = running.asked.take() {
            let _ = self.registry.deregister(&mut old.socket);
            state.by_token.remove(&old.token);
        }
        running.id = id;
        running.deadline = Instant::now() + self.config.timeout;
        let server = self.servers[running.attempt as usize % self.servers.len()];
        running.attempt += 1;
        let (name, kind) = (&running.question.0, running.question.1);
        let query = match running.edns {
            true => wire::query(id, name, kind),
            false => wire::query_without_edns(id, name, kind),
        };
        self.cache.counters.queries.fetch_add(1, Relaxed);
        let query = match query {
            Ok(query) => query,
            Err(e) => {
                debug!("dns: cannot ask {name:?}: {}", e.0);
                return self.advance(state, lookup, Heard::Failed);
            }
        };
        match self.send(&query, server, token) {
            Ok(socket) => {
                running.asked = Some(Attempt {
                    socket,
                    token,
                    server,
                });
                state.by_token.insert(token, lookup);
            }
            // No route, no socket left: a lost attempt, which the timer retries.
            Err(e) => debug!("dns: send to {server}: {e}"),
        }
        Vec::new()
    }

    /// Opens a socket for one attempt and sends `query` on it. RFC 5452 §9.2: a new
    /// ephemeral port per attempt, chosen by the kernel; connected to `server`, so that the
    /// kernel drops what anyone else sends to it. A server on loopback is asked from
    /// loopback (nothing listens beyond it for a local cache).
    fn send(&self, query: &[u8], server: SocketAddr, token: Token) -> io::Result<UdpSocket> {
        let ip: IpAddr = match (server.is_ipv6(), server.ip().is_loopback()) {
            (true, true) => Ipv6Addr::LOCALHOST.into(),
            (true, false) => Ipv6Addr::UNSPECIFIED.into(),
            (false, true) => Ipv4Addr::LOCALHOST.into(),
            (false, false) => Ipv4Addr::UNSPECIFIED.into(),
        };
        let mut socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        socket.connect(server)?;
        socket.send(query)?;
        self.registry
            .register(&mut socket, token, Interest::READABLE)?;
        Ok(socket)
    }

    /// An id for a new attempt: a keyed hash of a counter (RFC 5452 §9.2: unpredictable).
    fn fresh_id(&self, state: &mut State) -> u16 {
        state.counter += 1;
        let mut h = SipHasher13::new_with_key(&self.id_key);
        h.write_u64(state.counter);
        h.finish() as u16
    }

    /// Feeds what was heard to `lookup`'s procedure: asks its next question, or stores the
    /// outcome and returns the waiting callbacks.
    fn advance(&self, state: &mut State, lookup: Lookup, heard: Heard) -> Finished {
        let Some(running) = state.running.get_mut(&lookup) else {
            return Vec::new();
        };
        match running.procedure.heard(heard) {
            Step::Ask(name, kind) => {
                running.question = (name, kind);
                running.attempt = 0;
                self.ask(state, lookup)
            }
            Step::Done(outcome) => {
                let Some(mut running) = state.running.remove(&lookup) else {
                    return Vec::new();
                };
                if let Some(mut asked) = running.asked.take() {
                    let _ = self.registry.deregister(&mut asked.socket);
                    state.by_token.remove(&asked.token);
                }
                let resolution = self.store(lookup, outcome);
                vec![(running.waiting, resolution)]
            }
        }
    }

    /// Writes an outcome to the cache (RFC 2308 for negative ones, RFC 8767 when failing).
    fn store(&self, lookup: Lookup, outcome: Outcome) -> Resolution {
        let now = Instant::now();
        let c = &self.config;
        match outcome {
            Outcome::Found { targets, ttl } => {
                let ttl = Duration::from_secs(u64::from(ttl)).min(c.max_ttl);
                self.cache.insert(lookup, &targets, ttl, now);
                Resolution::Found(targets)
            }
            Outcome::NotFound { negative_ttl } => {
                if let Some(n) = negative_ttl {
                    let ttl = Duration::from_secs(u64::from(n)).min(c.max_negative_ttl);
                    self.cache.insert(lookup, &[], ttl, now);
                }
                Resolution::NotFound
            }
            Outcome::Failed => {
                self.cache.note_failure();
                match self.cache.stale(&lookup) {
                    Some(targets) if !c.stale_ttl.is_zero() => {
                        self.cache.counters.stale_served.fetch_add(1, Relaxed);
                        self.cache.insert(lookup, &targets, c.stale_ttl, now);
                        Resolution::Found(targets)
                    }
                    _ => {
                        warn!("dns: cannot resolve {:?}", lookup.name_str());
                        Resolution::Failed
                    }
                }
            }
        }
    }

    fn finish(finished: Finished) {
        for (waiting, resolution) in finished {
            for done in waiting {
                done(&resolution);
            }
        }
    }

    fn read_loop(self: &Arc<Self>, mut poll: Poll) {
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; UDP_REPLY];
        while !self.stop.load(Relaxed) {
            let wait = self.next_deadline().map_or(TICK, |d| {
                d.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), TICK)
            });
            if let Err(e) = poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                debug!("dns: poll: {e}");
                std::thread::sleep(wait);
            }
            for event in events.iter() {
                self.on_ready(event.token(), &mut buf);
            }
            self.on_timers(Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.lock().running.values().map(|r| r.deadline).min()
    }

    /// Reads what the attempt of `token` received, until its socket would block.
    fn on_ready(self: &Arc<Self>, token: Token, buf: &mut [u8]) {
        loop {
            let mut state = self.lock();
            let Some(&lookup) = state.by_token.get(&token) else {
                return;
            };
            let Some(asked) = state
                .running
                .get_mut(&lookup)
                .and_then(|r| r.asked.as_mut())
            else {
                return;
            };
            let server = asked.server;
            let (n, from) = match asked.socket.recv_from(buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP port or host unreachable from the server: no reply will come; the
                    // timer moves the question on to the next attempt now.
                    debug!("dns: {server}: {e}");
                    if let Some(running) = state.running.get_mut(&lookup) {
                        running.deadline = Instant::now();
                    }
                    return;
                }
            };
            drop(state);
            self.on_datagram(lookup, token, &buf[..n], from);
        }
    }

    /// A reply on the socket of `lookup`'s attempt `token`: used only when it comes from the
    /// server asked, with the attempt's id and question (RFC 5452 §4); anything else is
    /// counted as malformed and the attempt goes on waiting.
    fn on_datagram(self: &Arc<Self>, lookup: Lookup, token: Token, bytes: &[u8], from: SocketAddr) {
        let malformed = || {
            self.cache.counters.malformed.fetch_add(1, Relaxed);
        };
        let reply = match wire::parse(bytes) {
            Ok(reply) => reply,
            Err(e) => {
                debug!("dns: malformed reply from {from}: {}", e.0);
                return malformed();
            }
        };
        let mut state = self.lock();
        let Some(running) = state.running.get_mut(&lookup) else {
            return;
        };
        let Some(asked) = running.asked.as_ref().filter(|a| a.token == token) else {
            return;
        };
        let server = asked.server;
        if from != server
            || reply.id != running.id
            || reply.question.as_ref() != Some(&running.question)
        {
            return malformed();
        }
        let heard = if reply.rcode == Rcode::FormErr && running.edns {
            // RFC 6891 §7: a server without EDNS; the same server again, without the OPT.
            running.edns = false;
            running.attempt = running.attempt.saturating_sub(1);
            let finished = self.ask(&mut state, lookup);
            drop(state);
            return Shared::finish(finished);
        } else if reply.truncated {
            // Over TCP, on a thread of its own: this one goes on reading the others' replies.
            let (id, question) = (running.id, running.question.clone());
            // The UDP attempt waits for it: its connect and its exchange, a timeout each.
            running.deadline = Instant::now() + self.config.timeout * 2 + TICK;
            if let Err(e) = self.tcp_retry(lookup, token, id, question, server) {
                // The timer asks again now (the next attempt, over UDP).
                debug!("dns: no TCP retry for a truncated reply: {e}");
                running.deadline = Instant::now();
            }
            return;
        } else {
            Heard::Reply(reply)
        };
        let finished = self.advance(&mut state, lookup, heard);
        drop(state);
        Shared::finish(finished);
    }

    /// Starts the TCP retry of attempt `token` of `lookup` (RFC 7766 §5) on a thread; its
    /// outcome is fed to the procedure unless the attempt has moved on meanwhile. At most
    /// [`MAX_TCP`] at once: beyond, the attempt fails (the timer asks again, over UDP).
    fn tcp_retry(
        self: &Arc<Self>,
        lookup: Lookup,
        token: Token,
        id: u16,
        question: (String, Kind),
        server: SocketAddr,
    ) -> io::Result<()> {
        if self.tcp_in_flight.fetch_add(1, Relaxed) >= MAX_TCP {
            self.tcp_in_flight.fetch_sub(1, Relaxed);
            return Err(io::Error::other("too many TCP retries at once"));
        }
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("ferrovia-resolve-tcp".into())
            .spawn(move || {
                let heard = shared.over_tcp(id, &question, server);
                let mut state = shared.lock();
                let current = state
                    .running
                    .get(&lookup)
                    .and_then(|r| r.asked.as_ref())
                    .is_some_and(|a| a.token == token);
                let finished = match current {
                    true => shared.advance(&mut state, lookup, heard),
                    false => Vec::new(),
                };
                drop(state);
                shared.tcp_in_flight.fetch_sub(1, Relaxed);
                Shared::finish(finished);
            });
        spawned.map(drop).inspect_err(|_| {
            self.tcp_in_flight.fetch_sub(1, Relaxed);
        })
    }

    /// RFC 1035 §4.2.2 / RFC 7766: the same question over TCP, two-byte length prefix.
    fn over_tcp(&self, id: u16, question: &(String, Kind), server: SocketAddr) -> Heard {
        let attempt = || -> io::Result<wire::Reply> {
            // No OPT record: its payload size is about UDP (RFC 6891 §6.2.3).
            let query = wire::query_without_edns(id, &question.0, question.1)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.0))?;
            let mut stream = TcpStream::connect_timeout(&server, self.config.timeout)?;
            stream.set_read_timeout(Some(self.config.timeout))?;
            stream.set_write_timeout(Some(self.config.timeout))?;
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&query);
            stream.write_all(&framed)?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len)?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply)?;
            wire::parse(&reply).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.0))
        };
        self.cache.counters.queries.fetch_add(1, Relaxed);
        match attempt() {
            Ok(reply) if reply.id == id && reply.question.as_ref() == Some(question) => {
                Heard::Reply(reply)
            }
            Ok(_) => {
                self.cache.counters.malformed.fetch_add(1, Relaxed);
                Heard::Failed
            }
            Err(e) => {
                debug!("dns: TCP to {server}: {e}");
                Heard::Failed
            }
        }
    }

    fn on_timers(&self, now: Instant) {
        let mut state = self.lock();
        let late: Vec<Lookup> = state
            .running
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(l, _)| *l)
            .collect();
        let mut finished = Vec::new();
        let tries = self.config.attempts.max(1) * self.servers.len() as u32;
        for lookup in late {
            self.cache.counters.timeouts.fetch_add(1, Relaxed);
            let Some(running) = state.running.get(&lookup) else {
                continue;
            };
            if running.attempt < tries {
                finished.extend(self.ask(&mut state, lookup));
            } else {
                finished.extend(self.advance(&mut state, lookup, Heard::Failed));
            }
        }
        drop(state);
        Shared::finish(finished);
    }
}

#[cfg(test)]
mod tests;
