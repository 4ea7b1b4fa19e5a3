//! SIP transports (RFC 3261 §18, RFC 7118 for WebSocket).

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
