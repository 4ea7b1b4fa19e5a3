//! Requests end to end in memory, one byte-string vector per rule of RFC 3261 §16.3–§16.6 and
//! §16.11, and RFC 3581 on the top Via.

use crate::proxy::test_support::*;

// ---- §16.6: forwarding by Route and Request-URI --------------------------------------------

#[test]
fn loose_route_is_followed_and_kept() {
    // §16.6 step 7: the next hop is the top Route (not ours, so it stays, §16.4).
    let raw = request(
        "INVITE sip:bob@biloxi.example.com",
        "Route: <sip:10.0.0.2:5080;lr>\r\n",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.2:5080".parse().unwrap());
    let want = format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n{OUR_VIA}\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\nMax-Forwards: 69\r\n\
Route: <sip:10.0.0.2:5080;lr>\r\n{TAIL}"
    );
    assert_eq!(r.text, want);
}

#[test]
fn request_uri_is_the_target_without_route() {
    let raw = request("INVITE sip:bob@10.0.0.7", "");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.7:5060".parse().unwrap());
}

#[test]
fn own_route_is_removed() {
    // §16.4: the first Route naming this proxy goes; the next one is the target.
    let raw = request(
        "BYE sip:bob@10.0.0.7",
        "Route: <sip:192.0.2.10;lr>, <sip:10.0.0.2;lr>\r\n",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.2:5060".parse().unwrap());
    r.assert_has("\r\nRoute: <sip:10.0.0.2;lr>\r\n");
    assert!(!r.text.contains("192.0.2.10;lr"));
}

#[test]
fn own_route_on_its_own_line_is_removed_whole() {
    let raw = request(
        "BYE sip:bob@10.0.0.7",
        "Route: <sip:192.0.2.10:5060;lr>\r\nRoute: <sip:10.0.0.2;lr>\r\n",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.2:5060".parse().unwrap());
    r.assert_has("Max-Forwards: 69\r\nRoute: <sip:10.0.0.2;lr>\r\nTo:");
}

#[test]
fn only_own_route_leaves_the_request_uri() {
    let raw = request(
        "BYE sip:bob@10.0.0.7:5070",
        "Route: <sip:192.0.2.10;lr>\r\n",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.7:5070".parse().unwrap());
    assert!(!r.text.contains("Route:"));
}

#[test]
fn max_forwards_is_added_when_absent() {
    // §16.6 step 3
    let raw = request("OPTIONS sip:bob@10.0.0.7", "").replace("Max-Forwards: 70\r\n", "");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    r.assert_starts(&format!(
        "OPTIONS sip:bob@10.0.0.7 SIP/2.0\r\n{OUR_VIA}Max-Forwards: 70\r\nVia: SIP/2.0/UDP 10.0.0.1"
    ));
}

#[test]
fn requests_for_the_proxy_go_to_the_next_hop() {
    // §16.5: a Request-URI naming this proxy; the configured next hop (the registrar).
    let p = proxy_with(|c| c.next_hop = Some(NextHop::parse("sip:10.0.0.9:5070").unwrap()));
    let raw = request("REGISTER sip:192.0.2.10", "");
    let r = run(&p, &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.9:5070".parse().unwrap());
    assert!(r.text.starts_with("REGISTER sip:192.0.2.10 SIP/2.0\r\n"));
    // Without a next hop there is nowhere to go.
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 404);
}

#[test]
fn options_ping_to_the_proxy_is_answered() {
    let raw = request("OPTIONS sip:192.0.2.10:5060", "");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r), (200, "10.0.0.1:5060".parse().unwrap()));
    assert!(r.text.starts_with("SIP/2.0 200 OK\r\n"));
}

#[test]
fn host_names_resolve_through_the_host_table() {
    let p = proxy_with(|c| {
        c.hosts
            .push(("core.example.net".into(), "10.0.0.8".parse().unwrap()))
    });
    let raw = request("INVITE sip:bob@core.example.net:5090", "");
    assert_eq!(
        forwarded_to(&run(&p, &raw, "10.0.0.1:5060")),
        "10.0.0.8:5090".parse().unwrap()
    );
    let raw = request("INVITE sip:bob@unknown.example.net", "");
    let r = run(&p, &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 503);
    assert!(
        r.text
            .starts_with("SIP/2.0 503 Unresolvable Destination\r\n")
    );
}

#[test]
fn maddr_overrides_the_host() {
    let raw = request("INVITE sip:bob@example.com;maddr=10.0.0.4", "");
    assert_eq!(
        forwarded_to(&run(&proxy(), &raw, "10.0.0.1:5060")),
        "10.0.0.4:5060".parse().unwrap()
    );
}

#[test]
fn transport_parameter_picks_the_listener() {
    let raw = request("INVITE sip:bob@10.0.0.7;transport=tcp", "");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 503, "no TCP listener");
    let p = proxy_with(|c| {
        c.listeners
            .push(listener("192.0.2.10:5060", Transport::Tcp))
    });
    let r = run(&p, &raw, "10.0.0.1:5060");
    match r.outcome {
        Outcome::Forward(t) => assert_eq!(t.transport, Transport::Tcp),
        other => panic!("{other:?}"),
    }
    assert!(
        r.text
            .contains("Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKfvHASH\r\n")
    );
}

#[test]
fn a_route_back_to_our_own_socket_is_a_loop() {
    let p = proxy_with(|c| {
        c.listeners[0].addr = "0.0.0.0:5060".parse().unwrap();
        c.listeners[0].advertise = Some(HostPort::parse("edge.example.net").unwrap());
    });
    let raw = request("INVITE sip:bob@127.0.0.1:5060", "");
    assert_eq!(replied(&run(&p, &raw, "10.0.0.1:5060")).0, 482);
}

// ---- §16.4 / §16.6 step 6: strict routing --------------------------------------------------

#[test]
fn strict_router_upstream_restores_the_request_uri() {
    // §16.4: the Request-URI is our Record-Route value; the real one is the last Route.
    let raw = request(
        "BYE sip:192.0.2.10:5060;lr",
        "Route: <sip:10.0.0.2;lr>, <sip:bob@10.0.0.7:5070>\r\n",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.2:5060".parse().unwrap());
    r.assert_starts("BYE sip:bob@10.0.0.7:5070 SIP/2.0\r\n");
    r.assert_has("\r\nRoute: <sip:10.0.0.2;lr>\r\n");
    assert!(!r.text.contains("bob@10.0.0.7:5070>"));
}

#[test]
fn strict_router_upstream_with_a_single_route() {
    let raw = request(
        "BYE sip:192.0.2.10;lr",
        "Route: <sip:bob@10.0.0.7:5070>\r\n",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.7:5070".parse().unwrap());
    assert!(r.text.starts_with("BYE sip:bob@10.0.0.7:5070 SIP/2.0\r\n"));
    assert!(!r.text.contains("Route:"));
}

#[test]
fn strict_next_hop_gets_the_route_as_request_uri() {
    // §16.6 step 6: a next hop without `lr` is a strict router.
    let raw = request(
        "INVITE sip:bob@biloxi.example.com",
        "Route: <sip:10.0.0.3:5062>, <sip:10.0.0.4;lr>\r\n",
    );
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.3:5062".parse().unwrap());
    let want = format!(
        "INVITE sip:10.0.0.3:5062 SIP/2.0\r\n{OUR_VIA}\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\nMax-Forwards: 69\r\n\
Route: <sip:10.0.0.4;lr>\r\nRoute: <sip:bob@biloxi.example.com>\r\n{TAIL}"
    );
    assert_eq!(r.text, want);
}

// ---- §16.6 step 4: Record-Route --------------------------------------------------------------

#[test]
fn record_route_on_initial_dialog_requests() {
    let p = proxy_with(|c| c.record_route = true);
    let raw = request("INVITE sip:bob@10.0.0.7", "");
    let r = run(&p, &raw, "10.0.0.1:5060");
    r.assert_starts(&format!(
        "INVITE sip:bob@10.0.0.7 SIP/2.0\r\nRecord-Route: <sip:192.0.2.10:5060;lr>\r\n{OUR_VIA}"
    ));
    let again = run(&p, &raw, "10.0.0.1:5060");
    assert_eq!(r.text, again.text, "identical across retransmissions");
    // Not in a dialog's later requests, nor on REGISTER.
    let in_dialog = raw.replace(
        "biloxi.example.com>\r\n",
        "biloxi.example.com>;tag=a6c85cf\r\n",
    );
    assert!(
        !run(&p, &in_dialog, "10.0.0.1:5060")
            .text
            .contains("Record-Route")
    );
    let register = request("REGISTER sip:10.0.0.7", "");
    assert!(
        !run(&p, &register, "10.0.0.1:5060")
            .text
            .contains("Record-Route")
    );
}

#[test]
fn record_route_twice_when_the_interface_changes() {
    let p = proxy_with(|c| {
        c.record_route = true;
        c.listeners
            .push(listener("[2001:db8::10]:5060", Transport::Udp));
    });
    let raw = request("INVITE sip:bob@[2001:db8::7]", "");
    let r = run(&p, &raw, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "[2001:db8::7]:5060".parse().unwrap());
    r.assert_starts("INVITE sip:bob@[2001:db8::7] SIP/2.0\r\nRecord-Route: <sip:[2001:db8::10]:5060;lr>\r\n\
Record-Route: <sip:192.0.2.10:5060;lr>\r\nVia: SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bKfvHASH\r\n");
    // The in-dialog request coming back carries both values on top; both are removed.
    let back = request(
        "BYE sip:alice@10.0.0.1",
        "Route: <sip:[2001:db8::10]:5060;lr>, <sip:192.0.2.10:5060;lr>\r\n",
    );
    let r = run(&p, &back, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.1:5060".parse().unwrap());
    assert!(!r.text.contains("Route:"), "{}", r.text);
}

// ---- §16.11: the stateless branch ------------------------------------------------------------

#[test]
fn branch_is_stable_and_shared_by_cancel() {
    let p = proxy();
    let branch = |raw: &str| {
        let (outcome, text) = handle_on(&p, raw, "10.0.0.1:5060", Transport::Udp, None);
        assert!(matches!(outcome, Outcome::Forward(_)), "{outcome:?}");
        let at = text.find("z9hG4bKfv").unwrap();
        text[at..at + 25].to_owned()
    };
    let invite = request("INVITE sip:bob@10.0.0.7", "");
    let cancel = request("CANCEL sip:bob@10.0.0.7", "");
    let b = branch(&invite);
    assert_eq!(b, branch(&invite), "retransmission");
    assert_eq!(b, branch(&cancel), "CANCEL matches its INVITE");
    assert_ne!(b, branch(&invite.replace("776asdhds", "776asdhdt")));
}

// ---- §16.3: validation -----------------------------------------------------------------------

#[test]
fn max_forwards_zero() {
    // §16.3 step 3: 483, except OPTIONS which the proxy may answer itself.
    let raw = request("INVITE sip:bob@10.0.0.7", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r), (483, "10.0.0.1:5060".parse().unwrap()));
    let want = "SIP/2.0 483 Too Many Hops\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=HASH\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nServer: ferrovia\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(r.text, want);
    let opt =
        request("OPTIONS sip:bob@10.0.0.7", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(replied(&run(&proxy(), &opt, "10.0.0.1:5060")).0, 200);
    let ack = request("ACK sip:bob@10.0.0.7", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(
        dropped(&run(&proxy(), &ack, "10.0.0.1:5060")),
        DropReason::AckNotForwarded
    );
}

#[test]
fn unknown_uri_scheme_is_416() {
    // §16.3 step 2
    for uri in ["mailto:bob@example.com", "http://example.com/"] {
        let raw = request(&format!("INVITE {uri}"), "");
        let r = run(&proxy(), &raw, "10.0.0.1:5060");
        assert_eq!(replied(&r).0, 416, "{uri}");
        assert!(r.text.starts_with("SIP/2.0 416 Unsupported URI Scheme\r\n"));
    }
    // tel: is routed by Route or the next hop.
    let tel = request("INVITE tel:+15551234", "");
    assert_eq!(replied(&run(&proxy(), &tel, "10.0.0.1:5060")).0, 416);
    let routed = request("INVITE tel:+15551234", "Route: <sip:10.0.0.2;lr>\r\n");
    assert_eq!(
        forwarded_to(&run(&proxy(), &routed, "10.0.0.1:5060")),
        "10.0.0.2:5060".parse().unwrap()
    );
}

#[test]
fn proxy_require_is_420_with_unsupported() {
    // §16.3 step 5
    let raw = request("INVITE sip:bob@10.0.0.7", "Proxy-Require: foo\r\n");
    let r = run(&proxy(), &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 420);
    r.assert_has("\r\nUnsupported: foo\r\n");
    // Not for ACK or CANCEL.
    let ack = request("ACK sip:bob@10.0.0.7", "Proxy-Require: foo\r\n");
    assert_eq!(
        forwarded_to(&run(&proxy(), &ack, "10.0.0.1:5060")),
        "10.0.0.7:5060".parse().unwrap()
    );
}

#[test]
fn missing_or_bad_transaction_fields_are_400() {
    let cases = [
        ("Call-ID: a84b4c76e66710\r\n", "", "Missing Call-ID"),
        ("CSeq: 314159 INVITE\r\n", "", "Missing CSeq"),
        ("CSeq: 314159 INVITE", "CSeq: x INVITE", "Bad CSeq"),
        ("CSeq: 314159 INVITE", "CSeq: 1 BYE", "CSeq Method Mismatch"),
        ("Max-Forwards: 70", "Max-Forwards: many", "Bad Max-Forwards"),
        (
            "INVITE sip:bob@10.0.0.7",
            "INVITE sip:bob@[bad",
            "Bad Request-URI",
        ),
    ];
    for (from, to, reason) in cases {
        let raw = request("INVITE sip:bob@10.0.0.7", "").replacen(from, to, 1);
        let r = run(&proxy(), &raw, "10.0.0.1:5060");
        assert_eq!(replied(&r).0, 400, "{reason}");
        assert!(
            r.text.starts_with(&format!("SIP/2.0 400 {reason}\r\n")),
            "{reason}: {}",
            r.text
        );
    }
    let raw = request(
        "INVITE sip:bob@10.0.0.7",
        "Route: <sip:10.0.0.2;lr>, junk\r\n",
    );
    assert!(
        run(&proxy(), &raw, "10.0.0.1:5060")
            .text
            .starts_with("SIP/2.0 400 Bad Route\r\n")
    );
}

// ---- RFC 3581 / §18.2.1 on requests, and where replies go ----------------------------------

#[test]
fn rport_and_received_on_forwarded_requests() {
    let raw = request("INVITE sip:bob@10.0.0.7", "").replace(
        "10.0.0.1:5060;branch=z9hG4bK776asdhds",
        "10.0.0.1:5060;rport;branch=z9hG4bK776asdhds",
    );
    let r = run(&proxy(), &raw, "203.0.113.5:40000");
    r.assert_has("Via: SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bK776asdhds;received=203.0.113.5\r\n");
    // The reply to a request from behind NAT goes to the source port (RFC 3581 §4).
    let nat = raw.replace("Max-Forwards: 70", "Max-Forwards: 0");
    let r = run(&proxy(), &nat, "203.0.113.5:40000");
    assert_eq!(replied(&r), (483, "203.0.113.5:40000".parse().unwrap()));
    assert!(
        r.text
            .contains(";rport=40000;branch=z9hG4bK776asdhds;received=203.0.113.5\r\n")
    );
    // Without rport: received only, and the reply goes to the sent-by port.
    let plain =
        request("INVITE sip:bob@10.0.0.7", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    let r = run(&proxy(), &plain, "203.0.113.5:40000");
    assert_eq!(replied(&r), (483, "203.0.113.5:5060".parse().unwrap()));
}

#[test]
fn local_replies_on_a_stream_use_its_connection() {
    let p = proxy_with(|c| c.listeners = vec![listener(PROXY, Transport::Tcp)]);
    let raw = request("INVITE sip:bob@10.0.0.7", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    match handle_on(&p, &raw, "10.0.0.1:40001", Transport::Tcp, Some(7)).0 {
        Outcome::Reply { transmit, status } => {
            assert_eq!(status, 483);
            assert_eq!(transmit.connection, Some(ConnectionId(7)));
            assert_eq!(transmit.destination, "10.0.0.1:40001".parse().unwrap());
        }
        other => panic!("{other:?}"),
    }
}

// ---- route-all-to: an edge in front of one core -------------------------------------------

#[test]
fn route_all_to_sends_every_request_to_one_place() {
    let p = proxy_with(|c| c.route_all_to = Some(NextHop::parse("sip:10.0.0.9:5070").unwrap()));
    let core: SocketAddr = "10.0.0.9:5070".parse().unwrap();
    // Addressed elsewhere, to the proxy, or with a Route of someone else's: all to the core,
    // the Request-URI and the foreign Route unchanged; a Route naming the proxy removed.
    for (ruri, route) in [
        ("INVITE sip:bob@198.51.100.7:5090", ""),
        ("REGISTER sip:192.0.2.10", ""),
        ("OPTIONS sip:192.0.2.10:5060", ""),
        (
            "BYE sip:bob@198.51.100.7",
            "Route: <sip:198.51.100.1;lr>\r\n",
        ),
        ("BYE sip:bob@198.51.100.7", "Route: <sip:192.0.2.10;lr>\r\n"),
    ] {
        let r = run(&p, &request(ruri, route), "10.0.0.1:5060");
        assert_eq!(forwarded_to(&r), core, "{ruri} {route}");
        r.assert_starts(&format!("{ruri} SIP/2.0\r\n"));
        assert_eq!(
            r.text.contains("198.51.100.1;lr"),
            route.contains("198.51.100.1")
        );
        assert!(!r.text.contains("Route: <sip:192.0.2.10;lr>"));
    }
}
