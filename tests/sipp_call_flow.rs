//! The seed's call flow with the real sipp: Bob (UAC) sends INVITE with a loose Route to
//! Alice (UAS) through ferrovia; 180, 200, ACK; then Alice sends BYE back through the proxy
//! and Bob answers 200. Without Record-Route the BYE is routed by Bob's Contact; with
//! `--record-route` it also carries the proxy's Route. The same flow runs over UDP and over
//! TCP (`-t t1`: one connection per sipp, the proxy opening its own toward Alice and reusing
//! Bob's for the BYE, since sipp binds its connection to its own port), and over IPv6
//! loopback where the machine has it.

mod runtime_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
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

/// The loopback address the whole call runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn ip(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        }
    }

    /// The address as a URI host: `127.0.0.1` or `[::1]`.
    fn uri_host(self) -> String {
        match self {
            Family::V4 => self.ip().to_string(),
            Family::V6 => format!("[{}]", self.ip()),
        }
    }

    /// Whether the machine has this loopback; says so when it does not.
    fn available(self, test: &str) -> bool {
        let ok =
            UdpSocket::bind((self.ip(), 0)).is_ok() && TcpListener::bind((self.ip(), 0)).is_ok();
        if !ok {
            eprintln!("{test}: skipped: no loopback address {}", self.ip());
        }
        ok
    }
}

/// The arguments every sipp gets: loopback, given ports, one call, a global timeout.
fn sipp_args(scenario: &str, sip_port: u16, over: Over, family: Family) -> Vec<String> {
    let path = Sipp::scenario(scenario);
    let mut args: Vec<String> = [
        "-sf",
        path.to_str().expect("a UTF-8 path"),
        "-i",
        &family.ip().to_string(),
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

/// A port free for both UDP and TCP on this family's loopback a moment ago.
fn free_port(family: Family) -> u16 {
    loop {
        let port = UdpSocket::bind((family.ip(), 0))
            .and_then(|s| s.local_addr())
            .expect("bind port 0")
            .port();
        if TcpListener::bind((family.ip(), port)).is_ok() {
            return port;
        }
    }
}

/// Waits until a program has bound `port` (our own bind fails), at most a few seconds.
fn await_bound(port: u16, over: Over, family: Family) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = SocketAddr::new(family.ip(), port);
    let free = || match over {
        Over::Udp => UdpSocket::bind(addr).is_ok(),
        Over::Tcp => TcpListener::bind(addr).is_ok(),
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
    call_flow_on(name, over, Family::V4, extra);
}

fn call_flow_on(name: &str, over: Over, family: Family, extra: &[&str]) {
    if !family.available(name) {
        return;
    }
    let listen = format!("{}:{}", over.scheme(), SocketAddr::new(family.ip(), 0));
    let mut args = vec!["--listen", &listen, "--workers", "2", "--metrics", "off"];
    args.extend_from_slice(extra);
    let proxy = Ferrovia::start(&args, 1);

    let alice_port = free_port(family);
    let alice = Sipp::start(
        &format!("{name}-alice"),
        &sipp_args("alice_uas.xml", alice_port, over, family),
    );
    await_bound(alice_port, over, family);

    let mut bob_args = vec![proxy.addr().to_string()];
    bob_args.extend(sipp_args("bob_uac.xml", free_port(family), over, family));
    let uas_host = family.uri_host();
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

#[test]
fn bob_calls_alice_over_ipv6_udp() {
    call_flow_on("v6-udp", Over::Udp, Family::V6, &[]);
}

#[test]
fn bob_calls_alice_over_ipv6_tcp_with_record_route() {
    call_flow_on("v6-tcp", Over::Tcp, Family::V6, &["--record-route"]);
}
