//! Every input that ever crashed the core or made it emit a broken message, by name. Each one
//! runs through scan + decide + rewrite over UDP and over a stream, with contact rewriting off
//! and on: no panic, and any output re-scans as a valid message; and the differential property
//! of issue 11 holds for it (what is sent reads the same to the strict reader in
//! `tests/common/strict.rs`, alone and back to back on a stream).

mod common;

use std::time::Instant;

use ferrovia::proxy::{ConnectionId, OUTPUT_BUFFER_SIZE, Outcome, Transport};
use ferrovia::sip::Message;

fn survives(data: &[u8]) {
    for mut core in [common::core(), common::core_with_contacts()] {
        survives_in(&mut core, data);
    }
}

fn survives_in(core: &mut common::Core, data: &[u8]) {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    for (transport, connection) in [
        (Transport::Udp, None),
        (Transport::Tcp, Some(ConnectionId(9))),
    ] {
        let input = common::input_on(data, "10.0.0.1:5060", transport, connection, Instant::now());
        if let Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } =
            core.handle(input, &mut out)
        {
            let bytes = &out[..t.len];
            assert!(
                Message::scan(bytes, false).is_ok(),
                "{transport:?} output does not re-scan:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let _ = core.handle_oversized(input, &mut out);
    }
    if let Err(e) = common::differential::check(&mut common::differential::proxy(), data) {
        panic!("differential: {e}");
    }
}

/// What the proxy does with `data` over UDP (a fresh test proxy), and the bytes it sends.
fn outcome(data: &[u8]) -> (Outcome, String) {
    let input = common::input(data, "10.0.0.1:5060", Instant::now());
    let (outcome, bytes) = common::core().exchange(input);
    (outcome, String::from_utf8_lossy(&bytes).into_owned())
}

/// `data` survives, and the proxy forwards it; the bytes it sends, as text.
fn forwarded(data: &[u8]) -> String {
    survives(data);
    let (outcome, text) = outcome(data);
    assert!(matches!(outcome, Outcome::Forward(_)), "{outcome:?}");
    text
}

/// `data` survives, and the proxy answers it 400; the reply, as text.
fn refused(data: &[u8]) -> String {
    survives(data);
    let (outcome, text) = outcome(data);
    assert!(
        matches!(outcome, Outcome::Reply { status: 400, .. }),
        "{outcome:?}"
    );
    text
}

/// An INVITE whose header block ends with `tail` (the issue's vectors differ only there).
fn issue_invite(start_line_end: &str, tail: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@10.0.0.7 SIP/2.0{start_line_end}Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKi11\r\n\
Max-Forwards: 70\r\nTo: <sip:bob@b>\r\nFrom: <sip:a@a>;tag=1\r\nCall-ID: i11\r\n\
CSeq: 1 INVITE\r\nContent-Type: application/sdp{tail}"
    )
    .into_bytes()
}

/// Issue 11 (found by hand, then by the mutation flood): a header block ending in `\r\n\n`
/// was read as having no Content-Length; ferrovia added `Content-Length: 137` and forwarded the
/// original bytes, so the next hop saw two Content-Lengths and a first-one reader on a pooled
/// connection swallowed 23 bytes of the next client's request. Now the block ends at the
/// bare LF for every reader: one Content-Length, for all 137 bytes after it, and CRLF.
#[test]
fn issue_11_bare_lf_content_length_smuggle() {
    let body = "x".repeat(114);
    let raw = issue_invite("\r\n", &format!("\r\n\nContent-Length: 114\r\n\r\n{body}"));
    let text = forwarded(&raw);
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    assert_eq!(head.matches("Content-Length").count(), 1, "{text}");
    assert!(
        head.ends_with("Content-Type: application/sdp\r\nContent-Length: 137"),
        "{text}"
    );
    assert!(!text.contains("\r\n\n"), "{text}");
}

/// Issue 11: `\n\r\n` — a header line ending in a bare LF, then the empty line.
#[test]
fn issue_11_bare_lf_then_crlf() {
    let raw = issue_invite("\r\n", "\n\r\nContent-Length: 4\r\n\r\nv=0\n");
    let text = forwarded(&raw);
    assert!(
        text.contains("Content-Type: application/sdp\r\nContent-Length: 25\r\n\r\n"),
        "{text}"
    );
}

/// Issue 11: a Request-Line ending `SIP/2.0\r \n` was forwarded verbatim; a reader that ends
/// lines at CR sees a different message. A bare CR is refused: 400 to a usable Via.
#[test]
fn issue_11_bare_cr_in_the_request_line() {
    let raw = issue_invite("\r \n", "\r\nContent-Length: 0\r\n\r\n");
    let text = refused(&raw);
    assert!(text.starts_with("SIP/2.0 400 Bare CR\r\n"), "{text}");
}

/// Issue 11: two Content-Lengths with different values were forwarded with both, the body
/// cut to the first (RFC 4475 §3.3.9): now 400, and over a stream never framed by either.
#[test]
fn issue_11_conflicting_content_lengths() {
    let raw = issue_invite("\r\n", "\r\nContent-Length: 2\r\nl: 4\r\n\r\nv=0\n");
    let text = refused(&raw);
    assert!(
        text.starts_with("SIP/2.0 400 Multiple Content-Length\r\n"),
        "{text}"
    );
}

/// Issue 11: a duplicated Max-Forwards was forwarded with only the first decremented.
#[test]
fn issue_11_duplicated_max_forwards() {
    let raw = issue_invite("\r\n", "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    refused(&raw);
}

/// cargo fuzz, 2026-11-21: a Route URI with a raw CR inside `<...>` was accepted, then copied
/// into the Request-URI by the strict-routing rewrite (RFC 3261 §16.6 step 6), breaking the
/// start line. URIs now reject white space and control bytes.
#[test]
fn cr_inside_a_strict_route_uri() {
    survives(b"BYE sip:b SIP/2.0\nVia: SIP/2.0/U 1.0.0.3\nF:\nCall-ID:\nCSeq:2 BYE\nT:\x01\nRoute:<sip:2.0.2.5\r>\n\n");
}

/// cargo fuzz, 2026-11-21: a request with well over a hundred short Via and To lines was
/// answered 400 with every one of them copied, a reply longer than the 128-line limit. A reply
/// now copies only the first To / From / Call-ID / CSeq, and a request whose Vias alone would
/// overflow the reply is dropped as `too_many_headers`.
#[test]
fn a_reply_that_would_pass_the_header_limit() {
    survives(b"E s SIP/2.0\nVia: SIP/2.0/UP t\r\nV:\nV:0\nT:\nT:\r\nV:\nV:\nTo:\r\nV:\nTo:\nV:\xff0\nT:\r\nV:\nV:\nT:\r\nT:\r\nV:\nT:\nV:\xff\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nT:\nT:\nTo:\nV:\nT:\r\nT:\r\nV:\nT:\nV:\xff0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nT:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nT:\nT::\nTo:\r\nV:\nT:\r\nT:\r\nV:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\nV:\nT:\nTo:\r\nV:\nTo:\r\nT:\nV:\nT:\nV:\nT:\nT:\r\nV:\nT:\nV:\xff0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nV:\nTo:\r\nTo:\r\nV:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nT:\nT:\nTo:\r\nV:\nT:\r\nT:\r\nV:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\nV:\nT:\n");
}

/// Issue 11, found while writing the strict reader: a local reply copies the request's Via
/// lines, and a folded Via whose inner line ended in a bare LF was copied with that LF, so the
/// 400 itself was not canonical. Reply lines are now copied with every line end as CRLF.
#[test]
fn issue_11_a_reply_copies_a_folded_via_with_crlf() {
    let raw =
        b"INVITE sip:bob@10.0.0.7 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\n ;branch=z9hG4bKf1\r\n\
Max-Forwards: 70\r\nTo: <sip:bob@b>\r\nFrom: <sip:a@a>;tag=1\r\nCall-ID: f1\r\nCSeq: 1 INVITE\r\n\
CSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";
    let text = refused(raw);
    assert!(
        text.contains("Via: SIP/2.0/UDP 10.0.0.1\r\n ;branch=z9hG4bKf1"),
        "{text}"
    );
    common::differential::agree(text.as_bytes()).unwrap();
}

/// proptest (`core_props::mutated_real_messages`), 2026-11-30, on the issue 11 fast path for
/// ` SIP/2.0`: a Request-Line whose only SP was trailing white space (`INVITE \t`) sliced past
/// the end of the trimmed line. The version is now read with `get`.
#[test]
fn a_request_line_whose_only_space_is_trailing() {
    survives(b"INVITE \t\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\r\n");
    survives(b"INVITE  \r\n\r\n");
    survives(b"A \n");
}

/// cargo fuzz (`differential`), 2026-11-30: a Route URI holding `"<` inside its parameters was
/// accepted by the URI parser and copied into the Request-URI by strict routing (RFC 3261
/// §16.6 step 6), where the scanner's Request-URI rule (no `<>`, RFC 4475 §3.1.2.7) refused
/// it: ferrovia sent a message it would not read itself. URIs now refuse the same bytes.
#[test]
fn a_route_uri_with_an_angle_bracket() {
    survives(include_bytes!("vectors/fuzz_uri_with_angle_bracket.sip"));
}
