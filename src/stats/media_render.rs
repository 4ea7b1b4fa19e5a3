//! The media relay's figures (issue 18) in the Prometheus text and in the one-screen report.
//!
//! Prometheus families: `ferrovia_media_requests_total{command,result}` (NG requests:
//! offer, answer, delete, query, ping × ok, error, timeout, unavailable, malformed),
//! `ferrovia_media_round_trip_seconds` (a histogram of NG round trips),
//! `ferrovia_media_sessions_anchored_total`, `ferrovia_media_fallbacks_total{action}` (what
//! the core did when rtpengine failed it: `503`, `unanchored`, `forwarded`),
//! `ferrovia_media_instance_up{instance}`.

use std::fmt::{self, Formatter, Write};

use crate::media::{LATENCY_BOUNDS_US, MediaSnapshot};

/// Appends the media families to Prometheus text.
pub(super) fn prometheus(out: &mut String, m: &MediaSnapshot) {
    let metric = "ferrovia_media_requests_total";
    let _ = writeln!(
        out,
        "# HELP {metric} NG requests to rtpengine, by command and result.\n# TYPE {metric} counter"
    );
    for (command, result, n) in &m.requests {
        let _ = writeln!(
            out,
            "{metric}{{command=\"{command}\",result=\"{result}\"}} {n}"
        );
    }
    let metric = "ferrovia_media_round_trip_seconds";
    let _ = writeln!(
        out,
        "# HELP {metric} NG round trips (sent to reply, retries included).\n# TYPE {metric} histogram"
    );
    let mut cumulative = 0;
    for (i, n) in m.latency_buckets.iter().enumerate() {
        cumulative += n;
        let le = LATENCY_BOUNDS_US
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
        let _ = writeln!(out, "{metric}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let sum = m.latency_sum_us as f64 / 1e6;
    let _ = writeln!(out, "{metric}_sum {sum}\n{metric}_count {cumulative}");
    let metric = "ferrovia_media_sessions_anchored_total";
    let _ = writeln!(
        out,
        "# HELP {metric} New calls whose offer rtpengine accepted.\n# TYPE {metric} counter\n{metric} {}",
        m.sessions_anchored
    );
    let metric = "ferrovia_media_fallbacks_total";
    let _ = writeln!(
        out,
        "# HELP {metric} Messages handled without rtpengine's answer, by what was done.\n# TYPE {metric} counter"
    );
    for (action, n) in &m.fallbacks {
        let _ = writeln!(out, "{metric}{{action=\"{action}\"}} {n}");
    }
    let metric = "ferrovia_media_instance_up";
    let _ = writeln!(
        out,
        "# HELP {metric} Whether each rtpengine answers its pings (1) or not (0).\n# TYPE {metric} gauge"
    );
    for (i, up) in m.instances_up.iter().enumerate() {
        let _ = writeln!(out, "{metric}{{instance=\"{i}\"}} {}", u8::from(*up));
    }
}

/// The media lines of `ferrovia stats`.
pub(super) fn text(f: &mut Formatter<'_>, m: &MediaSnapshot) -> fmt::Result {
    let sum = |command: &str, ok: bool| -> u64 {
        m.requests
            .iter()
            .filter(|(c, r, _)| c == command && (r == "ok") == ok)
            .map(|r| r.2)
            .sum()
    };
    writeln!(
        f,
        "{:<28}{:>12}",
        "media sessions anchored", m.sessions_anchored
    )?;
    for command in ["offer", "answer", "delete"] {
        writeln!(
            f,
            "{:<28}{:>12}",
            format!("media {command} ok / failed"),
            format!("{} / {}", sum(command, true), sum(command, false))
        )?;
    }
    for (action, n) in &m.fallbacks {
        writeln!(f, "{:<28}{n:>12}", format!("media fallback {action}"))?;
    }
    let count: u64 = m.latency_buckets.iter().sum();
    if count > 0 {
        let mean = m.latency_sum_us as f64 / count as f64;
        writeln!(f, "{:<28}{:>12.1}", "media round trip mean (µs)", mean)?;
    }
    let up = m.instances_up.iter().filter(|u| **u).count();
    writeln!(
        f,
        "{:<28}{:>12}",
        "media rtpengine up",
        format!("{up} / {}", m.instances_up.len())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Command, MediaCounters, NgOutcome};

    #[test]
    fn every_family_is_written() {
        let c = MediaCounters::new(1);
        c.request(Command::Offer, NgOutcome::Ok);
        c.round_trip(std::time::Duration::from_micros(300));
        c.anchored();
        let mut out = String::new();
        prometheus(&mut out, &c.snapshot());
        for line in [
            "ferrovia_media_requests_total{command=\"offer\",result=\"ok\"} 1",
            "ferrovia_media_round_trip_seconds_bucket{le=\"0.00025\"} 0",
            "ferrovia_media_round_trip_seconds_bucket{le=\"0.0005\"} 1",
            "ferrovia_media_round_trip_seconds_bucket{le=\"+Inf\"} 1",
            "ferrovia_media_round_trip_seconds_count 1",
            "ferrovia_media_sessions_anchored_total 1",
            "ferrovia_media_fallbacks_total{action=\"503\"} 0",
            "ferrovia_media_instance_up{instance=\"0\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line}\n{out}");
        }
    }
}
