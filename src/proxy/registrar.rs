//! Where the proxy hands a request to the registrar (issue 14): a REGISTER for one of our
//! domains is answered here (RFC 3261 §10.3), an out-of-dialog request from one of our users
//! must authenticate first (§22.3, 407), and a Request-URI naming one of our AoRs goes to
//! its best binding over the flow that binding registered from (§16.5, RFC 5626).
//!
//! Each function reads only what it is given; the calls sit in `request.rs` after the
//! §16.3 checks and the §16.4 Route preprocessing, so a request that still carries a Route
//! to elsewhere is routed by it as before.

use std::time::Instant;

use smallvec::SmallVec;

use crate::registrar::{Answer, Registrar, Verified};
use crate::sip::Flow;
use crate::sip::{HeaderName, Message, Method, SipUri, Span};

use super::contact::RestoredUri;
use super::reply::Status;

// A binding's Contact always fits the stack copy a location-routed request makes.
const _: () = assert!(crate::registrar::MAX_CONTACT_URI <= super::MAX_RESTORED_URI);

/// Why a request is answered here instead of forwarded: a plain status, or a registrar's
/// answer with its header lines (a challenge, the bindings, Min-Expires).
#[derive(Debug)]
pub(crate) enum Reject {
    Status(Status),
    Answer(Answer),
}

impl From<Status> for Reject {
    fn from(status: Status) -> Self {
        Reject::Status(status)
    }
}

/// Header lines carrying our realm's credentials: removed before forwarding (§22.3 leaves
/// them to the proxy whose realm they name).
pub(crate) type CredentialLines = SmallVec<[Span; 2]>;

/// Which of our domains a URI's host names: a configured domain, or this proxy's own
/// address (`me`), which stands for the first domain.
fn domain_of(registrar: &Registrar, buf: &[u8], uri: &SipUri, me: bool) -> Option<usize> {
    if registrar.config().domains.is_empty() {
        return None;
    }
    registrar.domain(uri.host.span.of(buf)).or(me.then_some(0))
}

/// Before routing: the registrar answers a REGISTER for our domain (no Route left), and an
/// out-of-dialog request from one of our users must carry good credentials.
/// `ruri` is the Request-URI in effect with `ruri_is_me`; `from_is_me` whether the From
/// URI's host is this proxy.
pub(crate) fn before_routing(
    registrar: &Registrar,
    msg: &Message<'_>,
    flow: Flow,
    now: Instant,
    ruri: Option<(&SipUri, bool)>,
    routed: bool,
    from_is_me: &dyn Fn(&SipUri) -> bool,
) -> Result<CredentialLines, Reject> {
    let buf = msg.buf();
    let method = msg.method().unwrap_or(Method::Other);
    if method == Method::Register && !routed {
        let domain = ruri.and_then(|(uri, me)| domain_of(registrar, buf, uri, me));
        if let Some(domain) = domain {
            return Err(Reject::Answer(registrar.register(msg, domain, flow, now)));
        }
        return Ok(CredentialLines::new());
    }
    // A request from another node of the cluster was authenticated where it came in.
    let in_dialog = super::branch::tag_span(msg, HeaderName::To).is_some();
    if !registrar.must_authenticate(method) || in_dialog || registrar.is_peer(flow.source) {
        return Ok(CredentialLines::new());
    }
    let from_ours = from_uri(msg)
        .is_some_and(|uri| domain_of(registrar, buf, &uri, from_is_me(&uri)).is_some());
    if !from_ours {
        return Ok(CredentialLines::new());
    }
    match registrar.authenticate(msg, flow, now) {
        Verified::Ok { lines } => Ok(lines),
        Verified::Refuse(answer, _) => Err(Reject::Answer(answer)),
    }
}

fn from_uri(msg: &Message<'_>) -> Option<SipUri> {
    let header = msg.header(HeaderName::From)?;
    let first = crate::sip::Values::new(msg.buf(), header.value).next()?;
    let addr = crate::sip::NameAddr::parse(msg.buf(), first)?;
    SipUri::parse(msg.buf(), addr.uri).ok()
}

/// Why no binding was found: the status to answer, or (once per request) the AoR to ask the
/// shared store for first.
pub(crate) enum NotLocated {
    Status(Status),
    Ask(Box<[u8]>),
}

/// A binding found for a Request-URI: its Contact (the new Request-URI), its flow, and its
/// Path as a preloaded Route (RFC 3327 §5.3).
pub(crate) struct Located {
    pub uri: RestoredUri,
    pub flow: Flow,
    pub route: Option<RestoredUri>,
}

/// The location service for a Request-URI `user@<our domain>`: `None` when the URI is not
/// one of our AoRs; else the binding, or 480 / 404. A binding another node owns sends the
/// request, its Request-URI unchanged, to that node over UDP from `arrival` (the listener
/// it came to), and the owner delivers it over the flow. A miss with a shared store, when
/// `ask`, is [`NotLocated::Ask`]: the request parks while the store's side thread reads the
/// AoR into the table (a binding made on another node since this one last heard), then looks
/// again with `ask` off.
pub(crate) fn locate(
    registrar: &Registrar,
    buf: &[u8],
    uri: &SipUri,
    me: bool,
    arrival: std::net::SocketAddr,
    now: Instant,
    ask: bool,
) -> Option<Result<Located, NotLocated>> {
    let user = uri.user?.of(buf);
    let domain = domain_of(registrar, buf, uri, me)?;
    let found = registrar.lookup(user, domain, now, |b| {
        if let Some(owner) = b.remote {
            return Some(Located {
                uri: RestoredUri::copy(uri.span.of(buf))?,
                flow: Flow::new(crate::sip::Transport::Udp, owner, arrival),
                route: None,
            });
        }
        // Contact URIs longer than a RestoredUri are refused at REGISTER time.
        Some(Located {
            uri: RestoredUri::copy(&b.contact)?,
            flow: b.flow,
            route: match b.path.as_deref() {
                Some(path) => Some(RestoredUri::copy(path)?),
                None => None,
            },
        })
    });
    Some(match found {
        Ok(Some(located)) => Ok(located),
        Ok(None) => Err(NotLocated::Status(Status::new(500, "Binding Too Long"))),
        Err((code, reason)) => match ask.then(|| registrar.ask_store(user, domain)).flatten() {
            Some(key) => Err(NotLocated::Ask(key.as_bytes().into())),
            None => Err(NotLocated::Status(Status::new(code, reason))),
        },
    })
}

/// RFC 3327 §5.3 / RFC 5626 §5.1: the Path this proxy puts on a REGISTER it forwards names
/// the REGISTER's flow in its user part, sealed with a keyed MAC (a flow token: no state is
/// kept), so a request the registrar sends back with that Path as its Route goes over the
/// flow — the NAT pinhole or connection only this edge has.
///
/// Token: 36 bytes in lower-case hex: transport (1: 0 UDP, 1 TCP, 2 TLS, 3 WS, 4 WSS; +8 when a
/// connection id follows), the source IP as 16 bytes (IPv4-mapped), its port (2), the index
/// of the listener it arrived on (1), the connection id (8), and the first 8 bytes of a keyed
/// SipHash-1-3 over `path` and those 28 bytes.
pub(crate) const PATH_TOKEN_LEN: usize = 2 * (PATH_SEALED + 8);
const PATH_SEALED: usize = 1 + 16 + 2 + 1 + 8;

fn transport_code(t: crate::sip::Transport) -> u8 {
    use crate::sip::Transport::*;
    match t {
        Udp => 0,
        Tcp => 1,
        Tls => 2,
        Ws => 3,
        Wss => 4,
    }
}

fn path_mac(key: &[u8; 16], sealed: &[u8]) -> [u8; 8] {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_key(key);
    h.write(b"path");
    h.write(sealed);
    h.finish().to_be_bytes()
}

/// The token for `flow`, which arrived on listener `arrival`.
pub(crate) fn path_token(key: &[u8; 16], flow: Flow, arrival: u8) -> [u8; PATH_TOKEN_LEN] {
    let mut raw = [0u8; PATH_SEALED + 8];
    let conn = flow.conn.map_or(0, |c| c.0);
    raw[0] = transport_code(flow.transport) | if flow.conn.is_some() { 8 } else { 0 };
    let ip = match flow.source.ip() {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        std::net::IpAddr::V6(v6) => v6,
    };
    raw[1..17].copy_from_slice(&ip.octets());
    raw[17..19].copy_from_slice(&flow.source.port().to_be_bytes());
    raw[19] = arrival;
    raw[20..28].copy_from_slice(&conn.to_be_bytes());
    let mac = path_mac(key, &raw[..PATH_SEALED]);
    raw[PATH_SEALED..].copy_from_slice(&mac);
    let mut text = [0u8; PATH_TOKEN_LEN];
    for (i, b) in raw.iter().enumerate() {
        text[2 * i] = HEX[usize::from(b >> 4)];
        text[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The flow a Path token names (its local address from `locals`, the listeners by index);
/// `None` for anything not a genuine token of this key.
pub(crate) fn open_path_token(
    key: &[u8; 16],
    text: &[u8],
    locals: &dyn Fn(usize) -> Option<std::net::SocketAddr>,
) -> Option<Flow> {
    use crate::sip::{ConnectionId, Transport};
    if text.len() != PATH_TOKEN_LEN {
        return None;
    }
    let mut raw = [0u8; PATH_SEALED + 8];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        raw[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    let mac = path_mac(key, &raw[..PATH_SEALED]);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &raw[PATH_SEALED..])) {
        return None;
    }
    let transport = match raw[0] & 7 {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Tls,
        3 => Transport::Ws,
        4 => Transport::Wss,
        _ => return None,
    };
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&raw[1..17]);
    let ip = std::net::Ipv6Addr::from(ip);
    let ip = ip
        .to_ipv4_mapped()
        .map_or(std::net::IpAddr::V6(ip), std::net::IpAddr::V4);
    let port = u16::from_be_bytes([raw[17], raw[18]]);
    let local = locals(usize::from(raw[19]))?;
    let mut flow = Flow::new(transport, std::net::SocketAddr::new(ip, port), local);
    if raw[0] & 8 != 0 {
        let mut conn = [0u8; 8];
        conn.copy_from_slice(&raw[20..28]);
        flow = flow.on(ConnectionId(u64::from_be_bytes(conn)));
    }
    Some(flow)
}

/// A `Path:` header line on the stack.
pub(crate) struct PathLine {
    bytes: [u8; 384],
    len: usize,
}

impl PathLine {
    /// `Path: <sip:TOKEN@host:port[;transport=…];lr[;ob]>` from the departure listener's
    /// pre-rendered `Record-Route: <sip:host:port…;lr>` line. RFC 5626 §5.1: `ob` when this
    /// proxy is the first hop (one Via) of a REGISTER whose Contact has a `reg-id`.
    pub(crate) fn new(token: &[u8], record_route: &[u8], ob: bool) -> Option<PathLine> {
        let inner = record_route
            .strip_prefix(b"Record-Route: <sip:")?
            .strip_suffix(b">\r\n")?;
        let mut line = PathLine {
            bytes: [0; 384],
            len: 0,
        };
        let ob: &[u8] = if ob { b";ob" } else { b"" };
        for part in [b"Path: <sip:", token, b"@", inner, ob, b">\r\n"] {
            let end = line.len + part.len();
            line.bytes.get_mut(line.len..end)?.copy_from_slice(part);
            line.len = end;
        }
        Some(line)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// RFC 5626 §5.1: the REGISTER came straight from the UA (one Via value) with an outbound
/// Contact (`reg-id`).
pub(crate) fn outbound_first_hop(msg: &Message<'_>) -> bool {
    let buf = msg.buf();
    let vias: usize = msg
        .headers_named(HeaderName::Via)
        .map(|h| crate::sip::Values::new(buf, h.value).count())
        .sum();
    vias == 1
        && msg.headers_named(HeaderName::Contact).any(|h| {
            crate::sip::Values::new(buf, h.value).any(|v| {
                crate::sip::NameAddr::parse(buf, v)
                    .is_some_and(|a| a.param(buf, b"reg-id").is_some())
            })
        })
}

#[cfg(test)]
mod path_tests {
    use super::*;
    use crate::sip::{ConnectionId, Transport};

    #[test]
    fn rfc3327_path_tokens_name_the_flow_and_refuse_forgeries() {
        let key = [3u8; 16];
        let locals = |i: usize| {
            ["127.0.0.1:5060", "[::1]:5061"]
                .get(i)
                .map(|a| a.parse().unwrap())
        };
        let udp = Flow::new(
            Transport::Udp,
            "192.0.2.7:40000".parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
        );
        let token = path_token(&key, udp, 0);
        assert_eq!(open_path_token(&key, &token, &locals), Some(udp));
        let tcp = Flow::new(
            Transport::Tcp,
            "[2001:db8::1]:5062".parse().unwrap(),
            "[::1]:5061".parse().unwrap(),
        )
        .on(ConnectionId(77));
        assert_eq!(
            open_path_token(&key, &path_token(&key, tcp, 1), &locals),
            Some(tcp)
        );
        // Another key, a flipped digit, a listener that does not exist, garbage: refused.
        assert_eq!(open_path_token(&[4; 16], &token, &locals), None);
        let mut forged = token;
        forged[5] = if forged[5] == b'0' { b'1' } else { b'0' };
        assert_eq!(open_path_token(&key, &forged, &locals), None);
        assert_eq!(
            open_path_token(&key, &path_token(&key, udp, 9), &locals),
            None
        );
        assert_eq!(open_path_token(&key, b"alice", &locals), None);
        assert_eq!(
            open_path_token(&key, &[b'z'; PATH_TOKEN_LEN], &locals),
            None
        );
    }

    #[test]
    fn rfc3327_the_path_line_is_our_record_route_uri_with_the_token() {
        let line = PathLine::new(
            b"abc",
            b"Record-Route: <sip:192.0.2.1:5060;transport=tcp;lr>\r\n",
            true,
        );
        assert_eq!(
            line.unwrap().as_bytes(),
            b"Path: <sip:abc@192.0.2.1:5060;transport=tcp;lr;ob>\r\n"
        );
        assert!(PathLine::new(b"abc", b"garbage", false).is_none());
        let one_via = b"REGISTER sip:r SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
            Contact: <sip:a@h>;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\n\r\n";
        let msg = Message::scan(one_via, false).unwrap();
        assert!(outbound_first_hop(&msg));
        let two_vias =
            b"REGISTER sip:r SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b\r\n\
            Contact: <sip:a@h>;reg-id=1\r\n\r\n";
        assert!(!outbound_first_hop(
            &Message::scan(two_vias, false).unwrap()
        ));
        let plain = b"REGISTER sip:r SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
            Contact: <sip:a@h>\r\n\r\n";
        assert!(!outbound_first_hop(&Message::scan(plain, false).unwrap()));
    }
}
