//! What the core decides about one message: forward it, answer it, or drop it.
//!
//! The bytes of a forward or a reply are in the caller's output buffer, `out[..len]`; the
//! outcome says where they go. Every drop has a named reason that the runtime counts.

use std::fmt;
use std::net::SocketAddr;

/// A SIP transport, as named in a Via (`SIP/2.0/UDP`) or a URI (`;transport=tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    /// The upper-case token written in a Via: `UDP`, `TCP`, `TLS`, `WS`, `WSS`.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// The lower-case value of a URI `transport` parameter.
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// Parses a Via transport token or a URI transport parameter, case-insensitively.
    pub fn from_token(token: &[u8]) -> Option<Transport> {
        const NAMES: [(&[u8], Transport); 5] = [
            (b"udp", Transport::Udp),
            (b"tcp", Transport::Tcp),
            (b"tls", Transport::Tls),
            (b"ws", Transport::Ws),
            (b"wss", Transport::Wss),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map(|&(_, t)| t)
    }

    /// Stream transports frame messages by Content-Length (RFC 3261 §18.3).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The port a URI or Via implies when it names none (RFC 3261 §19.1.2, §18.2.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls | Transport::Wss => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

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
    fn transport_tokens_round_trip() {
        for t in [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ] {
            assert_eq!(Transport::from_token(t.via_token().as_bytes()), Some(t));
            assert_eq!(Transport::from_token(t.uri_param().as_bytes()), Some(t));
        }
        assert_eq!(Transport::from_token(b"sctp"), None);
    }
}
