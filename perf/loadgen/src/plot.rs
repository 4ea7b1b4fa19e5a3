//! An SVG chart of latency percentile distributions, HdrHistogram style: the x axis is the
//! percentile on a log scale of 1/(1-p) (50%, 90%, 99%, ... 99.999%), the y axis latency in
//! microseconds on a log scale. Dependency-free: it writes SVG text.

use std::fmt::Write as _;

/// One line on the chart: a name and its `(value µs, percentile 0..1)` points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
/// Up to 99.999%: 1/(1-p) = 10^5.
const X_DECADES: f64 = 5.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// The whole SVG document.
pub fn svg(title: &str, series: &[Series]) -> String {
    let (y_low, y_high) = y_decades(series);
    let mut s = String::new();
    // Writing to a String cannot fail: each `let _` discards an always-Ok fmt::Result.
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    axes(&mut s, y_low, y_high);
    for (i, one) in series.iter().enumerate() {
        line(&mut s, one, COLORS[i % COLORS.len()], y_low, y_high);
        legend(&mut s, i, &one.name, COLORS[i % COLORS.len()]);
    }
    s.push_str("</svg>\n");
    s
}

/// The y range in whole decades of microseconds covering every point.
fn y_decades(series: &[Series]) -> (f64, f64) {
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (low, high) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if low > high {
        return (0.0, 3.0);
    }
    let low = low.log10().floor();
    let high = high.log10().ceil().max(low + 1.0);
    (low, high)
}

fn x_of(percentile: f64) -> f64 {
    let decades = if percentile >= 1.0 {
        X_DECADES
    } else {
        (1.0 / (1.0 - percentile)).log10().clamp(0.0, X_DECADES)
    };
    LEFT + decades / X_DECADES * (WIDTH - LEFT - RIGHT)
}

fn y_of(value_us: f64, y_low: f64, y_high: f64) -> f64 {
    let decades = value_us.max(10f64.powf(y_low)).log10();
    let fraction = (decades - y_low) / (y_high - y_low);
    HEIGHT - BOTTOM - fraction * (HEIGHT - TOP - BOTTOM)
}

fn axes(s: &mut String, y_low: f64, y_high: f64) {
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
    for (decade, label) in labels.iter().enumerate() {
        let x = x_of(1.0 - 10f64.powi(-(decade as i32)));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 18.0
        );
    }
    let mut decade = y_low;
    while decade <= y_high {
        let y = y_of(10f64.powf(decade), y_low, y_high);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            latency_label(10f64.powf(decade))
        );
        decade += 1.0;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text><text transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle">round trip (log scale)</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 18.0,
        (TOP + HEIGHT - BOTTOM) / 2.0
    );
}

/// `10 µs`, `1 ms`, `10 s`: a round tick value in microseconds, in the unit that reads best.
fn latency_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{} ms", us / 1e3)
    } else {
        format!("{us} µs")
    }
}

fn line(s: &mut String, series: &Series, color: &str, y_low: f64, y_high: f64) {
    let mut points = String::new();
    for &(value, q) in &series.points {
        let _ = write!(points, "{:.1},{:.1} ", x_of(q), y_of(value, y_low, y_high));
    }
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
        points.trim_end()
    );
}

fn legend(s: &mut String, index: usize, name: &str, color: &str) {
    let y = TOP + 14.0 + 18.0 * index as f64;
    let x = LEFT + 14.0;
    let _ = writeln!(
        s,
        r#"<line x1="{x}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
        x + 24.0,
        x + 30.0,
        y + 4.0,
        escape(name)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_line_and_one_legend_entry_per_series() {
        let series = vec![
            Series {
                name: "relay".into(),
                points: vec![(20.0, 0.0), (25.0, 0.5), (90.0, 0.99), (400.0, 1.0)],
            },
            Series {
                name: "kamailio <fm> & co".into(),
                points: vec![(60.0, 0.0), (900.0, 1.0)],
            },
        ];
        let doc = svg("RTT", &series);
        assert!(doc.starts_with("<svg"));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert_eq!(doc.matches("<polyline").count(), 2);
        assert!(doc.contains("kamailio &lt;fm&gt; &amp; co"));
        assert!(doc.contains(">99.999%<"));
    }

    #[test]
    fn tick_labels_carry_their_unit() {
        assert_eq!(latency_label(10.0), "10 µs");
        assert_eq!(latency_label(1_000.0), "1 ms");
        assert_eq!(latency_label(100_000.0), "100 ms");
        assert_eq!(latency_label(10_000_000.0), "10 s");
    }

    #[test]
    fn the_axes_map_percentiles_and_values_onto_the_chart() {
        assert_eq!(x_of(0.0), LEFT);
        assert_eq!(x_of(1.0), WIDTH - RIGHT);
        assert!((x_of(0.99) - x_of(0.9) - (x_of(0.9) - x_of(0.0))).abs() < 1e-6);
        assert_eq!(y_of(10.0, 1.0, 3.0), HEIGHT - BOTTOM);
        assert_eq!(y_of(1000.0, 1.0, 3.0), TOP);
        assert_eq!(y_decades(&[]), (0.0, 3.0));
    }
}
