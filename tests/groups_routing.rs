//! Destination groups through the shipping service on loopback: plain UDP sockets stand in for
//! the core boxes. Every message of a call (its CANCEL and non-2xx ACK included) reaches the
//! INVITE's destination; in-dialog requests that follow our Record-Route are not sent to the
//! group; a destination that stops answering probes stops getting calls and a retransmission
//! reaches a live one; a group with nothing live answers 503 with its Retry-After; probe
//! answers are consumed.

mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ferrovia::groups::{DestinationConfig, GroupConfig, ProbeConfig};
use ferrovia::service::Service;
use ferrovia::settings::Settings;
use runtime_support::sip::{header, response, status, top_via_sent_by};
use runtime_support::{loopback_settings, peer, recv_text, start_proxy};

/// Settings routing everything to group `core` over `destinations` (weights 1), probing as
/// `probe` says.
fn group_settings(destinations: &[SocketAddr], probe: ProbeConfig) -> Settings {
    let list = destinations
        .iter()
        .map(|a| DestinationConfig::parse(&format!("sip:{a}"), 1, 0, |_| None).unwrap())
        .collect();
    let mut group = GroupConfig::new("core", list);
    group.probe = probe;
    group.retry_after = 42;
    Settings {
        groups: vec![group],
        route_to_group: Some("core".into()),
        record_route: true,
        ..loopback_settings(2)
    }
}

fn no_probes() -> ProbeConfig {
    ProbeConfig {
        enabled: false,
        ..ProbeConfig::default()
    }
}

fn request(method: &str, from: SocketAddr, call: &str, branch: &str, to_tag: &str) -> String {
    let cseq_method = if method == "ACK" || method == "CANCEL" {
        method
    } else {
        "INVITE"
    };
    let to_tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    format!(
        "{method} sip:+4930{call}@example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@example.org>;tag=f{call}\r\n\
         To: <sip:+4930{call}@example.net>{to_tag}\r\n\
         Call-ID: {call}@caller\r\n\
         CSeq: 1 {cseq_method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The first message (not a probe) arriving at any of `sockets`: which one, and the text.
fn arrival(sockets: &[UdpSocket]) -> (usize, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < deadline {
        for (i, s) in sockets.iter().enumerate() {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if text.starts_with("OPTIONS ") && text.contains("branch=z9hG4bKfvp") {
                    let answer = response(&text, 200, "OK");
                    s.send_to(answer.as_bytes(), from).unwrap();
                    continue;
                }
                return (i, text);
            }
        }
    }
    panic!("nothing arrived at any destination");
}

fn destinations(n: usize) -> Vec<UdpSocket> {
    (0..n)
        .map(|_| {
            let s = peer();
            s.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
            s
        })
        .collect()
}

fn addrs(sockets: &[UdpSocket]) -> Vec<SocketAddr> {
    sockets.iter().map(|s| s.local_addr().unwrap()).collect()
}

#[test]
fn cancel_and_non_2xx_ack_follow_their_invite() {
    let dests = destinations(3);
    let (proxy, proxy_addr) = start_proxy(&group_settings(&addrs(&dests), no_probes()));
    let caller = peer();
    let from = caller.local_addr().unwrap();
    let mut used = [0; 3];
    for call in 0..30 {
        let call = format!("c{call}");
        let invite = request("INVITE", from, &call, &call, "");
        caller.send_to(invite.as_bytes(), proxy_addr).unwrap();
        let (at, forwarded) = arrival(&dests);
        used[at] += 1;
        assert!(forwarded.starts_with(&format!("INVITE sip:+4930{call}@example.net ")));
        // Retransmission, CANCEL (same branch) and the ACK of a 487 (same branch, To tag).
        caller.send_to(invite.as_bytes(), proxy_addr).unwrap();
        assert_eq!(arrival(&dests).0, at, "retransmission of {call}");
        let cancel = request("CANCEL", from, &call, &call, "");
        caller.send_to(cancel.as_bytes(), proxy_addr).unwrap();
        let (cancel_at, text) = arrival(&dests);
        assert_eq!(
            (cancel_at, text.starts_with("CANCEL")),
            (at, true),
            "CANCEL of {call}"
        );
        let ack = request("ACK", from, &call, &call, "t487");
        caller.send_to(ack.as_bytes(), proxy_addr).unwrap();
        let (ack_at, text) = arrival(&dests);
        assert_eq!(
            (ack_at, text.starts_with("ACK")),
            (at, true),
            "ACK of {call}"
        );
    }
    assert!(
        used.iter().all(|&n| n > 0),
        "every destination got calls: {used:?}"
    );
    drop(proxy.shutdown());
}

#[test]
fn in_dialog_requests_through_our_record_route_are_not_sent_to_the_group() {
    let dests = destinations(2);
    let (proxy, proxy_addr) = start_proxy(&group_settings(&addrs(&dests), no_probes()));
    let (caller, callee) = (peer(), peer());
    let from = caller.local_addr().unwrap();
    let callee_addr = callee.local_addr().unwrap();
    let bye = format!(
        "BYE sip:callee@{callee_addr} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bKbye1;rport\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:{proxy_addr};lr>\r\n\
         From: <sip:caller@example.org>;tag=f1\r\nTo: <sip:callee@example.net>;tag=t1\r\n\
         Call-ID: dialog@caller\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    caller.send_to(bye.as_bytes(), proxy_addr).unwrap();
    let (text, _) = recv_text(&callee);
    assert!(text.starts_with("BYE sip:callee@"), "{text}");
    drop(proxy.shutdown());
}

#[test]
fn a_silent_destination_loses_its_calls_and_a_retransmission_reaches_a_live_one() {
    let dests = destinations(2);
    let probe = ProbeConfig {
        enabled: true,
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(150),
        down_after: 2,
        up_after: 1,
        alive_codes: vec![200],
    };
    let (proxy, proxy_addr) = start_proxy(&group_settings(&addrs(&dests), probe));
    let caller = peer();
    let from = caller.local_addr().unwrap();
    // Find a call that lands on destination 1, then silence destination 1.
    let (call, invite) = (0..200)
        .map(|i| {
            let call = format!("s{i}");
            let invite = request("INVITE", from, &call, &call, "");
            (call, invite)
        })
        .find(|(_, invite)| {
            caller.send_to(invite.as_bytes(), proxy_addr).unwrap();
            arrival(&dests).0 == 1
        })
        .expect("some call lands on destination 1");
    let silent = &dests[1];
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut live = 2;
    while live == 2 {
        assert!(Instant::now() < deadline, "destination 1 never went down");
        // Destination 0 keeps answering its probes; destination 1 reads and ignores them.
        let mut buf = [0u8; 4096];
        while silent.recv_from(&mut buf).is_ok() {}
        let _ = arrival_or_none(&dests[..1]);
        live = groups_live(&proxy);
    }
    caller.send_to(invite.as_bytes(), proxy_addr).unwrap();
    let (at, text) = arrival(&dests[..1]);
    assert_eq!(at, 0);
    assert!(text.contains(&format!("Call-ID: {call}@caller")), "{text}");
    drop(proxy.shutdown());
}

fn arrival_or_none(sockets: &[UdpSocket]) -> Option<(usize, String)> {
    let mut buf = vec![0u8; 65_536];
    for (i, s) in sockets.iter().enumerate() {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("OPTIONS ") {
                s.send_to(response(&text, 200, "OK").as_bytes(), from)
                    .unwrap();
                continue;
            }
            return Some((i, text));
        }
    }
    None
}

fn groups_live(proxy: &Service) -> usize {
    proxy.snapshot().groups().map_or(0, |g| g.groups[0].live)
}

#[test]
fn a_group_with_nothing_live_answers_503_with_its_retry_after() {
    let dests = destinations(2);
    let probe = ProbeConfig {
        enabled: true,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(50),
        down_after: 1,
        up_after: 1,
        alive_codes: vec![200],
    };
    let (proxy, proxy_addr) = start_proxy(&group_settings(&addrs(&dests), probe));
    let deadline = Instant::now() + Duration::from_secs(3);
    while groups_live(&proxy) > 0 {
        assert!(
            Instant::now() < deadline,
            "the destinations never went down"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let caller = peer();
    let from = caller.local_addr().unwrap();
    let sent = Instant::now();
    caller
        .send_to(
            request("INVITE", from, "down", "down", "").as_bytes(),
            proxy_addr,
        )
        .unwrap();
    let (answer, _) = recv_text(&caller);
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(status(&answer), Some(503), "{answer}");
    assert_eq!(header(&answer, "Retry-After"), Some("42"), "{answer}");
    let total = proxy.shutdown().counters();
    assert!(total.dropped(ferrovia::proxy::DropReason::ProbeAnswer) == 0);
}

#[test]
fn probe_answers_are_consumed_not_forwarded() {
    let dests = destinations(1);
    let probe = ProbeConfig {
        enabled: true,
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(40),
        down_after: 3,
        up_after: 1,
        alive_codes: vec![200],
    };
    let (proxy, _) = start_proxy(&group_settings(&addrs(&dests), probe));
    let mut buf = vec![0u8; 4096];
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while answered < 5 {
        assert!(Instant::now() < deadline, "probes did not arrive");
        if let Ok((n, from)) = dests[0].recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(text.starts_with("OPTIONS sip:"), "{text}");
            assert_eq!(
                top_via_sent_by(&text),
                Some(from),
                "probes leave from the listener"
            );
            dests[0]
                .send_to(response(&text, 200, "OK").as_bytes(), from)
                .unwrap();
            answered += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let snapshot = proxy.snapshot();
    let dest = &snapshot.groups().unwrap().groups[0].destinations[0];
    assert!(dest.last_probe_rtt_us > 0, "{dest:?}");
    assert_eq!(dest.state, "up");
    let total = proxy.shutdown().counters();
    assert!(
        total.dropped(ferrovia::proxy::DropReason::ProbeAnswer) >= 4,
        "{total:?}"
    );
    assert_eq!(total.forwarded_total(), 0, "{total:?}");
}

#[test]
fn a_policy_proxy_action_may_name_a_group() {
    let sockets = destinations(1);
    let core = addrs(&sockets)[0];
    let dir = std::env::temp_dir().join(format!("ferrovia-policy-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("edge.toml");
    let text = format!(
        "[[group]]\nname = \"core\"\ndestinations = [{{ uri = \"sip:{core}\" }}]\n\
         [group.probe]\nenabled = false\n\n\
         [[route]]\nname = \"germany\"\nuri-user = {{ prefix = \"+49\" }}\naction = \"proxy\"\nto = \"group:core\"\n"
    );
    std::fs::write(&path, &text).unwrap();
    let mut settings = Settings::from_toml(&text).unwrap();
    settings.config_file = Some(path);
    settings.listen = loopback_settings(1).listen;
    settings.metrics = ferrovia::settings::Metrics::Off;
    settings.workers = 1;
    let (proxy, proxy_addr) = start_proxy(&settings);
    let caller = peer();
    let from = caller.local_addr().unwrap();
    // sip:+4930...@example.net: the rule sends it to the group, not to example.net.
    caller
        .send_to(
            request("INVITE", from, "pg1", "pg1", "").as_bytes(),
            proxy_addr,
        )
        .unwrap();
    let (i, text) = arrival(&sockets);
    assert_eq!(i, 0);
    assert!(text.contains("Call-ID: pg1@caller"), "{text}");
    let groups = proxy.snapshot().groups().cloned().unwrap();
    assert_eq!(groups.groups[0].destinations[0].messages_sent, 1);
    proxy.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
