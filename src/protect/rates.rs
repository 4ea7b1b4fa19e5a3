//! The per-source rate table: one bucket per method class for each source, shared by every
//! worker, in a fixed number of slots that never grows.
//!
//! Contract:
//! - The budget is per source for the whole process: a source whose flows land on several
//!   workers (the kernel spreads by 4-tuple) draws on the same buckets. Workers update a
//!   bucket with one compare-and-swap on its `tat` ([`super::bucket`]): no lock, no
//!   allocation, no system call.
//! - Memory is `capacity` slots of 64 bytes, allocated once. A source is looked up at its
//!   hashed position and the next [`PROBES`] − 1 slots. A new source takes an empty slot in
//!   that window, else evicts the slot that owes least: a slot whose buckets are full
//!   (`tat ≤ now` in every class) holds nothing a fresh slot would not, so evicting it loses
//!   no limit; only when every slot of the window is in debt does a limited source lose its
//!   debt — which takes more sources over their limit at once than the table has slots.
//! - Races: two workers claiming or evicting the same slot at once may charge one request to
//!   the previous occupant's buckets or lose one update. That errs by a request, never
//!   unsafely.
//! - The refusal streak ("over its limit for N s in a row") is kept per source: it starts at
//!   a refused request and goes on while refusals follow each other within [`STREAK_GAP_NS`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::bucket::Gcra;
use super::source::SourceKey;

/// Slots looked at for one source.
pub(crate) const PROBES: usize = 8;
/// The longest pause between two refused requests of one streak. A flooder paused this long
/// has refilled its bucket for that long, and its streak starts over.
pub const STREAK_GAP_NS: u64 = 500_000_000;
/// Method classes: REGISTER, INVITE, everything else.
pub(crate) const CLASSES: usize = 3;

/// One source's state: its key, a bucket per class, its refusal streak, what it sent.
#[repr(align(64))]
struct Slot {
    key: AtomicU64,
    tat: [AtomicU64; CLASSES],
    /// 1 + the time of the streak's first refusal; 0 when not over its limit.
    over_since: AtomicU64,
    last_refused: AtomicU64,
    requests: AtomicU64,
    refused: AtomicU64,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            key: AtomicU64::new(SourceKey::EMPTY),
            tat: Default::default(),
            over_since: AtomicU64::new(0),
            last_refused: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// When every bucket is full again.
    fn owes_until(&self) -> u64 {
        self.tat.iter().map(|t| t.load(Relaxed)).max().unwrap_or(0)
    }

    fn reset(&self) {
        for t in &self.tat {
            t.store(0, Relaxed);
        }
        for n in [
            &self.over_since,
            &self.last_refused,
            &self.requests,
            &self.refused,
        ] {
            n.store(0, Relaxed);
        }
    }
}

/// The decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Admitted,
    /// Refused; the source has been over its limit for this long (0 at a streak's start).
    Refused {
        over_for_ns: u64,
    },
}

/// One source as the table saw it, for "top talkers".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Talker {
    pub source: SourceKey,
    /// Requests seen since the source took its slot.
    pub requests: u64,
    /// Of which refused.
    pub refused: u64,
}

/// The shared, bounded table of buckets.
pub(crate) struct RateTable {
    slots: Box<[Slot]>,
    mask: usize,
    seed: u64,
    /// Sources that took a slot another source held.
    evictions: AtomicU64,
}

impl RateTable {
    /// A table of `capacity` slots, rounded up to a power of two (at least [`PROBES`]).
    pub(crate) fn new(capacity: usize, seed: u64) -> RateTable {
        let n = capacity.max(PROBES).next_power_of_two();
        RateTable {
            slots: (0..n).map(|_| Slot::empty()).collect(),
            mask: n - 1,
            seed,
            evictions: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes the table holds, whatever the number of sources.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot>()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }

    /// Charges one request of `class` from `source` at `now` (ns) against `limit`.
    pub(crate) fn check(
        &self,
        source: SourceKey,
        class: usize,
        limit: &Gcra,
        now: u64,
    ) -> Admission {
        let Some(slot) = self.slot_for(source, now) else {
            return Admission::Admitted; // lost a race for a slot: let this one through
        };
        slot.requests.fetch_add(1, Relaxed);
        let bucket = &slot.tat[class % CLASSES];
        let admitted = bucket
            .fetch_update(Relaxed, Relaxed, |tat| limit.admit(tat, now))
            .is_ok();
        if admitted {
            return Admission::Admitted;
        }
        slot.refused.fetch_add(1, Relaxed);
        let previous = slot.last_refused.swap(now, Relaxed);
        let since = slot.over_since.load(Relaxed);
        if since == 0 || now.saturating_sub(previous) > STREAK_GAP_NS {
            slot.over_since.store(now + 1, Relaxed);
            return Admission::Refused { over_for_ns: 0 };
        }
        Admission::Refused {
            over_for_ns: now.saturating_sub(since - 1),
        }
    }

    /// Forgets a source's streak (after it was banned, so a new streak starts after the ban).
    pub(crate) fn end_streak(&self, source: SourceKey) {
        if let Some(slot) = self.find(source) {
            slot.over_since.store(0, Relaxed);
        }
    }

    fn find(&self, source: SourceKey) -> Option<&Slot> {
        let start = source.hash(self.seed) as usize;
        (0..PROBES)
            .map(|i| &self.slots[(start + i) & self.mask])
            .take_while(|s| s.key.load(Relaxed) != SourceKey::EMPTY)
            .find(|s| s.key.load(Relaxed) == source.bits())
    }

    /// The source's slot: its own, else an empty one, else the one that owes least.
    fn slot_for(&self, source: SourceKey, now: u64) -> Option<&Slot> {
        let start = source.hash(self.seed) as usize;
        let mut victim: Option<(&Slot, u64, u64)> = None; // slot, key seen, owes until
        for i in 0..PROBES {
            let slot = &self.slots[(start + i) & self.mask];
            let key = slot.key.load(Relaxed);
            if key == source.bits() {
                return Some(slot);
            }
            if key == SourceKey::EMPTY {
                victim = Some((slot, key, 0));
                break;
            }
            let owes = slot.owes_until();
            if victim.is_none_or(|(_, _, least)| owes < least) {
                victim = Some((slot, key, owes));
            }
            if owes <= now {
                break; // a full slot: nothing better to find
            }
        }
        let (slot, seen, _) = victim?;
        match slot
            .key
            .compare_exchange(seen, source.bits(), Relaxed, Relaxed)
        {
            Ok(_) => {
                slot.reset();
                if seen != SourceKey::EMPTY {
                    self.evictions.fetch_add(1, Relaxed);
                }
                Some(slot)
            }
            Err(now_held) if now_held == source.bits() => Some(slot),
            Err(_) => None,
        }
    }

    /// Slots holding a source.
    pub(crate) fn occupied(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.key.load(Relaxed) != SourceKey::EMPTY)
            .count()
    }

    /// The `n` sources with the most requests since they took their slot.
    pub(crate) fn top(&self, n: usize) -> Vec<Talker> {
        let mut all: Vec<Talker> = self
            .slots
            .iter()
            .filter_map(|s| {
                let source = SourceKey::from_bits(s.key.load(Relaxed))?;
                Some(Talker {
                    source,
                    requests: s.requests.load(Relaxed),
                    refused: s.refused.load(Relaxed),
                })
            })
            .filter(|t| t.requests > 0)
            .collect();
        let most_first =
            |a: &Talker, b: &Talker| b.requests.cmp(&a.requests).then(a.source.cmp(&b.source));
        if n > 0 && all.len() > n {
            all.select_nth_unstable_by(n - 1, most_first);
        }
        all.truncate(n);
        all.sort_unstable_by(most_first);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::super::bucket::Limit;
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const MS: u64 = 1_000_000;

    fn key(i: u32) -> SourceKey {
        SourceKey::of(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))).unwrap()
    }

    fn limit(per_second: u32, burst: u32) -> Gcra {
        Gcra::new(Limit { per_second, burst })
    }

    #[test]
    fn classes_have_their_own_buckets() {
        let table = RateTable::new(64, 7);
        let g = limit(1, 2);
        let now = 1_000 * MS;
        for class in 0..CLASSES {
            assert_eq!(table.check(key(1), class, &g, now), Admission::Admitted);
            assert_eq!(table.check(key(1), class, &g, now), Admission::Admitted);
            assert!(matches!(
                table.check(key(1), class, &g, now),
                Admission::Refused { .. }
            ));
        }
        assert_eq!(table.check(key(2), 0, &g, now), Admission::Admitted);
        let top = table.top(10);
        assert_eq!(
            top[0],
            Talker {
                source: key(1),
                requests: 9,
                refused: 3
            }
        );
        assert_eq!(top[1].source, key(2));
    }

    #[test]
    fn a_streak_runs_while_refusals_keep_coming() {
        let table = RateTable::new(64, 7);
        let g = limit(1000, 10);
        let mut now = 1_000 * MS;
        let mut over = Vec::new();
        for _ in 0..1500 {
            for _ in 0..3 {
                if let Admission::Refused { over_for_ns } = table.check(key(1), 1, &g, now) {
                    over.push(over_for_ns);
                }
            }
            now += MS;
        }
        assert_eq!(over[0], 0);
        assert!(
            over.windows(2).all(|w| w[0] <= w[1]),
            "the streak only grows"
        );
        assert!(*over.last().unwrap() >= 1_490 * MS);
        // A pause longer than the gap starts a new streak.
        now += STREAK_GAP_NS + MS;
        let fresh = (0..20).find_map(|_| match table.check(key(1), 1, &g, now) {
            Admission::Refused { over_for_ns } => Some(over_for_ns),
            Admission::Admitted => None,
        });
        assert_eq!(fresh, Some(0));
        table.end_streak(key(1));
        assert_eq!(
            table.check(key(1), 1, &g, now),
            Admission::Refused { over_for_ns: 0 }
        );
    }

    #[test]
    fn the_table_never_grows_and_evicts_idle_sources_first() {
        let table = RateTable::new(1024, 99);
        let g = limit(1, 1);
        let now = 10_000 * MS;
        // A flooder in debt...
        assert_eq!(table.check(key(0), 0, &g, now), Admission::Admitted);
        // ...then 100,000 sources sending one request each, 10 ms apart: each owes a
        // second, so about 100 are in debt at any time and the rest are free to evict.
        let at = |i: u32| now + u64::from(i) * 10 * MS;
        for i in 1..100_000 {
            let _ = table.check(key(i), 0, &g, at(i));
        }
        assert_eq!(table.capacity(), 1024);
        assert_eq!(table.occupied(), 1024);
        assert_eq!(table.memory_bytes(), 1024 * 64);
        assert!(table.evictions() >= 100_000 - 1024);
        // Sources still in debt were kept: the last hundred are all present and still limited.
        let kept = (99_900..100_000)
            .filter(|&i| table.find(key(i)).is_some())
            .count();
        assert_eq!(kept, 100);
        let last = key(99_999);
        assert!(matches!(
            table.check(last, 0, &g, at(99_999)),
            Admission::Refused { .. }
        ));
    }

    #[test]
    fn workers_share_one_budget() {
        let table = std::sync::Arc::new(RateTable::new(64, 1));
        let g = limit(1, 1000);
        let now = 1_000 * MS;
        let admitted: u32 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let table = &table;
                    s.spawn(move || {
                        (0..1000)
                            .filter(|_| table.check(key(5), 2, &g, now) == Admission::Admitted)
                            .count() as u32
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 1000, "four threads drew on one bucket of 1,000");
    }
}
