//! The hot path allocates nothing: scanning, deciding and rewriting a whole call's messages
//! (INVITE with SDP, 180, 200 with SDP, ACK, BYE) and a REGISTER, in a loop, performs zero heap
//! allocations after warm-up. Counted by a global allocator, on this thread only.

mod common;

use std::time::Instant;

use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome};
use ferrovia::sip::Message;

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

#[test]
fn the_counter_counts() {
    // Guards the test below against a counter that never moves.
    let n = alloc_support::on_this_thread_during(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}

#[test]
fn scan_decide_rewrite_allocates_nothing() {
    let mut core = common::core();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let now = Instant::now();
    let mut forwarded = 0u64;
    let mut round = |out: &mut [u8]| {
        for (name, bytes, source) in common::VECTORS {
            let outcome = core.handle(common::input(bytes, source, now), out);
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
    let n = alloc_support::on_this_thread_during(|| {
        for _ in 0..1000 {
            round(&mut out);
        }
    });
    assert_eq!(n, 0, "heap allocations on the hot path");
    assert_eq!(forwarded, 6 * 1001);
}
