//! Small readers over a scanned message that the registrar needs and the scanner does not
//! classify (Authorization, Path, Require, ...), and the From / To URIs.

use crate::sip::{Header, HeaderName, Message, NameAddr, SipUri, Span, Values};

/// Header lines named `name` (full name, ASCII case ignored) that the scanner files under
/// [`HeaderName::Other`].
pub(crate) fn named<'m>(
    msg: &'m Message<'_>,
    name: &'static [u8],
) -> impl Iterator<Item = &'m Header> + 'm {
    let buf = msg.buf();
    msg.headers_named(HeaderName::Other).filter(move |h| {
        let line = h.line.of(buf);
        line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && line[name.len()..]
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t'))
                == Some(&b':')
    })
}

/// The URI of the first From or To value, with that value's name-addr.
pub(crate) fn address(msg: &Message<'_>, name: HeaderName) -> Option<(NameAddr, SipUri)> {
    let header = msg.header(name)?;
    let first = Values::new(msg.buf(), header.value).next()?;
    let addr = NameAddr::parse(msg.buf(), first)?;
    let uri = SipUri::parse(msg.buf(), addr.uri).ok()?;
    Some((addr, uri))
}

/// The bytes of a URI's user part (`None` when it has none); a `:password` is cut off.
pub(crate) fn user<'a>(buf: &'a [u8], uri: &SipUri) -> Option<&'a [u8]> {
    let user = uri.user?.of(buf);
    Some(user.split(|b| *b == b':').next().unwrap_or(user))
}

/// `name` followed by its value in a parameter list, as bytes.
pub(crate) fn param<'a>(buf: &'a [u8], addr: &NameAddr, name: &[u8]) -> Option<&'a [u8]> {
    addr.param(buf, name).map(|s: Span| s.of(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_headers_by_full_name() {
        let raw = b"REGISTER sip:d SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
Authorization : Digest a=b\r\nAuthorization-Info: x\r\nPath: <sip:p;lr>\r\n\
authorization: Digest c=d\r\nContent-Length: 0\r\n\r\n";
        let msg = Message::scan(raw, false).unwrap();
        let values: Vec<_> = named(&msg, b"authorization")
            .map(|h| String::from_utf8_lossy(msg.bytes(h.value)).into_owned())
            .collect();
        assert_eq!(values, ["Digest a=b", "Digest c=d"]);
        assert_eq!(named(&msg, b"path").count(), 1);
    }
}
