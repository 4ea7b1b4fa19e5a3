//! `ferrovia stats` against a live metrics server: the report it reads over loopback is the
//! snapshot's own, and both render the same table. The ignored test prints a realistic sample
//! (`cargo test --test stats_client -- --ignored --nocapture`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferrovia::proxy::{Direction, DropReason};
use ferrovia::stats::{self, StatsConfig, StatsHandle, WorkerStats, client};

/// Virtual seconds of traffic per worker.
const INTERVALS: u64 = 5;

/// xorshift64.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Roughly log-normal around `median_ns`: the product of a few uniform factors, with a rare
/// slow tail (a descheduled worker).
fn latency(rng: &mut u64, median_ns: u64) -> u64 {
    let mut x = median_ns as f64;
    for _ in 0..4 {
        let u = (next(rng) % 1_000) as f64 / 1_000.0;
        x *= 0.7 + 0.6 * u;
    }
    if next(rng).is_multiple_of(2_000) {
        x *= 40.0;
    }
    x as u64
}

/// A proxy's mix over `INTERVALS` one-second intervals of virtual time: mostly forwarded
/// requests and responses, a few replies and drops.
fn traffic(worker: usize, w: &mut WorkerStats, messages: u64) {
    let mut rng = 0x2545_F491_4F6C_DD1D + worker as u64;
    let start = Instant::now();
    for second in 1..=INTERVALS {
        w.received(messages);
        for i in 0..messages {
            match i % 100 {
                0 => w.replied(483, latency(&mut rng, 3_000)),
                1 if i % 500 == 1 => w.replied(400, latency(&mut rng, 3_500)),
                2 if i % 1_000 == 2 => w.dropped(DropReason::ResponseNotOurs),
                3 if i % 5_000 == 3 => w.send_error(),
                4..=50 => w.forwarded(Direction::Request, latency(&mut rng, 9_000)),
                _ => w.forwarded(Direction::Response, latency(&mut rng, 6_000)),
            }
        }
        w.dropped(DropReason::Keepalive);
        w.kernel_drops(3 * second);
        while !w.hand_off_ready() {
            std::thread::yield_now(); // the stats thread recycles the last interval soon
        }
        w.maybe_flush(start + Duration::from_secs(second));
    }
}

fn running(messages: u64) -> (StatsHandle, SocketAddr) {
    let config = StatsConfig {
        workers: 2,
        metrics: Some("127.0.0.1:0".parse().unwrap()), // a literal address
        ..StatsConfig::default()
    };
    let (handle, workers) = stats::start(config).expect("stats start on loopback");
    for (i, mut w) in workers.into_iter().enumerate() {
        traffic(i, &mut w, messages);
    }
    let addr = handle.metrics_addr().expect("metrics was configured");
    (handle, addr)
}

#[test]
fn the_client_reads_the_snapshots_report() {
    let (handle, addr) = running(10_000);
    let fetched = client::fetch(addr).expect("GET /stats");
    let mut local = handle.snapshot().report();
    local.uptime_seconds = fetched.uptime_seconds; // the only field that moves
    assert_eq!(fetched, local);
    assert_eq!(fetched.to_string(), local.to_string());
    let text = fetched.to_string();
    for row in [
        "forwarded request",
        "replied 483",
        "dropped keepalive",
        "merged request",
    ] {
        assert!(text.contains(row), "no {row:?} in\n{text}");
    }
    assert!(text.contains('█'), "no bar chart in\n{text}");
    let last = handle.shutdown();
    assert_eq!(
        last.merged().cumulative.counters().received(),
        20_000 * INTERVALS
    );
}

#[test]
fn the_client_reports_a_dead_address() {
    let (handle, addr) = running(1);
    handle.shutdown();
    assert!(client::run(addr).is_err());
}

#[test]
#[ignore = "prints samples of every output; run with --nocapture"]
fn show_a_sample() {
    let (handle, addr) = running(40_000);
    println!("---- ferrovia stats ----");
    client::run(addr).expect("GET /stats");
    let snapshot = handle.snapshot();
    println!("---- /metrics ----");
    print!("{}", snapshot.prometheus());
    println!("---- /stats.hgrm ----");
    print!("{}", snapshot.hgrm());
    println!("---- shutdown summary ----");
    print!("{}", handle.shutdown().summary());
}
