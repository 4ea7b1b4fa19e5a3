//! What a router decides for one request: the vocabulary the compiled rules, Lua scripts and
//! an embedder's own [`Router`] share.
//!
//! Everything a verdict holds is borrowed from the router (its compiled rules or its scratch
//! space), so handing a verdict to the core allocates nothing.

use crate::sip::{HeaderName, Transport};

use super::view::RequestView;

/// Routing, pluggable: the compiled rules ([`Engine`](super::Engine)), a Lua function
/// ([`LuaRouter`](super::LuaRouter)) or an embedder's own type. Called once per request the
/// policy applies to, on the worker's thread, before the proxy picks the next hop
/// (RFC 3261 §16.5); must not block.
pub trait Router {
    /// Decides for one request.
    fn route<'r>(&'r mut self, request: &RequestView<'_>) -> Verdict<'r>;
}

/// A router's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'r> {
    /// Route as the proxy would without a policy: Route, Request-URI, next hop.
    Pass,
    /// Forward, to a destination or as addressed, after the modifiers.
    Forward(Forward<'r>),
    /// Answer here (accept, reject, redirect, challenge; RFC 3261 §16.11 stateless replies).
    Reply(Reply<'r>),
    /// Discard silently (counted as `policy_drop`).
    Drop,
}

/// A forward and its modifiers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forward<'r> {
    /// The next hop; `None` routes as addressed (Route, then the rewritten Request-URI).
    pub to: Option<Destination<'r>>,
    pub modifiers: Modifiers<'r>,
}

/// Where a forward goes. The location service will be a further variant when it lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination<'r> {
    /// A host (an IP literal or a name from the static host table), port and transport.
    Host {
        host: &'r str,
        port: Option<u16>,
        transport: Transport,
    },
    /// A destination group by name (`to = "group:NAME"`): its live destination chosen for
    /// this request, or 503 with the group's Retry-After when none is live.
    Group(&'r str),
}

/// A locally generated answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<'r> {
    pub code: u16,
    pub reason: &'r str,
    /// Whole header lines to add, each ending in CRLF (Contact, Retry-After, ...).
    pub headers: &'r [u8],
}

/// Changes made to a forwarded request before it leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Modifiers<'r> {
    /// Replaces the whole Request-URI.
    pub request_uri: Option<&'r [u8]>,
    /// Characters removed from the front of the Request-URI user.
    pub strip: u8,
    /// Text put in front of the Request-URI user (after `strip`).
    pub prefix: &'r [u8],
    /// Replaces the Request-URI user.
    pub user: Option<&'r [u8]>,
    /// Replaces the Request-URI `host[:port]`.
    pub host: Option<&'r [u8]>,
    /// Whole header lines added, each ending in CRLF.
    pub add_headers: &'r [u8],
    /// Header lines removed (every line of each name).
    pub remove_headers: &'r [HeaderKey],
    /// Record-Route on or off for this request (the configured setting otherwise).
    pub record_route: Option<bool>,
    /// Contact rewriting on or off for this request (only on when the table is configured).
    pub rewrite_contacts: Option<bool>,
    /// Media anchoring through rtpengine on or off for this call (only with `[media]`;
    /// `anchor = "rules"` anchors only the INVITEs whose rule says `true`).
    pub media: Option<bool>,
}

impl Modifiers<'_> {
    /// Whether any change to the Request-URI is asked for.
    pub fn touches_request_uri(&self) -> bool {
        self.request_uri.is_some()
            || self.strip > 0
            || !self.prefix.is_empty()
            || self.user.is_some()
            || self.host.is_some()
    }
}

/// A header name as a rule names it: classified once, compared without allocating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderKey {
    pub known: HeaderName,
    /// The name as configured (compared case-insensitively for `Other`).
    pub name: Box<str>,
}

impl HeaderKey {
    pub fn new(name: &str) -> HeaderKey {
        HeaderKey {
            known: HeaderName::classify(name.as_bytes()),
            name: name.into(),
        }
    }

    /// Whether a header line named `name` (classified as `class`) is this one.
    pub fn matches(&self, class: HeaderName, name: &[u8]) -> bool {
        class == self.known
            && (class != HeaderName::Other || name.eq_ignore_ascii_case(self.name.as_bytes()))
    }
}
