//! RFC 4648 base32 with the lower-case alphabet and no padding: the text form of a token.
//!
//! Every symbol (`a`–`z`, `2`–`7`) is an `unreserved` character of RFC 3261 §25.1, so an
//! encoded token can stand as a SIP URI user part without escaping. Decoding accepts exactly
//! one spelling per byte string: lower case only, and the unused low bits of the last symbol
//! must be zero. It never panics, whatever the input.

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const INVALID: u8 = 0xff;

/// Symbol value of each byte, or `INVALID`.
static DECODE: [u8; 256] = decode_table();

const fn decode_table() -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// How many symbols encode `bytes` bytes.
pub(crate) const fn encoded_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

/// Encodes `bytes` into `out`; `out` must be exactly `encoded_len(N)` long (checked at compile
/// time by the caller's constants, asserted in debug builds).
pub(crate) fn encode<const N: usize>(bytes: &[u8; N], out: &mut [u8]) {
    debug_assert_eq!(out.len(), encoded_len(N));
    let mut symbols = out.iter_mut();
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            emit(&mut symbols, acc >> bits);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        emit(&mut symbols, acc << (5 - bits));
    }
}

fn emit<'a>(symbols: &mut impl Iterator<Item = &'a mut u8>, value: u32) {
    if let Some(slot) = symbols.next() {
        *slot = ALPHABET[(value & 31) as usize];
    }
}

/// Decodes exactly `encoded_len(N)` symbols into `N` bytes; `None` for any other length, any
/// byte outside the alphabet (upper case included), or non-zero padding bits.
pub(crate) fn decode<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != encoded_len(N) {
        return None;
    }
    let mut out = [0u8; N];
    let mut bytes = out.iter_mut();
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &symbol in text {
        let value = DECODE[usize::from(symbol)];
        if value == INVALID {
            return None;
        }
        acc = (acc << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *bytes.next()? = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
        }
    }
    // The symbols carry `bits` (< 5) bits past the last byte: they must be zero.
    (acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<const N: usize>(bytes: [u8; N]) {
        let mut text = vec![0u8; encoded_len(N)];
        encode(&bytes, &mut text);
        assert!(text.iter().all(|b| ALPHABET.contains(b)));
        assert_eq!(
            decode::<N>(&text),
            Some(bytes),
            "{:?}",
            String::from_utf8_lossy(&text)
        );
    }

    #[test]
    fn rfc4648_vectors_in_lower_case() {
        // RFC 4648 §10, without the `=` padding and lower-cased.
        let mut out = [0u8; 8];
        encode(b"fooba", &mut out);
        assert_eq!(&out, b"mzxw6ytb");
        let mut out = [0u8; 2];
        encode(b"f", &mut out);
        assert_eq!(&out, b"my");
        assert_eq!(decode::<5>(b"mzxw6ytb"), Some(*b"fooba"));
        assert_eq!(decode::<1>(b"my"), Some(*b"f"));
    }

    #[test]
    fn round_trips() {
        round_trip([0u8; 18]);
        round_trip([0xffu8; 18]);
        round_trip(*b"0123456789abcdefgh");
        round_trip([0x5a; 1]);
        round_trip([1, 2, 3]);
    }

    #[test]
    fn rejects_other_spellings() {
        assert_eq!(decode::<1>(b"MY"), None, "upper case");
        assert_eq!(decode::<1>(b"mz"), None, "non-zero padding bits");
        assert_eq!(decode::<1>(b"m"), None, "short");
        assert_eq!(decode::<1>(b"myy"), None, "long");
        assert_eq!(decode::<1>(b"m1"), None, "outside the alphabet");
        assert_eq!(decode::<1>(b"m\xc3"), None, "non-ASCII");
        assert_eq!(decode::<1>(b""), None, "empty");
    }

    #[test]
    fn lengths() {
        assert_eq!(encoded_len(18), 29);
        assert_eq!(encoded_len(16), 26);
        assert_eq!(encoded_len(5), 8);
    }
}
