//! Issue 11 over real loopback sockets: the request-smuggling attempt across clients that
//! share a pooled TCP connection to the next hop, and a response to a client that half-closed
//! its connection (FIN sent, still reading).
//!
//! The next hop here reads the way the victim did — the first Content-Length in the
//! first header block — so if ferrovia ever forwarded two Content-Lengths or a header block a
//! reader could end elsewhere, the second client's request would arrive cut.

mod runtime_support;

use std::net::{Shutdown, SocketAddr};

use runtime_support::sip::{header, response, status};
use runtime_support::tcp::{
    DualProxy, Family, NextHop, SipStream, dual_settings, host, on_each_family, start_dual,
};

/// An INVITE routed to `next` over TCP; `tail` ends the header block and holds the body.
fn invite(from: SocketAddr, via: &str, next: SocketAddr, call: &str, tail: &str) -> String {
    let (from, next) = (host(from), host(next));
    format!(
        "INVITE sip:bob@{next} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {from};branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:{next};transport=tcp;lr>\r\n\
         From: <sip:alice@{from}>;tag={call}\r\n\
         To: <sip:bob@{next}>\r\n\
         Call-ID: {call}@smuggling.test\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Type: application/sdp\r\n{tail}"
    )
}

/// The attack: the header block ends in `\r\n\n`, then a Content-Length and a body of
/// 114 bytes that a first-Content-Length reader would frame by.
fn smuggle_tail() -> String {
    format!("\nContent-Length: 114\r\n\r\n{}", "x".repeat(114))
}

fn proxy(family: Family) -> DualProxy {
    // One worker: both clients' requests go out on its one pooled connection to the hop.
    start_dual(&dual_settings(family, 1))
}

#[test]
fn a_smuggled_request_does_not_swallow_the_next_clients_request() {
    on_each_family("smuggle_pool", |family| {
        let proxy = proxy(family);
        let next = NextHop::bind(family);
        let attacker = family.udp_peer();
        let victim = family.udp_peer();
        let attack = invite(
            attacker.local_addr().unwrap(),
            "UDP",
            next.addr(),
            "attack",
            &smuggle_tail(),
        );
        attacker.send_to(attack.as_bytes(), proxy.udp).unwrap();
        let mut hop = next.accept();
        let first = hop.recv();
        let body = "v=0\r\n";
        let honest = invite(
            victim.local_addr().unwrap(),
            "UDP",
            next.addr(),
            "victim",
            &format!("Content-Length: {}\r\n\r\n{body}", body.len()),
        );
        victim.send_to(honest.as_bytes(), proxy.udp).unwrap();
        let second = hop.recv();

        // The attacker's message: one Content-Length, for everything after the blank line.
        assert_eq!(first.matches("\r\nContent-Length: ").count(), 2, "{first}"); // one in the body
        assert_eq!(header(&first, "Content-Length"), Some("137"), "{first}");
        assert!(first.ends_with(&format!(
            "\r\n\r\nContent-Length: 114\r\n\r\n{}",
            "x".repeat(114)
        )));
        // The victim's request arrives whole: its own start line, Call-ID and body.
        assert!(
            second.starts_with(&format!("INVITE sip:bob@{} SIP/2.0\r\n", host(next.addr()))),
            "{second}"
        );
        assert_eq!(header(&second, "Call-ID"), Some("victim@smuggling.test"));
        assert!(second.ends_with(&format!("\r\n\r\n{body}")), "{second}");
    });
}

#[test]
fn over_tcp_the_smuggle_is_answered_400_and_the_connection_closed() {
    on_each_family("smuggle_tcp", |family| {
        let proxy = proxy(family);
        let next = NextHop::bind(family);
        let mut attacker = SipStream::connect(proxy.tcp);
        let attack = invite(
            attacker.local_addr(),
            "TCP",
            next.addr(),
            "attack",
            &smuggle_tail(),
        );
        attacker.send(attack.as_bytes());
        let reply = attacker.recv();
        assert_eq!(status(&reply), Some(400), "{reply}");
        attacker.expect_closed();
        // The pool is untouched: the next request through is the first the hop sees.
        let mut client = SipStream::connect(proxy.tcp);
        let honest = invite(
            client.local_addr(),
            "TCP",
            next.addr(),
            "after",
            "Content-Length: 0\r\n\r\n",
        );
        client.send(honest.as_bytes());
        let forwarded = next.accept().recv();
        assert_eq!(header(&forwarded, "Call-ID"), Some("after@smuggling.test"));
    });
}

#[test]
fn a_response_reaches_a_client_that_half_closed_its_connection() {
    on_each_family("half_closed", |family| {
        let proxy = proxy(family);
        let next = NextHop::bind(family);
        let mut client = SipStream::connect(proxy.tcp);
        let request = invite(
            client.local_addr(),
            "TCP",
            next.addr(),
            "half",
            "Content-Length: 0\r\n\r\n",
        );
        client.send(request.as_bytes());
        client.stream.shutdown(Shutdown::Write).unwrap();
        let mut hop = next.accept();
        let forwarded = hop.recv();
        // Give the proxy time to read the FIN before the response comes back.
        std::thread::sleep(std::time::Duration::from_millis(100));
        hop.send(response(&forwarded, 200, "OK").as_bytes());
        let answer = client.recv();
        assert_eq!(status(&answer), Some(200), "{answer}");
        assert_eq!(header(&answer, "Call-ID"), Some("half@smuggling.test"));
    });
}
