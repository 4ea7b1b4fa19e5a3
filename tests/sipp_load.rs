//! A sipp load run: built-in uac → ferrovia (2 workers) → built-in uas, 3,000 calls at
//! 1,000 calls/s. Every call must succeed with no unexpected message: a proxy that
//! reordered a flow's 180/200 would fail calls here. The uac uses one socket per call
//! (`-t un`) so the calls' flows spread over both workers.

mod runtime_support;

use std::time::Duration;

use runtime_support::free_udp_port;
use runtime_support::process::{Ferrovia, Sipp};

const CALLS: u64 = 3_000;
const RATE: u64 = 1_000;
/// Bound on each sipp run (the load itself takes a few seconds).
const SIPP_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn three_thousand_calls_at_1000_per_second_through_two_workers() {
    let uas_port = free_udp_port();
    let next_hop = format!("sip:127.0.0.1:{uas_port}");
    let proxy = Ferrovia::start(
        &[
            "--listen",
            "udp:127.0.0.1:0",
            "--workers",
            "2",
            "--next-hop",
            &next_hop,
            "--metrics",
            "off",
        ],
        1,
    );
    let uas = Sipp::load_uas("load-uas", uas_port, CALLS, None);

    let mut uac_args = vec![proxy.addr().to_string(), "-sn".into(), "uac".into()];
    uac_args.extend(Sipp::load_args(free_udp_port(), CALLS, None));
    let rate = RATE.to_string();
    let uac_extra = ["-t", "un", "-max_socket", "1000", "-r", &rate, "-l", "1000"];
    uac_args.extend(uac_extra.map(String::from));
    let uac = Sipp::start("load-uac", &uac_args).finish(SIPP_LIMIT);
    // Read while the uas still lingers over its last call (sipp's time-wait).
    let uas_kernel_drops = udp_socket_drops(uas_port);
    let uas = uas.finish(SIPP_LIMIT);
    let cpu = proxy.cpu_time();
    let (status, proxy_log) = proxy.terminate();

    let context = format!(
        "uac: {uac:#?}\nuas: {uas:#?}\nuas socket kernel drops: {uas_kernel_drops:?}\n\
         proxy:\n{proxy_log}"
    );
    assert!(status.success(), "{context}");
    assert_eq!(uac.code, Some(0), "{context}");
    assert_eq!(uac.counter("SuccessfulCall(C)"), CALLS, "{context}");
    assert_eq!(uac.counter("FailedCall(C)"), 0, "{context}");
    assert_eq!(uac.counter("FailedUnexpectedMessage(C)"), 0, "{context}");
    assert_eq!(uas.counter("FailedUnexpectedMessage(C)"), 0, "{context}");
    assert_eq!(uas.counter("FailedCall(C)"), 0, "{context}");
    eprintln!(
        "sipp load: {} calls ok, {} failed, {} retransmissions at the uac\n{proxy_log}",
        uac.counter("SuccessfulCall(C)"),
        uac.counter("FailedCall(C)"),
        uac.counter("Retransmissions(C)")
    );
    if let Some(cpu) = cpu {
        // 6 messages per call in (INVITE, 180, 200, ACK, BYE, 200), each forwarded once.
        let messages = CALLS * 6;
        let per_message = cpu.as_nanos() / u128::from(messages);
        eprintln!("ferrovia CPU: {cpu:?} for {messages} messages ({per_message} ns/message)");
    }
}

/// The kernel's drop count for the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp);
/// `None` once the socket is closed. Diagnostics only: where a lost message was lost.
fn udp_socket_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some(&local))
        .and_then(|line| line.split_whitespace().last()?.parse().ok())
}
