//! The one-pass rewriter: a short list of edits applied to the received bytes while they are
//! copied, once, into the caller's output buffer.
//!
//! An [`Edit`] replaces `input[at..skip_to]` with an [`Insert`] (a pure insertion when
//! `at == skip_to`, a pure deletion when the insert is `Nothing`). Edits are sorted by `at`
//! (stably, so several insertions at one offset keep the order they were pushed in) and
//! applied left to right; nothing allocates and nothing panics, whatever the edits say.

use std::fmt::Write as _;
use std::net::IpAddr;

use smallvec::SmallVec;

use crate::sip::Span;

/// The Via parameter naming the connection a request came in on: `;fvc=<id>.<tag>`.
pub(crate) const CONNECTION_PARAM: &[u8] = b";fvc=";

/// What an edit writes in place of the bytes it skips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert<'a> {
    Nothing,
    /// Fixed bytes: a pre-rendered Record-Route line, `\r\n`, a header name.
    Bytes(&'a [u8]),
    /// Bytes copied from elsewhere in the input (a Route URI moved into the Request-URI).
    Copy(Span),
    /// A Via line: `prefix` (ends in `;branch=z9hG4bKfv`), the branch hash in hex, then for a
    /// request that came in on a connection `;fvc=<id hex>.<tag hex>`, then CRLF.
    Via {
        prefix: &'a [u8],
        hash: u64,
        connection: Option<(u64, u32)>,
        /// Further parameters before the CRLF (the media marker, `;fm=...`), usually empty.
        media: &'a [u8],
    },
    /// `prefix`, a decimal number, `suffix`: `=5060`, `Max-Forwards: 70\r\n`, a value.
    Number {
        prefix: &'static [u8],
        n: u32,
        suffix: &'static [u8],
    },
    /// `;received=<address>` (RFC 3261 §18.2.1; IPv6 without brackets, §25.1).
    Received(IpAddr),
    /// An address alone (replacing an existing `received` value).
    Ip(IpAddr),
    /// `Route: <` + a URI copied from the input + `>\r\n` (RFC 3261 §16.6 step 6).
    RouteLine(Span),
    /// `;tag=` + a 16-digit hex tag (a stateless To tag, RFC 3261 §8.2.7).
    Tag(u64),
    /// A rewritten Contact URI: `sip:<token>@<host:port>`, keeping the original's `transport`
    /// parameter (copied from the input), `sips:` for a `sips:` original, and in angle
    /// brackets when the original had none (so the parameter stays in the URI).
    ContactUri {
        token: crate::contact::ContactToken,
        host: &'a [u8],
        transport: Option<Span>,
        secure: bool,
        angle: bool,
    },
}

/// Replace `input[at..skip_to]` with `insert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edit<'a> {
    pub at: u32,
    pub skip_to: u32,
    pub insert: Insert<'a>,
}

impl<'a> Edit<'a> {
    pub(super) fn insert(at: usize, insert: Insert<'a>) -> Edit<'a> {
        Edit {
            at: at as u32,
            skip_to: at as u32,
            insert,
        }
    }

    pub(super) fn replace(span: Span, insert: Insert<'a>) -> Edit<'a> {
        Edit {
            at: span.start,
            skip_to: span.end,
            insert,
        }
    }

    pub(super) fn delete(span: Span) -> Edit<'a> {
        Edit::replace(span, Insert::Nothing)
    }
}

/// The edits of one message. Sixteen inline cover every request the proxy forwards
/// (Record-Route ×2, Via, Max-Forwards, received, rport, Request-URI, Route removals and
/// one Route append, Content-Length) with room for rewritten Contacts; more spill to the
/// heap but stay correct.
pub(crate) type Edits<'a> = SmallVec<[Edit<'a>; 16]>;

/// A bounded writer over the caller's buffer; remembers overflow instead of panicking.
pub(crate) struct Out<'o> {
    buf: &'o mut [u8],
    len: usize,
    overflow: bool,
}

impl<'o> Out<'o> {
    pub(super) fn new(buf: &'o mut [u8]) -> Out<'o> {
        Out {
            buf,
            len: 0,
            overflow: false,
        }
    }

    pub(super) fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflow = true,
        }
    }

    pub(super) fn put_u32(&mut self, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }

    pub(super) fn put_hex64(&mut self, n: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 16];
        for (i, c) in text.iter_mut().enumerate() {
            *c = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
        }
        self.put(&text);
    }

    /// Hex without leading zeros (at least one digit).
    pub(super) fn put_hex_short(&mut self, n: u64) {
        let digits = (16 - n.leading_zeros() as usize / 4).max(1);
        let mut text = [0u8; 16];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, c) in text[..digits].iter_mut().enumerate() {
            *c = HEX[((n >> (4 * (digits - 1 - i))) & 0xf) as usize];
        }
        self.put(&text[..digits]);
    }

    pub(super) fn put_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.put(b".");
                    }
                    self.put_u32(u32::from(octet));
                }
            }
            // Display for Ipv6Addr writes into the formatter without allocating; our
            // `write_str` never fails (overflow is recorded instead).
            IpAddr::V6(v6) => {
                let _ = write!(self, "{v6}");
            }
        }
    }

    /// The number of bytes written, or `None` if the buffer was too small.
    pub(super) fn finish(self) -> Option<usize> {
        (!self.overflow).then_some(self.len)
    }
}

impl std::fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}

/// Writes one insert.
fn emit(out: &mut Out<'_>, input: &[u8], insert: &Insert<'_>) {
    match *insert {
        Insert::Nothing => {}
        Insert::Bytes(bytes) => out.put(bytes),
        Insert::Copy(span) => out.put(span.of(input)),
        Insert::Via {
            prefix,
            hash,
            connection,
            media,
        } => {
            out.put(prefix);
            out.put_hex64(hash);
            if let Some((id, tag)) = connection {
                out.put(CONNECTION_PARAM);
                out.put_hex_short(id);
                out.put(b".");
                out.put_hex_short(u64::from(tag));
            }
            out.put(media);
            out.put(b"\r\n");
        }
        Insert::Number { prefix, n, suffix } => {
            out.put(prefix);
            out.put_u32(n);
            out.put(suffix);
        }
        Insert::Received(ip) => {
            out.put(b";received=");
            out.put_ip(ip);
        }
        Insert::Ip(ip) => out.put_ip(ip),
        Insert::RouteLine(span) => {
            out.put(b"Route: <");
            out.put(span.of(input));
            out.put(b">\r\n");
        }
        Insert::Tag(tag) => {
            out.put(b";tag=");
            out.put_hex64(tag);
        }
        Insert::ContactUri {
            token,
            host,
            transport,
            secure,
            angle,
        } => {
            out.put(if angle { b"" } else { b"<" });
            out.put(if secure { b"sips:" } else { b"sip:" });
            out.put(token.as_bytes());
            out.put(b"@");
            out.put(host);
            if let Some(t) = transport {
                out.put(b";transport=");
                out.put(t.of(input));
            }
            out.put(if angle { b"" } else { b">" });
        }
    }
}

/// Copies `input[range]` into `out`, applying `edits` (sorted here, stably). Edits outside the
/// range, or overlapping an earlier one, are clamped rather than trusted.
// Forwarded messages go through `canonical::write`; this stays for plain copies.
#[allow(dead_code)]
pub(crate) fn apply_range(out: &mut Out<'_>, input: &[u8], range: Span, edits: &mut [Edit<'_>]) {
    apply_range_crlf(out, input, range, edits, 0);
}

/// [`apply_range`], writing every bare LF of `input[..crlf_until]` that is copied as CRLF
/// (the canonical header block, `proxy::canonical`). With `crlf_until` 0 it is a plain copy.
pub(crate) fn apply_range_crlf(
    out: &mut Out<'_>,
    input: &[u8],
    range: Span,
    edits: &mut [Edit<'_>],
    crlf_until: usize,
) {
    sort_stable(edits);
    let end = range.end().min(input.len());
    let mut pos = range.start().min(end);
    for edit in edits.iter() {
        let at = (edit.at as usize).clamp(pos, end);
        let skip_to = (edit.skip_to as usize).clamp(at, end);
        copy(out, input, pos, at, crlf_until);
        emit(out, input, &edit.insert);
        pos = skip_to;
    }
    copy(out, input, pos, end, crlf_until);
}

/// Copies `input[from..to]` (`from <= to <= input.len()`), bare LFs before `crlf_until` as CRLF.
#[inline(always)]
fn copy(out: &mut Out<'_>, input: &[u8], from: usize, to: usize, crlf_until: usize) {
    if from >= crlf_until {
        out.put(&input[from..to]);
    } else {
        copy_crlf(out, input, from, to, crlf_until);
    }
}

/// The rare path of [`copy`]: a message the scanner did not find canonical.
#[cold]
#[inline(never)]
fn copy_crlf(out: &mut Out<'_>, input: &[u8], from: usize, to: usize, crlf_until: usize) {
    let split = to.min(crlf_until);
    let mut seg = from;
    for lf in memchr::memchr_iter(b'\n', &input[from..split]).map(|i| from + i) {
        if lf == 0 || input[lf - 1] != b'\r' {
            out.put(&input[seg..lf]);
            out.put(b"\r\n");
            seg = lf + 1;
        }
    }
    out.put(&input[seg..to]);
}

/// Insertion sort by `at`: stable, allocation-free, and fast for the dozen edits we have.
fn sort_stable(edits: &mut [Edit<'_>]) {
    for i in 1..edits.len() {
        let mut j = i;
        while j > 0 && edits[j - 1].at > edits[j].at {
            edits.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], edits: &mut [Edit<'_>]) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let mut out = Out::new(&mut buf);
        apply_range(&mut out, input, Span::new(0, input.len()), edits);
        let n = out.finish().expect("fits");
        buf.truncate(n);
        buf
    }

    #[test]
    fn edits_apply_in_offset_order() {
        let input = b"0123456789";
        let mut edits = [
            Edit::delete(Span::new(8, 10)),
            Edit::insert(0, Insert::Bytes(b"<")),
            Edit::replace(Span::new(2, 4), Insert::Bytes(b"xx")),
            Edit::insert(0, Insert::Bytes(b"<<")),
        ];
        assert_eq!(run(input, &mut edits), b"<<<01xx4567");
    }

    #[test]
    fn every_insert_kind() {
        let input = b"ab";
        let mut edits = [
            Edit::insert(1, Insert::Copy(Span::new(0, 1))),
            Edit::insert(
                1,
                Insert::Number {
                    prefix: b"=",
                    n: 4_294_967_295,
                    suffix: b"!",
                },
            ),
            Edit::insert(1, Insert::Received("192.0.2.1".parse().unwrap())),
            Edit::insert(1, Insert::Received("2001:db8::1".parse().unwrap())),
            Edit::insert(1, Insert::RouteLine(Span::new(1, 2))),
            Edit::insert(1, Insert::Tag(0xfedc_ba98_7654_3210)),
            Edit::insert(
                1,
                Insert::Via {
                    prefix: b"V",
                    hash: 1,
                    connection: Some((0xa3, 0x1b)),
                    media: b"",
                },
            ),
        ];
        let got = run(input, &mut edits);
        let want = b"aa=4294967295!;received=192.0.2.1;received=2001:db8::1Route: <b>\r\n\
;tag=fedcba9876543210V0000000000000001;fvc=a3.1b\r\nb";
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    }

    #[test]
    fn numbers() {
        for (n, text) in [(0u32, "0"), (7, "7"), (70, "70"), (65535, "65535")] {
            let mut buf = [0u8; 16];
            let mut out = Out::new(&mut buf);
            out.put_u32(n);
            let len = out.finish().unwrap();
            assert_eq!(&buf[..len], text.as_bytes());
        }
    }

    #[test]
    fn short_hex() {
        for (n, text) in [
            (0u64, "0"),
            (0xa, "a"),
            (0x10, "10"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            let mut buf = [0u8; 16];
            let mut out = Out::new(&mut buf);
            out.put_hex_short(n);
            let len = out.finish().unwrap();
            assert_eq!(&buf[..len], text.as_bytes());
        }
    }

    #[test]
    fn bare_lfs_become_crlf_up_to_the_limit() {
        let input = b"A\nB\r\nC\n\nbody\n";
        let mut buf = vec![0u8; 64];
        let mut out = Out::new(&mut buf);
        let mut edits = [Edit::delete(Span::new(2, 5))];
        apply_range_crlf(&mut out, input, Span::new(0, input.len()), &mut edits, 10);
        let n = out.finish().unwrap();
        assert_eq!(&buf[..n], b"A\r\nC\r\n\r\nbody\n");
    }

    #[test]
    fn overflow_is_reported_not_panicked() {
        let mut buf = [0u8; 4];
        let mut out = Out::new(&mut buf);
        apply_range(&mut out, b"0123456789", Span::new(0, 10), &mut []);
        assert_eq!(out.finish(), None);
    }

    #[test]
    fn hostile_edits_are_clamped() {
        let input = b"0123456789";
        let mut edits = [
            Edit::replace(Span::new(2, 6), Insert::Bytes(b"-")),
            Edit::replace(Span::new(4, 5), Insert::Bytes(b"+")), // overlaps the first
            Edit::replace(Span::new(9, 400), Insert::Bytes(b"]")), // past the end
            Edit::replace(Span::new(7, 3), Insert::Bytes(b"?")), // reversed
        ];
        assert_eq!(run(input, &mut edits), b"01-+6?78]");
    }
}
