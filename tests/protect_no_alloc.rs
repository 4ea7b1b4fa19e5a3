//! Edge protection's path allocates nothing per message: neither the guard on its own (a
//! flood limited then banned, scanners, ten thousand sources evicting each other) nor the
//! workers with protection on, forwarding round trips while a flooder is refused and banned.

mod runtime_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ferrovia::protect::{CidrSet, Limit, ProtectConfig, Protection, ScannerField, Verdict};
use ferrovia::proxy::Transport;
use runtime_support::round_trips::RoundTrips;
use runtime_support::sip::{invite, with_header};
use runtime_support::{loopback_settings, start_proxy};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

/// The worker test counts the whole process: the tests of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config() -> ProtectConfig {
    ProtectConfig {
        allow: CidrSet::parse(&["127.0.0.9"]).unwrap(),
        limits: [Some(Limit {
            per_second: 1000,
            burst: 2000,
        }); 3],
        ban_after: Some(Duration::from_secs(1)),
        sources: 1024,
        scanners: vec![(ScannerField::UserAgent, "sipvicious".into())],
        ..ProtectConfig::default()
    }
}

#[test]
fn the_guard_allocates_nothing_per_message() {
    let _turn = ONE_AT_A_TIME.lock();
    let p = Protection::new(&config(), 7);
    let start = Instant::now();
    let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let msg = invite(local, local, "guard");
    let scanner = with_header(&msg, "User-Agent: SIPVicious").into_bytes();
    let flooder: SocketAddr = "192.0.2.2:5060".parse().unwrap();
    // Warm: nothing is lazily built, but check each path once anyway.
    let _ = p.check(msg.as_bytes(), flooder, local, Transport::Udp, start);

    let mut verdicts = [0u32; 3];
    let during = alloc_support::on_this_thread_during(|| {
        for ms in 0..1500u32 {
            let now = start + Duration::from_millis(u64::from(ms));
            for _ in 0..50 {
                match p.check(msg.as_bytes(), flooder, local, Transport::Udp, now) {
                    Verdict::Pass => verdicts[0] += 1,
                    Verdict::Drop(_) => verdicts[1] += 1,
                    Verdict::Refuse { .. } => verdicts[2] += 1,
                }
            }
            let _ = p.check(&scanner, flooder, local, Transport::Udp, now);
            for i in 0..10u32 {
                let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + ms * 10 + i));
                let _ = p.check(
                    msg.as_bytes(),
                    SocketAddr::new(ip, 5060),
                    local,
                    Transport::Udp,
                    now,
                );
            }
        }
    });
    let bans = p.bans(start + Duration::from_millis(1500));
    assert_eq!(bans.len(), 1, "the flooder was banned");
    assert!(verdicts[0] > 2000 && verdicts[1] > 70_000, "{verdicts:?}");
    assert_eq!(during, 0, "{during} allocations for 91,500 checks");
}

#[test]
fn workers_with_protection_allocate_nothing_per_message() {
    let _turn = ONE_AT_A_TIME.lock();
    let mut settings = loopback_settings(2);
    settings.protect = Some(ProtectConfig {
        limits: [Some(Limit {
            per_second: 100_000,
            burst: 100_000,
        }); 3],
        ..config()
    });
    let (proxy, proxy_addr) = start_proxy(&settings);
    let mut calls = RoundTrips::warm(proxy_addr, |bob, alice| {
        invite(bob, alice, "no-alloc").into_bytes()
    });
    let request = String::from_utf8_lossy(calls.request()).into_owned();
    let scanner = with_header(&request, "User-Agent: sipvicious").into_bytes();

    // Each request goes with a scanner's, dropped and counted by pattern.
    let during = alloc_support::in_process_during(|| {
        calls.run(1_000, |bob, proxy| {
            bob.send_to(&scanner, proxy).unwrap();
        })
    });

    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded_total(), 2 * 1_001, "{total:?}");
    let scanners = total.dropped(ferrovia::proxy::DropReason::Scanner);
    assert_eq!(scanners, 1_000, "{total:?}");
    assert_eq!(during, 0, "{during} allocations in 1,000 round trips");
}
