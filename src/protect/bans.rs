//! Bans shared by every worker: a fixed-size table of atomics, read on every request of a
//! source with a few loads and no lock, written only when a source is banned or lifted.
//!
//! Contract:
//! - [`BanTable::is_banned`] is lock-free and allocation-free: it probes from the source's
//!   hashed slot until it finds the source or an empty slot. Keys are never cleared (a lifted
//!   or expired ban keeps its slot until another source reuses it), so a probe can stop at the
//!   first empty slot.
//! - A ban lasts `time`, doubled for each earlier ban of the source still remembered, up to
//!   `max_time`. The memory decays: each `time` spent out of a ban forgets one earlier ban;
//!   lifting a ban by hand forgets them all.
//!   So a source that comes back flooding right after its ban ends is banned twice as long,
//!   and one that behaved for a while starts again at `time`.
//! - A ban starts once: of the workers that decide to ban a source at the same moment, one
//!   wins the compare-and-swap and logs it; the others see it active.
//! - When every slot of a source's probe window holds an active ban, the ban ending soonest
//!   is replaced (memory stays bounded whatever an attacker does).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::source::SourceKey;

/// Slots looked at for one source.
const PROBES: usize = 16;

/// Why a source was banned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanReason {
    /// Over its rate limit for the configured time in a row.
    Rate,
    /// Sent a request a scanner pattern matched.
    Scanner,
}

impl BanReason {
    pub fn name(self) -> &'static str {
        match self {
            BanReason::Rate => "rate",
            BanReason::Scanner => "scanner",
        }
    }

    fn from_bits(bits: u64) -> BanReason {
        match bits {
            1 => BanReason::Scanner,
            _ => BanReason::Rate,
        }
    }

    fn bits(self) -> u64 {
        match self {
            BanReason::Rate => 0,
            BanReason::Scanner => 1,
        }
    }
}

/// How long bans last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BanTimes {
    pub time_ns: u64,
    pub max_time_ns: u64,
}

#[repr(align(64))]
struct Slot {
    key: AtomicU64,
    /// The ban's end (ns); 0 = never banned, or lifted.
    until: AtomicU64,
    since: AtomicU64,
    /// Earlier bans remembered (this one included), and the reason in the top byte.
    strikes: AtomicU64,
    /// Requests dropped during the current ban.
    dropped: AtomicU64,
}

/// One ban, as `/bans` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ban {
    pub source: SourceKey,
    pub reason: BanReason,
    /// When it started and ends, in the table's nanoseconds.
    pub since_ns: u64,
    pub until_ns: u64,
    /// 1 for a first ban, 2 when the source was banned shortly before, ...
    pub strikes: u32,
    /// Requests dropped since it started.
    pub dropped: u64,
}

/// The shared table.
pub(crate) struct BanTable {
    slots: Box<[Slot]>,
    mask: usize,
    seed: u64,
    times: BanTimes,
    /// Bans started since the process started.
    started: AtomicU64,
}

impl BanTable {
    pub(crate) fn new(capacity: usize, seed: u64, times: BanTimes) -> BanTable {
        let n = capacity.max(PROBES).next_power_of_two();
        let slots = (0..n)
            .map(|_| Slot {
                key: AtomicU64::new(SourceKey::EMPTY),
                until: AtomicU64::new(0),
                since: AtomicU64::new(0),
                strikes: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            })
            .collect();
        BanTable {
            slots,
            mask: n - 1,
            seed,
            times,
            started: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn started(&self) -> u64 {
        self.started.load(Relaxed)
    }

    fn window(&self, source: SourceKey) -> impl Iterator<Item = &Slot> {
        let start = source.hash(self.seed) as usize;
        (0..PROBES).map(move |i| &self.slots[(start + i) & self.mask])
    }

    fn find(&self, source: SourceKey) -> Option<&Slot> {
        self.window(source)
            .take_while(|s| s.key.load(Relaxed) != SourceKey::EMPTY)
            .find(|s| s.key.load(Relaxed) == source.bits())
    }

    /// Whether `source` is banned at `now`; counts the request it sent if so.
    pub(crate) fn is_banned(&self, source: SourceKey, now: u64) -> bool {
        match self.find(source) {
            Some(slot) if slot.until.load(Relaxed) > now => {
                slot.dropped.fetch_add(1, Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Bans `source` from `now`. Returns the new ban when this call started it (to be
    /// logged), `None` when it was already banned or no slot could be had.
    pub(crate) fn ban(&self, source: SourceKey, reason: BanReason, now: u64) -> Option<Ban> {
        let slot = self.slot_for(source)?;
        let until = slot.until.load(Relaxed);
        if until > now {
            return None;
        }
        let strikes = self.strikes_after(slot, until, now);
        let shift = (strikes - 1).min(32);
        let length = self
            .times
            .time_ns
            .saturating_mul(1 << shift)
            .min(self.times.max_time_ns.max(self.times.time_ns));
        let end = now.saturating_add(length).max(1);
        slot.until
            .compare_exchange(until, end, Relaxed, Relaxed)
            .ok()?;
        slot.since.store(now, Relaxed);
        slot.strikes
            .store(u64::from(strikes) | reason.bits() << 56, Relaxed);
        slot.dropped.store(0, Relaxed);
        self.started.fetch_add(1, Relaxed);
        Some(Ban {
            source,
            reason,
            since_ns: now,
            until_ns: end,
            strikes,
            dropped: 0,
        })
    }

    /// Earlier bans still remembered, plus this one: one is forgotten per `time` out of a ban.
    fn strikes_after(&self, slot: &Slot, ended: u64, now: u64) -> u32 {
        let previous = (slot.strikes.load(Relaxed) & 0xffff_ffff) as u32;
        if ended == 0 || previous == 0 {
            return 1;
        }
        let forgotten = now.saturating_sub(ended) / self.times.time_ns.max(1);
        let remembered = u64::from(previous).saturating_sub(forgotten) as u32;
        remembered + 1
    }

    /// The source's slot: its own, else an empty one, else one without an active ban, else
    /// the one whose ban ends soonest.
    fn slot_for(&self, source: SourceKey) -> Option<&Slot> {
        let mut victim: Option<(&Slot, u64, u64)> = None; // slot, key seen, ban end
        for slot in self.window(source) {
            let key = slot.key.load(Relaxed);
            if key == source.bits() {
                return Some(slot);
            }
            if key == SourceKey::EMPTY {
                victim = Some((slot, key, 0));
                break;
            }
            let until = slot.until.load(Relaxed);
            if victim.is_none_or(|(_, _, soonest)| until < soonest) {
                victim = Some((slot, key, until));
            }
        }
        let (slot, seen, _) = victim?;
        match slot
            .key
            .compare_exchange(seen, source.bits(), Relaxed, Relaxed)
        {
            Ok(_) => {
                slot.until.store(0, Relaxed);
                slot.strikes.store(0, Relaxed);
                Some(slot)
            }
            Err(held) if held == source.bits() => Some(slot),
            Err(_) => None,
        }
    }

    /// Ends `source`'s ban; true when it was banned.
    pub(crate) fn lift(&self, source: SourceKey, now: u64) -> bool {
        let Some(slot) = self.find(source) else {
            return false;
        };
        let until = slot.until.load(Relaxed);
        let lifted = until > now
            && slot
                .until
                .compare_exchange(until, 0, Relaxed, Relaxed)
                .is_ok();
        if lifted {
            slot.strikes.store(0, Relaxed); // forgiven: its next ban is a first one
        }
        lifted
    }

    /// Every ban active at `now`, longest-running first.
    pub(crate) fn active(&self, now: u64) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self
            .slots
            .iter()
            .filter_map(|s| {
                let source = SourceKey::from_bits(s.key.load(Relaxed))?;
                let until = s.until.load(Relaxed);
                (until > now).then(|| {
                    let strikes = s.strikes.load(Relaxed);
                    Ban {
                        source,
                        reason: BanReason::from_bits(strikes >> 56),
                        since_ns: s.since.load(Relaxed),
                        until_ns: until,
                        strikes: (strikes & 0xffff_ffff) as u32,
                        dropped: s.dropped.load(Relaxed),
                    }
                })
            })
            .collect();
        bans.sort_unstable_by_key(|b| (b.since_ns, b.source));
        bans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const S: u64 = 1_000_000_000;

    fn key(i: u32) -> SourceKey {
        SourceKey::of(IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i))).unwrap()
    }

    fn table(capacity: usize) -> BanTable {
        let times = BanTimes {
            time_ns: 60 * S,
            max_time_ns: 3600 * S,
        };
        BanTable::new(capacity, 3, times)
    }

    #[test]
    fn a_ban_lasts_its_time_and_starts_once() {
        let t = table(64);
        let now = 100 * S;
        assert!(!t.is_banned(key(1), now));
        let ban = t.ban(key(1), BanReason::Rate, now).unwrap();
        assert_eq!((ban.until_ns, ban.strikes), (now + 60 * S, 1));
        assert_eq!(
            t.ban(key(1), BanReason::Rate, now + S),
            None,
            "already banned"
        );
        assert!(t.is_banned(key(1), now + 59 * S));
        assert!(!t.is_banned(key(1), now + 60 * S));
        assert!(!t.is_banned(key(2), now + S));
        assert_eq!(t.started(), 1);
        let listed = t.active(now + 2 * S);
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].source, listed[0].dropped), (key(1), 1));
    }

    #[test]
    fn repeated_bans_grow_and_the_memory_decays() {
        let t = table(64);
        let mut now = 100 * S;
        let mut lengths = Vec::new();
        for _ in 0..8 {
            let ban = t.ban(key(1), BanReason::Rate, now).unwrap();
            lengths.push((ban.until_ns - ban.since_ns) / S);
            now = ban.until_ns + S; // back right after the ban
        }
        assert_eq!(lengths, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        // Behaving for 7 ban times forgets 7 of the 8 strikes: the next ban is the second.
        let ban = t.ban(key(1), BanReason::Rate, now + 7 * 60 * S).unwrap();
        assert_eq!(ban.strikes, 2);
        assert_eq!(ban.until_ns - ban.since_ns, 120 * S);
    }

    #[test]
    fn lifting_ends_a_ban() {
        let t = table(64);
        let now = 10 * S;
        assert!(!t.lift(key(1), now));
        t.ban(key(1), BanReason::Scanner, now).unwrap();
        assert_eq!(t.active(now)[0].reason, BanReason::Scanner);
        assert!(t.lift(key(1), now + S));
        assert!(!t.is_banned(key(1), now + S));
        assert!(!t.lift(key(1), now + S));
        assert!(t.active(now + S).is_empty());
        // Banned again later: lifting forgave it, this is a first ban again.
        assert_eq!(
            t.ban(key(1), BanReason::Rate, now + 2 * S).unwrap().strikes,
            1
        );
    }

    #[test]
    fn a_full_table_replaces_the_ban_ending_soonest() {
        let t = table(16);
        let now = 10 * S;
        for i in 0..16 {
            assert!(
                t.ban(key(i), BanReason::Rate, now + u64::from(i) * S)
                    .is_some()
            );
        }
        assert!(t.ban(key(100), BanReason::Rate, now + 20 * S).is_some());
        let active = t.active(now + 21 * S);
        assert_eq!(active.len(), 16);
        assert!(
            active.iter().all(|b| b.source != key(0)),
            "the first ban, ending soonest, went"
        );
        assert!(t.is_banned(key(100), now + 21 * S));
    }
}
