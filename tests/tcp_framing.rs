//! Framing on a TCP connection, over real loopback sockets on IPv4 and IPv6: two messages in
//! one segment, one message over many writes, a client gone mid-message, a slow sender cut by
//! the header timeout, an oversized message (513, then closed), a missing Content-Length
//! (400, then closed), and CRLF keep-alives (RFC 5626 §3.5.1). Each client-side check waits
//! for something the proxy does (a forwarded message, a reply, a close), never for time.

mod runtime_support;

use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::time::Duration;

use ferrovia::proxy::Direction;
use ferrovia::record::StreamEvent;
use ferrovia::settings::Settings;
use runtime_support::recv_text;
use runtime_support::sip::{header, status};
use runtime_support::tcp::{
    DualProxy, Family, SipStream, dual_settings, on_each_family, start_dual,
};

/// The largest message these proxies read.
const MAX_MESSAGE: usize = 2048;

fn settings(family: Family) -> Settings {
    let mut s = dual_settings(family, 2);
    s.tcp.max_message = MAX_MESSAGE;
    s.tcp.header_timeout = Duration::from_millis(300);
    s
}

/// A MESSAGE over TCP from `from`, routed over UDP to `to`, with `body`.
fn message(from: SocketAddr, to: SocketAddr, call: &str, body: &str) -> String {
    format!(
        "MESSAGE sip:alice@{to} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {from};branch=z9hG4bK-{call}\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:{to};transport=udp;lr>\r\n\
         From: <sip:bob@{from}>;tag={call}\r\n\
         To: <sip:alice@{to}>\r\n\
         Call-ID: {call}@framing.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn call_id(message: &str) -> &str {
    header(message, "Call-ID").unwrap_or_default()
}

fn run(
    name: &str,
    test: impl Fn(&DualProxy, &UdpSocket, Family),
) -> Vec<ferrovia::stats::Counters> {
    let mut totals = Vec::new();
    on_each_family(name, |family| {
        let proxy = start_dual(&settings(family));
        let hop = family.udp_peer();
        test(&proxy, &hop, family);
        totals.push(proxy.server.shutdown().counters());
    });
    totals
}

#[test]
fn two_messages_in_one_segment_are_both_forwarded_in_order() {
    let totals = run("two_in_one", |proxy, hop, _| {
        let mut client = SipStream::connect(proxy.tcp);
        let (me, to) = (client.local_addr(), hop.local_addr().unwrap());
        let both = message(me, to, "first", "one") + &message(me, to, "second", "two");
        client.send(both.as_bytes());
        for (call, body) in [("first", "one"), ("second", "two")] {
            let (forwarded, _) = recv_text(hop);
            assert_eq!(call_id(&forwarded), format!("{call}@framing.test"));
            assert!(
                forwarded.ends_with(&format!("\r\n\r\n{body}")),
                "{forwarded}"
            );
        }
    });
    for total in totals {
        assert_eq!(
            (total.received(), total.forwarded(Direction::Request)),
            (2, 2),
            "{total:?}"
        );
    }
}

#[test]
fn one_message_over_many_writes_is_forwarded_whole() {
    run("many_writes", |proxy, hop, _| {
        let mut client = SipStream::connect(proxy.tcp);
        let (me, to) = (client.local_addr(), hop.local_addr().unwrap());
        let body = "x".repeat(300);
        let whole = message(me, to, "split", &body);
        for piece in whole.as_bytes().chunks(7) {
            client.send(piece);
            // Give each piece its own segment (and usually its own read at the proxy).
            std::thread::sleep(Duration::from_millis(1));
        }
        let (forwarded, _) = recv_text(hop);
        assert_eq!(call_id(&forwarded), "split@framing.test");
        assert!(
            forwarded.ends_with(&format!("\r\n\r\n{body}")),
            "{forwarded}"
        );
    });
}

#[test]
fn a_client_gone_mid_message_forwards_nothing() {
    let totals = run("mid_message", |proxy, hop, _| {
        let mut client = SipStream::connect(proxy.tcp);
        let (me, to) = (client.local_addr(), hop.local_addr().unwrap());
        let whole = message(me, to, "cut", "never whole");
        client.send(&whole.as_bytes()[..whole.len() - 5]);
        client.stream.shutdown(Shutdown::Write).unwrap();
        client.expect_closed();
        // The proxy keeps serving: the next message through is the next the hop sees.
        let mut other = SipStream::connect(proxy.tcp);
        other.send(message(other.local_addr(), to, "after", "ok").as_bytes());
        let (forwarded, _) = recv_text(hop);
        assert_eq!(call_id(&forwarded), "after@framing.test");
    });
    for total in totals {
        assert_eq!(total.stream(StreamEvent::ClosedMidMessage), 1, "{total:?}");
        assert_eq!(total.forwarded(Direction::Request), 1);
    }
}

#[test]
fn a_slow_sender_is_cut_by_the_header_timeout() {
    let totals = run("slow_sender", |proxy, hop, _| {
        let mut client = SipStream::connect(proxy.tcp);
        let whole = message(client.local_addr(), hop.local_addr().unwrap(), "slow", "");
        client.send(&whole.as_bytes()[..40]);
        client.expect_closed();
    });
    for total in totals {
        assert_eq!(total.stream(StreamEvent::ClosedSlow), 1, "{total:?}");
        assert_eq!(total.received(), 0);
    }
}

#[test]
fn an_oversized_message_gets_513_then_the_connection_closes() {
    let totals = run("oversized", |proxy, hop, _| {
        let mut client = SipStream::connect(proxy.tcp);
        let to = hop.local_addr().unwrap();
        let big = message(client.local_addr(), to, "big", &"y".repeat(MAX_MESSAGE));
        client.send(big.as_bytes());
        let answer = client.recv();
        assert_eq!(status(&answer), Some(513), "{answer}");
        assert_eq!(call_id(&answer), "big@framing.test");
        client.expect_closed();
        // Headers that never end within the limit: the core answers from what was read.
        let mut endless = SipStream::connect(proxy.tcp);
        let head = message(endless.local_addr(), to, "endless", "");
        let head = head.trim_end_matches("\r\n");
        endless.send(head.as_bytes());
        endless.send(format!("\r\nX-Pad: {}", "z".repeat(MAX_MESSAGE)).as_bytes());
        assert_eq!(status(&endless.recv()), Some(513));
        endless.expect_closed();
    });
    for total in totals {
        assert_eq!(total.stream(StreamEvent::ClosedOversized), 2, "{total:?}");
        assert_eq!(total.replies().collect::<Vec<_>>(), [(513, 2)], "{total:?}");
    }
}

#[test]
fn a_missing_content_length_gets_400_then_the_connection_closes() {
    let totals = run("no_length", |proxy, hop, _| {
        let mut client = SipStream::connect(proxy.tcp);
        let whole = message(client.local_addr(), hop.local_addr().unwrap(), "nolen", "");
        let without: String = whole
            .split_inclusive("\r\n")
            .filter(|line| !line.starts_with("Content-Length"))
            .collect();
        client.send(without.as_bytes());
        let answer = client.recv();
        assert_eq!(status(&answer), Some(400), "{answer}");
        assert!(
            answer.starts_with("SIP/2.0 400 Missing Content-Length"),
            "{answer}"
        );
        client.expect_closed();
    });
    for total in totals {
        assert_eq!(total.stream(StreamEvent::ClosedUnframed), 1, "{total:?}");
    }
}

#[test]
fn a_double_crlf_ping_gets_a_crlf_pong_and_single_crlfs_are_ignored() {
    let totals = run("ping", |proxy, hop, _| {
        let mut client = SipStream::connect(proxy.tcp);
        client.send(b"\r\n\r\n");
        assert_eq!(client.recv_raw(2), b"\r\n");
        let (me, to) = (client.local_addr(), hop.local_addr().unwrap());
        let after = format!("\r\n{}", message(me, to, "after-crlf", "hi"));
        client.send(after.as_bytes());
        let (forwarded, _) = recv_text(hop);
        assert_eq!(call_id(&forwarded), "after-crlf@framing.test");
        client.send(b"\r\n\r\n");
        assert_eq!(client.recv_raw(2), b"\r\n", "still open and answering");
    });
    for total in totals {
        assert_eq!(total.stream(StreamEvent::Ping), 2, "{total:?}");
        assert_eq!(total.dropped_total(), 0, "{total:?}");
    }
}
