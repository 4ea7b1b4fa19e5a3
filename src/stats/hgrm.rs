//! HdrHistogram's percentile-distribution text (`.hgrm`), as its reference implementation's
//! `outputPercentileDistribution` writes it, so the usual HdrHistogram plotters read it.
//!
//! Values are in microseconds (recorded nanoseconds divided by 1000) with 3 decimals; rows
//! step through percentiles with 5 ticks per half distance; the last row, at percentile 1.0,
//! has no `1/(1-Percentile)` column; a `#[Mean ...]`, `#[Max ...]`, `#[Buckets ...]` footer
//! follows.

use std::fmt::Write;

use hdrhistogram::Histogram;

/// Nanoseconds per output unit (microseconds).
const SCALE: f64 = 1_000.0;
/// Percentile ticks per half distance to 100%.
const TICKS_PER_HALF: u32 = 5;

/// A histogram in nanoseconds as `.hgrm` text, values in microseconds.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_hgrm(&mut out, h);
    out
}

fn write_hgrm(out: &mut String, h: &Histogram<u64>) -> std::fmt::Result {
    let digits = usize::from(h.sigfig());
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / SCALE;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let inverse = 1.0 / (1.0 - q);
            writeln!(out, "{value:12.digits$} {q:2.12} {total:10} {inverse:14.2}")?;
        } else {
            writeln!(out, "{value:12.digits$} {q:2.12} {total:10}")?;
        }
    }
    let (mean, stdev) = (h.mean() / SCALE, h.stdev() / SCALE);
    let max = h.max() as f64 / SCALE;
    writeln!(
        out,
        "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]"
    )?;
    writeln!(
        out,
        "#[Max     = {max:12.digits$}, Total count    = {:12}]",
        h.len()
    )?;
    let buckets = h.buckets();
    let sub_buckets = sub_bucket_count(h.sigfig());
    writeln!(
        out,
        "#[Buckets = {buckets:12}, SubBuckets     = {sub_buckets:12}]"
    )
}

/// HdrHistogram's sub-bucket count for `sigfig` digits: the power of two that covers
/// `2 * 10^sigfig` (2048 for 3 digits).
fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::latency_histogram;

    #[test]
    fn a_known_histogram_prints_the_classic_layout() {
        let mut h = latency_histogram();
        for v in 1..=100u64 {
            h.saturating_record(v * 1_000); // 1 µs .. 100 µs
        }
        let text = hgrm(&h);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        assert_eq!(
            lines.next(),
            Some("       1.000 0.000000000000          1           1.00")
        );
        let last = text.lines().rfind(|l| !l.starts_with('#')).unwrap(); // rows exist
        assert_eq!(last, "     100.031 1.000000000000        100");
        assert!(text.contains("#[Max     =      100.031, Total count    =          100]"));
        assert!(text.contains("#[Buckets =           26, SubBuckets     =         2048]"));
        assert!(text.ends_with("]\n"));
    }

    #[test]
    fn an_empty_histogram_prints_header_and_footer_only() {
        let text = hgrm(&latency_histogram());
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("Total count    =            0]"));
    }

    #[test]
    fn sub_buckets_match_hdrhistogram() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(1), 32);
    }
}
