//! A request goes out through the proxy and its response comes back, over real loopback
//! sockets, with one and with two workers; the proxy's counters agree.

mod runtime_support;

use std::net::SocketAddr;

use ferrovia::proxy::Direction;
use runtime_support::sip::{invite, response, status, top_via_sent_by, via_count};
use runtime_support::{loopback_settings, peer, recv_text, start_proxy};

/// Bob sends one INVITE through the proxy; Alice answers 200; Bob gets it.
fn one_transaction(workers: usize) {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(workers));
    let (bob, alice) = (peer(), peer());
    let (bob_addr, alice_addr) = (bob.local_addr().unwrap(), alice.local_addr().unwrap());

    bob.send_to(invite(bob_addr, alice_addr, "one").as_bytes(), proxy_addr)
        .unwrap();
    let (request, from) = recv_text(&alice);
    assert_eq!(
        from, proxy_addr,
        "forwarded from the proxy's listening socket"
    );
    assert!(request.starts_with("INVITE sip:alice@"), "{request}");
    assert_eq!(
        via_count(&request),
        2,
        "the proxy pushed its Via:\n{request}"
    );
    assert_eq!(top_via_sent_by(&request), Some(proxy_addr), "{request}");

    let reply = response(&request, 200, "OK");
    alice
        .send_to(reply.as_bytes(), top_via_sent_by(&request).unwrap())
        .unwrap();
    let (answer, from) = recv_text(&bob);
    assert_eq!(from, proxy_addr);
    assert_eq!(status(&answer), Some(200), "{answer}");
    assert_eq!(
        via_count(&answer),
        1,
        "the proxy removed its Via:\n{answer}"
    );
    assert_eq!(top_via_sent_by(&answer), Some(bob_addr), "{answer}");

    let total = proxy.shutdown().counters();
    assert_eq!(total.received(), 2);
    assert_eq!(
        (
            total.forwarded(Direction::Request),
            total.forwarded(Direction::Response)
        ),
        (1, 1)
    );
    assert_eq!((total.dropped_total(), total.send_errors()), (0, 0));
}

#[test]
fn request_out_response_back_with_one_worker() {
    one_transaction(1);
}

#[test]
fn request_out_response_back_with_two_workers() {
    one_transaction(2);
}

#[test]
fn every_client_flow_is_served_by_two_workers() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(2));
    let alice = peer();
    let alice_addr = alice.local_addr().unwrap();
    let clients: Vec<_> = (0..16).map(|_| peer()).collect();
    for (i, bob) in clients.iter().enumerate() {
        let from = bob.local_addr().unwrap();
        let call = format!("flow-{i}");
        bob.send_to(invite(from, alice_addr, &call).as_bytes(), proxy_addr)
            .unwrap();
        let (request, _) = recv_text(&alice);
        alice
            .send_to(response(&request, 180, "Ringing").as_bytes(), proxy_addr)
            .unwrap();
        let (answer, _) = recv_text(bob);
        assert_eq!(status(&answer), Some(180), "{answer}");
    }
    let stopped = proxy.shutdown();
    assert_eq!(stopped.workers, 2);
    assert_eq!(stopped.counters().forwarded_total(), 32);
}

#[test]
fn garbage_is_counted_and_never_stops_a_worker() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(2));
    let junk = peer();
    let payloads: [&[u8]; 4] = [b"", b"\x00\xff\xfe", b"hello there", &[b'A'; 1400]];
    for payload in payloads {
        junk.send_to(payload, proxy_addr).unwrap();
    }
    // A real exchange afterwards proves the workers are still serving.
    let (bob, alice) = (peer(), peer());
    let alice_addr = alice.local_addr().unwrap();
    bob.send_to(
        invite(bob.local_addr().unwrap(), alice_addr, "after").as_bytes(),
        proxy_addr,
    )
    .unwrap();
    let (request, _) = recv_text(&alice);
    assert!(request.starts_with("INVITE"), "{request}");
    assert!(proxy.is_running());
    let total = proxy.shutdown().counters();
    assert_eq!(total.received(), 5, "{total:?}");
    assert_eq!(total.dropped_total(), 4, "{total:?}");
    assert_eq!(total.forwarded(Direction::Request), 1, "{total:?}");
}

#[test]
fn a_closed_port_downstream_does_not_stop_forwarding() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(1));
    let closed: SocketAddr = {
        let gone = peer();
        gone.local_addr().unwrap()
    };
    let (bob, alice) = (peer(), peer());
    let bob_addr = bob.local_addr().unwrap();
    bob.send_to(invite(bob_addr, closed, "dead-end").as_bytes(), proxy_addr)
        .unwrap();
    // The ICMP port unreachable comes back toward the proxy; later traffic still flows.
    let alice_addr = alice.local_addr().unwrap();
    bob.send_to(invite(bob_addr, alice_addr, "alive").as_bytes(), proxy_addr)
        .unwrap();
    let (request, _) = recv_text(&alice);
    assert!(request.contains("alive@ferrovia.test"), "{request}");
    alice
        .send_to(response(&request, 200, "OK").as_bytes(), proxy_addr)
        .unwrap();
    let (answer, _) = recv_text(&bob);
    assert_eq!(status(&answer), Some(200), "{answer}");
    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded(Direction::Request), 2, "{total:?}");
    assert_eq!(total.forwarded(Direction::Response), 1, "{total:?}");
}

#[test]
fn a_send_the_kernel_refuses_is_counted_and_the_rest_still_go() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(1));
    let (bob, alice) = (peer(), peer());
    let (bob_addr, alice_addr) = (bob.local_addr().unwrap(), alice.local_addr().unwrap());
    // Broadcast without SO_BROADCAST: the kernel refuses the send (EACCES); nothing leaves.
    let broadcast: SocketAddr = "255.255.255.255:5060".parse().unwrap();
    bob.send_to(
        invite(bob_addr, broadcast, "refused").as_bytes(),
        proxy_addr,
    )
    .unwrap();
    bob.send_to(
        invite(bob_addr, alice_addr, "accepted").as_bytes(),
        proxy_addr,
    )
    .unwrap();
    let (request, _) = recv_text(&alice);
    assert!(request.contains("accepted@ferrovia.test"), "{request}");
    let total = proxy.shutdown().counters();
    assert_eq!(total.received(), 2, "{total:?}");
    assert_eq!(total.forwarded(Direction::Request), 1, "{total:?}");
    assert_eq!(total.send_errors(), 1, "{total:?}");
}

#[test]
fn ipv6_loopback_forwards_when_available() {
    let Ok(probe) = std::net::UdpSocket::bind("[::1]:0") else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    drop(probe);
    let mut settings = loopback_settings(2);
    settings.listen = vec!["udp:[::1]:0".parse().unwrap()];
    let (proxy, proxy_addr) = start_proxy(&settings);
    let bind6 = || {
        let s = std::net::UdpSocket::bind("[::1]:0").unwrap();
        s.set_read_timeout(Some(runtime_support::RECV_LIMIT))
            .unwrap();
        s
    };
    let (bob, alice) = (bind6(), bind6());
    let (bob_addr, alice_addr) = (bob.local_addr().unwrap(), alice.local_addr().unwrap());
    bob.send_to(invite(bob_addr, alice_addr, "six").as_bytes(), proxy_addr)
        .unwrap();
    let (request, _) = recv_text(&alice);
    assert_eq!(top_via_sent_by(&request), Some(proxy_addr), "{request}");
    alice
        .send_to(response(&request, 200, "OK").as_bytes(), proxy_addr)
        .unwrap();
    let (answer, _) = recv_text(&bob);
    assert_eq!(status(&answer), Some(200), "{answer}");
    assert_eq!(proxy.shutdown().counters().forwarded_total(), 2);
}

/// RFC 5626 §4.4.2 / §8.4: a phone's STUN keep-alive on the SIP port gets a Binding success
/// response whose XOR-MAPPED-ADDRESS is the address it was seen from; other STUN is a
/// counted drop, and SIP on the same port still flows.
#[test]
fn a_stun_keepalive_on_the_sip_port_is_answered_with_the_source_address() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(1));
    let phone = peer();
    let phone_addr = phone.local_addr().unwrap();
    let txid = *b"keepalive-01";
    let mut binding = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    binding.extend_from_slice(&txid);
    phone.send_to(&binding, proxy_addr).unwrap();
    let mut buf = [0u8; 256];
    let (len, from) = phone.recv_from(&mut buf).unwrap();
    assert_eq!(from, proxy_addr);
    let answer = &buf[..len];
    assert_eq!(
        &answer[..2],
        &[0x01, 0x01],
        "Binding success: {answer:02x?}"
    );
    assert_eq!(&answer[8..20], &txid);
    assert_eq!(&answer[20..26], &[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
    let port = u16::from_be_bytes([answer[26], answer[27]]) ^ 0x2112;
    let ip: Vec<u8> = answer[28..32]
        .iter()
        .zip([0x21, 0x12, 0xa4, 0x42])
        .map(|(a, k)| a ^ k)
        .collect();
    let mapped = SocketAddr::from(([ip[0], ip[1], ip[2], ip[3]], port));
    assert_eq!(mapped, phone_addr);
    // A Binding indication is STUN but not a request: dropped, counted.
    let mut indication = binding.clone();
    indication[1] = 0x11;
    phone.send_to(&indication, proxy_addr).unwrap();
    // SIP still flows on the same port.
    let alice = peer();
    let alice_addr = alice.local_addr().unwrap();
    phone
        .send_to(
            invite(phone_addr, alice_addr, "stun").as_bytes(),
            proxy_addr,
        )
        .unwrap();
    let (request, _) = recv_text(&alice);
    assert!(request.starts_with("INVITE"), "{request}");
    let total = proxy.shutdown().counters();
    assert_eq!(total.replied(ferrovia::proxy::STUN_REPLY_STATUS), 1);
    assert_eq!(total.dropped(ferrovia::proxy::DropReason::StunIgnored), 1);
}
