//! Forwarding over TCP and across transports, over real loopback sockets, on IPv4 and IPv6:
//! TCP → TCP, UDP → TCP and TCP → UDP, with this proxy's Via naming the transport it left
//! over and Record-Route doubled when the transport changes; and responses that return over
//! their request's connection even when they reach the worker that does not own it.

mod runtime_support;

use std::net::{SocketAddr, UdpSocket};

use ferrovia::proxy::Direction;
use ferrovia::record::StreamEvent;
use runtime_support::recv_text;
use runtime_support::sip::{headers, invite_over, response, status, top_via_sent_by, via_count};
use runtime_support::tcp::{
    DualProxy, Family, NextHop, SipStream, dual_settings, host, on_each_family, start_dual,
};

fn proxy(family: Family, workers: usize) -> DualProxy {
    let mut settings = dual_settings(family, workers);
    settings.record_route = true;
    start_dual(&settings)
}

/// The top Via's transport and sent-by, e.g. ("TCP", 127.0.0.1:5060).
fn top_via(message: &str) -> (String, SocketAddr) {
    let value = headers(message, "Via").next().expect("a Via");
    let protocol = value.split_whitespace().next().unwrap_or_default();
    let transport = protocol.rsplit('/').next().unwrap_or_default().to_owned();
    (transport, top_via_sent_by(message).expect("a sent-by"))
}

/// An OPTIONS for the proxy itself (answered 200 there, RFC 3261 §11).
fn options(from: SocketAddr, proxy: SocketAddr) -> String {
    let (from, to) = (host(from), host(proxy));
    format!(
        "OPTIONS sip:{to};transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP {from};branch=z9hG4bK-o\r\n\
         Max-Forwards: 70\r\nFrom: <sip:c@{from}>;tag=o\r\nTo: <sip:{to}>\r\n\
         Call-ID: options@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

fn record_routes(message: &str) -> Vec<String> {
    headers(message, "Record-Route")
        .map(str::to_owned)
        .collect()
}

#[test]
fn tcp_in_tcp_out_and_the_responses_come_back_on_the_connection() {
    on_each_family("tcp_to_tcp", |family| {
        let proxy = proxy(family, 2);
        let next = NextHop::bind(family);
        let mut client = SipStream::connect(proxy.tcp);
        let me = client.local_addr();
        client.send(invite_over("TCP", me, next.addr(), "tcp", "t2t").as_bytes());

        let mut hop = next.accept();
        let request = hop.recv();
        assert_eq!(via_count(&request), 2, "{request}");
        assert_eq!(top_via(&request), ("TCP".into(), proxy.tcp), "{request}");
        assert!(
            headers(&request, "Via").next().unwrap().contains(";fvc="),
            "{request}"
        );
        let tcp_rr = format!("<sip:{};transport=tcp;lr>", host(proxy.tcp));
        assert_eq!(
            record_routes(&request),
            [tcp_rr],
            "one interface, one Record-Route"
        );

        hop.send(response(&request, 180, "Ringing").as_bytes());
        hop.send(response(&request, 200, "OK").as_bytes());
        for want in [180, 200] {
            let answer = client.recv();
            assert_eq!(status(&answer), Some(want), "{answer}");
            assert_eq!(via_count(&answer), 1, "{answer}");
        }
        let total = proxy.server.shutdown().counters();
        assert_eq!(
            (
                total.forwarded(Direction::Request),
                total.forwarded(Direction::Response)
            ),
            (1, 2)
        );
        assert_eq!(total.stream(StreamEvent::Accepted), 1);
        assert_eq!(total.stream(StreamEvent::Connected), 1);
        assert_eq!(total.send_errors(), 0, "{total:?}");
    });
}

#[test]
fn udp_in_tcp_out_records_both_interfaces() {
    on_each_family("udp_to_tcp", |family| {
        let proxy = proxy(family, 2);
        let next = NextHop::bind(family);
        let client = family.udp_peer();
        let me = client.local_addr().unwrap();
        let invite = invite_over("UDP", me, next.addr(), "tcp", "u2t");
        client.send_to(invite.as_bytes(), proxy.udp).unwrap();

        let mut hop = next.accept();
        let request = hop.recv();
        assert_eq!(top_via(&request), ("TCP".into(), proxy.tcp), "{request}");
        let want = [
            format!("<sip:{};transport=tcp;lr>", host(proxy.tcp)),
            format!("<sip:{};lr>", host(proxy.udp)),
        ];
        assert_eq!(
            record_routes(&request),
            want,
            "the side facing the next hop first"
        );

        hop.send(response(&request, 200, "OK").as_bytes());
        let (answer, from) = recv_text(&client);
        assert_eq!(from, proxy.udp, "the response leaves over UDP");
        assert_eq!(status(&answer), Some(200), "{answer}");
        assert_eq!(top_via(&answer), ("UDP".into(), me), "{answer}");
    });
}

#[test]
fn tcp_in_udp_out_records_both_interfaces() {
    on_each_family("tcp_to_udp", |family| {
        let proxy = proxy(family, 2);
        let server = family.udp_peer();
        let mut client = SipStream::connect(proxy.tcp);
        let me = client.local_addr();
        let server_addr = server.local_addr().unwrap();
        client.send(invite_over("TCP", me, server_addr, "udp", "t2u").as_bytes());

        let (request, from) = recv_text(&server);
        assert_eq!(from, proxy.udp, "the request leaves over UDP");
        assert_eq!(top_via(&request), ("UDP".into(), proxy.udp), "{request}");
        let want = [
            format!("<sip:{};lr>", host(proxy.udp)),
            format!("<sip:{};transport=tcp;lr>", host(proxy.tcp)),
        ];
        assert_eq!(record_routes(&request), want);

        server
            .send_to(response(&request, 200, "OK").as_bytes(), proxy.udp)
            .unwrap();
        let answer = client.recv();
        assert_eq!(status(&answer), Some(200), "{answer}");
        assert_eq!(top_via(&answer), ("TCP".into(), me), "{answer}");
    });
}

/// With two workers, a UDP response lands on whichever worker the kernel hashes its flow to;
/// when that is not the worker holding the client's connection, it is handed over. Four
/// clients talk to sixteen servers: every response must reach its client, and some must
/// have crossed workers (unless all twenty flows hashed to one worker: 1 in 2^19).
#[test]
fn responses_cross_workers_to_their_connection() {
    on_each_family("cross_worker", |family| {
        let proxy = proxy(family, 2);
        let servers: Vec<UdpSocket> = (0..16).map(|_| family.udp_peer()).collect();
        let mut clients: Vec<SipStream> = (0..4).map(|_| SipStream::connect(proxy.tcp)).collect();
        for (c, client) in clients.iter_mut().enumerate() {
            for (s, server) in servers.iter().enumerate() {
                let to = server.local_addr().unwrap();
                let call = format!("x-{c}-{s}");
                client.send(invite_over("TCP", client.local_addr(), to, "udp", &call).as_bytes());
                let (request, _) = recv_text(server);
                server
                    .send_to(response(&request, 200, "OK").as_bytes(), proxy.udp)
                    .unwrap();
                let answer = client.recv();
                assert_eq!(status(&answer), Some(200), "{answer}");
                assert!(answer.contains(&call), "{answer}");
            }
        }
        let total = proxy.server.shutdown().counters();
        assert_eq!(total.forwarded(Direction::Response), 64, "{total:?}");
        assert!(total.stream(StreamEvent::HandedOff) > 0, "{total:?}");
        assert_eq!(
            total.stream(StreamEvent::HandedOff),
            total.stream(StreamEvent::HandoffReceived),
            "{total:?}"
        );
        assert_eq!(total.stream(StreamEvent::HandoffOverflow), 0);
    });
}

/// A request toward a client that connected to us reuses the client's connection (the
/// client's address is the connection's peer), whichever worker the request reaches.
#[test]
fn requests_to_a_connected_client_reuse_its_connection() {
    on_each_family("reuse_client", |family| {
        let proxy = proxy(family, 2);
        let mut client = SipStream::connect(proxy.tcp);
        let me = client.local_addr();
        // An OPTIONS ping answered by the proxy proves the connection was accepted (it is
        // known by its peer address from then on).
        client.send(options(me, proxy.tcp).as_bytes());
        assert_eq!(status(&client.recv()), Some(200));
        let callers: Vec<UdpSocket> = (0..4).map(|_| family.udp_peer()).collect();
        for (i, caller) in callers.iter().enumerate() {
            let from = caller.local_addr().unwrap();
            let call = format!("in-{i}");
            let invite = invite_over("UDP", from, me, "tcp", &call);
            caller.send_to(invite.as_bytes(), proxy.udp).unwrap();
            let request = client.recv();
            assert!(request.contains(&call), "{request}");
            assert_eq!(top_via(&request), ("TCP".into(), proxy.tcp), "{request}");
        }
        let total = proxy.server.shutdown().counters();
        assert_eq!(total.stream(StreamEvent::Connected), 0, "no new connection");
        assert_eq!(total.forwarded(Direction::Request), 4);
    });
}
