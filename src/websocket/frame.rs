//! RFC 6455 §5 frames: header parsing over a borrowed buffer, in-place unmasking, and the
//! header of the frames a server sends (FIN set, unmasked: §5.1).

/// A frame's opcode (RFC 6455 §5.2, §11.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Control frames (RFC 6455 §5.5): close, ping, pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A close status code (RFC 6455 §7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const NORMAL: CloseCode = CloseCode(1000);
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// A close frame with no status code (§7.1.5); never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    pub const TOO_BIG: CloseCode = CloseCode(1009);

    /// The code to answer a peer's close with (RFC 6455 §5.5.1: echo it): itself when it may
    /// be sent (§7.4.1–7.4.2: 1000–1003, 1007–1014, 3000–4999), none for 1005 (no code), else
    /// 1002 — a peer may not send 1004–1006, 1015 or an unassigned code.
    pub fn echo(self) -> CloseCode {
        match self.0 {
            1000..=1003 | 1007..=1014 | 3000..=4999 => self,
            1005 => CloseCode::NO_STATUS,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// A parsed frame header; the payload is `buf[header_len..header_len + payload_len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: Opcode,
    /// The masking key (RFC 6455 §5.3), when the frame is masked.
    pub mask: Option<[u8; 4]>,
    pub header_len: usize,
    pub payload_len: u64,
}

impl Frame {
    /// Header plus payload, when it fits a `usize`.
    pub fn total_len(&self) -> Option<usize> {
        usize::try_from(self.payload_len)
            .ok()
            .and_then(|p| p.checked_add(self.header_len))
    }
}

/// What the front of a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParsedFrame {
    /// Not even a whole header yet.
    Partial,
    Frame(Frame),
    /// A frame the peer must not send: close with this code.
    Invalid(CloseCode),
}

/// Parses the frame header at the front of `buf` (RFC 6455 §5.2). `from_client` requires a
/// mask (§5.1: a server closes on an unmasked client frame).
pub fn parse_frame(buf: &[u8], from_client: bool) -> ParsedFrame {
    let [b0, b1, ..] = *buf else {
        return ParsedFrame::Partial;
    };
    if b0 & 0x70 != 0 {
        return ParsedFrame::Invalid(CloseCode::PROTOCOL_ERROR); // RSV bits: no extension agreed
    }
    let Some(opcode) = Opcode::from_bits(b0 & 0x0F) else {
        return ParsedFrame::Invalid(CloseCode::PROTOCOL_ERROR);
    };
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    if masked != from_client {
        return ParsedFrame::Invalid(CloseCode::PROTOCOL_ERROR);
    }
    let (payload_len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(&[hi, lo]) => (u64::from(u16::from_be_bytes([hi, lo])), 4),
            _ => return ParsedFrame::Partial,
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return ParsedFrame::Partial,
        },
        n => (u64::from(n), 2),
    };
    if payload_len >> 63 != 0 {
        return ParsedFrame::Invalid(CloseCode::PROTOCOL_ERROR); // §5.2: the top bit is 0
    }
    // §5.5: control frames are never fragmented and carry at most 125 bytes.
    if opcode.is_control() && (!fin || payload_len > 125) {
        return ParsedFrame::Invalid(CloseCode::PROTOCOL_ERROR);
    }
    let mask = if masked {
        let Some(key) = buf
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        else {
            return ParsedFrame::Partial;
        };
        at += 4;
        Some(key)
    } else {
        None
    };
    ParsedFrame::Frame(Frame {
        fin,
        opcode,
        mask,
        header_len: at,
        payload_len,
    })
}

/// Unmasks (or masks) `payload` in place with `key` (RFC 6455 §5.3).
pub fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// Writes the header of a final, unmasked frame carrying `len` bytes (a server's frame,
/// RFC 6455 §5.1, §5.2) into `out`; returns its length (2, 4 or 10).
pub fn encode_header(opcode: Opcode, len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x80 | opcode.bits();
    match len {
        0..=125 => {
            out[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's frame: masked with `key`.
    fn client_frame(fin: bool, op: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut v = vec![(u8::from(fin) << 7) | op];
        match payload.len() {
            n @ 0..=125 => v.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                v.push(0x80 | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(0x80 | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        v.extend_from_slice(&key);
        let mut p = payload.to_vec();
        unmask(&mut p, key);
        v.extend_from_slice(&p);
        v
    }

    #[test]
    fn rfc6455_masked_hello_parses_and_unmasks() {
        // RFC 6455 §5.7: "A single-frame masked text message".
        let mut bytes = *b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        let ParsedFrame::Frame(f) = parse_frame(&bytes, true) else {
            panic!("not a frame");
        };
        assert_eq!(
            (f.fin, f.opcode, f.header_len, f.payload_len),
            (true, Opcode::Text, 6, 5)
        );
        unmask(&mut bytes[6..], f.mask.unwrap());
        assert_eq!(&bytes[6..], b"Hello");
    }

    #[test]
    fn lengths_of_16_and_64_bits_and_partial_headers() {
        let key = [1, 2, 3, 4];
        for len in [0usize, 125, 126, 65535, 65536, 100_000] {
            let payload = vec![b'x'; len];
            let bytes = client_frame(true, 2, &payload, key);
            let ParsedFrame::Frame(f) = parse_frame(&bytes, true) else {
                panic!("{len}");
            };
            assert_eq!(f.payload_len, len as u64);
            assert_eq!(f.total_len(), Some(bytes.len()));
            for cut in 0..f.header_len {
                assert_eq!(
                    parse_frame(&bytes[..cut], true),
                    ParsedFrame::Partial,
                    "{len} {cut}"
                );
            }
        }
    }

    #[test]
    fn frames_a_peer_must_not_send_close_with_1002() {
        let bad = [
            &b"\x81\x05hello"[..],                 // unmasked from a client
            b"\xC1\x80\0\0\0\0",                   // RSV1 without an extension
            b"\x83\x80\0\0\0\0",                   // reserved opcode
            b"\x09\x80\0\0\0\0",                   // fragmented ping
            b"\x89\xFE\x00\x7E\0\0\0\0",           // ping of 126 bytes
            b"\x82\xFF\x80\0\0\0\0\0\0\0\0\0\0\0", // 64-bit length with the top bit
        ];
        for b in bad {
            assert_eq!(
                parse_frame(b, true),
                ParsedFrame::Invalid(CloseCode::PROTOCOL_ERROR),
                "{b:?}"
            );
        }
        // A server's frames are unmasked; a masked one from the server side is refused.
        assert!(matches!(
            parse_frame(b"\x81\x05hello", false),
            ParsedFrame::Frame(_)
        ));
    }

    #[test]
    fn close_codes_a_peer_may_not_send_are_answered_with_1002() {
        for (code, echo) in [
            (1000, 1000),
            (1001, 1001),
            (1009, 1009),
            (4000, 4000),
            (1005, 1005),
        ] {
            assert_eq!(CloseCode(code).echo(), CloseCode(echo));
        }
        for code in [0, 999, 1004, 1006, 1015, 2000, 5000] {
            assert_eq!(CloseCode(code).echo(), CloseCode::PROTOCOL_ERROR, "{code}");
        }
    }

    #[test]
    fn server_headers_round_trip() {
        for len in [0usize, 5, 125, 126, 65535, 65536] {
            let mut h = [0u8; 10];
            let n = encode_header(Opcode::Binary, len, &mut h);
            let ParsedFrame::Frame(f) = parse_frame(&h[..n], false) else {
                panic!("{len}");
            };
            assert_eq!(
                (f.fin, f.opcode, f.mask, f.header_len, f.payload_len),
                (true, Opcode::Binary, None, n, len as u64)
            );
        }
    }

    #[test]
    fn unmasking_twice_restores_any_length() {
        for len in 0..13 {
            let orig: Vec<u8> = (0..len as u8).collect();
            let mut p = orig.clone();
            unmask(&mut p, [9, 8, 7, 6]);
            unmask(&mut p, [9, 8, 7, 6]);
            assert_eq!(p, orig);
        }
    }
}
