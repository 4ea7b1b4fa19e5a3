//! Contact tokens: the user part of a rewritten Contact. A token names one table entry and is
//! sealed with a keyed MAC, so a forged or guessed token is refused before any table is read.
//!
//! The 18 sealed bytes, then base32 (lower case, no padding) into 29 URI-safe symbols:
//!
//! | bytes    | field                                                                 |
//! | -------- | --------------------------------------------------------------------- |
//! | `0`      | format: version `1` in the high nibble; low nibble reserved, zero     |
//! | `1`      | node: which proxy instance issued the token                           |
//! | `2..10`  | entry id, `u64` big-endian; never reused by one table                 |
//! | `10..18` | MAC: the first 8 bytes of SipHash-2-4-128(key, bytes `0..10`)         |
//!
//! [`TokenKey::open`] never panics and needs nothing but the key: any instance holding the
//! key can tell a genuine token (and its issuing node) from a forged one.

use std::fmt;

use siphasher::sip128::SipHasher24;

use super::base32;

/// Length of a token's text form, in bytes (all ASCII).
pub const TOKEN_LEN: usize = base32::encoded_len(RAW_LEN);

const RAW_LEN: usize = 18;
const SEALED_LEN: usize = 10;
const MAC_LEN: usize = RAW_LEN - SEALED_LEN;
const FORMAT_V1: u8 = 0x10;

/// The secret that seals tokens: 16 bytes, from the configuration (shared by instances behind
/// one address) or generated at start. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct TokenKey {
    secret: [u8; 16],
}

/// Which proxy instance issued a token (0 for a single instance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeId(pub u8);

/// The name of one table entry. A table hands out each id at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryId(pub u64);

/// What a genuine token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenFields {
    pub node: NodeId,
    pub entry: EntryId,
}

/// Why bytes are not a genuine token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not shaped like a token: wrong length, a symbol outside the alphabet, non-zero
    /// padding bits, or an unknown format byte. Probably an ordinary user name.
    Malformed,
    /// Shaped like a token, but the MAC does not match: forged, corrupted, or sealed with
    /// another key.
    Forged,
}

/// A token in its text form: exactly [`TOKEN_LEN`] bytes of `[a-z2-7]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactToken {
    text: [u8; TOKEN_LEN],
}

impl TokenKey {
    /// A key from 16 secret bytes.
    pub fn new(secret: [u8; 16]) -> TokenKey {
        TokenKey { secret }
    }

    /// Seals `fields` into a token.
    pub fn seal(&self, fields: TokenFields) -> ContactToken {
        let mut raw = [0u8; RAW_LEN];
        let (sealed, mac) = raw.split_at_mut(SEALED_LEN);
        sealed[0] = FORMAT_V1;
        sealed[1] = fields.node.0;
        sealed[2..].copy_from_slice(&fields.entry.0.to_be_bytes());
        mac.copy_from_slice(&self.mac(sealed));
        let mut text = [0u8; TOKEN_LEN];
        base32::encode(&raw, &mut text);
        ContactToken { text }
    }

    /// Checks a token's form and MAC, and returns what it says. Reads no table.
    pub fn open(&self, text: &[u8]) -> Result<TokenFields, TokenError> {
        let raw: [u8; RAW_LEN] = base32::decode(text).ok_or(TokenError::Malformed)?;
        let (sealed, mac) = raw.split_at(SEALED_LEN);
        if sealed[0] != FORMAT_V1 {
            return Err(TokenError::Malformed);
        }
        // One comparison of two integers: no early exit that would time out a byte at a time.
        if u64::from_be_bytes(self.mac(sealed)) != be_u64(mac) {
            return Err(TokenError::Forged);
        }
        Ok(TokenFields {
            node: NodeId(sealed[1]),
            entry: EntryId(be_u64(&sealed[2..])),
        })
    }

    fn mac(&self, sealed: &[u8]) -> [u8; MAC_LEN] {
        let full = SipHasher24::new_with_key(&self.secret)
            .hash(sealed)
            .as_bytes();
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&full[..MAC_LEN]);
        mac
    }

    /// A second, independent key for keyed hashing inside one table (derived, never sent).
    pub(crate) fn derive(&self, purpose: &[u8]) -> [u8; 16] {
        SipHasher24::new_with_key(&self.secret)
            .hash(purpose)
            .as_bytes()
    }
}

/// Reads up to 8 bytes big-endian (exactly 8 at every call site).
fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl ContactToken {
    /// The token's bytes, ready to write as a URI user part.
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        // Every byte comes from the base32 alphabet, which is ASCII, so this cannot fail.
        std::str::from_utf8(&self.text).expect("base32 alphabet is ASCII")
    }
}

impl fmt::Display for ContactToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ContactToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContactToken({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = *b"0123456789abcdef";

    fn fields(node: u8, entry: u64) -> TokenFields {
        TokenFields {
            node: NodeId(node),
            entry: EntryId(entry),
        }
    }

    #[test]
    fn seal_then_open() {
        let key = TokenKey::new(KEY);
        for f in [fields(0, 0), fields(7, 42), fields(255, u64::MAX)] {
            let token = key.seal(f);
            assert_eq!(token.as_bytes().len(), TOKEN_LEN);
            assert!(
                token
                    .as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(b))
            );
            assert_eq!(key.open(token.as_bytes()), Ok(f));
        }
    }

    #[test]
    fn token_is_29_symbols_and_fits_a_short_contact() {
        let token = TokenKey::new(KEY).seal(fields(1, 1));
        assert_eq!(TOKEN_LEN, 29);
        let contact = format!("sip:{token}@[2001:db8:1234:5678::10]:5060;transport=tcp");
        assert!(contact.len() < 100, "{contact} is {} bytes", contact.len());
    }

    #[test]
    fn same_fields_same_token() {
        let key = TokenKey::new(KEY);
        assert_eq!(key.seal(fields(3, 9)), key.seal(fields(3, 9)));
        assert_ne!(key.seal(fields(3, 9)), key.seal(fields(3, 10)));
        assert_ne!(key.seal(fields(3, 9)), key.seal(fields(4, 9)));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let key = TokenKey::new(KEY);
        let token = key.seal(fields(2, 0x0123_4567_89ab_cdef));
        let raw: [u8; RAW_LEN] = base32::decode(token.as_bytes()).unwrap(); // just sealed
        for bit in 0..RAW_LEN * 8 {
            let mut flipped = raw;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let mut text = [0u8; TOKEN_LEN];
            base32::encode(&flipped, &mut text);
            assert!(key.open(&text).is_err(), "bit {bit} flipped was accepted");
        }
    }

    #[test]
    fn every_changed_symbol_is_refused() {
        let key = TokenKey::new(KEY);
        let token = key.seal(fields(0, 77));
        for i in 0..TOKEN_LEN {
            for b in 0..=255u8 {
                let mut text = *token.as_bytes().first_chunk::<TOKEN_LEN>().unwrap(); // len is TOKEN_LEN
                if text[i] == b {
                    continue;
                }
                text[i] = b;
                assert!(
                    key.open(&text).is_err(),
                    "symbol {i} set to {b:#x} accepted"
                );
            }
        }
    }

    #[test]
    fn refuses_wrong_key_truncation_and_junk() {
        let key = TokenKey::new(KEY);
        let token = key.seal(fields(0, 5));
        let other = TokenKey::new(*b"fedcba9876543210");
        assert_eq!(other.open(token.as_bytes()), Err(TokenError::Forged));
        let text = token.as_bytes();
        assert_eq!(key.open(&text[..TOKEN_LEN - 1]), Err(TokenError::Malformed));
        assert_eq!(key.open(&text[1..]), Err(TokenError::Malformed));
        let upper = token.as_str().to_ascii_uppercase();
        assert_eq!(key.open(upper.as_bytes()), Err(TokenError::Malformed));
        for junk in [
            &b""[..],
            b"alice",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec\xeb\xea\xe9\xe8\xe7\xe6\xe5\xe4\xe3",
            "ééééééééééééééé".as_bytes(),
        ] {
            assert!(key.open(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn an_all_zero_mac_is_forged_not_malformed() {
        // A correctly shaped token with a guessed MAC is counted as forged.
        let mut raw = [0u8; RAW_LEN];
        raw[0] = FORMAT_V1;
        let mut text = [0u8; TOKEN_LEN];
        base32::encode(&raw, &mut text);
        assert_eq!(TokenKey::new(KEY).open(&text), Err(TokenError::Forged));
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", TokenKey::new(KEY));
        assert!(!shown.contains("0123"), "{shown}");
    }
}
