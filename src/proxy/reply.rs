//! Locally generated stateless responses (RFC 3261 §8.2.6, §16.3, §16.11).
//!
//! The response copies every Via (the top one with its `received` / `rport` filled in), and
//! the first From, To (with a stateless tag added when it has none), Call-ID and CSeq from the
//! request, adds `Unsupported` for a 420, and ends with `Content-Length: 0`.

use crate::sip::{HeaderName, Message, Span};

use super::rewrite::{Edit, Edits, Insert, Out, apply_range_crlf};
use super::via_fix::ViaFix;

/// What to say and what to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    pub code: u16,
    pub reason: &'static str,
    /// Copy the request's Proxy-Require values into Unsupported (a 420, RFC 3261 §16.3 step 5).
    pub unsupported: bool,
    /// Seconds for a `Retry-After` header (RFC 3261 §20.33); 0 adds none.
    pub retry_after: u32,
}

impl Status {
    pub(super) const fn new(code: u16, reason: &'static str) -> Status {
        Status {
            code,
            reason,
            unsupported: false,
            retry_after: 0,
        }
    }
}

/// Lines a reply adds besides the request's Via lines: status line, From, To, Call-ID, CSeq,
/// Unsupported, Retry-After, Server, Content-Length.
const REPLY_LINES: usize = 9;

/// Whether the reply to `msg` stays within the header limit (every Via must be copied).
pub(crate) fn fits(msg: &Message<'_>) -> bool {
    msg.headers_named(HeaderName::Via).count() + REPLY_LINES <= crate::sip::MAX_HEADERS
}

/// A status line and what a reply adds: the routing policy's replies carry their own reason
/// and extra header lines (Contact for a redirect, a challenge, Retry-After).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    pub code: u16,
    pub reason: &'a str,
    pub unsupported: bool,
    /// Whole header lines, each ending in CRLF.
    pub extra: &'a [u8],
    /// Seconds for a `Retry-After` header (RFC 3261 §20.33); 0 adds none.
    pub retry_after: u32,
}

impl Head<'static> {
    /// The head of a core-generated [`Status`]: no extra lines.
    pub(crate) fn of(status: Status) -> Head<'static> {
        Head {
            code: status.code,
            reason: status.reason,
            unsupported: status.unsupported,
            extra: b"",
            retry_after: status.retry_after,
        }
    }
}

/// Writes the response to `msg` into `out`. `top_via` is the index of the first Via line
/// and the fix for its first value; `tag` the stateless To tag; `answer` a registrar's
/// answer whose header lines (challenges, bindings) go before Content-Length.
#[cfg(test)]
pub(crate) fn write(
    out: &mut Out<'_>,
    msg: &Message<'_>,
    top_via: Option<(usize, &ViaFix)>,
    status: Status,
    tag: u64,
    answer: Option<&crate::registrar::Answer>,
) {
    write_head(out, msg, top_via, Head::of(status), tag, answer);
}

/// [`write`] with a [`Head`].
pub(crate) fn write_head(
    out: &mut Out<'_>,
    msg: &Message<'_>,
    top_via: Option<(usize, &ViaFix)>,
    status: Head<'_>,
    tag: u64,
    answer: Option<&crate::registrar::Answer>,
) {
    let buf = msg.buf();
    out.put(b"SIP/2.0 ");
    out.put_u32(u32::from(status.code));
    out.put(b" ");
    out.put(status.reason.as_bytes());
    out.put(b"\r\n");
    for (i, h) in msg.headers().iter().enumerate() {
        let first = msg.header(h.name).is_some_and(|f| f.line == h.line);
        match h.name {
            HeaderName::Via => {
                let mut edits = Edits::new();
                if let Some((_, fix)) = top_via.filter(|(idx, _)| *idx == i) {
                    fix.push_edits(&mut edits);
                }
                copy_line(out, buf, h.line, &mut edits);
            }
            HeaderName::To if first => {
                let mut edits = Edits::new();
                // §8.2.6.2: a tag on every response but 100, the same for retransmissions.
                if status.code > 100 && super::branch::tag_span(msg, HeaderName::To).is_none() {
                    edits.push(Edit::insert(h.value.end(), Insert::Tag(tag)));
                }
                copy_line(out, buf, h.line, &mut edits);
            }
            HeaderName::From | HeaderName::CallId | HeaderName::CSeq if first => {
                copy_line(out, buf, h.line, &mut [])
            }
            HeaderName::ProxyRequire if status.unsupported => {
                out.put(b"Unsupported: ");
                out.put(msg.bytes(h.value));
                out.put(b"\r\n");
            }
            _ => {}
        }
    }
    out.put(status.extra);
    if status.retry_after > 0 {
        out.put(b"Retry-After: ");
        out.put_u32(status.retry_after);
        out.put(b"\r\n");
    }
    if let Some(answer) = answer {
        answer.write_headers(msg, &mut |bytes| out.put(bytes));
    }
    out.put(b"Server: ferrovia\r\nContent-Length: 0\r\n\r\n");
}

/// Copies one header line, with CRLF even when the line ended with a bare LF.
fn copy_line(out: &mut Out<'_>, buf: &[u8], line: Span, edits: &mut [Edit<'_>]) {
    let text = line.of(buf);
    let trim = if text.ends_with(b"\r\n") {
        2
    } else {
        usize::from(text.ends_with(b"\n"))
    };
    // A folded line's inner line ends are written as CRLF too (canonical output).
    let content = Span::new(line.start(), line.end() - trim);
    apply_range_crlf(out, buf, content, edits, content.end());
    out.put(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Values, Via};

    fn reply(raw: &[u8], status: Status, source: &str) -> String {
        let msg = Message::scan(raw, false).unwrap();
        let top = msg
            .headers()
            .iter()
            .position(|h| h.name == HeaderName::Via)
            .unwrap();
        let first = Values::new(raw, msg.headers()[top].value).next().unwrap();
        let via = Via::parse(raw, first).unwrap();
        let fix = ViaFix::new(&via, source.parse().unwrap());
        let mut buf = vec![0u8; 2048];
        let mut out = Out::new(&mut buf);
        write(&mut out, &msg, Some((top, &fix)), status, 0xabc, None);
        let n = out.finish().unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn copies_the_transaction_headers_and_tags_the_to() {
        let raw = b"INVITE sip:bob@b SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bK1, SIP/2.0/UDP p.example;branch=z9hG4bK0\r\n\
v: SIP/2.0/UDP q.example;branch=z9hG4bKq\r\nMax-Forwards: 0\r\nTo: <sip:bob@b>\r\n\
From: <sip:al@a>;tag=1\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nContact: <sip:al@10.0.0.1>\r\n\
Content-Length: 0\r\n\r\n";
        let got = reply(raw, Status::new(483, "Too Many Hops"), "192.0.2.1:7000");
        let want = "SIP/2.0 483 Too Many Hops\r\n\
Via: SIP/2.0/UDP 10.0.0.1;rport=7000;branch=z9hG4bK1;received=192.0.2.1, SIP/2.0/UDP p.example;branch=z9hG4bK0\r\n\
v: SIP/2.0/UDP q.example;branch=z9hG4bKq\r\nTo: <sip:bob@b>;tag=0000000000000abc\r\n\
From: <sip:al@a>;tag=1\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nServer: ferrovia\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(got, want);
    }

    #[test]
    fn keeps_an_existing_to_tag_and_lists_unsupported() {
        let raw = b"BYE sip:bob@b SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\n\
To: <sip:bob@b>;tag=xyz\nFrom: <sip:al@a>;tag=1\nCall-ID: c1\nCSeq: 6 BYE\n\
Proxy-Require: foo, bar\n\n";
        let status = Status {
            code: 420,
            reason: "Bad Extension",
            unsupported: true,
            retry_after: 0,
        };
        let got = reply(raw, status, "10.0.0.1:5060");
        let want = "SIP/2.0 420 Bad Extension\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
To: <sip:bob@b>;tag=xyz\r\nFrom: <sip:al@a>;tag=1\r\nCall-ID: c1\r\nCSeq: 6 BYE\r\n\
Unsupported: foo, bar\r\nServer: ferrovia\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(got, want);
    }

    #[test]
    fn a_retry_after_is_written_when_asked() {
        let raw = b"OPTIONS sip:b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
To: <sip:b>;tag=x\r\nFrom: <sip:a>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let status = Status {
            retry_after: 5,
            ..Status::new(503, "Service Unavailable")
        };
        let got = reply(raw, status, "10.0.0.1:5060");
        assert!(
            got.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
            "{got}"
        );
        assert!(got.ends_with("Retry-After: 5\r\nServer: ferrovia\r\nContent-Length: 0\r\n\r\n"));
    }
}
