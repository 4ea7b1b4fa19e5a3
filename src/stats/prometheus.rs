//! Prometheus text exposition format (version 0.0.4) of a snapshot: what `/metrics` serves.
//!
//! - Counters, per worker (`worker="0"`, ...; sum them in PromQL for the whole proxy):
//!   `ferrovia_received_total`, `ferrovia_forwarded_total{direction}`,
//!   `ferrovia_replied_total{status}`, `ferrovia_dropped_total{reason}` (every reason, zeros
//!   included), `ferrovia_send_errors_total`,
//!   `ferrovia_kernel_drops_total`.
//! - Histograms in seconds with buckets from 1 µs to 100 ms, per worker, since start:
//!   `ferrovia_forward_latency_seconds{direction}` and `ferrovia_reply_latency_seconds`. The
//!   `_sum` is exact; bucket edges have HdrHistogram's 3-digit resolution.
//! - A summary of all workers: `ferrovia_forward_latency_recent_seconds{direction,quantile}`
//!   with quantiles 0.5 0.9 0.99 0.999 over the last interval (like a client library's
//!   sliding window), and `_sum` / `_count` since start.
//!
//! - Destination groups: `ferrovia_group_live_destinations{group}`, and per destination
//!   (`{group,destination}`, the destination's URI) `ferrovia_group_destination_up`,
//!   `_messages_total`, `_probes_total`, `_probes_failed_total`, `_probe_rtt_seconds`,
//!   `_state_changes_total`.
//!
//! Every label value is a number, a fixed snake_case name, a group name (letters, digits, `-`,
//! `_`) or a destination URI (checked at start to hold no `"`, `\\`, `{`, `}`), so none needs
//! escaping.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};

use super::report::{Latency, Section};
use super::{Report, Series, Snapshot};

/// The `Content-Type` of the text this module writes.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders a snapshot.
pub(super) fn render(snapshot: &Snapshot) -> String {
    let report = snapshot.report();
    let mut out = Exposition::default();
    out.counters(&report);
    out.histograms(&report);
    out.summary(&report);
    if let Some(contact) = &report.contact {
        out.contact(contact);
    }
    if let Some(policy) = &report.policy {
        super::policy::prometheus(&mut out.text, policy);
    }
    if let Some(protect) = &report.protect {
        super::protect_render::prometheus(&mut out.text, protect);
    }
    if let Some(registrar) = &report.registrar {
        out.registrar(registrar);
    }
    if let Some(groups) = &report.groups {
        out.groups(groups);
    }
    if let Some(dns) = &report.dns {
        out.dns(dns);
    }
    if let Some(media) = &report.media {
        super::media_render::prometheus(&mut out.text, media);
    }
    out.text
}

#[derive(Default)]
struct Exposition {
    text: String,
}

/// The samples of one counter family for one worker: an optional extra label and a value.
type Samples = Vec<(Option<(&'static str, String)>, u64)>;

impl Exposition {
    /// The registrar: REGISTER, authentication and lookup outcomes by result, and the
    /// table's size.
    fn registrar(&mut self, r: &crate::registrar::RegistrarStats) {
        let families = [
            (
                "registrations",
                "REGISTER requests answered by the registrar, by result.",
                &r.register,
            ),
            ("auth", "Digest authentications, by result.", &r.auth),
            (
                "lookups",
                "Requests for our AoRs through the location service, by result.",
                &r.lookup,
            ),
            (
                "store",
                "Shared location store (Redis) operations, by result.",
                &r.store,
            ),
            (
                "keepalive",
                "NAT keepalives to UDP bindings, by result.",
                &r.keepalive,
            ),
        ];
        for (name, help, values) in families {
            let metric = format!("ferrovia_registrar_{name}_total");
            let _ = writeln!(self.text, "# HELP {metric} {help}\n# TYPE {metric} counter");
            for (result, value) in values {
                let _ = writeln!(self.text, "{metric}{{result=\"{result}\"}} {value}");
            }
        }
        for (name, help, value) in [
            ("aors", "Addresses-of-record with bindings.", r.aors),
            (
                "bindings",
                "Registered bindings (expired ones until swept).",
                r.bindings,
            ),
        ] {
            let metric = format!("ferrovia_registrar_{name}");
            let _ = writeln!(
                self.text,
                "# HELP {metric} {help}\n# TYPE {metric} gauge\n{metric} {value}"
            );
        }
    }

    /// The DNS cache: a counter per event, the entries as a gauge.
    fn dns(&mut self, d: &crate::dns::DnsSnapshot) {
        let counters: [(&str, &str, u64); 8] = [
            (
                "hits",
                "Lookups of a name answered from the DNS cache.",
                d.hits,
            ),
            (
                "misses",
                "Lookups that found nothing fresh (the request parked for the resolver).",
                d.misses,
            ),
            (
                "failures",
                "Names the resolver could not resolve (server failure, timeout).",
                d.failures,
            ),
            (
                "malformed",
                "DNS replies that did not decode or matched no question.",
                d.malformed,
            ),
            (
                "queries",
                "DNS questions sent (retries and TCP included).",
                d.queries,
            ),
            (
                "timeouts",
                "DNS questions unanswered within the timeout.",
                d.timeouts,
            ),
            (
                "stale_served",
                "Expired answers served again while the servers failed.",
                d.stale_served,
            ),
            (
                "refused_full",
                "Answers not cached because the cache was full.",
                d.refused_full,
            ),
        ];
        for (name, help, value) in counters {
            let metric = format!("ferrovia_dns_{name}_total");
            let _ = writeln!(
                self.text,
                "# HELP {metric} {help}\n# TYPE {metric} counter\n{metric} {value}"
            );
        }
        let _ = writeln!(
            self.text,
            "# HELP ferrovia_dns_cache_entries Entries in the DNS cache.\n\
             # TYPE ferrovia_dns_cache_entries gauge\nferrovia_dns_cache_entries {}",
            d.entries
        );
    }

    /// Destination groups: per destination state and counters, per group the live count.
    fn groups(&mut self, groups: &crate::groups::GroupsSnapshot) {
        let _ = writeln!(
            self.text,
            "# HELP ferrovia_group_live_destinations Destinations of the group that are up.\n\
             # TYPE ferrovia_group_live_destinations gauge"
        );
        for g in &groups.groups {
            let _ = writeln!(
                self.text,
                "ferrovia_group_live_destinations{{group=\"{}\"}} {}",
                g.name, g.live
            );
        }
        type Field = fn(&crate::groups::DestinationSnapshot) -> f64;
        let families: [(&str, &str, &str, Field); 6] = [
            (
                "destination_up",
                "gauge",
                "1 when the destination is up, 0 when down.",
                |d| f64::from(u8::from(d.state == "up")),
            ),
            (
                "destination_messages_total",
                "counter",
                "Requests sent to the destination.",
                |d| d.messages_sent as f64,
            ),
            (
                "destination_probes_total",
                "counter",
                "Health probes sent to the destination.",
                |d| d.probes_sent as f64,
            ),
            (
                "destination_probes_failed_total",
                "counter",
                "Health probes unanswered, or answered with a code not counted as alive.",
                |d| d.probes_failed as f64,
            ),
            (
                "destination_probe_rtt_seconds",
                "gauge",
                "Round-trip time of the last answered probe (0 before the first).",
                |d| d.last_probe_rtt_us as f64 / 1e6,
            ),
            (
                "destination_state_changes_total",
                "counter",
                "Times the destination went down or came up.",
                |d| (d.went_down + d.went_up) as f64,
            ),
        ];
        for (name, kind, help, field) in families {
            let metric = format!("ferrovia_group_{name}");
            let _ = writeln!(self.text, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
            for g in &groups.groups {
                for d in &g.destinations {
                    let _ = writeln!(
                        self.text,
                        "{metric}{{group=\"{}\",destination=\"{}\"}} {}",
                        g.name,
                        d.uri,
                        field(d)
                    );
                }
            }
        }
    }

    /// The contact-rewrite table: a counter family per event and the table's size.
    fn contact(&mut self, c: &crate::contact::ContactCounters) {
        let families: [(&str, &str, u64); 10] = [
            (
                "rewrites",
                "Contacts rewritten to a token (new entries and refreshes).",
                c.rewrites,
            ),
            (
                "new_entries",
                "Contact-table entries created.",
                c.new_entries,
            ),
            (
                "restores",
                "Requests sent to a rewritten contact's original URI and flow.",
                c.restores,
            ),
            ("misses", "Genuine tokens whose entry was gone.", c.misses),
            (
                "expired",
                "Genuine tokens whose entry had expired.",
                c.expired,
            ),
            (
                "forged",
                "Token-shaped user parts whose MAC did not verify.",
                c.forged,
            ),
            (
                "foreign",
                "Genuine tokens issued by another instance.",
                c.foreign,
            ),
            (
                "refused_full",
                "Contact rewrites refused: the table was full.",
                c.refused_full,
            ),
            (
                "refused_too_long",
                "Contact rewrites refused: the URI was too long.",
                c.refused_too_long,
            ),
            ("swept", "Expired contact-table entries removed.", c.swept),
        ];
        for (name, help, value) in families {
            let metric = format!("ferrovia_contact_{name}_total");
            let _ = writeln!(
                self.text,
                "# HELP {metric} {help}\n# TYPE {metric} counter\n{metric} {value}"
            );
        }
        let metric = "ferrovia_contact_table_entries";
        let _ = writeln!(
            self.text,
            "# HELP {metric} Entries in the contact-rewrite table.\n# TYPE {metric} gauge\n{metric} {}",
            c.size
        );
    }

    fn counters(&mut self, report: &Report) {
        let help = "Messages received (datagrams, or framed messages on streams).";
        self.counter(report, "received", help, |s| vec![(None, s.received)]);
        self.counter(
            report,
            "forwarded",
            "Messages forwarded, by direction.",
            |s| {
                let direction = |d: &str| Some(("direction", d.to_string()));
                vec![
                    (direction("request"), s.forwarded.request),
                    (direction("response"), s.forwarded.response),
                ]
            },
        );
        let help = "Local replies sent, by status code (0: STUN keep-alive answers).";
        self.counter(report, "replied", help, |s| by("status", &s.replied));
        let help = "Messages dropped without a reply, by reason.";
        self.counter(report, "dropped", help, |s| by("reason", &s.dropped));
        let help = "Sends that failed.";
        self.counter(report, "send_errors", help, |s| vec![(None, s.send_errors)]);
        let help = "Datagrams the kernel dropped on a full receive queue.";
        self.counter(report, "kernel_drops", help, |s| {
            vec![(None, s.kernel_drops)]
        });
        let help = "Stream (TCP) connection events: accepted, closed and why, hand-offs, pings.";
        self.counter(report, "stream_events", help, |s| by("event", &s.stream));
        self.open_connections(report);
    }

    /// `ferrovia_stream_connections{worker}`: open stream connections, a gauge.
    fn open_connections(&mut self, report: &Report) {
        let name = "ferrovia_stream_connections";
        self.family(name, "gauge", "Open stream (TCP) connections.");
        for (worker, w) in report.workers.iter().enumerate() {
            let open = u64::try_from(w.cumulative.open_connections).unwrap_or(0);
            self.sample(name, "", &[("worker", worker.to_string())], open);
        }
    }

    /// One counter family, `ferrovia_{name}_total`, with a `worker` label on every sample.
    fn counter(
        &mut self,
        report: &Report,
        name: &str,
        help: &str,
        samples: impl Fn(&Section) -> Samples,
    ) {
        let name = format!("ferrovia_{name}_total");
        self.family(&name, "counter", help);
        for (worker, w) in report.workers.iter().enumerate() {
            for (label, value) in samples(&w.cumulative) {
                let labels: Vec<_> = [("worker", worker.to_string())]
                    .into_iter()
                    .chain(label)
                    .collect();
                self.sample(&name, "", &labels, value);
            }
        }
    }

    fn histograms(&mut self, report: &Report) {
        let name = "ferrovia_forward_latency_seconds";
        let help = "Arrival to the forwarding send returning, by direction.";
        self.family(name, "histogram", help);
        for (worker, w) in report.workers.iter().enumerate() {
            for series in [Series::Request, Series::Response] {
                let labels = [
                    ("worker", worker.to_string()),
                    ("direction", series.name().to_string()),
                ];
                self.histogram(name, &labels, w.cumulative.latency.series(series));
            }
        }
        let name = "ferrovia_reply_latency_seconds";
        self.family(
            name,
            "histogram",
            "Arrival to a local reply's send returning.",
        );
        for (worker, w) in report.workers.iter().enumerate() {
            let labels = [("worker", worker.to_string())];
            self.histogram(name, &labels, &w.cumulative.latency.reply);
        }
    }

    fn summary(&mut self, report: &Report) {
        let name = "ferrovia_forward_latency_recent_seconds";
        let help = "All workers: quantiles over the last interval, sum and count since start.";
        self.family(name, "summary", help);
        for series in [Series::Request, Series::Response] {
            let direction = ("direction", series.name().to_string());
            let recent = report.merged.last_interval.latency.series(series);
            let quantiles = [
                ("0.5", recent.p50_ns),
                ("0.9", recent.p90_ns),
                ("0.99", recent.p99_ns),
                ("0.999", recent.p999_ns),
            ];
            for (q, ns) in quantiles {
                let labels = [direction.clone(), ("quantile", q.to_string())];
                self.sample(name, "", &labels, seconds(ns));
            }
            let total = report.merged.cumulative.latency.series(series);
            let labels = [direction];
            self.sample(name, "_sum", &labels, seconds(total.sum_ns));
            self.sample(name, "_count", &labels, total.count);
        }
    }

    /// The `_bucket` series (cumulative, ending with `+Inf`), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&'static str, String)], l: &Latency) {
        let mut below = 0;
        for b in &l.buckets {
            below += b.count;
            let le = b
                .le_ns
                .map_or_else(|| "+Inf".to_string(), |ns| seconds(ns).to_string());
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            self.sample(name, "_bucket", &with_le, below);
        }
        self.sample(name, "_sum", labels, seconds(l.sum_ns));
        self.sample(name, "_count", labels, l.count);
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&'static str, String)],
        value: impl Display,
    ) {
        let _ = write!(self.text, "{name}{suffix}");
        for (i, (key, val)) in labels.iter().enumerate() {
            let sep = if i == 0 { '{' } else { ',' };
            let _ = write!(self.text, "{sep}{key}=\"{val}\"");
        }
        let close = if labels.is_empty() { "" } else { "}" };
        let _ = writeln!(self.text, "{close} {value}");
    }
}

/// One sample per entry of a by-name map, labelled `key="name"`.
fn by(key: &'static str, counts: &BTreeMap<String, u64>) -> Samples {
    let entry = |(name, n): (&String, &u64)| (Some((key, name.clone())), *n);
    counts.iter().map(entry).collect()
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_with_and_without_labels() {
        let mut e = Exposition::default();
        e.family("x_total", "counter", "An x.");
        e.sample("x_total", "", &[], 3);
        e.sample(
            "x_total",
            "",
            &[("worker", "0".into()), ("reason", "a".into())],
            4,
        );
        let want = "# HELP x_total An x.\n# TYPE x_total counter\n\
                    x_total 3\nx_total{worker=\"0\",reason=\"a\"} 4\n";
        assert_eq!(e.text, want);
    }

    #[test]
    fn bucket_bounds_are_plain_decimal_seconds() {
        assert_eq!(seconds(1_000).to_string(), "0.000001");
        assert_eq!(seconds(2_500).to_string(), "0.0000025");
        assert_eq!(seconds(100_000_000).to_string(), "0.1");
    }

    #[test]
    fn an_empty_snapshot_has_every_family_once() {
        let text = render(&Snapshot::empty());
        for family in ["received_total", "dropped_total", "forward_latency_seconds"] {
            let typ = format!("# TYPE ferrovia_{family} ");
            assert_eq!(text.matches(&typ).count(), 1, "{text}");
        }
    }
}
