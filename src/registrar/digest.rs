//! The digest computations (RFC 3261 §22.4 with RFC 2617 §3.2.2; RFC 8760 adds SHA-256).
//!
//! Every value is lower-case hex, as the `response` parameter carries it. Hashing streams
//! the parts into the hasher: nothing is allocated and nothing is formatted.

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm we offer and accept (RFC 8760 §2.1 names; `-sess` is not offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// Every algorithm, in the order their HA1 columns are kept.
    pub const ALL: [Algorithm; 2] = [Algorithm::Md5, Algorithm::Sha256];

    /// The token written in `algorithm=` (RFC 8760 §2.1).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Reads an `algorithm` token, ignoring case; `None` for anything we do not accept.
    pub fn parse(token: &[u8]) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case(b"MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case(b"SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Hex digits in one of its values.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }

    /// `H(part0 ":" part1 ":" ...)` as lower-case hex.
    pub fn hash(self, parts: &[&[u8]]) -> Hex {
        match self {
            Algorithm::Md5 => Hex::of(&joined::<Md5>(parts)),
            Algorithm::Sha256 => Hex::of(&joined::<Sha256>(parts)),
        }
    }

    /// HA1 = H(username ":" realm ":" password) (RFC 2617 §3.2.2.2).
    pub fn ha1(self, user: &[u8], realm: &[u8], password: &[u8]) -> Hex {
        self.hash(&[user, realm, password])
    }

    /// The `response` a client computes (RFC 2617 §3.2.2.1): with `qop`,
    /// `H(HA1:nonce:nc:cnonce:qop:HA2)`, else `H(HA1:nonce:HA2)`; HA2 = `H(method:uri)`
    /// (RFC 2617 §3.2.2.3, `qop=auth`).
    pub fn response(self, ha1: &[u8], nonce: &[u8], qop: Option<Qop<'_>>, a2: A2<'_>) -> Hex {
        let ha2 = self.hash(&[a2.method, a2.uri]);
        match qop {
            Some(q) => self.hash(&[ha1, nonce, q.nc, q.cnonce, q.qop, ha2.as_bytes()]),
            None => self.hash(&[ha1, nonce, ha2.as_bytes()]),
        }
    }
}

/// The `qop` fields of a response with quality of protection.
#[derive(Clone, Copy, Debug)]
pub struct Qop<'a> {
    pub qop: &'a [u8],
    pub nc: &'a [u8],
    pub cnonce: &'a [u8],
}

/// A2 for `qop=auth` or no qop: the request's method and the `uri` parameter.
#[derive(Clone, Copy, Debug)]
pub struct A2<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
}

fn joined<D: Digest>(parts: &[&[u8]]) -> sha2::digest::Output<D> {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    hasher.finalize()
}

/// A digest value as lower-case hex, on the stack (64 digits for SHA-256).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex {
    bytes: [u8; 64],
    len: u8,
}

impl Hex {
    fn of(raw: &[u8]) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = Hex {
            bytes: [0; 64],
            len: 0,
        };
        for (i, b) in raw.iter().take(32).enumerate() {
            hex.bytes[2 * i] = DIGITS[usize::from(b >> 4)];
            hex.bytes[2 * i + 1] = DIGITS[usize::from(b & 15)];
            hex.len += 2;
        }
        hex
    }

    /// Reads `text` as a value of `algorithm` (hex digits of its length, any case).
    pub fn parse(algorithm: Algorithm, text: &[u8]) -> Option<Hex> {
        if text.len() != algorithm.hex_len() || !text.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut hex = Hex {
            bytes: [0; 64],
            len: text.len() as u8,
        };
        for (dst, src) in hex.bytes.iter_mut().zip(text) {
            *dst = src.to_ascii_lowercase();
        }
        Some(hex)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(h: Hex) -> String {
        String::from_utf8(h.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn rfc2617_section_3_5_example() {
        // RFC 2617 §3.5: Mufasa / "Circle Of Life", qop=auth, GET /dir/index.html.
        let ha1 = Algorithm::Md5.ha1(b"Mufasa", b"testrealm@host.com", b"Circle Of Life");
        let qop = Qop {
            qop: b"auth",
            nc: b"00000001",
            cnonce: b"0a4f113b",
        };
        let a2 = A2 {
            method: b"GET",
            uri: b"/dir/index.html",
        };
        let nonce = b"dcd98b7102dd2f0e8b11d0f600bfb0c093";
        let response = Algorithm::Md5.response(ha1.as_bytes(), nonce, Some(qop), a2);
        assert_eq!(text(response), "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 §3.9.1, the example RFC 8760 §2 relies on for SHA-256 (the same
    /// computation with MD5 gives the RFC's other value).
    #[test]
    fn rfc7616_sha256_and_md5_example() {
        let realm = b"http-auth@example.org";
        let nonce = b"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let qop = Qop {
            qop: b"auth",
            nc: b"00000001",
            cnonce: b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        };
        let a2 = A2 {
            method: b"GET",
            uri: b"/dir/index.html",
        };
        let want = [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ];
        for (alg, response) in want {
            let ha1 = alg.ha1(b"Mufasa", realm, b"Circle of Life");
            assert_eq!(
                text(alg.response(ha1.as_bytes(), nonce, Some(qop), a2)),
                response
            );
        }
    }

    #[test]
    fn without_qop_the_rfc2069_form_is_used() {
        // RFC 2617 §3.2.2.1 (no qop): H(HA1:nonce:HA2), checked by composing it by hand.
        let ha1 = Algorithm::Md5.ha1(b"u", b"r", b"p");
        let a2 = A2 {
            method: b"REGISTER",
            uri: b"sip:r",
        };
        let ha2 = Algorithm::Md5.hash(&[b"REGISTER", b"sip:r"]);
        let want = Algorithm::Md5.hash(&[ha1.as_bytes(), b"n", ha2.as_bytes()]);
        assert_eq!(
            Algorithm::Md5.response(ha1.as_bytes(), b"n", None, a2),
            want
        );
    }

    #[test]
    fn names_and_hex_parse() {
        assert_eq!(Algorithm::parse(b"md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::parse(b"SHA-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse(b"MD5-sess"), None);
        let h = Hex::parse(Algorithm::Md5, b"6629FAE49393A05397450978507C4EF1").unwrap();
        assert_eq!(text(h), "6629fae49393a05397450978507c4ef1");
        assert!(Hex::parse(Algorithm::Sha256, b"6629fae49393a05397450978507c4ef1").is_none());
        assert!(Hex::parse(Algorithm::Md5, b"zz29fae49393a05397450978507c4ef1").is_none());
    }
}
