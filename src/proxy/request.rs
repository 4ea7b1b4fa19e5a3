//! Requests: validation (RFC 3261 §16.3), Route preprocessing (§16.4), the target (§16.5),
//! and forwarding (§16.6) as a stateless proxy (§16.11), with RFC 3581 on the top Via.

use std::net::SocketAddr;

use crate::sip::{
    HeaderName, Message, Method, Scheme, SipUri, Span, StartLine, Transport, Values, Via,
    parse_cseq, parse_max_forwards, scheme_of,
};

use super::branch::{tag_span, to_tag};
use super::canonical;
use super::contact::{self, Restore, RestoredUri, Rewriting};
use super::reply::{self, Status};
use super::rewrite::{Edit, Edits, Insert, Out};
use super::route::{RouteError, RouteSet};
use super::via_fix::{ViaFix, reply_destination};
use super::{ConnectionId, Direction, DropReason, Input, Outcome, Proxy, Transmit};
use crate::contact::{Flow, InsertRefused, LookupError};

/// The largest UDP payload (IPv4); a forward that does not fit earns a 513.
pub(crate) const MAX_UDP_PAYLOAD: usize = 65_507;

const OK: Status = Status::new(200, "OK");
const NOT_FOUND: Status = Status::new(404, "Not Found");
const TEMPORARILY_UNAVAILABLE: Status = Status::new(480, "Temporarily Unavailable");
const CONTACT_TABLE_FULL: Status = Status::new(503, "Contact Table Full");
const UNSUPPORTED_SCHEME: Status = Status::new(416, "Unsupported URI Scheme");
const BAD_EXTENSION: Status = Status {
    code: 420,
    reason: "Bad Extension",
    unsupported: true,
};
const LOOP: Status = Status::new(482, "Loop Detected");
const TOO_MANY_HOPS: Status = Status::new(483, "Too Many Hops");
pub(crate) const TOO_LARGE: Status = Status::new(513, "Message Too Large");
const UNRESOLVABLE: Status = Status::new(503, "Unresolvable Destination");
const NO_TRANSPORT: Status = Status::new(503, "Unsupported Transport");

fn bad_request(reason: &'static str) -> Status {
    Status::new(400, reason)
}

/// The top Via of a request: its line and its parsed first value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TopVia {
    pub line: usize,
    pub via: Via,
}

impl TopVia {
    /// `None` when the request has no Via or its first value is malformed: then nothing can
    /// be answered (RFC 3261 §18.2.2 needs it).
    pub fn find(msg: &Message<'_>) -> Option<TopVia> {
        let line = msg
            .headers()
            .iter()
            .position(|h| h.name == HeaderName::Via)?;
        let first = Values::new(msg.buf(), msg.headers()[line].value).next()?;
        let via = Via::parse(msg.buf(), first).ok()?;
        Some(TopVia { line, via })
    }
}

/// Where a forwarded request goes, and what changes on the way.
struct Plan {
    destination: SocketAddr,
    transport: Transport,
    departure: usize,
    /// A URI from the input that replaces the Request-URI (strict routing, §16.4 / §16.6).
    new_ruri: Option<Span>,
    /// A URI from the input appended as the last Route (§16.6 step 6).
    append_route: Option<Span>,
    routes: RouteSet,
    /// The original Contact URI restored from a token: the new Request-URI.
    restored: Option<RestoredUri>,
    /// The connection of the recorded flow, for a restored contact over a stream.
    connection: Option<ConnectionId>,
}

/// Where the request is headed before the address is known.
// Inline for the same reason as `contact::Restore`: no allocation per restored request.
#[allow(clippy::large_enum_variant)]
enum Target {
    Uri(SipUri),
    NextHop,
    /// A rewritten contact: the original URI, reached over the recorded flow.
    Flow {
        uri: RestoredUri,
        flow: Flow,
    },
}

/// One request being decided.
struct Request<'m, 'p> {
    proxy: &'p Proxy,
    msg: &'m Message<'m>,
    input: &'m Input<'m>,
    arrival: usize,
    top: TopVia,
    fix: ViaFix,
    hash: u64,
}

/// Handles a well-framed request.
pub(crate) fn handle(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    out: &mut [u8],
) -> Outcome {
    let Some(req) = Request::new(proxy, msg, input) else {
        return Outcome::Drop(DropReason::MalformedRequest);
    };
    match req.decide() {
        Ok(plan) => req.forward(plan, out),
        Err(status) => req.reply(status, out),
    }
}

/// Answers a request that cannot be processed (broken framing, too large) when its Via
/// allows, else drops it for `otherwise`.
pub(crate) fn reject(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    status: Status,
    otherwise: DropReason,
    out: &mut [u8],
) -> Outcome {
    match Request::new(proxy, msg, input) {
        Some(req) => req.reply(status, out),
        None => Outcome::Drop(otherwise),
    }
}

impl<'m, 'p> Request<'m, 'p> {
    fn new(proxy: &'p Proxy, msg: &'m Message<'m>, input: &'m Input<'m>) -> Option<Self> {
        let top = TopVia::find(msg)?;
        Some(Request {
            proxy,
            msg,
            input,
            arrival: proxy.identity.arrival(input.local, input.transport),
            top,
            fix: ViaFix::new(&top.via, input.source),
            hash: proxy.branch_key.transaction_hash(msg, &top.via),
        })
    }

    fn buf(&self) -> &'m [u8] {
        self.msg.buf()
    }

    fn method(&self) -> Method {
        self.msg.method().unwrap_or(Method::Other)
    }

    fn ruri(&self) -> Span {
        match self.msg.start() {
            StartLine::Request { uri, .. } => uri,
            StartLine::Response { .. } => Span::default(),
        }
    }

    fn is_me(&self, uri: &SipUri) -> bool {
        let default = uri
            .transport(self.buf())
            .map_or(5060, Transport::default_port);
        self.proxy
            .identity
            .names
            .is_me(self.buf(), &uri.host, uri.port, default)
    }

    /// RFC 3261 §16.3 to §16.6: a plan to forward, or the status to answer with.
    fn decide(&self) -> Result<Plan, Status> {
        if self.msg.headers().len() > super::MAX_FORWARDED_HEADERS {
            return Err(bad_request("Too Many Headers"));
        }
        self.check_transaction_fields()?;
        let ruri = self.check_request_uri()?;
        self.check_max_forwards()?;
        self.check_proxy_require()?;
        let mut routes = RouteSet::collect(self.msg).map_err(|e| match e {
            RouteError::Malformed => bad_request("Bad Route"),
            RouteError::TooMany => bad_request("Too Many Routes"),
        })?;
        let (current, new_ruri) = self.preprocess_routes(ruri, &mut routes);
        let (target, new_ruri, append_route) = self.target(current, new_ruri, &mut routes)?;
        let (restored, flow) = match target {
            Target::Flow { uri, flow } => (Some(uri), Some(flow)),
            _ => (None, None),
        };
        let (destination, transport) = self.resolve(target)?;
        let identity = &self.proxy.identity;
        let departure = match flow {
            // A request back to a contact leaves from the listener its packets came to.
            Some(flow) => identity.arrival(flow.local, flow.transport),
            None => identity
                .departure(self.arrival, transport, destination.ip())
                .ok_or(NO_TRANSPORT)?,
        };
        if self.proxy.identity.is_own_socket(destination, transport) {
            return Err(LOOP);
        }
        Ok(Plan {
            destination,
            transport,
            departure,
            new_ruri,
            append_route,
            routes,
            restored,
            connection: flow.and_then(|f| f.conn),
        })
    }

    /// §16.3 step 1 (the fields a stateless proxy needs to answer and to hash) and §8.1.1.5.
    fn check_transaction_fields(&self) -> Result<(), Status> {
        let msg = self.msg;
        for (name, missing) in [
            (HeaderName::From, "Missing From"),
            (HeaderName::To, "Missing To"),
            (HeaderName::CallId, "Missing Call-ID"),
        ] {
            msg.header(name).ok_or(bad_request(missing))?;
        }
        let cseq = msg
            .header(HeaderName::CSeq)
            .ok_or(bad_request("Missing CSeq"))?;
        let cseq = parse_cseq(self.buf(), cseq.value).map_err(|_| bad_request("Bad CSeq"))?;
        let method = match msg.start() {
            StartLine::Request { method_name, .. } => msg.bytes(method_name),
            StartLine::Response { .. } => &[],
        };
        if msg.bytes(cseq.method) != method {
            return Err(bad_request("CSeq Method Mismatch"));
        }
        Ok(())
    }

    /// §16.3 step 2: the Request-URI's scheme. SIP and SIPS are parsed; `tel` is routed by
    /// Route or the next hop; anything else is 416.
    fn check_request_uri(&self) -> Result<Option<SipUri>, Status> {
        let ruri = self.ruri();
        match scheme_of(ruri.of(self.buf())) {
            Scheme::Sip | Scheme::Sips => SipUri::parse(self.buf(), ruri)
                .map(Some)
                .map_err(|_| bad_request("Bad Request-URI")),
            Scheme::Tel => Ok(None),
            Scheme::Other => Err(UNSUPPORTED_SCHEME),
        }
    }

    /// §16.3 step 3: Max-Forwards 0 ends the request here (OPTIONS is answered, §11).
    fn check_max_forwards(&self) -> Result<(), Status> {
        match self.max_forwards()? {
            Some((0, _)) if self.method() == Method::Options => Err(OK),
            Some((0, _)) => Err(TOO_MANY_HOPS),
            _ => Ok(()),
        }
    }

    fn max_forwards(&self) -> Result<Option<(u32, Span)>, Status> {
        match self.msg.header(HeaderName::MaxForwards) {
            None => Ok(None),
            Some(h) => parse_max_forwards(self.msg.bytes(h.value))
                .map(|n| Some((n, h.value)))
                .map_err(|_| bad_request("Bad Max-Forwards")),
        }
    }

    /// §16.3 step 5: this proxy supports no extensions, so any Proxy-Require is a 420
    /// (except on ACK and CANCEL, which are not answered with 420, §8.2.2.3).
    fn check_proxy_require(&self) -> Result<(), Status> {
        if matches!(self.method(), Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let required = self
            .msg
            .headers_named(HeaderName::ProxyRequire)
            .any(|h| !h.value.is_empty());
        if required { Err(BAD_EXTENSION) } else { Ok(()) }
    }

    /// §16.4: undo an upstream strict router, then drop the Route values naming this proxy.
    /// Returns the Request-URI now in effect and, if it changed, where its text comes from.
    fn preprocess_routes(
        &self,
        ruri: Option<SipUri>,
        routes: &mut RouteSet,
    ) -> (Option<SipUri>, Option<Span>) {
        let mut current = ruri;
        let mut new_ruri = None;
        // Our Record-Route URIs carry `lr` and no user part; such a Request-URI means the
        // previous hop was a strict router (§16.4, first paragraph).
        let ours = ruri.is_some_and(|u| u.user.is_none() && u.lr && self.is_me(&u));
        if let Some(last) = routes.last_mut().filter(|_| ours) {
            last.removed = true;
            current = Some(last.uri);
            new_ruri = Some(last.uri.span);
        }
        // Double Record-Routing puts two of our values on top (one per interface).
        while let Some(top) = routes.top_mut() {
            let mine = {
                let uri = top.uri;
                self.is_me(&uri)
            };
            if !mine {
                break;
            }
            top.removed = true;
        }
        (current, new_ruri)
    }

    /// §16.5 and §16.6 steps 6–7: the next hop, and the strict-routing rewrite when the next
    /// hop does not do loose routing.
    #[allow(clippy::type_complexity)]
    fn target(
        &self,
        current: Option<SipUri>,
        new_ruri: Option<Span>,
        routes: &mut RouteSet,
    ) -> Result<(Target, Option<Span>, Option<Span>), Status> {
        if let Some(top) = routes.top_mut() {
            if top.uri.lr {
                return Ok((Target::Uri(top.uri), new_ruri, None));
            }
            // §16.6 step 6: a strict router gets the Route URI as its Request-URI, and the
            // Request-URI goes to the end of the Route set.
            top.removed = true;
            let uri = top.uri;
            let old = new_ruri.unwrap_or(self.ruri());
            return Ok((Target::Uri(uri), Some(uri.span), Some(old)));
        }
        match current {
            Some(uri) if self.is_me(&uri) => self
                .restore_contact(&uri)
                .unwrap_or_else(|| self.addressed_to_me(&uri))
                .map(|t| (t, new_ruri, None)),
            Some(uri) => Ok((Target::Uri(uri), new_ruri, None)),
            None if self.proxy.next_hop.is_some() => Ok((Target::NextHop, new_ruri, None)),
            None => Err(UNSUPPORTED_SCHEME),
        }
    }

    /// A Request-URI `sip:<token>@<this proxy>` (a contact this proxy rewrote): the original
    /// contact over its recorded flow; a forged, unknown or foreign token is 404, an expired
    /// one 480. `None` when contact rewriting is off or the user part is not a token.
    fn restore_contact(&self, uri: &SipUri) -> Option<Result<Target, Status>> {
        let rewrite = self.proxy.contact.as_ref()?;
        let user = uri.user?;
        match contact::restore(rewrite, self.buf(), user, self.input.now) {
            Restore::NotAToken => None,
            Restore::Found { uri, flow } => Some(Ok(Target::Flow { uri, flow })),
            Restore::Refused(LookupError::Expired) => Some(Err(TEMPORARILY_UNAVAILABLE)),
            Restore::Refused(_) => Some(Err(NOT_FOUND)),
        }
    }

    /// A Request-URI naming this proxy: OPTIONS pings without a user part are answered here;
    /// everything else goes to the configured next hop (the registrar or core).
    fn addressed_to_me(&self, uri: &SipUri) -> Result<Target, Status> {
        if self.method() == Method::Options && uri.user.is_none() {
            return Err(OK);
        }
        if self.proxy.next_hop.is_some() {
            Ok(Target::NextHop)
        } else {
            Err(NOT_FOUND)
        }
    }

    /// §16.6 step 7 (RFC 3263 without DNS: IP literals, `maddr`, the static host table).
    fn resolve(&self, target: Target) -> Result<(SocketAddr, Transport), Status> {
        let uri = match target {
            Target::NextHop => return self.proxy.next_hop.ok_or(NOT_FOUND),
            Target::Flow { flow, .. } => return Ok((flow.source, flow.transport)),
            Target::Uri(uri) => uri,
        };
        let buf = self.buf();
        let transport = uri.transport(buf).ok_or(NO_TRANSPORT)?;
        let port = uri.port.unwrap_or(transport.default_port());
        let hosts = &self.proxy.identity.hosts;
        let ip = match uri.maddr {
            Some(maddr) => {
                let (host, _) = crate::sip::parse_host(buf, maddr.start(), maddr.end())
                    .ok_or(bad_request("Bad maddr"))?;
                hosts.resolve(buf, &host)
            }
            None => hosts.resolve(buf, &uri.host),
        };
        Ok((SocketAddr::new(ip.ok_or(UNRESOLVABLE)?, port), transport))
    }

    /// §16.6 steps 3, 4, 8, 9 and the edits decided above, written in one pass.
    fn forward(&self, plan: Plan, out: &mut [u8]) -> Outcome {
        let msg = self.msg;
        let local = &self.proxy.identity.locals[plan.departure];
        let mut edits = Edits::new();
        if let Some(uri) = plan.new_ruri {
            edits.push(Edit::replace(self.ruri(), Insert::Copy(uri)));
        }
        if let Some(restored) = &plan.restored {
            edits.push(Edit::replace(
                self.ruri(),
                Insert::Bytes(restored.as_bytes()),
            ));
        }
        if plan.new_ruri.is_none() && plan.restored.is_none() {
            canonical::strip_uri_headers(msg, &mut edits);
        }
        if self.rewrite_contacts(&local.shown, &mut edits).is_err() {
            return self.reply(CONTACT_TABLE_FULL, out);
        }
        let top = msg.headers_start();
        if self.record_route() {
            // §16.6 step 4; two values when the request changes interface (RFC 5658 style),
            // the one facing the next hop first.
            edits.push(Edit::insert(top, Insert::Bytes(&local.record_route)));
            if plan.departure != self.arrival {
                let arrival = &self.proxy.identity.locals[self.arrival];
                edits.push(Edit::insert(top, Insert::Bytes(&arrival.record_route)));
            }
        }
        // §16.6 step 8 with the §16.11 branch.
        let key = &self.proxy.branch_key;
        let connection = self
            .input
            .connection
            .map(|c| (c.0, key.connection_tag(c.0, self.hash)));
        edits.push(Edit::insert(
            top,
            Insert::Via {
                prefix: &local.via_prefix,
                hash: self.hash,
                connection,
            },
        ));
        self.push_max_forwards(&mut edits);
        self.fix.push_edits(&mut edits);
        plan.routes.removal_edits(msg, &mut edits);
        if let (Some(uri), Some(line)) = (plan.append_route, plan.routes.last_line()) {
            let after = msg.headers()[line as usize].line.end();
            edits.push(Edit::insert(after, Insert::RouteLine(uri)));
        }
        let mut writer = Out::new(out);
        canonical::write(&mut writer, msg, &mut edits);
        let len = match writer.finish() {
            Some(len) if plan.transport.is_stream() || len <= MAX_UDP_PAYLOAD => len,
            _ => return self.reply(TOO_LARGE, out),
        };
        Outcome::Forward(Transmit {
            destination: plan.destination,
            transport: plan.transport,
            local: local.addr,
            len,
            direction: Direction::Request,
            connection: plan.connection,
        })
    }

    /// Contact rewriting of the forwarded request, when enabled; `Err` when the table is full.
    fn rewrite_contacts<'a>(
        &self,
        host: &'a [u8],
        edits: &mut Edits<'a>,
    ) -> Result<(), InsertRefused> {
        let Some(rewrite) = self.proxy.contact.as_ref().filter(|r| r.requests) else {
            return Ok(());
        };
        let how = Rewriting {
            host,
            flow: self.flow(),
            register: self.method() == Method::Register,
            now: self.input.now,
        };
        contact::push_rewrites(rewrite, &self.proxy.identity.names, self.msg, &how, edits)
    }

    /// Where this request's packets came from.
    fn flow(&self) -> Flow {
        Flow {
            transport: self.input.transport,
            source: self.input.source,
            local: self.input.local,
            conn: self.input.connection,
        }
    }

    /// §16.6 step 3: decrement Max-Forwards, or add it with 70.
    fn push_max_forwards(&self, edits: &mut Edits<'_>) {
        match self.max_forwards() {
            Ok(Some((n, value))) => edits.push(Edit::replace(
                value,
                Insert::Number {
                    prefix: b"",
                    n: n.saturating_sub(1),
                    suffix: b"",
                },
            )),
            _ => edits.push(Edit::insert(
                self.msg.headers_start(),
                Insert::Bytes(b"Max-Forwards: 70\r\n"),
            )),
        }
    }

    /// Record-Route on dialog-creating requests outside a dialog (no To tag), when enabled:
    /// the same decision for every retransmission.
    fn record_route(&self) -> bool {
        self.proxy.record_route
            && matches!(
                self.method(),
                Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
            )
            && tag_span(self.msg, HeaderName::To).is_none()
    }

    /// A stateless response (never for ACK: RFC 3261 §17.2.1 / §16.11; never 1xx).
    fn reply(&self, status: Status, out: &mut [u8]) -> Outcome {
        if self.method() == Method::Ack {
            return Outcome::Drop(DropReason::AckNotForwarded);
        }
        if !reply::fits(self.msg) {
            return Outcome::Drop(DropReason::TooManyHeaders);
        }
        let mut writer = Out::new(out);
        reply::write(
            &mut writer,
            self.msg,
            Some((self.top.line, &self.fix)),
            status,
            to_tag(self.hash),
        );
        let Some(len) = writer.finish() else {
            return Outcome::Drop(DropReason::OutputTooLarge);
        };
        let local = &self.proxy.identity.locals[self.arrival];
        // RFC 3261 §18.2.2 for UDP; over a stream, or when the Via names another transport
        // than the request came over (RFC 4475 §3.1.1.10), back to where it came from.
        let via_transport = self.top.via.transport(self.buf());
        let destination =
            if self.input.transport.is_stream() || via_transport != Some(self.input.transport) {
                self.input.source
            } else {
                let default = self
                    .top
                    .via
                    .transport(self.buf())
                    .map_or(5060, Transport::default_port);
                reply_destination(&self.top.via, &self.fix, self.input.source, default)
            };
        Outcome::Reply {
            transmit: Transmit {
                destination,
                transport: self.input.transport,
                local: local.addr,
                len,
                direction: Direction::Response,
                connection: self.input.connection,
            },
            status: status.code,
        }
    }
}
