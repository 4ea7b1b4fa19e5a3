//! The message scanner: framing is checked once, then every accessor is infallible.
//!
//! [`Message::scan`] finds the start line, every header line (name and value as offsets into
//! the input; folded continuation lines belong to their header), and the body bounded by
//! Content-Length. It follows `memchr` from line end to line end and never allocates for
//! messages with up to 32 header lines; past [`MAX_HEADERS`] it rejects the message rather
//! than grow. RFC 3261 §7 (message format), §7.5 (leading CRLFs), §18.3 (framing).
//!
//! Lines end by the one rule of [`line`](super::line) (CRLF or a bare LF, never a bare CR).
//! While scanning, the scanner notes whether the message is already canonical — CRLF line
//! ends only, no white space after the Request-Line's version, a plain Content-Length line —
//! so the proxy does extra work only for the messages that need it
//! ([`Message::is_canonical`]). Singleton headers that appear twice (Content-Length, Call-ID,
//! CSeq, From, To, Max-Forwards, Content-Type) are refused (RFC 4475 §3.3.8, §3.3.9): a
//! downstream reader might take either one.

use memchr::{memchr, memrchr};
use smallvec::SmallVec;

use super::Span;
use super::chars::{NOT_IN_URI, TOKEN, is_token, trim_lws_end};
use super::fields::parse_content_length;
use super::header::{HeaderName, find_in_word, words_at};
use super::line::{Line, LineError, line_at, line_to_lf};

/// Hard limit of header lines in one message; more is rejected (400), never grown.
pub const MAX_HEADERS: usize = 128;

/// Header slots kept inline: real traffic (INVITEs from PBXes included) stays under this.
const INLINE_HEADERS: usize = 32;

const NONE: u8 = u8::MAX;

/// A request method. Methods are case-sensitive (RFC 3261 §7.1): `invite` is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Subscribe,
    Notify,
    Refer,
    Info,
    Update,
    Prack,
    Message,
    Publish,
    Other,
}

impl Method {
    /// The method named `name` (case-sensitive, RFC 3261 §7.1), e.g. a CSeq's.
    pub fn of(name: &[u8]) -> Method {
        Method::parse(name)
    }

    fn parse(name: &[u8]) -> Method {
        match name {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"INFO" => Method::Info,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            _ => Method::Other,
        }
    }
}

/// The first line: a Request-Line or a Status-Line (RFC 3261 §7.1, §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: Method,
        /// The method token as written (extension methods need it).
        method_name: Span,
        /// The Request-URI.
        uri: Span,
    },
    Response {
        code: u16,
        reason: Span,
    },
}

/// One header line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    /// From the first byte of the name to just after the line terminator (of the last
    /// continuation line when folded): removing this span removes the header.
    pub line: Span,
    /// The value with surrounding white space trimmed. Folded values keep their inner CRLFs,
    /// which the field parsers treat as white space.
    pub value: Span,
}

/// Why a message's framing was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanError {
    /// Nothing but CR / LF bytes: a keep-alive, not a message.
    Empty,
    /// The first line is neither a Request-Line nor a Status-Line.
    BadStartLine,
    /// A header line without a colon, or with a name that is not a token.
    BadHeaderLine,
    /// The headers do not end with an empty line.
    UnterminatedHeaders,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// Content-Length is not a number.
    BadContentLength,
    /// Content-Length is larger than the bytes that follow the headers (RFC 3261 §18.3).
    BodyTruncated,
    /// A message on a stream transport without Content-Length (RFC 3261 §18.3).
    MissingContentLength,
    /// A CR that does not end a line ([`line`](super::line)): readers disagree on it.
    BareCr,
    /// A header that may appear once appears twice (RFC 3261 §7.3.1, RFC 4475 §3.3.8, §3.3.9).
    Duplicate(HeaderName),
    /// A Request-Line whose SIP-Version is not 2.0 (RFC 3261 §8.2.2 answers 505).
    UnsupportedVersion,
}

impl ScanError {
    /// The reason phrase of the 400 this error earns when the request can be answered.
    pub fn reason_phrase(self) -> &'static str {
        match self {
            ScanError::Empty => "Empty Message",
            ScanError::BadStartLine => "Bad Request Line",
            ScanError::BadHeaderLine => "Bad Header Line",
            ScanError::UnterminatedHeaders => "Unterminated Headers",
            ScanError::TooManyHeaders => "Too Many Headers",
            ScanError::BadContentLength => "Bad Content-Length",
            ScanError::BodyTruncated => "Content-Length Larger Than Body",
            ScanError::MissingContentLength => "Missing Content-Length",
            ScanError::BareCr => "Bare CR",
            ScanError::Duplicate(name) => name.duplicate_phrase(),
            ScanError::UnsupportedVersion => "Version Not Supported",
        }
    }

    /// The status code of the reply this error earns: 505 for a version (RFC 3261 §8.2.2,
    /// §21.5.20), else 400.
    pub fn status_code(self) -> u16 {
        match self {
            ScanError::UnsupportedVersion => 505,
            _ => 400,
        }
    }

    fn from_line(error: LineError, incomplete: ScanError) -> ScanError {
        match error {
            LineError::Incomplete => incomplete,
            LineError::BareCr => ScanError::BareCr,
        }
    }
}

/// A rejected message, with what was scanned before the error when the start line was
/// sound: enough to answer a request with 400 when its Via is usable.
#[derive(Debug)]
pub struct ScanFailure<'a> {
    pub error: ScanError,
    pub partial: Option<Message<'a>>,
}

/// A scanned SIP message: offsets into the received bytes.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
    start: StartLine,
    start_line: Span,
    headers_start: u32,
    headers_end: u32,
    body: Span,
    headers: SmallVec<[Header; INLINE_HEADERS]>,
    first: [u8; HeaderName::COUNT],
    /// CRLF line ends, no white space after the Request-Line's version, a plain
    /// Content-Length line: what the proxy may copy as it is.
    canonical: bool,
    /// The first singleton header seen twice.
    duplicate: Option<HeaderName>,
}

impl<'a> Message<'a> {
    /// Scans one message. `stream` is true for TCP / TLS / WebSocket framed input, where a
    /// Content-Length is mandatory; on a datagram a missing Content-Length means the body
    /// runs to the end of the datagram (RFC 3261 §18.3).
    // The partial message rides inline in the error on purpose: boxing it would allocate on
    // the malformed path, which is the one a hostile peer chooses.
    #[allow(clippy::result_large_err)]
    pub fn scan(buf: &'a [u8], stream: bool) -> Result<Message<'a>, ScanFailure<'a>> {
        let fail = |error| ScanFailure {
            error,
            partial: None,
        };
        // RFC 3261 §7.5: CRLFs before the start line are ignored.
        let begin = buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(fail(ScanError::Empty))?;
        // A start line with a bare CR is still read (to its LF) so that it can be answered.
        let (line, bare_cr) = match line_at(buf, begin) {
            Ok(line) => (line, None),
            Err(LineError::BareCr) => (
                line_to_lf(buf, begin).ok_or(fail(ScanError::BadStartLine))?,
                Some(ScanError::BareCr),
            ),
            Err(LineError::Incomplete) => return Err(fail(ScanError::BadStartLine)),
        };
        let (start, start_error) = match parse_start_line(buf, begin, line.end) {
            Parsed::Valid(start) => (start, bare_cr),
            Parsed::Invalid(start, error) => (start, bare_cr.or(Some(error))),
            Parsed::NotSip => return Err(fail(ScanError::BadStartLine)),
        };
        let mut msg = Message {
            buf,
            start,
            start_line: Span::new(begin, line.end),
            headers_start: line.next as u32,
            headers_end: line.next as u32,
            body: Span::new(buf.len(), buf.len()),
            headers: SmallVec::new(),
            first: [NONE; HeaderName::COUNT],
            canonical: !line.bare_lf && !request_line_has_trailing_lws(buf, start, line.end),
            duplicate: None,
        };
        let framed = msg
            .scan_headers(line.next)
            .and_then(|body_start| msg.frame_body(body_start, stream));
        // A broken start line or a duplicate is reported once every header is read, so that
        // the partial message has its Via wherever it is.
        let error = start_error
            .or(msg.duplicate.map(ScanError::Duplicate))
            .or(framed.err());
        match error {
            None => Ok(msg),
            Some(error) => Err(ScanFailure {
                error,
                partial: Some(msg),
            }),
        }
    }

    /// Records header lines from `pos` up to the empty line; returns where the body starts.
    fn scan_headers(&mut self, mut pos: usize) -> Result<usize, ScanError> {
        let buf = self.buf;
        loop {
            match buf.get(pos..pos + 2) {
                Some(b"\r\n") => return Ok(self.end_headers(pos, pos + 2)),
                _ if buf.get(pos) == Some(&b'\n') => {
                    self.canonical = false;
                    return Ok(self.end_headers(pos, pos + 1));
                }
                _ => {}
            }
            if pos >= buf.len() {
                return Err(ScanError::UnterminatedHeaders);
            }
            if self.headers.len() == MAX_HEADERS {
                return Err(ScanError::TooManyHeaders);
            }
            let (header, shape) = scan_header_line(buf, pos)?;
            pos = header.line.end();
            self.note(header.name, shape);
            self.push(header);
        }
    }

    /// Records what makes the output of this header non-canonical.
    fn note(&mut self, name: HeaderName, shape: LineShape) {
        if shape.bare_lf || (name == HeaderName::ContentLength && !shape.plain) {
            self.canonical = false;
        }
    }

    fn end_headers(&mut self, blank: usize, body_start: usize) -> usize {
        self.headers_end = blank as u32;
        body_start
    }

    fn push(&mut self, header: Header) {
        let slot = &mut self.first[header.name as usize];
        if *slot == NONE {
            // MAX_HEADERS < u8::MAX, checked by the caller before pushing.
            *slot = self.headers.len() as u8;
        } else if header.name.is_singleton() && self.duplicate.is_none() {
            self.duplicate = Some(header.name);
        }
        self.headers.push(header);
    }

    /// Bounds the body by Content-Length (RFC 3261 §18.3).
    fn frame_body(&mut self, body_start: usize, stream: bool) -> Result<(), ScanError> {
        let available = self.buf.len() - body_start;
        let length = match self.header(HeaderName::ContentLength) {
            Some(h) => {
                let n = parse_content_length(h.value.of(self.buf))
                    .map_err(|_| ScanError::BadContentLength)?;
                let n = n as usize;
                if n > available {
                    return Err(ScanError::BodyTruncated);
                }
                n
            }
            None if stream => return Err(ScanError::MissingContentLength),
            None => available,
        };
        self.body = Span::new(body_start, body_start + length);
        Ok(())
    }

    /// The bytes this message was scanned from.
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    pub fn start(&self) -> StartLine {
        self.start
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The method of a request; `None` for a response.
    pub fn method(&self) -> Option<Method> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The start line without its terminator (leading CRLFs excluded).
    pub fn start_line(&self) -> Span {
        self.start_line
    }

    /// Offset of the first header line (just after the start line's terminator).
    pub fn headers_start(&self) -> usize {
        self.headers_start as usize
    }

    /// Offset of the empty line that ends the headers.
    pub fn headers_end(&self) -> usize {
        self.headers_end as usize
    }

    /// The body, bounded by Content-Length when present.
    pub fn body(&self) -> Span {
        self.body
    }

    /// Every header line, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The first header with this name.
    pub fn header(&self, name: HeaderName) -> Option<&Header> {
        self.headers.get(self.first[name as usize] as usize)
    }

    /// Every header with this name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &Header> + '_ {
        let from = match self.first[name as usize] {
            NONE => self.headers.len(),
            i => i as usize,
        };
        self.headers[from..].iter().filter(move |h| h.name == name)
    }

    /// The bytes of a span of this message.
    pub fn bytes(&self, span: Span) -> &'a [u8] {
        span.of(self.buf)
    }

    /// Whether the start line and header block can be copied as they are: CRLF line ends
    /// only, no white space after a Request-Line's version, a Content-Length (if any) on a
    /// plain unfolded line. When false, the proxy rewrites them (`proxy::canonical`).
    pub fn is_canonical(&self) -> bool {
        self.canonical
    }
}

/// A stream message's head read by the scanner's rules ([`super::framing`]): where the body
/// starts and the Content-Length, if there is one. The start line is not judged here (the core
/// does that once the message is whole); a second Content-Length is an error, never a guess.
pub(crate) fn stream_head(buf: &[u8]) -> Result<(usize, Option<u32>), ScanError> {
    let mut pos = header_line_end(buf, 0)?.next;
    let mut length = None;
    loop {
        let line = header_line_end(buf, pos)?;
        if line.is_empty_at(pos) {
            return Ok((line.next, length));
        }
        let (header, _) = scan_header_line(buf, pos)?;
        if header.name == HeaderName::ContentLength {
            if length.is_some() {
                return Err(ScanError::Duplicate(HeaderName::ContentLength));
            }
            let value = parse_content_length(header.value.of(buf))
                .map_err(|_| ScanError::BadContentLength)?;
            length = Some(value);
        }
        pos = header.line.end();
    }
}

/// What a header line looked like, for the canonical-output check.
#[derive(Clone, Copy, Debug)]
struct LineShape {
    /// One of its lines ended with a bare LF.
    bare_lf: bool,
    /// One line, no white space before the colon.
    plain: bool,
}

#[inline(always)]
fn header_line_end(buf: &[u8], pos: usize) -> Result<Line, ScanError> {
    line_at(buf, pos).map_err(|e| ScanError::from_line(e, ScanError::UnterminatedHeaders))
}

/// One header line at `pos`, with its continuation lines (RFC 3261 §7.3.1).
///
/// The line end comes from `memchr`; the colon is looked for in the first sixteen bytes a
/// word at a time (every name the proxy knows is shorter), and those same two words classify
/// the name. Only names the proxy does not know are checked byte by byte for `token`.
// Inlined into the scanner's loop: the hot path of every message (the framer calls it too).
#[inline(always)]
fn scan_header_line(buf: &[u8], pos: usize) -> Result<(Header, LineShape), ScanError> {
    let first = header_line_end(buf, pos)?;
    let first_end = first.end;
    let mut next = first.next;
    let (w0, w1) = words_at(buf, pos);
    let colon = match find_in_word(w0, b':').or_else(|| find_in_word(w1, b':').map(|i| i + 8)) {
        Some(i) if pos + i < first_end => pos + i,
        Some(_) => return Err(ScanError::BadHeaderLine),
        None => pos + memchr(b':', &buf[pos..first_end]).ok_or(ScanError::BadHeaderLine)?,
    };
    let mut name_end = colon;
    while name_end > pos && matches!(buf[name_end - 1], b' ' | b'\t') {
        name_end -= 1;
    }
    let name = HeaderName::classify_words(w0, w1, name_end - pos);
    if name == HeaderName::Other && !is_token(&buf[pos..name_end]) {
        return Err(ScanError::BadHeaderLine);
    }
    let mut value_start = colon + 1;
    while value_start < first_end && matches!(buf[value_start], b' ' | b'\t') {
        value_start += 1;
    }
    let mut content_end = first_end;
    let mut shape = LineShape {
        bare_lf: first.bare_lf,
        plain: name_end == colon,
    };
    // RFC 3261 §7.3.1: a line starting with white space continues the header above.
    while matches!(buf.get(next), Some(b' ' | b'\t')) {
        let line = header_line_end(buf, next)?;
        content_end = line.end;
        next = line.next;
        shape.bare_lf |= line.bare_lf;
        shape.plain = false;
    }
    // A value may start on a continuation line ("Subject:\r\n text").
    while value_start < content_end && super::chars::is_lws(buf[value_start]) {
        value_start += 1;
    }
    let value_end = trim_lws_end(buf, value_start, content_end);
    let header = Header {
        name,
        line: Span::new(pos, next),
        value: Span::new(value_start, value_end),
    };
    Ok((header, shape))
}

/// What the start line turned out to be.
enum Parsed {
    Valid(StartLine),
    /// A Request-Line with a method and a `SIP/` version but broken otherwise: scanned on so
    /// that the request can be answered (400, or 505 for the version).
    Invalid(StartLine, ScanError),
    /// Not a SIP start line at all.
    NotSip,
}

/// Whether a Request-Line has white space after its version (RFC 4475 §3.1.2.10): accepted,
/// and removed from what is forwarded.
fn request_line_has_trailing_lws(buf: &[u8], start: StartLine, end: usize) -> bool {
    matches!(start, StartLine::Request { .. }) && matches!(buf[..end].last(), Some(b' ' | b'\t'))
}

/// Parses `buf[begin..end]` as a Request-Line or Status-Line.
fn parse_start_line(buf: &[u8], begin: usize, end: usize) -> Parsed {
    let line = &buf[begin..end];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return parse_status_line(buf, begin, end).map_or(Parsed::NotSip, Parsed::Valid);
    }
    parse_request_line(buf, begin, end)
}

/// Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §7.1). White space after the
/// version is tolerated (RFC 4475 §3.1.2.10) and removed when forwarding.
fn parse_request_line(buf: &[u8], begin: usize, end: usize) -> Parsed {
    let line = &buf[begin..end];
    let Some(sp1) = memchr(b' ', line) else {
        return Parsed::NotSip;
    };
    let method_name = &line[..sp1];
    if method_name.is_empty() || !method_name.iter().all(|&b| TOKEN[b as usize]) {
        return Parsed::NotSip;
    }
    // The usual ending, ` SIP/2.0`, in one comparison; anything else the long way.
    const VERSION: &[u8] = b" SIP/2.0";
    let usual = line.len() >= sp1 + VERSION.len()
        && line[line.len() - VERSION.len()..].eq_ignore_ascii_case(VERSION);
    let (last_sp, version) = if usual {
        (line.len() - VERSION.len(), &VERSION[1..])
    } else {
        let trimmed = &line[..trim_lws_end(line, 0, line.len())];
        let last_sp = memrchr(b' ', trimmed).unwrap_or(sp1);
        // Past the end when the only SP was trailing white space: no version at all.
        (last_sp, trimmed.get(last_sp + 1..).unwrap_or_default())
    };
    if version.len() < 4 || !version[..4].eq_ignore_ascii_case(b"SIP/") {
        return Parsed::NotSip;
    }
    let uri_end = last_sp.max(sp1 + 1);
    let start = StartLine::Request {
        method: Method::parse(method_name),
        method_name: Span::new(begin, begin + sp1),
        uri: Span::new(begin + sp1 + 1, begin + uri_end),
    };
    let uri = &line[sp1 + 1..uri_end];
    if uri.is_empty() || uri.iter().any(|&b| NOT_IN_URI[b as usize]) {
        return Parsed::Invalid(start, ScanError::BadStartLine);
    }
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        return Parsed::Invalid(start, ScanError::UnsupportedVersion);
    }
    Parsed::Valid(start)
}

/// Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2).
fn parse_status_line(buf: &[u8], begin: usize, end: usize) -> Option<StartLine> {
    let line = &buf[begin..end];
    let sp = memchr(b' ', line)?;
    if !is_sip_version(&line[..sp]) {
        return None;
    }
    let code = line.get(sp + 1..sp + 4)?;
    let code = super::chars::parse_u32(code).filter(|c| (100..=699).contains(c))?;
    let rest = &line[sp + 4..];
    let reason_start = match rest.first() {
        None => end,
        Some(b' ') => begin + sp + 5,
        Some(_) => return None,
    };
    Some(StartLine::Response {
        code: code as u16,
        reason: Span::new(reason_start, end),
    })
}

/// `SIP/2.0`, case-insensitively (RFC 3261 §7.1).
fn is_sip_version(text: &[u8]) -> bool {
    text.eq_ignore_ascii_case(b"SIP/2.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(bytes: &[u8]) -> Message<'_> {
        Message::scan(bytes, false).expect("scans")
    }

    fn scan_err(bytes: &[u8], stream: bool) -> ScanError {
        Message::scan(bytes, stream).expect_err("rejected").error
    }

    fn value<'a>(m: &Message<'a>, name: HeaderName) -> &'a [u8] {
        m.bytes(m.header(name).expect("header present").value)
    }

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn request_line_headers_and_body() {
        let m = scan(INVITE);
        match m.start() {
            StartLine::Request {
                method,
                method_name,
                uri,
            } => {
                assert_eq!(method, Method::Invite);
                assert_eq!(m.bytes(method_name), b"INVITE");
                assert_eq!(m.bytes(uri), b"sip:bob@biloxi.example.com");
            }
            other => panic!("not a request: {other:?}"),
        }
        assert_eq!(m.headers().len(), 9);
        assert_eq!(value(&m, HeaderName::CSeq), b"314159 INVITE");
        assert_eq!(value(&m, HeaderName::MaxForwards), b"70");
        assert_eq!(m.bytes(m.body()), b"v=0\n");
        assert_eq!(&INVITE[m.headers_end()..m.body().start()], b"\r\n");
        let via = m.header(HeaderName::Via).unwrap();
        assert_eq!(m.bytes(via.line).first(), Some(&b'V'));
        assert!(m.bytes(via.line).ends_with(b"\r\n"));
    }

    #[test]
    fn status_line() {
        let m = scan(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n");
        assert_eq!(m.method(), None);
        match m.start() {
            StartLine::Response { code, reason } => {
                assert_eq!(code, 180);
                assert_eq!(m.bytes(reason), b"Ringing");
            }
            other => panic!("not a response: {other:?}"),
        }
        // An empty reason phrase, with or without the SP.
        assert!(Message::scan(b"SIP/2.0 200 \r\n\r\n", false).is_ok());
        assert!(Message::scan(b"SIP/2.0 200\r\n\r\n", false).is_ok());
        for bad in [
            &b"SIP/2.0 99 Low\r\n\r\n"[..],
            b"SIP/2.0 700 High\r\n\r\n",
            b"SIP/2.0 2000 Long\r\n\r\n",
            b"SIP/3.0 200 OK\r\n\r\n",
            b"SIP/2.0 2x0 OK\r\n\r\n",
        ] {
            assert_eq!(scan_err(bad, false), ScanError::BadStartLine, "{bad:?}");
        }
    }

    #[test]
    fn bad_request_lines() {
        for bad in [
            &b"INVITE sip:a@b\r\n\r\n"[..],
            b"INVITE  sip:a@b SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b HTTP/1.1\r\n\r\n",
            b"IN:VITE sip:a@b SIP/2.0\r\n\r\n",
            b" sip:a@b SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0",
        ] {
            assert_eq!(scan_err(bad, false), ScanError::BadStartLine, "{bad:?}");
        }
    }

    #[test]
    fn methods_are_case_sensitive() {
        // RFC 3261 §7.1: the method name is case-sensitive.
        let m = scan(b"invite sip:a@b SIP/2.0\r\n\r\n");
        assert_eq!(m.method(), Some(Method::Other));
        let m = scan(b"FOO sip:a@b sip/2.0\r\n\r\n");
        assert_eq!(m.method(), Some(Method::Other));
    }

    #[test]
    fn leading_crlfs_are_skipped() {
        // RFC 3261 §7.5
        let m = scan(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n");
        assert_eq!(m.method(), Some(Method::Options));
        assert_eq!(m.start_line().start(), 4);
    }

    #[test]
    fn only_crlfs_is_a_keepalive() {
        assert_eq!(scan_err(b"\r\n\r\n", false), ScanError::Empty);
        assert_eq!(scan_err(b"", false), ScanError::Empty);
    }

    #[test]
    fn compact_and_case_insensitive_names() {
        let m = scan(
            b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\nI: abc\r\n\
CSEQ: 2 BYE\r\nf: <sip:x@y>;tag=1\r\nT: <sip:a@b>\r\nl: 0\r\n\r\n",
        );
        assert_eq!(value(&m, HeaderName::Via), b"SIP/2.0/UDP h;branch=z9hG4bKx");
        assert_eq!(value(&m, HeaderName::CallId), b"abc");
        assert_eq!(value(&m, HeaderName::CSeq), b"2 BYE");
        assert_eq!(value(&m, HeaderName::From), b"<sip:x@y>;tag=1");
        assert_eq!(value(&m, HeaderName::To), b"<sip:a@b>");
        assert_eq!(value(&m, HeaderName::ContentLength), b"0");
    }

    #[test]
    fn folded_lines_belong_to_their_header() {
        // RFC 3261 §7.3.1: a line starting with white space continues the previous header.
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: I know you're there,\r\n \
pick up the phone\r\n\tand talk to me!\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        let m = scan(raw);
        assert_eq!(m.headers().len(), 2);
        let subject = m.header(HeaderName::Subject).unwrap();
        assert_eq!(
            m.bytes(subject.value),
            &b"I know you're there,\r\n pick up the phone\r\n\tand talk to me!"[..]
        );
        assert!(m.bytes(subject.line).ends_with(b"me!\r\n"));
        assert_eq!(value(&m, HeaderName::Via), b"SIP/2.0/UDP h");
    }

    #[test]
    fn value_starting_on_a_continuation_line() {
        let m = scan(b"OPTIONS sip:a@b SIP/2.0\r\nVia:\r\n SIP/2.0/UDP h\r\nTo: x\r\n\r\n");
        assert_eq!(value(&m, HeaderName::Via), b"SIP/2.0/UDP h");
        let m = scan(b"OPTIONS sip:a@b SIP/2.0\r\nSubject:\r\nTo: x\r\n\r\n");
        assert_eq!(value(&m, HeaderName::Subject), b"");
        assert_eq!(value(&m, HeaderName::To), b"x");
    }

    #[test]
    fn bare_lf_line_ends() {
        let m = scan(b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h\nTo: x\n\nbody");
        assert_eq!(value(&m, HeaderName::Via), b"SIP/2.0/UDP h");
        assert_eq!(m.bytes(m.body()), b"body");
        let m = scan(b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\n\r\n");
        assert_eq!(value(&m, HeaderName::To), b"x");
    }

    /// Issue 11's smuggle: the header block ends at the bare LF of `\r\n\n`; what follows,
    /// a Content-Length line included, is body.
    #[test]
    fn the_bare_lf_smuggle_ends_the_headers_at_the_bare_lf() {
        let body = "x".repeat(114);
        let raw = format!(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
Content-Type: application/sdp\r\n\nContent-Length: 114\r\n\r\n{body}"
        );
        let m = scan(raw.as_bytes());
        assert!(m.header(HeaderName::ContentLength).is_none());
        assert_eq!(m.headers().len(), 2);
        assert_eq!(m.body().len(), 137);
        assert!(!m.is_canonical());
        // The same over a stream: no Content-Length in the header block.
        assert_eq!(
            scan_err(raw.as_bytes(), true),
            ScanError::MissingContentLength
        );
    }

    #[test]
    fn a_bare_lf_before_the_empty_line() {
        // `\n\r\n`: the line ends at the LF, the CRLF after it is the empty line.
        let raw = b"INVITE sip:b@h SIP/2.0\r\nTo: x\n\r\nContent-Length: 2\r\n\r\nhi";
        let m = scan(raw);
        assert_eq!(m.headers().len(), 1);
        assert_eq!(m.bytes(m.body()), b"Content-Length: 2\r\n\r\nhi");
        assert!(!m.is_canonical());
    }

    #[test]
    fn a_bare_cr_is_refused_wherever_it_is() {
        // Issue 11: `SIP/2.0\r \n` — a reader that ends lines at CR sees another message.
        for raw in [
            &b"INVITE sip:b@h SIP/2.0\r \nVia: SIP/2.0/UDP h\r\n\r\n"[..],
            b"INVITE sip:b@h SIP/2.0\r\nSubject: a\rb\r\n\r\n",
            b"INVITE sip:b@h SIP/2.0\r\nSubject: a\r\n b\rc\r\n\r\n",
            b"INVITE sip:b@h SIP/2.0\r\nTo: x\r\n\r\r\n",
        ] {
            assert_eq!(scan_err(raw, false), ScanError::BareCr, "{raw:?}");
        }
        // In the body a CR is just a byte.
        assert!(Message::scan(b"MESSAGE sip:a@b SIP/2.0\r\nl: 3\r\n\r\na\rb", false).is_ok());
    }

    #[test]
    fn canonical_means_crlf_no_trailing_space_and_a_plain_content_length() {
        assert!(scan(INVITE).is_canonical());
        for raw in [
            &b"OPTIONS sip:a@b SIP/2.0 \r\nl: 0\r\n\r\n"[..],
            b"OPTIONS sip:a@b SIP/2.0\nl: 0\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length : 0\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length:\r\n 0\r\n\r\n",
        ] {
            assert!(!scan(raw).is_canonical(), "{raw:?}");
        }
        // Folding elsewhere and white space around other colons are fine as they are.
        assert!(
            scan(b"OPTIONS sip:a@b SIP/2.0\r\nSubject : a\r\n b\r\nl: 0\r\n\r\n").is_canonical()
        );
    }

    #[test]
    fn duplicated_singletons_are_refused_after_the_whole_head_is_read() {
        // RFC 4475 §3.3.8, §3.3.9: the error comes with every header, the Via included.
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nl: 13\r\nContent-Length: 5\r\n\
Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\nhello";
        let failure = Message::scan(raw, false).unwrap_err();
        assert_eq!(
            failure.error,
            ScanError::Duplicate(HeaderName::ContentLength)
        );
        assert!(failure.partial.unwrap().header(HeaderName::Via).is_some());
        for name in [
            "Call-ID",
            "CSeq",
            "From",
            "To",
            "Max-Forwards",
            "Content-Type",
        ] {
            let raw = format!("OPTIONS sip:a@b SIP/2.0\r\n{name}: 1\r\n{name}: 1\r\n\r\n");
            assert!(
                matches!(scan_err(raw.as_bytes(), false), ScanError::Duplicate(_)),
                "{name}"
            );
        }
        // Lists may repeat.
        assert!(
            Message::scan(
                b"OPTIONS sip:a@b SIP/2.0\r\nVia: a\r\nv: b\r\nRoute: c\r\nRoute: d\r\n\r\n",
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn a_broken_request_line_still_reads_the_headers() {
        for (raw, error) in [
            (
                &b"INVITE  sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"[..],
                ScanError::BadStartLine,
            ),
            (
                b"INVITE sip:a@b; lr SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
                ScanError::BadStartLine,
            ),
            (
                b"INVITE <sip:a@b> SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
                ScanError::BadStartLine,
            ),
            (
                b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
                ScanError::UnsupportedVersion,
            ),
        ] {
            let failure = Message::scan(raw, false).unwrap_err();
            assert_eq!(failure.error, error, "{raw:?}");
            let partial = failure.partial.expect("headers read");
            assert!(partial.header(HeaderName::Via).is_some());
        }
        assert_eq!(ScanError::UnsupportedVersion.status_code(), 505);
    }

    #[test]
    fn white_space_around_the_colon() {
        let m = scan(b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards  :   7  \r\n\r\n");
        assert_eq!(value(&m, HeaderName::MaxForwards), b"7");
    }

    #[test]
    fn bad_header_lines() {
        assert_eq!(
            scan_err(b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n", false),
            ScanError::BadHeaderLine
        );
        assert_eq!(
            scan_err(b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", false),
            ScanError::BadHeaderLine
        );
        assert_eq!(
            scan_err(b"OPTIONS sip:a@b SIP/2.0\r\n: x\r\n\r\n", false),
            ScanError::BadHeaderLine
        );
        assert_eq!(
            scan_err(
                b"OPTIONS sip:a@b SIP/2.0\r\n continuation first\r\n\r\n",
                false
            ),
            ScanError::BadHeaderLine
        );
    }

    #[test]
    fn unterminated_headers() {
        for bad in [
            &b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n"[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nTo: x",
            b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n folded",
        ] {
            assert_eq!(
                scan_err(bad, false),
                ScanError::UnterminatedHeaders,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn content_length_bounds_the_body() {
        // RFC 3261 §18.3: bytes past Content-Length in a datagram are discarded.
        let m = scan(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhi there");
        assert_eq!(m.bytes(m.body()), b"hi");
        // Missing on a datagram: the body runs to the end.
        let m = scan(b"MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\n\r\nhi there");
        assert_eq!(m.bytes(m.body()), b"hi there");
    }

    #[test]
    fn content_length_errors() {
        let too_big = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 20\r\n\r\nhi";
        assert_eq!(scan_err(too_big, false), ScanError::BodyTruncated);
        let bad = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: two\r\n\r\nhi";
        assert_eq!(scan_err(bad, false), ScanError::BadContentLength);
        let missing = b"MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\n\r\n";
        assert_eq!(scan_err(missing, true), ScanError::MissingContentLength);
        assert!(Message::scan(missing, false).is_ok());
    }

    #[test]
    fn failures_keep_what_was_scanned() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
Content-Length: 99\r\n\r\nshort";
        let failure = Message::scan(raw, false).unwrap_err();
        assert_eq!(failure.error, ScanError::BodyTruncated);
        let partial = failure.partial.expect("partial message");
        assert!(partial.header(HeaderName::Via).is_some());
        assert!(
            Message::scan(b"garbage\r\n\r\n", false)
                .unwrap_err()
                .partial
                .is_none()
        );
    }

    #[test]
    fn header_limit_rejects_instead_of_growing() {
        let mut raw = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            raw.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let m = Message::scan(&raw, false).expect("exactly the limit scans");
        assert_eq!(m.headers().len(), MAX_HEADERS);
        let end = raw.len() - 2;
        raw.splice(end..end, b"X-One-More: v\r\n".iter().copied());
        assert_eq!(scan_err(&raw, false), ScanError::TooManyHeaders);
    }

    #[test]
    fn headers_named_in_order() {
        let m = scan(
            b"OPTIONS sip:a@b SIP/2.0\r\nRoute: <sip:1>\r\nTo: x\r\nroute: <sip:2>, <sip:3>\r\n\r\n",
        );
        let routes: Vec<&[u8]> = m
            .headers_named(HeaderName::Route)
            .map(|h| m.bytes(h.value))
            .collect();
        assert_eq!(routes, vec![&b"<sip:1>"[..], b"<sip:2>, <sip:3>"]);
        assert_eq!(m.headers_named(HeaderName::Contact).count(), 0);
    }
}
