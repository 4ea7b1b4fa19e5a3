//! The bare relay, the I/O floor: it forwards UDP datagrams unchanged, parsing nothing.
//!
//! Each distinct client source address gets its own upstream socket (NAT style), connected to
//! the fixed upstream; whatever arrives on that socket (answers, and requests the upstream
//! originates, such as a BYE) goes back to that client from the listening socket. Datagrams move
//! in `recvmmsg` / `sendmmsg` batches: consecutive datagrams of one client go up in one call, and
//! what all upstream sockets received during one poll goes down in one call.
//!
//! Bounded: at most `max_flows` clients, a flow idle for `idle` is closed; when the table is full
//! a new client's datagrams are dropped and counted. `threads > 1` runs that many workers, each
//! with its own listening socket on the same address (`SO_REUSEPORT`) and its own flow table.

use std::io;
use std::net::SocketAddr;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use socket2::SockAddr;

use crate::batch::{RecvBatch, SendScratch, flush};
use crate::flow_table::FlowTable;
use crate::net::{Sharing, any_port_toward, udp_socket};

/// The listener's token; flow slot `n` has token `n + 1`.
const LISTENER: Token = Token(0);
/// Largest datagram relayed whole (UDP's own maximum payload).
const SLOT: usize = 65_535;
const IDLE_TICK: Duration = Duration::from_millis(100);
const EXPIRY_EVERY_NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub threads: usize,
    pub batch: usize,
    pub max_flows: usize,
    pub idle: Duration,
    pub duration: Duration,
}

/// What the relay did, summed over its workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayCounts {
    pub up: u64,
    pub down: u64,
    /// A new client arrived while the flow table was full.
    pub dropped_table_full: u64,
    /// A socket's send buffer was full.
    pub dropped_blocked: u64,
    pub dropped_truncated: u64,
    pub send_failed: u64,
    pub flows_opened: u64,
    pub flows_expired: u64,
}

impl AddAssign for RelayCounts {
    fn add_assign(&mut self, o: RelayCounts) {
        self.up += o.up;
        self.down += o.down;
        self.dropped_table_full += o.dropped_table_full;
        self.dropped_blocked += o.dropped_blocked;
        self.dropped_truncated += o.dropped_truncated;
        self.send_failed += o.send_failed;
        self.flows_opened += o.flows_opened;
        self.flows_expired += o.flows_expired;
    }
}

impl RelayCounts {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "mode": "relay", "up": self.up, "down": self.down,
            "dropped_table_full": self.dropped_table_full,
            "dropped_blocked": self.dropped_blocked,
            "dropped_truncated": self.dropped_truncated, "send_failed": self.send_failed,
            "flows_opened": self.flows_opened, "flows_expired": self.flows_expired,
        })
    }
}

/// Binds one listening socket per worker (port 0 picks one port for all).
pub fn bind(config: &RelayConfig) -> io::Result<Vec<UdpSocket>> {
    let first = udp_socket(config.listen, Sharing::ReusePort)?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..config.threads.max(1) {
        sockets.push(udp_socket(addr, Sharing::ReusePort)?);
    }
    Ok(sockets)
}

/// Relays on every listener (one thread each) until the duration ends or `stop` is raised.
pub fn run(
    listeners: Vec<UdpSocket>,
    config: &RelayConfig,
    stop: &AtomicBool,
) -> io::Result<RelayCounts> {
    let deadline = Instant::now() + config.duration;
    std::thread::scope(|scope| {
        let workers: Vec<_> = listeners
            .into_iter()
            .map(|listener| {
                scope.spawn(move || Worker::new(listener, config)?.serve(deadline, stop))
            })
            .collect();
        let mut total = RelayCounts::default();
        for worker in workers {
            total += worker
                .join()
                .map_err(|_| io::Error::other("relay thread panicked"))??;
        }
        Ok(total)
    })
}

/// A client's flow: the upstream socket that stands for it, and where its answers go.
struct Upstream {
    socket: UdpSocket,
    client: SockAddr,
}

struct Worker {
    listener: UdpSocket,
    upstream: SocketAddr,
    poll: Poll,
    flows: FlowTable<Upstream>,
    /// Datagrams from clients, one receive at a time.
    up: RecvBatch,
    /// Datagrams from upstream sockets, gathered over one poll's events to leave in one send.
    down: RecvBatch,
    /// The flow slot of each datagram in `down`.
    down_flows: Vec<usize>,
    scratch: SendScratch,
    /// Whether each datagram of the current receive was cut, and its source.
    peers: Vec<(bool, Option<SocketAddr>)>,
    /// The flow slot of each datagram of the current receive (`None`: dropped).
    routes: Vec<Option<usize>>,
    counts: RelayCounts,
    start: Instant,
}

impl Worker {
    fn new(mut listener: UdpSocket, config: &RelayConfig) -> io::Result<Worker> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let idle_ns = u64::try_from(config.idle.as_nanos()).unwrap_or(u64::MAX);
        Ok(Worker {
            listener,
            upstream: config.upstream,
            poll,
            flows: FlowTable::new(config.max_flows, idle_ns),
            up: RecvBatch::new(config.batch, SLOT),
            down: RecvBatch::new(config.batch, SLOT),
            down_flows: Vec::with_capacity(config.batch),
            scratch: SendScratch::new(config.batch),
            peers: Vec::with_capacity(config.batch),
            routes: Vec::with_capacity(config.batch),
            counts: RelayCounts::default(),
            start: Instant::now(),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn serve(mut self, deadline: Instant, stop: &AtomicBool) -> io::Result<RelayCounts> {
        let mut events = Events::with_capacity(1024);
        let mut next_expiry = EXPIRY_EVERY_NS;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match self.poll.poll(&mut events, Some(IDLE_TICK)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = self.now_ns();
            for event in &events {
                match event.token() {
                    LISTENER => self.relay_up(now)?,
                    Token(token) => self.relay_down(token - 1)?,
                }
            }
            if !self.down.is_empty() {
                self.send_down();
            }
            if now >= next_expiry {
                self.expire(now);
                next_expiry = now + EXPIRY_EVERY_NS;
            }
        }
        Ok(self.counts)
    }

    /// Drains the listener: each datagram goes up through its client's flow.
    fn relay_up(&mut self, now: u64) -> io::Result<()> {
        loop {
            match self.up.recv(&self.listener) {
                Ok(_) => {
                    self.route_batch(now)?;
                    self.send_up();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Finds (or opens) the flow of each received datagram.
    fn route_batch(&mut self, now: u64) -> io::Result<()> {
        self.routes.clear();
        self.peers.clear();
        let peers = self.up.datagrams().map(|d| (d.truncated, d.source));
        self.peers.extend(peers);
        for i in 0..self.peers.len() {
            let route = match self.peers[i] {
                (false, Some(client)) => self.flow_of(client, now)?,
                (true, _) => {
                    self.counts.dropped_truncated += 1;
                    None
                }
                (false, None) => None,
            };
            self.routes.push(route);
        }
        Ok(())
    }

    fn flow_of(&mut self, client: SocketAddr, now: u64) -> io::Result<Option<usize>> {
        if let Some(slot) = self.flows.find(client, now) {
            return Ok(Some(slot));
        }
        let socket = udp_socket(any_port_toward(self.upstream), Sharing::Exclusive)?;
        socket.connect(self.upstream)?;
        let upstream = Upstream {
            socket,
            client: SockAddr::from(client),
        };
        let Ok(slot) = self.flows.insert(client, now, upstream) else {
            self.counts.dropped_table_full += 1;
            return Ok(None);
        };
        if let Some(flow) = self.flows.get_mut(slot) {
            let socket = &mut flow.value.socket;
            self.poll
                .registry()
                .register(socket, Token(slot + 1), Interest::READABLE)?;
        }
        self.counts.flows_opened += 1;
        Ok(Some(slot))
    }

    /// Sends each run of consecutive datagrams of one flow in one batch on its upstream socket.
    fn send_up(&mut self) {
        let mut datagrams = self.up.datagrams();
        let mut start = 0;
        while start < self.routes.len() {
            let route = self.routes[start];
            let run = self.routes[start..]
                .iter()
                .take_while(|r| **r == route)
                .count();
            let flow = route.and_then(|slot| self.flows.get(slot));
            let mut queue = self.scratch.queue();
            for datagram in datagrams.by_ref().take(run) {
                if flow.is_some() {
                    queue.push(datagram.bytes, None);
                }
            }
            if let Some(flow) = flow {
                let done = flush(&mut queue, &flow.value.socket, |_, _| {});
                self.counts.up += done.sent as u64;
                self.counts.send_failed += done.failed as u64;
                self.counts.dropped_blocked += queue.pending() as u64;
            }
            start += run;
        }
    }

    /// Drains one flow's upstream socket into the down batch (sending it whenever it fills).
    fn relay_down(&mut self, slot: usize) -> io::Result<()> {
        loop {
            if self.down.is_full() {
                self.send_down();
            }
            let Some(flow) = self.flows.get(slot) else {
                return Ok(());
            };
            let n = match self.down.recv_more(&flow.value.socket) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The upstream is not listening (ICMP): nothing to read, the flow stays.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            self.down_flows.extend(std::iter::repeat_n(slot, n));
        }
        self.flows.touch(slot, self.now_ns());
        Ok(())
    }

    /// Sends the gathered datagrams from upstream to their clients in one batch.
    fn send_down(&mut self) {
        let mut queue = self.scratch.queue();
        let datagrams = self.down.datagrams().zip(&self.down_flows);
        for (datagram, &slot) in datagrams {
            match self.flows.get(slot) {
                Some(flow) if !datagram.truncated => {
                    queue.push(datagram.bytes, Some(&flow.value.client));
                }
                _ => self.counts.dropped_truncated += 1,
            }
        }
        let done = flush(&mut queue, &self.listener, |_, _| {});
        self.counts.down += done.sent as u64;
        self.counts.send_failed += done.failed as u64;
        self.counts.dropped_blocked += queue.pending() as u64;
        self.down.clear();
        self.down_flows.clear();
    }

    fn expire(&mut self, now: u64) {
        let registry = self.poll.registry();
        let counts = &mut self.counts;
        self.flows.expire(now, |_, mut flow| {
            // Closing the socket removes it from epoll anyway; a failed deregister is harmless.
            let _ = registry.deregister(&mut flow.value.socket);
            counts.flows_expired += 1;
        });
    }
}
