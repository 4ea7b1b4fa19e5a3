//! What the registrar answers: a status and the header lines that go with it (challenges,
//! the registered bindings, Min-Expires, Unsupported), written by the proxy's stateless reply
//! writer between the copied transaction headers and Content-Length.

use std::time::Instant;

use crate::sip::{Message, Span};

use std::sync::Arc;

use super::auth::Challenge;
use super::bindings::Binding;
use super::digest::Algorithm;
use super::fields;
use super::nonce::Nonce;

/// A response the registrar or the authenticator wants sent.
#[derive(Debug)]
pub struct Answer {
    pub code: u16,
    pub reason: &'static str,
    pub extra: Extra,
}

/// The header lines an [`Answer`] adds.
#[derive(Debug)]
pub enum Extra {
    None,
    /// One WWW-Authenticate / Proxy-Authenticate line per offered algorithm, preferred first
    /// (RFC 8760 §2.4).
    Challenge {
        realm: Arc<str>,
        /// The algorithms offered, preferred first.
        algorithms: [Option<Algorithm>; 2],
        kind: Challenge,
        nonce: Nonce,
        stale: bool,
    },
    /// A 2xx to REGISTER: every current binding with its remaining expiry (RFC 3261 §10.3
    /// step 8), and the request's Path echoed (RFC 3327 §5.3).
    Bindings {
        list: Vec<Binding>,
        now: Instant,
    },
    /// 423 Interval Too Brief (RFC 3261 §10.3 step 7).
    MinExpires(u32),
    /// 420 for a Require option we do not support (RFC 3261 §8.2.2.3): the Require value.
    Unsupported(Span),
}

impl Answer {
    pub const fn plain(code: u16, reason: &'static str) -> Answer {
        Answer {
            code,
            reason,
            extra: Extra::None,
        }
    }

    /// Writes the extra header lines (each ending in CRLF) through `put`.
    pub fn write_headers(&self, msg: &Message<'_>, put: &mut dyn FnMut(&[u8])) {
        match &self.extra {
            Extra::None => {}
            Extra::Challenge {
                realm,
                algorithms,
                kind,
                nonce,
                stale,
            } => {
                for alg in algorithms.iter().flatten() {
                    put(kind.challenge_header());
                    put(b": Digest realm=\"");
                    put(realm.as_bytes());
                    put(b"\", nonce=\"");
                    put(nonce.as_bytes());
                    put(b"\", qop=\"auth\", algorithm=");
                    put(alg.name().as_bytes());
                    if *stale {
                        put(b", stale=true");
                    }
                    put(b"\r\n");
                }
            }
            Extra::Bindings { list, now } => {
                for b in list {
                    put(b"Contact: <");
                    put(&b.contact);
                    put(b">;expires=");
                    put(decimal(b.remaining(*now)).as_bytes());
                    if b.q != 1000 {
                        put(b";q=");
                        put(q_value(b.q).as_bytes());
                    }
                    if let Some(instance) = &b.instance {
                        put(b";+sip.instance=");
                        put(instance);
                    }
                    if let Some(reg_id) = b.reg_id {
                        put(b";reg-id=");
                        put(decimal(u64::from(reg_id)).as_bytes());
                    }
                    put(b"\r\n");
                }
                for path in fields::named(msg, b"path") {
                    put(b"Path: ");
                    put(msg.bytes(path.value));
                    put(b"\r\n");
                }
            }
            Extra::MinExpires(seconds) => {
                put(b"Min-Expires: ");
                put(decimal(u64::from(*seconds)).as_bytes());
                put(b"\r\n");
            }
            Extra::Unsupported(value) => {
                put(b"Unsupported: ");
                put(msg.bytes(*value));
                put(b"\r\n");
            }
        }
    }
}

/// A number as decimal text on the stack.
pub(crate) struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

pub(crate) fn decimal(mut n: u64) -> Decimal {
    let mut d = Decimal {
        digits: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.digits[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// `q` in thousandths as RFC 3261 §25.1 `qvalue`: `0.5`, `0.125`, `1`.
fn q_value(q: u16) -> Decimal {
    let mut d = Decimal {
        digits: [0; 20],
        start: 20,
    };
    if q >= 1000 {
        d.start = 19;
        d.digits[19] = b'1';
        return d;
    }
    let text = [
        b'0',
        b'.',
        b'0' + (q / 100) as u8,
        b'0' + (q / 10 % 10) as u8,
        b'0' + (q % 10) as u8,
    ];
    let mut len = text.len();
    while len > 3 && text[len - 1] == b'0' {
        len -= 1;
    }
    d.start = 20 - len;
    d.digits[d.start..].copy_from_slice(&text[..len]);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_q_values() {
        assert_eq!(decimal(0).as_bytes(), b"0");
        assert_eq!(decimal(3600).as_bytes(), b"3600");
        assert_eq!(decimal(u64::MAX).as_bytes(), b"18446744073709551615");
        assert_eq!(q_value(1000).as_bytes(), b"1");
        assert_eq!(q_value(500).as_bytes(), b"0.5");
        assert_eq!(q_value(125).as_bytes(), b"0.125");
        assert_eq!(q_value(0).as_bytes(), b"0.0");
    }
}
