//! Criterion benches of edge protection's check beside the core's `handle` of the same
//! INVITE: what protection adds to a forwarded request, and what a dropped one costs.
//!
//! - `protect/pass`: the worked example's `[protect]` with a limit the source never reaches:
//!   allowlist miss, ban probe, scanner walk of the header lines, bucket update — the work
//!   added to every forwarded request.
//! - `protect/pass_no_scanners`: the same without scanner patterns (the walk's share).
//! - `protect/rate_drop`: the source is over its limit (bans off): refused.
//! - `protect/ban_drop`: the source is banned.
//! - `protect/response`: a response (access lists only; never limited).
//! - `core/handle`: scan + decide + rewrite of the same INVITE, for scale.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ferrovia::protect::{CidrSet, Limit, ProtectConfig, Protection, ScannerField, Verdict};
use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Transport};

fn config(per_second: u32, ban_after: Option<Duration>) -> ProtectConfig {
    ProtectConfig {
        allow: CidrSet::parse(&["127.0.0.9"]).unwrap(),
        limits: [Some(Limit {
            per_second,
            burst: per_second,
        }); 3],
        ban_after,
        scanners: vec![
            (ScannerField::UserAgent, "friendly-scanner".into()),
            (ScannerField::UserAgent, "sipvicious".into()),
        ],
        ..ProtectConfig::default()
    }
}

fn invite() -> (&'static [u8], SocketAddr) {
    let (_, bytes, source) = common::VECTORS
        .iter()
        .find(|(name, ..)| *name == "invite_sdp")
        .expect("the INVITE vector");
    (bytes, source.parse().expect("a socket address"))
}

fn protect(c: &mut Criterion) {
    let (bytes, source) = invite();
    let local: SocketAddr = common::PROXY_ADDR.parse().unwrap();
    let now = Instant::now();
    let mut group = c.benchmark_group("protect");
    let open = Protection::new(&config(u32::MAX, None), 1);
    assert_eq!(
        open.check(bytes, source, local, Transport::Udp, now),
        Verdict::Pass
    );
    group.bench_function("pass", |b| {
        b.iter(|| black_box(open.check(black_box(bytes), source, local, Transport::Udp, now)))
    });
    let bare = Protection::new(
        &ProtectConfig {
            scanners: Vec::new(),
            ..config(u32::MAX, None)
        },
        1,
    );
    group.bench_function("pass_no_scanners", |b| {
        b.iter(|| black_box(bare.check(black_box(bytes), source, local, Transport::Udp, now)))
    });
    let tight = Protection::new(&config(1, None), 1);
    let _ = tight.check(bytes, source, local, Transport::Udp, now);
    group.bench_function("rate_drop", |b| {
        b.iter(|| black_box(tight.check(black_box(bytes), source, local, Transport::Udp, now)))
    });
    let banning = Protection::new(&config(1, Some(Duration::ZERO)), 1);
    for _ in 0..3 {
        let _ = banning.check(bytes, source, local, Transport::Udp, now);
    }
    assert_eq!(banning.bans(now).len(), 1);
    group.bench_function("ban_drop", |b| {
        b.iter(|| black_box(banning.check(black_box(bytes), source, local, Transport::Udp, now)))
    });
    let response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\r\n";
    group.bench_function("response", |b| {
        b.iter(|| black_box(open.check(black_box(response), source, local, Transport::Udp, now)))
    });
    group.finish();

    let mut core = common::core();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let input = common::input(bytes, &source.to_string(), now);
    c.bench_function("core/handle", |b| {
        b.iter(|| black_box(core.handle(black_box(input), &mut out)))
    });
}

criterion_group!(benches, protect);
criterion_main!(benches);
