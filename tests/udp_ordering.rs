//! Responses of one flow keep their order through two workers: the kernel keeps each
//! 4-tuple on one reuse-port socket, and each worker forwards a batch in order.
//! (Multi-process proxies sharing one socket reorder back-to-back 180/200 pairs.)

mod runtime_support;

use std::net::UdpSocket;

use ferrovia::proxy::Direction;
use runtime_support::sip::{header, invite, response, status};
use runtime_support::{loopback_settings, peer, recv_text, start_proxy};

const CALLS: usize = 200;
/// Alice answers from several sockets so the flows spread over both workers.
const ALICE_SOCKETS: usize = 4;

#[test]
fn two_hundred_back_to_back_180_200_pairs_arrive_in_order() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(2));
    let bob = peer();
    let bob_addr = bob.local_addr().unwrap();
    let alices: Vec<UdpSocket> = (0..ALICE_SOCKETS).map(|_| peer()).collect();

    // Every INVITE goes out first, so the answers below leave back to back.
    let mut requests = Vec::with_capacity(CALLS);
    for call in 0..CALLS {
        let alice = &alices[call % ALICE_SOCKETS];
        let target = alice.local_addr().unwrap();
        bob.send_to(
            invite(bob_addr, target, &format!("call-{call}")).as_bytes(),
            proxy_addr,
        )
        .unwrap();
        requests.push(recv_text(alice).0);
    }
    for (call, request) in requests.iter().enumerate() {
        let alice = &alices[call % ALICE_SOCKETS];
        alice
            .send_to(response(request, 180, "Ringing").as_bytes(), proxy_addr)
            .unwrap();
        alice
            .send_to(response(request, 200, "OK").as_bytes(), proxy_addr)
            .unwrap();
    }

    let mut arrivals = Vec::with_capacity(2 * CALLS);
    for _ in 0..2 * CALLS {
        let (answer, _) = recv_text(&bob);
        let call = header(&answer, "Call-ID").unwrap_or_default().to_owned();
        arrivals.push((call, status(&answer).unwrap_or(0)));
    }
    for call in 0..CALLS {
        let id = format!("call-{call}@ferrovia.test");
        let seen: Vec<u16> = arrivals
            .iter()
            .filter(|(c, _)| *c == id)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(seen, [180, 200], "call {call} arrived as {seen:?}");
    }
    // Within one Alice socket (one flow), every answer keeps the order it was sent in.
    for a in 0..ALICE_SOCKETS {
        let sent: Vec<String> = (a..CALLS)
            .step_by(ALICE_SOCKETS)
            .map(|c| format!("call-{c}@ferrovia.test"))
            .collect();
        let got: Vec<&String> = arrivals
            .iter()
            .map(|(c, _)| c)
            .filter(|c| sent.contains(c))
            .collect();
        let expected: Vec<&String> = sent.iter().flat_map(|c| [c, c]).collect();
        assert_eq!(got, expected, "flow {a} was reordered");
    }
    let stopped = proxy.shutdown();
    let total = stopped.counters();
    assert_eq!(total.forwarded(Direction::Request), CALLS as u64);
    assert_eq!(total.forwarded(Direction::Response), 2 * CALLS as u64);
    assert_eq!(total.kernel_drops(), 0);
}
