//! `Proxy::handle` end to end in memory: one byte-string vector per RFC rule.
//!
//! Every forwarded or replied message is re-scanned, and the proxy's branch hash is masked as
//! `HASH` (its properties are tested in `branch`) so the expected bytes can be written out.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;
use crate::sip::{Message, Transport};

const PROXY: &str = "192.0.2.10:5060";

fn listener(addr: &str, transport: Transport) -> Listener {
    Listener {
        transport,
        addr: addr.parse().unwrap(),
        advertise: None,
    }
}

fn proxy_with(edit: impl FnOnce(&mut ProxyConfig)) -> Proxy {
    let mut config = ProxyConfig::new(listener(PROXY, Transport::Udp), [42; 16]);
    edit(&mut config);
    Proxy::new(config).unwrap()
}

fn proxy() -> Proxy {
    proxy_with(|_| {})
}

/// What came out: the outcome and the bytes, with our branch hashes masked.
struct Handled {
    outcome: Outcome,
    text: String,
}

fn run_on(p: &Proxy, raw: &str, source: &str, transport: Transport) -> Handled {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let local = p.config().listeners[0].addr;
    let input = Input {
        data: raw.as_bytes(),
        source: source.parse().unwrap(),
        local,
        transport,
        connection: None,
        now: Instant::now(),
    };
    let outcome = p.handle(input, &mut out);
    let len = match outcome {
        Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => t.len,
        Outcome::Drop(_) => 0,
    };
    let bytes = &out[..len];
    if len > 0 {
        Message::scan(bytes, transport.is_stream()).expect("output re-scans");
    }
    Handled {
        outcome,
        text: mask(&String::from_utf8_lossy(bytes)),
    }
}

fn run(p: &Proxy, raw: &str, source: &str) -> Handled {
    run_on(p, raw, source, Transport::Udp)
}

/// Replaces 16 hex digits after `z9hG4bKfv` (our branch) or `;tag=` (a stateless To tag)
/// with `HASH`.
fn mask(text: &str) -> String {
    let mut s = text.to_owned();
    for marker in ["z9hG4bKfv", ";tag="] {
        let mut from = 0;
        while let Some(i) = s[from..].find(marker) {
            let start = from + i + marker.len();
            let end = start + 16;
            let hex = |t: &str| t.bytes().all(|b| b.is_ascii_hexdigit());
            let next_is_hex = s.get(end..end + 1).is_some_and(hex);
            if s.get(start..end).is_some_and(hex) && !next_is_hex {
                s.replace_range(start..end, "HASH");
            }
            from = start;
        }
    }
    s
}

fn forwarded_to(r: &Handled) -> SocketAddr {
    match r.outcome {
        Outcome::Forward(t) => t.destination,
        other => panic!("not forwarded: {other:?}\n{}", r.text),
    }
}

fn replied(r: &Handled) -> (u16, SocketAddr) {
    match r.outcome {
        Outcome::Reply { status, transmit } => (status, transmit.destination),
        other => panic!("no reply: {other:?}"),
    }
}

fn dropped(r: &Handled) -> DropReason {
    match r.outcome {
        Outcome::Drop(reason) => reason,
        other => panic!("not dropped: {other:?}\n{}", r.text),
    }
}

/// A request with the usual transaction headers; `{extra}` lines go after Max-Forwards.
fn request(start: &str, extra: &str) -> String {
    let method = start.split(' ').next().unwrap();
    format!(
        "{start} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n{extra}To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

const TAIL: &str = "To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n";

const OUR_VIA: &str = "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfvHASH\r\n";

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
    assert!(
        r.text.contains("\r\nRoute: <sip:10.0.0.2;lr>\r\n"),
        "{}",
        r.text
    );
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
    assert!(
        r.text
            .contains("Max-Forwards: 69\r\nRoute: <sip:10.0.0.2;lr>\r\nTo:"),
        "{}",
        r.text
    );
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
    assert!(r.text.starts_with(&format!("OPTIONS sip:bob@10.0.0.7 SIP/2.0\r\n{OUR_VIA}Max-Forwards: 70\r\nVia: SIP/2.0/UDP 10.0.0.1")), "{}", r.text);
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
    assert!(
        r.text.starts_with("BYE sip:bob@10.0.0.7:5070 SIP/2.0\r\n"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("\r\nRoute: <sip:10.0.0.2;lr>\r\n"),
        "{}",
        r.text
    );
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
    assert!(
        r.text.starts_with(&format!(
            "INVITE sip:bob@10.0.0.7 SIP/2.0\r\nRecord-Route: <sip:192.0.2.10:5060;lr>\r\n{OUR_VIA}"
        )),
        "{}",
        r.text
    );
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
    assert!(
        r.text.starts_with(
            "INVITE sip:bob@[2001:db8::7] SIP/2.0\r\nRecord-Route: <sip:[2001:db8::10]:5060;lr>\r\n\
Record-Route: <sip:192.0.2.10:5060;lr>\r\nVia: SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bKfvHASH\r\n"
        ),
        "{}",
        r.text
    );
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
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let mut branch = |raw: &str| {
        let input = Input {
            data: raw.as_bytes(),
            source: "10.0.0.1:5060".parse().unwrap(),
            local: PROXY.parse().unwrap(),
            transport: Transport::Udp,
            connection: None,
            now: Instant::now(),
        };
        let Outcome::Forward(t) = p.handle(input, &mut out) else {
            panic!("not forwarded")
        };
        let text = String::from_utf8_lossy(&out[..t.len]).into_owned();
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
    assert!(r.text.contains("\r\nUnsupported: foo\r\n"), "{}", r.text);
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
    assert!(
        r.text.contains("Via: SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bK776asdhds;received=203.0.113.5\r\n"),
        "{}",
        r.text
    );
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

// ---- §16.11 / §18.2.2: responses ---------------------------------------------------------------

fn response(status: &str, vias: &str) -> String {
    format!(
        "SIP/2.0 {status}\r\n{vias}To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

const OURS: &str = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef";

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
    assert!(
        r.text
            .contains("\r\nv: SIP/2.0/UDP 10.0.0.1;rport=40000;received=203.0.113.5\r\n"),
        "{}",
        r.text
    );
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
    let input = Input {
        data: raw.as_bytes(),
        source: "10.0.0.1:5060".parse().unwrap(),
        local: PROXY.parse().unwrap(),
        transport: Transport::Udp,
        connection: None,
        now: Instant::now(),
    };
    let mut tiny = [0u8; 64];
    assert_eq!(
        p.handle(input, &mut tiny),
        Outcome::Drop(DropReason::OutputTooLarge)
    );
}

// ---- §18.2.2 on streams: the response goes back on the request's connection -----------------

fn handle_on(
    p: &Proxy,
    raw: &str,
    source: &str,
    transport: Transport,
    conn: Option<u64>,
) -> (Outcome, String) {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let input = Input {
        data: raw.as_bytes(),
        source: source.parse().unwrap(),
        local: p.config().listeners[0].addr,
        transport,
        connection: conn.map(ConnectionId),
        now: Instant::now(),
    };
    let outcome = p.handle(input, &mut out);
    let len = match outcome {
        Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => t.len,
        Outcome::Drop(_) => 0,
    };
    (outcome, String::from_utf8_lossy(&out[..len]).into_owned())
}

/// Turns a forwarded request into the response its next hop would send back.
fn response_to(forwarded: &str) -> String {
    let vias: String = forwarded
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    response("200 OK", &vias)
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

#[test]
fn oversized_stream_messages_get_513_from_their_headers_alone() {
    let p = proxy_with(|c| c.listeners = vec![listener(PROXY, Transport::Tcp)]);
    let head = request("MESSAGE sip:bob@10.0.0.7", "")
        .replace("Content-Length: 0", "Content-Length: 900000");
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let input = |data: &'static [u8]| Input {
        data,
        source: "10.0.0.1:40001".parse().unwrap(),
        local: PROXY.parse().unwrap(),
        transport: Transport::Tcp,
        connection: Some(ConnectionId(3)),
        now: Instant::now(),
    };
    let head: &'static str = Box::leak(head.into_boxed_str());
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

// ---- contact rewriting (issue 5) -------------------------------------------------------------

mod contact_rewriting {
    use std::sync::Arc;

    use super::*;
    use crate::contact::{ContactTable, ContactTableConfig, TOKEN_LEN, TokenKey};

    fn table(capacity: usize) -> Arc<ContactTable> {
        table_from(capacity, 1000)
    }

    /// A table whose entry ids start at `first` (random per run in production).
    fn table_from(capacity: usize, first: u64) -> Arc<ContactTable> {
        let mut config = ContactTableConfig::new(TokenKey::new([5; 16]), first);
        config.capacity = capacity;
        Arc::new(ContactTable::new(config, Instant::now()))
    }

    fn edge(table: &Arc<ContactTable>) -> Proxy {
        proxy_with(|c| {
            c.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
            c.contact = Some(ContactRewrite {
                table: Arc::clone(table),
                requests: true,
                responses: true,
            });
        })
    }

    fn register(contact: &str) -> String {
        request(
            "REGISTER sip:192.0.2.10",
            &format!("Contact: {contact}\r\n"),
        )
    }

    /// The token in `sip:<token>@192.0.2.10:5060` inside `text`.
    fn token_in(text: &str) -> String {
        let at = text.find("@192.0.2.10:5060").expect("a rewritten contact");
        text[at - TOKEN_LEN..at].to_owned()
    }

    #[test]
    fn register_contact_becomes_a_token_and_comes_back() {
        let t = table(100);
        let p = edge(&t);
        let raw = register("<sip:alice@10.9.9.9:5062;transport=udp>;expires=600;q=0.7");
        let r = run(&p, &raw, "203.0.113.5:40000");
        assert_eq!(forwarded_to(&r), "10.0.0.9:5060".parse().unwrap());
        let token = token_in(&r.text);
        assert!(
            r.text.contains(&format!(
                "\r\nContact: <sip:{token}@192.0.2.10:5060;transport=udp>;expires=600;q=0.7\r\n"
            )),
            "{}",
            r.text
        );
        assert!(!r.text.contains("10.9.9.9"), "the private address is gone");
        // A refresh (or a retransmission) gets the same token.
        let again = run(&p, &raw, "203.0.113.5:40000");
        assert_eq!(again.text, r.text);
        // The core calls the rewritten contact: it reaches the real source, original URI.
        let invite = request(&format!("INVITE sip:{token}@192.0.2.10:5060"), "")
            .replace("10.0.0.1:5060;branch", "10.0.0.9:5060;branch");
        let back = run(&p, &invite, "10.0.0.9:5060");
        assert_eq!(forwarded_to(&back), "203.0.113.5:40000".parse().unwrap());
        assert!(
            back.text
                .starts_with("INVITE sip:alice@10.9.9.9:5062;transport=udp SIP/2.0\r\n"),
            "{}",
            back.text
        );
        assert_eq!(t.counters().restores, 1);
    }

    #[test]
    fn forged_and_unknown_tokens_get_404() {
        let t = table(100);
        let p = edge(&t);
        let r = run(&p, &register("<sip:alice@10.9.9.9>"), "203.0.113.5:40000");
        let token = token_in(&r.text);
        let mut forged = token.clone().into_bytes();
        forged[3] = if forged[3] == b'a' { b'b' } else { b'a' };
        let forged = String::from_utf8(forged).unwrap();
        // Sealed with the same key by another table (an earlier run): valid, but unknown here.
        let earlier = edge(&table_from(100, 9_000_000));
        let unknown = token_in(&run(&earlier, &register("<sip:x@10.9.9.7>"), "203.0.113.9:1").text);
        for user in [forged, unknown] {
            let invite = request(&format!("INVITE sip:{user}@192.0.2.10"), "");
            let r = run(&p, &invite, "10.0.0.9:5060");
            assert_eq!(replied(&r).0, 404, "{user}");
        }
        assert_eq!(t.counters().forged, 1, "{:?}", t.counters());
        assert_eq!(t.counters().misses, 1, "{:?}", t.counters());
        assert_eq!(t.counters().restores, 0);
        // A user part that is not a token at all routes as usual (to the next hop).
        let plain = request(
            &format!("INVITE sip:{}@192.0.2.10", "a".repeat(TOKEN_LEN)),
            "",
        );
        assert_eq!(
            forwarded_to(&run(&p, &plain, "10.0.0.1:5060")),
            "10.0.0.9:5060".parse().unwrap()
        );
    }

    #[test]
    fn addr_spec_contacts_gain_brackets_and_wildcards_stay() {
        let t = table(100);
        let p = edge(&t);
        let r = run(
            &p,
            &register("sip:alice@10.9.9.9;expires=60"),
            "203.0.113.5:40000",
        );
        let token = token_in(&r.text);
        assert!(
            r.text.contains(&format!(
                "\r\nContact: <sip:{token}@192.0.2.10:5060>;expires=60\r\n"
            )),
            "{}",
            r.text
        );
        let star = register("*").replace("Max-Forwards: 70", "Expires: 0\r\nMax-Forwards: 70");
        let r = run(&p, &star, "203.0.113.5:40000");
        assert!(r.text.contains("\r\nContact: *\r\n"), "{}", r.text);
    }

    #[test]
    fn response_contacts_are_rewritten_but_not_a_registrars() {
        let t = table(100);
        let p = edge(&t);
        let vias = "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;received=203.0.113.5;rport=40000\r\nContact: <sip:bob@10.0.0.7>\r\n";
        let ok = response("200 OK", vias);
        let r = run(&p, &ok, "10.0.0.7:5060");
        let token = token_in(&r.text);
        assert!(
            r.text
                .contains(&format!("Contact: <sip:{token}@192.0.2.10:5060>")),
            "{}",
            r.text
        );
        let to_register = ok.replace("CSeq: 314159 INVITE", "CSeq: 314159 REGISTER");
        let r = run(&p, &to_register, "10.0.0.7:5060");
        assert!(r.text.contains("Contact: <sip:bob@10.0.0.7>"), "{}", r.text);
        let trying = response("100 Trying", vias);
        assert!(
            run(&p, &trying, "10.0.0.7:5060")
                .text
                .contains("<sip:bob@10.0.0.7>")
        );
    }

    #[test]
    fn our_own_tokens_are_not_rewritten_again() {
        let t = table(100);
        let p = edge(&t);
        let r = run(&p, &register("<sip:alice@10.9.9.9>"), "203.0.113.5:40000");
        let token = token_in(&r.text);
        let again = register(&format!("<sip:{token}@192.0.2.10:5060>"));
        let r2 = run(&p, &again, "10.0.0.9:5060");
        assert!(
            r2.text.contains(&format!("<sip:{token}@192.0.2.10:5060>")),
            "{}",
            r2.text
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_full_table_refuses_requests_with_503() {
        let t = table(1);
        let p = edge(&t);
        forwarded_to(&run(
            &p,
            &register("<sip:alice@10.9.9.9>"),
            "203.0.113.5:40000",
        ));
        let r = run(&p, &register("<sip:carol@10.9.9.8>"), "203.0.113.6:40000");
        assert_eq!(replied(&r).0, 503);
        assert!(r.text.starts_with("SIP/2.0 503 Contact Table Full\r\n"));
        assert_eq!(t.counters().refused_full, 1);
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
