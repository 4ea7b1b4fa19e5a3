//! What operators see of the groups: a point-in-time copy of every counter and state, for
//! `GET /groups` (JSON), `/stats`, `/metrics` and `ferrovia stats`.

use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

use super::{DestinationId, Groups};

/// Every group, as read now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsSnapshot {
    pub groups: Vec<GroupSnapshot>,
}

/// One group: its rule and how many destinations are live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    pub name: String,
    pub algorithm: String,
    pub key: String,
    pub live: usize,
    pub destinations: Vec<DestinationSnapshot>,
}

/// One destination's state and counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationSnapshot {
    pub uri: String,
    pub address: String,
    pub weight: u32,
    pub priority: u32,
    /// `up` or `down`.
    pub state: String,
    pub messages_sent: u64,
    pub probes_sent: u64,
    pub probes_failed: u64,
    /// Round-trip time of the last answered probe, microseconds (0: none yet).
    pub last_probe_rtt_us: u64,
    pub went_down: u64,
    pub went_up: u64,
    pub passive_downs: u64,
    /// For a target of a DNS name: its SRV priority and weight now (RFC 2782; 0 and 0 for an
    /// address found without SRV); absent for an IP literal, a `[hosts]` name, or a name not
    /// resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srv_priority: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srv_weight: Option<u16>,
}

impl Groups {
    /// Reads every counter now (relaxed loads: a consistent-enough view for operators).
    pub fn snapshot(&self) -> GroupsSnapshot {
        let groups = self
            .iter()
            .map(|g| {
                let live = g.live();
                let ranks = g.named.as_ref().map(|n| n.ranks()).unwrap_or_default();
                GroupSnapshot {
                    name: g.name.clone(),
                    algorithm: g.algorithm.name().into(),
                    key: g.key.name().into(),
                    live: live.count_ones() as usize,
                    destinations: g
                        .destinations
                        .iter()
                        .enumerate()
                        .map(|(i, d)| {
                            let h = &d.health;
                            let rank = ranks.get(i).copied().flatten();
                            DestinationSnapshot {
                                uri: d.label(),
                                address: d.addr().to_string(),
                                weight: d.weight,
                                priority: d.priority,
                                state: if live & (1 << i) != 0 { "up" } else { "down" }.into(),
                                messages_sent: g.messages_sent(DestinationId(i as u8)),
                                probes_sent: h.probes_sent.load(Relaxed),
                                probes_failed: h.probes_failed.load(Relaxed),
                                last_probe_rtt_us: h.last_rtt_us.load(Relaxed),
                                went_down: h.went_down.load(Relaxed),
                                went_up: h.went_up.load(Relaxed),
                                passive_downs: h.passive_downs.load(Relaxed),
                                srv_priority: rank.map(|r| r.priority),
                                srv_weight: rank.map(|r| r.weight),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        GroupsSnapshot { groups }
    }
}
