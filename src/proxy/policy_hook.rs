//! Where the routing policy meets the core: after validation (RFC 3261 §16.3) and Route
//! preprocessing (§16.4), before the target is chosen (§16.5). The router sees the request;
//! its verdict either answers, drops, or forwards with modifiers that become edits of the
//! one-pass rewrite.

use std::net::{IpAddr, SocketAddr};

use crate::policy::{Destination, Modifiers, Reply, Verdict};
use crate::sip::{Message, SipUri, Span, Transport};

use super::identity::Identity;
use super::rewrite::{Edit, Edits, Insert};

/// The policy's forward: where to (`None`: as addressed) and what to change.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Steering<'r> {
    pub to: Option<Destination<'r>>,
    pub modifiers: Modifiers<'r>,
}

/// What the proxy does with a verdict: forward (with its steering), or `Err` with the
/// policy's reply (`None`: drop).
pub(crate) fn steering(verdict: Verdict<'_>) -> Result<Steering<'_>, Option<Reply<'_>>> {
    match verdict {
        Verdict::Pass => Ok(Steering::default()),
        Verdict::Forward(f) => Ok(Steering {
            to: f.to,
            modifiers: f.modifiers,
        }),
        Verdict::Reply(r) => Err(Some(r)),
        Verdict::Drop => Err(None),
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
    } = *to
    else {
        // A group is chosen by the core (`Target::Group`), not resolved here.
        return None;
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::HeaderKey;
    use crate::proxy::rewrite::{Out, apply_range};
    use crate::sip::StartLine;

    const RAW: &[u8] = b"INVITE sip:+15551234@edge.example:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nX-Internal: a\r\nFrom: <sip:a@a>;tag=1\r\n\
To: <sip:b@b>\r\nx-internal: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";

    fn rewrite(raw: &[u8], m: &Modifiers<'_>) -> String {
        let msg = Message::scan(raw, false).unwrap();
        let StartLine::Request { uri: ruri, .. } = msg.start() else {
            panic!()
        };
        let uri = SipUri::parse(raw, ruri).ok();
        let mut edits = Edits::new();
        push_edits(m, &msg, ruri, uri, &mut edits);
        let mut buf = vec![0u8; 2048];
        let mut out = Out::new(&mut buf);
        apply_range(&mut out, raw, Span::new(0, raw.len()), &mut edits);
        let n = out.finish().unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn first_line(text: &str) -> &str {
        text.lines().next().unwrap()
    }

    #[test]
    fn strip_and_prefix_the_user() {
        let m = Modifiers {
            strip: 2,
            prefix: b"00",
            ..Modifiers::default()
        };
        assert_eq!(
            first_line(&rewrite(RAW, &m)),
            "INVITE sip:005551234@edge.example:5060;user=phone SIP/2.0"
        );
        let m = Modifiers {
            strip: 200,
            ..Modifiers::default()
        };
        assert_eq!(
            first_line(&rewrite(RAW, &m)),
            "INVITE sip:@edge.example:5060;user=phone SIP/2.0"
        );
    }

    #[test]
    fn replace_the_user_the_host_or_the_whole_uri() {
        let m = Modifiers {
            user: Some(b"bob"),
            host: Some(b"10.0.0.9:5070"),
            ..Modifiers::default()
        };
        assert_eq!(
            first_line(&rewrite(RAW, &m)),
            "INVITE sip:bob@10.0.0.9:5070;user=phone SIP/2.0"
        );
        let m = Modifiers {
            request_uri: Some(b"sip:someone@127.0.0.1:5090"),
            ..Modifiers::default()
        };
        assert_eq!(
            first_line(&rewrite(RAW, &m)),
            "INVITE sip:someone@127.0.0.1:5090 SIP/2.0"
        );
        let no_user =
            b"OPTIONS sip:edge.example SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        let m = Modifiers {
            user: Some(b"ping"),
            ..Modifiers::default()
        };
        assert_eq!(
            first_line(&rewrite(no_user, &m)),
            "OPTIONS sip:ping@edge.example SIP/2.0"
        );
    }

    #[test]
    fn add_and_remove_headers() {
        let keys = [HeaderKey::new("X-Internal")];
        let m = Modifiers {
            add_headers: b"X-Edge: 1\r\n",
            remove_headers: &keys,
            ..Modifiers::default()
        };
        let text = rewrite(RAW, &m);
        assert!(!text.to_ascii_lowercase().contains("x-internal"), "{text}");
        assert!(
            text.ends_with("CSeq: 1 INVITE\r\nX-Edge: 1\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn destinations_resolve_ip_literals() {
        let config = crate::proxy::ProxyConfig::new(
            crate::proxy::Listener {
                transport: Transport::Udp,
                addr: "192.0.2.10:5060".parse().unwrap(),
                advertise: None,
            },
            [1; 16],
        );
        let identity = Identity::new(&config).unwrap();
        let to = Destination::Host {
            host: "[::1]",
            port: None,
            transport: Transport::Tcp,
        };
        assert_eq!(
            resolve(&identity, &to),
            Some(("[::1]:5060".parse().unwrap(), Transport::Tcp))
        );
        let to = Destination::Host {
            host: "nowhere.example",
            port: Some(1),
            transport: Transport::Udp,
        };
        assert_eq!(resolve(&identity, &to), None);
    }
}
