//! One counting global allocator for the allocation tests. It forwards everything to the
//! system allocator and counts every allocation and reallocation twice: for the whole process
//! (what the workers do) and for the calling thread (so that tests running in parallel in
//! one binary cannot count each other). Each test binary installs it:
//!
//! ```ignore
//! mod alloc_support;
//! #[global_allocator]
//! static GLOBAL: alloc_support::Counting = alloc_support::Counting;
//! ```

#![allow(dead_code, unreachable_pub)]
// A global allocator cannot be written without `unsafe`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counting;

static PROCESS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    PROCESS.fetch_add(1, Ordering::Relaxed);
    // `try_with`: a thread being torn down has no thread-local left to count in.
    let _ = THREAD.try_with(|n| n.set(n.get() + 1));
}

/// Allocations (and reallocations) by every thread so far.
pub fn in_process() -> u64 {
    PROCESS.load(Ordering::SeqCst)
}

/// Allocations (and reallocations) by the calling thread so far.
pub fn on_this_thread() -> u64 {
    THREAD.with(Cell::get)
}

/// Allocations (and reallocations) the calling thread makes while `f` runs.
pub fn on_this_thread_during(f: impl FnOnce()) -> u64 {
    let before = on_this_thread();
    f();
    on_this_thread() - before
}

/// Allocations (and reallocations) every thread makes while `f` runs.
pub fn in_process_during(f: impl FnOnce()) -> u64 {
    let before = in_process();
    f();
    in_process() - before
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
