//! Parked messages: a request that needs an answer from outside the worker (a name to
//! resolve; later a binding from a remote store, an offer from the media relay) waits here
//! while a side thread finds the answer.
//!
//! The core owns the rules, the worker owns the memory: a [`Parking`] area lives in each
//! worker's [`WorkerState`](super::WorkerState), bounded in messages and in bytes. When the
//! core decides a request must wait, it copies the message here and returns
//! [`Outcome::Park`](super::Outcome::Park) with a [`Ticket`]; the runtime sends the ticket's
//! [`Query`] to a side thread and, when the [`Answer`] comes back (or the query times out),
//! calls [`Proxy::resume`](super::Proxy::resume), which handles the message again with the
//! answer. The core still reads no clock: the time a message parked is its input's `now`, and
//! the runtime asks for [`Parking::next_expired`] with its own `now`.
//!
//! A retransmission of a parked request (same transaction hash and method) is absorbed; a
//! full area gets the reply the feature names (503 for a name to resolve). Once every slot has
//! held a message as large as any it will hold, parking allocates nothing.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::sip::{Flow, Method};

/// The longest host name a query carries (RFC 1035 §2.3.4); longer names are not resolvable.
pub const MAX_NAME: usize = 253;

/// How much the parking area of one worker may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParkingLimits {
    /// Messages parked at once; one more is refused.
    pub messages: usize,
    /// Bytes of parked messages at once; a message that would pass it is refused.
    pub bytes: usize,
    /// How long a query may take before its message is answered as if it had failed.
    pub timeout: Duration,
}

impl Default for ParkingLimits {
    /// 256 messages, 1 MiB, 2 s per worker.
    fn default() -> ParkingLimits {
        ParkingLimits {
            messages: 256,
            bytes: 1 << 20,
            timeout: Duration::from_secs(2),
        }
    }
}

/// A host name to resolve, inline (no allocation), lower-case as received.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HostName {
    bytes: [u8; MAX_NAME],
    len: u8,
}

impl HostName {
    /// `None` when the name is longer than [`MAX_NAME`] or empty.
    pub fn new(name: &[u8]) -> Option<HostName> {
        if name.is_empty() || name.len() > MAX_NAME {
            return None;
        }
        let mut bytes = [0; MAX_NAME];
        bytes[..name.len()].copy_from_slice(name);
        Some(HostName {
            bytes,
            len: name.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The name as text (host names are ASCII; anything else shows as a replacement).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("\u{fffd}")
    }

    /// Whether `name` is this name, ignoring ASCII case (RFC 4343).
    pub fn is(&self, name: &[u8]) -> bool {
        self.as_bytes().eq_ignore_ascii_case(name)
    }
}

impl std::fmt::Debug for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// What a parked message waits for. The side thread that answers it lives in the runtime;
/// which one is [`Query::kind`]. A kind that carries more than a few hundred bytes (a
/// body) boxes it, so the channels' slots stay small.
// The host name stays inline (no allocation per resolve); the media query is boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// The address of a host name that is neither an IP literal nor in the static host table
    /// (RFC 3263 §4.2 with a port: A / AAAA only). Answered with [`Answer::Address`].
    Resolve(HostName),
    /// Where to send for a URI whose host is a name without a port (RFC 3263 §4.1–4.2:
    /// NAPTR and/or SRV, then A / AAAA). Answered with [`Answer::Target`].
    Locate(crate::dns::Lookup),
    /// An NG command for rtpengine (an offer or answer with its SDP, or a delete).
    Media(Box<crate::media::MediaQuery>),
    /// An AoR (`user@domain`) the local location table does not hold, to be read from the
    /// shared store into it (issue 14). Answered with [`Answer::Loaded`] or
    /// [`Answer::NotFound`]; the request then looks the table up again.
    Location(Box<[u8]>),
}

/// Which side service answers a kind of [`Query`]: the runtime starts one thread per service
/// that is wired, and hands each query to the service of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SideKind {
    /// Host names (DNS).
    Resolve,
    /// The media relay (rtpengine's NG protocol).
    Media,
    /// The shared location store (Redis).
    Location,
}

impl SideKind {
    /// A short name, for the service's thread (`ferrovia-NAME`) and logs.
    pub fn name(self) -> &'static str {
        match self {
            SideKind::Resolve => "resolve",
            SideKind::Media => "media",
            SideKind::Location => "location",
        }
    }
}

impl Query {
    /// The side service that answers this query.
    pub fn kind(&self) -> SideKind {
        match self {
            Query::Resolve(_) | Query::Locate(_) => SideKind::Resolve,
            Query::Media(_) => SideKind::Media,
            Query::Location(_) => SideKind::Location,
        }
    }
}

/// What came back for a [`Query`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The name's address.
    Address(IpAddr),
    /// Where to send: address, port and transport (for [`Query::Locate`]).
    Target(std::net::SocketAddr, crate::sip::Transport),
    /// The name has no address.
    NotFound,
    /// rtpengine's reply to a [`Query::Media`].
    Media(Box<crate::media::MediaAnswer>),
    /// The location table now holds what the shared store has for a [`Query::Location`].
    Loaded,
    /// No answer within the parked message's timeout (the runtime's verdict).
    TimedOut,
}

/// Names one parked message. A ticket whose message has left (answered, timed out, drained)
/// finds nothing, even once its slot holds another message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    slot: u32,
    generation: u32,
}

impl Ticket {
    /// The slot's index, below [`ParkingLimits::messages`]: the runtime may keep what it needs
    /// per parked message (its arrival time) in an array indexed by it.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

/// One slot: its message bytes (capacity kept between uses) and what the message needs.
#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    bytes: Vec<u8>,
    parked: Option<Parked>,
}

/// What the core keeps about a parked message besides its bytes.
#[derive(Clone, Debug)]
pub(crate) struct Parked {
    pub query: Query,
    pub flow: Flow,
    /// The `now` of the input that parked it.
    pub since: Instant,
    /// How long its query may take; `None`: [`ParkingLimits::timeout`]. A feature with a
    /// deadline of its own (the media relay's offer) sets it.
    pub timeout: Option<Duration>,
    /// Transaction hash and method: a retransmission has both the same.
    pub hash: u64,
    pub method: Method,
}

/// Why a message could not park.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The same request is parked already: absorb this copy.
    Retransmission,
    /// No room, by count or by bytes.
    Full,
}

/// One worker's parked messages. See the [module docs](self).
#[derive(Debug)]
pub struct Parking {
    limits: ParkingLimits,
    slots: Vec<Slot>,
    /// Slots free to take, most recently freed last (its buffer is likely warm).
    free: Vec<u32>,
    bytes: usize,
}

impl Parking {
    /// An empty area with room for `limits.messages` (slots are made now, buffers on use).
    pub fn new(limits: ParkingLimits) -> Parking {
        let slots = limits.messages.min(u32::MAX as usize);
        Parking {
            limits,
            slots: (0..slots).map(|_| Slot::default()).collect(),
            free: (0..slots as u32).rev().collect(),
            bytes: 0,
        }
    }

    /// The limits it was made with.
    pub fn limits(&self) -> ParkingLimits {
        self.limits
    }

    /// Messages parked now.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.free.len() == self.slots.len()
    }

    /// Bytes of parked messages now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The query a parked message waits for; `None` for a ticket that finds nothing.
    pub fn query(&self, ticket: Ticket) -> Option<Query> {
        self.live(ticket)
            .and_then(|slot| Some(slot.parked.as_ref()?.query.clone()))
    }

    /// The first parked message whose query is older than the timeout at `now`, if any.
    pub fn next_expired(&self, now: Instant) -> Option<Ticket> {
        if self.is_empty() {
            return None;
        }
        let limit = self.limits.timeout;
        self.slots.iter().enumerate().find_map(|(i, slot)| {
            let parked = slot.parked.as_ref()?;
            let timeout = parked.timeout.unwrap_or(limit);
            (now.saturating_duration_since(parked.since) >= timeout).then_some(Ticket {
                slot: i as u32,
                generation: slot.generation,
            })
        })
    }

    /// Drops every parked message (at shutdown); returns how many there were.
    pub fn clear(&mut self) -> usize {
        let mut dropped = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].parked.is_some() {
                self.release(i);
                dropped += 1;
            }
        }
        dropped
    }

    /// Copies `data` in and returns its ticket, unless it is a retransmission of a parked
    /// request or there is no room.
    pub(crate) fn park(&mut self, data: &[u8], parked: Parked) -> Result<Ticket, Refused> {
        if self.holds(parked.hash, parked.method) {
            return Err(Refused::Retransmission);
        }
        if self.bytes + data.len() > self.limits.bytes {
            return Err(Refused::Full);
        }
        let index = self.free.pop().ok_or(Refused::Full)?;
        let slot = &mut self.slots[index as usize];
        slot.bytes.clear();
        slot.bytes.extend_from_slice(data);
        slot.parked = Some(parked);
        self.bytes += data.len();
        Ok(Ticket {
            slot: index,
            generation: slot.generation,
        })
    }

    /// Takes a parked message out: its bytes (the slot's buffer, to hand back with
    /// [`Parking::give_back`]) and what was kept about it.
    pub(crate) fn take(&mut self, ticket: Ticket) -> Option<(Vec<u8>, Parked)> {
        self.live(ticket)?;
        let index = ticket.slot as usize;
        let slot = &mut self.slots[index];
        let parked = slot.parked.take()?;
        let bytes = std::mem::take(&mut slot.bytes);
        self.bytes -= bytes.len();
        self.release(index);
        Some((bytes, parked))
    }

    /// Returns a buffer from [`Parking::take`] to its slot, so its capacity is reused.
    pub(crate) fn give_back(&mut self, ticket: Ticket, bytes: Vec<u8>) {
        if let Some(slot) = self.slots.get_mut(ticket.slot as usize)
            && slot.bytes.capacity() < bytes.capacity()
        {
            slot.bytes = bytes;
        }
    }

    fn holds(&self, hash: u64, method: Method) -> bool {
        !self.is_empty()
            && self
                .slots
                .iter()
                .filter_map(|s| s.parked.as_ref())
                .any(|p| p.hash == hash && p.method == method)
    }

    fn live(&self, ticket: Ticket) -> Option<&Slot> {
        let slot = self.slots.get(ticket.slot as usize)?;
        (slot.generation == ticket.generation && slot.parked.is_some()).then_some(slot)
    }

    fn release(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        self.bytes -= slot.bytes.len();
        slot.bytes.clear();
        slot.parked = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
    }
}

#[cfg(test)]
mod tests;
