//! Where the routing policy meets the core: after validation (RFC 3261 §16.3) and Route
//! preprocessing (§16.4), before the target is chosen (§16.5). The router sees the request;
//! its verdict either answers, drops, or forwards with modifiers that become edits of the
//! one-pass rewrite.

use std::net::{IpAddr, SocketAddr};

use crate::policy::{Destination, Modifiers, Reply, Verdict};
use crate::sip::{Message, SipUri, Span, Transport};

use super::identity::Identity;
use super::reply::Status;
use super::rewrite::{Edit, Edits, Insert};

/// Why a request is not forwarded: a protocol status, the policy's answer, or its drop.
pub(crate) enum Answer<'r> {
    Status(Status),
    Policy(Reply<'r>),
    Drop,
}

impl From<Status> for Answer<'_> {
    fn from(status: Status) -> Self {
        Answer::Status(status)
    }
}

/// The policy's forward: where to (`None`: as addressed) and what to change.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Steering<'r> {
    pub to: Option<Destination<'r>>,
    pub modifiers: Modifiers<'r>,
}

/// What the proxy does with a verdict.
pub(crate) fn steering(verdict: Verdict<'_>) -> Result<Steering<'_>, Answer<'_>> {
    match verdict {
        Verdict::Pass => Ok(Steering::default()),
        Verdict::Forward(f) => Ok(Steering {
            to: f.to,
            modifiers: f.modifiers,
        }),
        Verdict::Reply(r) => Err(Answer::Policy(r)),
        Verdict::Drop => Err(Answer::Drop),
    }
}

/// The address of a policy destination: an IP literal or a name from the host table
/// (RFC 3263 without DNS, as for every other target).
pub(crate) fn resolve(
    identity: &Identity,
    to: &Destination<'_>,
) -> Option<(SocketAddr, Transport)> {
    let Destination::Host {
        host,
        port,
        transport,
    } = *to;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = match bare.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => identity.hosts.lookup(host.as_bytes())?,
    };
    Some((
        SocketAddr::new(ip, port.unwrap_or(transport.default_port())),
        transport,
    ))
}

/// The edits the modifiers ask for: the Request-URI (whole, user, host), headers removed
/// and added. `uri` is the parsed Request-URI at `ruri` (none for a non-SIP URI, whose
/// parts cannot be edited; only a whole replacement applies then).
pub(crate) fn push_edits<'a>(
    m: &Modifiers<'a>,
    msg: &Message<'_>,
    ruri: Span,
    uri: Option<SipUri>,
    edits: &mut Edits<'a>,
) {
    if let Some(new) = m.request_uri {
        edits.push(Edit::replace(ruri, Insert::Bytes(new)));
    } else if let Some(uri) = uri {
        push_uri_edits(m, &uri, edits);
    }
    let buf = msg.buf();
    let removing = !m.remove_headers.is_empty();
    for h in msg.headers().iter().filter(|_| removing) {
        let name = crate::policy::header_line_name(buf, h.line);
        if m.remove_headers.iter().any(|k| k.matches(h.name, name)) {
            edits.push(Edit::delete(h.line));
        }
    }
    if !m.add_headers.is_empty() {
        edits.push(Edit::insert(
            msg.headers_end(),
            Insert::Bytes(m.add_headers),
        ));
    }
}

fn push_uri_edits<'a>(m: &Modifiers<'a>, uri: &SipUri, edits: &mut Edits<'a>) {
    let host_start = uri.host.span.start();
    match (uri.user, m.user) {
        (Some(user), Some(new)) => edits.push(Edit::replace(user, Insert::Bytes(new))),
        (None, Some(new)) => {
            edits.push(Edit::insert(host_start, Insert::Bytes(new)));
            edits.push(Edit::insert(host_start, Insert::Bytes(b"@")));
        }
        (Some(user), None) => {
            if !m.prefix.is_empty() {
                edits.push(Edit::insert(user.start(), Insert::Bytes(m.prefix)));
            }
            if m.strip > 0 {
                let end = (user.start() + usize::from(m.strip)).min(user.end());
                edits.push(Edit::delete(Span::new(user.start(), end)));
            }
        }
        (None, None) if !m.prefix.is_empty() => {
            edits.push(Edit::insert(host_start, Insert::Bytes(m.prefix)));
            edits.push(Edit::insert(host_start, Insert::Bytes(b"@")));
        }
        (None, None) => {}
    }
    if let Some(host) = m.host {
        // The host and its port: up to the parameters.
        edits.push(Edit::replace(
            Span::new(host_start, uri.params.start()),
            Insert::Bytes(host),
        ));
    }
}
