//! The seed's call flow with the real sipp: Bob (UAC) sends INVITE with a loose Route to
//! Alice (UAS) through ferrovia; 180, 200, ACK; then Alice sends BYE back through the proxy
//! and Bob answers 200. Without Record-Route the BYE is routed by Bob's Contact; with
//! `--record-route` it also carries the proxy's Route.

mod runtime_support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use runtime_support::process::{Ferrovia, Sipp, SippResult};
use runtime_support::{free_udp_port, free_udp_port_pair};

/// Bound on every sipp run in this file.
const SIPP_LIMIT: Duration = Duration::from_secs(40);

/// The arguments every sipp gets: loopback, given ports, one call, a global timeout.
fn sipp_args(scenario: &str, sip_port: u16) -> Vec<String> {
    let path = Sipp::scenario(scenario);
    [
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
    .collect()
}

/// Waits until a program has bound `port` (our own bind fails), at most a few seconds.
fn await_bound(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
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

fn call_flow(name: &str, extra: &[&str]) {
    let mut args = vec![
        "--listen",
        "udp:127.0.0.1:0",
        "--workers",
        "2",
        "--metrics",
        "off",
    ];
    args.extend_from_slice(extra);
    let proxy = Ferrovia::start(&args, 1);

    let alice_port = free_udp_port();
    let alice = Sipp::start(
        &format!("{name}-alice"),
        &sipp_args("alice_uas.xml", alice_port),
    );
    await_bound(alice_port);

    let mut bob_args = vec![proxy.addr().to_string()];
    bob_args.extend(sipp_args("bob_uac.xml", free_udp_port()));
    bob_args.extend(["-key".into(), "uas_port".into(), alice_port.to_string()]);
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
    call_flow("plain", &[]);
}

#[test]
fn bob_calls_alice_and_alice_hangs_up_with_record_route() {
    call_flow("record-route", &["--record-route"]);
}
