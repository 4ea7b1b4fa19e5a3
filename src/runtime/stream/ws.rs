//! A WebSocket connection's state (RFC 6455, RFC 7118) and the step that takes one frame from
//! the front of its read buffer. Frames are unmasked in place; a fragmented message is
//! gathered in place at the front of the buffer (each fragment's header is cut out, the
//! bytes behind moved up), so every SIP message reaches the core as one contiguous slice of
//! the read buffer, and nothing is allocated per message.

use crate::websocket::{CloseCode, Opcode, ParsedFrame, parse_frame, unmask};

use super::buffer::ReadBuffer;

/// The longest frame header (RFC 6455 §5.2): the read buffer holds a whole message and one
/// header more.
pub(crate) const MAX_HEADER: usize = 14;

/// One WebSocket connection's state.
#[derive(Debug, Default)]
pub(crate) struct WsSession {
    /// The HTTP upgrade was accepted; frames follow.
    pub(crate) open: bool,
    /// Bytes of a fragmented message gathered at the front of the read buffer.
    gathered: usize,
    /// A fragmented message is being read (its first frame was text or binary, not final).
    fragmented: bool,
}

/// What the frame at the front of the buffer (behind any gathered fragments) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WsStep {
    /// More bytes are needed.
    Partial,
    /// A whole SIP message at `data()[start..start + len]`; consume `consumed` after it.
    Message {
        start: usize,
        len: usize,
        consumed: usize,
    },
    /// A ping: answer with a pong carrying `payload[..len]` (§5.5.2), then consume.
    Ping {
        payload: [u8; 125],
        len: usize,
        consumed: usize,
    },
    /// Nothing to do but consume (a pong, or a fragment gathered).
    Skip(usize),
    /// The peer closes with this code (RFC 6455 §5.5.1); echo it and close.
    Close(CloseCode),
    /// The peer broke the protocol or a limit: close with this code.
    Fail(CloseCode),
}

impl WsSession {
    /// Takes the next frame from `rx` (unmasking it in place) for messages of at most
    /// `limit` bytes (RFC 7118 §5: one SIP message per WebSocket message).
    pub(crate) fn step(&mut self, rx: &mut ReadBuffer, limit: usize) -> WsStep {
        let at = self.gathered;
        let frame = match parse_frame(rx.data().get(at..).unwrap_or_default(), true) {
            ParsedFrame::Partial => return WsStep::Partial,
            ParsedFrame::Invalid(code) => return WsStep::Fail(code),
            ParsedFrame::Frame(f) => f,
        };
        // A frame, or the message it adds to, over the limit: 1009 without waiting for it.
        let too_big =
            !frame.opcode.is_control() && frame.payload_len > (limit.saturating_sub(at)) as u64;
        if too_big {
            return WsStep::Fail(CloseCode::TOO_BIG);
        }
        let Some(total) = frame.total_len() else {
            return WsStep::Fail(CloseCode::TOO_BIG);
        };
        if rx.data().len() < at + total {
            return WsStep::Partial;
        }
        let (start, len) = (at + frame.header_len, total - frame.header_len);
        if let (Some(key), Some(payload)) = (frame.mask, rx.data_mut().get_mut(start..start + len))
        {
            unmask(payload, key);
        }
        self.after(frame.opcode, frame.fin, rx, (start, len, total))
    }

    /// Acts on a whole, unmasked frame at `start - header`.
    fn after(
        &mut self,
        opcode: Opcode,
        fin: bool,
        rx: &mut ReadBuffer,
        (start, len, total): (usize, usize, usize),
    ) -> WsStep {
        let at = self.gathered;
        match opcode {
            // Control frames may come between fragments (§5.4): they are cut out of the
            // buffer behind the gathered part (at the front, simply consumed).
            Opcode::Ping => {
                let mut payload = [0u8; 125];
                let body = rx.data().get(start..start + len).unwrap_or_default();
                let len = body.len().min(125);
                payload[..len].copy_from_slice(&body[..len]);
                WsStep::Ping {
                    payload,
                    len,
                    consumed: self.drop_control(rx, at, total),
                }
            }
            Opcode::Pong => WsStep::Skip(self.drop_control(rx, at, total)),
            Opcode::Close => WsStep::Close(close_code(rx.data().get(start..start + len))),
            Opcode::Text | Opcode::Binary if self.fragmented => {
                WsStep::Fail(CloseCode::PROTOCOL_ERROR) // §5.4: a new message inside one
            }
            Opcode::Continuation if !self.fragmented => WsStep::Fail(CloseCode::PROTOCOL_ERROR),
            Opcode::Text | Opcode::Binary if fin => WsStep::Message {
                start,
                len,
                consumed: total,
            },
            _ => self.gather(fin, rx, at, total - len, len),
        }
    }

    /// Removes a control frame of `total` bytes at `at`; returns what is left to consume.
    fn drop_control(&self, rx: &mut ReadBuffer, at: usize, total: usize) -> usize {
        if at == 0 {
            return total;
        }
        rx.cut(at, total);
        0
    }

    /// Appends a fragment to the gathered message by cutting its header out; the message is
    /// whole after the final one.
    fn gather(
        &mut self,
        fin: bool,
        rx: &mut ReadBuffer,
        at: usize,
        header: usize,
        len: usize,
    ) -> WsStep {
        rx.cut(at, header);
        self.gathered = at + len;
        self.fragmented = !fin;
        if !fin {
            return WsStep::Skip(0);
        }
        let message = self.gathered;
        self.gathered = 0;
        WsStep::Message {
            start: 0,
            len: message,
            consumed: message,
        }
    }
}

/// The status code of a close frame's payload (RFC 6455 §5.5.1), 1005 when it has none; a
/// one-byte payload is malformed (1002).
fn close_code(payload: Option<&[u8]>) -> CloseCode {
    match payload {
        Some([hi, lo, ..]) => CloseCode(u16::from_be_bytes([*hi, *lo])),
        Some([_]) => CloseCode::PROTOCOL_ERROR,
        _ => CloseCode::NO_STATUS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::unmask;

    fn client_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let key = [0x11, 0x22, 0x33, 0x44];
        let mut v = vec![(u8::from(fin) << 7) | op, 0x80 | payload.len() as u8];
        v.extend_from_slice(&key);
        let mut p = payload.to_vec();
        unmask(&mut p, key);
        v.extend_from_slice(&p);
        v
    }

    fn buffer(bytes: &[u8]) -> ReadBuffer {
        let mut rx = ReadBuffer::new(1024, 1024);
        let mut src = bytes;
        rx.read_from(&mut src).unwrap();
        rx
    }

    /// Runs steps until the buffer needs more, collecting messages as strings.
    fn run(ws: &mut WsSession, rx: &mut ReadBuffer, limit: usize) -> (Vec<String>, Option<WsStep>) {
        let mut out = Vec::new();
        loop {
            match ws.step(rx, limit) {
                WsStep::Partial => return (out, None),
                WsStep::Message {
                    start,
                    len,
                    consumed,
                } => {
                    out.push(String::from_utf8_lossy(&rx.data()[start..start + len]).into());
                    rx.consume(consumed);
                }
                WsStep::Ping {
                    payload,
                    len,
                    consumed,
                } => {
                    out.push(format!("ping:{}", String::from_utf8_lossy(&payload[..len])));
                    rx.consume(consumed);
                }
                WsStep::Skip(n) => rx.consume(n),
                other => return (out, Some(other)),
            }
        }
    }

    #[test]
    fn whole_fragmented_and_interleaved_messages() {
        let mut bytes = client_frame(true, 1, b"OPTIONS one");
        bytes.extend(client_frame(false, 2, b"INVITE "));
        bytes.extend(client_frame(true, 9, b"hb"));
        bytes.extend(client_frame(false, 0, b"in three "));
        bytes.extend(client_frame(true, 0, b"parts"));
        bytes.extend(client_frame(true, 9, b"p2"));
        let mut rx = buffer(&bytes);
        let mut ws = WsSession::default();
        let (out, end) = run(&mut ws, &mut rx, 100);
        assert_eq!(
            out,
            ["OPTIONS one", "ping:hb", "INVITE in three parts", "ping:p2"]
        );
        assert_eq!(end, None);
        assert!(rx.data().is_empty());
    }

    #[test]
    fn partial_frames_wait_and_limits_close_with_1009() {
        let bytes = client_frame(true, 1, b"REGISTER");
        let mut rx = buffer(&bytes[..bytes.len() - 1]);
        let mut ws = WsSession::default();
        assert_eq!(ws.step(&mut rx, 100), WsStep::Partial);
        let mut rx = buffer(&bytes);
        assert_eq!(ws.step(&mut rx, 7), WsStep::Fail(CloseCode::TOO_BIG));
        // Fragments that add up past the limit.
        let mut bytes = client_frame(false, 1, b"12345");
        bytes.extend(client_frame(true, 0, b"678"));
        let mut rx = buffer(&bytes);
        let (_, end) = run(&mut WsSession::default(), &mut rx, 7);
        assert_eq!(end, Some(WsStep::Fail(CloseCode::TOO_BIG)));
    }

    proptest::proptest! {
        /// Whatever a peer sends, stepping never panics, always makes progress or stops,
        /// and every message handed out lies inside the buffer and within the limit.
        #[test]
        fn any_bytes_step_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
                                        limit in 1usize..300) {
            let mut rx = buffer(&bytes);
            let mut ws = WsSession::default();
            for _ in 0..1000 {
                let before = rx.data().len();
                match ws.step(&mut rx, limit) {
                    WsStep::Message { start, len, consumed } => {
                        proptest::prop_assert!(start + len <= rx.data().len() && len <= limit);
                        proptest::prop_assert!(consumed > 0);
                        rx.consume(consumed);
                    }
                    WsStep::Ping { consumed, .. } | WsStep::Skip(consumed) => {
                        rx.consume(consumed);
                        proptest::prop_assert!(rx.data().len() < before || consumed == 0);
                    }
                    WsStep::Partial | WsStep::Close(_) | WsStep::Fail(_) => break,
                }
            }
        }

        #[test]
        fn any_bytes_parse_as_an_upgrade_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = crate::websocket::parse_upgrade(&bytes, &[]);
        }
    }

    #[test]
    fn close_and_protocol_errors() {
        let mut rx = buffer(&client_frame(true, 8, &1000u16.to_be_bytes()));
        assert_eq!(
            WsSession::default().step(&mut rx, 100),
            WsStep::Close(CloseCode::NORMAL)
        );
        let mut rx = buffer(&client_frame(true, 8, b""));
        assert_eq!(
            WsSession::default().step(&mut rx, 100),
            WsStep::Close(CloseCode::NO_STATUS)
        );
        let mut rx = buffer(&client_frame(true, 0, b"stray continuation"));
        assert_eq!(
            WsSession::default().step(&mut rx, 100),
            WsStep::Fail(CloseCode::PROTOCOL_ERROR)
        );
        let mut bytes = client_frame(false, 1, b"a");
        bytes.extend(client_frame(true, 1, b"b"));
        let (_, end) = run(&mut WsSession::default(), &mut buffer(&bytes), 100);
        assert_eq!(end, Some(WsStep::Fail(CloseCode::PROTOCOL_ERROR)));
    }
}
