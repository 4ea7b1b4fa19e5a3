//! What is looked up: a host name and what the URI said about port and transport
//! ([`Want`], RFC 3263 §4.1–4.2), inline so that a worker can build one on its stack.

use std::hash::{Hash, Hasher};

use crate::sip::Transport;

/// The longest host name looked up (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 253;

/// Which RFC 3263 procedure a name goes through, decided by the URI alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Want {
    /// RFC 3263 §4.2: the URI has a port — A/AAAA only; the port and transport are the URI's.
    Address,
    /// RFC 3263 §4.2: a transport without a port — SRV for that transport, else A/AAAA at its
    /// default port.
    Srv(Transport),
    /// RFC 3263 §4.1: neither — NAPTR, then SRV for the transports we support, then A/AAAA at
    /// 5060 (5061 for `sips:`, always over TLS).
    Naptr {
        /// A `sips:` URI: only TLS (`SIPS+D2T`, `_sips._tcp`) is acceptable.
        secure: bool,
    },
}

impl Want {
    /// RFC 3263 §4.1 and §4.2: what to look up for a URI whose host is a name, given its
    /// port, its `transport` parameter and whether it is `sips:`.
    pub fn of(port: Option<u16>, transport: Option<Transport>, secure: bool) -> Want {
        match (port, transport) {
            // §4.2: "If the TARGET was not a numeric IP address, but a port is present in the
            // URI, the client performs an A or AAAA record lookup of the domain name."
            (Some(_), _) => Want::Address,
            // §4.2: "If the TARGET was not a numeric IP address, and no port was present in
            // the URI, the client performs an SRV query on the record returned from the NAPTR
            // processing [...] or, if a transport was specified explicitly, [...] for that
            // transport". A `sips:` URI's transport is TLS whatever it says (§4.1).
            (None, Some(t)) => Want::Srv(if secure { Transport::Tls } else { t }),
            // §4.1: "if no transport protocol is specified, [...] the client performs a NAPTR
            // query for the domain in the URI".
            (None, None) => Want::Naptr { secure },
        }
    }
}

/// A name (lower-case, without a trailing dot) and its [`Want`]: the key of the DNS cache
/// and the question a parked request asks. No allocation.
#[derive(Clone, Copy)]
pub struct Lookup {
    name: [u8; MAX_NAME],
    len: u8,
    pub want: Want,
}

impl Lookup {
    /// `None` for an empty name or one longer than [`MAX_NAME`]; ASCII letters are lowered
    /// (RFC 4343) and one trailing dot dropped.
    pub fn new(name: &[u8], want: Want) -> Option<Lookup> {
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.is_empty() || name.len() > MAX_NAME {
            return None;
        }
        let mut bytes = [0; MAX_NAME];
        for (to, from) in bytes.iter_mut().zip(name) {
            *to = from.to_ascii_lowercase();
        }
        Some(Lookup {
            name: bytes,
            len: name.len() as u8,
            want,
        })
    }

    pub fn name(&self) -> &[u8] {
        &self.name[..usize::from(self.len)]
    }

    /// The name as text (host names are ASCII; anything else shows as a replacement).
    pub fn name_str(&self) -> &str {
        std::str::from_utf8(self.name()).unwrap_or("\u{fffd}")
    }
}

impl PartialEq for Lookup {
    fn eq(&self, other: &Lookup) -> bool {
        self.want == other.want && self.name() == other.name()
    }
}

impl Eq for Lookup {}

impl Hash for Lookup {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
        self.want.hash(state);
    }
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}/{:?}", self.name_str(), self.want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3263_4_port_or_transport_decides_the_procedure() {
        // §4.2: sip:core.example.net:5070 → A/AAAA only.
        assert_eq!(Want::of(Some(5070), None, false), Want::Address);
        assert_eq!(
            Want::of(Some(5070), Some(Transport::Tcp), false),
            Want::Address
        );
        // §4.2: sip:core.example.net;transport=tcp → _sip._tcp SRV.
        assert_eq!(
            Want::of(None, Some(Transport::Tcp), false),
            Want::Srv(Transport::Tcp)
        );
        // §4.1: sips: is TLS whatever the parameter says.
        assert_eq!(
            Want::of(None, Some(Transport::Tcp), true),
            Want::Srv(Transport::Tls)
        );
        // §4.1: sip:core.example.net → NAPTR.
        assert_eq!(Want::of(None, None, false), Want::Naptr { secure: false });
        assert_eq!(Want::of(None, None, true), Want::Naptr { secure: true });
    }

    #[test]
    fn names_are_compared_without_case_and_trailing_dot() {
        let a = Lookup::new(b"Core.Example.NET.", Want::Address).unwrap();
        let b = Lookup::new(b"core.example.net", Want::Address).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.name(), b"core.example.net");
        assert_ne!(
            a,
            Lookup::new(b"core.example.net", Want::Naptr { secure: false }).unwrap()
        );
        assert!(Lookup::new(b"", Want::Address).is_none());
        assert!(Lookup::new(b".", Want::Address).is_none());
        assert!(Lookup::new(&[b'a'; 254], Want::Address).is_none());
        assert!(Lookup::new(&[b'a'; 253], Want::Address).is_some());
    }
}
