//! Responses through a stateless proxy (RFC 3261 §16.11): forwarded only when the top Via is
//! this proxy's, with that Via removed, to the address the next Via names (§18.2.2, RFC 3581).

use std::net::{IpAddr, SocketAddr};

use crate::sip::{
    HeaderName, Message, Method, Params, Rport, Span, StartLine, Transport, Values, Via,
    parse_cseq, parse_host, parse_ipv4,
};

use super::Context;
use super::bindings::{self, Listing, Recipient, Staging, WriteBack};
use super::canonical;
use super::contact::{self, Rewriting};
use super::identity::{BRANCH_PREFIX, our_branch_hash, parse_hex};
use super::media_hook::{self, ResponseMedia, Resumed};
use super::park::{Answer, Parked, Query, Refused};
use super::rewrite::CONNECTION_PARAM;
use super::rewrite::{Edit, Edits, Insert, Out};
use super::route::remove_first_value;
use super::{ConnectionId, Direction, DropReason, Input, Outcome, Proxy, Tables, Transmit};
use crate::media::Fallback;
use crate::media::table::Operation;

/// Handles a well-framed response.
pub(crate) fn handle(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    ctx: &mut Context<'_>,
    out: &mut [u8],
) -> Outcome {
    let tables = ctx.tables;
    let groups = tables.groups.as_deref();
    let (source, now) = (input.flow.source, input.now);
    // A 503 with Retry-After from a group's destination holds it down (and goes on as usual).
    if let Some(groups) = groups {
        groups.note_response(msg, source, now);
    }
    // The same for a target found in DNS: skipped until then (RFC 3263 §4.3 asks to try the
    // next target when one fails; a stateless proxy can only steer the retransmissions).
    if let Some(dns) = tables.dns.as_deref()
        && matches!(msg.start(), StartLine::Response { code: 503, .. })
        && let Some(seconds) = crate::groups::retry_after(msg)
    {
        dns.hold_down(
            source,
            now + std::time::Duration::from_secs(u64::from(seconds)),
            now,
        );
    }
    // Issue 18: a response of an anchored call that needs rtpengine waits for it.
    if let Some(media) = proxy.config.media.as_deref()
        && let Some((hash, facts)) = anchored(proxy, msg)
        && facts.operation != Operation::None
    {
        match park(media, msg, input, hash, facts, ctx) {
            Some(outcome) => return outcome,
            None => media.counters.fallback(Fallback::Forwarded),
        }
    }
    finish(proxy, msg, input, tables, None, out)
}

/// Handles a parked response again with rtpengine's answer: forwarded with its SDP, or as it
/// came when rtpengine failed (a response cannot be refused; counted).
pub(crate) fn resume(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    answer: &Answer,
    tables: &Tables,
    out: &mut [u8],
) -> Outcome {
    let body = match proxy.config.media.as_deref() {
        Some(media) => match media_hook::resumed(media, answer, false) {
            Resumed::Body(sdp) => Some(sdp),
            _ => None,
        },
        None => None,
    };
    finish(proxy, msg, input, tables, body, out)
}

/// The top Via's branch hash and the media facts of a response of an anchored call.
fn anchored(proxy: &Proxy, msg: &Message<'_>) -> Option<(u64, ResponseMedia)> {
    let buf = msg.buf();
    let top = msg.header(HeaderName::Via)?;
    let value = Values::new(buf, top.value).next()?;
    let (hash, params) = match written_by_us(proxy, buf, value) {
        Some(found) => found,
        None => {
            let via = Via::parse(buf, value).ok()?;
            (
                ours(proxy, buf, &via)?,
                Span::new(via.sent_by.end(), via.span.end()),
            )
        }
    };
    Some((hash, media_hook::for_response(msg, params)?))
}

/// Parks a response for its NG command; `None` when it cannot (no room, nothing to key the
/// call by): it is then forwarded as it came.
fn park(
    media: &crate::media::Media,
    msg: &Message<'_>,
    input: &Input<'_>,
    branch_hash: u64,
    facts: ResponseMedia,
    ctx: &mut Context<'_>,
) -> Option<Outcome> {
    let StartLine::Response { code, .. } = msg.start() else {
        return None;
    };
    let cseq = parse_cseq(msg.buf(), msg.header(HeaderName::CSeq)?.value).ok()?;
    let source = input.flow.source.ip();
    let query = media_hook::query(msg, facts.operation, facts.toward, source, false)?;
    let parked = Parked {
        query: Query::Media(Box::new(query)),
        flow: input.flow,
        since: input.now,
        timeout: Some(media.config.timeout),
        // Distinct from the request's and from the transaction's other responses; the same
        // for a retransmission of this one (absorbed while its twin is parked).
        hash: branch_hash ^ RESPONSE_HASH ^ (u64::from(code) << 48),
        method: Method::of(msg.bytes(cseq.method)),
    };
    match ctx.worker.parking.park(input.data, parked) {
        Ok(ticket) => Some(Outcome::Park(ticket)),
        Err(Refused::Retransmission) => Some(Outcome::Drop(DropReason::ParkedRetransmission)),
        Err(Refused::Full) => None,
    }
}

/// Mixed into a parked response's hash (see `park`).
const RESPONSE_HASH: u64 = 0x5245_5350_4f4e_5345;

/// Forwards a response (with `body` in place of its own), counting a drop.
fn finish(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    tables: &Tables,
    body: Option<&[u8]>,
    out: &mut [u8],
) -> Outcome {
    let groups = tables.groups.as_deref();
    let (source, now) = (input.flow.source, input.now);
    match forward(proxy, msg, input, tables, body, out) {
        Ok(transmit) => Outcome::Forward(transmit),
        // Our own health probes' answers are not ours to forward (their branch is not a
        // forwarding branch): they are stored for the prober and consumed.
        Err(DropReason::ResponseNotOurs)
            if groups.is_some_and(|g| g.consume_probe_answer(msg, source, now)) =>
        {
            Outcome::Drop(DropReason::ProbeAnswer)
        }
        // Answers to the registrar's OPTIONS keepalives prove their flow alive; consumed.
        Err(DropReason::ResponseNotOurs)
            if tables
                .registrar
                .as_deref()
                .is_some_and(|r| r.consume_keepalive_answer(msg, source)) =>
        {
            Outcome::Drop(DropReason::KeepaliveAnswer)
        }
        Err(reason) => Outcome::Drop(reason),
    }
}

fn forward(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    tables: &Tables,
    body: Option<&[u8]>,
    out: &mut [u8],
) -> Result<Transmit, DropReason> {
    let buf = msg.buf();
    if msg.headers().len() > super::MAX_FORWARDED_HEADERS {
        return Err(DropReason::TooManyHeaders);
    }
    let mut via_lines = msg.headers_named(HeaderName::Via);
    let top_line = via_lines.next().ok_or(DropReason::MalformedResponse)?;
    let mut values = Values::new(buf, top_line.value);
    let top_value = values.next().ok_or(DropReason::MalformedResponse)?;
    let (branch_hash, top_params) = match written_by_us(proxy, buf, top_value) {
        Some(found) => found,
        None => {
            let top = Via::parse(buf, top_value).map_err(|_| DropReason::MalformedResponse)?;
            let hash = ours(proxy, buf, &top).ok_or(DropReason::ResponseNotOurs)?;
            (hash, Span::new(top.sent_by.end(), top.span.end()))
        }
    };
    let next_value = values
        .next()
        .or_else(|| via_lines.find_map(|h| Values::new(buf, h.value).next()))
        .ok_or(DropReason::ResponseForProxy)?;
    let next = Via::parse(buf, next_value).map_err(|_| DropReason::MalformedResponse)?;
    let (destination, transport) =
        destination(proxy, buf, &next).ok_or(DropReason::ResponseUnroutable)?;
    canonical::check_unicast(destination)?;
    let arrival = proxy
        .identity
        .arrival(input.flow.local, input.flow.transport);
    let departure = proxy
        .identity
        .departure(arrival, transport, destination.ip())
        .ok_or(DropReason::ResponseUnroutable)?;
    if proxy.identity.is_own_socket(destination, transport) {
        return Err(DropReason::ResponseLoop);
    }
    let mut edits = Edits::new();
    remove_first_value(msg, top_line, &mut edits);
    let local = &proxy.identity.locals[departure];
    let mut staging = Staging::new(out);
    let to = Recipient {
        addr: destination,
        transport,
    };
    let leaving = Leaving {
        host: &local.shown,
        to,
    };
    rewrite_contacts(proxy, msg, input, tables, leaving, &mut staging, &mut edits);
    if let Some(sdp) = body {
        edits.push(Edit::replace(msg.body(), Insert::Bytes(sdp)));
    }
    let mut writer = Out::new(staging.into_front());
    canonical::write_body(&mut writer, msg, &mut edits, body.map(<[u8]>::len));
    let len = writer
        .finish()
        .filter(|&len| transport.is_stream() || len <= super::request::MAX_UDP_PAYLOAD)
        .ok_or(DropReason::OutputTooLarge)?;
    Ok(Transmit {
        destination,
        transport,
        local: local.addr,
        len,
        direction: Direction::Response,
        connection: connection(proxy, buf, top_params, branch_hash),
        name: None,
    })
}

/// Where a forwarded response leaves to: our `host:port` on the departure listener (for
/// rewritten Contacts) and the recipient (for written-back ones).
struct Leaving<'a> {
    host: &'a [u8],
    to: Recipient,
}

/// Contact rewriting of a forwarded response, when enabled: a binding list (2xx to REGISTER,
/// 3xx) gets our tokens written back (`bindings`); another 101–299 response gets the callee's
/// Contact rewritten, unless disabled. A full table leaves the Contact as it is: a response
/// cannot be refused.
fn rewrite_contacts<'a>(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    tables: &Tables,
    leaving: Leaving<'a>,
    staging: &mut Staging<'a>,
    edits: &mut Edits<'a>,
) {
    let Some(table) = tables.contact.as_deref() else {
        return;
    };
    let Some(rewrite) = proxy.contact else {
        return;
    };
    if let Some(listing) = Listing::of(msg) {
        let how = WriteBack {
            table,
            names: &proxy.identity.names,
            listing,
            to: leaving.to,
            now: input.now,
        };
        return bindings::push_write_backs(&how, msg, staging, edits);
    }
    let StartLine::Response { code, .. } = msg.start() else {
        return;
    };
    if !rewrite.responses || !(101..=299).contains(&code) {
        return;
    }
    let how = Rewriting {
        host: leaving.host,
        flow: input.flow,
        register: false,
        now: input.now,
    };
    let _ = contact::push_rewrites(table, &proxy.identity.names, msg, &how, edits);
}

/// Our Via exactly as we wrote it (`SIP/2.0/UDP host:port;branch=z9hG4bKfv<16 hex>`, then
/// any further parameters): the branch's hash and the span of what follows it. A byte
/// comparison with the pre-rendered text, a few dozen instructions where parsing costs a
/// thousand; a Via a peer re-wrote (other spacing or case) takes the full parse instead.
fn written_by_us(proxy: &Proxy, buf: &[u8], value: Span) -> Option<(u64, Span)> {
    let text = value.of(buf);
    let local = proxy
        .identity
        .locals
        .iter()
        .find(|l| text.starts_with(&l.via_prefix[VIA_NAME.len()..]))?;
    // The prefix ends with the branch prefix; the branch runs 16 hex digits past it.
    let branch_at = local.via_prefix.len() - VIA_NAME.len() - BRANCH_PREFIX.len();
    let after = branch_at + BRANCH_PREFIX.len() + 16;
    if !matches!(text.get(after), None | Some(b';')) {
        return None;
    }
    let hash = our_branch_hash(text.get(branch_at..after)?)?;
    Some((hash, Span::new(value.start() + after, value.end())))
}

/// What precedes the value in a pre-rendered Via line.
const VIA_NAME: &[u8] = b"Via: ";

/// §16.11: the sent-by is one of ours and the branch is one we could have written; returns
/// the branch's hash.
fn ours(proxy: &Proxy, buf: &[u8], via: &Via) -> Option<u64> {
    let default = via.transport(buf).map_or(5060, Transport::default_port);
    let hash = our_branch_hash(via.branch?.of(buf))?;
    let names = &proxy.identity.names;
    names
        .is_me(buf, &via.host, via.port, default)
        .then_some(hash)
}

/// The connection named in our Via (`;fvc=<id>.<tag>`), when its tag proves we wrote it for
/// this branch; anything else is ignored and the response is routed by address.
fn connection(proxy: &Proxy, buf: &[u8], params: Span, branch_hash: u64) -> Option<ConnectionId> {
    // Most responses came back for a datagram request: one SIMD search rules that out.
    memchr::memmem::find(params.of(buf), CONNECTION_PARAM)?;
    let name = &CONNECTION_PARAM[1..CONNECTION_PARAM.len() - 1];
    let value = Params::new(buf, params)
        .map_while(Result::ok)
        .find(|p| p.is(buf, name))?
        .value?
        .of(buf);
    let dot = value.iter().position(|&b| b == b'.')?;
    let id = parse_hex(&value[..dot])?;
    let tag = parse_hex(&value[dot + 1..])?;
    let expected = proxy.branch_key.connection_tag(id, branch_hash);
    (tag == u64::from(expected)).then_some(ConnectionId(id))
}

/// §18.2.2 and RFC 3581 §4: `maddr`, else `received` (with `rport` when it has a value),
/// else the sent-by; the port is rport's, else sent-by's, else the transport's default.
fn destination(proxy: &Proxy, buf: &[u8], via: &Via) -> Option<(SocketAddr, Transport)> {
    let transport = via.transport(buf)?;
    let port = match via.rport {
        Rport::Value(p) => p,
        _ => via.port.unwrap_or(transport.default_port()),
    };
    let hosts = &proxy.identity.hosts;
    let ip = if let Some(maddr) = via.maddr {
        let (host, _) = parse_host(buf, maddr.start(), maddr.end())?;
        let port = via.port.unwrap_or(transport.default_port());
        return Some((SocketAddr::new(hosts.resolve(buf, &host)?, port), transport));
    } else if let Some(received) = via.received {
        parse_ip(received.of(buf))?
    } else {
        hosts.resolve(buf, &via.host)?
    };
    Some((SocketAddr::new(ip, port), transport))
}

/// A `received` value: an IPv4 or IPv6 address, brackets tolerated.
fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4(text) {
        return Some(IpAddr::V4(v4));
    }
    let text = text
        .strip_prefix(b"[")
        .and_then(|t| t.strip_suffix(b"]"))
        .unwrap_or(text);
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
