//! NAT keepalives over real loopback sockets (issue 14 item 5): a UDP phone whose Contact is
//! not its source (behind NAT) registers, then receives the registrar's pings at its source,
//! from the listener it registered to: CRLF datagrams, or OPTIONS that it answers; once it
//! stops answering, its flow is declared dead and its binding removed (480 for a call).
//! A phone whose Contact is its source (not behind NAT) gets no pings. No timing is asserted:
//! each wait is bounded, and a ping that does not come fails the test.

mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use runtime_support::process::Ferrovia;
use runtime_support::{http_get, peer, recv_text};

/// Starts ferrovia as the registrar of `edge.example` (no users: nothing is authenticated)
/// with the given keepalive lines; returns it, its UDP address and its metrics address.
fn start(name: &str, keepalive: &str) -> (Ferrovia, SocketAddr, SocketAddr, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registrar-keepalive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ferrovia.toml");
    std::fs::write(
        &config,
        format!(
            "metrics = \"127.0.0.1:0\"\n[registrar]\ndomains = [\"edge.example\"]\n{keepalive}"
        ),
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "udp:127.0.0.1:0",
    ];
    let mut proxy = Ferrovia::start(&args, 1);
    let line = proxy.await_line("metrics on http://");
    let metrics = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .expect("the metrics address");
    let udp = proxy.addr();
    (proxy, udp, metrics, dir)
}

fn register(phone: &UdpSocket, proxy: SocketAddr, user: &str, contact: &str) {
    let local = phone.local_addr().unwrap();
    let text = format!(
        "REGISTER sip:edge.example SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bKr{user}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@edge.example>;tag=f1\r\nTo: <sip:{user}@edge.example>\r\n\
         Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\nExpires: 600\r\n\
         Content-Length: 0\r\n\r\n"
    );
    phone.send_to(text.as_bytes(), proxy).unwrap();
    let (ok, _) = recv_text(phone);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
}

fn metric(metrics: SocketAddr, line: &str) -> Option<u64> {
    http_get(metrics, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
}

#[test]
fn a_phone_behind_nat_gets_crlf_pings_at_its_source_and_one_without_nat_none() {
    let (proxy, udp, metrics, dir) = start(
        "crlf",
        "keepalive = \"crlf\"\nkeepalive-interval = \"1s\"\n",
    );
    // Behind NAT: the Contact names port 9, the packets come from the phone's own port.
    let natted = peer();
    register(&natted, udp, "alice", "sip:alice@127.0.0.1:9");
    // Not behind NAT: the Contact is where the packets come from.
    let direct = peer();
    let contact = format!("sip:bob@{}", direct.local_addr().unwrap());
    register(&direct, udp, "bob", &contact);
    for _ in 0..2 {
        let (ping, from) = recv_text(&natted);
        assert_eq!(ping, "\r\n\r\n");
        assert_eq!(from, udp, "sent from the listener the REGISTER came to");
    }
    let sent = metric(
        metrics,
        "ferrovia_registrar_keepalive_total{result=\"sent\"}",
    );
    assert!(sent.is_some_and(|n| n >= 2), "{sent:?}");
    // Bob got nothing in the meantime: a short, bounded look.
    direct
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(direct.recv_from(&mut buf).is_err(), "bob is not behind NAT");
    let (status, _) = proxy.terminate();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn options_pings_are_answered_then_an_unanswered_flow_is_dead() {
    let (proxy, udp, metrics, dir) = start(
        "options",
        "keepalive = \"options\"\nkeepalive-interval = \"1s\"\nkeepalive-dead-after = 2\n",
    );
    let phone = peer();
    register(&phone, udp, "alice", "sip:alice@127.0.0.1:9");
    // Two pings answered: the OPTIONS goes to the Contact over the flow, and its 200 is
    // consumed by the proxy (not forwarded anywhere, the flow alive).
    for _ in 0..2 {
        let (options, from) = recv_text(&phone);
        assert_eq!(from, udp);
        assert!(
            options.starts_with("OPTIONS sip:alice@127.0.0.1:9 SIP/2.0\r\n"),
            "{options}"
        );
        let via = options
            .lines()
            .find(|l| l.starts_with("Via: "))
            .expect("a Via");
        assert!(via.contains(";branch=z9hG4bKfvk"), "{via}");
        let answer = format!("SIP/2.0 200 OK\r\n{via}\r\nContent-Length: 0\r\n\r\n");
        phone.send_to(answer.as_bytes(), udp).unwrap();
    }
    let answered = "ferrovia_registrar_keepalive_total{result=\"answered\"}";
    let dead = "ferrovia_registrar_keepalive_total{result=\"dead\"}";
    // Then silence: after two unanswered pings the flow is dead and the binding gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(metrics, dead) != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the flow was never declared dead"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(metrics, answered).is_some_and(|n| n >= 1));
    // The answers ended at the proxy, counted under their own drop reason.
    let text = http_get(metrics, "/metrics");
    let consumed: u64 = text
        .lines()
        .filter(|l| l.starts_with("ferrovia_dropped_total{") && l.contains("\"keepalive_answer\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(consumed >= 1, "{text}");
    let location = http_get(metrics, "/location");
    assert!(!location.contains("alice@edge.example"), "{location}");
    let (status, _) = proxy.terminate();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
