//! Just enough SIP framing for a load tool: the start line and the header fields of one UDP
//! datagram, as borrowed slices. Checked once by [`Message::parse`]; iterating afterwards cannot
//! fail. Lines end in CRLF (a bare LF is tolerated); a line that starts with a space or a tab
//! continues the header field above it (RFC 3261 §7.3.1).

/// Why a datagram is not a SIP message this tool can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// No line break at all, or an empty first line.
    NoStartLine,
    /// The first line is neither `METHOD URI SIP/2.0` nor `SIP/2.0 CODE REASON`.
    BadStartLine,
    /// The header section never ends with an empty line.
    NoEndOfHeaders,
    /// A header line with no colon, or one that continues nothing.
    BadHeaderLine,
    /// A header a 200 OK must copy is missing (RFC 3261 §8.1.1).
    Missing(&'static str),
    /// The reply would not fit in the output buffer.
    ReplyTooLarge,
}

/// The first line of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: &'a [u8] },
    Response { code: u16 },
}

/// A framed message: its start line and the bytes of its header section.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    /// From the first header line to (not including) the empty line.
    headers: &'a [u8],
}

/// One header field: its name as written and its value with continuation lines, both trimmed;
/// `raw` is the whole field as it appeared, without its final line break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Message<'a> {
    /// Frames `bytes`: checks the start line and that every header line is well formed.
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, Malformed> {
        let (first, rest) = split_line(bytes).ok_or(Malformed::NoStartLine)?;
        let start = start_line(first)?;
        let headers = header_section(rest)?;
        let message = Message { start, headers };
        for field in message.fields() {
            field?;
        }
        Ok(message)
    }

    /// The header fields in order. Only yields errors before [`Message::parse`] has checked them.
    fn fields(&self) -> Fields<'a> {
        Fields { rest: self.headers }
    }

    /// The header fields in order (all well formed: [`Message::parse`] checked them).
    pub fn headers(&self) -> impl Iterator<Item = Header<'a>> + 'a {
        self.fields().flatten()
    }

    /// The first header called `name` or its compact form `compact` (case-insensitive).
    pub fn header(&self, name: &[u8], compact: Option<u8>) -> Option<Header<'a>> {
        self.headers().find(|h| h.is(name, compact))
    }
}

impl Header<'_> {
    /// Whether this field is `name` (or its one-letter compact form), case-insensitively.
    pub fn is(&self, name: &[u8], compact: Option<u8>) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || matches!((compact, self.name), (Some(c), [n]) if n.eq_ignore_ascii_case(&c))
    }
}

struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Header<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (raw, rest) = split_field(self.rest);
        self.rest = rest;
        Some(header(raw))
    }
}

/// Splits off one header field: its first line plus every continuation line.
fn split_field(bytes: &[u8]) -> (&[u8], &[u8]) {
    let mut end = 0;
    loop {
        let line_end = find_newline(&bytes[end..]).map_or(bytes.len(), |i| end + i + 1);
        end = line_end;
        match bytes.get(end) {
            Some(b' ' | b'\t') => continue,
            _ => return (trim_line_break(&bytes[..end]), &bytes[end..]),
        }
    }
}

fn header(raw: &[u8]) -> Result<Header<'_>, Malformed> {
    if raw.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return Err(Malformed::BadHeaderLine);
    }
    let colon = raw.iter().position(|&b| b == b':');
    let Some(colon) = colon else {
        return Err(Malformed::BadHeaderLine);
    };
    let name = raw[..colon].trim_ascii();
    if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
        return Err(Malformed::BadHeaderLine);
    }
    let value = raw[colon + 1..].trim_ascii();
    Ok(Header { name, value, raw })
}

/// The first line (without its line break) and the rest, or `None` without a line break.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nl = find_newline(bytes)?;
    let line = trim_line_break(&bytes[..=nl]);
    if line.is_empty() {
        return None;
    }
    Some((line, &bytes[nl + 1..]))
}

fn start_line(line: &[u8]) -> Result<StartLine<'_>, Malformed> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(first), Some(second)) = (parts.next(), parts.next()) else {
        return Err(Malformed::BadStartLine);
    };
    if first == b"SIP/2.0" {
        return status_code(second)
            .map(|code| StartLine::Response { code })
            .ok_or(Malformed::BadStartLine);
    }
    let version = parts.next();
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b);
    if version != Some(b"SIP/2.0") || second.is_empty() || !first.iter().all(is_token) {
        return Err(Malformed::BadStartLine);
    }
    Ok(StartLine::Request { method: first })
}

fn status_code(digits: &[u8]) -> Option<u16> {
    if digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u16::from(d - b'0')))
}

/// The header lines up to the empty line that ends them.
fn header_section(bytes: &[u8]) -> Result<&[u8], Malformed> {
    let mut at = 0;
    while at < bytes.len() {
        let line_end = find_newline(&bytes[at..]).ok_or(Malformed::NoEndOfHeaders)? + at;
        if trim_line_break(&bytes[at..=line_end]).is_empty() {
            return Ok(&bytes[..at]);
        }
        at = line_end + 1;
    }
    Err(Malformed::NoEndOfHeaders)
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn trim_line_break(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:r@127.0.0.1:5080 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
        v: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-2,\r\n \
        SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bK-3\r\n\
        i: abc@host\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn frames_a_request_with_compact_and_folded_headers() {
        let m = Message::parse(OPTIONS).unwrap();
        assert_eq!(m.start, StartLine::Request { method: b"OPTIONS" });
        let names: Vec<&[u8]> = m.headers().map(|h| h.name).collect();
        assert_eq!(names, [&b"Via"[..], b"v", b"i", b"Content-Length"]);
        let folded = m.headers().nth(1).unwrap();
        assert!(folded.raw.ends_with(b"branch=z9hG4bK-3"));
        assert!(folded.raw.contains(&b'\n'));
        assert_eq!(m.header(b"Call-ID", Some(b'i')).unwrap().value, b"abc@host");
    }

    #[test]
    fn frames_a_response() {
        let m = Message::parse(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n").unwrap();
        assert_eq!(m.start, StartLine::Response { code: 200 });
    }

    #[test]
    fn tolerates_bare_line_feeds() {
        let m = Message::parse(b"OPTIONS sip:a SIP/2.0\nCall-ID: x\n\n").unwrap();
        assert_eq!(m.header(b"call-id", None).unwrap().value, b"x");
    }

    #[test]
    fn rejects_what_is_not_sip() {
        let cases: [(&[u8], Malformed); 9] = [
            (b"", Malformed::NoStartLine),
            (b"\r\n", Malformed::NoStartLine),
            (b"hello", Malformed::NoStartLine),
            (b"GET / HTTP/1.1\r\n\r\n", Malformed::BadStartLine),
            (b"SIP/2.0 2000 OK\r\n\r\n", Malformed::BadStartLine),
            (
                b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n",
                Malformed::NoEndOfHeaders,
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nno colon\r\n\r\n",
                Malformed::BadHeaderLine,
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\n: empty\r\n\r\n",
                Malformed::BadHeaderLine,
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\n x: y\r\n\r\n",
                Malformed::BadHeaderLine,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(Message::parse(bytes).unwrap_err(), want, "{bytes:?}");
        }
    }

    #[test]
    fn never_panics_on_any_prefix_of_a_message() {
        for end in 0..=OPTIONS.len() {
            let _ = Message::parse(&OPTIONS[..end]);
        }
    }
}
