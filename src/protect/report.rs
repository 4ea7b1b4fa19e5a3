//! Protection's figures as the stats show them: bans, top talkers, scanner hits, the tables'
//! fill. Built off the workers' path (the stats thread, the metrics server), by scanning the
//! tables; serializable for `/stats` and `/bans`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Protection;

/// How many top talkers a report lists.
pub(crate) const TOP_TALKERS: usize = 10;

/// One active ban.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BanView {
    /// `192.0.2.7`, or `2001:db8:1:2::/64`.
    pub source: String,
    /// `rate` or `scanner`.
    pub reason: String,
    pub banned_seconds_ago: f64,
    pub remaining_seconds: f64,
    /// 1 for a first ban; more when the source was banned shortly before (longer bans).
    pub strikes: u32,
    /// Requests dropped during this ban.
    pub dropped: u64,
}

/// One of the sources sending the most requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TalkerView {
    pub source: String,
    /// Requests since the source took its slot in the rate table.
    pub requests: u64,
    pub refused: u64,
}

/// Requests dropped by one scanner pattern.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScannerCount {
    /// `user-agent` or `from`.
    pub header: String,
    pub pattern: String,
    pub dropped: u64,
}

/// Everything protection shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProtectReport {
    /// Bans started since the process started.
    pub bans_started: u64,
    /// Bans active now, longest-running first.
    pub bans: Vec<BanView>,
    pub top_talkers: Vec<TalkerView>,
    pub scanners: Vec<ScannerCount>,
    /// Sources in the rate table, and its fixed number of slots.
    pub tracked_sources: usize,
    pub source_slots: usize,
    /// Sources that took the slot of another.
    pub evictions: u64,
    /// The tables' memory, fixed at start.
    pub memory_bytes: usize,
}

impl Protection {
    /// The figures at `now`.
    pub fn report(&self, now: Instant) -> ProtectReport {
        let now_ns = self.nanos_at(now);
        let secs = |ns: u64| ns as f64 / 1e9;
        let bans = self
            .bans
            .active(now_ns)
            .into_iter()
            .map(|b| BanView {
                source: b.source.to_string(),
                reason: b.reason.name().to_string(),
                banned_seconds_ago: secs(now_ns.saturating_sub(b.since_ns)),
                remaining_seconds: secs(b.until_ns.saturating_sub(now_ns)),
                strikes: b.strikes,
                dropped: b.dropped,
            })
            .collect();
        let top_talkers = self
            .rates
            .top(TOP_TALKERS)
            .into_iter()
            .map(|t| TalkerView {
                source: t.source.to_string(),
                requests: t.requests,
                refused: t.refused,
            })
            .collect();
        let scanners = self
            .scanners
            .counts()
            .map(|(field, pattern, dropped)| ScannerCount {
                header: field.name().to_string(),
                pattern: pattern.to_string(),
                dropped,
            })
            .collect();
        ProtectReport {
            bans_started: self.bans.started(),
            bans,
            top_talkers,
            scanners,
            tracked_sources: self.rates.occupied(),
            source_slots: self.rates.capacity(),
            evictions: self.rates.evictions(),
            memory_bytes: self.memory_bytes(),
        }
    }
}
