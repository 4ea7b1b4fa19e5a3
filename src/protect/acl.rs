//! Access lists: which sources a listener accepts anything from, checked before any other
//! work on a message (the cheapest drop there is).
//!
//! A list has `allow` and `deny` blocks. The most specific block containing the source
//! decides (a deny wins a tie); a source in no block is accepted when `allow` is empty and
//! refused otherwise. So `allow = ["10.0.0.0/8"], deny = ["10.66.0.0/16"]` accepts 10/8 but
//! 10.66/16, and `deny = ["192.0.2.0/24"]` alone refuses only that block. A list applies to
//! one listener (transport and address; an unspecified IP or port 0 matches any) or, without
//! one, to every listener; all lists that apply must accept.

use std::net::{IpAddr, SocketAddr};

use super::cidr::CidrSet;
use crate::proxy::Transport;

/// The listener an access list applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerMatch {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl ListenerMatch {
    fn matches(&self, transport: Transport, local: SocketAddr) -> bool {
        self.transport == transport
            && (self.addr.ip().is_unspecified() || self.addr.ip() == local.ip())
            && (self.addr.port() == 0 || self.addr.port() == local.port())
    }
}

/// One access list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessList {
    /// `None`: every listener.
    pub listener: Option<ListenerMatch>,
    pub allow: CidrSet,
    pub deny: CidrSet,
}

impl AccessList {
    /// Whether this list applies to the listener `local` over `transport`.
    pub fn applies(&self, transport: Transport, local: SocketAddr) -> bool {
        self.listener.is_none_or(|l| l.matches(transport, local))
    }

    /// Whether the list accepts `source`.
    pub fn permits(&self, source: IpAddr) -> bool {
        match (
            self.allow.longest_match(source),
            self.deny.longest_match(source),
        ) {
            (Some(allow), Some(deny)) => allow > deny,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => self.allow.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(allow: &[&str], deny: &[&str]) -> AccessList {
        AccessList {
            listener: None,
            allow: CidrSet::parse(allow).unwrap(),
            deny: CidrSet::parse(deny).unwrap(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_most_specific_block_decides() {
        let l = list(&["10.0.0.0/8", "10.66.6.0/24"], &["10.66.0.0/16"]);
        assert!(l.permits(ip("10.1.2.3")));
        assert!(!l.permits(ip("10.66.1.1")));
        assert!(l.permits(ip("10.66.6.6")));
        assert!(
            !l.permits(ip("192.0.2.1")),
            "an allow list refuses the rest"
        );
        let deny_only = list(&[], &["192.0.2.0/24"]);
        assert!(!deny_only.permits(ip("192.0.2.9")));
        assert!(deny_only.permits(ip("198.51.100.1")));
        let tie = list(&["192.0.2.0/24"], &["192.0.2.0/24"]);
        assert!(!tie.permits(ip("192.0.2.1")), "deny wins a tie");
        assert!(list(&[], &[]).permits(ip("2001:db8::1")));
    }

    #[test]
    fn lists_apply_to_their_listener() {
        let mut l = list(&[], &["0.0.0.0/0"]);
        let local: SocketAddr = "192.0.2.10:5060".parse().unwrap();
        assert!(l.applies(Transport::Udp, local));
        l.listener = Some(ListenerMatch {
            transport: Transport::Udp,
            addr: "0.0.0.0:5060".parse().unwrap(),
        });
        assert!(l.applies(Transport::Udp, local));
        assert!(!l.applies(Transport::Tcp, local));
        assert!(!l.applies(Transport::Udp, "192.0.2.10:5080".parse().unwrap()));
        l.listener = Some(ListenerMatch {
            transport: Transport::Udp,
            addr: "192.0.2.11:0".parse().unwrap(),
        });
        assert!(!l.applies(Transport::Udp, local));
    }
}
