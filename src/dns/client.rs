//! The resolver's I/O: one UDP socket, many [`Procedure`]s in flight, each question matched
//! to its reply by id, question and server; bounded retries over the servers in turn; TCP
//! when a reply is truncated; results written to the shared [`DnsCache`].
//!
//! [`Resolver::resolve`] may be called from any thread (the side service's, a group
//! refresher's); one thread of its own (`ferrovia-resolve-rx`) reads replies and runs the
//! timers. Requests for a lookup already in flight wait for the same procedure. Query ids
//! come from a keyed hash of a counter (unpredictable to an off-path forger); a reply from
//! an address that is not a server, with an id not in flight, or for another question is
//! counted as malformed and ignored.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{debug, warn};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

use super::cache::DnsCache;
use super::config::DnsConfig;
use super::lookup::Lookup;
use super::rfc3263::{Heard, Outcome, Procedure, Step, Target};
use super::wire::{self, Kind};

/// What a lookup came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Found(Vec<Target>),
    NotFound,
    Failed,
}

/// Called once with the resolution (on the resolver's thread: it must not block).
pub type Done = Box<dyn FnOnce(&Resolution) + Send>;

/// The longest reply read over UDP (EDNS is not offered: 512 is the classic limit, longer
/// replies come truncated and are asked again over TCP).
const UDP_REPLY: usize = 4096;

/// The longest the reader waits before looking at its timers and stop flag.
const TICK: Duration = Duration::from_millis(200);

/// Questions in flight at once; more are answered as failed.
const MAX_IN_FLIGHT: usize = 4096;

struct Running {
    procedure: Procedure,
    question: (String, Kind),
    id: u16,
    /// Attempts made for the current question.
    attempt: u32,
    deadline: Instant,
    waiting: Vec<Done>,
}

#[derive(Default)]
struct State {
    running: HashMap<Lookup, Running>,
    by_id: HashMap<u16, Lookup>,
    counter: u64,
}

struct Shared {
    socket: UdpSocket,
    servers: Vec<SocketAddr>,
    config: DnsConfig,
    cache: Arc<DnsCache>,
    state: Mutex<State>,
    id_key: [u8; 16],
    stop: AtomicBool,
}

/// A running resolver. Dropping it stops its thread.
pub struct Resolver {
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
}

impl Resolver {
    /// Binds a UDP socket (the servers' address family, any port; on loopback when every server
    /// is) and starts the reader.
    pub fn start(
        config: DnsConfig,
        cache: Arc<DnsCache>,
        id_key: [u8; 16],
    ) -> io::Result<Resolver> {
        let servers = config.effective_servers();
        // Nothing listens beyond loopback unless it must: servers all on loopback (a local
        // cache such as systemd-resolved or dnsmasq) are asked from a loopback port.
        let local = servers.iter().all(|s| s.ip().is_loopback());
        let bind: SocketAddr = match (servers.first(), local) {
            (Some(s), true) if s.is_ipv6() => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
            (Some(s), false) if s.is_ipv6() => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            (_, true) => (std::net::Ipv4Addr::LOCALHOST, 0).into(),
            (_, false) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(bind)?;
        let shared = Arc::new(Shared {
            socket,
            servers,
            config,
            cache,
            state: Mutex::new(State::default()),
            id_key,
            stop: AtomicBool::new(false),
        });
        let reader = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("ferrovia-resolve-rx".into())
                .spawn(move || shared.read_loop())?
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
        let (procedure, step) = Procedure::start(&lookup);
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

    /// Sends the current question of `lookup` (a new id, the next server); returns what
    /// finished when the question cannot be sent.
    fn ask(&self, state: &mut State, lookup: Lookup) -> Finished {
        let id = self.fresh_id(state);
        let Some(running) = state.running.get_mut(&lookup) else {
            return Vec::new();
        };
        if running.id != 0 || running.attempt > 0 {
            state.by_id.remove(&running.id);
        }
        running.id = id;
        running.deadline = Instant::now() + self.config.timeout;
        let server = self.servers[running.attempt as usize % self.servers.len()];
        running.attempt += 1;
        let sent = wire::query(id, &running.question.0, running.question.1)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.0))
            .and_then(|q| self.socket.send_to(&q, server));
        self.cache.counters.queries.fetch_add(1, Relaxed);
        state.by_id.insert(id, lookup);
        match sent {
            Ok(_) => Vec::new(),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                debug!("dns: cannot ask {:?}: {e}", running.question.0);
                self.advance(state, lookup, Heard::Failed)
            }
            // A send error (no route) is a lost attempt: the timer retries it.
            Err(e) => {
                debug!("dns: send to {server}: {e}");
                Vec::new()
            }
        }
    }

    fn fresh_id(&self, state: &mut State) -> u16 {
        loop {
            state.counter += 1;
            let mut h = SipHasher13::new_with_key(&self.id_key);
            h.write_u64(state.counter);
            let id = h.finish() as u16;
            if id != 0 && !state.by_id.contains_key(&id) {
                return id;
            }
        }
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
                let Some(running) = state.running.remove(&lookup) else {
                    return Vec::new();
                };
                state.by_id.remove(&running.id);
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

    fn read_loop(&self) {
        let mut buf = vec![0u8; UDP_REPLY];
        while !self.stop.load(Relaxed) {
            let wait = self.next_deadline().map_or(TICK, |d| {
                d.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), TICK)
            });
            let _ = self.socket.set_read_timeout(Some(wait));
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.on_datagram(&buf[..n], from),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                // ICMP port unreachable from a dead server surfaces here on Linux: the timer
                // moves the question on.
                Err(e) => debug!("dns: receive: {e}"),
            }
            self.on_timers(Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.lock().running.values().map(|r| r.deadline).min()
    }

    fn on_datagram(&self, bytes: &[u8], from: SocketAddr) {
        if !self.servers.contains(&from) {
            self.cache.counters.malformed.fetch_add(1, Relaxed);
            return;
        }
        let reply = match wire::parse(bytes) {
            Ok(reply) => reply,
            Err(e) => {
                debug!("dns: malformed reply from {from}: {}", e.0);
                self.cache.counters.malformed.fetch_add(1, Relaxed);
                return;
            }
        };
        let mut state = self.lock();
        let Some(&lookup) = state.by_id.get(&reply.id) else {
            self.cache.counters.malformed.fetch_add(1, Relaxed);
            return;
        };
        let question = state.running.get(&lookup).map(|r| r.question.clone());
        if question.as_ref() != reply.question.as_ref() {
            self.cache.counters.malformed.fetch_add(1, Relaxed);
            return;
        }
        let heard = if reply.truncated {
            // Over TCP, outside the lock (it may take up to the timeout).
            drop(state);
            let question = question.expect("compared equal to the reply's question above");
            let heard = self.over_tcp(reply.id, &question, from);
            state = self.lock();
            heard
        } else {
            Heard::Reply(reply)
        };
        let finished = self.advance(&mut state, lookup, heard);
        drop(state);
        Shared::finish(finished);
    }

    /// RFC 1035 §4.2.2 / RFC 7766: the same question over TCP, two-byte length prefix.
    fn over_tcp(&self, id: u16, question: &(String, Kind), server: SocketAddr) -> Heard {
        let attempt = || -> io::Result<wire::Reply> {
            let query = wire::query(id, &question.0, question.1)
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
