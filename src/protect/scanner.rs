//! Known scanners by what they write: case-insensitive substrings of the User-Agent or From
//! header (`friendly-scanner`, `sipvicious`, `sipcli`, …), each counted when it matches.
//!
//! Patterns are rare in real traffic, so the check looks for them first and for headers only
//! around a hit: it lower-cases the header section into a stack buffer ([`CHUNK`] bytes at a
//! time, consecutive chunks overlapping by [`MAX_PATTERN`] bytes) and runs each pattern's
//! `memchr::memmem` finder (built once, at start) over it; a hit counts only when it lies in
//! the value of a `User-Agent` (or `From` / `f`) line, which is then the only line examined.
//! No per-line work on a clean request, no allocation, no lock; a hit bumps the pattern's
//! shared counter.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use memchr::memmem::Finder;

use memchr::{memchr, memrchr};

/// Bytes of the header section lower-cased and searched at a time.
pub(crate) const CHUNK: usize = 2048;
/// The longest pattern (longer ones are cut to this; the chunks overlap by as much).
pub(crate) const MAX_PATTERN: usize = 64;

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
pub(crate) struct Scanners {
    patterns: Vec<Pattern>,
    /// The end of the header section: CRLF CRLF, or a bare LF LF.
    crlf_end: Finder<'static>,
    lf_end: Finder<'static>,
}

impl Default for Scanners {
    fn default() -> Scanners {
        Scanners::new(&[])
    }
}

impl Scanners {
    /// The patterns, lower-cased; empty ones are ignored.
    pub(crate) fn new(patterns: &[(ScannerField, String)]) -> Scanners {
        let patterns = patterns
            .iter()
            .filter(|(_, text)| !text.is_empty())
            .map(|(field, text)| {
                let mut text = text.to_ascii_lowercase();
                text.truncate(text.floor_char_boundary(MAX_PATTERN));
                Pattern {
                    field: *field,
                    finder: Finder::new(text.as_bytes()).into_owned(),
                    text,
                    hits: AtomicU64::new(0),
                }
            })
            .collect();
        Scanners {
            patterns,
            crlf_end: Finder::new(b"\n\r\n").into_owned(),
            lf_end: Finder::new(b"\n\n").into_owned(),
        }
    }

    /// The first pattern found in the value of the request's User-Agent or From, counted.
    pub(crate) fn matches(&self, data: &[u8]) -> Option<usize> {
        if self.patterns.is_empty() {
            return None;
        }
        let headers = &data[..self.headers_end(data)];
        let mut lower = [0u8; CHUNK];
        let mut offset = 0;
        loop {
            let end = (offset + CHUNK).min(headers.len());
            let chunk = &headers[offset..end];
            for (to, from) in lower.iter_mut().zip(chunk) {
                *to = from.to_ascii_lowercase();
            }
            if let Some(i) = self.find_in(headers, &lower[..chunk.len()], offset) {
                self.patterns[i].hits.fetch_add(1, Relaxed);
                return Some(i);
            }
            if end == headers.len() {
                return None;
            }
            offset = end - MAX_PATTERN;
        }
    }

    /// The first pattern with a hit in `lower` (the lower-cased `headers[offset..]`) that lies
    /// in the value of a line of the pattern's header.
    fn find_in(&self, headers: &[u8], lower: &[u8], offset: usize) -> Option<usize> {
        self.patterns.iter().position(|p| {
            p.finder
                .find_iter(lower)
                .any(|hit| field_at(headers, offset + hit) == Some(p.field))
        })
    }

    /// Where the header section ends (all of `data` when no empty line is found).
    fn headers_end(&self, data: &[u8]) -> usize {
        // A bare LF LF can only end the headers earlier: look for it before CRLF CRLF only.
        let crlf = self.crlf_end.find(data).map_or(data.len(), |i| i + 1);
        self.lf_end.find(&data[..crlf]).map_or(crlf, |i| i + 1)
    }

    /// Each pattern with its field and how many requests it dropped.
    pub(crate) fn counts(&self) -> impl Iterator<Item = (ScannerField, &str, u64)> {
        self.patterns
            .iter()
            .map(|p| (p.field, p.text.as_str(), p.hits.load(Relaxed)))
    }
}

/// The header whose value holds position `at` of `headers`, if a scanner pattern may apply
/// to it: the line's name before its colon, the colon before `at`; never the start line or a
/// folded continuation line.
fn field_at(headers: &[u8], at: usize) -> Option<ScannerField> {
    let start = memrchr(b'\n', &headers[..at])? + 1;
    let line = &headers[start..at];
    let colon = memchr(b':', line)?;
    ScannerField::of(line[..colon].trim_ascii())
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
    fn long_headers_are_searched_across_chunks() {
        let s = scanners();
        for pad in [0, 100, CHUNK - 40, CHUNK - 5, CHUNK, 3 * CHUNK + 17] {
            let text = format!("X-Pad: {}\r\nUser-Agent: x sipvicious", "x".repeat(pad));
            assert_eq!(s.matches(&request(&text)), Some(1), "pad {pad}");
            let long = format!("User-Agent: {}sipvicious", "y".repeat(pad));
            assert_eq!(s.matches(&request(&long)), Some(1), "pad {pad}");
        }
        assert_eq!(
            Scanners::default().matches(&request("User-Agent: sipvicious")),
            None
        );
        // A hit in the start line, in a header's name or in a folded line is no hit.
        let msg = b"OPTIONS sip:sipvicious@x SIP/2.0\r\nX-sipvicious: 1\r\n\
User-Agent: a\r\n sipvicious\r\n\r\n";
        assert_eq!(s.matches(msg), None);
        let long = Scanners::new(&[(ScannerField::UserAgent, "z".repeat(200))]);
        let text = format!("User-Agent: {}", "Z".repeat(MAX_PATTERN));
        assert_eq!(
            long.matches(&request(&text)),
            Some(0),
            "patterns are cut to 64 bytes"
        );
    }
}
