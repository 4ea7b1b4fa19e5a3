//! Parking allocates nothing once warm: a thousand requests that each park, have their name
//! resolved by a side thread, wake their worker and are resumed and forwarded, plus their
//! answers back, with zero heap allocations in the whole process (workers, side thread, test).

mod runtime_support;

use std::net::IpAddr;

use ferrovia::proxy::{Answer, Query};
use ferrovia::runtime::SideService;
use ferrovia::service::ServiceOptions;
use runtime_support::round_trips::RoundTrips;
use runtime_support::{loopback_settings, peer, start_service_with};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const ROUND_TRIPS: usize = 1_000;

/// Every name is 127.0.0.1, answered at once.
struct Loopback;

impl SideService for Loopback {
    fn answer(&mut self, _query: &Query) -> Option<Answer> {
        Some(Answer::Address(IpAddr::from([127, 0, 0, 1])))
    }
}

#[test]
fn parking_and_resuming_allocate_nothing() {
    let options = ServiceOptions {
        resolver: Some(Box::new(Loopback)),
        ..ServiceOptions::default()
    };
    let proxy = start_service_with(&loopback_settings(2), options);
    let addr = proxy.local_addrs()[0];
    let (bob, alice) = (peer(), peer());
    let (from, port) = (
        bob.local_addr().unwrap(),
        alice.local_addr().unwrap().port(),
    );
    let request = format!(
        "MESSAGE sip:alice@far.test:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-park;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@{from}>;tag=b\r\n\
         To: <sip:alice@far.test>\r\n\
         Call-ID: park@ferrovia.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes();
    // Warm up: the parking slot's buffer grows to the message once.
    let mut trips = RoundTrips::warm_with(addr, bob, alice, request);
    let before = alloc_support::in_process();
    trips.run(ROUND_TRIPS, |_, _| {});
    let during = alloc_support::in_process() - before;

    let total = proxy.shutdown().counters();
    assert_eq!(total.forwarded_total(), 2 * (ROUND_TRIPS as u64 + 1));
    assert_eq!(
        during, 0,
        "{during} allocations in {ROUND_TRIPS} parked round trips"
    );
}
