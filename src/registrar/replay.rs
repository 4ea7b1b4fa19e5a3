//! Nonce-count memory (RFC 2617 §3.2.2, RFC 7616 §3.4: "the server … can detect replays by
//! checking that the nc-value is greater than the last one it saw for that nonce").
//!
//! Nonces stay stateless — any node holding the key verifies them — so this record is only a
//! node's local, bounded memory of which `(nonce, nc)` it has accepted: a fixed table of
//! 64-bit atomics shared by every worker, written by compare-and-swap, never allocating and
//! never locking. Each slot holds, for the last nonce that hashed to it, a 24-bit tag of the
//! nonce, the highest `nc` accepted (16 bits) and when it was first accepted (24 bits of
//! seconds). A `(nonce, nc)`:
//! - with `nc` above the slot's for the same nonce, or a nonce the slot does not hold: admitted
//!   (and recorded, evicting whatever nonce was there: the memory is bounded, so under more
//!   than `SLOTS` live nonces an evicted nonce's replay is not detected — the nonce's MAC, its
//!   client address and its lifetime still bound it);
//! - with the same `nc` again within [`RETRANSMISSION_WINDOW`]: admitted — a stateless proxy
//!   has no transaction layer, so a UDP retransmission of an authenticated request must pass as
//!   the original did (refusing it would end the client's transaction with a 401/407 while the
//!   original is still being forwarded);
//! - otherwise (a lower `nc`, the same `nc` later, `nc` past 65,535): a replay.
//!
//! A request without `qop` (RFC 2069) has no `nc`: it counts as `nc = 1`, so such a nonce is
//! used once (plus retransmissions), then challenged again.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip::SipHasher13;

/// Slots in the table (a power of two): 512 KiB.
pub(crate) const SLOTS: usize = 1 << 16;

/// How long the same `(nonce, nc)` is taken as a retransmission: 64 × T1, a transaction's
/// lifetime (RFC 3261 §17.1.2.2, Timer F).
pub(crate) const RETRANSMISSION_WINDOW: u64 = 32;

const NC_BITS: u32 = 16;
const TIME_BITS: u32 = 24;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const NC_MASK: u64 = (1 << NC_BITS) - 1;

/// The shared record.
pub(crate) struct NonceCounts {
    slots: Box<[AtomicU64]>,
    key: [u8; 16],
}

impl std::fmt::Debug for NonceCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceCounts")
            .field("slots", &self.slots.len())
            .finish()
    }
}

fn pack(tag: u64, nc: u64, secs: u64) -> u64 {
    (tag << (NC_BITS + TIME_BITS)) | (nc << TIME_BITS) | (secs & TIME_MASK)
}

impl NonceCounts {
    /// `key` keys the slot hash, so nobody can aim nonces at one slot.
    pub(crate) fn new(key: [u8; 16]) -> NonceCounts {
        NonceCounts {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            key,
        }
    }

    /// Whether `(nonce, nc)` may be accepted at `secs` (seconds on any steady clock); records
    /// it when so.
    pub(crate) fn admit(&self, nonce: &[u8], nc: u32, secs: u64) -> bool {
        let nc = u64::from(nc);
        if nc > NC_MASK {
            return false;
        }
        let mut h = SipHasher13::new_with_key(&self.key);
        h.write(nonce);
        let hash = h.finish();
        // The tag is never 0, so an empty slot (0) holds no nonce.
        let tag = (hash >> 40) | 1;
        let slot = &self.slots[(hash as usize) & (SLOTS - 1)];
        let mut current = slot.load(Ordering::Acquire);
        loop {
            let same = current >> (NC_BITS + TIME_BITS) == tag;
            let seen = (current >> TIME_BITS) & NC_MASK;
            let first = current & TIME_MASK;
            if same && nc == seen {
                // RFC 3261 §17: a retransmission within a transaction's lifetime.
                return secs.wrapping_sub(first) & TIME_MASK <= RETRANSMISSION_WINDOW;
            }
            if same && nc < seen {
                return false;
            }
            match slot.compare_exchange_weak(
                current,
                pack(tag, nc, secs),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_nc_must_grow_for_a_nonce() {
        let counts = NonceCounts::new([9; 16]);
        assert!(counts.admit(b"n1", 1, 100));
        assert!(counts.admit(b"n1", 2, 101));
        assert!(!counts.admit(b"n1", 1, 102), "a lower nc is a replay");
        assert!(counts.admit(b"n1", 5, 103), "nc may skip");
        // Another nonce has its own count.
        assert!(counts.admit(b"n2", 1, 103));
        assert!(!counts.admit(b"n1", 70_000, 103), "past 16 bits: refused");
    }

    #[test]
    fn rfc3261_17_the_same_nc_is_a_retransmission_only_within_timer_f() {
        let counts = NonceCounts::new([9; 16]);
        assert!(counts.admit(b"n", 1, 1_000));
        assert!(counts.admit(b"n", 1, 1_000 + RETRANSMISSION_WINDOW));
        assert!(!counts.admit(b"n", 1, 1_000 + RETRANSMISSION_WINDOW + 1));
        // Across the 24-bit wrap of the clock.
        let counts = NonceCounts::new([9; 16]);
        assert!(counts.admit(b"n", 1, TIME_MASK));
        assert!(counts.admit(b"n", 1, TIME_MASK + 3));
    }

    #[test]
    fn workers_racing_on_one_nonce_leave_its_highest_nc() {
        let counts = NonceCounts::new([1; 16]);
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let c = &counts;
                s.spawn(move || {
                    for nc in (1..=200u32).filter(|nc| nc % 4 == t) {
                        c.admit(b"shared", nc, 0);
                    }
                });
            }
        });
        // Whatever the interleaving, 200 was admitted last by its taker (nothing above it),
        // so the slot holds 200: anything at or below it later is a replay.
        let later = RETRANSMISSION_WINDOW + 1;
        assert!(!counts.admit(b"shared", 200, later));
        assert!(!counts.admit(b"shared", 57, later));
        assert!(counts.admit(b"shared", 201, later));
    }
}
