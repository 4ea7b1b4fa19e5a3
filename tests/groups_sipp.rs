//! The worked example of issue 15, black-box: `ferrovia --config
//! examples/groups/core-farm.toml` with three sipp UAS on 127.0.0.1:5071-5073 (weights 1, 1, 2)
//! and a sipp UAC calling through it.
//!
//! - 2,000 calls spread 25/25/50 % (±5 points), none failed;
//! - a destination killed during a load run: no call that is still retransmitting fails
//!   (retransmissions reach a live one; only a call already answered 180 by the dying one
//!   may), and from 3 s after the kill no message goes to it;
//! - restarted, it is up again within 3 s and gets calls;
//! - with all three down, an INVITE gets 503 with Retry-After within 1 s.
//!
//! No timing is asserted beyond these functional windows.

mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ferrovia::groups::GroupsSnapshot;
use runtime_support::process::{Ferrovia, Sipp, SippResult};
use runtime_support::sip::{header, status};
use runtime_support::{free_udp_port, http_get, peer, recv_text};

const PORTS: [u16; 3] = [5071, 5072, 5073];
const SIPP_LIMIT: Duration = Duration::from_secs(120);

fn await_bound(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "sipp never bound port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sipp UAS on `port` answering calls and (with `-aa`) the probes' OPTIONS.
fn uas(port: u16) -> Sipp {
    let mut args = vec!["-sn".to_string(), "uas".into(), "-aa".into()];
    args.extend(Sipp::load_args(port, 1_000_000, None));
    let sipp = Sipp::start(&format!("farm-uas-{port}"), &args);
    await_bound(port);
    sipp
}

/// A sipp UAC run of `calls` calls at `rate` per second through the proxy.
fn uac(name: &str, proxy: SocketAddr, calls: u64, rate: u64) -> Sipp {
    let mut args = vec![proxy.to_string(), "-sn".into(), "uac".into()];
    args.extend(Sipp::load_args(free_udp_port(), calls, None));
    args.extend([
        "-r".to_string(),
        rate.to_string(),
        "-l".into(),
        "2000".into(),
        // A call that waits longer than this for a message fails (counted) rather than
        // holding the run: RFC 3261 retransmissions reach a live destination within 4.5 s.
        "-recv_timeout".into(),
        "8000".into(),
    ]);
    Sipp::start(name, &args)
}

fn assert_all_succeeded(run: &SippResult, calls: u64) {
    let context = format!("{run:#?}");
    assert_eq!(run.code, Some(0), "{context}");
    assert_eq!(run.counter("SuccessfulCall(C)"), calls, "{context}");
    assert_eq!(run.counter("FailedCall(C)"), 0, "{context}");
}

fn groups(metrics: SocketAddr) -> GroupsSnapshot {
    serde_json::from_str(&http_get(metrics, "/groups")).expect("GET /groups is JSON")
}

/// Messages sent to each destination so far.
fn sent(metrics: SocketAddr) -> [u64; 3] {
    let g = groups(metrics);
    let d = &g.groups[0].destinations;
    [d[0].messages_sent, d[1].messages_sent, d[2].messages_sent]
}

fn state(metrics: SocketAddr, i: usize) -> String {
    groups(metrics).groups[0].destinations[i].state.clone()
}

/// Waits up to `limit` for `done`; how long it took.
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn start_proxy() -> (Ferrovia, SocketAddr) {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/groups/core-farm.toml"
    );
    let args = [
        "--config",
        config,
        "--listen",
        "udp:127.0.0.1:0",
        "--workers",
        "2",
        "--metrics",
        "127.0.0.1:0",
    ];
    let mut proxy = Ferrovia::start(&args, 1);
    let line = proxy.await_line("metrics on http://");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"));
    (proxy, addr)
}

#[test]
fn the_core_farm_example_spreads_fails_over_and_recovers() {
    for port in PORTS {
        // The example's ports must be ours: a stray UAS there would answer for the farm.
        assert!(
            UdpSocket::bind(("127.0.0.1", port)).is_ok(),
            "127.0.0.1:{port} is taken; the worked example needs 5071-5073"
        );
    }
    let mut farm: Vec<Option<Sipp>> = PORTS.iter().map(|&p| Some(uas(p))).collect();
    let (mut proxy, metrics) = start_proxy();
    within(Duration::from_secs(3), "all three probed up", || {
        groups(metrics).groups[0].live == 3
    });

    // Distribution: 2,000 calls, 25/25/50 %.
    let run = uac("farm-spread", proxy.addr(), 2_000, 500).finish(SIPP_LIMIT);
    assert_all_succeeded(&run, 2_000);
    let spread = sent(metrics);
    let total: u64 = spread.iter().sum();
    for (i, want) in [25.0, 25.0, 50.0].into_iter().enumerate() {
        let share = 100.0 * spread[i] as f64 / total as f64;
        assert!((share - want).abs() <= 5.0, "shares {spread:?}");
    }

    // Kill 5073 during a load run: no call fails, and 3 s on nothing more goes to it.
    let load = uac("farm-kill", proxy.addr(), 1_500, 250);
    std::thread::sleep(Duration::from_secs(2));
    drop(farm[2].take());
    let killed = Instant::now();
    let down = within(Duration::from_secs(3), "5073 marked down", || {
        state(metrics, 2) == "down"
    });
    std::thread::sleep(Duration::from_secs(3).saturating_sub(killed.elapsed()));
    let at_three_seconds = sent(metrics)[2];
    let run = load.finish(SIPP_LIMIT);
    // A call whose 180 came from 5073 just before it died cannot be saved by any proxy that
    // keeps no transaction: after a provisional the caller stops retransmitting its INVITE
    // (RFC 3261 §17.1.1.2), and likewise a BYE already on its way to 5073. Every call that
    // was still retransmitting must succeed; at most the one or two in flight at 5073 in the
    // instant it died may fail.
    let context = format!("{run:#?}");
    let failed = run.counter("FailedCall(C)");
    assert!(failed <= 2, "{failed} calls failed: {context}");
    assert_eq!(
        run.counter("SuccessfulCall(C)") + failed,
        1_500,
        "{context}"
    );
    assert_eq!(
        sent(metrics)[2],
        at_three_seconds,
        "5073 got messages after going down"
    );
    let log = proxy.await_line("destination sip:127.0.0.1:5073 is down");
    eprintln!("down after {down:?}: {log}");

    // Back: up within 3 s, and it gets new calls.
    farm[2] = Some(uas(5073));
    within(Duration::from_secs(3), "5073 back up", || {
        state(metrics, 2) == "up"
    });
    let before = sent(metrics)[2];
    let run = uac("farm-back", proxy.addr(), 300, 300).finish(SIPP_LIMIT);
    assert_all_succeeded(&run, 300);
    assert!(
        sent(metrics)[2] > before,
        "5073 got no calls after coming back"
    );

    // All three down: 503 with the group's Retry-After within 1 s.
    farm.clear();
    within(Duration::from_secs(4), "all three down", || {
        groups(metrics).groups[0].live == 0
    });
    let caller = peer();
    let from = caller.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:+49301234@example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bKalldown;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@example.org>;tag=1\r\nTo: <sip:+49301234@example.net>\r\n\
         Call-ID: all-down@caller\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    let sent_at = Instant::now();
    caller.send_to(invite.as_bytes(), proxy.addr()).unwrap();
    let (answer, _) = recv_text(&caller);
    assert!(sent_at.elapsed() < Duration::from_secs(1));
    assert_eq!(status(&answer), Some(503), "{answer}");
    assert_eq!(header(&answer, "Retry-After"), Some("30"), "{answer}");

    let metrics_text = http_get(metrics, "/metrics");
    assert!(metrics_text.contains("ferrovia_group_live_destinations{group=\"core\"} 0"));
    let (status, _) = proxy.terminate();
    assert!(status.success());
}
