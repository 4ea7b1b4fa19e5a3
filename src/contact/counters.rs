//! The table's counters: plain atomics, striped so that workers on different cores do not
//! write the same cache line on every lookup. Reading them sums the stripes.
//!
//! A thread picks its stripe once (round robin over the threads that ever counted) and keeps
//! it in a constant-initialised thread local, which neither allocates nor registers a
//! destructor. Counts are exact; a snapshot taken while others count is not atomic as a whole.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What the table counts. `kind as usize` indexes a stripe's cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    NewEntries,
    Refreshes,
    Restores,
    Misses,
    Expired,
    Forged,
    Malformed,
    Foreign,
    RefusedFull,
    RefusedTooLong,
    Swept,
}

const KINDS: usize = Count::Swept as usize + 1;
const STRIPES: usize = 8;

/// One stripe: two cache lines on current x86 and Arm cores, so neighbours never share.
#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    cells: [AtomicU64; KINDS],
}

#[derive(Default)]
pub(crate) struct Counters {
    stripes: [Stripe; STRIPES],
}

/// A snapshot of a table's counters, for the stats exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContactCounters {
    /// Contacts rewritten: successful inserts, new entries and refreshes together.
    pub rewrites: u64,
    /// Inserts that created an entry (the rest refreshed an existing one).
    pub new_entries: u64,
    /// Lookups that found a live entry: contacts restored.
    pub restores: u64,
    /// Genuine tokens of this node whose entry is gone (swept, or from an earlier run).
    pub misses: u64,
    /// Genuine tokens whose entry had expired but was not yet swept.
    pub expired: u64,
    /// Token-shaped user parts whose MAC did not verify.
    pub forged: u64,
    /// User parts not shaped like a token at all.
    pub malformed: u64,
    /// Genuine tokens issued by another node sharing the key.
    pub foreign: u64,
    /// Inserts refused because the table was full.
    pub refused_full: u64,
    /// Inserts refused because the URI was longer than the table accepts.
    pub refused_too_long: u64,
    /// Entries removed by sweeps.
    pub swept: u64,
    /// Entries in the table now.
    pub size: u64,
}

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

fn my_stripe() -> usize {
    STRIPE.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES);
        }
        s.get()
    })
}

impl Counters {
    pub(crate) fn bump(&self, kind: Count) {
        self.add(kind, 1);
    }

    pub(crate) fn add(&self, kind: Count, n: u64) {
        // `my_stripe() < STRIPES` and `kind as usize < KINDS` by construction.
        self.stripes[my_stripe()].cells[kind as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self, kind: Count) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.cells[kind as usize].load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn snapshot(&self, size: usize) -> ContactCounters {
        let new_entries = self.sum(Count::NewEntries);
        ContactCounters {
            rewrites: new_entries + self.sum(Count::Refreshes),
            new_entries,
            restores: self.sum(Count::Restores),
            misses: self.sum(Count::Misses),
            expired: self.sum(Count::Expired),
            forged: self.sum(Count::Forged),
            malformed: self.sum(Count::Malformed),
            foreign: self.sum(Count::Foreign),
            refused_full: self.sum(Count::RefusedFull),
            refused_too_long: self.sum(Count::RefusedTooLong),
            swept: self.sum(Count::Swept),
            size: size as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counters = Counters::default();
        std::thread::scope(|s| {
            for _ in 0..STRIPES + 3 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counters.bump(Count::Restores);
                    }
                    counters.bump(Count::Forged);
                });
            }
        });
        let snap = counters.snapshot(7);
        assert_eq!(snap.restores, 1000 * (STRIPES as u64 + 3));
        assert_eq!(snap.forged, STRIPES as u64 + 3);
        assert_eq!(snap.size, 7);
        assert_eq!(snap.misses, 0);
    }

    #[test]
    fn rewrites_are_new_entries_plus_refreshes() {
        let counters = Counters::default();
        counters.bump(Count::NewEntries);
        counters.bump(Count::Refreshes);
        counters.bump(Count::Refreshes);
        let snap = counters.snapshot(1);
        assert_eq!((snap.rewrites, snap.new_entries), (3, 1));
    }
}
