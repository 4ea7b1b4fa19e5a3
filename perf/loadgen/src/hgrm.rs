//! Latency percentiles: the summary the tools print, and HdrHistogram's `.hgrm` percentile
//! distribution text (what the usual HdrHistogram plotters read), written and read back.
//!
//! Histograms hold nanoseconds; everything printed or written here is in microseconds.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

const NS_PER_US: f64 = 1_000.0;

/// The percentiles every report shows, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// Reads them from a histogram of nanoseconds (all zero when it is empty).
    pub fn of(ns: &Histogram<u64>) -> Percentiles {
        if ns.is_empty() {
            return Percentiles::default();
        }
        let us = |q: f64| ns.value_at_quantile(q) as f64 / NS_PER_US;
        Percentiles {
            count: ns.len(),
            mean: ns.mean() / NS_PER_US,
            p50: us(0.5),
            p90: us(0.9),
            p99: us(0.99),
            p999: us(0.999),
            max: ns.max() as f64 / NS_PER_US,
        }
    }

    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count, "mean_us": round(self.mean), "p50_us": round(self.p50),
            "p90_us": round(self.p90), "p99_us": round(self.p99),
            "p99_9_us": round(self.p999), "max_us": round(self.max),
        })
    }
}

fn round(us: f64) -> f64 {
    (us * 10.0).round() / 10.0
}

/// The `.hgrm` percentile distribution of a histogram of nanoseconds, values in microseconds.
pub fn distribution_text(ns: &Histogram<u64>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail: each `let _` discards an always-Ok fmt::Result.
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for step in ns.iter_quantiles(5) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / NS_PER_US;
        let q = step.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let p = Percentiles::of(ns);
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        p.mean,
        ns.stdev() / NS_PER_US
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        p.max,
        ns.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        ns.buckets(),
        ns.distinct_values()
    );
    out
}

/// The `(value µs, percentile 0..1)` points of `.hgrm` text; other lines are skipped.
pub fn parse_distribution(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let value = cols.next()?.parse::<f64>().ok()?;
            let q = cols.next()?.parse::<f64>().ok()?;
            (value.is_finite() && (0.0..=1.0).contains(&q)).then_some((value, q))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values_ns: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in values_ns {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_are_in_microseconds() {
        let h = histogram((1..=1000).map(|i| i * 1_000));
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max - 1000.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        assert_eq!(Percentiles::of(&histogram([])), Percentiles::default());
    }

    #[test]
    fn the_distribution_reads_back() {
        let h = histogram((1..=10_000).map(|i| i * 100));
        let text = distribution_text(&h);
        assert!(text.contains("1/(1-Percentile)"));
        assert!(text.contains("#[Max     ="));
        let points = parse_distribution(&text);
        assert!(points.len() > 20);
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        let last = points.last().unwrap();
        assert_eq!(last.1, 1.0);
        assert!((last.0 - 1000.0).abs() < 1.0, "{last:?}");
    }

    #[test]
    fn junk_lines_are_skipped() {
        let points = parse_distribution("Value Percentile\n\n12.5 0.5 10 2.0\nx y\n1 7\n");
        assert_eq!(points, [(12.5, 0.5)]);
    }
}
