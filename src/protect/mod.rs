//! Edge protection: access lists, bans, scanner filtering and per-source rate limits,
//! applied to each message before the core works on it.
//!
//! Contract:
//! - [`Protection::check`] is called by the worker with the message bytes, the source, the
//!   listener and the batch's `now`, before [`Proxy::handle`]. It returns [`Verdict::Pass`] or
//!   a drop with its [`DropReason`] (`acl`, `ban`, `scanner`, `rate`), or asks for a 503.
//!   It never allocates, never locks, makes no system call and never panics on any input
//!   (`tests/protect_no_alloc.rs`, `tests/protect_props.rs`).
//! - In order, cheapest first: the listener's access lists (every message); then, for
//!   requests only (a response is never limited: the core answers from the address its
//!   callers also use), the allowlist (skips bans and limits), a ban, a scanner pattern, the
//!   source's bucket for the request's method class.
//! - Shared, lock-free state: the rate table ([`rates`]), the ban table ([`bans`]) and the
//!   scanner counters. A source's budget is for the whole process, whatever worker its flows
//!   land on. Both tables are allocated once, at their configured size, and never grow.
//! - A source refused continuously for `ban_after` (from its first refused request) is
//!   banned; the ban is logged once, at warn, by the worker that started it.
//! - Reads for the stats (`/stats`, `/bans`, `DELETE /bans/IP`) go through
//!   [`Protection::report`] and [`Protection::lift`], off the workers' path.

#![forbid(unsafe_code)]

mod acl;
mod bans;
mod bucket;
mod cidr;
mod config;
mod peek;
mod rates;
mod report;
mod scanner;
mod source;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use log::warn;

use crate::proxy::{DropReason, Input, Outcome, Proxy, Transport};

pub use acl::{AccessList, ListenerMatch};
pub use bans::{Ban, BanReason};
pub use bucket::Limit;
pub use cidr::{Cidr, CidrSet};
pub use config::{OverLimit, ProtectConfig};
pub use peek::MethodClass;
pub use rates::{STREAK_GAP_NS, Talker};
pub use report::{BanView, ProtectReport, ScannerCount, TalkerView};
pub use scanner::ScannerField;
pub use source::SourceKey;

use bans::{BanTable, BanTimes};
use bucket::Gcra;
use rates::{Admission, RateTable};
use scanner::Scanners;

/// What to do with one message.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the core.
    Pass,
    /// Drop it, counting the reason.
    Drop(DropReason),
    /// Over its limit: answer 503 with this Retry-After (seconds).
    Refuse { retry_after: u32 },
}

/// Protection's shared state: one per process, shared by every worker behind an `Arc`.
pub struct Protection {
    epoch: Instant,
    allow: CidrSet,
    access: Vec<AccessList>,
    limits: [Option<Gcra>; 3],
    retry_after: Option<u32>,
    ban_after_ns: Option<u64>,
    ban_scanners: bool,
    rates: RateTable,
    bans: BanTable,
    scanners: Scanners,
}

impl Protection {
    /// Builds the tables at their full size; `seed` keys the tables' hashes (random in a
    /// running proxy).
    pub fn new(config: &ProtectConfig, seed: u64) -> Protection {
        let times = BanTimes {
            time_ns: nanos(config.ban_time).max(1),
            max_time_ns: nanos(config.ban_max_time),
        };
        Protection {
            epoch: Instant::now(),
            allow: config.allow.clone(),
            access: config.access.clone(),
            limits: config.limits.map(|l| l.map(Gcra::new)),
            retry_after: match config.over_limit {
                OverLimit::Drop => None,
                OverLimit::Reply { retry_after } => Some(retry_after.as_secs() as u32),
            },
            ban_after_ns: config.ban_after.map(nanos),
            ban_scanners: config.ban_scanners,
            rates: RateTable::new(config.sources, seed),
            bans: BanTable::new(config.max_bans, seed.rotate_left(32), times),
            scanners: Scanners::new(&config.scanners),
        }
    }

    /// Nanoseconds since the tables were built.
    fn nanos_at(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }

    /// The verdict on one message (see the module's contract).
    pub fn check(
        &self,
        data: &[u8],
        source: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Verdict {
        let ip = source.ip();
        let refused = self
            .access
            .iter()
            .any(|l| l.applies(transport, local) && !l.permits(ip));
        if refused {
            return Verdict::Drop(DropReason::AccessDenied);
        }
        let Some(class) = peek::request_class(data) else {
            return Verdict::Pass;
        };
        let trusted = self.allow.contains(ip);
        let key = SourceKey::of(ip).filter(|_| !trusted);
        let now_ns = self.nanos_at(now);
        if let Some(key) = key
            && self.bans.is_banned(key, now_ns)
        {
            return Verdict::Drop(DropReason::Banned);
        }
        if let Some(pattern) = self.scanners.matches(data) {
            if let Some(key) = key.filter(|_| self.ban_scanners) {
                self.ban(key, BanReason::Scanner, now_ns, pattern);
            }
            return Verdict::Drop(DropReason::Scanner);
        }
        match (key, &self.limits[class as usize]) {
            (Some(key), Some(limit)) => self.limit(key, class, limit, now_ns),
            _ => Verdict::Pass,
        }
    }

    fn limit(&self, key: SourceKey, class: MethodClass, limit: &Gcra, now_ns: u64) -> Verdict {
        let over_for_ns = match self.rates.check(key, class as usize, limit, now_ns) {
            Admission::Admitted => return Verdict::Pass,
            Admission::Refused { over_for_ns } => over_for_ns,
        };
        if let Some(after) = self.ban_after_ns
            && over_for_ns >= after
        {
            self.ban(key, BanReason::Rate, now_ns, over_for_ns as usize);
            self.rates.end_streak(key);
        }
        match self.retry_after {
            Some(retry_after) => Verdict::Refuse { retry_after },
            None => Verdict::Drop(DropReason::RateLimited),
        }
    }

    /// Bans `key`, logging it when this call started the ban. `detail` is the scanner
    /// pattern's index or how long (ns) the source was over its limit.
    fn ban(&self, key: SourceKey, reason: BanReason, now_ns: u64, detail: usize) {
        let Some(ban) = self.bans.ban(key, reason, now_ns) else {
            return;
        };
        let secs = (ban.until_ns - ban.since_ns) as f64 / 1e9;
        match reason {
            BanReason::Rate => warn!(
                "banned {key} for {secs:.0} s (ban {}): over its rate limit for {:.1} s",
                ban.strikes,
                detail as f64 / 1e9
            ),
            BanReason::Scanner => warn!(
                "banned {key} for {secs:.0} s (ban {}): a scanner's request (pattern {detail})",
                ban.strikes
            ),
        }
    }

    /// [`check`](Self::check), then what the worker does with the verdict: `None` to hand
    /// the message to the core, else the outcome in its place (a drop, or the 503 written
    /// into `out`).
    pub fn screen(&self, proxy: &Proxy, input: Input<'_>, out: &mut [u8]) -> Option<Outcome> {
        let verdict = self.check(
            input.data,
            input.flow.source,
            input.flow.local,
            input.flow.transport,
            input.now,
        );
        match verdict {
            Verdict::Pass => None,
            Verdict::Drop(reason) => Some(Outcome::Drop(reason)),
            Verdict::Refuse { retry_after } => Some(proxy.refuse(input, retry_after, out)),
        }
    }

    /// Ends the ban of `ip` (its /64 for IPv6); true when it was banned.
    pub fn lift(&self, ip: IpAddr, now: Instant) -> bool {
        let lifted = SourceKey::of(ip).is_some_and(|k| self.bans.lift(k, self.nanos_at(now)));
        if lifted {
            warn!("ban of {ip} lifted");
        }
        lifted
    }

    /// Bans active at `now`.
    pub fn bans(&self, now: Instant) -> Vec<Ban> {
        self.bans.active(self.nanos_at(now))
    }

    /// The tables' fixed memory, in bytes: the configured bound, whatever the traffic.
    pub fn memory_bytes(&self) -> usize {
        self.rates.memory_bytes() + self.bans.capacity() * 64
    }
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protection")
            .field("allow", &self.allow.blocks())
            .field("access", &self.access)
            .field("limits", &self.limits)
            .field("ban_after_ns", &self.ban_after_ns)
            .field("source_slots", &self.rates.capacity())
            .field("ban_slots", &self.bans.capacity())
            .finish_non_exhaustive()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
