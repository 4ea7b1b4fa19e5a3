//! What the stats thread knows, as an immutable snapshot that renders itself.
//!
//! A [`Snapshot`] is a cheap handle (`Arc`) on the stats thread's views at one moment: per
//! worker and merged, each as a cumulative [`View`] (since start) and a last-interval one.

use crate::contact::ContactCounters;
use crate::groups::GroupsSnapshot;
use crate::protect::ProtectReport;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Counters, Report, Series, latency_histogram};

/// Counters and latency histograms over some period.
#[derive(Clone, Debug)]
pub struct View {
    pub(super) counters: Counters,
    pub(super) latency: [Histogram<u64>; Series::ALL.len()],
    pub(super) period: Duration,
}

impl View {
    pub(super) fn new() -> View {
        View {
            counters: Counters::ZERO,
            latency: Series::ALL.map(|_| latency_histogram()),
            period: Duration::ZERO,
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The latency histogram of one series, in nanoseconds.
    pub fn latency(&self, series: Series) -> &Histogram<u64> {
        &self.latency[series as usize]
    }

    /// Requests and responses together: the latency of everything forwarded.
    pub fn forwarded_latency(&self) -> Histogram<u64> {
        let mut all = self.latency(Series::Request).clone();
        add_histogram(&mut all, self.latency(Series::Response));
        all
    }

    /// The time this view covers.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Back to zero, keeping the histograms' memory.
    pub(super) fn clear(&mut self) {
        self.counters = Counters::ZERO;
        for h in &mut self.latency {
            h.reset();
        }
        self.period = Duration::ZERO;
    }

    /// Adds `other`'s counts and histograms; the period becomes the longer of the two (views
    /// of different workers cover the same time side by side).
    pub(super) fn merge(&mut self, other: &View) {
        self.counters.add(&other.counters);
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            add_histogram(mine, theirs);
        }
        self.period = self.period.max(other.period);
    }
}

/// Adds one latency histogram to another. Both come from [`latency_histogram`], so their
/// ranges match and `add` cannot fail; were it to, the counts would be missing, not wrong.
pub(super) fn add_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if let Err(e) = into.add(from) {
        log::error!("latency histograms of different ranges: {e:?}");
    }
}

/// A cumulative and a last-interval view of the same worker (or of all of them).
#[derive(Clone, Debug)]
pub struct Views {
    /// Since the stats started.
    pub cumulative: View,
    /// The last interval handed off (for the merged views: each worker's last interval).
    pub last_interval: View,
}

impl Views {
    pub(super) fn new() -> Views {
        Views {
            cumulative: View::new(),
            last_interval: View::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Inner {
    pub(super) workers: Vec<Views>,
    pub(super) merged: Views,
    pub(super) interval: Duration,
}

/// The stats at one moment, per worker and merged. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Snapshot {
    inner: Arc<Inner>,
    uptime: Duration,
    contact: Option<ContactCounters>,
    policy: Option<crate::policy::PolicyCounters>,
    protect: Option<Arc<ProtectReport>>,
    registrar: Option<Arc<crate::registrar::Registrar>>,
    groups: Option<GroupsSnapshot>,
    dns: Option<crate::dns::DnsSnapshot>,
    media: Option<crate::media::MediaSnapshot>,
}

impl Snapshot {
    pub(super) fn new(inner: Arc<Inner>, uptime: Duration) -> Snapshot {
        Snapshot {
            inner,
            uptime,
            contact: None,
            policy: None,
            protect: None,
            registrar: None,
            groups: None,
            dns: None,
            media: None,
        }
    }

    pub(super) fn with_policy(mut self, policy: Option<crate::policy::PolicyCounters>) -> Snapshot {
        self.policy = policy;
        self
    }

    /// The routing policy's counters, when the service runs one.
    pub fn policy(&self) -> Option<crate::policy::PolicyCounters> {
        self.policy.clone()
    }

    pub(super) fn with_protect(mut self, protect: Option<ProtectReport>) -> Snapshot {
        self.protect = protect.map(Arc::new);
        self
    }

    /// Edge protection's figures (bans, top talkers, scanner hits), when it is configured.
    pub fn protect(&self) -> Option<&ProtectReport> {
        self.protect.as_deref()
    }

    pub(super) fn with_registrar(
        mut self,
        registrar: Option<Arc<crate::registrar::Registrar>>,
    ) -> Snapshot {
        self.registrar = registrar;
        self
    }

    /// The registrar's counters and table size, when the registrar is on.
    pub fn registrar(&self) -> Option<crate::registrar::RegistrarStats> {
        self.registrar.as_ref().map(|r| r.stats())
    }

    /// Every live binding as JSON (`GET /location`), when the registrar is on.
    pub fn location_json(&self) -> Option<String> {
        let registrar = self.registrar.as_ref()?;
        let records =
            crate::registrar::snapshot::records(registrar.location(), std::time::Instant::now());
        // Records hold strings, numbers and addresses: serde_json always writes them.
        Some(serde_json::to_string_pretty(&records).expect("records serialize"))
    }

    pub(super) fn with_contact(mut self, contact: Option<ContactCounters>) -> Snapshot {
        self.contact = contact;
        self
    }

    pub(super) fn with_dns(mut self, dns: Option<crate::dns::DnsSnapshot>) -> Snapshot {
        self.dns = dns;
        self
    }

    /// The DNS cache's counters, when the resolver is wired.
    pub fn dns(&self) -> Option<&crate::dns::DnsSnapshot> {
        self.dns.as_ref()
    }

    pub(super) fn with_groups(mut self, groups: Option<GroupsSnapshot>) -> Snapshot {
        self.groups = groups;
        self
    }

    pub(super) fn with_media(mut self, media: Option<crate::media::MediaSnapshot>) -> Snapshot {
        self.media = media;
        self
    }

    /// The media relay's counters, when anchoring is on.
    pub fn media(&self) -> Option<&crate::media::MediaSnapshot> {
        self.media.as_ref()
    }

    /// The destination groups' state and counters, when groups are configured.
    pub fn groups(&self) -> Option<&GroupsSnapshot> {
        self.groups.as_ref()
    }

    /// The contact-rewrite table's counters, when rewriting is on.
    pub fn contact(&self) -> Option<ContactCounters> {
        self.contact
    }

    /// A snapshot of no workers (what is left when the stats thread is gone).
    pub fn empty() -> Snapshot {
        let inner = Inner {
            workers: Vec::new(),
            merged: Views::new(),
            interval: Duration::ZERO,
        };
        Snapshot::new(Arc::new(inner), Duration::ZERO)
    }

    /// All workers together.
    pub fn merged(&self) -> &Views {
        &self.inner.merged
    }

    /// Each worker, indexed by worker number.
    pub fn workers(&self) -> &[Views] {
        &self.inner.workers
    }

    /// How long the stats have been running.
    pub fn uptime(&self) -> Duration {
        self.uptime
    }

    /// The hand-off interval.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// The serializable form behind `/stats`, the summary and `ferrovia stats`.
    pub fn report(&self) -> Report {
        Report::from_snapshot(self)
    }

    /// The one-screen text printed at shutdown: counters, drops by reason, latency
    /// percentiles in microseconds, and a bar chart of the forwarding latency.
    pub fn summary(&self) -> String {
        self.report().to_string()
    }

    /// The merged cumulative forwarding latency (requests and responses) as HdrHistogram
    /// percentile-distribution text, values in microseconds.
    pub fn hgrm(&self) -> String {
        super::hgrm(&self.merged().cumulative.forwarded_latency())
    }

    /// Prometheus text exposition format (what `/metrics` serves).
    pub fn prometheus(&self) -> String {
        super::prometheus::render(self)
    }

    /// The JSON served at `/stats` (a [`Report`]).
    pub fn json(&self) -> String {
        self.report().to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_keeps_the_longer_period() {
        let mut a = View::new();
        a.latency[0].saturating_record(1_000);
        a.counters.count_received(2);
        a.period = Duration::from_millis(900);
        let mut b = a.clone();
        b.period = Duration::from_millis(1_100);
        a.merge(&b);
        assert_eq!(a.counters.received(), 4);
        assert_eq!(a.latency(Series::Request).len(), 2);
        assert_eq!(a.period(), Duration::from_millis(1_100));
    }

    #[test]
    fn forwarded_latency_joins_requests_and_responses_only() {
        let mut v = View::new();
        v.latency[Series::Request as usize].saturating_record(10);
        v.latency[Series::Response as usize].saturating_record(20);
        v.latency[Series::Reply as usize].saturating_record(30);
        let all = v.forwarded_latency();
        assert_eq!(all.len(), 2);
        assert_eq!(all.max(), 20);
    }
}
