//! Latency histograms and counters: recorded by each worker, aggregated by one stats thread,
//! exported over HTTP and printed at shutdown.
//!
//! The contract:
//! - [`start`] spawns the stats thread (and the metrics HTTP thread when a metrics address is
//!   configured) and returns one [`WorkerStats`] per worker plus a [`StatsHandle`].
//! - A [`WorkerStats`] belongs to its worker thread. Recording (`received`, `forwarded`,
//!   `replied`, `dropped`, ...) takes no lock, makes no system call and never allocates: it adds
//!   to plain counters and to `hdrhistogram` histograms in nanoseconds (1 ns to 60 s, 3
//!   significant digits), one histogram per [`Series`].
//! - Once per interval [`WorkerStats::maybe_flush`] hands the interval's histograms and counter
//!   deltas to the stats thread over a bounded `crossbeam-channel`, and takes back a cleared set
//!   that the stats thread recycled. The hand-off never blocks: when no cleared set is back yet,
//!   the worker keeps accumulating and hands off at the next call, so nothing is lost or counted
//!   twice. After warm-up the hand-off allocates nothing either.
//! - The stats thread keeps a cumulative and a last-interval [`View`] per worker and merged;
//!   [`StatsHandle::snapshot`] returns them as a [`Snapshot`] after absorbing every hand-off
//!   sent before the call. A snapshot renders as a shutdown summary, Prometheus text, JSON and
//!   HdrHistogram percentile-distribution text.
//! - The metrics HTTP server (`/metrics`, `/stats`, `/stats.hgrm`) runs on its own thread and
//!   only talks to the stats thread; it can never slow a worker.
//!
//! The stats thread does a few tens of microseconds of work per hand-off (adding and clearing
//! histograms); the runtime should let it float rather than pin it to a worker's core.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ferrovia::proxy::Direction;
//! use ferrovia::stats::{self, StatsConfig};
//!
//! let config = StatsConfig { workers: 1, interval: Duration::from_secs(1), ..StatsConfig::default() };
//! let (handle, mut workers) = stats::start(config)?;
//! let mut w = workers.pop().unwrap(); // one worker was asked for
//! // In the worker's loop: count, record, and offer a hand-off once per turn.
//! w.received(1);
//! w.forwarded(Direction::Request, 12_500);
//! w.maybe_flush(Instant::now());
//! // At shutdown: each worker flushes (or drops its recorder), then the handle stops.
//! w.flush();
//! let last = handle.shutdown();
//! assert_eq!(last.merged().cumulative.counters().forwarded(Direction::Request), 1);
//! eprint!("{}", last.summary()); // and `last.hgrm()` for `--hgrm FILE`
//! # Ok::<(), std::io::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod client;
mod counters;
mod hgrm;
mod http;
mod media_render;
mod policy;
mod prometheus;
mod protect_render;
mod render;
mod report;
mod routes;
mod routes_bans;
mod snapshot;
mod thread;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use hdrhistogram::Histogram;

use crate::proxy::Direction;

pub use counters::Counters;
pub use hgrm::hgrm;
pub use policy::ReloadFn;
pub use report::{
    Bucket, Forwarded, LATENCY_BUCKETS_NS, Latency, LatencySet, Report, Section, WorkerReport,
};
pub use snapshot::{Snapshot, View, Views};
pub use worker::WorkerStats;

/// The lowest latency a histogram tells apart, in nanoseconds.
pub const LATENCY_LOW_NS: u64 = 1;
/// The highest latency a histogram tracks, in nanoseconds (60 s); longer ones count as 60 s.
pub const LATENCY_HIGH_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept by every histogram.
pub const LATENCY_SIGFIG: u8 = 3;

/// A latency series: what kind of message the time was measured for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Series {
    /// A request forwarded downstream: arrival to the forwarding `send` returning.
    Request,
    /// A response forwarded upstream: arrival to the forwarding `send` returning.
    Response,
    /// A request answered locally: arrival to the reply's `send` returning.
    Reply,
}

impl Series {
    /// Every series, in index order (`series as usize` indexes this list).
    pub const ALL: [Series; 3] = [Series::Request, Series::Response, Series::Reply];

    /// A stable lower-case name for metrics labels and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Series::Request => "request",
            Series::Response => "response",
            Series::Reply => "reply",
        }
    }

    /// The series of a forwarded message.
    pub fn forwarded(direction: Direction) -> Series {
        match direction {
            Direction::Request => Series::Request,
            Direction::Response => Series::Response,
        }
    }
}

/// How to run the statistics.
#[derive(Clone, Debug)]
pub struct StatsConfig {
    /// How many [`WorkerStats`] to make, one per worker thread.
    pub workers: usize,
    /// How often workers hand off (default 1 s); also the length of the "last interval" view.
    pub interval: Duration,
    /// Where to serve `/metrics`, `/stats` and `/stats.hgrm`; `None` serves nothing. Port 0
    /// binds any free port ([`StatsHandle::metrics_addr`] tells which).
    pub metrics: Option<SocketAddr>,
    /// The contact-rewrite table whose counters every snapshot carries, when rewriting is on.
    pub contact: Option<std::sync::Arc<crate::contact::ContactTable>>,
    /// Edge protection, whose bans, top talkers and scanner counts every snapshot carries and
    /// whose bans `/bans` lists and lifts.
    pub protect: Option<std::sync::Arc<crate::protect::Protection>>,
    /// The registrar whose counters and bindings every snapshot carries, when enabled.
    pub registrar: Option<std::sync::Arc<crate::registrar::Registrar>>,
    /// The destination groups whose state and counters every snapshot carries (`/groups`).
    pub groups: Option<std::sync::Arc<crate::groups::Groups>>,
    /// The DNS cache whose counters every snapshot carries, when the resolver is wired.
    pub dns: Option<std::sync::Arc<crate::dns::DnsCache>>,
    /// The media relay's counters (`[media]`), when anchoring is on.
    pub media: Option<std::sync::Arc<crate::media::Media>>,
}

impl Default for StatsConfig {
    fn default() -> StatsConfig {
        StatsConfig {
            workers: 1,
            interval: Duration::from_secs(1),
            metrics: None,
            contact: None,
            protect: None,
            registrar: None,
            groups: None,
            dns: None,
            media: None,
        }
    }
}

/// A new, empty latency histogram with the bounds every series uses.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy new_with_bounds' rules (low >= 1, high >= 2 * low,
    // sigfig <= 5), so creation cannot fail.
    Histogram::new_with_bounds(LATENCY_LOW_NS, LATENCY_HIGH_NS, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Starts the stats thread (and the metrics HTTP thread when `config.metrics` is set).
///
/// Returns the handle and `config.workers` recorders; give recorder `i` to worker `i`.
/// Fails only if the metrics address cannot be bound or a thread cannot be spawned.
pub fn start(config: StatsConfig) -> io::Result<(StatsHandle, Vec<WorkerStats>)> {
    let tables = thread::Tables {
        contact: config.contact,
        protect: config.protect.clone(),
        registrar: config.registrar,
        groups: config.groups,
        dns: config.dns,
        media: config.media,
    };
    let (aggregator, recorders) = thread::spawn(config.workers, config.interval, tables)?;
    let metrics = match config.metrics {
        Some(addr) => Some(http::spawn(
            addr,
            aggregator.commands.clone(),
            config.protect,
        )?),
        None => None,
    };
    let handle = StatsHandle {
        commands: aggregator.commands,
        stats: Some(aggregator.thread),
        metrics,
    };
    Ok((handle, recorders))
}

/// Controls the stats thread and the metrics server; ask it for snapshots.
#[derive(Debug)]
pub struct StatsHandle {
    commands: Sender<thread::Command>,
    stats: Option<JoinHandle<()>>,
    metrics: Option<http::Server>,
}

impl StatsHandle {
    /// Carries the routing policy's counters in every snapshot and serves `POST /reload`
    /// on the metrics listener with `reload`.
    pub fn attach_policy(
        &self,
        handle: std::sync::Arc<crate::policy::PolicyHandle>,
        reload: ReloadFn,
    ) {
        let hooks = policy::PolicyHooks { handle, reload };
        let _ = self.commands.send(thread::Command::AttachPolicy(hooks));
    }

    /// The current cumulative and last-interval views, per worker and merged. Every hand-off
    /// sent before this call is included.
    pub fn snapshot(&self) -> Snapshot {
        thread::request_snapshot(&self.commands, None).unwrap_or_else(Snapshot::empty)
    }

    /// The address the metrics server is bound to, if it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(http::Server::addr)
    }

    /// Absorbs the remaining hand-offs, stops both threads and returns the final view.
    ///
    /// Call it after the workers have flushed (or dropped) their [`WorkerStats`]; hand-offs
    /// made after this call are lost.
    pub fn shutdown(mut self) -> Snapshot {
        self.stop()
    }

    fn stop(&mut self) -> Snapshot {
        if let Some(server) = self.metrics.take() {
            server.stop();
        }
        let last = thread::request_shutdown(&self.commands);
        if let Some(stats) = self.stats.take()
            && stats.join().is_err()
        {
            log::error!("the stats thread panicked");
        }
        last.unwrap_or_else(Snapshot::empty)
    }
}

impl Drop for StatsHandle {
    fn drop(&mut self) {
        if self.stats.is_some() || self.metrics.is_some() {
            self.stop();
        }
    }
}
