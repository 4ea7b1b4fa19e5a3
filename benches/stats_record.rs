//! The cost of statistics on the hot path, in ns per message:
//! - `forwarded`: one histogram record and counter increment, latencies varying like real
//!   traffic (2 µs to 1 ms) so the histogram's buckets are not all in one cache line;
//! - `maybe_flush_not_due`: the per-loop check when the interval has not ended;
//! - `per_message`: what a worker pays per forwarded message (`received`, `forwarded`,
//!   `maybe_flush` not due);
//! - `hand_off_wall` / `hand_off_thread_cpu`: one interval handed to the stats thread (a swap,
//!   a channel send, waking the stats thread), once a second per worker in a real run. Wall
//!   time includes any time the woken stats thread runs on the worker's core; thread CPU time
//!   is the worker's own work.
//!
//! `cargo bench --bench stats_record`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrovia::proxy::Direction;
use ferrovia::stats::{self, StatsConfig, StatsHandle, WorkerStats};

const LATENCIES: usize = 4_096;

/// Latencies spread over 2 µs .. ~1 ms, most near 5-20 µs.
fn latencies() -> Vec<u64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..LATENCIES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let tail = if state.is_multiple_of(100) { 50 } else { 1 };
            (2_000 + state % 18_000) * tail
        })
        .collect()
}

fn recorder() -> (StatsHandle, WorkerStats) {
    let config = StatsConfig {
        workers: 1,
        interval: Duration::from_secs(3_600), // never due unless a bench says so
        metrics: None,
        ..StatsConfig::default()
    };
    let (handle, workers) = stats::start(config).expect("stats start");
    let worker = workers.into_iter().next().expect("one worker");
    (handle, worker)
}

fn bench_recording(c: &mut Criterion) {
    let lat = latencies();
    let mut group = c.benchmark_group("stats");
    group.throughput(Throughput::Elements(1));

    let (_handle, mut w) = recorder();
    let mut i = 0;
    group.bench_function("forwarded", |b| {
        b.iter(|| {
            w.forwarded(Direction::Request, black_box(lat[i % LATENCIES]));
            i += 1;
        })
    });

    let now = Instant::now();
    group.bench_function("maybe_flush_not_due", |b| {
        b.iter(|| w.maybe_flush(black_box(now)))
    });

    group.bench_function("per_message", |b| {
        b.iter(|| {
            w.received(1);
            w.forwarded(Direction::Response, black_box(lat[i % LATENCIES]));
            w.maybe_flush(black_box(now));
            i += 1;
        })
    });
    group.finish();
}

/// Hands off one interval per iteration; `clock` times each `maybe_flush` that is due.
fn hand_offs(
    w: &mut WorkerStats,
    due: &mut Instant,
    iters: u64,
    clock: fn() -> Duration,
) -> Duration {
    let mut spent = Duration::ZERO;
    for n in 0..iters {
        w.forwarded(Direction::Request, 2_000 + n % 10_000);
        while !w.hand_off_ready() {
            std::thread::yield_now(); // wait for the recycled interval, untimed
        }
        *due += Duration::from_secs(3_600);
        let start = clock();
        w.maybe_flush(black_box(*due));
        spent += clock() - start;
    }
    spent
}

fn wall() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// CPU time of the calling thread: what the worker itself spends, not the time it waits
/// while the woken stats thread runs on its core.
#[allow(unsafe_code)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn bench_hand_off(c: &mut Criterion) {
    let (_handle, mut w) = recorder();
    let mut due = Instant::now() + Duration::from_secs(3_600);
    c.bench_function("stats/hand_off_wall", |b| {
        b.iter_custom(|iters| hand_offs(&mut w, &mut due, iters, wall))
    });
    c.bench_function("stats/hand_off_thread_cpu", |b| {
        b.iter_custom(|iters| hand_offs(&mut w, &mut due, iters, thread_cpu))
    });
}

criterion_group!(benches, bench_recording, bench_hand_off);
criterion_main!(benches);
