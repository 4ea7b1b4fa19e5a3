//! Forwarding to a name found in a warm DNS cache does not allocate: with a counting global
//! allocator, a thousand request / response round trips through two workers, each request's
//! Request-URI a name resolved by RFC 3263 (SRV with two priorities, then A) from the shared
//! cache, with the resolver's threads idle beside them, cost no heap allocation at all.
//! The cache is filled once from a real dnsmasq (skipped without it, unless
//! FERROVIA_REQUIRE_TOOLS is set). A separate binary from the other allocation tests: the
//! count is process-wide.

mod dns_support;
mod runtime_support;

use std::time::Duration;

use dns_support::{Dnsmasq, dnsmasq_present, host, srv};
use runtime_support::round_trips::RoundTrips;
use runtime_support::{free_udp_port, loopback_settings, peer, start_proxy};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const ROUND_TRIPS: usize = 1_000;

#[test]
fn forwarding_to_a_cached_name_allocates_nothing() {
    if !dnsmasq_present("forwarding_to_a_cached_name_allocates_nothing") {
        return;
    }
    let (bob, alice) = (peer(), peer());
    let (bob_addr, alice_port) = (
        bob.local_addr().unwrap(),
        alice.local_addr().unwrap().port(),
    );
    let dns = Dnsmasq::start(
        free_udp_port(),
        &[
            srv("_sip._udp.warm.test", "a.warm.test", alice_port, 0, 1),
            srv("_sip._udp.warm.test", "b.warm.test", 9, 10, 1),
            host("a.warm.test", "127.0.0.1", 3600),
            host("b.warm.test", "127.0.0.1", 3600),
        ],
        3600,
    );
    let mut settings = loopback_settings(2);
    settings.dns.enabled = true;
    settings.dns.config.servers = vec![dns.addr];
    let (proxy, proxy_addr) = start_proxy(&settings);
    let request = format!(
        "MESSAGE sip:alice@warm.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP {bob_addr};branch=z9hG4bK-warm;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@{bob_addr}>;tag=b\r\n\
         To: <sip:alice@warm.test>\r\n\
         Call-ID: warm@ferrovia.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes();
    // Warm up: the first request parks until the resolver answers and fills the cache.
    let mut trips = RoundTrips::warm_with(proxy_addr, bob, alice, request);
    let before = alloc_support::in_process();
    trips.run(ROUND_TRIPS, |_, _| {});
    let during = alloc_support::in_process() - before;

    std::thread::sleep(Duration::from_millis(50));
    let snapshot = proxy.snapshot();
    let dns_stats = snapshot.dns().cloned().unwrap();
    drop(proxy.shutdown());
    drop(dns);
    assert!(dns_stats.hits >= ROUND_TRIPS as u64, "{dns_stats:?}");
    assert_eq!(
        during, 0,
        "{during} allocations in {ROUND_TRIPS} round trips"
    );
}
