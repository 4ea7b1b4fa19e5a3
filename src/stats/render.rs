//! The one-screen text of a [`Report`]: the shutdown summary and what `ferrovia stats` prints.
//!
//! Counters per worker and merged, drops by reason, latency percentiles in microseconds, and a
//! bar chart of the merged forwarding latency. Per-worker columns and rows are shown for up to
//! [`MAX_WORKER_COLUMNS`] workers; past that only the merged figures fit on a screen.

use std::fmt::{self, Display, Formatter};

use super::report::{Latency, Section, WorkerReport};
use super::{Report, Series};

/// The most workers shown side by side.
pub(super) const MAX_WORKER_COLUMNS: usize = 8;
const BAR_WIDTH: usize = 40;

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ferrovia stats: up {:.1} s, {} worker(s), interval {:.1} s",
            self.uptime_seconds,
            self.workers.len(),
            self.interval_seconds
        )?;
        self.fmt_rates(f)?;
        let shown = self.shown_workers();
        if shown.len() < self.workers.len() {
            writeln!(f, "(per-worker figures: see /stats)")?;
        }
        writeln!(f)?;
        self.fmt_counters(f, shown)?;
        self.fmt_stream(f)?;
        self.fmt_contact(f)?;
        if let Some(policy) = &self.policy {
            super::policy::summary(f, policy)?;
        }
        if let Some(protect) = &self.protect {
            super::protect_render::text(f, protect)?;
        }
        self.fmt_registrar(f)?;
        self.fmt_groups(f)?;
        self.fmt_dns(f)?;
        if let Some(media) = &self.media {
            super::media_render::text(f, media)?;
        }
        writeln!(f)?;
        self.fmt_latency(f, shown)?;
        writeln!(f)?;
        fmt_chart(f, &self.merged.cumulative)
    }
}

impl Report {
    fn shown_workers(&self) -> &[WorkerReport] {
        if self.workers.len() > MAX_WORKER_COLUMNS {
            &[]
        } else {
            &self.workers
        }
    }

    /// Messages per second over the merged last interval.
    fn fmt_rates(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let last = &self.merged.last_interval;
        if last.seconds <= 0.0 {
            return Ok(());
        }
        let rate = |n: u64| n as f64 / last.seconds;
        let forwarded = last.forwarded.request + last.forwarded.response;
        let dropped: u64 = last.dropped.values().sum();
        writeln!(
            f,
            "last {:.1} s: {:.0} received/s, {:.0} forwarded/s, {:.0} dropped/s",
            last.seconds,
            rate(last.received),
            rate(forwarded),
            rate(dropped)
        )
    }

    fn fmt_counters(&self, f: &mut Formatter<'_>, workers: &[WorkerReport]) -> fmt::Result {
        write!(f, "{:<28}{:>12}", "since start", "merged")?;
        for i in 0..workers.len() {
            write!(f, "{:>12}", format!("w{i}"))?;
        }
        writeln!(f)?;
        for (label, pick) in counter_rows(&self.merged.cumulative) {
            write!(f, "{label:<28}{:>12}", pick(&self.merged.cumulative))?;
            for w in workers {
                write!(f, "{:>12}", pick(&w.cumulative))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }

    /// Stream connections: open now and every kind of event seen (TCP only).
    fn fmt_stream(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let all = &self.merged.cumulative;
        if all.stream.is_empty() && all.open_connections == 0 {
            return Ok(());
        }
        writeln!(
            f,
            "{:<28}{:>12}",
            "stream connections open", all.open_connections
        )?;
        for (event, n) in &all.stream {
            writeln!(
                f,
                "{:<28}{n:>12}",
                format!("stream {}", event.replace('_', " "))
            )?;
        }
        Ok(())
    }

    fn fmt_registrar(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some(r) = &self.registrar else {
            return Ok(());
        };
        let sum = |list: &[(String, u64)], names: &[&str]| -> u64 {
            list.iter()
                .filter(|(n, _)| names.contains(&n.as_str()))
                .map(|(_, v)| v)
                .sum()
        };
        let rows = [
            ("registrar bindings", r.bindings),
            ("registrar AoRs", r.aors),
            ("registrations", sum(&r.register, &["ok", "removed"])),
            (
                "registrations refused",
                r.register.iter().map(|(_, v)| v).sum::<u64>()
                    - sum(&r.register, &["ok", "removed"]),
            ),
            ("auth ok", sum(&r.auth, &["ok"])),
            (
                "auth challenged",
                sum(
                    &r.auth,
                    &[
                        "missing",
                        "stale_nonce",
                        "bad_nonce",
                        "bad_algorithm",
                        "replayed_nonce",
                    ],
                ),
            ),
            ("auth failed", r.auth_failures()),
            ("location found", sum(&r.lookup, &["found"])),
            (
                "location not found",
                sum(&r.lookup, &["no_binding", "unknown"]),
            ),
            ("keepalives sent", sum(&r.keepalive, &["sent"])),
            ("keepalive flows dead", sum(&r.keepalive, &["dead"])),
        ];
        for (label, value) in rows {
            writeln!(f, "{label:<28}{value:>12}")?;
        }
        for (name, value) in r.auth.iter().filter(|(n, v)| n != "ok" && *v > 0) {
            writeln!(
                f,
                "{:<28}{value:>12}",
                format!("auth {}", name.replace('_', " "))
            )?;
        }
        Ok(())
    }

    fn fmt_contact(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some(c) = &self.contact else {
            return Ok(());
        };
        let rows = [
            ("contacts rewritten", c.rewrites),
            ("contacts restored", c.restores),
            ("contact misses (gone)", c.misses + c.expired),
            ("contact tokens forged", c.forged),
            (
                "contact inserts refused",
                c.refused_full + c.refused_too_long,
            ),
            ("contact table entries", c.size),
        ];
        for (label, value) in rows {
            writeln!(f, "{label:<28}{value:>12}")?;
        }
        Ok(())
    }

    /// The DNS cache in one line.
    fn fmt_dns(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some(d) = &self.dns else {
            return Ok(());
        };
        writeln!(
            f,
            "dns cache: {} entries, {} hits, {} misses, {} failures ({} queries, {} timeouts, {} malformed, {} stale served)",
            d.entries,
            d.hits,
            d.misses,
            d.failures,
            d.queries,
            d.timeouts,
            d.malformed,
            d.stale_served
        )
    }

    /// One line per group (live count) and per destination (state and counters).
    fn fmt_groups(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some(groups) = &self.groups else {
            return Ok(());
        };
        for g in &groups.groups {
            writeln!(
                f,
                "group {} ({} by {}): {} of {} live",
                g.name,
                g.algorithm,
                g.key,
                g.live,
                g.destinations.len()
            )?;
            for d in &g.destinations {
                writeln!(
                    f,
                    "  {:<26}{:>5} sent {:>10}  probes {:>7} failed {:>6}  rtt {:>7} us",
                    d.uri,
                    d.state,
                    d.messages_sent,
                    d.probes_sent,
                    d.probes_failed,
                    d.last_probe_rtt_us
                )?;
            }
        }
        Ok(())
    }

    fn fmt_latency(&self, f: &mut Formatter<'_>, workers: &[WorkerReport]) -> fmt::Result {
        writeln!(
            f,
            "{:<28}{:>12}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "latency (µs)", "count", "p50", "p90", "p99", "p99.9", "max"
        )?;
        let last = format!("merged, last {:.1} s", self.merged.last_interval.seconds);
        fmt_latency_rows(f, "merged", &self.merged.cumulative)?;
        fmt_latency_rows(f, &last, &self.merged.last_interval)?;
        for (i, w) in workers.iter().enumerate() {
            fmt_latency_rows(f, &format!("w{i}"), &w.cumulative)?;
        }
        Ok(())
    }
}

type Pick = Box<dyn Fn(&Section) -> u64>;

/// The counter rows: fixed ones, then each status and drop reason seen in `merged`.
fn counter_rows(merged: &Section) -> Vec<(String, Pick)> {
    let mut rows: Vec<(String, Pick)> = vec![
        ("received".into(), Box::new(|s: &Section| s.received)),
        (
            "forwarded request".into(),
            Box::new(|s| s.forwarded.request),
        ),
        (
            "forwarded response".into(),
            Box::new(|s| s.forwarded.response),
        ),
    ];
    for status in merged.replied.keys() {
        let key = status.clone();
        let pick = move |s: &Section| s.replied.get(&key).copied().unwrap_or(0);
        rows.push((format!("replied {status}"), Box::new(pick)));
    }
    for (reason, _) in merged.dropped.iter().filter(|(_, n)| **n != 0) {
        let key = reason.clone();
        let pick = move |s: &Section| s.dropped.get(&key).copied().unwrap_or(0);
        rows.push((format!("dropped {reason}"), Box::new(pick)));
    }
    let total = |s: &Section| s.dropped.values().sum();
    rows.push(("dropped (all reasons)".into(), Box::new(total)));
    rows.push(("send errors".into(), Box::new(|s| s.send_errors)));
    rows.push(("kernel drops".into(), Box::new(|s| s.kernel_drops)));
    rows
}

fn fmt_latency_rows(f: &mut Formatter<'_>, who: &str, section: &Section) -> fmt::Result {
    for series in Series::ALL {
        let l = section.latency.series(series);
        let label = format!("{who} {}", series.name());
        writeln!(
            f,
            "{label:<28}{:>12}{:>10}{:>10}{:>10}{:>10}{:>10}",
            l.count,
            micros(l.p50_ns),
            micros(l.p90_ns),
            micros(l.p99_ns),
            micros(l.p999_ns),
            micros(l.max_ns)
        )?;
    }
    Ok(())
}

fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1_000.0)
}

/// A horizontal bar per latency bucket, from the first to the last non-empty one.
fn fmt_chart(f: &mut Formatter<'_>, section: &Section) -> fmt::Result {
    writeln!(f, "forwarding latency, all workers, since start")?;
    let counts = forwarded_buckets(&section.latency.request, &section.latency.response);
    let first = counts.iter().position(|(_, n)| *n != 0);
    let last = counts.iter().rposition(|(_, n)| *n != 0);
    let (Some(first), Some(last)) = (first, last) else {
        return writeln!(f, "  (nothing forwarded yet)");
    };
    let peak = counts.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    for (le, n) in &counts[first..=last] {
        let label = le.map_or_else(|| "> 100 ms".to_string(), |le| format!("≤ {}", span(le)));
        writeln!(f, "  {label:>10} │{:<BAR_WIDTH$} {n}", bar(*n, peak))?;
    }
    Ok(())
}

/// Requests' and responses' bucket counts added together, with their bounds.
fn forwarded_buckets(request: &Latency, response: &Latency) -> Vec<(Option<u64>, u64)> {
    let mut counts: Vec<_> = request.buckets.iter().map(|b| (b.le_ns, b.count)).collect();
    for (slot, b) in counts.iter_mut().zip(&response.buckets) {
        slot.1 += b.count;
    }
    counts
}

/// A bar of `n / peak` of the full width, in eighths of a character.
fn bar(n: u64, peak: u64) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (n as u128 * (BAR_WIDTH as u128 * 8) / peak as u128) as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8]);
    } else if n != 0 && eighths == 0 {
        s.push('▏');
    }
    s
}

/// A bucket bound as a short human duration: `2.5 µs`, `250 µs`, `10 ms`.
fn span(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{} µs", trim(ns as f64 / 1e3))
    } else {
        format!("{} ms", trim(ns as f64 / 1e6))
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_peak_and_show_any_nonzero_count() {
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(10, 10).chars().count(), BAR_WIDTH);
        assert_eq!(bar(5, 10), "█".repeat(BAR_WIDTH / 2));
        assert_eq!(bar(1, 1_000_000), "▏");
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(1_000), "1 µs");
        assert_eq!(span(2_500), "2.5 µs");
        assert_eq!(span(250_000), "250 µs");
        assert_eq!(span(2_500_000), "2.5 ms");
        assert_eq!(span(100_000_000), "100 ms");
    }

    #[test]
    fn an_empty_report_renders() {
        let text = crate::stats::Snapshot::empty().summary();
        assert!(text.contains("nothing forwarded yet"), "{text}");
        assert!(text.contains("merged request"), "{text}");
    }
}
