//! The differential property of issue 11 on arbitrary bytes: whatever ferrovia sends — as a
//! datagram, or as one of several messages on a TCP stream — the independent strict reader in
//! `tests/common/strict.rs` accepts with the same header count, body and Content-Length that
//! ferrovia's scanner sees, and both split the back-to-back stream identically.
//!
//! `cargo +nightly fuzz run differential` (from the repository root; not run in CI). Every
//! finding becomes a named case in `tests/core_regressions.rs`.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod common;

thread_local! {
    static CORE: RefCell<common::Core> = RefCell::new(common::differential::proxy());
}

fuzz_target!(|data: &[u8]| {
    let result = CORE.with(|core| common::differential::check(&mut core.borrow_mut(), data));
    if let Err(disagreement) = result {
        panic!("{disagreement}");
    }
});
