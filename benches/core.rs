//! Criterion benches of the sans-IO core on a real call's messages:
//! `scan` (framing and header offsets only) and `handle` (scan + decide + rewrite into the
//! caller's buffer), in time per message and bytes per second.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome};
use ferrovia::sip::Message;

const BENCHED: &[&str] = &[
    "invite_sdp",
    "ok_200_sdp",
    "ack",
    "register",
    "ringing_180",
    "bye",
];

fn vectors() -> impl Iterator<Item = &'static (&'static str, &'static [u8], &'static str)> {
    common::VECTORS
        .iter()
        .filter(|(name, ..)| BENCHED.contains(name))
}

fn scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("scan");
    for (name, bytes, _) in vectors() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let msg = Message::scan(black_box(bytes), false).expect("scans");
                black_box(msg.headers().len())
            })
        });
    }
    group.finish();
}

fn handle(c: &mut Criterion) {
    let mut core = common::core();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let now = Instant::now();
    let mut group = c.benchmark_group("scan_decide_rewrite");
    for (name, bytes, source) in vectors() {
        let input = common::input(bytes, source, now);
        assert!(
            matches!(core.handle(input, &mut out), Outcome::Forward(_)),
            "{name}"
        );
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| black_box(core.handle(black_box(input), &mut out)))
        });
    }
    group.finish();
}

criterion_group!(benches, scan, handle);
criterion_main!(benches);
