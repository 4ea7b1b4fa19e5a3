//! The hot path does not allocate: with a counting global allocator, a thousand request /
//! response round trips through two workers cost no heap allocation at all. The test thread
//! itself only reuses buffers built before the measured window.

mod runtime_support;

use runtime_support::sip::{invite, response, top_via_sent_by};
use runtime_support::{loopback_settings, peer, recv_text, start_proxy};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const ROUND_TRIPS: usize = 1_000;

#[test]
fn round_trips_through_the_workers_allocate_nothing() {
    let (proxy, proxy_addr) = start_proxy(&loopback_settings(2));
    let (bob, alice) = (peer(), peer());
    let (bob_addr, alice_addr) = (bob.local_addr().unwrap(), alice.local_addr().unwrap());

    // Warm up: one round trip builds the bytes the loop reuses. The stateless proxy
    // rewrites the same request into the same bytes every time.
    let request = invite(bob_addr, alice_addr, "no-alloc").into_bytes();
    bob.send_to(&request, proxy_addr).unwrap();
    let (forwarded, _) = recv_text(&alice);
    let answer = response(&forwarded, 200, "OK").into_bytes();
    let via = top_via_sent_by(&forwarded).unwrap();
    alice.send_to(&answer, via).unwrap();
    recv_text(&bob);
    let mut buf = vec![0u8; 65_536];

    let before = alloc_support::in_process();
    for _ in 0..ROUND_TRIPS {
        bob.send_to(&request, proxy_addr).unwrap();
        alice.recv_from(&mut buf).unwrap();
        alice.send_to(&answer, via).unwrap();
        bob.recv_from(&mut buf).unwrap();
    }
    let during = alloc_support::in_process() - before;

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
