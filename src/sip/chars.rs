//! Byte classes from the RFC 3261 §25.1 grammar, as lookup tables.

/// `token` characters (RFC 3261 §25.1): alphanumerics and `-.!%*_+`~'`.
pub(crate) static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        b += 1;
    }
    t
};

/// Bytes no Request-URI may hold (RFC 3261 §25.1: no URI grammar allows them): white space,
/// controls, DEL and `<>` (RFC 4475 §3.1.2.7, §3.1.2.8).
pub(crate) static NOT_IN_URI: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b <= b' ' as usize || b == 0x7f || b == b'<' as usize || b == b'>' as usize;
        b += 1;
    }
    t
};

/// Characters of a host name or IPv4 address (`hostname` / `IPv4address`).
pub(crate) static HOST: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'.';
        b += 1;
    }
    t
};

pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| TOKEN[b as usize])
}

/// Linear white space inside a header value: SP, HTAB, and the CR LF of a folded line.
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `end` moved back over trailing LWS, not below `start`.
pub(crate) fn trim_lws_end(buf: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && is_lws(buf[end - 1]) {
        end -= 1;
    }
    end
}

/// The offset just after the quoted string (RFC 3261 §25.1 `quoted-string`, with
/// `quoted-pair` escapes) that opens at `buf[open]`; `None` when it is not closed before `end`.
pub(crate) fn quoted_end(buf: &[u8], open: usize, end: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < end {
        match buf[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Parses 1 to 9 ASCII digits (more would not fit the fields that use this).
pub(crate) fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let mut n: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(d - b'0');
    }
    Some(n)
}

/// Parses a port: 1 to 5 digits, 1..=65535.
pub(crate) fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.len() > 5 {
        return None;
    }
    parse_u32(digits)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_class() {
        assert!(is_token(b"INVITE"));
        assert!(is_token(b"z9hG4bK-74.b~"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"70"), Some(70));
        assert_eq!(parse_u32(b"007"), Some(7));
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"1x"), None);
        assert_eq!(parse_u32(b"9999999999"), None);
        assert_eq!(parse_port(b"5060"), Some(5060));
        assert_eq!(parse_port(b"0"), None);
        assert_eq!(parse_port(b"65536"), None);
        assert_eq!(parse_port(b"000005060"), None);
    }

    #[test]
    fn quoted_strings() {
        let b = b"\"a\\\"b\" rest";
        assert_eq!(quoted_end(b, 0, b.len()), Some(6));
        assert_eq!(quoted_end(b"\"open", 0, 5), None);
        assert_eq!(quoted_end(b"\"esc\\", 0, 6), None);
    }

    #[test]
    fn lws_helpers() {
        let b = b" \t\r\n x \r\n";
        assert_eq!(trim_lws_end(b, 5, b.len()), 6);
        assert_eq!(trim_lws_end(b, 0, 4), 0);
    }
}
