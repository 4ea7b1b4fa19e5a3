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
    match registrar.authenticate(msg, flow.source.ip(), now) {
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
/// it came to), and the owner delivers it over the flow.
pub(crate) fn locate(
    registrar: &Registrar,
    buf: &[u8],
    uri: &SipUri,
    me: bool,
    arrival: std::net::SocketAddr,
    now: Instant,
) -> Option<Result<Located, Status>> {
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
        Ok(None) => Err(Status::new(500, "Binding Too Long")),
        Err((code, reason)) => Err(Status::new(code, reason)),
    })
}
