//! The little the guard reads of a message before the core scans it: whether it is a request,
//! its method class, and the raw header lines. Bytes in, slices out; never allocates or
//! panics. Anything odd is left for the core to judge (and to drop with a reason).

use memchr::arch::all::memchr::One;
use memchr::memchr;

/// The method classes that have limits of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodClass {
    Register = 0,
    Invite = 1,
    Other = 2,
}

/// The class of a request, or `None` for a response (`SIP/…`) or anything that does not
/// start with a method token (keep-alives, garbage: the core drops those).
pub(crate) fn request_class(data: &[u8]) -> Option<MethodClass> {
    let end = memchr(b' ', &data[..data.len().min(32)])?;
    let method = &data[..end];
    if method.is_empty() || method.starts_with(b"SIP/") || !method.iter().all(u8::is_ascii_graphic)
    {
        return None;
    }
    Some(match method {
        b"REGISTER" => MethodClass::Register,
        b"INVITE" => MethodClass::Invite,
        _ => MethodClass::Other,
    })
}

/// The header lines of a message as (name, value) pairs, names and values trimmed of
/// blanks, up to the empty line that ends the headers, for the lines whose name starts with
/// one of `initials`. Lines are found with `memchr`'s word-at-a-time search, which costs a
/// few nanoseconds on a short line where the dispatched SIMD search would cost its setup
/// (lines are 20 to 80 bytes). Folded continuation lines are skipped (a scanner pattern on
/// one is missed, never misread).
pub(crate) struct HeaderLines<'a> {
    data: &'a [u8],
    /// The start of the next line; `None` once the headers are over.
    at: Option<usize>,
    initials: &'static [u8],
}

impl<'a> HeaderLines<'a> {
    /// Every header line.
    #[cfg(test)]
    pub(crate) fn new(data: &'a [u8]) -> HeaderLines<'a> {
        HeaderLines::starting_with(data, b"")
    }

    /// The header lines whose name starts with a byte of `initials` (every line when empty).
    pub(crate) fn starting_with(data: &'a [u8], initials: &'static [u8]) -> HeaderLines<'a> {
        HeaderLines {
            data,
            at: find(b'\n', data).map(|first| first + 1),
            initials,
        }
    }
}

/// The first `byte` in `haystack`, word at a time.
fn find(byte: u8, haystack: &[u8]) -> Option<usize> {
    One::new(byte).find(haystack)
}

impl<'a> Iterator for HeaderLines<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(start) = self.at {
            let rest = &self.data[start..];
            let (line, next) = match find(b'\n', rest) {
                Some(i) => (&rest[..i], Some(start + i + 1)),
                None => (rest, None),
            };
            self.at = next;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(&first) = line.first() else {
                self.at = None; // the empty line: the body follows
                return None;
            };
            if first == b' ' || first == b'\t' {
                continue;
            }
            if !self.initials.is_empty() && !self.initials.contains(&first) {
                continue;
            }
            let Some(colon) = find(b':', line) else {
                continue;
            };
            return Some((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_from_responses_and_garbage() {
        assert_eq!(
            request_class(b"INVITE sip:a@b SIP/2.0\r\n"),
            Some(MethodClass::Invite)
        );
        assert_eq!(
            request_class(b"REGISTER sip:b SIP/2.0\r\n"),
            Some(MethodClass::Register)
        );
        assert_eq!(
            request_class(b"OPTIONS sip:b SIP/2.0\r\n"),
            Some(MethodClass::Other)
        );
        assert_eq!(
            request_class(b"invite sip:b SIP/2.0\r\n"),
            Some(MethodClass::Other)
        );
        assert_eq!(request_class(b"SIP/2.0 200 OK\r\n"), None);
        assert_eq!(request_class(b"\r\n\r\n"), None);
        assert_eq!(request_class(b""), None);
        assert_eq!(request_class(b" INVITE"), None);
        assert_eq!(request_class(&[0xff, b' ', b'x']), None);
        assert_eq!(request_class(&[b'A'; 100]), None);
    }

    #[test]
    fn header_lines_stop_at_the_body() {
        let msg = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nUser-Agent :  friendly-scanner \r\n\
 folded\r\nnocolon\r\nf:<sip:a@b>\nContent-Length: 4\r\n\r\nUser-Agent: body";
        let lines: Vec<(&[u8], &[u8])> = HeaderLines::new(msg).collect();
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"Via", b"x"),
            (b"User-Agent", b"friendly-scanner"),
            (b"f", b"<sip:a@b>"),
            (b"Content-Length", b"4"),
        ];
        assert_eq!(lines, want);
        assert_eq!(HeaderLines::new(b"INVITE").count(), 0);
        assert_eq!(HeaderLines::new(b"INVITE x\r\nA: b").count(), 1);
    }
}
