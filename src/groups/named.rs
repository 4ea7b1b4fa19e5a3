//! Destinations named in DNS: a configured destination whose host is a DNS name stands for
//! all the targets its name resolves to (RFC 3263: SRV targets, or the addresses of A/AAAA
//! records), each a destination slot of its own (own address, health, probes, counters), and
//! the group chooses in two steps:
//!
//! 1. among the **configured** destinations, by the group's algorithm with their configured
//!    weight and priority — a name counts once, live while any of its targets is;
//! 2. within a name, by RFC 2782: the lowest SRV priority with a live target, then the SRV
//!    weights (weight `w` counts as `1000 w + 1`, so a weight of 0 keeps "a very small chance"
//!    beside others), by rendezvous hashing over the same key.
//!
//! So a name keeps its configured share while any target is up; a target that goes down
//! moves only its own calls, to its live siblings of the same priority by their weights; a
//! priority tier with nothing live hands the whole name to the next tier. Targets without
//! SRV records (A/AAAA only) share their name's share equally.
//!
//! The targets' slots are fixed when the groups are built (the live set is one word); what
//! DNS says later — new SRV priorities and weights, a target gone, a new address — is a new
//! [`Plan`] swapped in whole ([`Named::refresh`]): a reader sees the old plan or the new one.

use std::net::SocketAddr;

use arc_swap::ArcSwap;

use super::config::SrvRank;
use super::select::{self, Candidate};
use super::{Algorithm, Destination};
use crate::sip::Transport;

/// The part of a named group that DNS refreshes: each slot's SRV rank as a candidate, and
/// which slots have no target now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// By slot: the SRV priority and weight (as selection weighs them).
    inner: Vec<Candidate>,
    /// By slot: the SRV rank DNS gave (`None`: a literal, or a name not resolved yet).
    pub(crate) ranks: Vec<Option<SrvRank>>,
    /// Slots whose name resolves to fewer targets now: never chosen.
    vacant: u64,
}

/// The two-step choice of a group with destinations named in DNS.
#[derive(Debug)]
pub(crate) struct Named {
    /// One per configured destination: its configured weight and priority.
    top: Vec<Candidate>,
    /// By configured destination: the slots that are its targets.
    slots: Vec<u64>,
    plan: ArcSwap<Plan>,
}

/// A target DNS gives for a name, placed (address and transport) and ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub rank: SrvRank,
}

/// What a refresh did to a name's slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Slots given another address.
    pub moved: usize,
    /// Slots left without a target.
    pub vacant: usize,
    /// Targets with no slot to take them (more targets than at start, or of a transport no
    /// free slot has).
    pub left_out: usize,
}

/// A slot's SRV rank as selection weighs it: RFC 2782 weight `w` as `1000 w + 1`.
fn inner(seed: u64, rank: Option<SrvRank>) -> Candidate {
    let rank = rank.unwrap_or_default();
    Candidate {
        seed,
        weight: u32::from(rank.weight) * 1000 + 1,
        priority: u32::from(rank.priority),
    }
}

/// The inner rendezvous identity of a name's `target`-th slot: not its top-level seed (which
/// would make the slot that wins the name also favoured within it).
fn inner_seed(uri: &str, target: u8) -> u64 {
    super::key::seed(uri) ^ select::mix(u64::from(target) + 1)
}

impl Named {
    /// The plan of `destinations` (consecutive slots of one URI are one configured
    /// destination); `None` when no destination is named in DNS (the one-step choice).
    pub(crate) fn new(destinations: &[Destination], ranks: Vec<Option<SrvRank>>) -> Option<Named> {
        destinations.iter().find(|d| d.name.is_some())?;
        let mut top = Vec::new();
        let mut slots: Vec<u64> = Vec::new();
        for (i, d) in destinations.iter().enumerate() {
            let joins = i > 0 && d.name.is_some() && destinations[i - 1].uri == d.uri;
            match slots.last_mut() {
                Some(s) if joins => *s |= 1 << i,
                _ => {
                    top.push(Candidate {
                        seed: super::key::seed(&d.uri),
                        weight: d.weight,
                        priority: d.priority,
                    });
                    slots.push(1 << i);
                }
            }
        }
        let inner = destinations
            .iter()
            .zip(&ranks)
            .map(|(d, r)| inner(inner_seed(&d.uri, d.target), *r))
            .collect();
        let plan = Plan {
            inner,
            ranks,
            vacant: 0,
        };
        Some(Named {
            top,
            slots,
            plan: ArcSwap::from_pointee(plan),
        })
    }

    /// The slot for `key` among the live ones (`live`: bit `i` for slot `i`); no allocation.
    pub(crate) fn choose(&self, algorithm: Algorithm, live: u64, key: u64) -> Option<usize> {
        let plan = self.plan.load();
        let live = live & !plan.vacant;
        let top_live = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s & live != 0)
            .fold(0u64, |m, (k, _)| m | 1 << k);
        let c = &self.top;
        let chosen = match algorithm {
            Algorithm::Hash => select::rendezvous(c, top_live, key, None),
            Algorithm::Priority => select::lowest_live_tier(c, top_live)
                .and_then(|tier| select::rendezvous(c, top_live, key, Some(tier))),
            Algorithm::Weighted => select::weighted(c, top_live, key),
        }?;
        let targets = self.slots[chosen] & live;
        if targets.count_ones() == 1 {
            return Some(targets.trailing_zeros() as usize);
        }
        // RFC 2782: "A client MUST attempt to contact the target host with the lowest-numbered
        // priority it can reach"; within that priority, by weight.
        let tier = select::lowest_live_tier(&plan.inner, targets)?;
        select::rendezvous(&plan.inner, targets, key, Some(tier))
    }

    /// The SRV rank of every slot now (for operators).
    pub(crate) fn ranks(&self) -> Vec<Option<SrvRank>> {
        self.plan.load().ranks.clone()
    }

    /// Follows what DNS now says of the name whose slots start at `first`
    /// (`dests`: those slots' destinations): a slot keeps its target when that address is still there;
    /// the new targets fill the slots left (of their transport); slots with no target left
    /// become vacant, never chosen, their address unspecified (their probes fail unsent). The
    /// new SRV ranks and vacancies are swapped in as one plan.
    pub(crate) fn refresh(
        &self,
        first: usize,
        dests: &[Destination],
        targets: &[Placed],
    ) -> Refreshed {
        let assigned = assign(dests, targets);
        let mut news = Refreshed {
            left_out: targets.len() - assigned.iter().flatten().count(),
            ..Refreshed::default()
        };
        let old = self.plan.load_full();
        let mut plan = Plan::clone(&old);
        for (k, (d, target)) in dests.iter().zip(&assigned).enumerate() {
            let slot = first + k;
            let bit = 1u64 << slot;
            match target {
                Some(t) => {
                    if d.addr() != t.addr {
                        d.set_addr(t.addr);
                        news.moved += 1;
                    }
                    plan.vacant &= !bit;
                    plan.ranks[slot] = Some(t.rank);
                    plan.inner[slot] = inner(plan.inner[slot].seed, Some(t.rank));
                }
                None => {
                    d.set_addr(SocketAddr::new(unspecified(d.addr()), d.addr().port()));
                    plan.vacant |= bit;
                    news.vacant += 1;
                }
            }
        }
        if plan != *old {
            self.plan.store(std::sync::Arc::new(plan));
        }
        news
    }
}

fn unspecified(addr: SocketAddr) -> std::net::IpAddr {
    match addr {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Which target each slot of a name takes: its own address when DNS still gives it (so a
/// target keeps its slot, its health and its calls whatever order the records come in), else
/// the first target not taken of the slot's transport; `None`: vacant.
fn assign(dests: &[Destination], targets: &[Placed]) -> Vec<Option<Placed>> {
    let mut taken = vec![false; targets.len()];
    let mut out: Vec<Option<Placed>> = dests
        .iter()
        .map(|d| {
            let at = targets
                .iter()
                .enumerate()
                .position(|(i, t)| !taken[i] && t.addr == d.addr() && t.transport == d.transport)?;
            taken[at] = true;
            Some(targets[at])
        })
        .collect();
    for (slot, d) in out.iter_mut().zip(dests) {
        if slot.is_some() {
            continue;
        }
        let free = targets
            .iter()
            .enumerate()
            .position(|(i, t)| !taken[i] && t.transport == d.transport);
        if let Some(at) = free {
            taken[at] = true;
            *slot = Some(targets[at]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::groups::{DestinationConfig, GroupConfig, Groups, select::mix};

    /// Group `g`: `sip:farm.test` (weight 2) resolved to a (priority 10, weight 1),
    /// b (10, 3) and c (20, 5), beside the literal 10.0.0.9 (weight 2).
    fn farm() -> Groups {
        let target = |i: u8, last: u8, priority, weight| {
            let mut d = DestinationConfig::parse("sip:farm.test", 2, 0, |_| None).unwrap();
            d.addr = SocketAddr::from(([10, 0, 0, last], 5060));
            d.target = i;
            d.srv = Some(SrvRank { priority, weight });
            d
        };
        let literal = DestinationConfig::parse("sip:10.0.0.9", 2, 0, |_| None).unwrap();
        let destinations = vec![
            target(0, 1, 10, 1),
            target(1, 2, 10, 3),
            target(2, 3, 20, 5),
            literal,
        ];
        let config = GroupConfig::new("g", destinations);
        Groups::new(vec![config], [7; 16], Instant::now()).unwrap()
    }

    fn named(groups: &Groups) -> &Named {
        groups.groups[0].named.as_ref().expect("a named group")
    }

    fn counts(n: &Named, live: u64) -> [u32; 4] {
        let mut c = [0; 4];
        for k in 0..40_000u64 {
            c[n.choose(Algorithm::Hash, live, mix(k)).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn rfc2782_the_lowest_live_priority_then_weight_within_the_name() {
        let groups = farm();
        let n = named(&groups);
        let c = counts(n, 0b1111);
        // The name and the literal share by their configured weights (2:2); within the name,
        // priority 20 waits while 10 has a live target, and 10 splits 1:3.
        let share = |x: u32| f64::from(x) / 40_000.0;
        assert!((share(c[3]) - 0.5).abs() < 0.02, "{c:?}");
        assert_eq!(c[2], 0, "{c:?}");
        assert!(
            (share(c[1]) / share(c[0] + c[1]) - 0.75).abs() < 0.03,
            "{c:?}"
        );
    }

    #[test]
    fn a_target_down_moves_only_its_calls_to_its_live_siblings() {
        let groups = farm();
        let n = named(&groups);
        for k in 0..20_000u64 {
            let key = mix(k);
            let before = n.choose(Algorithm::Hash, 0b1111, key).unwrap();
            let after = n.choose(Algorithm::Hash, 0b1110, key).unwrap();
            match before {
                0 => assert_eq!(after, 1, "to its sibling of the same priority"),
                other => assert_eq!(after, other, "key {key} moved"),
            }
        }
        // The whole priority 10 down: priority 20 takes the name's calls, the literal keeps its.
        for k in 0..20_000u64 {
            let key = mix(k);
            let before = n.choose(Algorithm::Hash, 0b1111, key).unwrap();
            let after = n.choose(Algorithm::Hash, 0b1100, key).unwrap();
            assert_eq!(after, if before == 3 { 3 } else { 2 });
        }
        assert_eq!(n.choose(Algorithm::Hash, 0, 1), None);
        // `priority` and `weighted` take the name as one destination too.
        assert!(
            n.choose(Algorithm::Priority, 0b0100, 9)
                .is_some_and(|s| s == 2)
        );
        assert!(
            n.choose(Algorithm::Weighted, 0b1000, 9)
                .is_some_and(|s| s == 3)
        );
    }

    fn placed(last: u8, priority: u16, weight: u16) -> Placed {
        Placed {
            addr: SocketAddr::from(([10, 0, 0, last], 5060)),
            transport: Transport::Udp,
            rank: SrvRank { priority, weight },
        }
    }

    #[test]
    fn a_refresh_keeps_targets_in_their_slots_and_follows_the_records() {
        let groups = farm();
        let n = named(&groups);
        let slots = &groups.groups[0].destinations[..3];
        let before: Vec<usize> = (0..2000u64)
            .map(|k| n.choose(Algorithm::Hash, 0b1111, mix(k)).unwrap())
            .collect();
        // The same records in another order: nothing moves.
        let same = [placed(3, 20, 5), placed(2, 10, 3), placed(1, 10, 1)];
        let news = n.refresh(0, slots, &same);
        assert_eq!(news, Refreshed::default());
        let after: Vec<usize> = (0..2000u64)
            .map(|k| n.choose(Algorithm::Hash, 0b1111, mix(k)).unwrap())
            .collect();
        assert_eq!(before, after);
        // b gone, c now priority 10: c shares priority 10 with a, b's slot is never chosen.
        let news = n.refresh(0, slots, &[placed(1, 10, 1), placed(3, 10, 1)]);
        assert_eq!((news.moved, news.vacant, news.left_out), (0, 1, 0));
        assert!(slots[1].addr().ip().is_unspecified());
        let c = counts(n, 0b1111);
        assert_eq!(c[1], 0, "{c:?}");
        assert!(c[0] > 8_000 && c[2] > 8_000, "1:1 now: {c:?}");
        assert_eq!(
            n.ranks()[2],
            Some(SrvRank {
                priority: 10,
                weight: 1
            })
        );
        // A new target takes the vacant slot; one more than the slots is left out.
        let four = [
            placed(1, 10, 1),
            placed(3, 10, 1),
            placed(4, 10, 1),
            placed(5, 10, 1),
        ];
        let news = n.refresh(0, slots, &four);
        assert_eq!((news.moved, news.vacant, news.left_out), (1, 0, 1));
        assert_eq!(slots[1].addr(), four[2].addr);
    }
}
