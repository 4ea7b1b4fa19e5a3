//! The Route set of a request, and removing header values from multi-value lines.
//!
//! RFC 3261 §16.4 removes the Route values naming this proxy from the top of the list and,
//! after a strict router, the last value; §16.6 step 6 removes the top value when the next
//! hop is a strict router. Values can share a line (`Route: <a>, <b>`), so a removal deletes
//! the whole line when no value of it survives, and otherwise just the value with its comma.

use smallvec::SmallVec;

use crate::sip::{Header, HeaderName, Message, NameAddr, SipUri, Span, Values};

use super::rewrite::{Edit, Edits};

/// The most Route values the proxy reads; more is rejected with 400 (a bound, not a need:
/// real route sets hold a handful).
pub(crate) const MAX_ROUTES: usize = 32;

/// One Route value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteEntry {
    /// Index of its header line in the message.
    pub line: u8,
    /// The value (one comma-separated element).
    pub value: Span,
    pub uri: SipUri,
    pub removed: bool,
}

/// Why the Route set could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteError {
    Malformed,
    TooMany,
}

/// The Route values of a request, in order.
#[derive(Debug, Default)]
pub(crate) struct RouteSet {
    /// Eight inline: real route sets (IMS ones included) fit without allocating.
    pub entries: SmallVec<[RouteEntry; 8]>,
}

impl RouteSet {
    pub(super) fn collect(msg: &Message<'_>) -> Result<RouteSet, RouteError> {
        let mut set = RouteSet::default();
        let buf = msg.buf();
        for (line, header) in msg.headers().iter().enumerate() {
            if header.name != HeaderName::Route {
                continue;
            }
            for value in Values::new(buf, header.value) {
                if set.entries.len() == MAX_ROUTES {
                    return Err(RouteError::TooMany);
                }
                let addr = NameAddr::parse(buf, value).ok_or(RouteError::Malformed)?;
                let uri = SipUri::parse(buf, addr.uri).map_err(|_| RouteError::Malformed)?;
                set.entries.push(RouteEntry {
                    line: line as u8, // < MAX_HEADERS (128), checked by the scanner
                    value,
                    uri,
                    removed: false,
                });
            }
        }
        Ok(set)
    }

    pub(super) fn top_mut(&mut self) -> Option<&mut RouteEntry> {
        self.entries.iter_mut().find(|e| !e.removed)
    }

    /// Whether a value naming this proxy was removed (the request follows our Record-Route).
    pub(super) fn any_removed(&self) -> bool {
        self.entries.iter().any(|e| e.removed)
    }

    /// The last value not removed.
    pub(super) fn last_mut(&mut self) -> Option<&mut RouteEntry> {
        self.entries.iter_mut().rev().find(|e| !e.removed)
    }

    /// The last Route line (new values are appended after it).
    pub(super) fn last_line(&self) -> Option<u8> {
        self.entries.last().map(|e| e.line)
    }

    /// Pushes the edits that delete every removed value.
    pub(super) fn removal_edits<'a>(&self, msg: &Message<'_>, edits: &mut Edits<'a>) {
        let mut i = 0;
        while i < self.entries.len() {
            let line = self.entries[i].line;
            let n = self.entries[i..]
                .iter()
                .take_while(|e| e.line == line)
                .count();
            let group = &self.entries[i..i + n];
            if group.iter().any(|e| e.removed) {
                let header = &msg.headers()[line as usize];
                let values = group.iter().map(|e| (e.value, e.removed));
                remove_values(header, values, edits);
            }
            i += n;
        }
    }
}

/// Deletes the values marked `true` from one header line (all values of the line, in order).
pub(crate) fn remove_values<'a>(
    header: &Header,
    values: impl Iterator<Item = (Span, bool)> + Clone,
    edits: &mut Edits<'a>,
) {
    if values.clone().all(|(_, removed)| removed) {
        edits.push(Edit::delete(header.line));
        return;
    }
    // Each maximal run of removed values leaves with the separator before it when a kept
    // value precedes it, and with the separator after it when it starts the line.
    let mut before_run: Option<Span> = None;
    let mut run: Option<(Span, Span)> = None; // first and last removed value of the run
    let mut prev_kept: Option<Span> = None;
    for (value, removed) in values {
        if removed {
            run = match run {
                None => {
                    before_run = prev_kept;
                    Some((value, value))
                }
                Some((first, _)) => Some((first, value)),
            };
            continue;
        }
        if let Some((first, last)) = run.take() {
            edits.push(Edit::delete(run_span(before_run, first, last, value)));
        }
        prev_kept = Some(value);
    }
    if let (Some((_, last)), Some(kept)) = (run, before_run) {
        edits.push(Edit::delete(Span::new(kept.end(), last.end())));
    }
}

/// The bytes a run of removed values takes with it, given the kept neighbours.
fn run_span(before: Option<Span>, first: Span, last: Span, after: Span) -> Span {
    match before {
        Some(kept) => Span::new(kept.end(), last.end()),
        None => Span::new(first.start(), after.start()),
    }
}

/// Deletes the first value of a header line (a response's own Via, RFC 3261 §16.11).
pub(crate) fn remove_first_value<'a>(msg: &Message<'_>, header: &Header, edits: &mut Edits<'a>) {
    let mut values = Values::new(msg.buf(), header.value);
    let first = values.next();
    match (first, values.next()) {
        (Some(first), Some(second)) => {
            edits.push(Edit::delete(Span::new(first.start(), second.start())))
        }
        _ => edits.push(Edit::delete(header.line)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rewrite::{Out, apply_range};
    use super::*;

    /// Removes the Route values at the given indexes and returns the rewritten message.
    fn remove(raw: &[u8], which: &[usize]) -> String {
        let msg = Message::scan(raw, false).unwrap();
        let mut set = RouteSet::collect(&msg).unwrap();
        for &i in which {
            set.entries[i].removed = true;
        }
        let mut edits = Edits::new();
        set.removal_edits(&msg, &mut edits);
        let mut buf = vec![0; 1024];
        let mut out = Out::new(&mut buf);
        apply_range(&mut out, raw, Span::new(0, raw.len()), &mut edits);
        let n = out.finish().unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    const MSG: &[u8] = b"BYE sip:a@b SIP/2.0\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\n\
To: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p4;lr>,<sip:p5;lr>, <sip:p6;lr>\r\n\r\n";

    #[test]
    fn collects_values_across_lines() {
        let msg = Message::scan(MSG, false).unwrap();
        let set = RouteSet::collect(&msg).unwrap();
        let hosts: Vec<&[u8]> = set
            .entries
            .iter()
            .map(|e| e.uri.host.span.of(MSG))
            .collect();
        assert_eq!(hosts, vec![&b"p1"[..], b"p2", b"p3", b"p4", b"p5", b"p6"]);
        assert!(set.entries.iter().all(|e| e.uri.lr));
        assert_eq!(set.last_line(), Some(3));
    }

    #[test]
    fn removing_values() {
        let cases: &[(&[usize], &str)] = &[
            (
                &[0],
                "Route: <sip:p2;lr>\r\nTo: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p4;lr>,<sip:p5;lr>, <sip:p6;lr>",
            ),
            (
                &[0, 1],
                "To: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p4;lr>,<sip:p5;lr>, <sip:p6;lr>",
            ),
            (
                &[0, 1, 2],
                "To: x\r\nroute: <sip:p4;lr>,<sip:p5;lr>, <sip:p6;lr>",
            ),
            (
                &[5],
                "Route: <sip:p1;lr>, <sip:p2;lr>\r\nTo: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p4;lr>,<sip:p5;lr>",
            ),
            (
                &[4],
                "Route: <sip:p1;lr>, <sip:p2;lr>\r\nTo: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p4;lr>, <sip:p6;lr>",
            ),
            (
                &[3, 4],
                "Route: <sip:p1;lr>, <sip:p2;lr>\r\nTo: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p6;lr>",
            ),
            (
                &[0, 5],
                "Route: <sip:p2;lr>\r\nTo: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p4;lr>,<sip:p5;lr>",
            ),
            (
                &[3, 5],
                "Route: <sip:p1;lr>, <sip:p2;lr>\r\nTo: x\r\nRoute: <sip:p3;lr>\r\nroute: <sip:p5;lr>",
            ),
        ];
        for (which, want) in cases {
            let got = remove(MSG, which);
            let want = format!("BYE sip:a@b SIP/2.0\r\n{want}\r\n\r\n");
            assert_eq!(got, want, "removing {which:?}");
        }
    }

    #[test]
    fn malformed_and_too_many() {
        let msg = Message::scan(b"BYE sip:a@b SIP/2.0\r\nRoute: garbage\r\n\r\n", false).unwrap();
        assert_eq!(RouteSet::collect(&msg).err(), Some(RouteError::Malformed));
        let mut raw = b"BYE sip:a@b SIP/2.0\r\nRoute: ".to_vec();
        for i in 0..=MAX_ROUTES {
            raw.extend_from_slice(format!("<sip:p{i};lr>,").as_bytes());
        }
        raw.extend_from_slice(b"<sip:last>\r\n\r\n");
        let msg = Message::scan(&raw, false).unwrap();
        assert_eq!(RouteSet::collect(&msg).err(), Some(RouteError::TooMany));
    }
}
