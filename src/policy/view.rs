//! The read-only view of a request that a router decides on: the scanned message, where it
//! came from, and what the proxy already knows about it (whether it names the proxy, whether
//! it follows this proxy's Record-Route). Every accessor reads offsets; nothing allocates.

use std::net::SocketAddr;

use crate::sip::{
    HeaderName, Message, Method, NameAddr, SipUri, Span, StartLine, Transport, Values,
};

use super::verdict::HeaderKey;

/// One request as a router sees it.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'m> {
    msg: &'m Message<'m>,
    uri: Option<SipUri>,
    /// Who sent it.
    pub source: SocketAddr,
    /// The listener it arrived on.
    pub local: SocketAddr,
    pub transport: Transport,
    /// The Request-URI names this proxy (one of its addresses or aliases).
    pub to_me: bool,
    /// It carried a Route naming this proxy (it follows our Record-Route, RFC 3261 §16.4).
    pub follows_record_route: bool,
}

impl<'m> RequestView<'m> {
    /// A view of a scanned request.
    pub fn new(
        msg: &'m Message<'m>,
        source: SocketAddr,
        local: SocketAddr,
        transport: Transport,
    ) -> RequestView<'m> {
        let uri = match msg.start() {
            StartLine::Request { uri, .. } => SipUri::parse(msg.buf(), uri).ok(),
            StartLine::Response { .. } => None,
        };
        RequestView {
            msg,
            uri,
            source,
            local,
            transport,
            to_me: false,
            follows_record_route: false,
        }
    }

    /// The same view with what the proxy found out about its routing.
    pub fn with_routing(mut self, to_me: bool, follows_record_route: bool) -> RequestView<'m> {
        self.to_me = to_me;
        self.follows_record_route = follows_record_route;
        self
    }

    /// The scanned message.
    pub fn message(&self) -> &'m Message<'m> {
        self.msg
    }

    pub fn method(&self) -> Method {
        self.msg.method().unwrap_or(Method::Other)
    }

    /// The method token as written (extension methods included).
    pub fn method_name(&self) -> &'m [u8] {
        match self.msg.start() {
            StartLine::Request { method_name, .. } => self.msg.bytes(method_name),
            StartLine::Response { .. } => b"",
        }
    }

    /// The Request-URI as written.
    pub fn uri(&self) -> &'m [u8] {
        match self.msg.start() {
            StartLine::Request { uri, .. } => self.msg.bytes(uri),
            StartLine::Response { .. } => b"",
        }
    }

    /// The Request-URI's user part (empty when it has none or is not a SIP URI).
    pub fn uri_user(&self) -> &'m [u8] {
        self.uri
            .and_then(|u| u.user)
            .map_or(&b""[..], |s| self.msg.bytes(s))
    }

    /// The Request-URI's host (an IPv6 reference with its brackets).
    pub fn uri_host(&self) -> &'m [u8] {
        self.uri.map_or(&b""[..], |u| self.msg.bytes(u.host.span))
    }

    pub fn uri_port(&self) -> Option<u16> {
        self.uri.and_then(|u| u.port)
    }

    /// The user and host of the From (`HeaderName::From`) or To URI.
    pub fn party(&self, which: HeaderName) -> (&'m [u8], &'m [u8]) {
        match self.msg.header(which) {
            Some(h) => party(self.msg.buf(), h.value),
            None => (b"", b""),
        }
    }

    /// The value of the first header with this name.
    pub fn header(&self, key: &HeaderKey) -> Option<&'m [u8]> {
        let buf = self.msg.buf();
        self.msg
            .headers()
            .iter()
            .find(|h| key.matches(h.name, header_name(buf, h.line.start(), h.line.end())))
            .map(|h| h.value.of(buf))
    }

    /// The value of the first header named `name` (any case, full or compact form).
    pub fn header_named(&self, name: &[u8]) -> Option<&'m [u8]> {
        let class = HeaderName::classify(name);
        let buf = self.msg.buf();
        self.msg
            .headers()
            .iter()
            .find(|h| {
                h.name == class
                    && (class != HeaderName::Other
                        || header_name(buf, h.line.start(), h.line.end())
                            .eq_ignore_ascii_case(name))
            })
            .map(|h| h.value.of(buf))
    }

    /// In a dialog: the To header has a tag (RFC 3261 §12).
    pub fn in_dialog(&self) -> bool {
        let buf = self.msg.buf();
        self.msg
            .header(HeaderName::To)
            .and_then(|h| Values::new(buf, h.value).next())
            .and_then(|v| NameAddr::parse(buf, v))
            .is_some_and(|na| na.param(buf, b"tag").is_some())
    }

    /// The size of the message in bytes, as received.
    pub fn size(&self) -> usize {
        self.msg.buf().len()
    }
}

/// The name of the header line at `buf[start..end]`: up to the colon, without white space.
pub(crate) fn header_name(buf: &[u8], start: usize, end: usize) -> &[u8] {
    let line = buf.get(start..end).unwrap_or_default();
    let colon = memchr::memchr(b':', line).unwrap_or(line.len());
    let mut name = &line[..colon];
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    name
}

/// The user and host of the first name-addr in a From / To value (empty when not SIP).
pub(crate) fn party(buf: &[u8], value: Span) -> (&[u8], &[u8]) {
    let uri = Values::new(buf, value)
        .next()
        .and_then(|v| NameAddr::parse(buf, v))
        .and_then(|na| SipUri::parse(buf, na.uri).ok());
    match uri {
        Some(u) => (u.user.map_or(&b""[..], |s| s.of(buf)), u.host.span.of(buf)),
        None => (b"", b""),
    }
}
