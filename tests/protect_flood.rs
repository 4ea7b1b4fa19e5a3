//! A flood beside real calls: one source (127.0.0.2) sends 50,000 INVITEs/s for 10 s through
//! the project's load generator while sipp on 127.0.0.1 runs 1,000 calls at 200 calls/s through
//! the same proxy, configured as the worked example (routing by Request-URI instead of to a
//! fixed core, so each side reaches its own peer). Every sipp call must succeed, the flooder
//! must be listed at `/bans` about a second after its first refused request, and the proxy's
//! resident memory must stay put. The figures (ban delay, RSS, CPU) are printed, not asserted
//! against a clock.

mod protect_support;
mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ferrovia_loadgen::sender::{SendPlan, Sender};
use ferrovia_loadgen::sip::{Method, RequestSpec, RunId};
use protect_support::{banned, example_config, http, rss_kib, start};
use runtime_support::free_udp_port;
use runtime_support::process::Sipp;

const CALLS: u64 = 1_000;
const FLOOD_RATE: u64 = 50_000;
const FLOOD_SECS: u64 = 10;
const SIPP_LIMIT: Duration = Duration::from_secs(120);

/// Sends the flood from 127.0.0.2 toward `sink` (named in its Request-URI and Route).
fn flood(proxy: SocketAddr, sink: SocketAddr) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let source = "127.0.0.2".parse().unwrap();
        let mut sender = Sender::open_from(proxy, Some(source), 64, 16).unwrap();
        let plan = SendPlan {
            spec: RequestSpec {
                method: Method::Invite,
                reflector: sink,
                route: true,
                size: 600,
                run: RunId(0),
            },
            rate: FLOOD_RATE,
            count: FLOOD_RATE * FLOOD_SECS,
            duration: Duration::from_secs(FLOOD_SECS),
            grace: Duration::from_millis(100),
        };
        sender.run(&plan, &AtomicBool::new(false)).unwrap().sent
    })
}

#[test]
fn a_flooder_is_banned_while_a_thousand_calls_go_through() {
    let config = example_config("flood", "");
    let (proxy, metrics) = start(&config);
    let pid = proxy.pid().unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap(); // never read: the kernel drops
    let uas_port = free_udp_port();
    let uas = Sipp::load_uas("flood-uas", uas_port, CALLS, None);
    let rss_before = rss_kib(pid).unwrap_or(0);
    let cpu_before = proxy.cpu_time();

    let start_flood = Instant::now();
    let flooder = flood(proxy.addr(), sink.local_addr().unwrap());
    // The calls start while the flood is still only rate-limited, and go on once it is banned.
    std::thread::sleep(Duration::from_millis(200));
    let mut uac_args = vec![format!("127.0.0.1:{uas_port}"), "-rsa".into()];
    uac_args.push(proxy.addr().to_string());
    uac_args.extend(["-sn".into(), "uac".into()]);
    uac_args.extend(Sipp::load_args(free_udp_port(), CALLS, None));
    let uac_extra = ["-t", "un", "-max_socket", "200", "-r", "200", "-l", "400"];
    uac_args.extend(uac_extra.map(String::from));
    let uac = Sipp::start("flood-uac", &uac_args);

    let mut banned_after = None;
    let mut rss_peak = rss_before;
    while start_flood.elapsed() < Duration::from_secs(FLOOD_SECS + 1) {
        if banned_after.is_none() && banned(metrics, "127.0.0.2") {
            banned_after = Some(start_flood.elapsed());
        }
        rss_peak = rss_peak.max(rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = flooder.join().unwrap();
    let uac = uac.finish(SIPP_LIMIT);
    let uas = uas.finish(SIPP_LIMIT);
    let cpu = proxy
        .cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let (_, text) = http(metrics, "GET", "/metrics");
    let dropped = |reason: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("ferrovia_dropped_total{"))
            .filter(|l| l.contains(&format!("reason=\"{reason}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let (rate, ban) = (dropped("rate"), dropped("ban"));
    let rss_after = rss_kib(pid).unwrap_or(0);
    let (status, log) = proxy.terminate();

    let context = format!("uac: {uac:#?}\nuas: {uas:#?}\nproxy:\n{log}");
    eprintln!(
        "flood: {sent} sent from 127.0.0.2 in {FLOOD_SECS} s; dropped {rate} over the limit, \
         {ban} banned; listed at /bans {banned_after:?} after the flood started (its first \
         refusal comes ~40 ms in, after the burst of 2,000); proxy RSS {rss_before} KiB \
         before, {rss_peak} KiB peak, {rss_after} KiB after; proxy CPU {cpu:?} for the whole \
         run; sipp: {} calls ok, {} failed, {} retransmissions",
        uac.counter("SuccessfulCall(C)"),
        uac.counter("FailedCall(C)"),
        uac.counter("Retransmissions(C)")
    );
    assert!(status.success(), "{context}");
    assert_eq!(uac.counter("SuccessfulCall(C)"), CALLS, "{context}");
    assert_eq!(uac.counter("FailedCall(C)"), 0, "{context}");
    assert_eq!(uas.counter("FailedCall(C)"), 0, "{context}");
    let banned_after = banned_after.unwrap_or_else(|| panic!("never banned\n{context}"));
    // A second over the limit after the burst; the bound is loose for a busy machine.
    assert!(
        banned_after < Duration::from_secs(4),
        "{banned_after:?}\n{context}"
    );
    assert!(ban > 0 && rate > 0, "{text}");
    // The tables are allocated at start: the flood adds nothing but noise.
    assert!(
        rss_peak < rss_before + 16 * 1024,
        "{rss_before} -> {rss_peak} KiB"
    );
    assert_eq!(
        log.matches("protect] banned 127.0.0.2").count(),
        1,
        "logged once: {log}"
    );
}
