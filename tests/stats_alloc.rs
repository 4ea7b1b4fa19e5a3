//! Proof that a worker's statistics allocate nothing in steady state: recording samples and
//! handing off interval after interval, the worker thread makes zero heap allocations after
//! warm-up. A counting global allocator (one per test binary, hence this file) counts the
//! allocations of the thread that asks.

use std::time::Duration;

use ferrovia::proxy::{Direction, DropReason};
use ferrovia::stats::{self, StatsConfig, WorkerStats};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const SAMPLES_PER_INTERVAL: u64 = 1_000;
const WARM_UP_INTERVALS: u64 = 3;
const INTERVALS: u64 = 500;
const SPIN_LIMIT: u64 = 100_000_000;

/// xorshift64: varied latencies from 1 ns to past the histograms' 60 s top.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn record_interval(w: &mut WorkerStats, rng: &mut u64) {
    w.received(SAMPLES_PER_INTERVAL);
    for i in 0..SAMPLES_PER_INTERVAL {
        let latency = next(rng) >> (next(rng) % 64);
        match i % 10 {
            0 => w.replied(400 + (i % 200) as u16, latency),
            1 => w.dropped(DropReason::ALL[(i as usize / 10) % DropReason::COUNT]),
            2..=5 => w.forwarded(Direction::Request, latency),
            _ => w.forwarded(Direction::Response, latency),
        }
    }
    w.send_error();
    w.kernel_drops(next(rng) % 1_000);
}

/// Records an interval, waits for the recycled spare, and hands off at the interval's end.
fn one_interval(w: &mut WorkerStats, rng: &mut u64, at: std::time::Instant) {
    record_interval(w, rng);
    // The stats thread sends the spare back soon; the bound only turns a dead stats thread
    // into a failure instead of a hang.
    let mut spins = 0u64;
    while !w.hand_off_ready() {
        spins += 1;
        assert!(
            spins < SPIN_LIMIT,
            "the stats thread never recycled an interval"
        );
        std::thread::yield_now();
    }
    w.maybe_flush(at);
}

#[test]
fn recording_and_handing_off_allocate_nothing_after_warm_up() {
    let interval = Duration::from_secs(1);
    let config = StatsConfig {
        workers: 1,
        interval,
        metrics: None,
        ..StatsConfig::default()
    };
    let counted = alloc_support::on_this_thread();
    std::hint::black_box(Box::new(1u64));
    assert!(
        alloc_support::on_this_thread() > counted,
        "the counting allocator counts"
    );
    let (handle, workers) = stats::start(config).expect("stats start");
    let mut w = workers.into_iter().next().expect("one worker");
    let mut rng = 0x9E37_79B9_7F4A_7C15;
    let mut now = std::time::Instant::now();
    for _ in 0..WARM_UP_INTERVALS {
        now += interval;
        one_interval(&mut w, &mut rng, now);
    }
    let before = alloc_support::on_this_thread();
    for _ in 0..INTERVALS {
        now += interval;
        one_interval(&mut w, &mut rng, now);
    }
    let during = alloc_support::on_this_thread() - before;
    drop(w);
    let last = handle.shutdown();
    assert_eq!(during, 0, "allocations while recording and handing off");
    let counters = last.merged().cumulative.counters();
    let total = (WARM_UP_INTERVALS + INTERVALS) * SAMPLES_PER_INTERVAL;
    assert_eq!(counters.received(), total);
    assert_eq!(counters.forwarded_total(), total * 8 / 10);
    assert_eq!(counters.replied_total(), total / 10);
    assert_eq!(counters.dropped_total(), total / 10);
    // The last hand-off carried exactly one interval: none was held back and merged.
    let last_interval = last.merged().last_interval.counters();
    assert_eq!(last_interval.received(), SAMPLES_PER_INTERVAL);
    assert_eq!(last.merged().last_interval.period(), interval);
}
