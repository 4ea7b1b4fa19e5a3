//! Destination groups named in DNS, against a real DNS server (dnsmasq on a loopback port):
//! a destination `sip:farm.test` is resolved at start by RFC 3263 (here SRV → two targets)
//! into one destination per address, each shown with its own state and counters, and both get
//! calls; a name whose record changes is followed once its TTL has passed. Skipped with a
//! message when dnsmasq is missing, unless FERROVIA_REQUIRE_TOOLS is set.

mod dns_support;
mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use dns_support::{Dnsmasq, dnsmasq_present, host, srv};
use ferrovia::groups::{DestinationConfig, GroupConfig, ProbeConfig};
use ferrovia::service::Service;
use ferrovia::settings::Settings;
use runtime_support::{free_udp_port, loopback_settings, peer, start_service};

/// A proxy sending everything to group `core` = `uri`, names asked of `server`, no probes.
fn proxy(uri: &str, server: SocketAddr) -> (Service, SocketAddr) {
    let destination = DestinationConfig::parse(uri, 1, 0, |_| None).unwrap();
    let mut group = GroupConfig::new("core", vec![destination]);
    group.probe = ProbeConfig {
        enabled: false,
        ..ProbeConfig::default()
    };
    let mut settings: Settings = loopback_settings(1);
    settings.groups = vec![group];
    settings.route_to_group = Some("core".into());
    settings.dns.enabled = true;
    settings.dns.config.servers = vec![server];
    settings.dns.config.timeout = Duration::from_millis(300);
    let service = start_service(&settings);
    let addr = service.local_addrs()[0];
    (service, addr)
}

fn invite(from: SocketAddr, call: &str) -> String {
    format!(
        "INVITE sip:+4930{call}@example.net SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK{call};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@example.org>;tag=f{call}\r\n\
         To: <sip:+4930{call}@example.net>\r\n\
         Call-ID: {call}@caller\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn quick(socket: &UdpSocket) -> bool {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    socket.recv_from(&mut buf).is_ok()
}

#[test]
fn a_named_destination_becomes_one_destination_per_address() {
    if !dnsmasq_present("a_named_destination_becomes_one_destination_per_address") {
        return;
    }
    let (a, b) = (peer(), peer());
    let p = |s: &UdpSocket| s.local_addr().unwrap().port();
    let dns = Dnsmasq::start(
        free_udp_port(),
        &[
            srv("_sip._udp.farm.test", "a.farm.test", p(&a), 0, 1),
            srv("_sip._udp.farm.test", "b.farm.test", p(&b), 0, 1),
            host("a.farm.test", "127.0.0.1", 600),
            host("b.farm.test", "127.0.0.1", 600),
        ],
        600,
    );
    let (service, addr) = proxy("sip:farm.test", dns.addr);
    let groups = service.snapshot().groups().cloned().unwrap();
    let mut found: Vec<String> = groups.groups[0]
        .destinations
        .iter()
        .map(|d| d.address.clone())
        .collect();
    found.sort();
    let mut wanted = vec![
        format!("127.0.0.1:{}", p(&a)),
        format!("127.0.0.1:{}", p(&b)),
    ];
    wanted.sort();
    assert_eq!(found, wanted, "{groups:?}");
    assert_eq!(groups.groups[0].live, 2);

    let caller = peer();
    let from = caller.local_addr().unwrap();
    let (mut to_a, mut to_b) = (0, 0);
    for i in 0..40 {
        caller
            .send_to(invite(from, &format!("farm-{i}")).as_bytes(), addr)
            .unwrap();
        if quick(&a) {
            to_a += 1;
        } else if quick(&b) {
            to_b += 1;
        }
    }
    assert!(to_a > 0 && to_b > 0, "a {to_a}, b {to_b}");
    assert_eq!(to_a + to_b, 40);
    service.shutdown();
}

#[test]
fn a_named_destination_follows_its_record_once_the_ttl_has_passed() {
    if !dnsmasq_present("a_named_destination_follows_its_record_once_the_ttl_has_passed") {
        return;
    }
    let (before, after) = (peer(), peer());
    let p = |s: &UdpSocket| s.local_addr().unwrap().port();
    let port = free_udp_port();
    let records = |to: &UdpSocket| {
        vec![
            srv("_sip._udp.moving.test", "box.moving.test", p(to), 0, 1),
            host("box.moving.test", "127.0.0.1", 1),
        ]
    };
    let dns = Dnsmasq::start(port, &records(&before), 1);
    let (service, addr) = proxy("sip:moving.test", dns.addr);
    let caller = peer();
    let from = caller.local_addr().unwrap();
    caller
        .send_to(invite(from, "first").as_bytes(), addr)
        .unwrap();
    assert!(
        quick(&before) || quick(&before),
        "the first call went nowhere"
    );
    drop(dns);
    let _dns = Dnsmasq::start(port, &records(&after), 1);
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in 0.. {
        assert!(
            Instant::now() < deadline,
            "the group never followed the new record"
        );
        caller
            .send_to(invite(from, &format!("later-{n}")).as_bytes(), addr)
            .unwrap();
        if quick(&after) {
            break;
        }
        let _ = quick(&before);
    }
    service.shutdown();
}

/// Sends `n` INVITEs (Call-IDs `tag-0`…) and counts how many reach each of `peers`.
fn spread(
    caller: &UdpSocket,
    proxy: SocketAddr,
    peers: &[&UdpSocket],
    tag: &str,
    n: usize,
) -> Vec<usize> {
    let from = caller.local_addr().unwrap();
    for i in 0..n {
        let call = format!("{tag}-{i}");
        caller
            .send_to(invite(from, &call).as_bytes(), proxy)
            .unwrap();
    }
    let mut counts = vec![0; peers.len()];
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts.iter().sum::<usize>() < n && Instant::now() < deadline {
        for (count, peer) in counts.iter_mut().zip(peers) {
            peer.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let mut buf = [0u8; 4096];
            while peer.recv_from(&mut buf).is_ok() {
                *count += 1;
            }
        }
    }
    assert_eq!(
        counts.iter().sum::<usize>(),
        n,
        "every call arrives once: {counts:?}"
    );
    counts
}

#[test]
fn srv_priority_and_weight_choose_among_a_named_destinations_targets() {
    if !dnsmasq_present("srv_priority_and_weight_choose_among_a_named_destinations_targets") {
        return;
    }
    let (a, b, c) = (peer(), peer(), peer());
    let p = |s: &UdpSocket| s.local_addr().unwrap().port();
    let records = |(pa, pb, pc): (u16, u16, u16)| {
        vec![
            srv("_sip._udp.tiers.test", "a.tiers.test", p(&a), pa, 1),
            srv("_sip._udp.tiers.test", "b.tiers.test", p(&b), pb, 3),
            srv("_sip._udp.tiers.test", "c.tiers.test", p(&c), pc, 1),
            host("a.tiers.test", "127.0.0.1", 1),
            host("b.tiers.test", "127.0.0.1", 1),
            host("c.tiers.test", "127.0.0.1", 1),
        ]
    };
    let port = free_udp_port();
    let dns = Dnsmasq::start(port, &records((10, 10, 20)), 1);
    let (service, addr) = proxy("sip:tiers.test", dns.addr);
    let groups = service.snapshot().groups().cloned().unwrap();
    let mut ranks: Vec<(Option<u16>, Option<u16>)> = groups.groups[0]
        .destinations
        .iter()
        .map(|d| (d.srv_priority, d.srv_weight))
        .collect();
    ranks.sort();
    let want = [(10, 1), (10, 3), (20, 1)].map(|(pr, w)| (Some(pr), Some(w)));
    assert_eq!(ranks, want, "{groups:?}");

    // RFC 2782: priority 20 waits while priority 10 has a live target; 10 splits 1:3.
    let caller = peer();
    let counts = spread(&caller, addr, &[&a, &b, &c], "tiers", 200);
    assert_eq!(counts[2], 0, "{counts:?}");
    let b_share = counts[1] as f64 / 200.0;
    assert!((0.6..0.9).contains(&b_share), "weights 1:3: {counts:?}");

    // The records change (same addresses): c alone at priority 10. The name is asked again
    // before its 1 s TTL ends, and the new priorities choose.
    drop(dns);
    let _dns = Dnsmasq::start(port, &records((20, 20, 10)), 1);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut round = 0;
    loop {
        round += 1;
        let counts = spread(&caller, addr, &[&a, &b, &c], &format!("flip{round}"), 20);
        if counts[2] == 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new priorities never chose: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    service.shutdown();
}
