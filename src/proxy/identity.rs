//! Who this proxy is: its listeners with the Via and Record-Route text pre-rendered for each,
//! the set of addresses and names it answers to, and the static host table.
//!
//! Built once by `Proxy::new`; read-only afterwards, so workers share it freely.

use std::net::{IpAddr, SocketAddr};

use crate::sip::{HostKind, HostSpan, Transport};

use super::config::{ConfigError, Host, HostPort, Listener, ProxyConfig};

/// The branch prefix this proxy writes: the magic cookie plus `fv`, then 16 hex digits.
pub(crate) const BRANCH_PREFIX: &[u8] = b"z9hG4bKfv";
const BRANCH_LEN: usize = BRANCH_PREFIX.len() + 16;

/// One listener, with what the hot path writes when a message leaves through it.
#[derive(Debug)]
pub(crate) struct Local {
    pub transport: Transport,
    /// The bound address, reported in `Transmit::local`.
    pub addr: SocketAddr,
    /// `Via: SIP/2.0/UDP host:port;branch=z9hG4bKfv` (the hash follows).
    pub via_prefix: Box<[u8]>,
    /// `Record-Route: <sip:host:port;lr>\r\n` (with `;transport=` when not UDP).
    pub record_route: Box<[u8]>,
    /// `host:port` as written in Via and Record-Route (and rewritten Contacts).
    pub shown: Box<[u8]>,
    /// Whether it sends to IPv6 destinations.
    pub ipv6: bool,
}

impl Local {
    fn new(listener: &Listener) -> Result<Local, ConfigError> {
        let shown = shown_address(listener)?;
        let via_prefix = format!(
            "Via: SIP/2.0/{} {shown};branch={}",
            listener.transport.via_token(),
            String::from_utf8_lossy(BRANCH_PREFIX)
        );
        let transport = match listener.transport {
            Transport::Udp => String::new(),
            t => format!(";transport={}", t.uri_param()),
        };
        let record_route = format!("Record-Route: <sip:{shown}{transport};lr>\r\n");
        Ok(Local {
            shown: shown.to_string().into_bytes().into(),
            transport: listener.transport,
            addr: listener.addr,
            via_prefix: via_prefix.into_bytes().into(),
            record_route: record_route.into_bytes().into(),
            ipv6: listener.addr.is_ipv6(),
        })
    }
}

/// The `host:port` written for a listener: its advertised address, else its bound one.
fn shown_address(listener: &Listener) -> Result<HostPort, ConfigError> {
    match &listener.advertise {
        Some(adv) => Ok(HostPort {
            host: adv.host.clone(),
            port: Some(adv.port.unwrap_or(listener.addr.port())),
        }),
        None if listener.addr.ip().is_unspecified() => Err(ConfigError(format!(
            "listener {} is bound to an unspecified address: an advertised address is needed",
            listener.addr
        ))),
        None => Ok(HostPort {
            host: Host::Ip(listener.addr.ip()),
            port: Some(listener.addr.port()),
        }),
    }
}

/// One address or name this proxy answers to; `port: None` matches any port.
#[derive(Debug)]
struct Me {
    host: Host,
    port: Option<u16>,
}

/// The addresses and names that identify this proxy: everything needed to recognise it in a Route, Request-URI or Via.
#[derive(Debug)]
pub(crate) struct SelfNames {
    me: Vec<Me>,
}

impl SelfNames {
    fn new(config: &ProxyConfig) -> SelfNames {
        let mut me = Vec::new();
        for l in &config.listeners {
            if !l.addr.ip().is_unspecified() {
                me.push(Me {
                    host: Host::Ip(l.addr.ip()),
                    port: Some(l.addr.port()),
                });
            }
            if let Some(adv) = &l.advertise {
                me.push(Me {
                    host: adv.host.clone(),
                    port: Some(adv.port.unwrap_or(l.addr.port())),
                });
            }
        }
        for alias in &config.aliases {
            me.push(Me {
                host: alias.host.clone(),
                port: alias.port,
            });
        }
        SelfNames { me }
    }

    /// Whether `host[:port]` names this proxy; `default_port` applies when `port` is absent
    /// (5060, or 5061 for SIPS/TLS: RFC 3261 §19.1.2).
    pub(super) fn is_me(
        &self,
        buf: &[u8],
        host: &HostSpan,
        port: Option<u16>,
        default_port: u16,
    ) -> bool {
        let port = port.unwrap_or(default_port);
        self.me
            .iter()
            .any(|m| m.port.is_none_or(|p| p == port) && host_matches(&m.host, buf, host))
    }
}

fn host_matches(mine: &Host, buf: &[u8], host: &HostSpan) -> bool {
    match (mine, host.kind) {
        (Host::Ip(IpAddr::V4(a)), HostKind::Ipv4(b)) => *a == b,
        (Host::Ip(IpAddr::V6(a)), HostKind::Ipv6(b)) => *a == b,
        (Host::Name(name), HostKind::Name) => {
            name.as_bytes().eq_ignore_ascii_case(host.span.of(buf))
        }
        _ => false,
    }
}

/// The static name → address table (`ProxyConfig::hosts`).
#[derive(Debug, Default)]
pub(crate) struct HostTable {
    entries: Vec<(Box<[u8]>, IpAddr)>,
}

impl HostTable {
    fn new(hosts: &[(String, IpAddr)]) -> HostTable {
        HostTable {
            entries: hosts
                .iter()
                .map(|(name, ip)| (name.to_ascii_lowercase().into_bytes().into(), *ip))
                .collect(),
        }
    }

    /// The address of a host: itself when it is an IP literal, else from the table.
    pub(super) fn resolve(&self, buf: &[u8], host: &HostSpan) -> Option<IpAddr> {
        match host.kind {
            HostKind::Ipv4(ip) => Some(IpAddr::V4(ip)),
            HostKind::Ipv6(ip) => Some(IpAddr::V6(ip)),
            HostKind::Name => self.lookup(host.span.of(buf)),
        }
    }

    pub(super) fn lookup(&self, name: &[u8]) -> Option<IpAddr> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, ip)| ip)
    }
}

/// The proxy's identity, listeners and host table together.
#[derive(Debug)]
pub(crate) struct Identity {
    pub locals: Vec<Local>,
    pub names: SelfNames,
    pub hosts: HostTable,
}

impl Identity {
    pub(super) fn new(config: &ProxyConfig) -> Result<Identity, ConfigError> {
        let locals = config
            .listeners
            .iter()
            .map(Local::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Identity {
            locals,
            names: SelfNames::new(config),
            hosts: HostTable::new(&config.hosts),
        })
    }

    /// The listener a message arrived on: same address and transport, else same transport.
    pub(super) fn arrival(&self, local: SocketAddr, transport: Transport) -> usize {
        self.locals
            .iter()
            .position(|l| l.addr == local && l.transport == transport)
            .or_else(|| self.locals.iter().position(|l| l.transport == transport))
            .unwrap_or(0)
    }

    /// The listener to send from toward `dest` over `transport`: the arrival listener when it
    /// fits (same transport and address family), else the first that does.
    pub(super) fn departure(
        &self,
        arrival: usize,
        transport: Transport,
        dest: IpAddr,
    ) -> Option<usize> {
        let fits = |l: &Local| l.transport == transport && l.ipv6 == dest.is_ipv6();
        match self.locals.get(arrival) {
            Some(l) if fits(l) => Some(arrival),
            _ => self.locals.iter().position(fits),
        }
    }

    /// Whether sending to `dest` would reach one of our own listeners (a loop).
    pub(super) fn is_own_socket(&self, dest: SocketAddr, transport: Transport) -> bool {
        self.locals.iter().any(|l| {
            l.transport == transport
                && l.addr.port() == dest.port()
                && (l.addr.ip() == dest.ip()
                    || (l.addr.ip().is_unspecified() && dest.ip().is_loopback()))
        })
    }
}

/// The hash in `branch` when it is one this proxy could have written (RFC 3261 §16.11: a
/// stateless proxy recognises its own Via in responses by sent-by and branch).
pub(crate) fn our_branch_hash(branch: &[u8]) -> Option<u64> {
    if branch.len() != BRANCH_LEN || !branch.starts_with(BRANCH_PREFIX) {
        return None;
    }
    parse_hex(&branch[BRANCH_PREFIX.len()..]).filter(|_| {
        branch[BRANCH_PREFIX.len()..]
            .iter()
            .all(|b| !b.is_ascii_uppercase())
    })
}

/// Lower- or upper-case hex of 1 to 16 digits.
pub(crate) fn parse_hex(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n << 4 | u64::from(d))
    })
}

/// A host span of `text` (for tests and config-time checks).
#[cfg(test)]
fn host_of(text: &[u8]) -> HostSpan {
    use crate::sip::Span;
    crate::sip::SipUri::parse(text, Span::new(0, text.len()))
        .unwrap()
        .host
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Span;

    fn config() -> ProxyConfig {
        let mut c = ProxyConfig::new(
            Listener {
                transport: Transport::Udp,
                addr: "192.0.2.10:5060".parse().unwrap(),
                advertise: Some(HostPort::parse("edge.example.net").unwrap()),
            },
            [7; 16],
        );
        c.listeners.push(Listener {
            transport: Transport::Udp,
            addr: "[2001:db8::10]:5070".parse().unwrap(),
            advertise: None,
        });
        c.aliases.push(HostPort::parse("sip.example.net").unwrap());
        c.hosts
            .push(("core.example.net".into(), "10.0.0.9".parse().unwrap()));
        c
    }

    #[test]
    fn pre_rendered_text() {
        let me = Identity::new(&config()).unwrap();
        assert_eq!(
            &*me.locals[0].via_prefix,
            b"Via: SIP/2.0/UDP edge.example.net:5060;branch=z9hG4bKfv"
        );
        assert_eq!(
            &*me.locals[1].record_route,
            b"Record-Route: <sip:[2001:db8::10]:5070;lr>\r\n"
        );
    }

    #[test]
    fn recognises_itself() {
        let me = Identity::new(&config()).unwrap();
        let id = &me.names;
        let yes: &[&[u8]] = &[
            b"sip:192.0.2.10",
            b"sip:192.0.2.10:5060",
            b"sip:EDGE.example.net",
            b"sip:[2001:db8::10]:5070",
            b"sip:[2001:db8:0::10]:5070",
            b"sip:sip.example.net:7777",
        ];
        for text in yes {
            let u = crate::sip::SipUri::parse(text, Span::new(0, text.len())).unwrap();
            assert!(id.is_me(text, &u.host, u.port, 5060), "{text:?}");
        }
        let no: &[&[u8]] = &[
            b"sip:192.0.2.10:5061",
            b"sip:192.0.2.11",
            b"sip:[2001:db8::10]",
            b"sip:edge.example.org",
        ];
        for text in no {
            let u = crate::sip::SipUri::parse(text, Span::new(0, text.len())).unwrap();
            assert!(!id.is_me(text, &u.host, u.port, 5060), "{text:?}");
        }
    }

    #[test]
    fn unspecified_bind_needs_an_advertised_address() {
        let c = ProxyConfig::new(
            Listener {
                transport: Transport::Udp,
                addr: "0.0.0.0:5060".parse().unwrap(),
                advertise: None,
            },
            [0; 16],
        );
        assert!(Identity::new(&c).is_err());
    }

    #[test]
    fn host_table() {
        let me = Identity::new(&config()).unwrap();
        let t = b"sip:Core.Example.NET";
        assert_eq!(
            me.hosts.resolve(t, &host_of(t)),
            Some("10.0.0.9".parse().unwrap())
        );
        let t = b"sip:unknown.example.net";
        assert_eq!(me.hosts.resolve(t, &host_of(t)), None);
        let t = b"sip:[::1]";
        assert_eq!(
            me.hosts.resolve(t, &host_of(t)),
            Some("::1".parse().unwrap())
        );
    }

    #[test]
    fn listener_choice() {
        let me = Identity::new(&config()).unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::99".parse().unwrap();
        assert_eq!(me.departure(0, Transport::Udp, v4), Some(0));
        assert_eq!(me.departure(0, Transport::Udp, v6), Some(1));
        assert_eq!(me.departure(1, Transport::Udp, v4), Some(0));
        assert_eq!(me.departure(0, Transport::Tcp, v4), None);
        assert_eq!(
            me.arrival("[2001:db8::10]:5070".parse().unwrap(), Transport::Udp),
            1
        );
    }

    #[test]
    fn own_branches() {
        assert_eq!(
            our_branch_hash(b"z9hG4bKfv0123456789abcdef"),
            Some(0x0123456789abcdef)
        );
        assert_eq!(our_branch_hash(b"z9hG4bKfv0123456789abcdeF"), None);
        assert_eq!(our_branch_hash(b"z9hG4bKfv0123456789abcde"), None);
        assert_eq!(our_branch_hash(b"z9hG4bKfv0123456789abcdeg"), None);
        assert_eq!(our_branch_hash(b"z9hG4bK776asdhds"), None);
        assert_eq!(parse_hex(b"a3"), Some(0xa3));
        assert_eq!(parse_hex(b""), None);
        assert_eq!(parse_hex(b"+1"), None);
    }
}
