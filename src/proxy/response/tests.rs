//! Responses end to end in memory: RFC 3261 §16.11 and §18.2.2 (with RFC 3581), over
//! datagrams and back on the request's connection.

use crate::proxy::test_support::*;

#[test]
fn response_pops_our_via_and_follows_the_next() {
    let raw = response(
        "180 Ringing",
        &format!(
            "Via: {OURS}\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=203.0.113.5\r\n"
        ),
    );
    let r = run(&proxy(), &raw, "10.0.0.7:5060");
    assert_eq!(forwarded_to(&r), "203.0.113.5:5070".parse().unwrap());
    assert_eq!(
        r.text,
        response(
            "180 Ringing",
            "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=203.0.113.5\r\n"
        )
    );
}

#[test]
fn response_with_several_vias_on_one_line() {
    let raw = response(
        "200 OK",
        &format!("v: {OURS} , SIP/2.0/UDP 10.0.0.1;rport=40000;received=203.0.113.5\r\n"),
    );
    let r = run(&proxy(), &raw, "10.0.0.7:5060");
    assert_eq!(forwarded_to(&r), "203.0.113.5:40000".parse().unwrap());
    r.assert_has("\r\nv: SIP/2.0/UDP 10.0.0.1;rport=40000;received=203.0.113.5\r\n");
}

#[test]
fn response_destination_rules() {
    // §18.2.2: maddr first, else received, else sent-by; port from rport, sent-by or 5060.
    let cases = [
        ("SIP/2.0/UDP 10.0.0.1;maddr=10.0.0.99", "10.0.0.99:5060"),
        ("SIP/2.0/UDP 10.0.0.1:5999", "10.0.0.1:5999"),
        ("SIP/2.0/UDP 10.0.0.1", "10.0.0.1:5060"),
        ("SIP/2.0/TLS 10.0.0.1;received=10.0.0.2", "10.0.0.2:5061"),
        ("SIP/2.0/UDP [2001:db8::1]:5080", "[2001:db8::1]:5080"),
        (
            "SIP/2.0/UDP h.example;received=2001:db8::2;rport=6000",
            "[2001:db8::2]:6000",
        ),
    ];
    let p = proxy_with(|c| {
        c.listeners
            .push(listener("[2001:db8::10]:5060", Transport::Udp));
        c.listeners
            .push(listener("192.0.2.10:5061", Transport::Tls));
    });
    for (next, want) in cases {
        let raw = response("200 OK", &format!("Via: {OURS}\r\nVia: {next}\r\n"));
        assert_eq!(
            forwarded_to(&run(&p, &raw, "10.0.0.7:5060")),
            want.parse().unwrap(),
            "{next}"
        );
    }
}

#[test]
fn responses_not_ours_are_discarded() {
    // §16.11: silently discard when the top Via is not this proxy's.
    let other_host = response(
        "200 OK",
        "Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKfv0123456789abcdef\r\n",
    );
    assert_eq!(
        dropped(&run(&proxy(), &other_host, "10.0.0.7:5060")),
        DropReason::ResponseNotOurs
    );
    let other_branch = response(
        "200 OK",
        "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKnotours\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n",
    );
    assert_eq!(
        dropped(&run(&proxy(), &other_branch, "10.0.0.7:5060")),
        DropReason::ResponseNotOurs
    );
    let only_ours = response("200 OK", &format!("Via: {OURS}\r\n"));
    assert_eq!(
        dropped(&run(&proxy(), &only_ours, "10.0.0.7:5060")),
        DropReason::ResponseForProxy
    );
    let unroutable = response(
        "200 OK",
        &format!("Via: {OURS}\r\nVia: SIP/2.0/UDP nowhere.example\r\n"),
    );
    assert_eq!(
        dropped(&run(&proxy(), &unroutable, "10.0.0.7:5060")),
        DropReason::ResponseUnroutable
    );
    let no_via = response("200 OK", "");
    assert_eq!(
        dropped(&run(&proxy(), &no_via, "10.0.0.7:5060")),
        DropReason::MalformedResponse
    );
}

#[test]
fn responses_are_forwarded_even_when_provisional() {
    let raw = response(
        "100 Trying",
        &format!("Via: {OURS}\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n"),
    );
    assert_eq!(
        forwarded_to(&run(&proxy(), &raw, "10.0.0.7:5060")),
        "10.0.0.1:5060".parse().unwrap()
    );
}

#[test]
fn responses_find_the_connection_their_request_came_on() {
    let p = proxy_with(|c| c.listeners.insert(0, listener(PROXY, Transport::Tcp)));
    let raw = request("INVITE sip:bob@10.0.0.7", "")
        .replace("SIP/2.0/UDP 10.0.0.1:5060", "SIP/2.0/TCP 10.0.0.1:5060");
    let (outcome, forwarded) = handle_on(&p, &raw, "10.0.0.1:40001", Transport::Tcp, Some(0x2a));
    match outcome {
        Outcome::Forward(t) => {
            assert_eq!(t.transport, Transport::Udp);
            assert_eq!(t.connection, None, "requests go by address");
        }
        other => panic!("{other:?}"),
    }
    assert!(forwarded.contains(";fvc=2a."), "{forwarded}");
    let (outcome, back) = handle_on(
        &p,
        &response_to(&forwarded),
        "10.0.0.7:5060",
        Transport::Udp,
        None,
    );
    match outcome {
        Outcome::Forward(t) => {
            assert_eq!(t.transport, Transport::Tcp);
            assert_eq!(t.connection, Some(ConnectionId(0x2a)));
            assert_eq!(t.destination, "10.0.0.1:5060".parse().unwrap());
        }
        other => panic!("{other:?}"),
    }
    assert!(!back.contains("fvc"), "our Via is gone: {back}");
    // A connection id edited downstream fails its tag and is ignored.
    let forged = response_to(&forwarded).replace(";fvc=2a.", ";fvc=2b.");
    match handle_on(&p, &forged, "10.0.0.7:5060", Transport::Udp, None).0 {
        Outcome::Forward(t) => assert_eq!(t.connection, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn our_via_is_recognised_even_when_a_peer_rewrote_it() {
    // Exact bytes take the fast path; other spacing and case take the full parse (§16.11).
    let next = "Via: SIP/2.0/UDP 10.0.0.1:5070;received=203.0.113.5\r\n";
    for ours in [
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef",
        "sip/2.0/udp 192.0.2.10:5060 ; branch=z9hG4bKfv0123456789abcdef",
        "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKfv0123456789abcdef;received=192.0.2.99",
    ] {
        let raw = response("180 Ringing", &format!("Via: {ours}\r\n{next}"));
        assert_eq!(
            forwarded_to(&run(&proxy(), &raw, "10.0.0.7:5060")),
            "203.0.113.5:5070".parse().unwrap(),
            "{ours}"
        );
    }
    // Our prefix with a hash that is not ours is not ours.
    for not_ours in [
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdeX",
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef0",
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123",
    ] {
        let raw = response("180 Ringing", &format!("Via: {not_ours}\r\n{next}"));
        assert_eq!(
            dropped(&run(&proxy(), &raw, "10.0.0.7:5060")),
            DropReason::ResponseNotOurs,
            "{not_ours}"
        );
    }
}
