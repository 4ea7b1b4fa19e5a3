//! Matching answers to requests by sequence number, and the round-trip histogram.
//!
//! Contract: sequence numbers run from 0 to `capacity - 1`; [`Tracker::sent`] records the time a
//! request left, [`Tracker::answered`] the time its answer came back. Each answer is classified
//! exactly once: first answer (its round trip recorded), duplicate, or unknown (never sent or out
//! of range). Times are nanoseconds since the run started, passed in by the caller.

use hdrhistogram::Histogram;

/// Round trips are recorded in nanoseconds, from 1 ns to this, at 3 significant digits.
const HIGHEST_RTT_NS: u64 = 60_000_000_000;

const NOT_SENT: u64 = 0;
const ANSWERED: u64 = u64::MAX;

/// How an answer matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// The first answer to a request; its round trip in nanoseconds.
    First { rtt_ns: u64 },
    /// The request was already answered.
    Duplicate,
    /// No such request was sent in this run.
    Unknown,
}

/// Send times and answer state for every sequence number of one run.
pub struct Tracker {
    /// Per sequence number: `NOT_SENT`, `ANSWERED`, or the send time + 1 ns.
    state: Vec<u64>,
    sent: u64,
    answered: u64,
    duplicates: u64,
    unknown: u64,
    rtt: Histogram<u64>,
}

impl Tracker {
    /// Room for sequence numbers `0..capacity` (the run's bounded count).
    pub fn new(capacity: usize) -> Tracker {
        // Valid bounds (1 <= low, high >= 2 * low, sigfig <= 5) cannot fail to build.
        let rtt = Histogram::new_with_bounds(1, HIGHEST_RTT_NS, 3).expect("constant bounds");
        Tracker {
            state: vec![NOT_SENT; capacity],
            sent: 0,
            answered: 0,
            duplicates: 0,
            unknown: 0,
            rtt,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.state.len() as u64
    }

    /// Request `seq` left at `now_ns`. Out of range or already sent: ignored.
    pub fn sent(&mut self, seq: u64, now_ns: u64) {
        if let Some(slot) = self.slot(seq)
            && *slot == NOT_SENT
        {
            *slot = now_ns.saturating_add(1).min(ANSWERED - 1);
            self.sent += 1;
        }
    }

    /// An answer to `seq` arrived at `now_ns`.
    pub fn answered(&mut self, seq: u64, now_ns: u64) -> Match {
        let Some(slot) = self.slot(seq) else {
            self.unknown += 1;
            return Match::Unknown;
        };
        let outcome = match *slot {
            NOT_SENT => Match::Unknown,
            ANSWERED => Match::Duplicate,
            sent_plus_one => Match::First {
                rtt_ns: now_ns.saturating_sub(sent_plus_one - 1),
            },
        };
        match outcome {
            Match::First { rtt_ns } => {
                *slot = ANSWERED;
                self.answered += 1;
                self.rtt.saturating_record(rtt_ns.max(1));
            }
            Match::Duplicate => self.duplicates += 1,
            Match::Unknown => self.unknown += 1,
        }
        outcome
    }

    fn slot(&mut self, seq: u64) -> Option<&mut u64> {
        usize::try_from(seq)
            .ok()
            .and_then(|i| self.state.get_mut(i))
    }

    pub fn sent_count(&self) -> u64 {
        self.sent
    }

    pub fn answered_count(&self) -> u64 {
        self.answered
    }

    /// Sent and not (yet) answered.
    pub fn unanswered(&self) -> u64 {
        self.sent - self.answered
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn unknown(&self) -> u64 {
        self.unknown
    }

    /// Round trips of first answers, in nanoseconds.
    pub fn rtt(&self) -> &Histogram<u64> {
        &self.rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_match_their_requests_by_sequence_number() {
        let mut t = Tracker::new(10);
        t.sent(0, 1_000);
        t.sent(1, 2_000);
        t.sent(2, 0);
        assert_eq!(t.answered(1, 7_000), Match::First { rtt_ns: 5_000 });
        assert_eq!(t.answered(0, 9_000), Match::First { rtt_ns: 8_000 });
        assert_eq!(t.answered(2, 0), Match::First { rtt_ns: 0 });
        assert_eq!(
            (t.sent_count(), t.answered_count(), t.unanswered()),
            (3, 3, 0)
        );
        assert_eq!(t.rtt().len(), 3);
        assert_eq!(t.rtt().max(), t.rtt().highest_equivalent(8_000));
    }

    #[test]
    fn a_second_answer_is_a_duplicate_and_records_no_round_trip() {
        let mut t = Tracker::new(4);
        t.sent(3, 10);
        assert!(matches!(t.answered(3, 20), Match::First { .. }));
        assert_eq!(t.answered(3, 30), Match::Duplicate);
        assert_eq!(
            (t.answered_count(), t.duplicates(), t.rtt().len()),
            (1, 1, 1)
        );
    }

    #[test]
    fn answers_to_requests_never_sent_are_unknown() {
        let mut t = Tracker::new(4);
        assert_eq!(t.answered(2, 5), Match::Unknown);
        assert_eq!(t.answered(4, 5), Match::Unknown);
        assert_eq!(t.answered(u64::MAX, 5), Match::Unknown);
        assert_eq!(t.unknown(), 3);
        assert_eq!(t.answered_count(), 0);
    }

    #[test]
    fn unanswered_requests_are_the_loss() {
        let mut t = Tracker::new(100);
        for seq in 0..100 {
            t.sent(seq, seq);
        }
        t.sent(5, 999); // sending twice counts once
        for seq in (0..100).step_by(2) {
            t.answered(seq, 1_000);
        }
        assert_eq!(
            (t.sent_count(), t.answered_count(), t.unanswered()),
            (100, 50, 50)
        );
    }
}
