//! The server side of the WebSocket opening handshake (RFC 6455 §4.2) for SIP (RFC 7118 §4):
//! the client's HTTP/1.1 upgrade request is parsed in place with `httparse`; the answer is
//! `101 Switching Protocols` with `Sec-WebSocket-Protocol: sip`, or an HTTP error.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// Header lines read in an upgrade request; more is refused as malformed.
const MAX_HEADERS: usize = 32;
/// RFC 6455 §1.3: appended to the client's key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why an upgrade request is refused, and with which HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a well-formed WebSocket upgrade (400).
    Malformed,
    /// No `sip` in `Sec-WebSocket-Protocol` (RFC 7118 §4: 400).
    NoSip,
    /// The `Origin` is not in the allowlist (RFC 6455 §4.2.2: 403).
    Origin,
    /// A `Sec-WebSocket-Version` other than 13 (RFC 6455 §4.4: 426 with the version we speak).
    Version,
}

impl Refusal {
    /// The whole HTTP response that refuses the upgrade (the connection closes after it).
    pub fn response(self) -> &'static [u8] {
        match self {
            Refusal::Malformed => {
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            }
            Refusal::NoSip => {
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            }
            Refusal::Origin => {
                b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            }
            Refusal::Version => {
                b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\
                  Connection: close\r\nContent-Length: 0\r\n\r\n"
            }
        }
    }
}

/// What the front of a connection's first bytes holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// The request's head is not complete yet.
    Partial,
    /// A valid upgrade of `len` bytes; answer with [`accepted`] for this accept key.
    Accept {
        len: usize,
        accept: [u8; 28],
    },
    Refuse(Refusal),
}

/// Parses an upgrade request at the front of `buf`, allowing the `origins` listed (any when
/// empty).
pub fn parse_upgrade(buf: &[u8], origins: &[String]) -> Upgrade {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Upgrade::Partial,
        Err(_) => return Upgrade::Refuse(Refusal::Malformed),
    };
    // §4.2.1: a GET over HTTP/1.1 with Upgrade: websocket, Connection: Upgrade and a key.
    if req.method != Some("GET") || req.version != Some(1) {
        return Upgrade::Refuse(Refusal::Malformed);
    }
    let mut check = Checks::default();
    for h in req.headers.iter() {
        check.header(h.name, h.value, origins);
    }
    check.verdict(len)
}

#[derive(Default)]
struct Checks {
    upgrade: bool,
    connection: bool,
    version: Option<bool>,
    key: Option<[u8; 28]>,
    bad_key: bool,
    sip: bool,
    origin: Option<bool>,
}

impl Checks {
    fn header(&mut self, name: &str, value: &[u8], origins: &[String]) {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("Upgrade") {
            self.upgrade |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"websocket"));
        } else if is("Connection") {
            self.connection |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"upgrade"));
        } else if is("Sec-WebSocket-Version") {
            self.version = Some(value.trim_ascii() == b"13");
        } else if is("Sec-WebSocket-Key") {
            let key = value.trim_ascii();
            // §4.2.1 item 5: base64 of 16 bytes.
            let mut raw = [0u8; 18];
            match STANDARD.decode_slice(key, &mut raw) {
                Ok(16) => self.key = Some(accept_key(key)),
                _ => self.bad_key = true,
            }
        } else if is("Sec-WebSocket-Protocol") {
            // RFC 7118 §4: the subprotocol is "sip" (subprotocol names are case-sensitive).
            self.sip |= tokens(value).any(|t| t == b"sip");
        } else if is("Origin") {
            let allowed = origins.is_empty()
                || origins
                    .iter()
                    .any(|o| o.as_bytes().eq_ignore_ascii_case(value.trim_ascii()));
            self.origin = Some(allowed);
        }
    }

    fn verdict(&self, len: usize) -> Upgrade {
        let refuse = Upgrade::Refuse;
        match self {
            Checks { upgrade: false, .. }
            | Checks {
                connection: false, ..
            } => refuse(Refusal::Malformed),
            Checks { bad_key: true, .. } | Checks { key: None, .. } => refuse(Refusal::Malformed),
            Checks {
                version: Some(false) | None,
                ..
            } => refuse(Refusal::Version),
            Checks {
                origin: Some(false),
                ..
            } => refuse(Refusal::Origin),
            Checks { sip: false, .. } => refuse(Refusal::NoSip),
            Checks {
                key: Some(accept), ..
            } => Upgrade::Accept {
                len,
                accept: *accept,
            },
        }
    }
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 §4.2.2 item 5.4): base64 of the SHA-1
/// of the key and the GUID.
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    // 20 bytes encode to exactly 28 base64 characters.
    let _ = STANDARD.encode_slice(digest, &mut out);
    out
}

/// The `101 Switching Protocols` answer to an accepted upgrade, into `out`; returns its length.
pub fn accepted(accept: &[u8; 28], out: &mut [u8; 160]) -> usize {
    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Accept: ";
    let mut n = 0;
    for part in [HEAD, &accept[..], b"\r\n\r\n"] {
        out[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &str) -> String {
        format!(
            "GET /sip HTTP/1.1\r\nHost: proxy.example.com\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    #[test]
    fn rfc6455_sample_key_gives_the_sample_accept() {
        // RFC 6455 §1.3.
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn an_upgrade_with_sip_is_accepted_and_answered() {
        let r = request("Sec-WebSocket-Protocol: chat, sip\r\nOrigin: https://a.example\r\n");
        let Upgrade::Accept { len, accept } = parse_upgrade(r.as_bytes(), &[]) else {
            panic!("refused");
        };
        assert_eq!(len, r.len());
        let mut out = [0u8; 160];
        let n = accepted(&accept, &mut out);
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 "));
        assert!(text.contains("Sec-WebSocket-Protocol: sip\r\n"));
        assert!(text.ends_with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
        assert_eq!(
            parse_upgrade(&r.as_bytes()[..r.len() - 1], &[]),
            Upgrade::Partial
        );
    }

    #[test]
    fn refusals_by_reason() {
        let origins = ["https://phone.example.com".to_string()];
        let cases = [
            (request(""), Refusal::NoSip),
            (request("Sec-WebSocket-Protocol: SIP\r\n"), Refusal::NoSip),
            (
                request("Sec-WebSocket-Protocol: sip\r\nOrigin: https://evil.example\r\n"),
                Refusal::Origin,
            ),
            (
                request("Sec-WebSocket-Protocol: sip\r\n").replace("Version: 13", "Version: 8"),
                Refusal::Version,
            ),
            (
                request("Sec-WebSocket-Protocol: sip\r\n").replace("GET", "POST"),
                Refusal::Malformed,
            ),
            (
                request("Sec-WebSocket-Protocol: sip\r\n")
                    .replace("dGhlIHNhbXBsZSBub25jZQ==", "abc"),
                Refusal::Malformed,
            ),
            ("GARBAGE\0\r\n\r\n".to_string(), Refusal::Malformed),
        ];
        for (req, why) in cases {
            assert_eq!(
                parse_upgrade(req.as_bytes(), &origins),
                Upgrade::Refuse(why),
                "{req}"
            );
        }
        let ok = request("Sec-WebSocket-Protocol: sip\r\nOrigin: https://phone.example.com\r\n");
        assert!(matches!(
            parse_upgrade(ok.as_bytes(), &origins),
            Upgrade::Accept { .. }
        ));
    }
}
