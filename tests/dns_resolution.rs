//! RFC 3263 through the shipping service against a real DNS server (dnsmasq, started here on
//! a loopback port): NAPTR → SRV → A, SRV priorities, an explicit port (A only), a transport
//! without port (SRV only), an unknown name (503), a record changed after its TTL, and a dead
//! server (names already cached keep working, failures are counted, new names get 503, an
//! expired name is served stale).
//! Skipped with a message when dnsmasq is missing, unless FERROVIA_REQUIRE_TOOLS is set.

mod dns_support;
mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use dns_support::{Dnsmasq, dnsmasq_present, host, naptr, srv};
use ferrovia::service::Service;
use ferrovia::settings::Settings;
use runtime_support::sip::status;
use runtime_support::{free_udp_port, loopback_settings, peer, recv_text, start_service};

/// A proxy on loopback asking `server`, one attempt of 300 ms per question.
fn proxy(server: SocketAddr) -> (Service, SocketAddr) {
    let mut settings: Settings = loopback_settings(1);
    settings.dns.enabled = true;
    settings.dns.config.servers = vec![server];
    settings.dns.config.timeout = Duration::from_millis(300);
    settings.dns.config.attempts = 1;
    let service = start_service(&settings);
    let addr = service.local_addrs()[0];
    (service, addr)
}

fn message(from: SocketAddr, ruri: &str, call: &str) -> String {
    format!(
        "MESSAGE {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@{from}>;tag=b\r\n\
         To: <{ruri}>\r\n\
         Call-ID: {call}@dns.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends a MESSAGE for `ruri` from `bob` and returns it as it reached `at`.
fn forwarded(bob: &UdpSocket, proxy: SocketAddr, ruri: &str, call: &str, at: &UdpSocket) -> String {
    let from = bob.local_addr().unwrap();
    bob.send_to(message(from, ruri, call).as_bytes(), proxy)
        .unwrap();
    let (text, _) = recv_text(at);
    assert!(
        text.contains(&format!("Call-ID: {call}@dns.test")),
        "{text}"
    );
    text
}

/// Sends a MESSAGE for `ruri` from `bob` and returns the status the proxy answered.
fn answered(bob: &UdpSocket, proxy: SocketAddr, ruri: &str, call: &str) -> (u16, String) {
    let from = bob.local_addr().unwrap();
    bob.send_to(message(from, ruri, call).as_bytes(), proxy)
        .unwrap();
    let (text, _) = recv_text(bob);
    (status(&text).expect("a response"), text)
}

#[test]
fn naptr_srv_and_a_records_route_requests() {
    if !dnsmasq_present("naptr_srv_and_a_records_route_requests") {
        return;
    }
    let (primary, backup, tcp_only) = (peer(), peer(), peer());
    let p = |s: &UdpSocket| s.local_addr().unwrap().port();
    let dns = Dnsmasq::start(
        free_udp_port(),
        &[
            naptr("farm.test", 10, 10, "SIP+D2U", "_sip._udp.farm.test"),
            naptr("farm.test", 20, 10, "SIP+D2T", "_sip._tcp.farm.test"),
            srv("_sip._udp.farm.test", "a.farm.test", p(&primary), 10, 1),
            srv("_sip._udp.farm.test", "b.farm.test", p(&backup), 20, 1),
            srv("_sip._udp.plain.test", "b.farm.test", p(&backup), 0, 1),
            host("a.farm.test", "127.0.0.1", 600),
            host("b.farm.test", "127.0.0.1", 600),
            host("plain.test", "127.0.0.1", 600),
        ],
        600,
    );
    let (service, addr) = proxy(dns.addr);
    let bob = peer();

    // RFC 3263 §4.1: NAPTR (UDP preferred by order) → SRV → the priority-10 target.
    forwarded(&bob, addr, "sip:alice@farm.test", "naptr-1", &primary);
    // The same name again: from the cache, same target.
    forwarded(&bob, addr, "sip:alice@farm.test", "naptr-2", &primary);
    // §4.2: a port given → A only, at that port.
    let port = p(&tcp_only);
    forwarded(
        &bob,
        addr,
        &format!("sip:alice@b.farm.test:{port}"),
        "a-only",
        &tcp_only,
    );
    // §4.2: a transport without a port → that transport's SRV (no NAPTR for plain.test).
    forwarded(
        &bob,
        addr,
        "sip:alice@plain.test;transport=udp",
        "srv-only",
        &backup,
    );
    // §4.1 without NAPTR: SRV of _sip._udp.
    forwarded(&bob, addr, "sip:alice@plain.test", "srv-fallback", &backup);
    // A name dnsmasq does not know: NXDOMAIN → 503.
    let (code, text) = answered(&bob, addr, "sip:alice@gone.test", "gone");
    assert_eq!(code, 503, "{text}");

    let dns = wait_for_dns(&service, |d| d.hits >= 1 && d.misses >= 4);
    assert!(dns.entries >= 4, "{dns:?}");
    assert_eq!(dns.failures, 0, "{dns:?}");
    service.shutdown();
}

#[test]
fn a_changed_record_is_seen_once_its_ttl_has_passed() {
    if !dnsmasq_present("a_changed_record_is_seen_once_its_ttl_has_passed") {
        return;
    }
    let (first, second) = (peer(), peer());
    let p = |s: &UdpSocket| s.local_addr().unwrap().port();
    let port = free_udp_port();
    let records = |to: &UdpSocket| {
        vec![
            srv("_sip._udp.moving.test", "box.moving.test", p(to), 0, 1),
            host("box.moving.test", "127.0.0.1", 1),
        ]
    };
    let dns = Dnsmasq::start(port, &records(&first), 1);
    let (service, addr) = proxy(dns.addr);
    let bob = peer();
    forwarded(&bob, addr, "sip:alice@moving.test", "before", &first);
    // The record changes (the server restarts with the new one). Within 1 s the cached
    // answer may still send to `first`; after it, `second` must see the requests.
    drop(dns);
    let _dns = Dnsmasq::start(port, &records(&second), 1);
    first
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    let mut n = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "the new record was never used: the TTL is not honoured"
        );
        n += 1;
        let from = bob.local_addr().unwrap();
        let call = format!("after-{n}");
        bob.send_to(
            message(from, "sip:alice@moving.test", &call).as_bytes(),
            addr,
        )
        .unwrap();
        if second.recv_from(&mut buf).is_ok() {
            break;
        }
        let _ = first.recv_from(&mut buf);
    }
    service.shutdown();
}

#[test]
fn a_dead_server_keeps_cached_names_counts_failures_and_refuses_new_names() {
    if !dnsmasq_present("a_dead_server_keeps_cached_names_counts_failures_and_refuses_new_names") {
        return;
    }
    let core = peer();
    let port = core.local_addr().unwrap().port();
    let dns = Dnsmasq::start(
        free_udp_port(),
        &[
            srv("_sip._udp.kept.test", "core.kept.test", port, 0, 1),
            host("core.kept.test", "127.0.0.1", 3600),
        ],
        3600,
    );
    let (service, addr) = proxy(dns.addr);
    let bob = peer();
    forwarded(&bob, addr, "sip:alice@kept.test", "alive", &core);
    drop(dns);
    // Cached for an hour: served without the server.
    forwarded(&bob, addr, "sip:alice@kept.test", "cached", &core);
    // Never resolved: the questions time out, the request gets 503.
    let (code, text) = answered(&bob, addr, "sip:alice@new.test", "new");
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("503 Unresolvable Destination"), "{text}");
    let dns = wait_for_dns(&service, |d| d.failures >= 1);
    assert!(dns.timeouts >= 1, "{dns:?}");
    assert!(dns.hits >= 1, "{dns:?}");
    service.shutdown();
}

#[test]
fn an_expired_name_is_served_stale_while_the_server_is_dead() {
    if !dnsmasq_present("an_expired_name_is_served_stale_while_the_server_is_dead") {
        return;
    }
    let core = peer();
    let port = core.local_addr().unwrap().port();
    let dns = Dnsmasq::start(
        free_udp_port(),
        &[
            srv("_sip._udp.brief.test", "core.brief.test", port, 0, 1),
            host("core.brief.test", "127.0.0.1", 1),
        ],
        1,
    );
    let (service, addr) = proxy(dns.addr);
    let bob = peer();
    forwarded(&bob, addr, "sip:alice@brief.test", "fresh", &core);
    drop(dns);
    // Past the 1 s TTL (a wait, not a timing assertion): the entry has expired.
    std::thread::sleep(Duration::from_millis(1500));
    // RFC 8767: the server fails, the expired answer is served again.
    forwarded(&bob, addr, "sip:alice@brief.test", "stale", &core);
    let dns = wait_for_dns(&service, |d| d.stale_served >= 1);
    assert!(dns.failures >= 1, "{dns:?}");
    service.shutdown();
}

/// The DNS counters once `ready` holds (the stats thread hands them over every 10 ms).
fn wait_for_dns(
    service: &Service,
    ready: impl Fn(&ferrovia::dns::DnsSnapshot) -> bool,
) -> ferrovia::dns::DnsSnapshot {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snapshot = service.snapshot();
        let dns = snapshot.dns().cloned().expect("the resolver is wired");
        if ready(&dns) {
            return dns;
        }
        assert!(Instant::now() < deadline, "{dns:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
