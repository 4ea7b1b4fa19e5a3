//! The read-only view of a request that a router decides on: the scanned message, where it
//! came from, and what the proxy already knows about it (whether it names the proxy, whether
//! it follows this proxy's Record-Route). Every accessor reads offsets; nothing allocates.

use std::cell::OnceCell;
use std::net::SocketAddr;

use crate::sip::{
    HeaderName, Message, Method, NameAddr, SipUri, Span, StartLine, Transport, Values,
};

use super::verdict::HeaderKey;

/// One request as a router sees it. From and To are parsed on first use, once.
#[derive(Clone, Debug)]
pub struct RequestView<'m> {
    msg: &'m Message<'m>,
    uri: Option<SipUri>,
    from: OnceCell<(Span, Span)>,
    to: OnceCell<(Span, Span)>,
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
            from: OnceCell::new(),
            to: OnceCell::new(),
            source,
            local,
            transport,
            to_me: false,
            follows_record_route: false,
        }
    }

    /// A view of a scanned request whose Request-URI the caller already parsed (`None`: not
    /// a SIP URI), so it is not parsed twice.
    pub fn with_uri(
        msg: &'m Message<'m>,
        uri: Option<SipUri>,
        source: SocketAddr,
        local: SocketAddr,
        transport: Transport,
    ) -> RequestView<'m> {
        RequestView {
            msg,
            uri,
            from: OnceCell::new(),
            to: OnceCell::new(),
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

    /// The parsed Request-URI (`None` when it is not a SIP URI).
    pub fn uri_parsed(&self) -> Option<SipUri> {
        self.uri
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
        let cell = if which == HeaderName::To {
            &self.to
        } else {
            &self.from
        };
        let buf = self.msg.buf();
        let (user, host) = *cell.get_or_init(|| match self.msg.header(which) {
            Some(h) => {
                let (user, host) = party(buf, h.value);
                (span_of(buf, user), span_of(buf, host))
            }
            None => (Span::default(), Span::default()),
        });
        (user.of(buf), host.of(buf))
    }

    /// The value of the first header with this name.
    pub fn header(&self, key: &HeaderKey) -> Option<&'m [u8]> {
        let buf = self.msg.buf();
        if key.known != HeaderName::Other {
            return self.msg.header(key.known).map(|h| h.value.of(buf));
        }
        let name = key.name.as_bytes();
        self.msg
            .headers()
            .iter()
            .find(|h| h.name == HeaderName::Other && line_names(buf, h.line, name))
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

/// Whether the header line `line` is named `name` (ASCII case-insensitively): the name,
/// then white space or the colon. No search through the line.
fn line_names(buf: &[u8], line: Span, name: &[u8]) -> bool {
    let text = line.of(buf);
    text.len() > name.len()
        && matches!(text[name.len()], b':' | b' ' | b'\t')
        && text[..name.len()].eq_ignore_ascii_case(name)
}

/// The span of `part` inside `buf` (empty when it is not inside).
fn span_of(buf: &[u8], part: &[u8]) -> Span {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    if part.is_empty() || start > buf.len() || start + part.len() > buf.len() {
        return Span::default();
    }
    Span::new(start, start + part.len())
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
