//! sipp load runs over TCP, beside UDP in the same run: built-in uac → ferrovia (2 workers)
//! → built-in uas, 2,000 calls at 500 calls/s each. Every call must succeed with no
//! unexpected message, over UDP, over TCP with one connection per call (`-t tn`, spread over
//! both workers), and over TCP with one shared connection (`-t t1`). The proxy's CPU time per
//! forwarded message and the calls per second achieved are printed side by side:
//!
//! `cargo test --release --test sipp_tcp_load -- --nocapture`
//!
//! `FERROVIA_LOAD_CALLS` and `FERROVIA_LOAD_RATE` change the number of calls and the rate
//! (e.g. 10000 and 2000) for a measurement run.

mod runtime_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use runtime_support::free_udp_port;
use runtime_support::process::{Ferrovia, Sipp};

const CALLS: u64 = 2_000;
const RATE: u64 = 500;

/// A positive number from the environment, else `default`.
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn calls() -> u64 {
    setting("FERROVIA_LOAD_CALLS", CALLS)
}

fn rate() -> u64 {
    setting("FERROVIA_LOAD_RATE", RATE)
}
/// Bound on each sipp run (the load itself takes a few seconds).
const SIPP_LIMIT: Duration = Duration::from_secs(120);
/// Messages per call through the proxy: INVITE, 180, 200, ACK, BYE, 200 (the built-in uas
/// sends no 100).
const MESSAGES_PER_CALL: u64 = 6;

/// How the calls travel: the transport and sipp's `-t` mode for the uac.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Udp,
    TcpPerCall,
    TcpShared,
}

impl Mode {
    fn listen(self) -> &'static str {
        match self {
            Mode::Udp => "udp:127.0.0.1:0",
            _ => "tcp:127.0.0.1:0",
        }
    }

    fn uac_transport(self) -> &'static str {
        match self {
            Mode::Udp => "un",
            Mode::TcpPerCall => "tn",
            Mode::TcpShared => "t1",
        }
    }

    fn uas_transport(self) -> &'static str {
        match self {
            Mode::Udp => "u1",
            _ => "t1",
        }
    }

    fn next_hop(self, port: u16) -> String {
        match self {
            Mode::Udp => format!("sip:127.0.0.1:{port}"),
            _ => format!("sip:127.0.0.1:{port};transport=tcp"),
        }
    }
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

/// What one load run measured.
struct Figures {
    mode: Mode,
    calls_per_second: f64,
    cpu_ns_per_message: Option<u128>,
    retransmissions: u64,
}

fn load(mode: Mode) -> Figures {
    let uas_port = free_port();
    let next_hop = mode.next_hop(uas_port);
    let args = [
        "--listen",
        mode.listen(),
        "--workers",
        "2",
        "--next-hop",
        &next_hop,
        "--metrics",
        "off",
    ];
    let proxy = Ferrovia::start(&args, 1);
    let name = format!("{mode:?}").to_lowercase();
    let uas = Sipp::load_uas(
        &format!("tcpload-{name}-uas"),
        uas_port,
        calls(),
        Some(mode.uas_transport()),
    );

    let mut uac_args = vec![proxy.addr().to_string(), "-sn".into(), "uac".into()];
    uac_args.extend(Sipp::load_args(
        free_port(),
        calls(),
        Some(mode.uac_transport()),
    ));
    let rate = rate().to_string();
    // At most 500 calls at once on at most 1,000 sockets: with one socket per call (`tn`),
    // sipp shares sockets between calls once it reaches -max_socket and then writes to
    // sockets it has closed (broken pipes that are sipp's, not the proxy's).
    let extra = ["-max_socket", "1000", "-r", &rate, "-l", "500"];
    uac_args.extend(extra.map(String::from));
    let started = Instant::now();
    let uac = Sipp::start(&format!("tcpload-{name}-uac"), &uac_args).finish(SIPP_LIMIT);
    let elapsed = started.elapsed();
    let uas = uas.finish(SIPP_LIMIT);
    let cpu = proxy.cpu_time();
    let (status, proxy_log) = proxy.terminate();

    let context = format!("{mode:?}\nuac: {uac:#?}\nuas: {uas:#?}\nproxy:\n{proxy_log}");
    assert!(status.success(), "{context}");
    assert_eq!(uac.code, Some(0), "{context}");
    assert_eq!(uac.counter("SuccessfulCall(C)"), calls(), "{context}");
    assert_eq!(uac.counter("FailedCall(C)"), 0, "{context}");
    assert_eq!(uac.counter("FailedUnexpectedMessage(C)"), 0, "{context}");
    assert_eq!(uas.counter("FailedUnexpectedMessage(C)"), 0, "{context}");
    assert_eq!(uas.counter("FailedCall(C)"), 0, "{context}");
    eprintln!("{mode:?}: proxy summary\n{proxy_log}");
    Figures {
        mode,
        calls_per_second: calls() as f64 / elapsed.as_secs_f64(),
        cpu_ns_per_message: cpu.map(|c| c.as_nanos() / u128::from(calls() * MESSAGES_PER_CALL)),
        retransmissions: uac.counter("Retransmissions(C)"),
    }
}

#[test]
fn two_thousand_calls_over_udp_and_tcp_all_succeed() {
    let figures: Vec<Figures> = [Mode::Udp, Mode::TcpPerCall, Mode::TcpShared]
        .into_iter()
        .map(load)
        .collect();
    eprintln!("{} calls at {}/s through 2 workers:", calls(), rate());
    eprintln!("  mode         calls/s   proxy CPU ns/message   uac retransmissions");
    for f in &figures {
        let cpu = f
            .cpu_ns_per_message
            .map_or("n/a".to_string(), |n| n.to_string());
        eprintln!(
            "  {:<11} {:>8.0}   {:>20}   {:>19}",
            format!("{:?}", f.mode),
            f.calls_per_second,
            cpu,
            f.retransmissions
        );
    }
}
