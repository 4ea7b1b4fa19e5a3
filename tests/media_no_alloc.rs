//! Media anchoring costs nothing for calls it does not anchor: with `[media]` configured,
//! every message of a call that is not anchored (no rule asked for it with `anchor =
//! "rules"`; or, with `anchor = "invites"`, a REGISTER and the messages of a dialog that did
//! not come through an anchored INVITE) is scanned, decided and rewritten with zero heap
//! allocations after warm-up. Counted by a global allocator, on this thread only.

mod common;

use std::time::Instant;

use ferrovia::media::{Anchor, Media, MediaConfig};
use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome, Tables};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = alloc_support::on_this_thread();
    f();
    alloc_support::on_this_thread() - before
}

fn core(anchor: Anchor) -> common::Core {
    let mut config = common::config();
    config.media = Some(Media::new(MediaConfig {
        rtpengine: vec!["127.0.0.1:2223".parse().unwrap()],
        anchor,
        ..MediaConfig::default()
    }));
    common::Core::new(config, Tables::default())
}

/// Runs `names` of the shared vectors 1,000 times after a warm-up; returns the allocations.
fn allocations(anchor: Anchor, names: &[&str]) -> u64 {
    let mut core = core(anchor);
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let now = Instant::now();
    let mut round = |out: &mut [u8]| {
        for (name, bytes, source) in common::VECTORS.iter().filter(|v| names.contains(&v.0)) {
            let outcome = core.handle(common::input(bytes, source, now), out);
            assert!(
                matches!(outcome, Outcome::Forward(_)),
                "{name}: {outcome:?}"
            );
        }
    };
    round(&mut out);
    allocations_during(|| {
        for _ in 0..1000 {
            round(&mut out);
        }
    })
}

#[test]
fn the_counter_counts() {
    let n = allocations_during(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(std::hint::black_box(64)));
    });
    assert_eq!(n, 1);
}

#[test]
fn a_call_no_rule_anchors_allocates_nothing() {
    let all: Vec<&str> = common::VECTORS.iter().map(|v| v.0).collect();
    assert_eq!(all.len(), 6);
    assert_eq!(allocations(Anchor::Rules, &all), 0);
}

#[test]
fn messages_outside_anchored_dialogs_allocate_nothing() {
    let not_anchored: Vec<&str> = common::VECTORS
        .iter()
        .map(|v| v.0)
        .filter(|name| !name.starts_with("invite"))
        .collect();
    assert_eq!(not_anchored.len(), 5, "{not_anchored:?}");
    assert_eq!(allocations(Anchor::Invites, &not_anchored), 0);
}

#[test]
fn an_anchored_invite_does_park_so_the_tests_above_can_fail() {
    let mut core = core(Anchor::Invites);
    let (name, bytes, source) = common::VECTORS[0];
    assert!(name.starts_with("invite"), "{name}");
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let outcome = core.handle(common::input(bytes, source, Instant::now()), &mut out);
    assert!(matches!(outcome, Outcome::Park(_)), "{outcome:?}");
}
