//! Health probes over TCP and TLS: one connection per probed destination, opened the way a
//! worker opens its outbound connections — non-blocking, from the listener's IP
//! (`stream::connect`), over TLS a client session of the shared configuration verified
//! against the destination's domain, else its address (`Secure::connect`, RFC 5922 §7.2),
//! sealed and opened by the same `TlsSession` — and kept open from one probe to the next.
//!
//! Contract:
//! - A probe is written on the destination's connection (opened first when there is none).
//!   What comes back is framed as on any connection (`sip::next_frame`); a probe answer goes
//!   to [`Groups::consume_probe_answer`] — consumed here, never forwarded — and anything else
//!   the destination sends is discarded (keep-alive pings are answered, RFC 5626 §3.5.1).
//! - A refused or failed connect, a failed TLS handshake (a certificate that does not name
//!   the destination included), or a connection that ends or fails with a probe unanswered
//!   fails that probe at once ([`Groups::note_probe_failure`]); the schedule counts it as it
//!   counts a timeout, with the same down-after / up-after rules.
//! - A probe still unanswered when the next one is due (it timed out) closes its connection:
//!   the next probe opens a new one. So does a destination whose address or name changed.
//! - Bounded: one connection per destination, an answer of at most [`MAX_ANSWER`] bytes.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::super::stream::{self, Secure, TlsIo, TlsSession};
use crate::groups::{DestinationId, GroupId, Groups, Probe};
use crate::proxy::PeerName;
use crate::sip::{Frame, Message, StartLine, Transport, next_frame};

/// The longest message read from a destination (a probe answer is a few hundred bytes; a
/// longer one closes the connection).
const MAX_ANSWER: usize = 64 * 1024;

/// Which destination a connection probes.
type Key = (GroupId, DestinationId);

/// One destination's probe connection.
struct Link {
    key: Key,
    peer: SocketAddr,
    /// Over TLS: the name its certificate was verified against.
    name: Option<PeerName>,
    socket: TcpStream,
    tls: Option<TlsSession>,
    connected: bool,
    /// Plaintext to write: the probe, until the connect (and handshake) let it go.
    out: Vec<u8>,
    /// Plaintext read and not framed yet.
    input: Vec<u8>,
    /// The probe written on it and not answered yet.
    pending: Option<u32>,
}

/// The prober thread's TCP and TLS connections and their event loop.
pub(super) struct Links {
    groups: Arc<Groups>,
    secure: Option<Arc<Secure>>,
    poll: Poll,
    events: Events,
    /// Connections by token (a slot's index).
    slots: Vec<Option<Link>>,
    by_key: HashMap<Key, usize>,
}

impl Links {
    pub(super) fn new(groups: Arc<Groups>, secure: Option<Arc<Secure>>) -> io::Result<Links> {
        Ok(Links {
            groups,
            secure,
            poll: Poll::new()?,
            events: Events::with_capacity(64),
            slots: Vec::new(),
            by_key: HashMap::new(),
        })
    }

    /// Writes `probe` on its destination's connection, from listener address `local`;
    /// opens the connection first when there is none (or the last probe went unanswered).
    pub(super) fn send(&mut self, probe: &Probe<'_>, local: SocketAddr, now: Instant) {
        let key = (probe.group, probe.destination);
        let name = match probe.transport {
            Transport::Tls => probe.name.and_then(|n| PeerName::new(n.as_bytes())),
            _ => None,
        };
        if let Some(&slot) = self.by_key.get(&key) {
            let reusable = self.slots[slot]
                .as_ref()
                .is_some_and(|l| l.pending.is_none() && l.peer == probe.to && l.name == name);
            if !reusable {
                self.close(slot, None, now);
            }
        }
        let slot = match self.by_key.get(&key) {
            Some(&slot) => slot,
            None => match self.open(key, probe, local, name) {
                Ok(slot) => slot,
                Err(e) => {
                    debug!("probe to {}: cannot connect: {e}", probe.to);
                    let (group, dest) = key;
                    self.groups.note_probe_failure(group, dest, probe.seq, now);
                    return;
                }
            },
        };
        if let Some(link) = self.slots[slot].as_mut() {
            link.pending = Some(probe.seq);
            link.out.extend_from_slice(probe.bytes);
        }
        self.drive(slot, now);
    }

    /// Waits up to `timeout` for the connections, and moves each that is ready.
    pub(super) fn wait(&mut self, timeout: Duration) {
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                debug!("probe connections: poll: {e}");
                std::thread::sleep(timeout);
            }
            return;
        }
        let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
        let now = Instant::now();
        for slot in ready {
            self.drive(slot, now);
        }
    }

    fn open(
        &mut self,
        key: Key,
        probe: &Probe<'_>,
        local: SocketAddr,
        name: Option<PeerName>,
    ) -> io::Result<usize> {
        let tls = match probe.transport {
            Transport::Tls => {
                let secure = self.secure.as_ref().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::Unsupported, "no TLS configuration")
                })?;
                let handshake = secure
                    .connect(probe.to.ip(), name.as_ref())
                    .map_err(io::Error::other)?;
                Some(TlsSession::new(handshake))
            }
            _ => None,
        };
        let mut socket = stream::connect(probe.to, local)?;
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.poll
            .registry()
            .register(&mut socket, Token(slot), interest)?;
        self.slots[slot] = Some(Link {
            key,
            peer: probe.to,
            name,
            socket,
            tls,
            connected: false,
            out: Vec::with_capacity(probe.bytes.len()),
            input: Vec::new(),
            pending: None,
        });
        self.by_key.insert(key, slot);
        Ok(slot)
    }

    /// Moves connection `slot` as far as it goes now: the connect completed, the handshake
    /// advanced, answers read and consumed, the probe written. Closes it on an error or at
    /// the peer's end of stream (failing its unanswered probe).
    fn drive(&mut self, slot: usize, now: Instant) {
        let Some(link) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let moved = link.connect_done().and_then(|connected| match connected {
            true => link.read_answers(&self.groups, now)?.write(),
            false => Ok(()),
        });
        if let Err(e) = moved {
            self.close(slot, Some(e), now);
        }
    }

    /// Drops connection `slot`; with `error`, its unanswered probe (if any) fails now. A
    /// probe that timed out already was counted by the schedule: closing a connection to
    /// open a new one reports nothing.
    fn close(&mut self, slot: usize, error: Option<io::Error>, now: Instant) {
        let Some(mut link) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.by_key.remove(&link.key);
        let _ = self.poll.registry().deregister(&mut link.socket);
        if let (Some(e), Some(seq)) = (error, link.pending) {
            debug!("probe to {} ({:?}) failed: {e}", link.peer, link.name);
            let (group, dest) = link.key;
            self.groups.note_probe_failure(group, dest, seq, now);
        }
    }
}

impl Link {
    /// Whether the connect has completed (`Ok(false)`: still in progress); its error when it
    /// failed (refused, unreachable).
    fn connect_done(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if let Some(e) = self.socket.take_error()? {
            return Err(e);
        }
        match self.socket.peer_addr() {
            Ok(_) => {
                self.connected = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads what the socket has (over TLS: advancing the handshake), then hands each whole
    /// answer to the groups. An error for a failed session, an end of stream, or a message
    /// that cannot be framed.
    fn read_answers(&mut self, groups: &Groups, now: Instant) -> io::Result<&mut Link> {
        let ended = self.read_available()?;
        loop {
            match next_frame(&self.input, MAX_ANSWER) {
                Frame::Message(len) => {
                    if settles(&self.input[..len], self.peer, groups, now) {
                        self.pending = None;
                    }
                    self.input.drain(..len);
                }
                Frame::Ping => {
                    self.out.extend_from_slice(b"\r\n"); // RFC 5626 §3.5.1: pong
                    self.input.drain(..4);
                }
                Frame::Skip(n) => {
                    self.input.drain(..n);
                }
                Frame::Partial => break,
                Frame::Unframed(_) | Frame::Oversized(_) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "unframed"));
                }
            }
        }
        match ended {
            true => Err(io::ErrorKind::UnexpectedEof.into()),
            false => Ok(self),
        }
    }

    /// Reads until the socket would block; `true` at the peer's end of stream.
    fn read_available(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            let read = match &mut self.tls {
                Some(tls) => TlsIo {
                    tls,
                    socket: &mut self.socket,
                }
                .read(&mut chunk),
                None => self.socket.read(&mut chunk),
            };
            match read {
                Ok(0) => return Ok(true),
                Ok(n) if self.input.len() + n > MAX_ANSWER => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "too long"));
                }
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes what waits, as far as the socket (and the handshake) let it.
    fn write(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            let written = match &mut self.tls {
                Some(tls) => TlsIo {
                    tls,
                    socket: &mut self.socket,
                }
                .write(&self.out),
                None => self.socket.write(&self.out),
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One message from the destination at `peer`, handed to the groups: whether it was a final
/// answer to a probe (which settles the connection's pending one).
fn settles(bytes: &[u8], peer: SocketAddr, groups: &Groups, now: Instant) -> bool {
    let Ok(msg) = Message::scan(bytes, true) else {
        return false;
    };
    let fin = matches!(msg.start(), StartLine::Response { code, .. } if code >= 200);
    groups.consume_probe_answer(&msg, peer, now) && fin
}
