//! The compiled policy allocates nothing per request: a 20-rule policy in front of the core
//! (scan, policy, decide, rewrite with the policy's modifiers) over the INVITE and REGISTER
//! vectors, after warm-up. Counted by a global allocator, on this thread only.

mod alloc_support;
mod common;
mod policy_support;

use std::time::Instant;

use ferrovia::policy::PolicyHandle;
use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome};

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

#[test]
fn a_twenty_rule_policy_allocates_nothing_per_request() {
    let mut core = common::core();
    let policy = policy_support::policy(20);
    assert_eq!(policy.len(), 20);
    let handle = PolicyHandle::new(policy, 1);
    core.route_by(&handle);
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let now = Instant::now();
    let vectors: Vec<_> = common::VECTORS
        .iter()
        .filter(|(name, ..)| ["invite_sdp", "register"].contains(name))
        .collect();
    let mut round = |out: &mut [u8]| {
        for (name, bytes, source) in &vectors {
            let input = common::input(bytes, source, now);
            let outcome = core.handle(input, out);
            let Outcome::Forward(t) = outcome else {
                panic!("{name}: {outcome:?}")
            };
            assert_eq!(t.destination, "10.0.0.9:5060".parse().unwrap(), "{name}");
            let text = &out[..t.len];
            assert!(text.windows(10).any(|w| w == b"X-Edge: 1\r"), "{name}");
        }
    };
    round(&mut out); // warm-up: regex caches, the arc-swap cache
    let during = alloc_support::on_this_thread_during(|| {
        for _ in 0..1000 {
            round(&mut out);
        }
    });
    assert_eq!(during, 0, "heap allocations per request");
    let hits = handle.counters();
    assert_eq!(
        hits.rules.last().map(|(n, h)| (n.as_str(), *h)),
        Some(("to-registrar", 2002))
    );
}
