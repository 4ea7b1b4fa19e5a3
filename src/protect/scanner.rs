//! Known scanners by what they write: case-insensitive substrings of the User-Agent or From
//! header (`friendly-scanner`, `sipvicious`, `sipcli`, …), each counted when it matches.
//!
//! The check walks the header lines of a request ([`HeaderLines`]), and only for a User-Agent
//! or From line lower-cases the first [`MAX_VALUE`] bytes of the value into a stack buffer and
//! runs each pattern's `memchr::memmem` finder (built once, at start). No allocation, no
//! lock; a hit bumps the pattern's shared counter.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use memchr::memmem::Finder;

use super::peek::HeaderLines;

/// How much of a header value is searched.
pub const MAX_VALUE: usize = 256;

/// Which header a pattern is looked for in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScannerField {
    UserAgent,
    From,
}

impl ScannerField {
    pub fn name(self) -> &'static str {
        match self {
            ScannerField::UserAgent => "user-agent",
            ScannerField::From => "from",
        }
    }

    fn of(name: &[u8]) -> Option<ScannerField> {
        if name.eq_ignore_ascii_case(b"user-agent") {
            Some(ScannerField::UserAgent)
        } else if name.eq_ignore_ascii_case(b"from") || name.eq_ignore_ascii_case(b"f") {
            Some(ScannerField::From)
        } else {
            None
        }
    }
}

struct Pattern {
    field: ScannerField,
    text: String,
    finder: Finder<'static>,
    hits: AtomicU64,
}

/// The configured patterns and their counters.
#[derive(Default)]
pub(crate) struct Scanners {
    patterns: Vec<Pattern>,
}

impl Scanners {
    /// The patterns, lower-cased; empty ones are ignored.
    pub(crate) fn new(patterns: &[(ScannerField, String)]) -> Scanners {
        let patterns = patterns
            .iter()
            .filter(|(_, text)| !text.is_empty())
            .map(|(field, text)| {
                let text = text.to_ascii_lowercase();
                Pattern {
                    field: *field,
                    finder: Finder::new(text.as_bytes()).into_owned(),
                    text,
                    hits: AtomicU64::new(0),
                }
            })
            .collect();
        Scanners { patterns }
    }

    /// The first pattern that matches the request's User-Agent or From, counted.
    pub(crate) fn matches(&self, data: &[u8]) -> Option<usize> {
        if self.patterns.is_empty() {
            return None;
        }
        let mut lower = [0u8; MAX_VALUE];
        // Only User-Agent, From and its compact form f start with these.
        for (name, value) in HeaderLines::starting_with(data, b"uUfF") {
            let Some(field) = ScannerField::of(name) else {
                continue;
            };
            let n = value.len().min(MAX_VALUE);
            for (to, from) in lower.iter_mut().zip(&value[..n]) {
                *to = from.to_ascii_lowercase();
            }
            let hit = self
                .patterns
                .iter()
                .position(|p| p.field == field && p.finder.find(&lower[..n]).is_some());
            if let Some(i) = hit {
                self.patterns[i].hits.fetch_add(1, Relaxed);
                return Some(i);
            }
        }
        None
    }

    /// Each pattern with its field and how many requests it dropped.
    pub(crate) fn counts(&self) -> impl Iterator<Item = (ScannerField, &str, u64)> {
        self.patterns
            .iter()
            .map(|p| (p.field, p.text.as_str(), p.hits.load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanners() -> Scanners {
        Scanners::new(&[
            (ScannerField::UserAgent, "friendly-scanner".into()),
            (ScannerField::UserAgent, "SIPVicious".into()),
            (ScannerField::From, "\"sipvicious\"".into()),
            (ScannerField::UserAgent, String::new()),
        ])
    }

    fn request(headers: &str) -> Vec<u8> {
        format!("OPTIONS sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n{headers}\r\n\r\n")
            .into_bytes()
    }

    #[test]
    fn patterns_match_any_case_in_their_own_header() {
        let s = scanners();
        assert_eq!(s.matches(&request("User-Agent: friendly-scanner")), Some(0));
        assert_eq!(s.matches(&request("user-agent: SIPVICIOUS 0.3.4")), Some(1));
        assert_eq!(s.matches(&request("USER-AGENT:x sipVicious-ng")), Some(1));
        assert_eq!(
            s.matches(&request("f: \"SIPvicious\" <sip:100@1.1.1.1>;tag=1")),
            Some(2)
        );
        // A pattern for one header does not fire on another.
        assert_eq!(
            s.matches(&request("From: <sip:friendly-scanner@x>;tag=1")),
            None
        );
        assert_eq!(s.matches(&request("User-Agent: Linphone/5.0")), None);
        assert_eq!(s.matches(&request("Subject: sipvicious")), None);
        // Past the headers is the body.
        assert_eq!(
            s.matches(b"OPTIONS x SIP/2.0\r\n\r\nUser-Agent: sipvicious\r\n"),
            None
        );
        let counts: Vec<u64> = s.counts().map(|(_, _, n)| n).collect();
        assert_eq!(counts, [1, 2, 1], "the empty pattern is ignored");
    }

    #[test]
    fn only_the_first_bytes_of_a_value_are_searched() {
        let s = scanners();
        let late = format!("User-Agent: {}sipvicious", "x".repeat(MAX_VALUE));
        assert_eq!(s.matches(&request(&late)), None);
        let early = format!("User-Agent: sipvicious{}", "x".repeat(2 * MAX_VALUE));
        assert_eq!(s.matches(&request(&early)), Some(1));
        assert_eq!(
            Scanners::default().matches(&request("User-Agent: sipvicious")),
            None
        );
    }
}
