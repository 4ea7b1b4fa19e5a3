//! Bencode (the NG protocol's encoding): a writer that appends to a buffer the caller owns,
//! and a reader that borrows from the received datagram.
//!
//! Why our own and not a crate: the NG client needs four things — byte strings, integers,
//! lists and dictionaries — written in key order into a reused buffer, and one reply read
//! without copying its SDP. The crates that exist build owned trees (`serde_bencode`'s
//! `Value` allocates a `Vec`/`HashMap` per node) or go through serde; neither reads a reply
//! in place. The whole codec is the ~150 lines below, with a depth limit and a test for every
//! malformed shape: a reply from the network can make it fail, never panic.

/// The deepest nesting a reply may have (rtpengine's replies are two or three levels deep).
const MAX_DEPTH: usize = 16;

/// Appends bencoded values to a buffer. Dictionary keys must be written in sorted order by
/// the caller (bencode's canonical form; rtpengine accepts any order).
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut Vec<u8>) -> Writer<'b> {
        Writer { buf }
    }

    /// `<len>:<bytes>`
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.number(bytes.len() as u64);
        self.buf.push(b':');
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `i<n>e`
    pub fn int(&mut self, n: i64) -> &mut Self {
        self.buf.push(b'i');
        if n < 0 {
            self.buf.push(b'-');
        }
        self.number(n.unsigned_abs());
        self.buf.push(b'e');
        self
    }

    pub fn dict(&mut self) -> &mut Self {
        self.buf.push(b'd');
        self
    }

    pub fn list(&mut self) -> &mut Self {
        self.buf.push(b'l');
        self
    }

    /// Ends the innermost dictionary or list.
    pub fn end(&mut self) -> &mut Self {
        self.buf.push(b'e');
        self
    }

    /// A dictionary entry whose value is a byte string.
    pub fn entry(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.bytes(key.as_bytes()).bytes(value)
    }

    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[i..]);
    }
}

/// A value read in place: strings borrow from the input; lists and dictionaries keep their
/// encoded bytes and are walked on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    /// The encoded list, `l...e`.
    List(&'a [u8]),
    /// The encoded dictionary, `d...e`.
    Dict(&'a [u8]),
}

/// Why a value could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start or continue a value here.
    Malformed,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A dictionary key that is not a byte string.
    BadKey,
}

impl<'a> Value<'a> {
    /// Reads one whole value from the start of `input`; returns it and what follows.
    pub fn decode(input: &'a [u8]) -> Result<(Value<'a>, &'a [u8]), DecodeError> {
        let end = skip(input, 0, 0)?;
        let value = match input.first() {
            Some(b'i') => Value::Int(parse_int(&input[1..end - 1])?),
            Some(b'l') => Value::List(&input[..end]),
            Some(b'd') => Value::Dict(&input[..end]),
            _ => {
                let colon = memchr::memchr(b':', &input[..end]).ok_or(DecodeError::Malformed)?;
                Value::Bytes(&input[colon + 1..end])
            }
        };
        Ok((value, &input[end..]))
    }

    pub fn as_bytes(self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(n),
            _ => None,
        }
    }

    /// The value of `key` in a dictionary (the first one, should it repeat).
    pub fn get(self, key: &[u8]) -> Option<Value<'a>> {
        let Value::Dict(encoded) = self else {
            return None;
        };
        let mut rest = &encoded[1..encoded.len() - 1];
        while !rest.is_empty() {
            let (k, after) = Value::decode(rest).ok()?;
            let (v, after) = Value::decode(after).ok()?;
            if k.as_bytes()? == key {
                return Some(v);
            }
            rest = after;
        }
        None
    }

    /// The items of a list (nothing for another kind of value).
    pub fn items(self) -> Items<'a> {
        let rest = match self {
            Value::List(encoded) => &encoded[1..encoded.len() - 1],
            _ => &[],
        };
        Items { rest }
    }
}

/// The items of a list; stops at the first one that does not decode.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        let (value, rest) = Value::decode(self.rest).ok()?;
        self.rest = rest;
        Some(value)
    }
}

/// The offset just past the value starting at `at`, checking it whole.
fn skip(input: &[u8], at: usize, depth: usize) -> Result<usize, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    match input.get(at) {
        None => Err(DecodeError::Truncated),
        Some(b'i') => {
            let rel = memchr::memchr(b'e', &input[at..]).ok_or(DecodeError::Truncated)?;
            parse_int(&input[at + 1..at + rel])?;
            Ok(at + rel + 1)
        }
        Some(&kind @ (b'l' | b'd')) => {
            let mut pos = at + 1;
            let mut key = true;
            loop {
                match input.get(pos) {
                    None => return Err(DecodeError::Truncated),
                    Some(b'e') if kind == b'l' || key => return Ok(pos + 1),
                    Some(b) if kind == b'd' && key && !b.is_ascii_digit() => {
                        return Err(DecodeError::BadKey);
                    }
                    Some(_) => pos = skip(input, pos, depth + 1)?,
                }
                key = !key || kind == b'l';
            }
        }
        Some(b'0'..=b'9') => {
            let rel = memchr::memchr(b':', &input[at..]).ok_or(DecodeError::Truncated)?;
            let len = parse_len(&input[at..at + rel])?;
            let start = at + rel + 1;
            let end = start.checked_add(len).ok_or(DecodeError::Malformed)?;
            if end > input.len() {
                return Err(DecodeError::Truncated);
            }
            Ok(end)
        }
        Some(_) => Err(DecodeError::Malformed),
    }
}

fn parse_len(digits: &[u8]) -> Result<usize, DecodeError> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(DecodeError::Malformed);
    }
    Ok(digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

fn parse_int(text: &[u8]) -> Result<i64, DecodeError> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(DecodeError::Malformed);
    }
    let n = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    Ok(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_canonical_forms() {
        let mut buf = Vec::new();
        Writer::new(&mut buf)
            .dict()
            .entry("call-id", b"c1")
            .bytes(b"flags")
            .list()
            .bytes(b"trust-address")
            .end()
            .bytes(b"n")
            .int(-42)
            .bytes(b"z")
            .int(0)
            .end();
        assert_eq!(
            buf,
            b"d7:call-id2:c15:flagsl13:trust-addresse1:ni-42e1:zi0ee".to_vec()
        );
    }

    #[test]
    fn reads_a_reply_in_place() {
        let reply = b"d3:sdp10:v=0\r\no=-\r\n6:result2:ok4:listli1ei-2e3:abce4:dictd1:ai7eee";
        let (value, rest) = Value::decode(reply).unwrap();
        assert!(rest.is_empty());
        assert_eq!(value.get(b"result"), Some(Value::Bytes(b"ok")));
        assert_eq!(
            value.get(b"sdp").and_then(Value::as_bytes),
            Some(&b"v=0\r\no=-\r\n"[..])
        );
        let items: Vec<_> = value.get(b"list").unwrap().items().collect();
        assert_eq!(items, [Value::Int(1), Value::Int(-2), Value::Bytes(b"abc")]);
        let inner = value.get(b"dict").unwrap();
        assert_eq!(inner.get(b"a").and_then(Value::as_int), Some(7));
        assert_eq!(value.get(b"missing"), None);
        assert_eq!(Value::Int(3).get(b"a"), None);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let cases: &[(&[u8], DecodeError)] = &[
            (b"", DecodeError::Truncated),
            (b"d", DecodeError::Truncated),
            (b"d3:abc", DecodeError::Truncated),
            (b"5:abc", DecodeError::Truncated),
            (b"i12", DecodeError::Truncated),
            (b"ie", DecodeError::Malformed),
            (b"i1x2e", DecodeError::Malformed),
            (b"i-e", DecodeError::Malformed),
            (b"x", DecodeError::Malformed),
            (b"99999999999:a", DecodeError::Malformed),
            (b"3", DecodeError::Truncated),
            (b"di1ei2ee", DecodeError::BadKey),
            (b"d1:ae", DecodeError::Malformed),
            (b"d1:a", DecodeError::Truncated),
        ];
        for (input, error) in cases {
            assert_eq!(
                Value::decode(input),
                Err(*error),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let deep = [b"l".repeat(40), b"e".repeat(40)].concat();
        assert_eq!(Value::decode(&deep), Err(DecodeError::TooDeep));
    }

    #[test]
    fn any_bytes_decode_without_panicking() {
        // A cheap exhaustive sweep over short inputs of the bytes that matter.
        let alphabet = b"dile0123:-x";
        let mut input = [0u8; 5];
        for n in 0..alphabet.len().pow(5) {
            let mut k = n;
            for b in input.iter_mut() {
                *b = alphabet[k % alphabet.len()];
                k /= alphabet.len();
            }
            if let Ok((value, _)) = Value::decode(&input) {
                let _ = value.get(b"a");
                let _ = value.items().count();
            }
        }
    }
}
