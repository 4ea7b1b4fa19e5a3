//! The hot path does not allocate: with a counting global allocator, a thousand request /
//! response round trips through two workers cost no heap allocation at all. The test thread
//! itself only reuses buffers built before the measured window.

mod runtime_support;

use runtime_support::round_trips::RoundTrips;
use runtime_support::sip::invite;
use runtime_support::{loopback_settings, start_proxy};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const ROUND_TRIPS: usize = 1_000;

#[test]
fn round_trips_through_the_workers_allocate_nothing() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(2));
    let mut calls = RoundTrips::warm(proxy_addr, |bob, alice| {
        invite(bob, alice, "no-alloc").into_bytes()
    });
    let during = alloc_support::in_process_during(|| calls.run(ROUND_TRIPS, |_, _| {}));

    let total = proxy.shutdown().counters();
    assert_eq!(
        total.forwarded_total(),
        2 * (ROUND_TRIPS as u64 + 1),
        "{total:?}"
    );
    assert_eq!(
        during, 0,
        "{during} allocations in {ROUND_TRIPS} round trips"
    );
}
