//! The DNS cache every worker reads: RFC 3263 results by [`Lookup`], in a lock-free map
//! (`papaya`, as the location table), written only by the resolver thread.
//!
//! - A positive entry lives as long as the smallest TTL of the records it came from (capped
//!   by `max-ttl`); a TTL of 0 is not cached (RFC 1035 §3.2.1), the parked request that asked
//!   still gets its answer.
//! - A negative entry ("no such name", "no usable records") lives for the negative TTL of
//!   RFC 2308 §5 (the SOA's), capped by `max-negative-ttl`; without an SOA it is not cached
//!   (RFC 2308 §5: "negative responses without SOA records SHOULD NOT be cached").
//! - When the server fails, an expired positive entry is served again for `stale-ttl`
//!   (RFC 8767 §4 "serve stale"), so names already known survive a dead DNS server.
//! - At most `capacity` entries: a full cache drops its expired entries, then refuses new
//!   ones (counted) rather than grow.
//! - A worker's lookup (`find`) hashes the name, reads one entry, and chooses among its
//!   targets as groups do (RFC 2782: lowest live priority, then weighted rendezvous over the
//!   request's key); it allocates nothing. Targets held down (a 503 with Retry-After from
//!   them) are skipped.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::lookup::Lookup;
use super::rfc3263::{MAX_TARGETS, Target};
use crate::groups::select::{Candidate, lowest_live_tier, rendezvous};

/// One cached result.
#[derive(Debug)]
struct Entry {
    /// Empty: a negative entry.
    targets: Box<[Target]>,
    candidates: Box<[Candidate]>,
    expires: Instant,
}

/// What a worker finds for a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Send there (for [`Want::Address`](super::Want::Address) the port is 0: the URI's).
    To(Target),
    /// The name is known to have nothing usable (a cached negative answer).
    NotFound,
    /// Every target is held down.
    AllDown,
    /// Nothing fresh cached: ask the resolver.
    Miss,
}

/// A counter alone on its cache line: the workers bump it per request.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// The cache's counters.
#[derive(Debug, Default)]
pub struct DnsCounters {
    hits: Padded,
    misses: Padded,
    /// Names the resolver could not resolve (server failure, timeout, malformed replies).
    pub failures: AtomicU64,
    /// Replies that did not decode, or did not match a question.
    pub malformed: AtomicU64,
    /// Questions sent to servers (retries included).
    pub queries: AtomicU64,
    /// Questions that went unanswered within the timeout (each attempt).
    pub timeouts: AtomicU64,
    /// Expired entries served again while the servers failed (RFC 8767).
    pub stale_served: AtomicU64,
    /// Entries refused because the cache was full of fresh ones.
    pub refused_full: AtomicU64,
}

/// What operators see (`/stats`, `/metrics`, `ferrovia stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsSnapshot {
    pub hits: u64,
    pub misses: u64,
    pub failures: u64,
    pub malformed: u64,
    pub queries: u64,
    pub timeouts: u64,
    pub stale_served: u64,
    pub refused_full: u64,
    pub entries: u64,
}

/// The shared cache. See the [module docs](self).
#[derive(Debug)]
pub struct DnsCache {
    map: papaya::HashMap<Lookup, Entry>,
    capacity: usize,
    /// Targets held down until the instant (a 503 with Retry-After); few, and read only when
    /// `held_count` is not zero.
    held: papaya::HashMap<SocketAddr, Instant>,
    held_count: AtomicUsize,
    pub counters: DnsCounters,
}

/// The most targets held down at once.
const MAX_HELD: usize = 4096;

impl DnsCache {
    pub fn new(capacity: usize) -> DnsCache {
        DnsCache {
            map: papaya::HashMap::new(),
            capacity: capacity.max(1),
            held: papaya::HashMap::new(),
            held_count: AtomicUsize::new(0),
            counters: DnsCounters::default(),
        }
    }

    /// The fresh entry for `lookup` at `now`, with a target chosen by `key` (the request's
    /// call key: retransmissions and CANCEL choose alike); counts a hit, or a miss.
    pub fn find(&self, lookup: &Lookup, now: Instant, key: u64) -> Found {
        let map = self.map.pin();
        let found = match map.get(lookup) {
            Some(entry) if entry.expires > now => self.choose(entry, now, key),
            _ => Found::Miss,
        };
        match found {
            Found::Miss => self.counters.misses.0.fetch_add(1, Relaxed),
            _ => self.counters.hits.0.fetch_add(1, Relaxed),
        };
        found
    }

    fn choose(&self, entry: &Entry, now: Instant, key: u64) -> Found {
        if entry.targets.is_empty() {
            return Found::NotFound;
        }
        let mut live = if entry.targets.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << entry.targets.len()) - 1
        };
        if self.held_count.load(Relaxed) > 0 {
            let held = self.held.pin();
            for (i, t) in entry.targets.iter().enumerate() {
                if held.get(&t.addr).is_some_and(|until| *until > now) {
                    live &= !(1 << i);
                }
            }
        }
        // RFC 2782: "A client MUST attempt to contact the target host with the
        // lowest-numbered priority it can reach"; within it, by weight.
        let c = &entry.candidates;
        let chosen =
            lowest_live_tier(c, live).and_then(|tier| rendezvous(c, live, key, Some(tier)));
        match chosen {
            Some(i) => Found::To(entry.targets[i]),
            None => Found::AllDown,
        }
    }

    /// Stores what the resolver found, fresh until `now + ttl`; `ttl` 0 stores nothing and
    /// drops what was there.
    pub fn insert(&self, lookup: Lookup, targets: &[Target], ttl: Duration, now: Instant) {
        let map = self.map.pin();
        if ttl.is_zero() {
            map.remove(&lookup);
            return;
        }
        if map.len() >= self.capacity && !map.contains_key(&lookup) {
            map.retain(|_, e| e.expires > now);
            if map.len() >= self.capacity {
                self.counters.refused_full.fetch_add(1, Relaxed);
                return;
            }
        }
        let targets: Box<[Target]> = targets.iter().take(MAX_TARGETS).copied().collect();
        let candidates = targets.iter().map(candidate).collect();
        map.insert(
            lookup,
            Entry {
                targets,
                candidates,
                expires: now + ttl,
            },
        );
    }

    /// The targets of an expired positive entry (to serve stale while servers fail).
    pub fn stale(&self, lookup: &Lookup) -> Option<Vec<Target>> {
        let map = self.map.pin();
        let entry = map.get(lookup)?;
        (!entry.targets.is_empty()).then(|| entry.targets.to_vec())
    }

    /// When the entry for `lookup` stops being fresh, if there is one.
    pub fn expires(&self, lookup: &Lookup) -> Option<Instant> {
        self.map.pin().get(lookup).map(|e| e.expires)
    }

    /// Takes `addr` out of every choice until `until` (a 503 with Retry-After from it).
    pub fn hold_down(&self, addr: SocketAddr, until: Instant, now: Instant) {
        let held = self.held.pin();
        if held.len() >= MAX_HELD {
            held.retain(|_, u| *u > now);
            if held.len() >= MAX_HELD {
                return;
            }
        }
        held.insert(addr, until);
        self.held_count.store(held.len(), Relaxed);
    }

    /// Counts a name the resolver could not resolve.
    pub fn note_failure(&self) {
        self.counters.failures.fetch_add(1, Relaxed);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn snapshot(&self) -> DnsSnapshot {
        let c = &self.counters;
        DnsSnapshot {
            hits: c.hits.0.load(Relaxed),
            misses: c.misses.0.load(Relaxed),
            failures: c.failures.load(Relaxed),
            malformed: c.malformed.load(Relaxed),
            queries: c.queries.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            stale_served: c.stale_served.load(Relaxed),
            refused_full: c.refused_full.load(Relaxed),
            entries: self.len() as u64,
        }
    }
}

/// A target as selection sees it: its address seeds the rendezvous score. RFC 2782 weights
/// are 0..=65535 and "weight 0 [...] should have a very small chance of being selected"
/// beside non-zero ones: weight `w` counts as `1000 w + 1`.
fn candidate(t: &Target) -> Candidate {
    let seed = crate::groups::select::mix(match t.addr {
        SocketAddr::V4(a) => u64::from(a.ip().to_bits()) << 16 | u64::from(a.port()),
        SocketAddr::V6(a) => {
            (a.ip().to_bits() as u64) ^ ((a.ip().to_bits() >> 64) as u64) ^ u64::from(a.port())
        }
    });
    Candidate {
        seed,
        weight: u32::from(t.weight) * 1000 + 1,
        priority: u32::from(t.priority),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Want;
    use crate::sip::Transport;

    fn t(addr: &str, priority: u16, weight: u16) -> Target {
        Target {
            addr: addr.parse().unwrap(),
            transport: Transport::Udp,
            priority,
            weight,
        }
    }

    fn lookup(name: &str) -> Lookup {
        Lookup::new(name.as_bytes(), Want::Naptr { secure: false }).unwrap()
    }

    #[test]
    fn entries_are_fresh_until_their_ttl() {
        let cache = DnsCache::new(10);
        let now = Instant::now();
        let l = lookup("a.test");
        assert_eq!(cache.find(&l, now, 1), Found::Miss);
        cache.insert(
            l,
            &[t("127.0.0.1:5060", 0, 0)],
            Duration::from_secs(10),
            now,
        );
        assert!(matches!(
            cache.find(&l, now + Duration::from_secs(9), 1),
            Found::To(_)
        ));
        assert_eq!(
            cache.find(&l, now + Duration::from_secs(10), 1),
            Found::Miss
        );
        // Expired, still there to serve stale.
        assert_eq!(cache.stale(&l).unwrap().len(), 1);
        let s = cache.snapshot();
        assert_eq!((s.hits, s.misses, s.entries), (1, 2, 1));
        // TTL 0 is not cached (RFC 1035 §3.2.1).
        cache.insert(l, &[t("127.0.0.1:5060", 0, 0)], Duration::ZERO, now);
        assert_eq!(cache.find(&l, now, 1), Found::Miss);
    }

    #[test]
    fn rfc2308_a_negative_entry_answers_not_found() {
        let cache = DnsCache::new(10);
        let now = Instant::now();
        let l = lookup("gone.test");
        cache.insert(l, &[], Duration::from_secs(5), now);
        assert_eq!(cache.find(&l, now, 1), Found::NotFound);
        assert!(
            cache.stale(&l).is_none(),
            "nothing stale to serve from a negative entry"
        );
    }

    #[test]
    fn rfc2782_lowest_priority_first_then_weight() {
        let cache = DnsCache::new(10);
        let now = Instant::now();
        let l = lookup("farm.test");
        let targets = [
            t("127.0.0.1:5060", 10, 1),
            t("127.0.0.2:5060", 10, 3),
            t("127.0.0.3:5060", 20, 100),
        ];
        cache.insert(l, &targets, Duration::from_secs(60), now);
        let mut counts = [0usize; 3];
        for key in 0..4000u64 {
            let Found::To(chosen) = cache.find(&l, now, crate::groups::select::mix(key)) else {
                panic!("a target");
            };
            counts[targets.iter().position(|x| *x == chosen).unwrap()] += 1;
        }
        // Priority 20 never while priority 10 is live; 1:3 by weight within it.
        assert_eq!(counts[2], 0);
        let share = counts[1] as f64 / 4000.0;
        assert!((0.70..0.80).contains(&share), "{counts:?}");
        // The same key always chooses the same target.
        assert_eq!(cache.find(&l, now, 42), cache.find(&l, now, 42));
    }

    #[test]
    fn a_held_target_is_skipped_then_the_next_tier_is_used() {
        let cache = DnsCache::new(10);
        let now = Instant::now();
        let l = lookup("farm.test");
        let a = t("127.0.0.1:5060", 10, 1);
        let b = t("127.0.0.2:5060", 20, 1);
        cache.insert(l, &[a, b], Duration::from_secs(60), now);
        assert_eq!(cache.find(&l, now, 7), Found::To(a));
        cache.hold_down(a.addr, now + Duration::from_secs(30), now);
        assert_eq!(cache.find(&l, now, 7), Found::To(b));
        cache.hold_down(b.addr, now + Duration::from_secs(30), now);
        assert_eq!(cache.find(&l, now, 7), Found::AllDown);
        // After the hold, back.
        assert_eq!(
            cache.find(&l, now + Duration::from_secs(31), 7),
            Found::To(a)
        );
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_refuses() {
        let cache = DnsCache::new(2);
        let now = Instant::now();
        let one = [t("127.0.0.1:5060", 0, 0)];
        cache.insert(lookup("a.test"), &one, Duration::from_secs(1), now);
        cache.insert(lookup("b.test"), &one, Duration::from_secs(100), now);
        let later = now + Duration::from_secs(2);
        cache.insert(lookup("c.test"), &one, Duration::from_secs(100), later);
        assert_eq!(cache.len(), 2, "a.test expired and made room");
        cache.insert(lookup("d.test"), &one, Duration::from_secs(100), later);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.snapshot().refused_full, 1);
        assert_eq!(cache.find(&lookup("d.test"), later, 1), Found::Miss);
    }
}
