//! The hot path does not allocate: with a counting global allocator, a thousand request /
//! response round trips through two workers cost no heap allocation at all. The test thread
//! itself only reuses buffers built before the measured window.

mod runtime_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use runtime_support::sip::{invite, response, top_via_sent_by};
use runtime_support::{loopback_settings, peer, recv_text, start_proxy};

/// Counts every allocation and reallocation in the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..ROUND_TRIPS {
        bob.send_to(&request, proxy_addr).unwrap();
        alice.recv_from(&mut buf).unwrap();
        alice.send_to(&answer, via).unwrap();
        bob.recv_from(&mut buf).unwrap();
    }
    let during = ALLOCATIONS.load(Ordering::SeqCst) - before;

    let total = proxy.shutdown().total();
    assert_eq!(
        total.total_forwarded(),
        2 * (ROUND_TRIPS as u64 + 1),
        "{total:?}"
    );
    assert_eq!(
        during, 0,
        "{during} allocations in {ROUND_TRIPS} round trips"
    );
}
