//! The hot path allocates nothing: scanning, deciding and rewriting a whole call's messages
//! (INVITE with SDP, 180, 200 with SDP, ACK, BYE) and a REGISTER, in a loop, performs zero heap
//! allocations after warm-up. Counted by a global allocator, on this thread only.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome};
use ferrovia::sip::Message;

struct Counting;

thread_local! {
    // Per thread, so that tests running in parallel do not count each other's allocations.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: delegates to the system allocator; the counter is a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    // Guards the test below against a counter that never moves.
    let n = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}

#[test]
fn scan_decide_rewrite_allocates_nothing() {
    let proxy = common::proxy();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let now = Instant::now();
    let mut forwarded = 0u64;
    let mut round = |out: &mut [u8]| {
        for (name, bytes, source) in common::VECTORS {
            let outcome = proxy.handle(common::input(bytes, source, now), out);
            assert!(
                matches!(outcome, Outcome::Forward(_)),
                "{name}: {outcome:?}"
            );
            forwarded += 1;
            let msg = Message::scan(bytes, false).expect("scans");
            std::hint::black_box(msg.headers().len());
        }
    };
    round(&mut out); // warm-up
    let n = allocations_during(|| {
        for _ in 0..1000 {
            round(&mut out);
        }
    });
    assert_eq!(n, 0, "heap allocations on the hot path");
    assert_eq!(forwarded, 6 * 1001);
}
