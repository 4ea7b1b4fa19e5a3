//! What an operator configures for a destination group: its destinations (a SIP URI each,
//! with weight and priority), how one is chosen, and how they are probed.
//!
//! Plain data, validated once by [`GroupConfig::validate`]; [`Groups::new`](super::Groups::new)
//! turns it into the shared table the hot path reads.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::sip::{HostKind, Scheme, SipUri, Span, Transport};

/// The most destinations one group may hold: the live set is one `u64` bit mask, read with one
/// atomic load.
pub const MAX_DESTINATIONS: usize = 64;

/// How a destination is chosen among the live ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Weighted rendezvous (highest-random-weight) hashing over a key: every message with the
    /// same key reaches the same destination while it is up, and a destination leaving moves
    /// only its own share.
    #[default]
    Hash,
    /// The lowest priority tier with a live destination (active/standby); within the tier,
    /// weighted rendezvous hashing over the key, as `hash`.
    Priority,
    /// Spread by weight over the transaction (its branch), without a call key: retransmissions
    /// and a CANCEL follow their request only while the live set is unchanged.
    Weighted,
}

impl Algorithm {
    pub fn parse(text: &str) -> Result<Algorithm, GroupError> {
        match text {
            "hash" => Ok(Algorithm::Hash),
            "priority" => Ok(Algorithm::Priority),
            "weighted" => Ok(Algorithm::Weighted),
            _ => Err(GroupError(format!(
                "algorithm {text:?}: expected hash, priority or weighted"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hash => "hash",
            Algorithm::Priority => "priority",
            Algorithm::Weighted => "weighted",
        }
    }
}

/// What `hash` and `priority` hash to pick a destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashKey {
    /// The Call-ID: every message of a call (CANCEL and ACK included) goes the same way.
    #[default]
    CallId,
    /// The user part of the From URI (a caller's calls stick together).
    FromUser,
    /// The user part of the To URI.
    ToUser,
    /// The user part of the Request-URI (the dialled number).
    RequestUriUser,
    /// The packet's source IP address.
    SourceIp,
}

impl HashKey {
    pub fn parse(text: &str) -> Result<HashKey, GroupError> {
        match text {
            "call-id" => Ok(HashKey::CallId),
            "from-user" => Ok(HashKey::FromUser),
            "to-user" => Ok(HashKey::ToUser),
            "ruri-user" => Ok(HashKey::RequestUriUser),
            "source-ip" => Ok(HashKey::SourceIp),
            _ => Err(GroupError(format!(
                "hash key {text:?}: expected call-id, from-user, to-user, ruri-user or source-ip"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashKey::CallId => "call-id",
            HashKey::FromUser => "from-user",
            HashKey::ToUser => "to-user",
            HashKey::RequestUriUser => "ruri-user",
            HashKey::SourceIp => "source-ip",
        }
    }
}

/// Active health probing of every destination of a group (OPTIONS, RFC 3261 §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Probe at all; without probes every destination stays up unless a passive signal
    /// (503 with Retry-After) takes it down for a while.
    pub enabled: bool,
    /// Time between two probes of one destination.
    pub interval: Duration,
    /// A probe unanswered this long has failed (at most the interval).
    pub timeout: Duration,
    /// Consecutive failed probes that take an up destination down.
    pub down_after: u32,
    /// Consecutive answered probes that bring a down destination up.
    pub up_after: u32,
    /// Response codes that count as alive (200 by default); any other answer is a failure.
    pub alive_codes: Vec<u16>,
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig {
            enabled: true,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            down_after: 3,
            up_after: 2,
            alive_codes: vec![200],
        }
    }
}

/// One destination: where to send (an IP literal, a name from the `[hosts]` table, or a DNS
/// name resolved at start and refreshed), with its weight and priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationConfig {
    /// The URI as configured (shown to operators, and the seed of its rendezvous hash so that
    /// reordering the list moves nothing).
    pub uri: String,
    pub addr: SocketAddr,
    pub transport: Transport,
    /// Relative share under `hash` and `weighted` (1..=1000).
    pub weight: u32,
    /// Tier under `priority`: lower is preferred.
    pub priority: u32,
    /// A host name outside `[hosts]`, resolved by DNS (RFC 3263) at start and refreshed before
    /// its TTL ends; `addr` is unspecified until then.
    pub name: Option<String>,
    /// For a name that resolved to several addresses: which one this is (0 for the first).
    /// Part of the destination's identity (its rendezvous seed): each address has its own
    /// health.
    pub target: u8,
    /// For a target of a DNS name: the SRV priority and weight it came with (RFC 2782), which
    /// choose among the name's targets; `None` for an IP literal, a `[hosts]` name, or a name
    /// not resolved yet.
    pub srv: Option<SrvRank>,
}

/// A DNS target's SRV priority and weight (RFC 2782); 0 and 0 for an address found without
/// SRV records (A/AAAA only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SrvRank {
    pub priority: u16,
    pub weight: u16,
}

impl DestinationConfig {
    /// Parses `sip:HOST[:PORT][;transport=T]`; a host name is looked up with `hosts` (the
    /// static table); any other name is kept in `name` for DNS (resolved by the service).
    pub fn parse(
        uri: &str,
        weight: u32,
        priority: u32,
        hosts: impl Fn(&str) -> Option<std::net::IpAddr>,
    ) -> Result<DestinationConfig, GroupError> {
        let bad = |why: &str| GroupError(format!("destination {uri:?}: {why}"));
        let buf = uri.as_bytes();
        let parsed =
            SipUri::parse(buf, Span::new(0, buf.len())).map_err(|_| bad("not a SIP URI"))?;
        let transport = match parsed.transport(buf) {
            // RFC 3261 §26.2.2: a SIPS URI is reached over TLS ("transport=tcp" is TLS over
            // TCP); WebSocket becomes its secure form.
            Some(Transport::Udp | Transport::Tcp) if parsed.scheme == Scheme::Sips => {
                Transport::Tls
            }
            Some(Transport::Ws) if parsed.scheme == Scheme::Sips => Transport::Wss,
            Some(t) => t,
            None => return Err(bad("unknown transport")),
        };
        let host = parsed.host.span.of(buf);
        let host = std::str::from_utf8(host).map_err(|_| bad("bad host"))?;
        let mut name = None;
        let ip = match parsed.host.kind {
            HostKind::Name => match hosts(&host.to_ascii_lowercase()) {
                Some(ip) => ip,
                None => {
                    name = Some(host.to_ascii_lowercase());
                    std::net::IpAddr::from([0, 0, 0, 0])
                }
            },
            _ => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| bad("bad IP address"))?,
        };
        // Shown as a Prometheus label value and in JSON: nothing there needs escaping.
        if uri.bytes().any(|b| matches!(b, b'"' | b'\\' | b'{' | b'}')) {
            return Err(bad("quotes, backslashes and braces are not allowed"));
        }
        if !(1..=1000).contains(&weight) {
            return Err(bad("weight must be 1..=1000"));
        }
        let port = parsed.port.unwrap_or(transport.default_port());
        Ok(DestinationConfig {
            uri: uri.to_owned(),
            addr: SocketAddr::new(ip, port),
            transport,
            weight,
            priority,
            name,
            target: 0,
            srv: None,
        })
    }
}

/// One group as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    pub name: String,
    pub algorithm: Algorithm,
    pub key: HashKey,
    pub destinations: Vec<DestinationConfig>,
    pub probe: ProbeConfig,
    /// The Retry-After (seconds) of the 503 answered when every destination is down.
    pub retry_after: u32,
}

impl GroupConfig {
    /// A group with the defaults: `hash` over the Call-ID, default probing, Retry-After 30.
    pub fn new(name: &str, destinations: Vec<DestinationConfig>) -> GroupConfig {
        GroupConfig {
            name: name.to_owned(),
            algorithm: Algorithm::default(),
            key: HashKey::default(),
            destinations,
            probe: ProbeConfig::default(),
            retry_after: 30,
        }
    }

    /// Checks what the table relies on: a name, 1..=64 destinations with distinct URIs, probe
    /// thresholds of at least one, a timeout within the interval.
    pub fn validate(&self) -> Result<(), GroupError> {
        let bad = |why: String| Err(GroupError(format!("group {:?}: {why}", self.name)));
        let valid_name = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return bad("a name is letters, digits, - and _".into());
        }
        let n = self.destinations.len();
        if n == 0 || n > MAX_DESTINATIONS {
            return bad(format!("1 to {MAX_DESTINATIONS} destinations, not {n}"));
        }
        for (i, d) in self.destinations.iter().enumerate() {
            if self.destinations[..i]
                .iter()
                .any(|e| e.uri == d.uri && e.target == d.target)
            {
                return bad(format!("destination {} twice", d.uri));
            }
        }
        let p = &self.probe;
        if p.down_after == 0 || p.up_after == 0 {
            return bad("down-after and up-after must be at least 1".into());
        }
        if p.interval < Duration::from_millis(10) || p.timeout.is_zero() || p.timeout > p.interval {
            return bad("probe interval at least 10ms, timeout above zero and within it".into());
        }
        if p.alive_codes.iter().any(|c| !(200..=699).contains(c)) {
            return bad("alive codes are final response codes (200..=699)".into());
        }
        Ok(())
    }
}

/// A group setting that cannot work, with a message for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupError(pub String);

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GroupError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_hosts(_: &str) -> Option<std::net::IpAddr> {
        None
    }

    #[test]
    fn destinations_parse() {
        let d = DestinationConfig::parse("sip:127.0.0.1:5071", 1, 0, no_hosts).unwrap();
        assert_eq!(d.addr, "127.0.0.1:5071".parse().unwrap());
        assert_eq!(d.transport, Transport::Udp);
        let d = DestinationConfig::parse("sip:[::1];transport=tcp", 2, 1, no_hosts).unwrap();
        assert_eq!(d.addr, "[::1]:5060".parse().unwrap());
        assert_eq!(d.transport, Transport::Tcp);
        let hosts = |name: &str| (name == "core1").then(|| "10.0.0.1".parse().unwrap());
        let d = DestinationConfig::parse("sip:Core1:5080", 1, 0, hosts).unwrap();
        assert_eq!(d.addr, "10.0.0.1:5080".parse().unwrap());
        // A name outside [hosts] is left to DNS: RFC 3263 §4 decides what is asked.
        let d = DestinationConfig::parse("sip:Core2", 1, 0, hosts).unwrap();
        assert_eq!(d.name.as_deref(), Some("core2"));
        assert!(d.addr.ip().is_unspecified());

        // RFC 3261 §26.2.2: SIPS is TLS, whatever the transport parameter says.
        let d = DestinationConfig::parse("sips:10.0.0.1;transport=tcp", 1, 0, no_hosts).unwrap();
        assert_eq!((d.transport, d.addr.port()), (Transport::Tls, 5061));
        let d = DestinationConfig::parse("sips:10.0.0.1", 1, 0, no_hosts).unwrap();
        assert_eq!(d.transport, Transport::Tls);

        assert!(DestinationConfig::parse("http://x", 1, 0, no_hosts).is_err());
        assert!(DestinationConfig::parse("sip:1.2.3.4", 0, 0, no_hosts).is_err());
    }

    #[test]
    fn validation() {
        let d = |uri: &str| DestinationConfig::parse(uri, 1, 0, no_hosts).unwrap();
        let mut g = GroupConfig::new("core", vec![d("sip:1.1.1.1"), d("sip:1.1.1.2")]);
        assert_eq!(g.validate(), Ok(()));
        g.probe.timeout = g.probe.interval * 2;
        assert!(g.validate().is_err());
        g.probe = ProbeConfig::default();
        g.destinations.push(d("sip:1.1.1.1"));
        assert!(g.validate().is_err());
        g.destinations.clear();
        assert!(g.validate().is_err());
        assert!(
            GroupConfig::new("a b", vec![d("sip:1.1.1.1")])
                .validate()
                .is_err()
        );
        assert_eq!(Algorithm::parse("hash"), Ok(Algorithm::Hash));
        assert!(HashKey::parse("via").is_err());
    }
}
