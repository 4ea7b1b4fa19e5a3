//! Splitting a header value into its comma-separated elements (RFC 3261 §7.3.1).
//!
//! Commas inside a quoted string (a display name, a quoted parameter) or inside `<...>`
//! (a URI in a name-addr) do not separate elements.

use memchr::{memchr, memchr3};

use super::Span;
use super::chars::{is_lws, quoted_end, trim_lws_end};

/// An iterator over the elements of one header value, each trimmed, as absolute spans.
/// Empty elements (`a,,b`) are skipped.
#[derive(Clone, Debug)]
pub struct Values<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Values<'a> {
    /// Elements of `buf[value]`.
    pub fn new(buf: &'a [u8], value: Span) -> Values<'a> {
        let end = value.end().min(buf.len());
        Values {
            buf,
            pos: value.start().min(end),
            end,
        }
    }

    /// Where the next element's search starts (used to find the separator after an element).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Values<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        loop {
            while self.pos < self.end && (is_lws(self.buf[self.pos]) || self.buf[self.pos] == b',')
            {
                self.pos += 1;
            }
            if self.pos >= self.end {
                return None;
            }
            let start = self.pos;
            let stop = element_end(self.buf, start, self.end);
            self.pos = stop;
            let end = trim_lws_end(self.buf, start, stop);
            if end > start {
                return Some(Span::new(start, end));
            }
        }
    }
}

/// The offset of the comma ending the element that starts at `i` (or `end`). `memchr3`
/// jumps to the next byte that matters; quoted strings and `<...>` are skipped whole.
fn element_end(buf: &[u8], mut i: usize, end: usize) -> usize {
    while i < end {
        let Some(hit) = memchr3(b',', b'"', b'<', &buf[i..end]) else {
            return end;
        };
        i += hit;
        i = match buf[i] {
            b',' => return i,
            b'"' => quoted_end(buf, i, end).unwrap_or(end),
            _ => memchr(b'>', &buf[i..end]).map_or(end, |gt| i + gt + 1),
        };
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(v: &[u8]) -> Vec<&[u8]> {
        Values::new(v, Span::new(0, v.len()))
            .map(|s| s.of(v))
            .collect()
    }

    #[test]
    fn plain_elements() {
        assert_eq!(
            split(b"SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2"),
            vec![&b"SIP/2.0/UDP a;branch=1"[..], b"SIP/2.0/UDP b;branch=2"]
        );
        assert_eq!(
            split(b"<sip:a;lr>,<sip:b;lr>"),
            vec![&b"<sip:a;lr>"[..], b"<sip:b;lr>"]
        );
        assert_eq!(split(b"one"), vec![&b"one"[..]]);
        assert_eq!(split(b""), Vec::<&[u8]>::new());
        assert_eq!(split(b" , ,a,, b ,"), vec![&b"a"[..], b"b"]);
    }

    #[test]
    fn quotes_and_angles_hide_commas() {
        assert_eq!(
            split(b"\"Doe, John\" <sip:j@x>;tag=1, <sip:k@y>"),
            vec![&b"\"Doe, John\" <sip:j@x>;tag=1"[..], b"<sip:k@y>"]
        );
        assert_eq!(
            split(b"<sip:a@b?subject=x,y>, <sip:c>"),
            vec![&b"<sip:a@b?subject=x,y>"[..], b"<sip:c>"]
        );
        assert_eq!(
            split(b"\"say \\\"hi, there\\\"\" <sip:a>, <sip:b>"),
            vec![&b"\"say \\\"hi, there\\\"\" <sip:a>"[..], b"<sip:b>"]
        );
    }

    #[test]
    fn folded_separators() {
        assert_eq!(
            split(b"<sip:a>,\r\n <sip:b>"),
            vec![&b"<sip:a>"[..], b"<sip:b>"]
        );
    }

    #[test]
    fn unbalanced_input_never_panics() {
        assert_eq!(split(b"\"open, quote"), vec![&b"\"open, quote"[..]]);
        assert_eq!(split(b"<open, angle"), vec![&b"<open, angle"[..]]);
        assert_eq!(split(b"\"trailing\\"), vec![&b"\"trailing\\"[..]]);
    }
}
