//! Choosing one destination among the live ones: weighted rendezvous hashing (`hash`), the
//! lowest live priority tier (`priority`), or a weighted spread over the transaction
//! (`weighted`).
//!
//! Pure functions over the destinations' weights, priorities and hash seeds, the live set
//! (bit `i` set: destination `i` is up) and a 64-bit key. No allocation, no state.
//!
//! Rendezvous hashing (Thaler & Ravishankar, "Using name-based mappings to increase hit
//! rates", 1998), weighted as in Schindelhauer & Schomaker ("Weighted distributed hash
//! tables", 2005): each destination `i` scores `w_i / -ln(u_i)` where `u_i` in (0, 1) is a
//! hash of the key and the destination's seed; the highest score wins. Destination `i` wins
//! with probability `w_i / Σw`, and removing one destination changes the winner only for the
//! keys it won: every other key keeps its destination.

/// What selection needs to know about one destination.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Candidate {
    /// A stable hash of the destination's URI: its rendezvous identity.
    pub seed: u64,
    pub weight: u32,
    pub priority: u32,
}

/// SplitMix64's finalizer: a bijective mix with full avalanche.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A destination's draw for `key` (`mixed_seed` is `mix(seed)`): 53 bits of their hash, plus
/// one half, as a float, so that `draw / 2^53` lies in (0, 1) (never 0 or 1).
fn draw(key: u64, mixed_seed: u64) -> f64 {
    // Below 2^53, so exact as a signed conversion too (one instruction, where an unsigned
    // 64-bit conversion takes several).
    (mix(key ^ mixed_seed) >> 11) as i64 as f64 + 0.5
}

/// The weighted rendezvous score of a draw: `w / -ln(u)`, `u = draw / 2^53` in (0, 1), so the
/// logarithm is finite and negative.
fn score(draw: f64, weight: u32) -> f64 {
    let u = draw / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

/// The live destination with the highest rendezvous score for `key`, among those whose
/// priority is `tier` (any priority when `None`).
pub(crate) fn rendezvous(
    candidates: &[Candidate],
    live: u64,
    key: u64,
    tier: Option<u32>,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        if live & (1 << i) == 0 || tier.is_some_and(|t| c.priority != t) {
            continue;
        }
        let s = score(draw(key, mix(c.seed)), c.weight);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// A group's destinations prepared once for [`rendezvous`] on the hot path: each seed mixed
/// ahead, and whether every weight is the same.
///
/// With equal weights the score `w / -ln(u)` grows with `u`, so the highest draw wins, with
/// no logarithm: the destination the scores choose (the first of equal draws, as the scores'
/// strict `>` keeps it). The two could differ only where the logarithm or the division
/// rounds two different draws to one score, which needs two draws a few units apart out of
/// 2^53 (`farm_without_logarithms_chooses_as_the_scores` checks 200,000 keys).
#[derive(Clone, Debug)]
pub(crate) struct Farm {
    candidates: Vec<Candidate>,
    /// The candidates again, each with `mix(seed)` in place of its seed.
    mixed: Vec<Candidate>,
    equal_weights: bool,
}

impl Farm {
    pub(crate) fn new(candidates: Vec<Candidate>) -> Farm {
        let mixed = candidates
            .iter()
            .map(|c| Candidate {
                seed: mix(c.seed),
                ..*c
            })
            .collect();
        let equal_weights = candidates.windows(2).all(|w| w[0].weight == w[1].weight);
        Farm {
            candidates,
            mixed,
            equal_weights,
        }
    }

    pub(crate) fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// As [`rendezvous`] over the farm's candidates.
    pub(crate) fn rendezvous(&self, live: u64, key: u64, tier: Option<u32>) -> Option<usize> {
        // Draws and scores are positive: any beats the starting 0.
        let (mut best, mut best_score) = (None, 0.0);
        for (i, c) in self.mixed.iter().enumerate() {
            if live & (1 << i) == 0 || tier.is_some_and(|t| c.priority != t) {
                continue;
            }
            let d = draw(key, c.seed);
            let s = if self.equal_weights {
                d
            } else {
                score(d, c.weight)
            };
            if s > best_score {
                (best, best_score) = (Some(i), s);
            }
        }
        best
    }
}

/// The lowest priority value held by a live destination.
pub(crate) fn lowest_live_tier(candidates: &[Candidate], live: u64) -> Option<u32> {
    candidates
        .iter()
        .enumerate()
        .filter(|(i, _)| live & (1 << i) != 0)
        .map(|(_, c)| c.priority)
        .min()
}

/// A live destination by weight, chosen by `key` reduced over the live weights: uniform over
/// keys, but when the live set changes most keys move (the trade-off against `hash`).
pub(crate) fn weighted(candidates: &[Candidate], live: u64, key: u64) -> Option<usize> {
    let live_weight = |(i, c): (usize, &Candidate)| (live & (1 << i) != 0).then_some(c.weight);
    let total: u64 = candidates
        .iter()
        .enumerate()
        .filter_map(live_weight)
        .map(u64::from)
        .sum();
    if total == 0 {
        return None;
    }
    let mut point = mix(key) % total;
    for (i, c) in candidates.iter().enumerate() {
        let Some(w) = live_weight((i, c)) else {
            continue;
        };
        if point < u64::from(w) {
            return Some(i);
        }
        point -= u64::from(w);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn farm(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Candidate {
                seed: 1000 + i as u64,
                weight,
                priority: 0,
            })
            .collect()
    }

    fn shares(pick: impl Fn(u64) -> Option<usize>, n: usize, keys: u64) -> Vec<f64> {
        let mut counts = vec![0u64; n];
        for k in 0..keys {
            counts[pick(mix(k + 7)).unwrap()] += 1;
        }
        counts.iter().map(|&c| c as f64 / keys as f64).collect()
    }

    #[test]
    fn rendezvous_spreads_by_weight() {
        let c = farm(&[1, 1, 2]);
        let s = shares(|k| rendezvous(&c, 0b111, k, None), 3, 100_000);
        for (got, want) in s.iter().zip([0.25, 0.25, 0.5]) {
            assert!((got - want).abs() < 0.01, "{s:?}");
        }
        let c = farm(&[1, 3, 6, 10]);
        let s = shares(|k| rendezvous(&c, 0b1111, k, None), 4, 100_000);
        for (got, want) in s.iter().zip([0.05, 0.15, 0.3, 0.5]) {
            assert!((got - want).abs() < 0.01, "{s:?}");
        }
    }

    #[test]
    fn a_node_leaving_moves_only_its_share() {
        let c = farm(&[1, 1, 2, 1]);
        let mut moved_to = [0u64; 4];
        for k in 0..50_000u64 {
            let key = mix(k);
            let before = rendezvous(&c, 0b1111, key, None).unwrap();
            let after = rendezvous(&c, 0b1101, key, None).unwrap();
            if before == 1 {
                assert_ne!(after, 1);
                moved_to[after] += 1;
            } else {
                assert_eq!(before, after, "key {key} moved from a live node");
            }
        }
        // Its share spreads over the others by their weights (1:2:1).
        let total: u64 = moved_to.iter().sum();
        let share = |i: usize| moved_to[i] as f64 / total as f64;
        assert!((share(2) - 0.5).abs() < 0.03, "{moved_to:?}");
        assert!((share(0) - 0.25).abs() < 0.03, "{moved_to:?}");
    }

    #[test]
    fn reordering_destinations_moves_nothing() {
        let c = farm(&[1, 2, 3]);
        let reversed: Vec<Candidate> = c.iter().rev().copied().collect();
        for k in 0..1000 {
            let a = rendezvous(&c, 0b111, mix(k), None).unwrap();
            let b = rendezvous(&reversed, 0b111, mix(k), None).unwrap();
            assert_eq!(c[a], reversed[b]);
        }
    }

    #[test]
    fn nothing_live_is_none() {
        let c = farm(&[1, 1]);
        assert_eq!(rendezvous(&c, 0, 5, None), None);
        assert_eq!(weighted(&c, 0, 5), None);
        assert_eq!(lowest_live_tier(&c, 0), None);
    }

    #[test]
    fn priority_tiers() {
        let mut c = farm(&[1, 1, 1]);
        c[0].priority = 10;
        c[1].priority = 5;
        c[2].priority = 5;
        assert_eq!(lowest_live_tier(&c, 0b111), Some(5));
        assert_eq!(lowest_live_tier(&c, 0b001), Some(10));
        for k in 0..1000 {
            let pick = rendezvous(&c, 0b111, mix(k), Some(5)).unwrap();
            assert!(pick == 1 || pick == 2);
        }
    }

    #[test]
    fn farm_without_logarithms_chooses_as_the_scores() {
        for weights in [&[1, 1, 1][..], &[5, 5, 5, 5, 5], &[1, 1, 2], &[1, 3, 6, 10]] {
            let c = farm(weights);
            let f = Farm::new(c.clone());
            assert_eq!(f.equal_weights, weights.iter().all(|&w| w == weights[0]));
            let all = (1u64 << c.len()) - 1;
            for live in [all, all & !0b10, 0b1] {
                for k in 0..200_000u64 {
                    let key = mix(k);
                    assert_eq!(
                        f.rendezvous(live, key, None),
                        rendezvous(&c, live, key, None),
                        "weights {weights:?} live {live:b} key {key}"
                    );
                }
            }
        }
    }

    #[test]
    fn farm_tiers_and_nothing_live() {
        let mut c = farm(&[1, 1, 1, 1]);
        c[0].priority = 10;
        c[3].priority = 10;
        let f = Farm::new(c.clone());
        for k in 0..10_000u64 {
            let key = mix(k);
            for tier in [Some(0), Some(10), None] {
                assert_eq!(
                    f.rendezvous(0b1011, key, tier),
                    rendezvous(&c, 0b1011, key, tier)
                );
            }
            assert!(matches!(f.rendezvous(0b1111, key, Some(10)), Some(0 | 3)));
        }
        assert_eq!(f.rendezvous(0, 5, None), None);
        assert_eq!(f.rendezvous(0b0110, 5, Some(10)), None);
    }

    #[test]
    fn farm_of_equal_weights_moves_only_the_leavers_share() {
        let f = Farm::new(farm(&[1, 1, 1]));
        let mut moved = [0u64; 3];
        for k in 0..60_000u64 {
            let key = mix(k);
            let before = f.rendezvous(0b111, key, None).unwrap();
            let after = f.rendezvous(0b101, key, None).unwrap();
            if before == 1 {
                moved[after] += 1;
            } else {
                assert_eq!(before, after, "key {key} moved from a live node");
            }
        }
        // A third of the keys moved, half of them to each of the others.
        let total: u64 = moved.iter().sum();
        assert!(
            (total as f64 / 60_000.0 - 1.0 / 3.0).abs() < 0.01,
            "{moved:?}"
        );
        assert!(
            (moved[0] as f64 / total as f64 - 0.5).abs() < 0.02,
            "{moved:?}"
        );
    }

    #[test]
    fn weighted_spreads_by_weight() {
        let c = farm(&[1, 1, 2]);
        let s = shares(|k| weighted(&c, 0b111, k), 3, 100_000);
        for (got, want) in s.iter().zip([0.25, 0.25, 0.5]) {
            assert!((got - want).abs() < 0.01, "{s:?}");
        }
        let s = shares(|k| weighted(&c, 0b101, k), 3, 30_000);
        assert_eq!(s[1], 0.0);
        assert!((s[2] - 2.0 / 3.0).abs() < 0.02, "{s:?}");
    }
}
