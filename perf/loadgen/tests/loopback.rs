//! Black-box runs over real loopback sockets (port 0): sender → reflector directly, and
//! sender → relay → reflector, plus a request the upstream originates finding its client.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferrovia_loadgen::reflector::{self, ReflectorConfig};
use ferrovia_loadgen::relay::{self, RelayConfig};
use ferrovia_loadgen::sender::{SendPlan, Sender};
use ferrovia_loadgen::sip::{Method, RequestSpec, RunId};

fn reflector_config() -> ReflectorConfig {
    ReflectorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: 1,
        batch: 32,
        duration: Duration::from_secs(30),
    }
}

fn relay_config(upstream: SocketAddr, threads: usize) -> RelayConfig {
    RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        threads,
        batch: 32,
        max_flows: 64,
        idle: Duration::from_secs(30),
        duration: Duration::from_secs(30),
    }
}

fn plan(reflector: SocketAddr, method: Method, count: u64) -> SendPlan {
    SendPlan {
        spec: RequestSpec {
            method,
            reflector,
            route: true,
            size: 900,
            run: RunId(0),
        },
        rate: 20_000,
        count,
        duration: Duration::from_secs(5),
        grace: Duration::from_secs(2),
    }
}

#[test]
fn every_request_sent_straight_to_the_reflector_is_answered_once() {
    let config = reflector_config();
    let sockets = reflector::bind(&config).unwrap();
    let reflector_addr = sockets[0].local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let served = s.spawn(|| reflector::run(sockets, &config, &stop).unwrap());
        let mut sender = Sender::open(reflector_addr, 8, 16).unwrap();
        let report = sender.run(&plan(reflector_addr, Method::Invite, 2_000), &stop);
        stop.store(true, Ordering::Relaxed);
        let report = report.unwrap();
        let counts = served.join().unwrap();
        assert_eq!(
            (report.sent, report.answered, report.lost),
            (2_000, 2_000, 0)
        );
        assert_eq!(report.duplicates, 0);
        assert_eq!(report.rtt.len(), 2_000);
        assert!(report.request_bytes >= 900);
        assert_eq!(
            (counts.received, counts.answered, counts.malformed),
            (2_000, 2_000, 0)
        );
    });
}

#[test]
fn a_sender_can_send_from_another_loopback_address() {
    let config = reflector_config();
    let sockets = reflector::bind(&config).unwrap();
    let reflector_addr = sockets[0].local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let served = s.spawn(|| reflector::run(sockets, &config, &stop).unwrap());
        let source = "127.0.0.2".parse().unwrap();
        let mut sender = Sender::open_from(reflector_addr, Some(source), 2, 8).unwrap();
        let report = sender.run(&plan(reflector_addr, Method::Options, 200), &stop);
        stop.store(true, Ordering::Relaxed);
        let report = report.unwrap();
        served.join().unwrap();
        assert_eq!((report.sent, report.answered), (200, 200));
    });
}

#[test]
fn consecutive_runs_on_one_sender_each_match_their_own_answers() {
    let config = reflector_config();
    let sockets = reflector::bind(&config).unwrap();
    let reflector_addr = sockets[0].local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let served = s.spawn(|| reflector::run(sockets, &config, &stop).unwrap());
        let mut sender = Sender::open(reflector_addr, 4, 8).unwrap();
        let first = sender.run(&plan(reflector_addr, Method::Options, 500), &stop);
        let second = sender.run(&plan(reflector_addr, Method::Options, 700), &stop);
        stop.store(true, Ordering::Relaxed);
        served.join().unwrap();
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!((first.answered, first.lost), (500, 0));
        assert_eq!(
            (second.answered, second.lost, second.counts.unknown),
            (700, 0, 0)
        );
    });
}

#[test]
fn one_reflector_thread_answers_on_several_addresses_each_from_its_own() {
    let config = reflector_config();
    let more: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap(); 2];
    let sets = reflector::bind_many(&config, &more).unwrap();
    assert_eq!((sets.len(), sets[0].len()), (1, 3));
    let addrs: Vec<SocketAddr> = sets[0].iter().map(|s| s.local_addr().unwrap()).collect();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let served = s.spawn(|| reflector::run_sets(sets, &config, &stop).unwrap());
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for &addr in &addrs {
            let options = format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-{}\r\n\
                 From: <sip:a@b>;tag=1\r\nTo: <sip:{addr}>\r\nCall-ID: c{}\r\n\
                 CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                client.local_addr().unwrap(),
                addr.port(),
                addr.port()
            );
            client.send_to(options.as_bytes(), addr).unwrap();
            let (bytes, from) = recv_one(&client);
            assert!(bytes.starts_with(b"SIP/2.0 200"), "{bytes:?}");
            // The answer leaves from the address asked, as a destination's own would.
            assert_eq!(from, addr);
        }
        stop.store(true, Ordering::Relaxed);
        let counts = served.join().unwrap();
        assert_eq!((counts.received, counts.answered), (3, 3));
    });
}

#[test]
fn the_relay_carries_every_request_and_answer_through_two_threads() {
    let reflector_cfg = reflector_config();
    let reflector_sockets = reflector::bind(&reflector_cfg).unwrap();
    let reflector_addr = reflector_sockets[0].local_addr().unwrap();
    let relay_cfg = relay_config(reflector_addr, 2);
    let listeners = relay::bind(&relay_cfg).unwrap();
    let relay_addr = listeners[0].local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let served = s.spawn(|| reflector::run(reflector_sockets, &reflector_cfg, &stop).unwrap());
        let relayed = s.spawn(|| relay::run(listeners, &relay_cfg, &stop).unwrap());
        let mut sender = Sender::open(relay_addr, 16, 16).unwrap();
        let report = sender.run(&plan(reflector_addr, Method::Invite, 3_000), &stop);
        stop.store(true, Ordering::Relaxed);
        let report = report.unwrap();
        let (reflected, relay_counts) = (served.join().unwrap(), relayed.join().unwrap());
        assert_eq!(
            (report.sent, report.answered, report.lost),
            (3_000, 3_000, 0)
        );
        assert_eq!(reflected.answered, 3_000);
        assert_eq!((relay_counts.up, relay_counts.down), (3_000, 3_000));
        assert_eq!(relay_counts.flows_opened, 16);
    });
}

/// Receives one datagram within a few seconds.
fn recv_one(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = socket.recv_from(&mut buf).unwrap();
    (buf[..n].to_vec(), from)
}

#[test]
fn a_request_from_the_upstream_goes_back_to_the_client_of_that_flow() {
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    let relay_cfg = relay_config(upstream.local_addr().unwrap(), 1);
    let listeners = relay::bind(&relay_cfg).unwrap();
    let relay_addr = listeners[0].local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let relayed = s.spawn(|| relay::run(listeners, &relay_cfg, &stop).unwrap());
        let alice = UdpSocket::bind("127.0.0.1:0").unwrap();
        let bob = UdpSocket::bind("127.0.0.1:0").unwrap();
        alice.send_to(b"INVITE from alice", relay_addr).unwrap();
        let (bytes, alice_flow) = recv_one(&upstream);
        assert_eq!(bytes, b"INVITE from alice");
        bob.send_to(b"OPTIONS from bob", relay_addr).unwrap();
        let (_, bob_flow) = recv_one(&upstream);
        assert_ne!(alice_flow, bob_flow);

        upstream.send_to(b"BYE to alice", alice_flow).unwrap();
        let (bytes, from) = recv_one(&alice);
        assert_eq!((bytes.as_slice(), from), (&b"BYE to alice"[..], relay_addr));
        stop.store(true, Ordering::Relaxed);
        let counts = relayed.join().unwrap();
        assert_eq!((counts.up, counts.down, counts.flows_opened), (2, 1, 2));
    });
}

/// Registers once through a floor served by `serve` (which must stop after two answers).
fn register_through_the_floor(
    serve: impl FnOnce(
        std::net::UdpSocket,
        &AtomicBool,
    ) -> ferrovia_loadgen::register_floor::FloorCounts
    + Send,
) {
    use ferrovia_loadgen::register_floor;
    let socket = register_floor::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let floor = socket.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    let register = |cseq: u32, credentials: &str| {
        format!(
            "REGISTER sip:edge.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-{cseq}\r\n\
             From: <sip:alice@edge.example>;tag=1\r\nTo: <sip:alice@edge.example>\r\n\
             Call-ID: floor-1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:alice@127.0.0.1:1>\r\n\
             {credentials}Expires: 600\r\nContent-Length: 0\r\n\r\n"
        )
    };
    std::thread::scope(|s| {
        let served = s.spawn(|| serve(socket, &stop));
        let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
        phone
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 2048];
        phone.send_to(register(1, "").as_bytes(), floor).unwrap();
        let n = phone.recv(&mut buf).unwrap();
        let challenge = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
        assert!(challenge.contains("WWW-Authenticate: Digest realm=\"edge.example\""));
        let credentials = "Authorization: Digest username=\"alice\"\r\n";
        phone
            .send_to(register(2, credentials).as_bytes(), floor)
            .unwrap();
        let n = phone.recv(&mut buf).unwrap();
        let ok = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Contact: <sip:alice@127.0.0.1:1>;expires=600\r\n"),
            "{ok}"
        );
        // Two answers were its count: serve returns without a signal.
        let counts = served.join().unwrap();
        assert_eq!((counts.challenged, counts.registered), (1, 1));
    });
}

#[test]
fn the_blocking_register_floor_challenges_then_registers_and_stops_after_its_count() {
    register_through_the_floor(|socket, stop| {
        ferrovia_loadgen::register_floor::serve(&socket, 2, stop).unwrap()
    });
}

#[test]
fn the_epoll_register_floor_challenges_then_registers_and_stops_after_its_count() {
    register_through_the_floor(|socket, stop| {
        let timeout = Some(Duration::from_millis(250));
        ferrovia_loadgen::register_floor::serve_epoll(socket, 8, timeout, 2, stop).unwrap()
    });
}
