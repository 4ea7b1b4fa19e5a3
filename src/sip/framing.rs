//! Splitting a byte stream into SIP messages (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1).
//!
//! [`next_frame`] looks at the bytes read so far on a connection, from the start of the next
//! message, and says what they hold: a whole message of `len` bytes, a double-CRLF ping to
//! answer with a single CRLF pong, CRLFs between messages to skip, not enough bytes yet, a
//! header section that cannot be framed (no usable Content-Length: the core answers 400 and
//! the connection is closed), or a message over the size limit (the core answers 513 from what
//! was read, and the connection is closed). It never allocates and never panics.
//!
//! It lives next to the scanner and reads the header section with the scanner's own line and
//! header rules ([`line`](super::line), [`scan::stream_head`](super::scan)): the header block
//! ends where the scanner ends it, a folded or compact Content-Length counts exactly as the
//! core counts it, and two Content-Lengths are never framed by the first one. So a message is
//! split under the same rules it is parsed by, and `Frame::Message(len)` always scans whole.

use super::line::{LineError, end_of_block};
use super::scan::{ScanError, stream_head};

/// What the bytes at the start of a connection's buffer hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes: headers and Content-Length bytes of body.
    Message(usize),
    /// `CRLF CRLF`: a keep-alive ping (4 bytes) to answer with one CRLF.
    Ping,
    /// This many bytes of CRLF between messages, to ignore.
    Skip(usize),
    /// Not enough bytes to decide.
    Partial,
    /// A header section of this many bytes with no usable Content-Length (or that cannot be
    /// read at all: then every byte read so far); the connection closes after the answer.
    Unframed(usize),
    /// The message is larger than the limit; this many bytes (its headers, or as much of them
    /// as fits the limit) are what the core may answer from.
    Oversized(usize),
}

const PING: &[u8] = b"\r\n\r\n";

/// The next frame of `buf`, for messages of at most `limit` bytes.
pub fn next_frame(buf: &[u8], limit: usize) -> Frame {
    match buf.first() {
        None => return Frame::Partial,
        Some(b'\r' | b'\n') => return keepalive(buf),
        Some(_) => {}
    }
    let (headers_end, body) = match stream_head(buf) {
        Ok(head) => head,
        Err(ScanError::UnterminatedHeaders) => return partial(buf, limit),
        Err(_) => return unframed(buf, limit),
    };
    if headers_end > limit {
        return Frame::Oversized(limit);
    }
    let Some(body) = body else {
        return Frame::Unframed(headers_end);
    };
    match headers_end.checked_add(body as usize) {
        Some(total) if total > limit => Frame::Oversized(headers_end),
        Some(total) if total <= buf.len() => Frame::Message(total),
        Some(_) => Frame::Partial,
        None => Frame::Oversized(headers_end),
    }
}

/// No end of the header section yet.
fn partial(buf: &[u8], limit: usize) -> Frame {
    if buf.len() >= limit {
        Frame::Oversized(limit)
    } else {
        Frame::Partial
    }
}

/// A header section the scanner refuses: handed to the core whole when its end is known (the
/// core answers from it), else every byte read so far (a bare CR: no end can be trusted).
fn unframed(buf: &[u8], limit: usize) -> Frame {
    match end_of_block(buf, 0) {
        Ok(end) if end > limit => Frame::Oversized(limit),
        Ok(end) => Frame::Unframed(end),
        Err(LineError::Incomplete) => partial(buf, limit),
        Err(LineError::BareCr) => Frame::Unframed(buf.len().min(limit)),
    }
}

/// Line ends before a message: a ping when they are `CRLF CRLF`, else one to skip.
fn keepalive(buf: &[u8]) -> Frame {
    let prefix = buf.len().min(PING.len());
    if buf[..prefix] == PING[..prefix] {
        return if prefix == PING.len() {
            Frame::Ping
        } else {
            Frame::Partial
        };
    }
    // A single CRLF (or a bare LF) before something else: RFC 3261 §7.5 lets it be ignored.
    if buf.starts_with(b"\r\n") {
        Frame::Skip(2)
    } else {
        Frame::Skip(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 4096;

    const INVITE: &[u8] = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
Content-Length: 4\r\n\r\nbody";

    fn frame(buf: &[u8]) -> Frame {
        next_frame(buf, LIMIT)
    }

    #[test]
    fn a_whole_message_and_its_prefixes() {
        assert_eq!(frame(INVITE), Frame::Message(INVITE.len()));
        for cut in 1..INVITE.len() {
            assert_eq!(frame(&INVITE[..cut]), Frame::Partial, "cut at {cut}");
        }
        let mut two = INVITE.to_vec();
        two.extend_from_slice(INVITE);
        assert_eq!(frame(&two), Frame::Message(INVITE.len()));
    }

    #[test]
    fn content_length_forms() {
        let cases: &[(&[u8], Frame)] = &[
            (b"BYE s SIP/2.0\r\nl: 0\r\n\r\n", Frame::Message(23)),
            (
                b"BYE s SIP/2.0\r\ncontent-length:0\r\n\r\n",
                Frame::Message(35),
            ),
            (
                b"BYE s SIP/2.0\r\nContent-Length \t:  1 \r\n\r\nx",
                Frame::Message(41),
            ),
            (b"BYE s SIP/2.0\nContent-Length: 0\n\n", Frame::Message(33)),
            (
                b"BYE s SIP/2.0\r\nX-Content-Length: 0\r\n\r\n",
                Frame::Unframed(38),
            ),
            (b"BYE s SIP/2.0\r\nSubject: a\r\n\r\n", Frame::Unframed(29)),
            (
                b"BYE s SIP/2.0\r\nContent-Length: x\r\n\r\n",
                Frame::Unframed(36),
            ),
            (
                b"BYE s SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
                Frame::Unframed(46),
            ),
            (
                b"BYE s SIP/2.0\r\nSubject: a\r\n Content-Length: 0\r\n\r\n",
                Frame::Unframed(49),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(frame(bytes), *want, "{}", String::from_utf8_lossy(bytes));
        }
    }

    /// Issue 12 item 5: the framer reads the head by the scanner's rules.
    #[test]
    fn framing_follows_the_scanner() {
        let cases: &[(&[u8], Frame)] = &[
            // A folded Content-Length counts, as the scanner counts it.
            (
                b"BYE s SIP/2.0\r\nContent-Length:\r\n 1\r\n\r\nx",
                Frame::Message(39),
            ),
            // Two Content-Lengths: never framed by the first (RFC 4475 §3.3.9).
            (
                b"BYE s SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nxy",
                Frame::Unframed(42),
            ),
            // Issue 11's smuggle: the block ends at the bare LF, where there is no length.
            (
                b"BYE s SIP/2.0\r\nTo: x\r\n\nContent-Length: 2\r\n\r\nxy",
                Frame::Unframed(23),
            ),
            // `\n\r\n`: the same.
            (
                b"BYE s SIP/2.0\r\nTo: x\n\r\nContent-Length: 2\r\n\r\nxy",
                Frame::Unframed(23),
            ),
            // A bare CR: no end can be trusted; everything read goes to the core (400).
            (b"BYE s SIP/2.0\r \nl: 0\r\n\r\n", Frame::Unframed(24)),
            // A header line that is not one: the block still ends where the scanner ends it.
            (
                b"BYE s SIP/2.0\r\nno colon\r\nl: 0\r\n\r\n",
                Frame::Unframed(33),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(frame(bytes), *want, "{}", String::from_utf8_lossy(bytes));
            if let Frame::Message(len) = want {
                let msg = crate::sip::Message::scan(&bytes[..*len], true).expect("scans whole");
                assert_eq!(msg.body().end(), *len);
            }
        }
    }

    #[test]
    fn keepalives() {
        assert_eq!(frame(b"\r\n\r\n"), Frame::Ping);
        assert_eq!(frame(b"\r\n\r\nINVITE"), Frame::Ping);
        assert_eq!(frame(b"\r\n\r"), Frame::Partial);
        assert_eq!(frame(b"\r\n"), Frame::Partial);
        assert_eq!(frame(b"\r"), Frame::Partial);
        assert_eq!(frame(b"\r\nINVITE"), Frame::Skip(2));
        assert_eq!(frame(b"\nINVITE"), Frame::Skip(1));
        assert_eq!(frame(b"\r\r"), Frame::Skip(1));
    }

    #[test]
    fn limits() {
        let big = format!("MESSAGE s SIP/2.0\r\nContent-Length: {LIMIT}\r\n\r\n");
        assert_eq!(frame(big.as_bytes()), Frame::Oversized(big.len()));
        let endless = vec![b'a'; LIMIT];
        assert_eq!(frame(&endless), Frame::Oversized(LIMIT));
        assert_eq!(frame(&endless[..LIMIT - 1]), Frame::Partial);
        let mut long_headers = b"MESSAGE s SIP/2.0\r\nX: ".to_vec();
        long_headers.resize(LIMIT + 10, b'a');
        long_headers.extend_from_slice(b"\r\n\r\n");
        assert_eq!(frame(&long_headers), Frame::Oversized(LIMIT));
        let head_len = "MESSAGE s SIP/2.0\r\nContent-Length: 0000\r\n\r\n".len();
        let room = LIMIT - head_len;
        let mut exact =
            format!("MESSAGE s SIP/2.0\r\nContent-Length: {room:04}\r\n\r\n").into_bytes();
        exact.resize(LIMIT, b'x');
        assert_eq!(frame(&exact), Frame::Message(LIMIT));
    }

    #[test]
    fn garbage_never_panics() {
        let samples: &[&[u8]] = &[
            b":",
            b"\n\n",
            b"a\n\n",
            b"a:\n",
            b"\xff\xfe\r\n\r\n",
            b"a\r\n\r",
        ];
        for s in samples {
            let _ = frame(s);
            let _ = next_frame(s, 1);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// One item on the wire: a message with this body, or a ping, or a stray CRLF.
        #[derive(Clone, Debug)]
        enum Item {
            Message(Vec<u8>),
            Ping,
            Crlf,
        }

        fn item() -> impl Strategy<Value = Item> {
            prop_oneof![
                6 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Item::Message),
                1 => Just(Item::Ping),
                1 => Just(Item::Crlf),
            ]
        }

        fn wire(item: &Item, n: usize) -> Vec<u8> {
            match item {
                Item::Message(body) => {
                    let mut m = format!(
                        "MESSAGE sip:a@b SIP/2.0\r\nCall-ID: {n}\r\nl: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    m.extend_from_slice(body);
                    m
                }
                Item::Ping => b"\r\n\r\n".to_vec(),
                Item::Crlf => b"\r\n".to_vec(),
            }
        }

        /// What a connection's read buffer does, without the runtime: bytes read and not yet
        /// consumed.
        #[derive(Default)]
        struct ReadBuffer(Vec<u8>);

        impl ReadBuffer {
            fn read_from(&mut self, r: &mut impl std::io::Read) -> std::io::Result<Option<usize>> {
                let mut chunk = [0u8; 256];
                let n = r.read(&mut chunk)?;
                self.0.extend_from_slice(&chunk[..n]);
                Ok(Some(n))
            }
            fn data(&self) -> &[u8] {
                &self.0
            }
            fn slice(&self, len: usize) -> &[u8] {
                &self.0[..len]
            }
            fn consume(&mut self, n: usize) {
                self.0.drain(..n.min(self.0.len()));
            }
        }

        /// A reader that hands out the stream in the given chunk sizes.
        struct Chunked<'a> {
            bytes: &'a [u8],
            sizes: std::iter::Cycle<std::vec::IntoIter<usize>>,
        }

        impl std::io::Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self
                    .sizes
                    .next()
                    .unwrap_or(1)
                    .min(buf.len())
                    .min(self.bytes.len());
                buf[..n].copy_from_slice(&self.bytes[..n]);
                self.bytes = &self.bytes[n..];
                Ok(n)
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            /// However the stream is cut into reads, its messages come out whole and in
            /// order, whatever pings and stray CRLFs sit between them, and nothing else does.
            #[test]
            fn any_cut_of_a_stream_frames_the_same(
                items in proptest::collection::vec(item(), 1..12),
                sizes in proptest::collection::vec(1usize..200, 1..8),
            ) {
                let mut stream = Vec::new();
                let mut want = Vec::new();
                for (n, it) in items.iter().enumerate() {
                    let bytes = wire(it, n);
                    // A stray CRLF right before another stray CRLF reads as a ping.
                    if !matches!(it, Item::Crlf) {
                        want.push(bytes.clone());
                    }
                    stream.extend_from_slice(&bytes);
                }
                let mut reader = Chunked { bytes: &stream, sizes: sizes.into_iter().cycle() };
                let mut buf = ReadBuffer::default();
                let mut got = Vec::new();
                while let Ok(Some(n)) = buf.read_from(&mut reader) {
                    loop {
                        match next_frame(buf.data(), LIMIT) {
                            Frame::Message(len) => got.push(buf.slice(len).to_vec()),
                            Frame::Ping => got.push(b"\r\n\r\n".to_vec()),
                            Frame::Skip(_) => {}
                            Frame::Partial => break,
                            other => prop_assert!(false, "{other:?}"),
                        }
                        let step = match next_frame(buf.data(), LIMIT) {
                            Frame::Message(len) | Frame::Skip(len) => len,
                            _ => 4,
                        };
                        buf.consume(step);
                    }
                    if n == 0 {
                        break;
                    }
                }
                let messages = |v: &[Vec<u8>]| -> Vec<Vec<u8>> {
                    v.iter().filter(|m| m[0] != b'\r').cloned().collect()
                };
                prop_assert_eq!(messages(&got), messages(&want));
            }

            /// Any bytes, any limit: no panic, and every length stays within the input and
            /// the limit.
            #[test]
            fn any_bytes_frame_within_bounds(
                bytes in proptest::collection::vec(any::<u8>(), 0..600),
                limit in 1usize..700,
            ) {
                match next_frame(&bytes, limit) {
                    Frame::Message(len) => prop_assert!(len <= bytes.len() && len <= limit),
                    Frame::Skip(n) => prop_assert!(n >= 1 && n <= bytes.len()),
                    Frame::Ping => prop_assert!(bytes.starts_with(b"\r\n\r\n")),
                    Frame::Unframed(len) => prop_assert!(len <= bytes.len() && len <= limit),
                    Frame::Oversized(len) => prop_assert!(len <= bytes.len().max(limit)),
                    Frame::Partial => prop_assert!(bytes.len() < limit || bytes.first().is_some_and(|b| *b == b'\r' || *b == b'\n')),
                }
            }
        }
    }
}
