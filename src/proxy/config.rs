//! The proxy's identity and routing settings, as the runtime hands them to the core.
//!
//! `ProxyConfig` is plain data (built from the CLI and TOML by the runtime); `Proxy::new`
//! validates it once and pre-renders everything the hot path writes (Via prefixes,
//! Record-Route values), so handling a message never formats an address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::outcome::Transport;

/// A host as written in a URI or Via: an IP address or a (lower-cased) domain name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// Parses `1.2.3.4`, `[::1]`, `::1` or a domain name (lower-cased).
    pub fn parse(text: &str) -> Result<Host, ConfigError> {
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let valid = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if valid {
            Ok(Host::Name(text.to_ascii_lowercase()))
        } else {
            Err(ConfigError(format!(
                "not a host name or IP address: {text:?}"
            )))
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A host with an optional port, e.g. `sip.example.com` or `[2001:db8::1]:5080`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: Host,
    pub port: Option<u16>,
}

impl HostPort {
    /// Parses `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT`.
    pub fn parse(text: &str) -> Result<HostPort, ConfigError> {
        let bad = || ConfigError(format!("not HOST[:PORT]: {text:?}"));
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let close = rest.find(']').ok_or_else(bad)?;
            let after = &rest[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad()),
            };
            (&text[..close + 2], port)
        } else if text.matches(':').count() > 1 {
            (text, None) // a bare IPv6 address
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?),
            None => None,
        };
        Ok(HostPort {
            host: Host::parse(host)?,
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

/// One socket the proxy receives on and sends from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub transport: Transport,
    /// The bound address (may be unspecified, `0.0.0.0`, when `advertise` is set).
    pub addr: SocketAddr,
    /// What to write in Via / Record-Route instead of `addr` (NAT, or a bind to 0.0.0.0).
    pub advertise: Option<HostPort>,
}

/// Where requests addressed to the proxy itself go, e.g. `sip:10.0.0.9:5060;transport=udp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub host: Host,
    pub port: Option<u16>,
    pub transport: Transport,
}

impl NextHop {
    /// Parses `sip:HOST[:PORT][;transport=T]` (also `sips:`, which implies TLS).
    pub fn parse(text: &str) -> Result<NextHop, ConfigError> {
        let bad = |why: &str| ConfigError(format!("next hop {text:?}: {why}"));
        let lower = text.to_ascii_lowercase();
        let (secure, rest) = if let Some(r) = lower.strip_prefix("sips:") {
            (true, r)
        } else if let Some(r) = lower.strip_prefix("sip:") {
            (false, r)
        } else {
            return Err(bad("must start with sip: or sips:"));
        };
        let mut parts = rest.split(';');
        let hostport = HostPort::parse(parts.next().unwrap_or_default())?;
        let mut transport = if secure {
            Transport::Tls
        } else {
            Transport::Udp
        };
        for param in parts {
            match param.split_once('=') {
                Some(("transport", t)) => {
                    transport = Transport::from_token(t.as_bytes())
                        .ok_or_else(|| bad("unknown transport"))?;
                }
                Some(_) | None if param == "lr" => {}
                _ => return Err(bad("only the transport and lr parameters are understood")),
            }
        }
        Ok(NextHop {
            host: hostport.host,
            port: hostport.port,
            transport,
        })
    }
}

/// Everything the core needs to know about this proxy. Built by the runtime.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The sockets this proxy listens on; at least one.
    pub listeners: Vec<Listener>,
    /// Other names and addresses this proxy answers to (a domain, a VIP).
    pub aliases: Vec<HostPort>,
    /// Insert Record-Route on requests (RFC 3261 §16.6 step 4).
    pub record_route: bool,
    /// Where requests addressed to this proxy go (RFC 3261 §16.5).
    pub next_hop: Option<NextHop>,
    /// Where every request goes, whatever its Route and Request-URI say (an edge in front of
    /// one core); both are forwarded unchanged, but for Route values naming this proxy.
    pub route_all_to: Option<NextHop>,
    /// The key of the stateless branch hash (RFC 3261 §16.11); random per process is fine
    /// for one instance, shared across instances behind one address.
    pub branch_secret: [u8; 16],
    /// Largest message accepted over a stream transport (bigger → 513), RFC 3261 §18.3.
    pub max_stream_message: usize,
    /// Static name → address table for hosts in Route, Request-URI, Via and the next hop.
    pub hosts: Vec<(String, IpAddr)>,
    /// Contact rewriting, when enabled (the table itself is shared state: `Tables::contact`).
    pub contact: Option<super::contact::ContactRewrite>,
    /// Host names that are neither IP literals nor in `hosts` park the request and are asked
    /// of the resolver (a side thread the runtime wires); off: they get 503 at once.
    pub resolver: bool,
    /// What each worker's parking area may hold.
    pub parking: super::park::ParkingLimits,
    /// Every request not following our Record-Route goes to this destination group (the
    /// group is in the context's [`Tables::groups`](super::Tables)).
    pub route_to_group: Option<crate::groups::GroupId>,
    /// Put a Path naming this proxy (with the REGISTER's flow in its user part) on every
    /// REGISTER it forwards (RFC 3327 §5.3, RFC 5626 §5.1).
    pub add_path: bool,
    /// The key sealing the flow token in our Path and opening it when a request comes back
    /// with it as its Route (the branch key unless configured).
    pub path_secret: [u8; 16],
    /// Media anchoring through rtpengine (`[media]`): the settings and the counters the core
    /// shares with the NG client (the side service of kind `SideKind::Media`).
    pub media: Option<std::sync::Arc<crate::media::Media>>,
}

impl ProxyConfig {
    /// A config with one listener and the defaults: no Record-Route, no next hop,
    /// 64 KiB stream limit, no contact rewriting, no resolver.
    pub fn new(listener: Listener, branch_secret: [u8; 16]) -> ProxyConfig {
        ProxyConfig {
            listeners: vec![listener],
            aliases: Vec::new(),
            record_route: false,
            next_hop: None,
            route_all_to: None,
            branch_secret,
            max_stream_message: 64 * 1024,
            hosts: Vec::new(),
            contact: None,
            resolver: false,
            parking: super::park::ParkingLimits::default(),
            route_to_group: None,
            add_path: false,
            path_secret: branch_secret,
            media: None,
        }
    }
}

/// A setting the core cannot work with, with a message for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let hp = HostPort::parse("[2001:db8::1]:5080").unwrap();
        assert_eq!(hp.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(hp.port, Some(5080));
        assert_eq!(hp.to_string(), "[2001:db8::1]:5080");
        let hp = HostPort::parse("Proxy.Example.COM").unwrap();
        assert_eq!(hp.host, Host::Name("proxy.example.com".into()));
        assert_eq!(hp.port, None);
        assert_eq!(
            HostPort::parse("::1").unwrap().host,
            Host::Ip("::1".parse().unwrap())
        );
        assert!(HostPort::parse("a:b").is_err());
        assert!(HostPort::parse("host:0").is_err());
        assert!(HostPort::parse("[::1]x").is_err());
        assert!(HostPort::parse("bad host").is_err());
    }

    #[test]
    fn next_hop_forms() {
        let nh = NextHop::parse("sip:10.0.0.9:5060;transport=tcp").unwrap();
        assert_eq!(nh.host, Host::Ip("10.0.0.9".parse().unwrap()));
        assert_eq!(nh.port, Some(5060));
        assert_eq!(nh.transport, Transport::Tcp);
        let nh = NextHop::parse("sips:core.example.net").unwrap();
        assert_eq!(nh.transport, Transport::Tls);
        assert_eq!(nh.port, None);
        assert!(NextHop::parse("http://x").is_err());
        assert!(NextHop::parse("sip:x;transport=sctp").is_err());
    }
}
