//! The one-screen report printed on stderr when the proxy stops.

use std::fmt;
use std::time::Duration;

use super::record::Counters;
use super::stream::StreamEvent;
use crate::proxy::DropReason;

/// Totals across workers, with the per-worker split of received messages.
#[derive(Clone, Debug)]
pub struct Summary {
    total: Counters,
    per_worker: Vec<u64>,
    uptime: Duration,
}

impl Summary {
    pub fn new(workers: &[Counters], uptime: Duration) -> Summary {
        let mut total = Counters::default();
        workers.iter().for_each(|c| total.merge(c));
        Summary {
            total,
            per_worker: workers.iter().map(|c| c.received).collect(),
            uptime,
        }
    }

    /// The merged counters.
    pub fn total(&self) -> &Counters {
        &self.total
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.total;
        let secs = self.uptime.as_secs_f64();
        writeln!(
            f,
            "ferrovia stopped after {secs:.1} s with {} workers",
            self.per_worker.len()
        )?;
        writeln!(f, "  received             {:>12}", t.received)?;
        writeln!(f, "  forwarded requests   {:>12}", t.forwarded_requests)?;
        writeln!(f, "  forwarded responses  {:>12}", t.forwarded_responses)?;
        writeln!(f, "  local replies        {:>12}", t.total_replied())?;
        for (status, n) in t.replies() {
            writeln!(f, "    {status}                {n:>12}")?;
        }
        writeln!(f, "  dropped              {:>12}", t.total_dropped())?;
        for reason in DropReason::ALL.iter().filter(|r| t.dropped_for(**r) > 0) {
            writeln!(
                f,
                "    {:<18} {:>12}",
                reason.name(),
                t.dropped_for(*reason)
            )?;
        }
        writeln!(f, "  send errors          {:>12}", t.send_errors)?;
        writeln!(f, "  kernel receive drops {:>12}", t.kernel_drops)?;
        let events = StreamEvent::ALL.iter().filter(|e| t.stream_count(**e) > 0);
        for (i, event) in events.enumerate() {
            if i == 0 {
                writeln!(f, "  tcp connections")?;
            }
            writeln!(f, "    {:<18} {:>12}", event.name(), t.stream_count(*event))?;
        }
        let split: Vec<String> = self.per_worker.iter().map(u64::to_string).collect();
        writeln!(f, "  received per worker  {:>12}", split.join(" / "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Direction;
    use crate::runtime::Recorder;

    #[test]
    fn the_summary_names_what_happened() {
        let mut a = Counters::default();
        a.received(3);
        a.forwarded(Direction::Request, 1);
        a.replied(483, 1);
        a.dropped(DropReason::NotSip);
        a.stream_event(StreamEvent::Accepted);
        let b = Counters::default();
        let text = Summary::new(&[a, b], Duration::from_secs(2)).to_string();
        assert!(text.contains("2 workers"), "{text}");
        assert!(text.contains("483"), "{text}");
        assert!(text.contains("not_sip"), "{text}");
        assert!(text.contains("3 / 0"), "{text}");
        assert!(text.contains("accepted"), "{text}");
        assert!(!text.contains("handed_off"), "only what happened: {text}");
        assert!(text.lines().count() < 24, "{text}");
    }
}
