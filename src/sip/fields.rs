//! The small numeric and token fields: Content-Length, Max-Forwards, CSeq (RFC 3261 §20).

use super::Span;
use super::chars::{is_lws, is_token, parse_u32, trim_lws_end};

/// A header value that does not match its grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldError {
    NotANumber,
    OutOfRange,
    BadMethod,
}

/// `Content-Length = 1*DIGIT` (RFC 3261 §20.14).
pub fn parse_content_length(value: &[u8]) -> Result<u32, FieldError> {
    parse_u32(value).ok_or(FieldError::NotANumber)
}

/// `Max-Forwards = 1*DIGIT` (RFC 3261 §20.22). Values above 255 are accepted as written;
/// the proxy only ever decrements.
pub fn parse_max_forwards(value: &[u8]) -> Result<u32, FieldError> {
    parse_u32(value).ok_or(FieldError::NotANumber)
}

/// `delta-seconds = 1*DIGIT` (RFC 3261 §25.1): Expires, a Contact's `expires`.
pub fn parse_delta_seconds(value: &[u8]) -> Result<u32, FieldError> {
    parse_u32(value).ok_or(FieldError::NotANumber)
}

/// A parsed CSeq: the sequence number and the method token's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub number: u32,
    pub method: Span,
}

/// `CSeq = 1*DIGIT LWS Method` (RFC 3261 §20.16); the number is below 2**31 (§8.1.1.5).
/// `value` is `buf[span]`; the method span is absolute in `buf`.
pub fn parse_cseq(buf: &[u8], value: Span) -> Result<CSeq, FieldError> {
    let v = value.of(buf);
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return Err(FieldError::NotANumber);
    }
    let number = v[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let number = u32::try_from(number)
        .ok()
        .filter(|&n| n < 1 << 31)
        .ok_or(FieldError::OutOfRange)?;
    let mut m = digits;
    if m == v.len() || !is_lws(v[m]) {
        return Err(FieldError::BadMethod);
    }
    while m < v.len() && is_lws(v[m]) {
        m += 1;
    }
    let end = trim_lws_end(v, m, v.len());
    if !is_token(&v[m..end]) {
        return Err(FieldError::BadMethod);
    }
    let base = value.start();
    Ok(CSeq {
        number,
        method: Span::new(base + m, base + end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cseq(v: &[u8]) -> Result<(u32, &[u8]), FieldError> {
        parse_cseq(v, Span::new(0, v.len())).map(|c| (c.number, c.method.of(v)))
    }

    #[test]
    fn cseq_vectors() {
        assert_eq!(cseq(b"314159 INVITE"), Ok((314159, &b"INVITE"[..])));
        assert_eq!(cseq(b"1   ACK"), Ok((1, &b"ACK"[..])));
        assert_eq!(cseq(b"1\r\n ACK"), Ok((1, &b"ACK"[..])));
        assert_eq!(cseq(b"2147483647 BYE"), Ok((2147483647, &b"BYE"[..])));
        assert_eq!(cseq(b"2147483648 BYE"), Err(FieldError::OutOfRange));
        assert_eq!(cseq(b"99999999999 BYE"), Err(FieldError::NotANumber));
        assert_eq!(cseq(b"999999999 BYE"), Ok((999999999, &b"BYE"[..])));
        assert_eq!(cseq(b"INVITE"), Err(FieldError::NotANumber));
        assert_eq!(cseq(b"12"), Err(FieldError::BadMethod));
        assert_eq!(cseq(b"12INVITE"), Err(FieldError::BadMethod));
        assert_eq!(cseq(b"12 IN VITE"), Err(FieldError::BadMethod));
        assert_eq!(cseq(b""), Err(FieldError::NotANumber));
    }

    #[test]
    fn cseq_method_span_is_absolute() {
        let buf = b"xxCSeq: 7 OPTIONS";
        let c = parse_cseq(buf, Span::new(8, buf.len())).unwrap();
        assert_eq!(c.method.of(buf), b"OPTIONS");
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(parse_content_length(b"0"), Ok(0));
        assert_eq!(parse_content_length(b"1234"), Ok(1234));
        assert_eq!(parse_content_length(b"-1"), Err(FieldError::NotANumber));
        assert_eq!(parse_content_length(b"1 2"), Err(FieldError::NotANumber));
        assert_eq!(parse_max_forwards(b"70"), Ok(70));
        assert_eq!(parse_max_forwards(b"0"), Ok(0));
        assert_eq!(parse_max_forwards(b""), Err(FieldError::NotANumber));
        assert_eq!(parse_max_forwards(b"7O"), Err(FieldError::NotANumber));
        assert_eq!(parse_delta_seconds(b"3600"), Ok(3600));
        assert_eq!(parse_delta_seconds(b"-1"), Err(FieldError::NotANumber));
    }
}
