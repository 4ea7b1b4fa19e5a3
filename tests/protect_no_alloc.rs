//! Edge protection's path allocates nothing per message: neither the guard on its own (a
//! flood limited then banned, scanners, ten thousand sources evicting each other) nor the
//! workers with protection on, forwarding round trips while a flooder is refused and banned.

mod runtime_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ferrovia::protect::{CidrSet, Limit, ProtectConfig, Protection, ScannerField, Verdict};
use ferrovia::proxy::Transport;
use runtime_support::sip::{invite, response, top_via_sent_by};
use runtime_support::{loopback_settings, peer, recv_text, start_proxy};

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
    let msg = invite(local, local, "guard").into_bytes();
    let scanner = String::from_utf8(msg.clone())
        .unwrap()
        .replace("Content-Length", "User-Agent: SIPVicious\r\nContent-Length")
        .into_bytes();
    let flooder: SocketAddr = "192.0.2.2:5060".parse().unwrap();
    // Warm: nothing is lazily built, but check each path once anyway.
    let _ = p.check(&msg, flooder, local, Transport::Udp, start);

    let before = alloc_support::on_this_thread();
    let mut verdicts = [0u32; 3];
    for ms in 0..1500u32 {
        let now = start + Duration::from_millis(u64::from(ms));
        for _ in 0..50 {
            match p.check(&msg, flooder, local, Transport::Udp, now) {
                Verdict::Pass => verdicts[0] += 1,
                Verdict::Drop(_) => verdicts[1] += 1,
                Verdict::Refuse { .. } => verdicts[2] += 1,
            }
        }
        let _ = p.check(&scanner, flooder, local, Transport::Udp, now);
        for i in 0..10u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + ms * 10 + i));
            let _ = p.check(&msg, SocketAddr::new(ip, 5060), local, Transport::Udp, now);
        }
    }
    let during = alloc_support::on_this_thread() - before;
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
    let (bob, alice) = (peer(), peer());
    let (bob_addr, alice_addr) = (bob.local_addr().unwrap(), alice.local_addr().unwrap());
    let request = invite(bob_addr, alice_addr, "no-alloc").into_bytes();
    bob.send_to(&request, proxy_addr).unwrap();
    let (forwarded, _) = recv_text(&alice);
    let answer = response(&forwarded, 200, "OK").into_bytes();
    let via = top_via_sent_by(&forwarded).unwrap();
    alice.send_to(&answer, via).unwrap();
    recv_text(&bob);
    let scanner = String::from_utf8(request.clone())
        .unwrap()
        .replace("Content-Length", "User-Agent: sipvicious\r\nContent-Length")
        .into_bytes();
    let mut buf = vec![0u8; 65_536];

    let before = alloc_support::in_process();
    for _ in 0..1_000 {
        bob.send_to(&request, proxy_addr).unwrap();
        bob.send_to(&scanner, proxy_addr).unwrap(); // dropped, counted by pattern
        alice.recv_from(&mut buf).unwrap();
        alice.send_to(&answer, via).unwrap();
        bob.recv_from(&mut buf).unwrap();
    }
    let during = alloc_support::in_process() - before;

    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded_total(), 2 * 1_001, "{total:?}");
    let scanners = total.dropped(ferrovia::proxy::DropReason::Scanner);
    assert_eq!(scanners, 1_000, "{total:?}");
    assert_eq!(during, 0, "{during} allocations in 1,000 round trips");
}
