//! Parked messages through the shipping service, over loopback: a request for a host name
//! outside the static table parks until a test resolver (a side service) answers. A delayed
//! answer lets later messages of the same flow pass first and keeps their order; no answer
//! times out with 503; a full parking area answers 503 at once; a retransmission while parked
//! is absorbed; an answer after the timeout is ignored; shutdown drops and counts what is
//! still parked.

mod runtime_support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ferrovia::proxy::{Answer, DropReason, ParkingLimits, Query, SideKind};
use ferrovia::runtime::{Questions, SideService};
use ferrovia::service::{Service, ServiceOptions};
use ferrovia::settings::Settings;
use runtime_support::sip::status;
use runtime_support::{
    RECV_LIMIT, loopback_settings, peer, recv_text, start_service_with, wait_for_received,
};

/// Answers `slow.test` with 127.0.0.1 after `delay`, `gone.test` with "no address", and
/// never answers anything else.
struct TestResolver {
    delay: Duration,
}

impl SideService for TestResolver {
    fn answer(&mut self, query: &Query) -> Option<Answer> {
        let Query::Resolve(name) = query else {
            return None;
        };
        if name.is(b"slow.test") {
            std::thread::sleep(self.delay);
            return Some(Answer::Address(IpAddr::from([127, 0, 0, 1])));
        }
        name.is(b"gone.test").then_some(Answer::NotFound)
    }
}

/// A proxy on loopback whose resolver is a [`TestResolver`].
fn start(delay: Duration, parking: ParkingLimits) -> (Service, SocketAddr) {
    let settings = Settings {
        parking,
        ..loopback_settings(1)
    };
    let options = ServiceOptions {
        resolver: Some(Box::new(TestResolver { delay })),
        ..ServiceOptions::default()
    };
    let service = start_service_with(&settings, options);
    let addr = service.local_addrs()[0];
    (service, addr)
}

fn limits(messages: usize, timeout: Duration) -> ParkingLimits {
    ParkingLimits {
        messages,
        bytes: 1 << 20,
        timeout,
    }
}

/// A MESSAGE from `from` for `sip:alice@<host>:<port>`; `call` names it.
fn message(from: SocketAddr, host: &str, port: u16, call: &str) -> String {
    format!(
        "MESSAGE sip:alice@{host}:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@{from}>;tag=b-{call}\r\n\
         To: <sip:alice@{host}>\r\n\
         Call-ID: {call}@ferrovia.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn call_id(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .unwrap_or_default()
        .to_owned()
}

fn nothing_arrives(socket: &UdpSocket, within: Duration) {
    socket.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "nothing more should arrive"
    );
    socket.set_read_timeout(Some(RECV_LIMIT)).unwrap();
}

#[test]
fn a_delayed_answer_lets_the_flow_pass_in_order_then_forwards() {
    let (proxy, addr) = start(Duration::from_millis(300), limits(16, RECV_LIMIT));
    let (bob, alice) = (peer(), peer());
    let (from, port) = (
        bob.local_addr().unwrap(),
        alice.local_addr().unwrap().port(),
    );
    bob.send_to(message(from, "slow.test", port, "parked").as_bytes(), addr)
        .unwrap();
    for call in ["next-1", "next-2", "next-3"] {
        bob.send_to(message(from, "127.0.0.1", port, call).as_bytes(), addr)
            .unwrap();
    }
    let order: Vec<String> = (0..4).map(|_| call_id(&recv_text(&alice).0)).collect();
    assert_eq!(
        order,
        [
            "next-1@ferrovia.test",
            "next-2@ferrovia.test",
            "next-3@ferrovia.test",
            "parked@ferrovia.test"
        ]
    );
    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded_total(), 4, "{total:?}");
    assert_eq!(total.dropped_total(), 0, "{total:?}");
}

#[test]
fn no_answer_times_out_with_503_and_no_address_is_503_at_once() {
    let timeout = Duration::from_millis(200);
    let (proxy, addr) = start(Duration::ZERO, limits(16, timeout));
    let bob = peer();
    let from = bob.local_addr().unwrap();
    let sent = Instant::now();
    bob.send_to(message(from, "never.test", 5060, "never").as_bytes(), addr)
        .unwrap();
    let (reply, _) = recv_text(&bob);
    assert!(sent.elapsed() >= timeout, "answered before the timeout");
    assert!(
        reply.starts_with("SIP/2.0 503 Unresolvable Destination\r\n"),
        "{reply}"
    );
    bob.send_to(message(from, "gone.test", 5060, "gone").as_bytes(), addr)
        .unwrap();
    let (reply, _) = recv_text(&bob);
    assert_eq!(status(&reply), Some(503), "{reply}");
    let total = proxy.shutdown().counters();
    assert_eq!(total.replied(503), 2, "{total:?}");
}

#[test]
fn a_full_parking_area_answers_503_at_once() {
    let (proxy, addr) = start(Duration::ZERO, limits(2, RECV_LIMIT));
    let bob = peer();
    let from = bob.local_addr().unwrap();
    for call in ["p1", "p2", "p3"] {
        bob.send_to(message(from, "never.test", 5060, call).as_bytes(), addr)
            .unwrap();
    }
    let (reply, _) = recv_text(&bob);
    assert!(
        reply.starts_with("SIP/2.0 503 Resolver Busy\r\n"),
        "{reply}"
    );
    assert_eq!(call_id(&reply), "p3@ferrovia.test");
    nothing_arrives(&bob, Duration::from_millis(100));
    let total = proxy.shutdown().counters();
    assert_eq!(total.dropped(DropReason::ParkedAtShutdown), 2, "{total:?}");
}

#[test]
fn a_retransmission_while_parked_is_absorbed() {
    let (proxy, addr) = start(Duration::from_millis(300), limits(16, RECV_LIMIT));
    let (bob, alice) = (peer(), peer());
    let (from, port) = (
        bob.local_addr().unwrap(),
        alice.local_addr().unwrap().port(),
    );
    let request = message(from, "slow.test", port, "again");
    bob.send_to(request.as_bytes(), addr).unwrap();
    bob.send_to(request.as_bytes(), addr).unwrap();
    let (forwarded, _) = recv_text(&alice);
    assert_eq!(call_id(&forwarded), "again@ferrovia.test");
    nothing_arrives(&alice, Duration::from_millis(400));
    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded_total(), 1, "{total:?}");
    assert_eq!(
        total.dropped(DropReason::ParkedRetransmission),
        1,
        "{total:?}"
    );
}

#[test]
fn shutdown_drops_and_counts_parked_messages() {
    let (proxy, addr) = start(Duration::ZERO, limits(16, RECV_LIMIT));
    let bob = peer();
    let from = bob.local_addr().unwrap();
    for call in ["s1", "s2", "s3"] {
        bob.send_to(message(from, "never.test", 5060, call).as_bytes(), addr)
            .unwrap();
    }
    wait_for_received(&proxy, 3);
    let total = proxy.shutdown().counters();
    assert_eq!(total.dropped(DropReason::ParkedAtShutdown), 3, "{total:?}");
    assert_eq!(total.replied_total(), 0, "{total:?}");
}

#[test]
fn an_answer_after_the_timeout_is_ignored() {
    let (proxy, addr) = start(
        Duration::from_millis(300),
        limits(16, Duration::from_millis(100)),
    );
    let (bob, alice) = (peer(), peer());
    let (from, port) = (
        bob.local_addr().unwrap(),
        alice.local_addr().unwrap().port(),
    );
    bob.send_to(message(from, "slow.test", port, "late").as_bytes(), addr)
        .unwrap();
    let (reply, _) = recv_text(&bob);
    assert!(
        reply.starts_with("SIP/2.0 503 Unresolvable Destination\r\n"),
        "{reply}"
    );
    nothing_arrives(&alice, Duration::from_millis(500));
    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded_total(), 0, "{total:?}");
    assert_eq!(total.replied(503), 1, "{total:?}");
}

/// Keeps every question until it holds two, then answers them from another thread in the
/// reverse order: a service that owns its loop (`SideService::run`), as a resolver with
/// several queries in flight does.
struct Reversing;

impl SideService for Reversing {
    fn run(self: Box<Self>, questions: Questions) {
        let replier = questions.replier();
        let mut held = Vec::new();
        while let Some(question) = questions.recv() {
            held.push(question.asker());
            if held.len() == 2 {
                let replier = replier.clone();
                let askers = std::mem::take(&mut held);
                std::thread::spawn(move || {
                    for asker in askers.into_iter().rev() {
                        assert!(replier.reply(asker, Answer::Address([127, 0, 0, 1].into())));
                    }
                })
                .join()
                .unwrap();
            }
        }
    }
}

#[test]
fn a_service_that_owns_its_loop_answers_out_of_order() {
    let settings = Settings {
        parking: limits(16, RECV_LIMIT),
        ..loopback_settings(1)
    };
    let options = ServiceOptions {
        side: vec![(SideKind::Resolve, Box::new(Reversing))],
        ..ServiceOptions::default()
    };
    let proxy = start_service_with(&settings, options);
    let addr = proxy.local_addrs()[0];
    let (bob, alice) = (peer(), peer());
    let (from, port) = (
        bob.local_addr().unwrap(),
        alice.local_addr().unwrap().port(),
    );
    for call in ["first", "second"] {
        bob.send_to(message(from, "far.test", port, call).as_bytes(), addr)
            .unwrap();
        wait_for_received(&proxy, if call == "first" { 1 } else { 2 });
    }
    let order: Vec<String> = (0..2).map(|_| call_id(&recv_text(&alice).0)).collect();
    assert_eq!(order, ["second@ferrovia.test", "first@ferrovia.test"]);
    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded_total(), 2, "{total:?}");
}
