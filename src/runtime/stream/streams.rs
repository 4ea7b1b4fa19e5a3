//! One worker's stream state: its listeners, its connections, the messages of the current
//! batch waiting for their connection, and its end of the [`Mesh`].
//!
//! The worker calls in this order each loop turn: [`Streams::on_event`] for each readiness
//! event; then [`Streams::receive_handoffs`], [`Streams::accept`], [`Streams::writable`];
//! then it reads the connections [`Streams::readable`] lists and hands their messages to the
//! core, routing each stream [`Transmit`](crate::proxy::Transmit) through [`Streams::enqueue`]; then
//! [`Streams::flush`] writes the batch (one `writev` per connection) and wakes the workers
//! it handed messages to; last, [`Streams::sweep`] enforces the timeouts.
//!
//! Where a stream message goes ([`Streams::enqueue`]):
//! 1. the connection the core named (a reply, a response whose request came in on it, or a
//!    request to a contact registered over it), if it is still open: here, or handed to the
//!    worker that owns it;
//! 2. else a connection to the destination address: this worker's own (a client that
//!    connected from there, or the one it opened before), else a client's connection another
//!    worker accepted (from the shared directory; handed off);
//! 3. else a new connection from this worker, queued until it is established (RFC 3261
//!    §18.2.2 for a response whose connection is gone).

mod flush;
mod layering;
mod lifecycle;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::event::Event;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use super::connection::Connection;
use super::id::ConnRef;
use super::mesh::{Handoff, Mesh};
use super::secure::Secure;
use super::table::Table;
use super::{CONNECTION_TOKENS, LISTENER_TOKENS};
use crate::proxy::{ConnectionId, Transport};
use crate::runtime::note::Note;
use crate::settings::TcpOptions;

/// One worker's listener on a TCP listen address.
pub(crate) struct StreamListener {
    pub(crate) listener: TcpListener,
    /// The listen address as the core knows it.
    pub(crate) local: SocketAddr,
    /// TCP, TLS, WS or WSS.
    pub(crate) transport: Transport,
}

/// What a worker starts its stream side with.
pub(crate) struct StreamSetup {
    pub(crate) listeners: Vec<StreamListener>,
    pub(crate) inbox: Receiver<Handoff>,
    pub(crate) mesh: Arc<Mesh>,
    pub(crate) options: TcpOptions,
    /// Certificates and WebSocket rules, when a listener speaks TLS, WS or WSS.
    pub(crate) secure: Option<Arc<Secure>>,
}

/// A message of this batch for one of this worker's connections, still in its output slot.
#[derive(Clone, Copy, Debug)]
struct Outgoing {
    connection: u32,
    /// Where its bytes are in the caller's output buffers.
    start: usize,
    len: usize,
    note: Note,
    fate: Fate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Pending,
    /// Written, or queued on its connection.
    Sent,
    Failed,
}

/// Where a message for a stream goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Here(u32),
    Worker(usize, ConnectionId),
    Open,
}

/// Accepts taken from one listener before the loop looks at the rest.
const ACCEPTS_PER_TURN: usize = 64;
/// Hand-offs taken from the queue in one turn.
const HANDOFFS_PER_TURN: usize = 256;
/// How long a closing connection may take to flush and to see the peer's FIN.
const LINGER: Duration = Duration::from_secs(2);
/// How long a half-closed client connection waits for responses: 64·T1, how long a client
/// transaction waits for its final response (RFC 3261 §17.1.1.2 Timer B, §17.1.2.2 Timer F).
const HALF_CLOSED_LINGER: Duration = Duration::from_secs(32);

pub(crate) struct Streams {
    worker: usize,
    registry: Registry,
    listeners: Vec<StreamListener>,
    accept_backlog: Vec<bool>,
    table: Table,
    mesh: Arc<Mesh>,
    inbox: Receiver<Handoff>,
    readable: Vec<u32>,
    writable: Vec<u32>,
    outgoing: Vec<Outgoing>,
    closing: Vec<u32>,
    wake: Vec<bool>,
    options: TcpOptions,
    secure: Option<Arc<Secure>>,
    sweep_every: Duration,
    next_sweep: Instant,
    /// Destinations an outbound connect failed to, not yet told to the groups.
    failed_connects: Vec<SocketAddr>,
}

impl Streams {
    /// The stream side of worker `worker`, registering its listeners with `registry`.
    pub(crate) fn new(
        worker: usize,
        registry: Registry,
        setup: StreamSetup,
    ) -> std::io::Result<Streams> {
        let mut listeners = setup.listeners;
        for (i, l) in listeners.iter_mut().enumerate() {
            registry.register(
                &mut l.listener,
                Token(LISTENER_TOKENS + i),
                Interest::READABLE,
            )?;
        }
        let options = setup.options;
        let shortest = options
            .header_timeout
            .min(options.idle_timeout)
            .min(options.connect_timeout);
        let sweep_every = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        Ok(Streams {
            worker,
            registry,
            accept_backlog: vec![true; listeners.len()],
            listeners,
            table: Table::new(worker, options.max_connections_per_worker),
            wake: vec![false; setup.mesh.workers()],
            mesh: setup.mesh,
            inbox: setup.inbox,
            readable: Vec::with_capacity(256),
            writable: Vec::with_capacity(256),
            outgoing: Vec::with_capacity(256),
            closing: Vec::with_capacity(16),
            options,
            secure: setup.secure,
            sweep_every,
            next_sweep: Instant::now() + sweep_every,
            failed_connects: Vec::with_capacity(64),
        })
    }

    /// Notes one readiness event for a listener or a connection.
    pub(crate) fn on_event(&mut self, event: &Event) {
        let token = event.token().0;
        if token >= CONNECTION_TOKENS {
            self.on_connection_event(event, (token - CONNECTION_TOKENS) as u32);
        } else if let Some(ready) = token
            .checked_sub(LISTENER_TOKENS)
            .and_then(|i| self.accept_backlog.get_mut(i))
        {
            *ready = true;
        }
    }

    fn on_connection_event(&mut self, event: &Event, slot: u32) {
        let Some(conn) = self.table.get_mut(slot) else {
            return;
        };
        let failed = event.is_error();
        conn.read_closed |= event.is_read_closed() || failed;
        if (event.is_writable() || event.is_write_closed() || failed) && !conn.write_ready {
            conn.write_ready = true;
            self.writable.push(slot);
        }
        if (event.is_readable() || event.is_read_closed() || failed) && !conn.read_ready {
            conn.read_ready = true;
            self.readable.push(slot);
        }
    }

    /// Work is waiting that a zero-timeout poll should not delay.
    pub(crate) fn busy(&self) -> bool {
        !self.readable.is_empty()
            || !self.writable.is_empty()
            || self.accept_backlog.contains(&true)
            || !self.inbox.is_empty()
    }

    /// The longest the worker may sleep in `poll` and still sweep on time.
    pub(crate) fn tick(&self) -> Option<Duration> {
        (self.table.open() > 0).then_some(self.sweep_every)
    }

    /// The first `len` bytes of `slot`'s read buffer are a message being handed to the core.
    pub(crate) fn note_read(&mut self, slot: u32, len: usize) {
        if let Some(conn) = self.table.get_mut(slot) {
            let message = conn.rx.data().get(..len.min(12)).unwrap_or_default();
            let mut head = [0u8; 12];
            head[..message.len()].copy_from_slice(message);
            conn.note_read(&head[..message.len()]);
        }
    }

    /// `bytes` are being sent on `slot`.
    fn note_sent(&mut self, slot: u32, bytes: &[u8]) {
        if let Some(conn) = self.table.get_mut(slot) {
            conn.note_sent(bytes);
        }
    }

    /// The largest message read from a stream.
    pub(crate) fn max_message(&self) -> usize {
        self.options.max_message
    }

    /// Connections with readiness to act on; the worker reads the first `n` it was given and
    /// then calls [`Streams::read_done`].
    pub(crate) fn readable(&self) -> &[u32] {
        &self.readable
    }

    /// The worker read the first `n` listed connections (those with bytes left were listed
    /// again behind them).
    pub(crate) fn read_done(&mut self, n: usize) {
        self.readable.drain(..n.min(self.readable.len()));
    }

    /// Lists `slot` to be read again next turn (its turn ended before `WouldBlock`).
    pub(crate) fn read_again(&mut self, slot: u32) {
        if let Some(conn) = self.table.get_mut(slot)
            && !conn.read_ready
        {
            conn.read_ready = true;
            self.readable.push(slot);
        }
    }

    pub(crate) fn connection(&self, slot: u32) -> Option<&Connection> {
        self.table.get(slot)
    }

    pub(crate) fn connection_mut(&mut self, slot: u32) -> Option<&mut Connection> {
        self.table.get_mut(slot)
    }

    /// The allowed WebSocket origins (any when empty).
    pub(crate) fn origins(&self) -> &[String] {
        self.secure.as_deref().map_or(&[], |s| &s.origins)
    }

    /// The reference the core carries for the connection in `slot`.
    pub(crate) fn reference(&self, slot: u32) -> ConnRef {
        self.table.reference(slot)
    }
}
