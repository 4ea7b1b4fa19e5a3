//! The media relay's counters: NG requests by command and outcome, their round-trip times
//! in fixed buckets, sessions anchored, and the fallbacks the core applied. Relaxed atomic
//! adds (the client's thread and, on the anchored path only, the workers); the stats thread
//! reads them into `/metrics`, `/stats` and `ferrovia stats`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::ng::Command;

/// Upper bounds of the round-trip buckets, in microseconds (a last bucket takes the rest).
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// How an NG request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `ok` (or `pong`).
    Ok,
    /// rtpengine answered with an error.
    Error,
    /// No reply within the timeout, retries included.
    Timeout,
    /// Not sent: no instance was up.
    Unavailable,
    /// A reply that could not be read (bad bencode, no result).
    Malformed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Unavailable,
        Outcome::Malformed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Unavailable => "unavailable",
            Outcome::Malformed => "malformed",
        }
    }
}

/// What the core did when rtpengine failed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// An initial offer failed: 503 to the caller.
    Rejected,
    /// An initial offer failed: forwarded unanchored.
    Unanchored,
    /// Any other message (an answer, a delete, an in-dialog offer): forwarded as it came.
    Forwarded,
}

impl Fallback {
    pub const ALL: [Fallback; 3] = [
        Fallback::Rejected,
        Fallback::Unanchored,
        Fallback::Forwarded,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fallback::Rejected => "503",
            Fallback::Unanchored => "unanchored",
            Fallback::Forwarded => "forwarded",
        }
    }
}

const COMMANDS: usize = Command::ALL.len();
const OUTCOMES: usize = Outcome::ALL.len();
const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// See the module docs.
#[derive(Debug)]
pub struct MediaCounters {
    requests: [[AtomicU64; OUTCOMES]; COMMANDS],
    latency: [AtomicU64; BUCKETS],
    latency_sum_us: AtomicU64,
    anchored: AtomicU64,
    fallbacks: [AtomicU64; Fallback::ALL.len()],
    instances_up: Vec<AtomicBool>,
}

/// The counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaSnapshot {
    /// `(command, outcome, count)` for every pair.
    pub requests: Vec<(String, String, u64)>,
    /// Counts per bucket of [`LATENCY_BOUNDS_US`] (not cumulative), then the overflow.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_us: u64,
    pub sessions_anchored: u64,
    /// `(fallback, count)`.
    pub fallbacks: Vec<(String, u64)>,
    pub instances_up: Vec<bool>,
}

impl MediaSnapshot {
    /// Every NG request that did not end `ok`.
    pub fn failures(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(_, outcome, _)| outcome != "ok")
            .map(|r| r.2)
            .sum()
    }
}

impl MediaCounters {
    pub fn new(instances: usize) -> MediaCounters {
        MediaCounters {
            requests: Default::default(),
            latency: Default::default(),
            latency_sum_us: AtomicU64::new(0),
            anchored: AtomicU64::new(0),
            fallbacks: Default::default(),
            // Unknown until the first ping: taken as up, so a first call is tried.
            instances_up: (0..instances).map(|_| AtomicBool::new(true)).collect(),
        }
    }

    pub fn request(&self, command: Command, outcome: Outcome) {
        let c = Command::ALL.iter().position(|&x| x == command).unwrap_or(0);
        let o = Outcome::ALL.iter().position(|&x| x == outcome).unwrap_or(0);
        self.requests[c][o].fetch_add(1, Relaxed);
    }

    pub fn round_trip(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.latency[bucket].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
    }

    pub fn anchored(&self) {
        self.anchored.fetch_add(1, Relaxed);
    }

    pub fn fallback(&self, fallback: Fallback) {
        let i = Fallback::ALL
            .iter()
            .position(|&f| f == fallback)
            .unwrap_or(0);
        self.fallbacks[i].fetch_add(1, Relaxed);
    }

    pub fn set_up(&self, instance: usize, up: bool) {
        if let Some(flag) = self.instances_up.get(instance) {
            flag.store(up, Relaxed);
        }
    }

    pub fn is_up(&self, instance: usize) -> bool {
        self.instances_up
            .get(instance)
            .is_some_and(|f| f.load(Relaxed))
    }

    pub fn snapshot(&self) -> MediaSnapshot {
        let mut requests = Vec::with_capacity(COMMANDS * OUTCOMES);
        for (c, command) in Command::ALL.iter().enumerate() {
            for (o, outcome) in Outcome::ALL.iter().enumerate() {
                requests.push((
                    command.name().to_string(),
                    outcome.name().to_string(),
                    self.requests[c][o].load(Relaxed),
                ));
            }
        }
        MediaSnapshot {
            requests,
            latency_buckets: self.latency.iter().map(|b| b.load(Relaxed)).collect(),
            latency_sum_us: self.latency_sum_us.load(Relaxed),
            sessions_anchored: self.anchored.load(Relaxed),
            fallbacks: Fallback::ALL
                .iter()
                .zip(&self.fallbacks)
                .map(|(f, n)| (f.name().to_string(), n.load(Relaxed)))
                .collect(),
            instances_up: self.instances_up.iter().map(|f| f.load(Relaxed)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_cells_and_buckets() {
        let c = MediaCounters::new(2);
        c.request(Command::Offer, Outcome::Ok);
        c.request(Command::Offer, Outcome::Ok);
        c.request(Command::Delete, Outcome::Timeout);
        c.round_trip(Duration::from_micros(90));
        c.round_trip(Duration::from_micros(101));
        c.round_trip(Duration::from_secs(5));
        c.fallback(Fallback::Rejected);
        c.set_up(1, false);
        let s = c.snapshot();
        let has = |c: &str, o: &str, n| s.requests.contains(&(c.into(), o.into(), n));
        assert!(has("offer", "ok", 2));
        assert!(has("delete", "timeout", 1));
        assert_eq!(s.failures(), 1);
        assert_eq!(s.latency_buckets[0], 1);
        assert_eq!(s.latency_buckets[1], 1);
        assert_eq!(*s.latency_buckets.last().unwrap(), 1);
        assert_eq!(s.latency_sum_us, 5_000_191);
        assert_eq!(s.fallbacks[0], ("503".to_string(), 1));
        assert_eq!(s.instances_up, [true, false]);
    }
}
