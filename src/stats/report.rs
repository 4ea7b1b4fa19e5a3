//! The serializable form of a snapshot: what `/stats` serves as JSON, what `ferrovia stats`
//! reads back, and what the summary text and the Prometheus text are rendered from.
//!
//! Latencies are integer nanoseconds (exact, no float rounding); periods are seconds.
//! Percentiles carry HdrHistogram's resolution: 3 significant digits.

use crate::contact::ContactCounters;
use crate::groups::GroupsSnapshot;
use crate::protect::ProtectReport;
use crate::record::StreamEvent;
use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::proxy::{Direction, DropReason};

use super::{Series, Snapshot, View, Views};

/// Upper bounds (`le`) of the latency buckets, 1 µs to 100 ms, in nanoseconds. A last,
/// unbounded bucket follows them.
pub const LATENCY_BUCKETS_NS: [u64; 16] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
];

/// Everything the stats know at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Seconds since the stats started.
    pub uptime_seconds: f64,
    /// The hand-off interval, in seconds.
    pub interval_seconds: f64,
    /// All workers together.
    pub merged: WorkerReport,
    /// Each worker, indexed by worker number.
    pub workers: Vec<WorkerReport>,
    /// The contact-rewrite table's counters, when rewriting is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactCounters>,
    /// The routing policy's counters, when the service runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::PolicyCounters>,
    /// Edge protection: bans, top talkers, scanner hits, the rate table's fill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<ProtectReport>,
    /// The registrar's counters and table size, when the registrar is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<crate::registrar::RegistrarStats>,
    /// The destination groups, when any are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupsSnapshot>,
    /// The DNS cache: hits, misses, failures, entries (when the resolver is wired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<crate::dns::DnsSnapshot>,
    /// The media relay (rtpengine NG) counters, when anchoring is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::media::MediaSnapshot>,
}

/// One worker (or all of them): since start and over the last interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub cumulative: Section,
    pub last_interval: Section,
}

/// Counters and latencies over one period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// The period covered, in seconds.
    pub seconds: f64,
    pub received: u64,
    pub forwarded: Forwarded,
    /// Local replies by status code (only statuses seen; "0" for statuses outside 100..=699).
    pub replied: BTreeMap<String, u64>,
    /// Drops by reason (every reason, zero or not).
    pub dropped: BTreeMap<String, u64>,
    pub send_errors: u64,
    pub kernel_drops: u64,
    /// Stream connection events by kind (only kinds seen).
    #[serde(default)]
    pub stream: BTreeMap<String, u64>,
    /// Open stream connections (since-start views; last-interval views hold the change).
    #[serde(default)]
    pub open_connections: i64,
    pub latency: LatencySet,
}

/// Forwarded messages by direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forwarded {
    pub request: u64,
    pub response: u64,
}

/// One latency summary per [`Series`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySet {
    pub request: Latency,
    pub response: Latency,
    pub reply: Latency,
}

impl LatencySet {
    /// The summary of one series.
    pub fn series(&self, series: Series) -> &Latency {
        match series {
            Series::Request => &self.request,
            Series::Response => &self.response,
            Series::Reply => &self.reply,
        }
    }
}

/// A latency distribution, summarized. All values in nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How many latencies were recorded.
    pub count: u64,
    /// Their exact sum.
    pub sum_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    /// Counts per bucket of [`LATENCY_BUCKETS_NS`], then the unbounded bucket; each count is
    /// of that bucket alone (not cumulative).
    pub buckets: Vec<Bucket>,
}

/// The latencies that fell in `(previous le, le]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The bucket's upper bound in nanoseconds; `None` for the last, unbounded one.
    pub le_ns: Option<u64>,
    pub count: u64,
}

impl Report {
    pub(super) fn from_snapshot(snapshot: &Snapshot) -> Report {
        Report {
            uptime_seconds: snapshot.uptime().as_secs_f64(),
            interval_seconds: snapshot.interval().as_secs_f64(),
            merged: WorkerReport::from_views(snapshot.merged()),
            workers: snapshot
                .workers()
                .iter()
                .map(WorkerReport::from_views)
                .collect(),
            contact: snapshot.contact(),
            policy: snapshot.policy(),
            protect: snapshot.protect().cloned(),
            registrar: snapshot.registrar(),
            groups: snapshot.groups().cloned(),
            dns: snapshot.dns().cloned(),
            media: snapshot.media().cloned(),
        }
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // The report holds only strings, integers, floats and string-keyed maps; serde_json
        // writes all of them without error (a non-finite float would become null).
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

impl WorkerReport {
    fn from_views(views: &Views) -> WorkerReport {
        WorkerReport {
            cumulative: Section::from_view(&views.cumulative),
            last_interval: Section::from_view(&views.last_interval),
        }
    }
}

impl Section {
    fn from_view(view: &View) -> Section {
        let c = view.counters();
        let latency = |series| Latency::new(view.latency(series), c.latency_sum_ns(series));
        Section {
            seconds: view.period().as_secs_f64(),
            received: c.received(),
            forwarded: Forwarded {
                request: c.forwarded(Direction::Request),
                response: c.forwarded(Direction::Response),
            },
            replied: c.replies().map(|(s, n)| (s.to_string(), n)).collect(),
            dropped: DropReason::ALL
                .iter()
                .map(|&r| (r.name().to_string(), c.dropped(r)))
                .collect(),
            send_errors: c.send_errors(),
            kernel_drops: c.kernel_drops(),
            stream: StreamEvent::ALL
                .iter()
                .filter(|&&e| c.stream(e) > 0)
                .map(|&e| (e.name().to_string(), c.stream(e)))
                .collect(),
            open_connections: c.open_connections(),
            latency: LatencySet {
                request: latency(Series::Request),
                response: latency(Series::Response),
                reply: latency(Series::Reply),
            },
        }
    }
}

impl Latency {
    /// Summarizes a histogram; `sum_ns` is the exact sum kept beside it.
    pub fn new(h: &Histogram<u64>, sum_ns: u64) -> Latency {
        Latency {
            count: h.len(),
            sum_ns,
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            buckets: bucket_counts(h),
        }
    }
}

/// Splits a histogram over [`LATENCY_BUCKETS_NS`]. A recorded value counts in the first bucket
/// whose bound is at least the lowest value HdrHistogram treats as equal to it, so a latency of
/// exactly a bound lands in that bound's bucket.
fn bucket_counts(h: &Histogram<u64>) -> Vec<Bucket> {
    let mut counts = [0u64; LATENCY_BUCKETS_NS.len() + 1];
    for v in h.iter_recorded() {
        let value = h.lowest_equivalent(v.value_iterated_to());
        let i = LATENCY_BUCKETS_NS.partition_point(|&le| le < value);
        counts[i] += v.count_since_last_iteration();
    }
    let bounds = LATENCY_BUCKETS_NS.iter().map(|&le| Some(le)).chain([None]);
    bounds
        .zip(counts)
        .map(|(le_ns, count)| Bucket { le_ns, count })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::latency_histogram;

    #[test]
    fn bucket_bounds_are_inclusive_and_the_last_bucket_is_open() {
        let mut h = latency_histogram();
        for v in [
            0,
            1_000,
            1_001,
            2_500,
            99_999_999,
            100_000_000,
            2_000_000_000,
        ] {
            h.saturating_record(v);
        }
        let b = bucket_counts(&h);
        assert_eq!(b.len(), LATENCY_BUCKETS_NS.len() + 1);
        assert_eq!(
            b[0],
            Bucket {
                le_ns: Some(1_000),
                count: 2
            }
        );
        assert_eq!(
            b[1],
            Bucket {
                le_ns: Some(2_500),
                count: 2
            }
        );
        assert_eq!(b[15].count, 2);
        assert_eq!(
            b[16],
            Bucket {
                le_ns: None,
                count: 1
            }
        );
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), h.len());
    }

    #[test]
    fn json_round_trips() {
        let snapshot = Snapshot::empty();
        let report = snapshot.report();
        let back: Report = serde_json::from_str(&report.to_json()).unwrap(); // our own output
        assert_eq!(back, report);
        assert_eq!(back.merged.cumulative.dropped.len(), DropReason::COUNT);
    }
}
