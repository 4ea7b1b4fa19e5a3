//! name-addr / addr-spec header values: From, To, Contact, Route, Record-Route
//! (RFC 3261 §20.10, §20.20, §20.34, §20.39, §25.1).
//!
//! `"Display, Name" <sip:uri;uri-params>;header-params` or `sip:uri;header-params`: in the
//! second form everything after the first `;` belongs to the header, not the URI.

use memchr::memchr;

use super::Span;
use super::chars::{is_lws, quoted_end, trim_lws_end};
use super::params::Params;

/// A parsed name-addr or addr-spec; spans are absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// The URI (inside the angle brackets when there are some).
    pub uri: Span,
    /// Whether the URI was written in angle brackets.
    pub angle: bool,
    /// The header parameters (`;tag=...;expires=...`), possibly empty.
    pub params: Span,
}

impl NameAddr {
    /// Parses one element `buf[span]`; `None` when it is not a name-addr or addr-spec.
    pub fn parse(buf: &[u8], span: Span) -> Option<NameAddr> {
        let end = span.end().min(buf.len());
        let mut pos = span.start();
        while pos < end && is_lws(buf[pos]) {
            pos += 1;
        }
        let mut search = pos;
        if buf.get(pos) == Some(&b'"') {
            search = quoted_end(buf, pos, end)?;
        }
        match memchr(b'<', buf.get(search..end)?) {
            Some(lt) => {
                let open = search + lt;
                let close = open + memchr(b'>', &buf[open..end])?;
                let uri = Span::new(open + 1, close);
                (!uri.is_empty()).then_some(NameAddr {
                    uri,
                    angle: true,
                    params: Span::new(close + 1, end),
                })
            }
            None if search > pos => None, // a display name needs a <URI>
            None => {
                let uri_end = memchr(b';', &buf[pos..end]).map_or(end, |i| pos + i);
                let uri_end = trim_lws_end(buf, pos, uri_end);
                (uri_end > pos).then_some(NameAddr {
                    uri: Span::new(pos, uri_end),
                    angle: false,
                    params: Span::new(uri_end, end),
                })
            }
        }
    }

    /// The value of a header parameter (e.g. `tag`), if present. Malformed parameter lists
    /// yield `None` for anything after the error.
    pub fn param(&self, buf: &[u8], name: &[u8]) -> Option<Span> {
        Params::new(buf, self.params)
            .map_while(Result::ok)
            .find(|p| p.is(buf, name))
            .and_then(|p| p.value)
    }

    /// Whether the header parameters are well-formed.
    pub fn params_ok(&self, buf: &[u8]) -> bool {
        Params::new(buf, self.params).all(|p| p.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &[u8]) -> NameAddr {
        NameAddr::parse(t, Span::new(0, t.len())).expect("parses")
    }

    #[test]
    fn forms() {
        let t = b"Bob <sip:bob@biloxi.example.com>;tag=a6c85cf";
        let n = parse(t);
        assert_eq!(n.uri.of(t), b"sip:bob@biloxi.example.com");
        assert!(n.angle);
        assert_eq!(n.param(t, b"tag").unwrap().of(t), b"a6c85cf");

        let t = b"sip:alice@atlanta.example.com;tag=88sja8x";
        let n = parse(t);
        assert_eq!(n.uri.of(t), b"sip:alice@atlanta.example.com");
        assert!(!n.angle);
        assert_eq!(n.param(t, b"TAG").unwrap().of(t), b"88sja8x");

        let t = b"<sip:p1.example.com;lr>";
        let n = parse(t);
        assert_eq!(n.uri.of(t), b"sip:p1.example.com;lr");
        assert_eq!(n.param(t, b"tag"), None);
    }

    #[test]
    fn quoted_display_names() {
        let t = b"\"Doe, <John>\" <sip:j@x;transport=tcp>;expires=60;+sip.instance=\"<urn:x>\"";
        let n = parse(t);
        assert_eq!(n.uri.of(t), b"sip:j@x;transport=tcp");
        assert_eq!(n.param(t, b"expires").unwrap().of(t), b"60");
        assert_eq!(n.param(t, b"+sip.instance").unwrap().of(t), b"\"<urn:x>\"");
        assert!(n.params_ok(t));
        let t = b"\"esc \\\" quote\" <sip:a@b>";
        assert_eq!(parse(t).uri.of(t), b"sip:a@b");
    }

    #[test]
    fn rejects() {
        for t in [
            &b""[..],
            b"<>",
            b"<sip:a@b",
            b"\"unterminated <sip:a@b>",
            b"\"name only\"",
            b";tag=1",
        ] {
            assert_eq!(NameAddr::parse(t, Span::new(0, t.len())), None, "{t:?}");
        }
    }
}
