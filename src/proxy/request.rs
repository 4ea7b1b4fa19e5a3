//! Requests: validation (RFC 3261 §16.3), Route preprocessing (§16.4), the target (§16.5),
//! and forwarding (§16.6) as a stateless proxy (§16.11), with RFC 3581 on the top Via.
//!
//! [`Request::decide`] reads the message, the proxy's configuration and the shared tables and
//! returns a [`Decision`]: forward by a [`Plan`], answer with a status, or park until a host
//! name is resolved. Only [`handle`] writes: the rewritten message or the reply into `out`,
//! Contacts into the contact table, a parked message into the worker's parking area.

use std::net::SocketAddr;

use crate::contact::{ContactTable, InsertRefused, LookupError};
use crate::groups::{GroupId, Selection};
use crate::sip::{
    Flow, HeaderName, HostKind, Message, Method, Scheme, SipUri, Span, StartLine, Transport,
    Values, Via, parse_cseq, parse_max_forwards, scheme_of,
};

use super::branch::{tag_span, to_tag};
use super::canonical;
use super::contact::{self, Restore, RestoredUri, Rewriting};
use super::media_hook::{self, RequestMedia, Resumed};
use super::park::{Answer, HostName, Parked, Query, Refused};
use super::policy_hook::{self, Steering};
use super::registrar::{self as location, CredentialLines, Reject};
use super::reply::{self, Status};
use super::rewrite::{Edit, Edits, Insert, Out};
use super::route::{RouteError, RouteSet};
use super::via_fix::{ViaFix, reply_destination};
use super::{
    ConnectionId, Context, Direction, DropReason, Input, Outcome, PeerName, Proxy, Tables, Transmit,
};
use crate::dns::{Found, Lookup, Want};
use crate::media::table::Operation;
use crate::policy::{Reply, RequestView, Router};

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
    retry_after: 0,
};
const LOOP: Status = Status::new(482, "Loop Detected");
const TOO_MANY_HOPS: Status = Status::new(483, "Too Many Hops");
pub(crate) const TOO_LARGE: Status = Status::new(513, "Message Too Large");
const UNRESOLVABLE: Status = Status::new(503, "Unresolvable Destination");
const RESOLVER_BUSY: Status = Status::new(503, "Resolver Busy");
/// Every destination of the group is down (with the group's Retry-After).
const NO_DESTINATION: Status = Status::new(503, "Service Unavailable");
const NO_TRANSPORT: Status = Status::new(503, "Unsupported Transport");
/// An anchored call's offer got no usable answer from rtpengine (`on-failure = "503"`).
const MEDIA_UNAVAILABLE: Status = Status::new(503, "Media Relay Unavailable");

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
    pub(super) fn find(msg: &Message<'_>) -> Option<TopVia> {
        let line = msg
            .headers()
            .iter()
            .position(|h| h.name == HeaderName::Via)?;
        let first = Values::new(msg.buf(), msg.headers()[line].value).next()?;
        let via = Via::parse(msg.buf(), first).ok()?;
        Some(TopVia { line, via })
    }
}

/// What the proxy does with a well-formed request.
// Inline for the same reason as `contact::Restore`: no allocation per restored request.
#[allow(clippy::large_enum_variant)]
enum Decision<'r> {
    /// Forward it (RFC 3261 §16.6).
    Forward(Plan<'r>),
    /// Answer it here with this status (an error, or 200 to an OPTIONS for the proxy).
    Answer(Status),
    /// The routing policy's answer.
    Policy(Reply<'r>),
    /// The routing policy said drop.
    PolicyDrop,
    /// Wait for the host name at this span to be resolved first, by the RFC 3263 procedure
    /// `Want` names (`Query::Resolve` for A/AAAA, `Query::Locate` otherwise).
    Park(Span, Want),
    /// Wait for the shared location store to be asked about this AoR first.
    Ask(Box<[u8]>),
    /// Answer with the registrar's answer: a challenge, the bindings (issue 14).
    Registrar(crate::registrar::Answer),
}

/// Why a decision step stopped before a plan was complete: the decision is made.
/// `decided!` carries it out of `decide` (small: the name to resolve stays a span until it
/// parks).
enum Stop {
    Answer(Status),
    Park(Span, Want),
    /// The AoR to read from the shared location store.
    Ask(Box<[u8]>),
    Registrar(crate::registrar::Answer),
}

impl From<Reject> for Stop {
    fn from(reject: Reject) -> Stop {
        match reject {
            Reject::Status(status) => Stop::Answer(status),
            Reject::Answer(answer) => Stop::Registrar(answer),
        }
    }
}

impl From<Status> for Stop {
    fn from(status: Status) -> Stop {
        Stop::Answer(status)
    }
}

impl From<Stop> for Decision<'_> {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Answer(status) => Decision::Answer(status),
            Stop::Park(name, want) => Decision::Park(name, want),
            Stop::Ask(query) => Decision::Ask(query),
            Stop::Registrar(answer) => Decision::Registrar(answer),
        }
    }
}

/// The value of a decision step, or returns the decision the step made (`Err` holds a
/// `Status` or a `Stop`).
macro_rules! decided {
    ($step:expr) => {
        match $step {
            Ok(value) => value,
            Err(stop) => return Decision::from(Stop::from(stop)),
        }
    };
}

/// Where a forwarded request goes, and what changes on the way.
struct Plan<'r> {
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
    /// The routing policy's modifiers.
    steering: Steering<'r>,
    /// Our realm's credentials, removed before forwarding (issue 14).
    credentials: CredentialLines,
    /// A binding's Path, sent as a preloaded Route (RFC 3327 §5.3).
    preloaded: Option<RestoredUri>,
    /// Over TLS: the name the next hop's certificate must carry (RFC 5922 §7.2).
    name: Option<PeerName>,
}

/// Where the request is headed before the address is known.
// Inline for the same reason as `contact::Restore`: no allocation per restored request.
#[allow(clippy::large_enum_variant)]
enum Target {
    Uri(SipUri),
    NextHop,
    /// The configured destination of every request (`route_all_to`).
    RouteAll,
    /// A destination group: the destination is chosen among its live ones.
    Group(GroupId),
    /// A rewritten contact: the original URI, reached over the recorded flow.
    Flow {
        uri: RestoredUri,
        flow: Flow,
        /// A registered binding's Path (RFC 3327), as a preloaded Route.
        route: Option<RestoredUri>,
    },
    /// The routing policy's destination, resolved.
    Policy((SocketAddr, Transport)),
}

/// The Request-URI in effect after Route preprocessing (§16.4).
struct Preprocessed {
    /// The effective Request-URI (`None` for a non-SIP one such as `tel:`).
    current: Option<SipUri>,
    /// Where its text comes from when it changed (the last Route, undoing a strict router).
    new_ruri: Option<Span>,
    /// A Route value naming this proxy was removed (or a strict router undone): the request
    /// came back through our Record-Route, if it is inside a dialog.
    ours_removed: bool,
    /// A removed Route value was our Path with a flow token (RFC 3327, RFC 5626 §5.3): the
    /// flow the REGISTER came over.
    path_flow: Option<Flow>,
}

/// The next hop (§16.5) and the strict-routing rewrite it needs (§16.6 step 6).
struct Targeted {
    target: Target,
    /// A URI from the input that becomes the Request-URI.
    new_ruri: Option<Span>,
    /// A URI from the input appended as the last Route.
    append_route: Option<Span>,
}

/// A Max-Forwards header's value and where it is written.
#[derive(Clone, Copy)]
struct MaxForwards {
    hops: u32,
    value: Span,
}

/// A parked request's query and what came back for it.
pub(crate) type Resolution = (Query, Answer);

/// One request being decided.
struct Request<'m, 'p> {
    proxy: &'p Proxy,
    tables: &'p Tables,
    msg: &'m Message<'m>,
    input: &'m Input<'m>,
    arrival: usize,
    top: TopVia,
    fix: ViaFix,
    hash: u64,
    /// When resuming a parked request: its query and the answer (then it never parks again).
    resolution: Option<&'p Resolution>,
    /// The worker's lane in shared per-worker counters (`WorkerState::lane`).
    lane: usize,
}

/// A Record-Route value (`line`, pre-rendered and ending in `>\r\n`), with the media mark
/// and the caller's From tag before its `>` on an anchored initial INVITE.
fn push_record_route<'a>(
    edits: &mut Edits<'a>,
    at: usize,
    line: &'a [u8],
    msg: &Message<'_>,
    media: Option<&RequestMedia>,
) {
    let mark = media
        .filter(|m| m.initial)
        .map(media_hook::record_route_mark);
    let tag = tag_span(msg, HeaderName::From);
    match (mark, tag, line.len().checked_sub(3)) {
        (Some(mark), Some(tag), Some(open)) => {
            edits.push(Edit::insert(at, Insert::Bytes(&line[..open])));
            edits.push(Edit::insert(at, Insert::Bytes(mark)));
            edits.push(Edit::insert(at, Insert::Copy(tag)));
            edits.push(Edit::insert(at, Insert::Bytes(&line[open..])));
        }
        _ => edits.push(Edit::insert(at, Insert::Bytes(line))),
    }
}

/// Handles a well-framed request.
pub(crate) fn handle(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    ctx: &mut Context<'_>,
    out: &mut [u8],
) -> Outcome {
    let Some(req) = Request::new(proxy, ctx.tables, msg, input, None, ctx.worker.lane) else {
        return Outcome::Drop(DropReason::MalformedRequest);
    };
    if req.acks_our_reply() {
        return Outcome::Drop(DropReason::AckNotForwarded);
    }
    // The router lives in the worker's state; taken out for the call so that parking (which
    // needs the whole context) can follow the decision.
    let mut router = ctx.worker.router.take();
    let outcome = match req.decide(router.as_deref_mut()) {
        Decision::Forward(plan) => req.forward_media(plan, ctx, out),
        Decision::Answer(status) => req.reply(status, out),
        Decision::Policy(reply) => req.reply_policy(reply.code, reply.reason, reply.headers, out),
        Decision::PolicyDrop => Outcome::Drop(DropReason::PolicyDrop),
        Decision::Park(name, want) => req.park(name, want, ctx, out),
        Decision::Ask(aor) => req.park_query(Query::Location(aor), ctx, out),
        Decision::Registrar(answer) => req.answer(&answer, out),
    };
    ctx.worker.router = router;
    outcome
}

/// Handles a parked request again with the answer to its query (the policy decides again:
/// its rules are pure, so it decides the same).
pub(crate) fn resume(
    proxy: &Proxy,
    msg: &Message<'_>,
    input: &Input<'_>,
    resolution: Resolution,
    ctx: &mut Context<'_>,
    out: &mut [u8],
) -> Outcome {
    let resolution = Some(&resolution);
    let Some(req) = Request::new(proxy, ctx.tables, msg, input, resolution, ctx.worker.lane) else {
        return Outcome::Drop(DropReason::MalformedRequest);
    };
    let mut router = ctx.worker.router.take();
    let outcome = match req.decide(router.as_deref_mut()) {
        Decision::Forward(plan) => req.forward_media(plan, ctx, out),
        Decision::Answer(status) => req.reply(status, out),
        Decision::Policy(reply) => req.reply_policy(reply.code, reply.reason, reply.headers, out),
        Decision::PolicyDrop => Outcome::Drop(DropReason::PolicyDrop),
        // `resolution` is set, so `decide` does not park again.
        Decision::Park(..) => req.reply(UNRESOLVABLE, out),
        Decision::Ask(..) => req.reply(TEMPORARILY_UNAVAILABLE, out),
        Decision::Registrar(answer) => req.answer(&answer, out),
    };
    ctx.worker.router = router;
    outcome
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
    const NO_TABLES: &Tables = &Tables {
        contact: None,
        registrar: None,
        groups: None,
        dns: None,
    };
    match Request::new(proxy, NO_TABLES, msg, input, None, 0) {
        Some(req) => req.reply(status, out),
        None => Outcome::Drop(otherwise),
    }
}

impl<'m, 'p> Request<'m, 'p> {
    fn new(
        proxy: &'p Proxy,
        tables: &'p Tables,
        msg: &'m Message<'m>,
        input: &'m Input<'m>,
        resolution: Option<&'p Resolution>,
        lane: usize,
    ) -> Option<Self> {
        let top = TopVia::find(msg)?;
        let flow = &input.flow;
        Some(Request {
            proxy,
            tables,
            msg,
            input,
            arrival: proxy.identity.arrival(flow.local, flow.transport),
            top,
            fix: ViaFix::new(&top.via, flow.source),
            hash: proxy.branch_key.transaction_hash(msg, &top.via),
            resolution,
            lane,
        })
    }

    /// RFC 3261 §17.2.1: the ACK of a non-2xx final response this proxy sent itself (a 407
    /// challenge, a 404) carries our stateless To tag; with no server transaction to absorb
    /// it, it ends here instead of following the Request-URI.
    fn acks_our_reply(&self) -> bool {
        if self.method() != Method::Ack {
            return false;
        }
        let Some(tag) = tag_span(self.msg, HeaderName::To) else {
            return false;
        };
        let ours = to_tag(self.hash);
        let tag = tag.of(self.buf());
        tag.len() == 16
            && tag.iter().enumerate().all(|(i, c)| {
                let nibble = (ours >> (60 - 4 * i)) & 15;
                char::from_digit(nibble as u32, 16).is_some_and(|d| d as u8 == *c)
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

    /// RFC 3261 §16.3 to §16.6: forward by a plan, answer with a status, or park. Each step
    /// either goes on or has made the decision (`decided!`); the plan is built where the
    /// decision is returned, never copied (it holds a restored URI inline, over 500 bytes).
    /// The routing policy, when there is one, decides between §16.4 and §16.5.
    fn decide<'r>(&self, router: Option<&'r mut (dyn Router + 'static)>) -> Decision<'r> {
        if self.msg.headers().len() > super::MAX_FORWARDED_HEADERS {
            return Decision::Answer(bad_request("Too Many Headers"));
        }
        decided!(self.check_transaction_fields());
        let ruri = decided!(self.check_request_uri());
        decided!(self.check_max_forwards());
        decided!(self.check_proxy_require());
        let mut routes = decided!(RouteSet::collect(self.msg).map_err(|e| match e {
            RouteError::Malformed => bad_request("Bad Route"),
            RouteError::TooMany => bad_request("Too Many Routes"),
        }));
        let preprocessed = self.preprocess_routes(ruri, &mut routes);
        // Issue 14 before issue 13: the registrar answers REGISTER for its domains and
        // authenticates its users; the policy then steers what is left.
        let credentials = decided!(self.registrar_first(preprocessed.current, &mut routes));
        let steering = match router {
            Some(router) => {
                let view = self.view(ruri, &routes, &preprocessed);
                match policy_hook::steering(router.route(&view)) {
                    Ok(steering) => steering,
                    Err(Some(reply)) => return Decision::Policy(reply),
                    Err(None) => return Decision::PolicyDrop,
                }
            }
            None => Steering::default(),
        };
        let targeted = match steering.to {
            Some(crate::policy::Destination::Group(name)) => Targeted {
                // A name the policy compiler checked against the configured groups.
                target: match self.tables.groups.as_deref().and_then(|g| g.id(name)) {
                    Some(group) => Target::Group(group),
                    None => return Decision::Answer(NO_DESTINATION),
                },
                new_ruri: preprocessed.new_ruri,
                append_route: None,
            },
            Some(to) => match policy_hook::resolve(&self.proxy.identity, &to) {
                Some(hop) => Targeted {
                    target: Target::Policy(hop),
                    new_ruri: preprocessed.new_ruri,
                    append_route: None,
                },
                None => return Decision::Answer(UNRESOLVABLE),
            },
            None => decided!(self.target(preprocessed, &mut routes)),
        };
        let (restored, flow, preloaded) = match targeted.target {
            Target::Flow { uri, flow, route } => (Some(uri), Some(flow), route),
            _ => (None, None, None),
        };
        let name = self.peer_name(&targeted.target);
        let (destination, transport, name) = match targeted.target {
            Target::Group(group) => {
                let (destination, transport, tls) = decided!(self.group_destination(group));
                let name = tls.and_then(|n| PeerName::new(n.as_bytes()));
                (destination, transport, name)
            }
            target => {
                let (destination, transport) = decided!(self.resolve(target));
                (destination, transport, name)
            }
        };
        let identity = &self.proxy.identity;
        let departure = match flow {
            // A request back to a contact leaves from the listener its packets came to.
            Some(flow) => identity.arrival(flow.local, flow.transport),
            None => decided!(
                identity
                    .departure(self.arrival, transport, destination.ip())
                    .ok_or(NO_TRANSPORT)
            ),
        };
        if self.proxy.identity.is_own_socket(destination, transport) {
            return Decision::Answer(LOOP);
        }
        Decision::Forward(Plan {
            destination,
            transport,
            departure,
            new_ruri: targeted.new_ruri,
            append_route: targeted.append_route,
            routes,
            restored,
            connection: flow.and_then(|f| f.conn),
            steering,
            credentials,
            preloaded,
            name: name.filter(|_| transport == Transport::Tls),
        })
    }

    /// RFC 5922 §7.2 (and RFC 3263 §4): a TLS next hop reached through a URI must present a
    /// certificate for the URI's domain — the host part of the Request-URI or Route resolved,
    /// whatever SRV target or address DNS gave for it. An IP literal has no name (its address
    /// is verified); so has a next hop that did not come from a URI.
    fn peer_name(&self, target: &Target) -> Option<PeerName> {
        match target {
            Target::Uri(uri) if matches!(uri.host.kind, HostKind::Name) => {
                PeerName::new(uri.host.span.of(self.buf()))
            }
            _ => None,
        }
    }

    /// Issue 14: the registrar answers a REGISTER for our domain and authenticates requests
    /// from our users, before any routing (see `registrar.rs`).
    fn registrar_first(
        &self,
        current: Option<SipUri>,
        routes: &mut RouteSet,
    ) -> Result<CredentialLines, Reject> {
        let Some(registrar) = self.tables.registrar.as_deref() else {
            return Ok(CredentialLines::new());
        };
        let ruri = current.map(|u| (u, self.is_me(&u)));
        let routed = routes.top_mut().is_some();
        location::before_routing(
            registrar,
            self.msg,
            self.input.flow,
            self.input.now,
            ruri.as_ref().map(|(u, me)| (u, *me)),
            routed,
            &|uri| self.is_me(uri),
        )
    }

    /// Issue 14: a Request-URI naming one of our AoRs goes to its best binding; a miss with
    /// a shared store parks once to read the AoR from the store.
    fn locate(&self, uri: &SipUri) -> Option<Result<Target, Stop>> {
        let registrar = self.tables.registrar.as_deref()?;
        let me = self.is_me(uri);
        let arrival = self.input.flow.local;
        let ask = self.resolution.is_none();
        let now = self.input.now;
        let found = location::locate(registrar, self.buf(), uri, me, arrival, now, ask)?;
        Some(match found {
            Ok(l) => Ok(Target::Flow {
                uri: l.uri,
                flow: l.flow,
                route: l.route,
            }),
            Err(location::NotLocated::Status(status)) => Err(Stop::Answer(status)),
            Err(location::NotLocated::Ask(aor)) => Err(Stop::Ask(aor)),
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

    /// §16.3 step 3: Max-Forwards 0 ends the request here: OPTIONS is answered (§11), anything
    /// else gets 483.
    fn check_max_forwards(&self) -> Result<(), Status> {
        match self.max_forwards()? {
            Some(MaxForwards { hops: 0, .. }) if self.method() == Method::Options => Err(OK),
            Some(MaxForwards { hops: 0, .. }) => Err(TOO_MANY_HOPS),
            _ => Ok(()),
        }
    }

    fn max_forwards(&self) -> Result<Option<MaxForwards>, Status> {
        match self.msg.header(HeaderName::MaxForwards) {
            None => Ok(None),
            Some(h) => parse_max_forwards(self.msg.bytes(h.value))
                .map(|hops| {
                    Some(MaxForwards {
                        hops,
                        value: h.value,
                    })
                })
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

    /// What the routing policy sees: the request, where it came from, whether it names this
    /// proxy and whether it follows our Record-Route — in a dialog (a To tag, RFC 3261 §12)
    /// and carrying our Route; an initial request with a pre-loaded Route to us does not.
    fn view(&self, ruri: Option<SipUri>, routes: &RouteSet, pre: &Preprocessed) -> RequestView<'m> {
        let follows = (routes.any_removed() || pre.new_ruri.is_some())
            && tag_span(self.msg, HeaderName::To).is_some();
        let to_me = ruri.is_some_and(|u| self.is_me(&u));
        let flow = &self.input.flow;
        RequestView::with_uri(self.msg, ruri, flow.source, flow.local, flow.transport)
            .with_routing(to_me, follows)
    }

    /// §16.4: undo an upstream strict router, then drop the Route values naming this proxy.
    /// Returns the Request-URI now in effect and, if it changed, where its text comes from.
    fn preprocess_routes(&self, ruri: Option<SipUri>, routes: &mut RouteSet) -> Preprocessed {
        let mut current = ruri;
        let mut new_ruri = None;
        // Our Record-Route URIs carry `lr` and no user part; such a Request-URI means the
        // previous hop was a strict router (§16.4, first paragraph).
        let ours = ruri.is_some_and(|u| u.user.is_none() && u.lr && self.is_me(&u));
        let mut ours_removed = false;
        if let Some(last) = routes.last_mut().filter(|_| ours) {
            last.removed = true;
            current = Some(last.uri);
            new_ruri = Some(last.uri.span);
            ours_removed = true;
        }
        // Double Record-Routing puts two of our values on top (one per interface).
        let mut path_flow = None;
        while let Some(top) = routes.top_mut() {
            let mine = {
                let uri = top.uri;
                self.is_me(&uri)
            };
            if !mine {
                break;
            }
            top.removed = true;
            ours_removed = true;
            if let Some(user) = top.uri.user {
                path_flow = path_flow.or_else(|| self.path_flow(user));
            }
        }
        Preprocessed {
            current,
            new_ruri,
            ours_removed,
            path_flow,
        }
    }

    /// The flow our Path token `user` names (RFC 5626 §5.3), when it is one of ours.
    fn path_flow(&self, user: Span) -> Option<Flow> {
        let locals = &self.proxy.identity.locals;
        let key = &self.proxy.config().path_secret;
        location::open_path_token(key, user.of(self.buf()), &|i| locals.get(i).map(|l| l.addr))
    }

    /// §16.5 and §16.6 steps 6–7: the next hop, and the strict-routing rewrite when the next
    /// hop does not do loose routing.
    fn target(&self, pre: Preprocessed, routes: &mut RouteSet) -> Result<Targeted, Stop> {
        let keep = |target| Targeted {
            target,
            new_ruri: pre.new_ruri,
            append_route: None,
        };
        // RFC 3327 §5.3, RFC 5626 §5.3: the registrar sent this back through the Path we put
        // on a REGISTER; with no Route left beyond ours, it goes over that REGISTER's flow.
        if let Some(flow) = pre.path_flow.filter(|_| routes.top_mut().is_none()) {
            let text = pre.new_ruri.unwrap_or(self.ruri()).of(self.buf());
            if let Some(uri) = RestoredUri::copy(text) {
                return Ok(keep(Target::Flow {
                    uri,
                    flow,
                    route: None,
                }));
            }
        }
        if self.proxy.route_all_to.is_some() {
            return Ok(keep(Target::RouteAll));
        }
        if let Some(group) = self.route_to_group(&pre) {
            // A request for a contact this proxy rewrote still reaches its contact (only
            // looked for when rewriting is on: no host comparison per request otherwise).
            let restored = pre
                .current
                .filter(|_| self.contact_table().is_some())
                .filter(|u| self.is_me(u));
            if let Some(found) = restored.and_then(|u| self.restore_contact(&u)) {
                return found.map(keep).map_err(Stop::from);
            }
            return Ok(keep(Target::Group(group)));
        }
        if let Some(top) = routes.top_mut() {
            if top.uri.lr {
                return Ok(keep(Target::Uri(top.uri)));
            }
            // §16.6 step 6: a strict router gets the Route URI as its Request-URI, and the
            // Request-URI goes to the end of the Route set.
            top.removed = true;
            let uri = top.uri;
            return Ok(Targeted {
                target: Target::Uri(uri),
                new_ruri: Some(uri.span),
                append_route: Some(pre.new_ruri.unwrap_or(self.ruri())),
            });
        }
        // A contact token of ours (`sip:<token>@us`) first, then one of our AoRs.
        if let Some(restored) = pre
            .current
            .filter(|uri| self.is_me(uri))
            .and_then(|uri| self.restore_contact(&uri))
        {
            return restored.map(keep).map_err(Stop::from);
        }
        if let Some(located) = pre.current.and_then(|uri| self.locate(&uri)) {
            return located.map(keep);
        }
        match pre.current {
            Some(uri) if self.is_me(&uri) => self
                .restore_contact(&uri)
                .unwrap_or_else(|| self.addressed_to_me(&uri))
                .map(keep)
                .map_err(Stop::from),
            Some(uri) => Ok(keep(Target::Uri(uri))),
            None if self.proxy.next_hop.is_some() => Ok(keep(Target::NextHop)),
            None => Err(Stop::Answer(UNSUPPORTED_SCHEME)),
        }
    }

    /// The group of `route-to-group` when this request does not follow our Record-Route: one
    /// that came with a Route naming us (removed above) *and* a To tag (inside a dialog) goes
    /// on by its Route set or Request-URI; every other request (initial requests, their
    /// CANCELs and non-2xx ACKs, which carry the INVITE's Route set, RFC 3261 §17.1.1.3)
    /// goes to the group, whatever its Request-URI.
    fn route_to_group(&self, pre: &Preprocessed) -> Option<GroupId> {
        let group = self.proxy.route_to_group?;
        let follows_ours = pre.ours_removed && tag_span(self.msg, HeaderName::To).is_some();
        (!follows_ours).then_some(group)
    }

    /// A Request-URI `sip:<token>@<this proxy>` (a contact this proxy rewrote): the original
    /// contact over its recorded flow; a forged, unknown or foreign token is 404, an expired
    /// one 480. `None` when contact rewriting is off or the user part is not a token.
    fn restore_contact(&self, uri: &SipUri) -> Option<Result<Target, Status>> {
        let table = self.contact_table()?;
        let user = uri.user?;
        match contact::restore(table, self.buf(), user, self.input.now) {
            Restore::NotAToken => None,
            Restore::Found { uri, flow } => Some(Ok(Target::Flow {
                uri,
                flow,
                route: None,
            })),
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

    /// The contact table, when rewriting is on and the context has one.
    fn contact_table(&self) -> Option<&'p ContactTable> {
        self.proxy.contact?;
        self.tables.contact.as_deref()
    }

    /// §16.6 step 7: the address, port and transport of the target (RFC 3263 §4: IP
    /// literals and `maddr` as they are, the static host table, then the DNS cache, parking
    /// for the resolver on a miss).
    fn resolve(&self, target: Target) -> Result<(SocketAddr, Transport), Stop> {
        let uri = match target {
            Target::NextHop => return self.proxy.next_hop.ok_or(NOT_FOUND.into()),
            Target::RouteAll => return self.proxy.route_all_to.ok_or(NOT_FOUND.into()),
            Target::Flow { flow, .. } => return Ok((flow.source, flow.transport)),
            Target::Policy(hop) => return Ok(hop),
            Target::Group(group) => return self.group_destination(group).map(|(a, t, _)| (a, t)),
            Target::Uri(uri) => uri,
        };
        let buf = self.buf();
        let transport = uri.transport(buf).ok_or(NO_TRANSPORT)?;
        let port = uri.port.unwrap_or(transport.default_port());
        // RFC 3263 §4: maddr, when present, is the host to resolve.
        let host = match uri.maddr {
            Some(maddr) => {
                crate::sip::parse_host(buf, maddr.start(), maddr.end())
                    .ok_or(bad_request("Bad maddr"))?
                    .0
            }
            None => uri.host,
        };
        // RFC 3263 §4.2: a numeric address is used as is (so is a name of the static table).
        if let Some(ip) = self.proxy.identity.hosts.resolve(buf, &host) {
            return Ok((SocketAddr::new(ip, port), transport));
        }
        if !matches!(host.kind, HostKind::Name) {
            return Err(UNRESOLVABLE.into());
        }
        let explicit = uri.transport_param.map(|_| transport);
        let want = Want::of(uri.port, explicit, uri.scheme == Scheme::Sips);
        let lookup = Lookup::new(host.span.of(buf), want).ok_or(UNRESOLVABLE)?;
        let place = |to: SocketAddr, t: Transport| match want {
            // §4.2 with a port: the address is DNS's, port and transport the URI's.
            Want::Address => (SocketAddr::new(to.ip(), port), transport),
            _ => (to, t),
        };
        if let Some(cache) = self.tables.dns.as_deref() {
            match cache.find(&lookup, self.input.now, self.call_key()) {
                Found::To(t) => return Ok(place(t.addr, t.transport)),
                Found::NotFound => return Err(UNRESOLVABLE.into()),
                Found::AllDown => return Err(NO_DESTINATION.into()),
                Found::Miss => {}
            }
        }
        match self.resolution {
            Some((Query::Locate(asked), Answer::Target(to, t))) if *asked == lookup => {
                Ok(place(*to, *t))
            }
            Some((Query::Resolve(asked), Answer::Address(ip))) if asked.is(lookup.name()) => {
                Ok(place(SocketAddr::new(*ip, port), transport))
            }
            Some(_) => Err(UNRESOLVABLE.into()),
            None if self.proxy.resolver => Err(Stop::Park(host.span, want)),
            None => Err(UNRESOLVABLE.into()),
        }
    }

    /// The key a name's targets are chosen by (the Call-ID, as groups' default): every
    /// message of a call, its CANCEL and its non-2xx ACK choose the same target.
    fn call_key(&self) -> u64 {
        crate::groups::call_key(self.msg, self.input.flow.source)
    }

    /// The live destination of `group` for this request, or 503 with the group's Retry-After
    /// when none is live (or the context has no groups). Over TLS, with the name its
    /// certificate must carry: RFC 5922 §7.2, the domain of the destination's URI when it is
    /// named in DNS (`None`: its `[hosts]` name or its address, as for any next hop).
    fn group_destination(
        &self,
        group: GroupId,
    ) -> Result<(SocketAddr, Transport, Option<&'p str>), Stop> {
        let all_down = |retry_after| {
            Stop::Answer(Status {
                retry_after,
                ..NO_DESTINATION
            })
        };
        let Some(groups) = self.tables.groups.as_deref() else {
            return Err(all_down(0));
        };
        let source = self.input.flow.source;
        match groups.select(group, self.msg, source, self.hash, self.lane) {
            Selection::To {
                addr,
                transport: Transport::Tls,
                destination,
            } => Ok((addr, Transport::Tls, groups.tls_name(group, destination))),
            Selection::To {
                addr, transport, ..
            } => Ok((addr, transport, None)),
            Selection::AllDown { retry_after } => Err(all_down(retry_after)),
        }
    }

    /// Keeps the request in the worker's parking area until the host name at `name` is
    /// resolved as `want` says; a copy of a request parked already is absorbed, and a full area gets 503.
    fn park(&self, name: Span, want: Want, ctx: &mut Context<'_>, out: &mut [u8]) -> Outcome {
        let name = name.of(self.buf());
        let query = match want {
            Want::Address => HostName::new(name).map(Query::Resolve),
            _ => Lookup::new(name, want).map(Query::Locate),
        };
        let Some(query) = query else {
            return self.reply(UNRESOLVABLE, out);
        };
        self.park_query(query, ctx, out)
    }

    /// Parks this request until its query is answered (or times out), then `resume`.
    fn park_query(&self, query: Query, ctx: &mut Context<'_>, out: &mut [u8]) -> Outcome {
        let parked = Parked {
            query,
            flow: self.input.flow,
            since: self.input.now,
            timeout: None,
            hash: self.hash,
            method: self.method(),
        };
        match ctx.worker.parking.park(self.input.data, parked) {
            Ok(ticket) => Outcome::Park(ticket),
            Err(Refused::Retransmission) => Outcome::Drop(DropReason::ParkedRetransmission),
            Err(Refused::Full) if self.method() == Method::Ack => {
                Outcome::Drop(DropReason::ParkingFull)
            }
            Err(Refused::Full) => self.reply(RESOLVER_BUSY, out),
        }
    }

    /// Forwards by `plan`, through rtpengine first when the call is anchored (issue 18): a
    /// message that needs an NG command parks for it (once); resumed with the answer, it
    /// leaves with rtpengine's SDP, or gets the fallback.
    fn forward_media(&self, plan: Plan<'_>, ctx: &mut Context<'_>, out: &mut [u8]) -> Outcome {
        let Some(media) = self.proxy.config.media.as_deref() else {
            return self.forward(plan, None, None, out);
        };
        let rule = plan.steering.modifiers.media;
        let Some(facts) = media_hook::for_request(media, self.msg, &plan.routes, rule) else {
            return self.forward(plan, None, None, out);
        };
        if facts.operation == Operation::None {
            return self.forward(plan, Some(&facts), None, out);
        }
        let initial_offer = facts.initial && facts.operation == Operation::Offer;
        match self.resolution {
            Some((Query::Media(_), answer)) => {
                match media_hook::resumed(media, answer, initial_offer) {
                    Resumed::Body(sdp) => self.forward(plan, Some(&facts), Some(sdp), out),
                    Resumed::Unchanged => self.forward(plan, Some(&facts), None, out),
                    Resumed::Unanchored => self.forward(plan, None, None, out),
                    Resumed::Reject => self.reply(MEDIA_UNAVAILABLE, out),
                }
            }
            _ => self.park_media(media, &facts, ctx, plan, out),
        }
    }

    /// Parks the request until rtpengine answers `facts.operation`; a copy of a request
    /// parked already is absorbed. A full parking area, or a message rtpengine could not key
    /// (no From tag), gets the failure's fallback at once.
    fn park_media(
        &self,
        media: &crate::media::Media,
        facts: &RequestMedia,
        ctx: &mut Context<'_>,
        plan: Plan<'_>,
        out: &mut [u8],
    ) -> Outcome {
        let new_call = facts.initial;
        let source = self.input.flow.source.ip();
        let query = media_hook::query(self.msg, facts.operation, facts.toward, source, new_call);
        let parked = query.map(|query| Parked {
            query: Query::Media(Box::new(query)),
            flow: self.input.flow,
            since: self.input.now,
            timeout: Some(media.config.timeout),
            hash: self.hash,
            method: self.method(),
        });
        let refused = match parked.map(|p| ctx.worker.parking.park(self.input.data, p)) {
            Some(Ok(ticket)) => return Outcome::Park(ticket),
            Some(Err(Refused::Retransmission)) => {
                return Outcome::Drop(DropReason::ParkedRetransmission);
            }
            Some(Err(Refused::Full)) | None => Answer::TimedOut,
        };
        let initial_offer = facts.initial && facts.operation == Operation::Offer;
        match media_hook::resumed(media, &refused, initial_offer) {
            Resumed::Unanchored => self.forward(plan, None, None, out),
            Resumed::Reject => self.reply(MEDIA_UNAVAILABLE, out),
            _ => self.forward(plan, Some(facts), None, out),
        }
    }

    /// §16.6 steps 3, 4, 8, 9 and the edits decided above, written in one pass; for an
    /// anchored call with its media marks, and `body` (rtpengine's SDP) in place of the body.
    fn forward(
        &self,
        plan: Plan<'_>,
        media: Option<&RequestMedia>,
        body: Option<&[u8]>,
        out: &mut [u8],
    ) -> Outcome {
        let msg = self.msg;
        let local = &self.proxy.identity.locals[plan.departure];
        let path = self.path_line(&local.record_route);
        let mut edits = Edits::new();
        let modifiers = &plan.steering.modifiers;
        if let Some(uri) = plan.new_ruri {
            edits.push(Edit::replace(self.ruri(), Insert::Copy(uri)));
        } else if plan.restored.is_none() {
            let parsed = modifiers
                .touches_request_uri()
                .then(|| SipUri::parse(self.buf(), self.ruri()).ok())
                .flatten();
            policy_hook::push_edits(modifiers, msg, self.ruri(), parsed, &mut edits);
        }
        if let Some(restored) = &plan.restored {
            edits.push(Edit::replace(
                self.ruri(),
                Insert::Bytes(restored.as_bytes()),
            ));
        }
        // RFC 3261 §19.1.5, RFC 4475 §3.1.2.11: escaped headers never reach the next hop's Request-URI (a
        // policy that rewrites the Request-URI writes its own).
        if plan.new_ruri.is_none() && plan.restored.is_none() && !modifiers.touches_request_uri() {
            canonical::strip_uri_headers(msg, &mut edits);
        }
        if modifiers.rewrite_contacts != Some(false)
            && self.rewrite_contacts(&local.shown, &mut edits).is_err()
        {
            return self.reply(CONTACT_TABLE_FULL, out);
        }
        let top = msg.headers_start();
        if self.record_route(modifiers.record_route) {
            // §16.6 step 4; two values when the request changes interface (RFC 5658 style),
            // the one facing the next hop first.
            push_record_route(&mut edits, top, &local.record_route, msg, media);
            if plan.departure != self.arrival {
                let arrival = &self.proxy.identity.locals[self.arrival];
                push_record_route(&mut edits, top, &arrival.record_route, msg, media);
            }
        }
        // §16.6 step 8 with the §16.11 branch.
        let key = &self.proxy.branch_key;
        let connection = self
            .input
            .flow
            .conn
            .map(|c| (c.0, key.connection_tag(c.0, self.hash)));
        edits.push(Edit::insert(
            top,
            Insert::Via {
                prefix: &local.via_prefix,
                hash: self.hash,
                connection,
                media: media.map_or(&b""[..], media_hook::via_mark),
            },
        ));
        self.push_max_forwards(&mut edits);
        self.fix.push_edits(&mut edits);
        plan.routes.removal_edits(msg, &mut edits);
        for line in &plan.credentials {
            edits.push(Edit::delete(*line));
        }
        if let Some(line) = &path {
            // RFC 3327 §5.3: our value goes on top of any Path already there.
            edits.push(Edit::insert(top, Insert::Bytes(line.as_bytes())));
        }
        if let Some(path) = &plan.preloaded {
            edits.push(Edit::insert(top, Insert::Bytes(b"Route: ")));
            edits.push(Edit::insert(top, Insert::Bytes(path.as_bytes())));
            edits.push(Edit::insert(top, Insert::Bytes(b"\r\n")));
        }
        if let (Some(uri), Some(line)) = (plan.append_route, plan.routes.last_line()) {
            let after = msg.headers()[line as usize].line.end();
            edits.push(Edit::insert(after, Insert::RouteLine(uri)));
        }
        if let Some(sdp) = body {
            edits.push(Edit::replace(msg.body(), Insert::Bytes(sdp)));
        }
        let mut writer = Out::new(out);
        canonical::write_body(&mut writer, msg, &mut edits, body.map(<[u8]>::len));
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
            name: plan.name,
        })
    }

    /// RFC 3327 §5.3: the Path line for a REGISTER this proxy forwards (when `add-path` is on),
    /// naming the listener the REGISTER leaves from with the flow it came over as token.
    fn path_line(&self, record_route: &[u8]) -> Option<location::PathLine> {
        if !self.proxy.config().add_path || self.method() != Method::Register {
            return None;
        }
        let arrival = u8::try_from(self.arrival).ok()?;
        let key = &self.proxy.config().path_secret;
        let token = location::path_token(key, self.input.flow, arrival);
        let ob = location::outbound_first_hop(self.msg);
        location::PathLine::new(&token, record_route, ob)
    }

    /// Contact rewriting of the forwarded request, when enabled; `Err` when the table is full.
    fn rewrite_contacts<'a>(
        &self,
        host: &'a [u8],
        edits: &mut Edits<'a>,
    ) -> Result<(), InsertRefused> {
        let Some(table) = self.contact_table() else {
            return Ok(());
        };
        if !self.proxy.contact.is_some_and(|r| r.requests) {
            return Ok(());
        }
        let how = Rewriting {
            host,
            flow: self.input.flow,
            register: self.method() == Method::Register,
            now: self.input.now,
        };
        contact::push_rewrites(table, &self.proxy.identity.names, self.msg, &how, edits)
    }

    /// §16.6 step 3: decrement Max-Forwards, or add it with 70.
    fn push_max_forwards(&self, edits: &mut Edits<'_>) {
        match self.max_forwards() {
            Ok(Some(MaxForwards { hops, value })) => edits.push(Edit::replace(
                value,
                Insert::Number {
                    prefix: b"",
                    n: hops.saturating_sub(1),
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
    fn record_route(&self, policy: Option<bool>) -> bool {
        policy.unwrap_or(self.proxy.record_route)
            && matches!(
                self.method(),
                Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
            )
            && tag_span(self.msg, HeaderName::To).is_none()
    }

    /// A registrar's answer: its status with its header lines.
    fn answer(&self, answer: &crate::registrar::Answer, out: &mut [u8]) -> Outcome {
        let status = Status::new(answer.code, answer.reason);
        self.reply_with(status, Some(answer), out)
    }

    /// A stateless response (never for ACK: RFC 3261 §17.2.1 / §16.11; never 1xx).
    fn reply(&self, status: Status, out: &mut [u8]) -> Outcome {
        self.reply_as(reply::Head::of(status), None, out)
    }

    /// The policy's answer: its code, reason and extra header lines.
    fn reply_policy(&self, code: u16, reason: &str, extra: &[u8], out: &mut [u8]) -> Outcome {
        let head = reply::Head {
            code,
            reason,
            unsupported: false,
            extra,
            retry_after: 0,
        };
        self.reply_as(head, None, out)
    }

    /// A status with a registrar's header lines (challenges, bindings).
    fn reply_with(
        &self,
        status: Status,
        answer: Option<&crate::registrar::Answer>,
        out: &mut [u8],
    ) -> Outcome {
        self.reply_as(reply::Head::of(status), answer, out)
    }

    fn reply_as(
        &self,
        head: reply::Head<'_>,
        answer: Option<&crate::registrar::Answer>,
        out: &mut [u8],
    ) -> Outcome {
        if self.method() == Method::Ack {
            return Outcome::Drop(DropReason::AckNotForwarded);
        }
        if !reply::fits(self.msg) {
            return Outcome::Drop(DropReason::TooManyHeaders);
        }
        let mut writer = Out::new(out);
        reply::write_head(
            &mut writer,
            self.msg,
            Some((self.top.line, &self.fix)),
            head,
            to_tag(self.hash),
            answer,
        );
        let Some(len) = writer.finish() else {
            return Outcome::Drop(DropReason::OutputTooLarge);
        };
        let local = &self.proxy.identity.locals[self.arrival];
        // RFC 3261 §18.2.2 for UDP; over a stream, or when the Via names another transport
        // than the request came over (RFC 4475 §3.1.1.10), back to where it came from.
        let flow = &self.input.flow;
        let via_transport = self.top.via.transport(self.buf());
        let destination = if flow.transport.is_stream() || via_transport != Some(flow.transport) {
            flow.source
        } else {
            let default = via_transport.map_or(5060, Transport::default_port);
            reply_destination(&self.top.via, &self.fix, flow.source, default)
        };
        Outcome::Reply {
            transmit: Transmit {
                destination,
                transport: flow.transport,
                local: local.addr,
                len,
                direction: Direction::Response,
                connection: flow.conn,
                name: None,
            },
            status: head.code,
        }
    }
}

#[cfg(test)]
mod tests;
