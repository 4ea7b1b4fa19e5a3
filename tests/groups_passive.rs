//! Passive health signals through the shipping service on loopback: a group destination whose
//! UDP port is closed goes down from the ICMP port unreachable its probe (or a request) causes,
//! long before its slow probes could take it down, and comes back through probes once the port
//! answers again; a port unreachable for an address no group names (a caller gone away) marks
//! nothing; a refused TCP connect to a group destination takes it down at once, and its probes
//! (over TCP) bring it back once it listens again.
//!
//! The waits are bounded state changes, not timings: "from ICMP, not probes" is shown by the
//! counters (fewer failed probes than `down-after`, a passive down counted).

mod responder_support;
mod runtime_support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use ferrovia::groups::{DestinationConfig, DestinationSnapshot, GroupConfig, ProbeConfig};
use ferrovia::service::Service;
use ferrovia::settings::{ListenAddr, Settings};
use responder_support::Responder;
use runtime_support::sip::response;
use runtime_support::{loopback_settings, peer, start_proxy};

/// Probes far too slow to take anything down within the test: 30 failures in a row.
fn slow_probes() -> ProbeConfig {
    ProbeConfig {
        enabled: true,
        interval: Duration::from_millis(500),
        timeout: Duration::from_millis(400),
        down_after: 30,
        up_after: 1,
        alive_codes: vec![200],
    }
}

fn group_settings(uris: &[String], probe: ProbeConfig) -> Settings {
    let list = uris
        .iter()
        .map(|u| DestinationConfig::parse(u, 1, 0, |_| None).unwrap())
        .collect();
    let mut group = GroupConfig::new("core", list);
    group.probe = probe;
    Settings {
        groups: vec![group],
        route_to_group: Some("core".into()),
        ..loopback_settings(2)
    }
}

fn destination(proxy: &Service, i: usize) -> DestinationSnapshot {
    let snapshot = proxy.snapshot();
    snapshot.groups().expect("groups configured").groups[0].destinations[i].clone()
}

/// Answers every probe waiting at `socket` with 200; returns the other messages' texts.
fn answer_probes(socket: &UdpSocket) -> Vec<String> {
    let mut buf = vec![0u8; 65_536];
    let mut others = Vec::new();
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("OPTIONS ") && text.contains("branch=z9hG4bKfvp") {
            socket
                .send_to(response(&text, 200, "OK").as_bytes(), from)
                .unwrap();
        } else {
            others.push(text);
        }
    }
    others
}

/// Waits (bounded) until destination `i` is in `state`, answering `live`'s probes meanwhile.
fn wait_for_state(
    proxy: &Service,
    i: usize,
    state: &str,
    live: &[&UdpSocket],
) -> DestinationSnapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = destination(proxy, i);
        if d.state == state {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "destination {i} never {state}: {d:?}"
        );
        for s in live {
            answer_probes(s);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn closed_udp_port() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

fn invite(from: SocketAddr, call: &str) -> String {
    format!(
        "INVITE sip:bob@example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK{call};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.org>;tag=f{call}\r\n\
         To: <sip:bob@example.net>\r\n\
         Call-ID: {call}@caller\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The first request (not a probe) reaching `socket`, answering probes meanwhile.
fn forwarded(socket: &UdpSocket) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(text) = answer_probes(socket).into_iter().next() {
            return text;
        }
        assert!(Instant::now() < deadline, "nothing forwarded");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_closed_port_goes_down_from_icmp_and_comes_back_through_probes() {
    let live = peer();
    live.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let dead = closed_udp_port();
    let uris = [
        format!("sip:{}", live.local_addr().unwrap()),
        format!("sip:{dead}"),
    ];
    let (proxy, proxy_addr) = start_proxy(&group_settings(&uris, slow_probes()));

    // The first probe to the closed port comes back as ICMP port unreachable.
    let down = wait_for_state(&proxy, 1, "down", &[&live]);
    assert!(down.passive_downs >= 1, "{down:?}");
    assert!(
        down.probes_failed < 30,
        "probes cannot have done it: {down:?}"
    );

    // A port unreachable for a caller gone away (no group names it) marks nothing.
    let caller = peer();
    let caller_addr = caller.local_addr().unwrap();
    caller
        .send_to(invite(caller_addr, "gone").as_bytes(), proxy_addr)
        .unwrap();
    let request = forwarded(&live);
    drop(caller);
    let ringing = response(&request, 180, "Ringing");
    for _ in 0..3 {
        live.send_to(ringing.as_bytes(), proxy_addr).unwrap();
    }

    // Back through probes once the port answers (up after 1 answered probe).
    let revived = UdpSocket::bind(dead).expect("the closed port is free again");
    revived
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let up = wait_for_state(&proxy, 1, "up", &[&live, &revived]);
    assert_eq!((up.went_down, up.went_up), (1, 1), "{up:?}");
    let other = destination(&proxy, 0);
    assert_eq!(
        (other.state.as_str(), other.passive_downs, other.went_down),
        ("up", 0, 0),
        "the stranger's ICMP touched nothing: {other:?}"
    );
    drop(proxy.shutdown());
}

#[test]
fn a_refused_tcp_connect_takes_a_destination_down_until_its_probes_answer() {
    let live = peer();
    live.set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let uris = [
        format!("sip:{refused};transport=tcp"),
        format!("sip:{}", live.local_addr().unwrap()),
    ];
    let probe = ProbeConfig {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        ..slow_probes()
    };
    let mut settings = group_settings(&uris, probe);
    settings
        .listen
        .push(ListenAddr::tcp(SocketAddr::from(([127, 0, 0, 1], 0))));
    let (proxy, proxy_addr) = start_proxy(&settings);
    let caller = peer();
    let from = caller.local_addr().unwrap();
    // Calls until one is sent to the TCP destination: its connect is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut call = 0;
    while destination(&proxy, 0).state == "up" {
        assert!(
            Instant::now() < deadline,
            "the refused connect never counted"
        );
        call += 1;
        let invite = invite(from, &format!("t{call}"));
        caller.send_to(invite.as_bytes(), proxy_addr).unwrap();
        answer_probes(&live);
        std::thread::sleep(Duration::from_millis(20));
    }
    let down = destination(&proxy, 0);
    assert!(down.passive_downs >= 1, "{down:?}");
    assert!(
        down.probes_failed < 30,
        "probes cannot have done it: {down:?}"
    );
    // Probed over TCP, it stays down while its port refuses, and comes back once a box
    // listens there and answers a probe (up after 1).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        destination(&proxy, 0).state,
        "down",
        "a refused probe keeps it down"
    );
    let _box = Responder::start(refused, None);
    let up = wait_for_state(&proxy, 0, "up", &[&live]);
    assert_eq!((up.went_down, up.went_up), (1, 1), "{up:?}");
    drop(proxy.shutdown());
}
