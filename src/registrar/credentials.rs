//! Digest credentials in Authorization / Proxy-Authorization (RFC 3261 §22.4, §25.1
//! `dig-resp`; RFC 2617 §3.2.2): `Digest username="..", realm="..", nonce="..", ...`.
//!
//! Read as spans into the message (quoted values without their quotes); never allocates.
//! Unknown parameters are skipped (RFC 2617 §3.2.2 `auth-param`).

use crate::sip::Span;

/// The parameters of one `Digest` credentials value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<Span>,
    pub realm: Option<Span>,
    pub nonce: Option<Span>,
    pub uri: Option<Span>,
    pub response: Option<Span>,
    pub algorithm: Option<Span>,
    pub cnonce: Option<Span>,
    pub qop: Option<Span>,
    pub nc: Option<Span>,
    pub opaque: Option<Span>,
}

impl Credentials {
    /// Parses `buf[value]`; `None` when it is not `Digest` credentials or is malformed.
    pub fn parse(buf: &[u8], value: Span) -> Option<Credentials> {
        let end = value.end().min(buf.len());
        let mut pos = skip_lws(buf, value.start(), end);
        let scheme = b"digest";
        let word = buf.get(pos..pos + scheme.len())?;
        if !word.eq_ignore_ascii_case(scheme)
            || !buf.get(pos + scheme.len()).is_some_and(|b| is_lws(*b))
        {
            return None;
        }
        pos += scheme.len();
        let mut creds = Credentials::default();
        loop {
            pos = skip_lws(buf, pos, end);
            if pos >= end {
                return Some(creds);
            }
            let (name, value, next) = param(buf, pos, end)?;
            creds.set(&buf[name.start()..name.end()], value);
            pos = skip_lws(buf, next, end);
            match buf.get(pos) {
                _ if pos >= end => return Some(creds),
                Some(b',') => pos += 1,
                _ => return None,
            }
        }
    }

    fn set(&mut self, name: &[u8], value: Span) {
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        // By length first: one comparison per parameter instead of a walk over all ten.
        let slot = match name.len() {
            2 if is(b"nc") => &mut self.nc,
            3 if is(b"uri") => &mut self.uri,
            3 if is(b"qop") => &mut self.qop,
            5 if is(b"realm") => &mut self.realm,
            5 if is(b"nonce") => &mut self.nonce,
            6 if is(b"cnonce") => &mut self.cnonce,
            6 if is(b"opaque") => &mut self.opaque,
            8 if is(b"username") => &mut self.username,
            8 if is(b"response") => &mut self.response,
            9 if is(b"algorithm") => &mut self.algorithm,
            _ => return,
        };
        // A repeated parameter keeps its first value.
        slot.get_or_insert(value);
    }
}

/// `name = value` at `pos`: the name, the value (inside its quotes) and the offset after it.
fn param(buf: &[u8], pos: usize, end: usize) -> Option<(Span, Span, usize)> {
    let name_end = pos + buf[pos..end].iter().position(|b| !is_token(*b))?;
    if name_end == pos {
        return None;
    }
    let mut at = skip_lws(buf, name_end, end);
    if buf.get(at) != Some(&b'=') {
        return None;
    }
    at = skip_lws(buf, at + 1, end);
    if buf.get(at) == Some(&b'"') {
        let close = quoted_end(buf, at + 1, end)?;
        return Some((
            Span::new(pos, name_end),
            Span::new(at + 1, close),
            close + 1,
        ));
    }
    let value_end = at
        + buf[at..end]
            .iter()
            .position(|b| !is_token(*b))
            .unwrap_or(end - at);
    if value_end == at {
        return None;
    }
    Some((
        Span::new(pos, name_end),
        Span::new(at, value_end),
        value_end,
    ))
}

/// The offset of the closing quote of a quoted-string whose content starts at `pos`
/// (backslash escapes a byte, RFC 3261 §25.1 `quoted-pair`).
fn quoted_end(buf: &[u8], mut pos: usize, end: usize) -> Option<usize> {
    while pos < end {
        let at = pos + memchr::memchr2(b'"', b'\\', &buf[pos..end])?;
        match buf[at] {
            b'"' => return Some(at),
            _ => pos = at + 2,
        }
    }
    None
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_lws(buf: &[u8], mut pos: usize, end: usize) -> usize {
    while pos < end && is_lws(buf[pos]) {
        pos += 1;
    }
    pos
}

/// RFC 3261 §25.1 `token` characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<(Credentials, &str)> {
        Credentials::parse(text.as_bytes(), Span::new(0, text.len())).map(|c| (c, text))
    }

    fn get(text: &str, span: Option<Span>) -> &str {
        std::str::from_utf8(span.unwrap().of(text.as_bytes())).unwrap()
    }

    #[test]
    fn reads_every_parameter_of_a_sip_authorization() {
        let (c, t) = parse(
            "Digest username=\"alice\", realm=\"edge.example\",\r\n nonce=\"abc\", \
             uri=\"sip:edge.example\", response=\"0123\", algorithm=MD5, cnonce=\"x,y\", \
             qop=auth, nc=00000001, opaque=\"\", foo=bar",
        )
        .unwrap();
        assert_eq!(get(t, c.username), "alice");
        assert_eq!(get(t, c.realm), "edge.example");
        assert_eq!(get(t, c.nonce), "abc");
        assert_eq!(get(t, c.uri), "sip:edge.example");
        assert_eq!(get(t, c.response), "0123");
        assert_eq!(get(t, c.algorithm), "MD5");
        assert_eq!(get(t, c.cnonce), "x,y");
        assert_eq!(get(t, c.qop), "auth");
        assert_eq!(get(t, c.nc), "00000001");
        assert_eq!(get(t, c.opaque), "");
    }

    #[test]
    fn quoted_values_may_hold_escaped_quotes() {
        let (c, t) = parse(r#"digest username="a\"b", realm="r""#).unwrap();
        assert_eq!(get(t, c.username), r#"a\"b"#);
        assert_eq!(get(t, c.realm), "r");
    }

    #[test]
    fn other_schemes_and_broken_lists_are_refused() {
        for bad in [
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Digestusername=\"a\"",
            "Digest username=\"a",
            "Digest username",
            "Digest username=\"a\" realm=\"b\"",
            "Digest =x",
            "",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
