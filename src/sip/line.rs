//! The one rule for where a line ends, shared by the datagram scanner and the stream framer.
//!
//! RFC 3261 §7 requires CRLF; §7.5 and the HTTP heritage (RFC 2616 §19.3) let a receiver
//! tolerate a bare LF. ferrovia accepts both, identically everywhere: a line ends at the first
//! LF, and a CR directly before that LF belongs to the line end. A CR anywhere else in the
//! start line or the header block (a bare CR, as in `SIP/2.0\r \n`) is refused: some readers
//! end a line there and others do not, so no canonical form exists without guessing. The
//! header block ends at the first empty line (`CRLF` or a bare `LF`). What the proxy forwards
//! always uses CRLF ([`Line::bare_lf`] tells the proxy when the input did not).

use memchr::memchr2;

/// One line: where its content ends and where the next line starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The end of the line's content (before `CRLF` or the bare `LF`).
    pub(crate) end: usize,
    /// The first byte of the next line.
    pub(crate) next: usize,
    /// The line ended with a bare `LF` (not canonical: the proxy writes CRLF instead).
    pub(crate) bare_lf: bool,
}

impl Line {
    /// A line with no content: the end of the header block.
    pub(crate) fn is_empty_at(self, pos: usize) -> bool {
        self.end == pos
    }
}

/// Why no line could be read at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    /// No line end yet (a stream may bring it with the next read).
    Incomplete,
    /// A CR not followed by LF.
    BareCr,
}

/// The line starting at `pos`.
#[inline(always)]
pub(crate) fn line_at(buf: &[u8], pos: usize) -> Result<Line, LineError> {
    let rest = buf.get(pos..).ok_or(LineError::Incomplete)?;
    let i = pos + memchr2(b'\r', b'\n', rest).ok_or(LineError::Incomplete)?;
    if buf[i] == b'\n' {
        return Ok(Line {
            end: i,
            next: i + 1,
            bare_lf: true,
        });
    }
    match buf.get(i + 1) {
        Some(b'\n') => Ok(Line {
            end: i,
            next: i + 2,
            bare_lf: false,
        }),
        Some(_) => Err(LineError::BareCr),
        None => Err(LineError::Incomplete),
    }
}

/// The line at `pos` ended by its LF alone, a bare CR inside it kept as content: only for
/// reading a refused start line far enough to answer it (the message is refused anyway).
pub(crate) fn line_to_lf(buf: &[u8], pos: usize) -> Option<Line> {
    let nl = pos + memchr::memchr(b'\n', buf.get(pos..)?)?;
    let crlf = nl > pos && buf[nl - 1] == b'\r';
    Some(Line {
        end: nl - usize::from(crlf),
        next: nl + 1,
        bare_lf: !crlf,
    })
}

/// Where the body starts: just past the first empty line at or after `pos`, which must be
/// the start of a line. `Err(Incomplete)` when no empty line has arrived yet.
pub(crate) fn end_of_block(buf: &[u8], mut pos: usize) -> Result<usize, LineError> {
    loop {
        let line = line_at(buf, pos)?;
        if line.is_empty_at(pos) {
            return Ok(line.next);
        }
        pos = line.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends() {
        // (bytes, position, expected) — RFC 3261 §7: CRLF; §7.5 tolerance: a bare LF.
        let cases: &[(&[u8], usize, Result<Line, LineError>)] = &[
            (
                b"ab\r\ncd",
                0,
                Ok(Line {
                    end: 2,
                    next: 4,
                    bare_lf: false,
                }),
            ),
            (
                b"ab\ncd",
                0,
                Ok(Line {
                    end: 2,
                    next: 3,
                    bare_lf: true,
                }),
            ),
            (
                b"\r\n",
                0,
                Ok(Line {
                    end: 0,
                    next: 2,
                    bare_lf: false,
                }),
            ),
            (
                b"\n",
                0,
                Ok(Line {
                    end: 0,
                    next: 1,
                    bare_lf: true,
                }),
            ),
            (b"ab", 0, Err(LineError::Incomplete)),
            (b"ab\r", 0, Err(LineError::Incomplete)),
            (b"ab", 7, Err(LineError::Incomplete)),
            // The request line of the issue: `SIP/2.0\r \n`.
            (b"SIP/2.0\r \n", 0, Err(LineError::BareCr)),
            (b"a\rb\r\n", 0, Err(LineError::BareCr)),
            (b"\r\r\n", 0, Err(LineError::BareCr)),
        ];
        for (bytes, pos, want) in cases {
            assert_eq!(
                line_at(bytes, *pos),
                *want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn the_block_ends_at_the_first_empty_line() {
        let cases: &[(&[u8], Result<usize, LineError>)] = &[
            (b"A\r\nB: 1\r\n\r\nbody", Ok(11)),
            (b"A\nB: 1\n\nbody", Ok(8)),
            // `\r\n\n`: the bare LF after a CRLF line is the empty line (the issue's smuggle).
            (b"A\r\nB: 1\r\n\nC: 2\r\n\r\n", Ok(10)),
            // `\n\r\n`: a line ending in a bare LF, then an empty CRLF line.
            (b"A\r\nB: 1\n\r\nC: 2\r\n\r\n", Ok(10)),
            (b"A\r\nB: 1\r\n", Err(LineError::Incomplete)),
            (b"A\r\nB: 1\r\n \r\n", Err(LineError::Incomplete)),
            (b"A\r\nB: 1\r\r\n\r\n", Err(LineError::BareCr)),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                end_of_block(bytes, 0),
                *want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
