//! What the core decides about one message: forward it, answer it, drop it, or park it until
//! an answer from outside the worker arrives.
//!
//! The bytes of a forward or a reply are in the caller's output buffer, `out[..len]`; the
//! outcome says where they go. Every drop has a named reason that the runtime counts.

use std::fmt;
use std::net::SocketAddr;

pub use crate::sip::{ConnectionId, Transport};

/// Whether a transmitted message is a request or a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// Bytes to send: `out[..len]` of the buffer the caller passed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send.
    pub destination: SocketAddr,
    /// Over which transport.
    pub transport: Transport,
    /// The listener to send from (its address is what the core wrote into Via / Record-Route).
    pub local: SocketAddr,
    /// How many bytes of the output buffer hold the message.
    pub len: usize,
    /// Request or response.
    pub direction: Direction,
    /// For a stream transport: the connection to send on when it is still open (a reply,
    /// or a response whose request came in on it); otherwise one to `destination`.
    pub connection: Option<ConnectionId>,
    /// For a request over TLS: the domain the next hop's certificate must name (RFC 5922
    /// §7.2); `None` verifies the address (or a `[hosts]` name of it).
    pub name: Option<PeerName>,
}

/// The longest domain name (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text).
const PEER_NAME_MAX: usize = 253;

/// RFC 5922 §7.2 / RFC 3263: the domain of the URI a request was resolved from — the host
/// part of the Request-URI or Route, not the SRV target or the address — that a TLS next
/// hop's certificate must name. Held inline (lower case, with its hash) so that carrying it
/// in a [`Transmit`] allocates nothing; connections are reused per (address, name).
#[derive(Clone, Copy)]
pub struct PeerName {
    hash: u64,
    len: u8,
    bytes: [u8; PEER_NAME_MAX],
}

impl PeerName {
    /// `name` in lower case, without a trailing dot (RFC 6125 §6.4.1 compares the name
    /// without it); `None` when it is empty, too long or not ASCII.
    pub fn new(name: &[u8]) -> Option<PeerName> {
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.is_empty() || name.len() > PEER_NAME_MAX || !name.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; PEER_NAME_MAX];
        // FNV-1a over the lower-cased name: equal names (RFC 4343: case-insensitive) hash alike.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (to, from) in bytes.iter_mut().zip(name) {
            *to = from.to_ascii_lowercase();
            hash = (hash ^ u64::from(*to)).wrapping_mul(0x0100_0000_01b3);
        }
        Some(PeerName {
            hash,
            len: name.len() as u8, // at most 253, checked above
            bytes,
        })
    }

    /// The name, lower case.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        // ASCII, checked in `new`.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// A hash of the name: what a connection remembers it was verified against.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for PeerName {
    fn eq(&self, other: &PeerName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PeerName {}

impl fmt::Debug for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerName({})", self.as_str())
    }
}

/// The core's decision about one received message.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forward the rewritten message (RFC 3261 §16.6 for requests, §16.11 for responses).
    Forward(Transmit),
    /// Send a locally built stateless response back toward the request's sender.
    Reply { transmit: Transmit, status: u16 },
    /// Send nothing; count the reason.
    Drop(DropReason),
    /// The message waits in the worker's parking area for the answer to its query
    /// (`Parking::query(ticket)`); hand that to a side thread, then call `Proxy::resume`.
    Park(super::Ticket),
}

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// Why a message was dropped without any reply. Each one is a counter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)+
        }

        impl DropReason {
            /// Every reason, in counter order (`reason as usize` indexes this list).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];

            /// A stable snake_case name for metrics and logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)+
                }
            }
        }
    };
}

drop_reasons! {
    /// A datagram of only CRLFs (a keep-alive ping); nothing to answer on UDP.
    Keepalive => "keepalive",
    /// Not a SIP message at all: no request or status line could be found.
    NotSip => "not_sip",
    /// A STUN message on a UDP SIP port that is not a Binding request we answer (RFC 5626
    /// §4.4.2 keep-alives are answered; see `proxy::stun`).
    StunIgnored => "stun_ignored",
    /// A request whose framing or headers are broken and that has no usable Via to answer.
    MalformedRequest => "malformed_request",
    /// A response whose framing or headers are broken; responses are never answered.
    MalformedResponse => "malformed_response",
    /// Larger than the transport's limit and no usable Via to send 513 to.
    TooLarge => "too_large",
    /// An ACK that could not be forwarded; ACKs are never answered (RFC 3261 §17.2.1).
    AckNotForwarded => "ack_not_forwarded",
    /// A response whose top Via is not this proxy's (RFC 3261 §16.11: silently discard).
    ResponseNotOurs => "response_not_ours",
    /// A response with no Via left after removing ours: it was addressed to this proxy.
    ResponseForProxy => "response_for_proxy",
    /// A response whose next Via names a host that cannot be resolved.
    ResponseUnroutable => "response_unroutable",
    /// The rewritten message would not fit the output buffer.
    OutputTooLarge => "output_too_large",
    /// The destination is this proxy's own listener (a loop) for a response.
    ResponseLoop => "response_loop",
    /// So many header lines that what the proxy would send (with its own lines added) would
    /// pass the header limit, and no reply fits either.
    TooManyHeaders => "too_many_headers",
    /// A retransmission of a request that is parked already: the parked copy will go on.
    ParkedRetransmission => "parked_retransmission",
    /// A request that had to park found the parking area full and cannot be answered (an
    /// ACK); other requests get the feature's reply (503).
    ParkingFull => "parking_full",
    /// A parked request still waiting when the worker stopped.
    ParkedAtShutdown => "parked_at_shutdown",
    /// The routing policy said `drop`.
    PolicyDrop => "policy_drop",
    /// Edge protection: a request over its source's rate limit (`protect`).
    RateLimited => "rate",
    /// Edge protection: a request from a banned source.
    Banned => "ban",
    /// Edge protection: a request a scanner pattern matched (User-Agent, From).
    Scanner => "scanner",
    /// Edge protection: a source the listener's access list refuses.
    AccessDenied => "acl",
    /// The answer to one of our own health probes (a destination group's OPTIONS): it is
    /// consumed here, never forwarded.
    ProbeAnswer => "probe_answer",
    /// The answer to one of the registrar's OPTIONS keepalives to a UDP binding's flow: it
    /// proves the flow alive and is consumed here.
    KeepaliveAnswer => "keepalive_answer",
    /// Framing another reader could read differently (a bare CR, a duplicated singleton such
    /// as a second Content-Length) and no usable Via to answer 400 to (RFC 4475 §3.3.8, §3.3.9).
    AmbiguousFraming => "ambiguous_framing",
    /// A response whose next hop is a broadcast, multicast or unspecified address
    /// (RFC 4475 §3.3.10).
    NotUnicast => "not_unicast",
}

impl DropReason {
    /// The number of distinct reasons (the length of a counter array).
    pub const COUNT: usize = Self::ALL.len();
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_index_their_own_list() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(!r.name().is_empty());
        }
    }

    #[test]
    fn a_peer_name_is_the_lower_case_domain_without_its_root_dot() {
        // RFC 4343: DNS names compare case-insensitively; RFC 6125 §6.4.1: no trailing dot.
        let a = PeerName::new(b"SIP.Example.COM.").unwrap();
        let b = PeerName::new(b"sip.example.com").unwrap();
        assert_eq!(a.as_str(), "sip.example.com");
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), PeerName::new(b"sip.example.net").unwrap().hash());
    }

    #[test]
    fn a_peer_name_refuses_empty_long_and_non_ascii_names() {
        assert_eq!(PeerName::new(b""), None);
        assert_eq!(PeerName::new(b"."), None);
        assert_eq!(PeerName::new("é.test".as_bytes()), None);
        let long = [b'a'; 254];
        assert_eq!(PeerName::new(&long), None);
        assert_eq!(PeerName::new(&long[..253]).unwrap().as_str().len(), 253);
    }
}
