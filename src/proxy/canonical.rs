//! Canonical output: whatever the proxy forwards frames identically for any reasonable reader.
//!
//! The rule (see `docs/CORE.md`, "Canonical output"): the start line and header block end
//! every line with CRLF; there is exactly one Content-Length and it equals the body length;
//! no singleton header appears twice; the Request-Line has no white space after its version.
//! What the scanner refused (a bare CR, a duplicated singleton, two Content-Lengths) never
//! gets here: it is answered 400 or dropped, counted. What it accepted but noted as not
//! canonical ([`Message::is_canonical`]) is rewritten here — the only extra work, so a
//! well-formed message costs one flag test.

use std::net::{IpAddr, SocketAddr};

use crate::sip::{HeaderName, Message, ScanError, SipUri, Span, StartLine};

use super::DropReason;
use super::rewrite::{Edit, Edits, Insert, Out, apply_range_crlf};

/// Writes `msg` with `edits` into `out` in canonical form: the decisions' edits, then
/// Content-Length and, for a message that is not canonical yet, its repairs. With `body_len`
/// the edits replace the body with one of that many bytes (an SDP from the media relay): the
/// Content-Length line is written anew with that length.
pub(crate) fn write_body(
    out: &mut Out<'_>,
    msg: &Message<'_>,
    edits: &mut Edits<'_>,
    body_len: Option<usize>,
) {
    match body_len {
        Some(len) => push_content_length(msg, edits, len),
        None => push_edits(msg, edits),
    }
    let whole = Span::new(msg.start_line().start(), msg.body().end());
    // Bare LFs are rewritten only up to the body, and only when the scanner saw one.
    let crlf_until = if msg.is_canonical() {
        0
    } else {
        msg.body().start()
    };
    apply_range_crlf(out, msg.buf(), whole, edits, crlf_until);
}

/// Content-Length added when missing (required on streams, RFC 3261 §18.3; harmless on UDP
/// and it keeps a transport switch safe); for a message that is not canonical, the
/// Request-Line's trailing white space removed (RFC 4475 §3.1.2.10) and its Content-Length
/// line rewritten plainly (a folded or spaced one is read differently by naive readers).
fn push_edits(msg: &Message<'_>, edits: &mut Edits<'_>) {
    let existing = msg.header(HeaderName::ContentLength);
    if !msg.is_canonical() {
        if let StartLine::Request { .. } = msg.start() {
            let line = msg.start_line();
            let text = msg.bytes(line);
            let kept = text.len()
                - text
                    .iter()
                    .rev()
                    .take_while(|b| matches!(b, b' ' | b'\t'))
                    .count();
            if kept < text.len() {
                edits.push(Edit::delete(Span::new(line.start() + kept, line.end())));
            }
        }
        if let Some(h) = existing {
            edits.push(Edit::delete(h.line));
        }
    } else if existing.is_some() {
        return;
    }
    edits.push(Edit::insert(
        msg.headers_end(),
        Insert::Number {
            prefix: b"Content-Length: ",
            n: msg.body().len() as u32,
            suffix: b"\r\n",
        },
    ));
}

/// The body is replaced: every Content-Length line goes and one with `len` is written (RFC
/// 3261 §20.14), besides the other repairs of a message that is not canonical.
fn push_content_length(msg: &Message<'_>, edits: &mut Edits<'_>, len: usize) {
    if !msg.is_canonical() {
        let before = edits.len();
        push_edits(msg, edits);
        // Drop the Content-Length `push_edits` added (the last edit); ours follows.
        if edits.len() > before {
            edits.pop();
        }
    } else if let Some(h) = msg.header(HeaderName::ContentLength) {
        edits.push(Edit::delete(h.line));
    }
    edits.push(Edit::insert(
        msg.headers_end(),
        Insert::Number {
            prefix: b"Content-Length: ",
            n: u32::try_from(len).unwrap_or(u32::MAX),
            suffix: b"\r\n",
        },
    ));
}

/// RFC 3261 §19.1.5: headers (`?...`) are not allowed in a Request-URI; RFC 4475 §3.1.2.11.
/// The proxy forwards the URI without them. `edits` must not replace the Request-URI.
pub(crate) fn strip_uri_headers(msg: &Message<'_>, edits: &mut Edits<'_>) {
    let StartLine::Request { uri, .. } = msg.start() else {
        return;
    };
    // Most Request-URIs have no `?` at all: one search rules that out.
    if memchr::memchr(b'?', msg.bytes(uri)).is_none() {
        return;
    }
    if let Ok(parsed) = SipUri::parse(msg.buf(), uri)
        && parsed.params.end() < uri.end()
    {
        edits.push(Edit::delete(Span::new(parsed.params.end(), uri.end())));
    }
}

/// RFC 4475 §3.3.10: a next hop that is a broadcast, multicast or unspecified address is
/// never sent to (a response naming one is an amplification attempt, not a peer).
pub(crate) fn check_unicast(destination: SocketAddr) -> Result<(), DropReason> {
    let unicast = match destination.ip() {
        IpAddr::V4(v4) => {
            !(v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified() || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified()),
    };
    if unicast {
        Ok(())
    } else {
        Err(DropReason::NotUnicast)
    }
}

/// The drop reason for a message that cannot be answered: framing another reader would read
/// differently is counted apart from plain malformation.
pub(crate) fn drop_reason(error: ScanError, request: bool) -> DropReason {
    match error {
        ScanError::BareCr | ScanError::Duplicate(_) => DropReason::AmbiguousFraming,
        _ if request => DropReason::MalformedRequest,
        _ => DropReason::MalformedResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &[u8]) -> String {
        let msg = Message::scan(raw, false).expect("scans");
        let mut buf = vec![0u8; 1024];
        let mut out = Out::new(&mut buf);
        let mut edits = Edits::new();
        strip_uri_headers(&msg, &mut edits);
        write_body(&mut out, &msg, &mut edits, None);
        let n = out.finish().unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn canonical_input_is_copied_with_content_length_added_when_missing() {
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\n\r\nhi";
        assert_eq!(
            canonical(raw),
            "MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\nContent-Length: 2\r\n\r\nhi"
        );
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhi";
        assert_eq!(canonical(raw), String::from_utf8_lossy(raw));
    }

    #[test]
    fn the_issue_smuggle_keeps_one_content_length_for_the_whole_body() {
        // `\r\n\n` ends the header block: what follows is body, and the one Content-Length
        // written counts it all (the issue's bare-LF smuggle, RFC 3261 §7.5 tolerance).
        let raw = b"INVITE sip:b@h SIP/2.0\r\nContent-Type: application/sdp\r\n\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(
            canonical(raw),
            "INVITE sip:b@h SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 23\r\n\r\n\
Content-Length: 2\r\n\r\nhi"
        );
        // `\n\r\n`: a bare-LF line, then the empty line.
        let raw = b"INVITE sip:b@h SIP/2.0\r\nContent-Type: a/b\n\r\nContent-Length: 2\r\n\r\nhi";
        assert_eq!(
            canonical(raw),
            "INVITE sip:b@h SIP/2.0\r\nContent-Type: a/b\r\nContent-Length: 23\r\n\r\n\
Content-Length: 2\r\n\r\nhi"
        );
    }

    fn replaced(raw: &[u8], body: &[u8]) -> String {
        let msg = Message::scan(raw, false).expect("scans");
        let mut buf = vec![0u8; 1024];
        let mut out = Out::new(&mut buf);
        let mut edits = Edits::new();
        edits.push(Edit::replace(msg.body(), Insert::Bytes(body)));
        write_body(&mut out, &msg, &mut edits, Some(body.len()));
        let n = out.finish().unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_replaced_body_gets_one_content_length_of_its_own_length() {
        // RFC 3261 §20.14: the media relay's SDP replaces the body; one Content-Length, new.
        let raw = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 2\r\nTo: x\r\n\r\nhi";
        assert_eq!(
            replaced(raw, b"hello"),
            "INVITE sip:a@b SIP/2.0\r\nTo: x\r\nContent-Length: 5\r\n\r\nhello"
        );
        // Without one, and on a message that is not canonical (bare LFs, a compact form).
        let raw = b"INVITE sip:a@b SIP/2.0\r\nTo: x\r\n\r\nhi";
        assert_eq!(
            replaced(raw, b"abc"),
            "INVITE sip:a@b SIP/2.0\r\nTo: x\r\nContent-Length: 3\r\n\r\nabc"
        );
        let raw = b"INVITE sip:a@b SIP/2.0\nl: 2\nTo: x\n\nhi";
        assert_eq!(
            replaced(raw, b"abcd"),
            "INVITE sip:a@b SIP/2.0\r\nTo: x\r\nContent-Length: 4\r\n\r\nabcd"
        );
    }

    #[test]
    fn bare_lf_messages_get_crlf_and_the_body_is_untouched() {
        let raw = b"MESSAGE sip:a@b SIP/2.0\nSubject: a\n b\nContent-Length: 3\n\nx\ny";
        assert_eq!(
            canonical(raw),
            "MESSAGE sip:a@b SIP/2.0\r\nSubject: a\r\n b\r\nContent-Length: 3\r\n\r\nx\ny"
        );
    }

    #[test]
    fn request_line_trailing_white_space_is_removed() {
        // RFC 4475 §3.1.2.10 (trws).
        let raw = b"OPTIONS sip:a@b SIP/2.0 \t \r\nl: 0\r\n\r\n";
        assert_eq!(
            canonical(raw),
            "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn an_irregular_content_length_line_is_rewritten() {
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length :\r\n 2\r\nTo: x\r\n\r\nhi";
        assert_eq!(
            canonical(raw),
            "MESSAGE sip:a@b SIP/2.0\r\nTo: x\r\nContent-Length: 2\r\n\r\nhi"
        );
    }

    #[test]
    fn request_uri_headers_are_stripped() {
        // RFC 4475 §3.1.2.11 (escruri); a `?` in the user part stays.
        let raw =
            b"INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\r\nl: 0\r\n\r\n";
        assert_eq!(
            canonical(raw),
            "INVITE sip:user@example.com SIP/2.0\r\nl: 0\r\n\r\n"
        );
        let raw = b"INVITE sip:a?b@h;x=1 SIP/2.0\r\nl: 0\r\n\r\n";
        assert_eq!(canonical(raw), String::from_utf8_lossy(raw));
    }

    #[test]
    fn only_unicast_next_hops() {
        for bad in [
            "255.255.255.255:5060",
            "224.0.0.1:5060",
            "0.0.0.0:5060",
            "[ff02::1]:5060",
            "[::]:5060",
        ] {
            assert_eq!(
                check_unicast(bad.parse().unwrap()),
                Err(DropReason::NotUnicast),
                "{bad}"
            );
        }
        for good in ["192.0.2.1:5060", "[2001:db8::1]:5060", "127.0.0.1:5060"] {
            assert_eq!(check_unicast(good.parse().unwrap()), Ok(()), "{good}");
        }
    }
}
