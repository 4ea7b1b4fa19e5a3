//! The seed's call flow with the real sipp: Bob (UAC) sends INVITE with a loose Route to
//! Alice (UAS) through ferrovia; 180, 200, ACK; then Alice sends BYE back through the proxy
//! and Bob answers 200. Without Record-Route the BYE is routed by Bob's Contact; with
//! `--record-route` it also carries the proxy's Route. The same flow runs over UDP and over
//! TCP (`-t t1`: one connection per sipp, the proxy opening its own toward Alice and, for
//! the BYE, toward Bob's Contact).

mod runtime_support;

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use runtime_support::process::{Ferrovia, Sipp, SippResult};
use runtime_support::{free_udp_port, free_udp_port_pair};

/// Bound on every sipp run in this file.
const SIPP_LIMIT: Duration = Duration::from_secs(40);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Over {
    Udp,
    Tcp,
}

impl Over {
    fn scheme(self) -> &'static str {
        match self {
            Over::Udp => "udp",
            Over::Tcp => "tcp",
        }
    }
}

/// The arguments every sipp gets: loopback, given ports, one call, a global timeout.
fn sipp_args(scenario: &str, sip_port: u16, over: Over) -> Vec<String> {
    let path = Sipp::scenario(scenario);
    let mut args: Vec<String> = [
        "-sf",
        path.to_str().expect("a UTF-8 path"),
        "-i",
        "127.0.0.1",
        "-p",
        &sip_port.to_string(),
        "-cp",
        &free_udp_port().to_string(),
        "-mp",
        &free_udp_port_pair().to_string(),
        "-m",
        "1",
        "-timeout",
        "30s",
        "-timeout_error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if over == Over::Tcp {
        args.extend(["-t".into(), "t1".into()]);
    }
    args
}

/// A port free for both UDP and TCP a moment ago.
fn free_port() -> u16 {
    loop {
        let port = free_udp_port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until a program has bound `port` (our own bind fails), at most a few seconds.
fn await_bound(port: u16, over: Over) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let free = || match over {
        Over::Udp => UdpSocket::bind(("127.0.0.1", port)).is_ok(),
        Over::Tcp => TcpListener::bind(("127.0.0.1", port)).is_ok(),
    };
    while free() {
        assert!(Instant::now() < deadline, "sipp never bound port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_one_clean_call(who: &str, result: &SippResult) {
    let context = format!("{who}: {result:#?}");
    assert_eq!(result.code, Some(0), "{context}");
    assert_eq!(result.counter("SuccessfulCall(C)"), 1, "{context}");
    assert_eq!(result.counter("FailedCall(C)"), 0, "{context}");
    assert_eq!(result.counter("FailedUnexpectedMessage(C)"), 0, "{context}");
}

fn call_flow(name: &str, over: Over, extra: &[&str]) {
    let listen = format!("{}:127.0.0.1:0", over.scheme());
    let mut args = vec!["--listen", &listen, "--workers", "2", "--metrics", "off"];
    args.extend_from_slice(extra);
    let proxy = Ferrovia::start(&args, 1);

    let alice_port = free_port();
    let alice = Sipp::start(
        &format!("{name}-alice"),
        &sipp_args("alice_uas.xml", alice_port, over),
    );
    await_bound(alice_port, over);

    let mut bob_args = vec![proxy.addr().to_string()];
    bob_args.extend(sipp_args("bob_uac.xml", free_port(), over));
    let uas_host = IpAddr::V4(Ipv4Addr::LOCALHOST).to_string();
    for (key, value) in [("uas_host", uas_host), ("uas_port", alice_port.to_string())] {
        bob_args.extend(["-key".into(), key.into(), value]);
    }
    let bob = Sipp::start(&format!("{name}-bob"), &bob_args);

    let bob = bob.finish(SIPP_LIMIT);
    let alice = alice.finish(SIPP_LIMIT);
    assert_one_clean_call("bob (UAC)", &bob);
    assert_one_clean_call("alice (UAS)", &alice);

    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn bob_calls_alice_and_alice_hangs_up() {
    call_flow("plain", Over::Udp, &[]);
}

#[test]
fn bob_calls_alice_and_alice_hangs_up_with_record_route() {
    call_flow("record-route", Over::Udp, &["--record-route"]);
}

#[test]
fn bob_calls_alice_over_tcp_and_alice_hangs_up() {
    call_flow("tcp-plain", Over::Tcp, &[]);
}

#[test]
fn bob_calls_alice_over_tcp_and_alice_hangs_up_with_record_route() {
    call_flow("tcp-record-route", Over::Tcp, &["--record-route"]);
}
