//! Stateless nonces (RFC 3261 §22.4, RFC 2617 §3.2.1 leaves the nonce's form to the server).
//!
//! A nonce is 58 hex digits: a key id (1 byte), the Unix time it was minted (8 bytes), a
//! salt (4 bytes: a counter from a random start, so two challenges to one client in one
//! second differ, and so do their answers' `(nonce, nc)` in the replay table), and the first
//! 16 bytes of HMAC-SHA256(key, id | time | salt | realm | 0 | client IP). Nothing is
//! stored: any node holding the key verifies any other's nonces, keys rotate by id (the
//! first key mints, every key verifies), and a nonce older than the lifetime is `stale`
//! (RFC 2617 §3.2.1: the client retries with the new nonce without asking the user).
//!
//! Sans-IO: the caller passes `now` as an `Instant`; the table maps it to Unix time through
//! the epoch it was made with, so nodes agree as far as their clocks do.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Hex digits in a nonce.
pub const NONCE_LEN: usize = 2 * RAW_LEN;
const MAC_LEN: usize = 16;
const RAW_LEN: usize = 1 + 8 + 4 + MAC_LEN;
/// Where the MAC starts in the raw nonce.
const MAC_AT: usize = 1 + 8 + 4;
/// How far ahead of our clock another node's nonce may be (its clock runs ahead).
const SKEW: u64 = 30;

/// One nonce key: an id written into the nonce and a 32-byte secret.
#[derive(Clone, PartialEq, Eq)]
pub struct NonceKey {
    pub id: u8,
    pub secret: [u8; 32],
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NonceKey({}, ..)", self.id)
    }
}

/// A minted nonce, on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What a received nonce turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and within its lifetime.
    Fresh,
    /// Ours but too old: challenge again with `stale=true`.
    Stale,
    /// Not ours: wrong length, unknown key, bad MAC, another realm or client.
    Invalid,
}

/// Mints and checks nonces.
pub struct Nonces {
    keys: Vec<NonceKey>,
    /// Each key's HMAC state after the key (its inner and outer pads already hashed): a
    /// clone per nonce costs two SHA-256 compressions instead of four.
    keyed: Vec<Hmac<Sha256>>,
    lifetime: Duration,
    epoch: Instant,
    epoch_unix: u64,
    /// The next nonce's salt.
    salt: AtomicU32,
}

impl Clone for Nonces {
    fn clone(&self) -> Nonces {
        Nonces {
            keys: self.keys.clone(),
            keyed: self.keyed.clone(),
            lifetime: self.lifetime,
            epoch: self.epoch,
            epoch_unix: self.epoch_unix,
            salt: AtomicU32::new(self.salt.load(Ordering::Relaxed)),
        }
    }
}

/// A random start for the salt counter (std's per-process random hash keys), so that two
/// nodes sharing a key do not mint the same salts in step.
fn random_salt() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u32
}

impl Nonces {
    /// `keys[0]` mints; every key verifies. `epoch` is the `Instant` at Unix time
    /// `epoch_unix` seconds. `None` without keys.
    pub fn new(
        keys: Vec<NonceKey>,
        lifetime: Duration,
        epoch: Instant,
        epoch_unix: u64,
    ) -> Option<Nonces> {
        keys.first()?;
        // `new_from_slice` accepts a key of any length for HMAC.
        let keyed = keys
            .iter()
            .map(|k| <Hmac<Sha256> as KeyInit>::new_from_slice(&k.secret).expect("any key length"))
            .collect();
        Some(Nonces {
            keys,
            keyed,
            lifetime,
            epoch,
            epoch_unix,
            salt: AtomicU32::new(random_salt()),
        })
    }

    /// Seconds on this table's clock (Unix time as the service set it) at `now`.
    pub(crate) fn seconds(&self, now: Instant) -> u64 {
        self.unix(now)
    }

    fn unix(&self, now: Instant) -> u64 {
        self.epoch_unix + now.saturating_duration_since(self.epoch).as_secs()
    }

    /// A fresh nonce for `client` in `realm`.
    pub fn mint(&self, now: Instant, realm: &[u8], client: IpAddr) -> Nonce {
        let key = &self.keys[0]; // `new` refuses an empty key list
        let time = self.unix(now).to_be_bytes();
        let salt = self.salt.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[0] = key.id;
        raw[1..9].copy_from_slice(&time);
        raw[9..MAC_AT].copy_from_slice(&salt);
        let mac = tag(&self.keyed[0], key.id, &time, &salt, realm, client);
        raw[MAC_AT..].copy_from_slice(&mac);
        let mut nonce = [0u8; NONCE_LEN];
        hex_encode(&raw, &mut nonce);
        Nonce(nonce)
    }

    /// Checks a nonce a client sent back (constant-time MAC comparison).
    pub fn check(&self, nonce: &[u8], now: Instant, realm: &[u8], client: IpAddr) -> NonceCheck {
        let mut raw = [0u8; RAW_LEN];
        if nonce.len() != NONCE_LEN || !hex_decode(nonce, &mut raw) {
            return NonceCheck::Invalid;
        }
        let Some(index) = self.keys.iter().position(|k| k.id == raw[0]) else {
            return NonceCheck::Invalid;
        };
        let mut time = [0u8; 8];
        time.copy_from_slice(&raw[1..9]);
        let mut salt = [0u8; 4];
        salt.copy_from_slice(&raw[9..MAC_AT]);
        let expected = tag(&self.keyed[index], raw[0], &time, &salt, realm, client);
        if !bool::from(expected.ct_eq(&raw[MAC_AT..])) {
            return NonceCheck::Invalid;
        }
        let minted = u64::from_be_bytes(time);
        let now = self.unix(now);
        if minted > now + SKEW {
            NonceCheck::Invalid
        } else if now.saturating_sub(minted) > self.lifetime.as_secs() {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("keys", &self.keys)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

fn tag(
    keyed: &Hmac<Sha256>,
    id: u8,
    time: &[u8; 8],
    salt: &[u8; 4],
    realm: &[u8],
    client: IpAddr,
) -> [u8; MAC_LEN] {
    let mut mac = keyed.clone();
    mac.update(&[id]);
    mac.update(time);
    mac.update(salt);
    mac.update(realm);
    mac.update(&[0]);
    match client {
        IpAddr::V4(ip) => mac.update(&ip.octets()),
        IpAddr::V6(ip) => mac.update(&ip.octets()),
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

fn hex_encode(raw: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in raw.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
}

/// Decodes hex into `out` (exactly twice its length); false on a non-hex digit.
pub(crate) fn hex_decode(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() != 2 * out.len() {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (nibble(pair[0]), nibble(pair[1])) else {
            return false;
        };
        *byte = hi << 4 | lo;
    }
    true
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(keys: &[(u8, u8)], epoch: Instant) -> Nonces {
        let keys = keys
            .iter()
            .map(|&(id, fill)| NonceKey {
                id,
                secret: [fill; 32],
            })
            .collect();
        Nonces::new(keys, Duration::from_secs(300), epoch, 1_700_000_000).unwrap()
    }

    const ALICE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn the_nonce_format_is_the_hmac_of_its_fields_as_documented() {
        // The precomputed keyed state must give what a fresh HMAC-SHA256 gives, so nodes
        // running either version verify each other's nonces.
        let t0 = Instant::now();
        let n = nonces(&[(9, 4)], t0);
        n.salt.store(0x0102_0304, Ordering::Relaxed);
        let nonce = n.mint(t0, b"edge.example", ALICE);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[4; 32]).unwrap();
        let time = 1_700_000_000u64.to_be_bytes();
        let salt = [1, 2, 3, 4];
        for part in [
            &[9u8][..],
            &time,
            &salt,
            b"edge.example",
            &[0],
            &[192, 0, 2, 7],
        ] {
            mac.update(part);
        }
        let full = mac.finalize().into_bytes();
        let mut raw = vec![9u8];
        raw.extend_from_slice(&time);
        raw.extend_from_slice(&salt);
        raw.extend_from_slice(&full[..MAC_LEN]);
        let mut expected = [0u8; NONCE_LEN];
        hex_encode(&raw, &mut expected);
        assert_eq!(nonce.as_bytes(), &expected[..]);
        assert_eq!(&nonce.as_bytes()[..26], b"09000000006553f10001020304");
    }

    #[test]
    fn two_challenges_to_one_client_in_one_second_differ_and_both_verify() {
        let t0 = Instant::now();
        let n = nonces(&[(1, 7)], t0);
        let (a, b) = (n.mint(t0, b"r", ALICE), n.mint(t0, b"r", ALICE));
        assert_ne!(a, b);
        for nonce in [a, b] {
            assert_eq!(
                n.check(nonce.as_bytes(), t0, b"r", ALICE),
                NonceCheck::Fresh
            );
        }
        // The salt is under the MAC: changing it invalidates the nonce.
        let mut bytes = a.as_bytes().to_vec();
        bytes[19] = if bytes[19] == b'0' { b'1' } else { b'0' };
        assert_eq!(n.check(&bytes, t0, b"r", ALICE), NonceCheck::Invalid);
    }

    #[test]
    fn a_nonce_verifies_for_its_realm_and_client_until_it_is_stale() {
        let t0 = Instant::now();
        let n = nonces(&[(1, 7)], t0);
        let nonce = n.mint(t0, b"edge.example", ALICE);
        assert_eq!(nonce.as_bytes().len(), NONCE_LEN);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(
            n.check(nonce.as_bytes(), at(0), b"edge.example", ALICE),
            NonceCheck::Fresh
        );
        assert_eq!(
            n.check(nonce.as_bytes(), at(300), b"edge.example", ALICE),
            NonceCheck::Fresh
        );
        assert_eq!(
            n.check(nonce.as_bytes(), at(301), b"edge.example", ALICE),
            NonceCheck::Stale
        );
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(
            n.check(nonce.as_bytes(), at(1), b"edge.example", other),
            NonceCheck::Invalid
        );
        assert_eq!(
            n.check(nonce.as_bytes(), at(1), b"other", ALICE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn another_node_with_the_key_verifies_and_old_keys_keep_verifying() {
        let t0 = Instant::now();
        let old = nonces(&[(1, 7)], t0);
        let nonce = old.mint(t0, b"r", ALICE);
        // Rotated: key 2 mints now, key 1 still verifies; a node started later agrees.
        let rotated = nonces(&[(2, 9), (1, 7)], t0);
        assert_eq!(
            rotated.check(nonce.as_bytes(), t0, b"r", ALICE),
            NonceCheck::Fresh
        );
        assert_ne!(rotated.mint(t0, b"r", ALICE), nonce);
        let without = nonces(&[(2, 9)], t0);
        assert_eq!(
            without.check(nonce.as_bytes(), t0, b"r", ALICE),
            NonceCheck::Invalid
        );
        // The same key under another id does not verify either.
        let renamed = nonces(&[(3, 7)], t0);
        assert_eq!(
            renamed.check(nonce.as_bytes(), t0, b"r", ALICE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn tampered_or_foreign_nonces_are_invalid() {
        let t0 = Instant::now();
        let n = nonces(&[(1, 7)], t0);
        let nonce = n.mint(t0, b"r", ALICE);
        let mut bytes = nonce.as_bytes().to_vec();
        // Move the timestamp forward by editing one digit: the MAC no longer matches.
        bytes[17] = if bytes[17] == b'0' { b'1' } else { b'0' };
        assert_eq!(n.check(&bytes, t0, b"r", ALICE), NonceCheck::Invalid);
        for bad in [&b""[..], b"xyz", &[b'g'; NONCE_LEN]] {
            assert_eq!(n.check(bad, t0, b"r", ALICE), NonceCheck::Invalid);
        }
    }

    #[test]
    fn a_nonce_from_a_clock_far_ahead_is_invalid() {
        let t0 = Instant::now();
        let ahead = Nonces::new(
            vec![NonceKey {
                id: 1,
                secret: [7; 32],
            }],
            Duration::from_secs(300),
            t0,
            1_700_000_100,
        )
        .unwrap();
        let nonce = ahead.mint(t0, b"r", ALICE);
        let n = nonces(&[(1, 7)], t0);
        assert_eq!(
            n.check(nonce.as_bytes(), t0, b"r", ALICE),
            NonceCheck::Invalid
        );
    }
}
