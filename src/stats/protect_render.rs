//! Edge protection's figures in the Prometheus text and in the one-screen report.
//!
//! Prometheus families (drops by reason are `ferrovia_dropped_total{reason="rate|ban|scanner|
//! acl"}`, with every other reason):
//! `ferrovia_protect_bans_started_total`, `ferrovia_protect_bans_active`,
//! `ferrovia_protect_scanner_dropped_total{header,pattern}`,
//! `ferrovia_protect_top_talker_requests{source}` / `..._refused{source}` (at most 10 sources),
//! `ferrovia_protect_tracked_sources`, `ferrovia_protect_source_slots`,
//! `ferrovia_protect_evictions_total`, `ferrovia_protect_memory_bytes`.

use std::fmt::{self, Formatter, Write};

use crate::protect::ProtectReport;

/// Appends the protection families to Prometheus text.
pub(super) fn prometheus(out: &mut String, p: &ProtectReport) {
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let metric = format!("ferrovia_protect_{name}");
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{metric}{labels} {value}");
        }
    };
    let one = |v: u64| [(String::new(), v)];
    let help = "Bans started (rate or scanner) since start.";
    family("bans_started_total", "counter", help, &one(p.bans_started));
    let help = "Sources banned now.";
    family("bans_active", "gauge", help, &one(p.bans.len() as u64));
    let scanners: Vec<(String, u64)> = p
        .scanners
        .iter()
        .map(|s| {
            let labels = format!(
                "{{header=\"{}\",pattern=\"{}\"}}",
                s.header,
                escape(&s.pattern)
            );
            (labels, s.dropped)
        })
        .collect();
    let help = "Requests dropped by each scanner pattern.";
    family("scanner_dropped_total", "counter", help, &scanners);
    let talkers = |pick: fn(&crate::protect::TalkerView) -> u64| -> Vec<(String, u64)> {
        p.top_talkers
            .iter()
            .map(|t| (format!("{{source=\"{}\"}}", t.source), pick(t)))
            .collect()
    };
    let help = "Requests of the sources sending the most, since each took its rate-table slot.";
    family(
        "top_talker_requests",
        "gauge",
        help,
        &talkers(|t| t.requests),
    );
    let help = "Of which refused by the rate limit.";
    family("top_talker_refused", "gauge", help, &talkers(|t| t.refused));
    let help = "Sources in the rate table.";
    family(
        "tracked_sources",
        "gauge",
        help,
        &one(p.tracked_sources as u64),
    );
    let help = "Slots of the rate table (fixed at start).";
    family("source_slots", "gauge", help, &one(p.source_slots as u64));
    let help = "Sources that took another source's rate-table slot.";
    family("evictions_total", "counter", help, &one(p.evictions));
    let help = "Memory of the rate and ban tables (fixed at start).";
    family("memory_bytes", "gauge", help, &one(p.memory_bytes as u64));
}

/// A label value with `\`, `"` and newlines escaped (patterns are the operator's text).
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The protection lines of the one-screen report.
pub(super) fn text(f: &mut Formatter<'_>, p: &ProtectReport) -> fmt::Result {
    writeln!(f, "{:<28}{:>12}", "bans active", p.bans.len())?;
    writeln!(f, "{:<28}{:>12}", "bans started", p.bans_started)?;
    for b in p.bans.iter().take(5) {
        writeln!(
            f,
            "  banned {} ({}, {:.0} s left, {} dropped)",
            b.source, b.reason, b.remaining_seconds, b.dropped
        )?;
    }
    if p.bans.len() > 5 {
        writeln!(f, "  ... and {} more (GET /bans)", p.bans.len() - 5)?;
    }
    for s in &p.scanners {
        let label = format!("scanner {} {:?}", s.header, s.pattern);
        writeln!(f, "{label:<28}{:>12}", s.dropped)?;
    }
    writeln!(
        f,
        "{:<28}{:>12}",
        "sources tracked",
        format!("{}/{}", p.tracked_sources, p.source_slots)
    )?;
    if !p.top_talkers.is_empty() {
        writeln!(f, "top talkers (requests, refused):")?;
    }
    for t in p.top_talkers.iter().take(5) {
        writeln!(f, "  {:<26}{:>12}{:>12}", t.source, t.requests, t.refused)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::{BanView, ScannerCount, TalkerView};

    fn report() -> ProtectReport {
        ProtectReport {
            bans_started: 2,
            bans: vec![BanView {
                source: "127.0.0.2".into(),
                reason: "rate".into(),
                banned_seconds_ago: 1.0,
                remaining_seconds: 59.0,
                strikes: 1,
                dropped: 400,
            }],
            top_talkers: vec![TalkerView {
                source: "127.0.0.2".into(),
                requests: 5000,
                refused: 3000,
            }],
            scanners: vec![ScannerCount {
                header: "user-agent".into(),
                pattern: "odd\"one".into(),
                dropped: 3,
            }],
            tracked_sources: 1,
            source_slots: 65536,
            evictions: 0,
            memory_bytes: 4 << 20,
        }
    }

    #[test]
    fn prometheus_families_carry_escaped_labels() {
        let mut out = String::new();
        prometheus(&mut out, &report());
        assert!(out.contains("ferrovia_protect_bans_active 1\n"), "{out}");
        assert!(out.contains(
            "ferrovia_protect_scanner_dropped_total{header=\"user-agent\",pattern=\"odd\\\"one\"} 3\n"
        ));
        assert!(out.contains("ferrovia_protect_top_talker_requests{source=\"127.0.0.2\"} 5000\n"));
        assert!(out.contains("# TYPE ferrovia_protect_evictions_total counter\n"));
    }

    struct Shown(ProtectReport);

    impl fmt::Display for Shown {
        fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
            text(f, &self.0)
        }
    }

    #[test]
    fn the_report_lists_bans_scanners_and_talkers() {
        let shown = Shown(report()).to_string();
        assert!(
            shown.contains("banned 127.0.0.2 (rate, 59 s left, 400 dropped)"),
            "{shown}"
        );
        assert!(shown.contains("scanner user-agent \"odd\\\"one\""));
        assert!(shown.contains("1/65536"));
        assert!(shown.contains("127.0.0.2                         5000        3000"));
    }
}
