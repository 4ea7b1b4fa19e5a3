//! `Proxy::handle` as an entry point, end to end in memory: framing (RFC 3261 §18.3, §7.3.1,
//! §7.5), the size limits (400 / 513), `Proxy::refuse` (503 with Retry-After), the header limit
//! on what the proxy sends, and IPv6 through both directions. The rules of requests, responses, contact rewriting and parking
//! are tested next to them.

use crate::proxy::test_support::*;

// ---- IPv6 end to end -------------------------------------------------------------------------

#[test]
fn ipv6_request_and_response() {
    let p = proxy_with(|c| c.listeners = vec![listener("[2001:db8::10]:5060", Transport::Udp)]);
    let raw = request("INVITE sip:bob@[2001:db8::7]:5070", "")
        .replace("10.0.0.1:5060;branch", "[2001:db8::1]:5062;rport;branch");
    let r = run(&p, &raw, "[2001:db8::1]:5062");
    assert_eq!(forwarded_to(&r), "[2001:db8::7]:5070".parse().unwrap());
    assert!(
        r.text
            .contains("Via: SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bKfvHASH\r\n")
    );
    assert!(r.text.contains("Via: SIP/2.0/UDP [2001:db8::1]:5062;rport=5062;branch=z9hG4bK776asdhds;received=2001:db8::1\r\n"));
    let resp = response(
        "200 OK",
        "Via: SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bKfv0123456789abcdef\r\n\
Via: SIP/2.0/UDP [2001:db8::1]:5062;rport=5062;received=2001:db8::1\r\n",
    );
    assert_eq!(
        forwarded_to(&run(&p, &resp, "[2001:db8::7]:5070")),
        "[2001:db8::1]:5062".parse().unwrap()
    );
}

// ---- framing: §18.3, §7.3.1, §7.5, 400 / 513 ---------------------------------------------------

#[test]
fn body_bounded_by_content_length_and_length_added() {
    let raw = request("MESSAGE sip:bob@10.0.0.7", "").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Length: 5\r\n\r\nhello, and more",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert!(
        r.text.ends_with("Content-Length: 5\r\n\r\nhello"),
        "{}",
        r.text
    );
    let raw =
        request("MESSAGE sip:bob@10.0.0.7", "").replace("Content-Length: 0\r\n\r\n", "\r\nhello");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert!(
        r.text
            .ends_with("CSeq: 314159 MESSAGE\r\nContent-Length: 5\r\n\r\nhello"),
        "{}",
        r.text
    );
}

#[test]
fn folded_and_compact_headers_survive() {
    let raw = "INVITE sip:bob@10.0.0.7 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1\r\n ;branch=z9hG4bK77\r\n\
t: <sip:bob@b>\r\nf: <sip:al@a>;tag=1\r\ni: c1\r\nCSeq: 1 INVITE\r\nSubject: one,\r\n two\r\nl: 0\r\n\r\n";
    let r = run(&proxy(), raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.7:5060".parse().unwrap());
    let want = format!(
        "INVITE sip:bob@10.0.0.7 SIP/2.0\r\n{OUR_VIA}Max-Forwards: 70\r\nv: SIP/2.0/UDP 10.0.0.1\r\n ;branch=z9hG4bK77\r\n\
t: <sip:bob@b>\r\nf: <sip:al@a>;tag=1\r\ni: c1\r\nCSeq: 1 INVITE\r\nSubject: one,\r\n two\r\nl: 0\r\n\r\n"
    );
    assert_eq!(r.text, want);
}

#[test]
fn broken_framing_with_a_usable_via_is_400() {
    let raw =
        request("INVITE sip:bob@10.0.0.7", "").replace("Content-Length: 0", "Content-Length: 99");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 400);
    assert!(
        r.text
            .starts_with("SIP/2.0 400 Content-Length Larger Than Body\r\n")
    );
    let ack =
        request("ACK sip:bob@10.0.0.7", "").replace("Content-Length: 0", "Content-Length: 99");
    assert_eq!(
        dropped(&run(&proxy(), &ack, "10.0.0.1:5060")),
        DropReason::AckNotForwarded
    );
}

#[test]
fn unanswerable_messages_are_counted_drops() {
    let p = proxy();
    assert_eq!(
        dropped(&run(&p, "\r\n\r\n", "10.0.0.1:5060")),
        DropReason::Keepalive
    );
    assert_eq!(
        dropped(&run(&p, "GET / HTTP/1.1\r\n\r\n", "10.0.0.1:5060")),
        DropReason::NotSip
    );
    let no_via = request("INVITE sip:bob@10.0.0.7", "").replace(
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n",
        "",
    );
    assert_eq!(
        dropped(&run(&p, &no_via, "10.0.0.1:5060")),
        DropReason::MalformedRequest
    );
    let bad_response = "SIP/2.0 200 OK\r\nVia: x\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(
        dropped(&run(&p, bad_response, "10.0.0.1:5060")),
        DropReason::MalformedResponse
    );
}

#[test]
fn too_large_on_a_stream_is_513() {
    let p = proxy_with(|c| {
        c.listeners = vec![listener(PROXY, Transport::Tcp)];
        c.max_stream_message = 600;
    });
    let body = "x".repeat(600);
    let raw = request("MESSAGE sip:bob@10.0.0.7;transport=tcp", "").replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: 600\r\n\r\n{body}"),
    );
    let r = run_on(&p, &raw, "10.0.0.1:40000", Transport::Tcp);
    assert_eq!(replied(&r), (513, "10.0.0.1:40000".parse().unwrap()));
    let small = request("MESSAGE sip:bob@10.0.0.7;transport=tcp", "");
    assert_eq!(
        forwarded_to(&run_on(&p, &small, "10.0.0.1:40000", Transport::Tcp)),
        "10.0.0.7:5060".parse().unwrap()
    );
}

#[test]
fn output_buffer_too_small_is_a_drop_not_a_panic() {
    let p = proxy();
    let raw = request("INVITE sip:bob@10.0.0.7", "");
    let input = input(&p, raw.as_bytes(), "10.0.0.1:5060");
    let mut tiny = [0u8; 64];
    assert_eq!(
        p.handle(input, &mut tiny),
        Outcome::Drop(DropReason::OutputTooLarge)
    );
}

#[test]
fn oversized_stream_messages_get_513_from_their_headers_alone() {
    let p = proxy_with(|c| c.listeners = vec![listener(PROXY, Transport::Tcp)]);
    let head = request("MESSAGE sip:bob@10.0.0.7", "")
        .replace("Content-Length: 0", "Content-Length: 900000");
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let input = |data| input_on(&p, data, "10.0.0.1:40001", Transport::Tcp, Some(3));
    match p.handle_oversized(input(head.as_bytes()), &mut out) {
        Outcome::Reply { status, transmit } => {
            assert_eq!(status, 513);
            assert_eq!(transmit.connection, Some(ConnectionId(3)));
        }
        other => panic!("{other:?}"),
    }
    // Only part of the headers arrived: still answerable when the Via is among them.
    let cut = &head[..head.find("Call-ID").unwrap()];
    assert!(matches!(
        p.handle_oversized(input(cut.as_bytes()), &mut out),
        Outcome::Reply { status: 513, .. }
    ));
    assert_eq!(
        p.handle_oversized(input(b"SIP/2.0 200 OK\r\nVia: x"), &mut out),
        Outcome::Drop(DropReason::TooLarge)
    );
    assert_eq!(
        p.handle_oversized(input(b"\x16\x03\x01garbage"), &mut out),
        Outcome::Drop(DropReason::TooLarge)
    );
}

#[test]
fn refused_requests_get_503_with_retry_after() {
    let raw = request("INVITE sip:bob@198.51.100.7", "");
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let p = proxy();
    let input = input(&p, raw.as_bytes(), "10.0.0.1:5060");
    let outcome = p.proxy.refuse(input, 5, &mut out);
    let Outcome::Reply { transmit, status } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(status, 503);
    let text = String::from_utf8_lossy(&out[..transmit.len]);
    assert!(text.contains("\r\nRetry-After: 5\r\n"), "{text}");
    let garbage = Input {
        data: b"SIP/2.0 200 OK\r\n\r\n",
        ..input
    };
    let dropped = p.proxy.refuse(garbage, 5, &mut out);
    assert_eq!(dropped, Outcome::Drop(DropReason::RateLimited));
}

// ---- the header limit holds for what the proxy sends -----------------------------------------

#[test]
fn what_the_proxy_sends_stays_within_the_header_limit() {
    use crate::sip::MAX_HEADERS;
    let extra = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    // A request one line over the forwarding limit is refused with 400 ...
    let base = request("INVITE sip:bob@10.0.0.7", "")
        .matches("\r\n")
        .count()
        - 2;
    let over = request(
        "INVITE sip:bob@10.0.0.7",
        &extra(MAX_FORWARDED_HEADERS + 1 - base),
    );
    let r = run(&proxy(), &over, "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 400);
    assert!(r.text.starts_with("SIP/2.0 400 Too Many Headers\r\n"));
    // ... and one at the limit is forwarded, with room for what the proxy adds.
    let at = request(
        "INVITE sip:bob@10.0.0.7",
        &extra(MAX_FORWARDED_HEADERS - base),
    )
    .replace("Content-Length: 0\r\n", "");
    let p = proxy_with(|c| c.record_route = true);
    let r = run(&p, &at, "10.0.0.1:5060");
    forwarded_to(&r);
    let lines = Message::scan(r.text.as_bytes(), false)
        .unwrap()
        .headers()
        .len();
    assert!(lines <= MAX_HEADERS, "{lines}");
    // A request whose Vias alone would overflow any reply is dropped, not answered.
    let vias = (0..MAX_HEADERS - 6)
        .map(|i| {
            format!(
                "Via: SIP/2.0/UDP 10.0.0.{}:5060;branch=z9hG4bK{i}\r\n",
                i % 250
            )
        })
        .collect::<String>();
    let many = request("INVITE sip:bob@10.0.0.7", &vias);
    assert_eq!(
        dropped(&run(&proxy(), &many, "10.0.0.1:5060")),
        DropReason::TooManyHeaders
    );
    // A response over the forwarding limit (but within the scanner's) is dropped.
    let resp = response(
        "200 OK",
        &format!(
            "Via: {OURS}\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n{}",
            extra(MAX_FORWARDED_HEADERS - 5)
        ),
    );
    assert!(Message::scan(resp.as_bytes(), false).is_ok());
    assert_eq!(
        dropped(&run(&proxy(), &resp, "10.0.0.7:5060")),
        DropReason::TooManyHeaders
    );
}

#[test]
fn replies_copy_single_valued_headers_once() {
    let raw = request("INVITE sip:bob@10.0.0.7", "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0")
        .replace(
            "CSeq: 314159 INVITE\r\n",
            "CSeq: 314159 INVITE\r\nTo: <sip:second@b>\r\nCall-ID: second\r\n",
        );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    // A duplicated singleton is itself a 400 (RFC 4475 §3.3.8).
    assert_eq!(replied(&r).0, 400);
    assert_eq!(r.text.matches("\r\nTo:").count(), 1, "{}", r.text);
    assert_eq!(r.text.matches("\r\nCall-ID:").count(), 1, "{}", r.text);
    assert!(
        !r.text.contains("second"),
        "the first of each is copied: {}",
        r.text
    );
}
