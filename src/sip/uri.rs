//! SIP and SIPS URIs (RFC 3261 §19.1), parsed as offsets: user, host (IPv4, IPv6 reference
//! or name), port, and the parameters a proxy routes by (`lr`, `transport`, `maddr`).

use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memchr;

use super::Span;
use super::chars::{HOST, parse_port};
use super::params::Params;
use super::transport::Transport;

/// A URI scheme, as far as the proxy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other,
}

/// The scheme of any absolute URI (the text before the first `:`), case-insensitively.
pub fn scheme_of(uri: &[u8]) -> Scheme {
    match uri.get(..4) {
        Some([s, i, p, b':']) if [s | 0x20, i | 0x20, p | 0x20] == *b"sip" => return Scheme::Sip,
        _ => {}
    }
    let Some(colon) = memchr(b':', uri) else {
        return Scheme::Other;
    };
    let scheme = &uri[..colon];
    if scheme.eq_ignore_ascii_case(b"sip") {
        Scheme::Sip
    } else if scheme.eq_ignore_ascii_case(b"sips") {
        Scheme::Sips
    } else if scheme.eq_ignore_ascii_case(b"tel") {
        Scheme::Tel
    } else {
        Scheme::Other
    }
}

/// What kind of host a URI or Via names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// A domain name (compare case-insensitively).
    Name,
}

/// A host: its span (an IPv6 reference keeps its brackets) and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSpan {
    pub span: Span,
    pub kind: HostKind,
}

/// Parses a host starting at `pos` (not beyond `end`); returns it and the offset after it.
pub(crate) fn parse_host(buf: &[u8], pos: usize, end: usize) -> Option<(HostSpan, usize)> {
    let end = end.min(buf.len());
    if buf.get(pos) == Some(&b'[') {
        let close = pos + memchr(b']', buf.get(pos..end)?)?;
        let ip = std::str::from_utf8(&buf[pos + 1..close])
            .ok()?
            .parse()
            .ok()?;
        let host = HostSpan {
            span: Span::new(pos, close + 1),
            kind: HostKind::Ipv6(ip),
        };
        return Some((host, close + 1));
    }
    let rest = buf.get(pos..end)?;
    let (len, ipv4, numeric) = scan_host_name(rest);
    let text = rest.get(..len).filter(|t| !t.is_empty())?;
    let stop = pos + len;
    // All digits and dots must be an IPv4 address (RFC 3261 §25.1: a top label starts with
    // a letter); a name may start with a digit.
    let kind = match (ipv4, text[0]) {
        (Some(ip), _) => HostKind::Ipv4(ip),
        (None, _) if numeric => return None,
        (None, b'-' | b'.') => return None,
        (None, _) => HostKind::Name,
    };
    let host = HostSpan {
        span: Span::new(pos, stop),
        kind,
    };
    Some((host, stop))
}

/// Reads a host name or IPv4 address in one pass: its length, the address when it is a
/// well-formed dotted quad, and whether it held only digits and dots.
fn scan_host_name(text: &[u8]) -> (usize, Option<Ipv4Addr>, bool) {
    let mut octets = [0u8; 4];
    let (mut index, mut value, mut digits) = (0usize, 0u32, 0u32);
    let (mut numeric, mut well_formed) = (true, true);
    let mut len = 0;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                // Bounded so that a long run of digits cannot overflow (and is still > 255).
                value = value.min(1000) * 10 + u32::from(b - b'0');
                digits += 1;
            }
            b'.' => {
                well_formed &= (1..=3).contains(&digits) && value <= 255 && index < 3;
                if let Some(octet) = octets.get_mut(index) {
                    *octet = value as u8;
                }
                index += 1;
                (value, digits) = (0, 0);
            }
            _ if HOST[b as usize] => numeric = false,
            _ => break,
        }
        len += 1;
    }
    well_formed &= numeric && index == 3 && (1..=3).contains(&digits) && value <= 255;
    octets[3] = value as u8;
    let ip = well_formed.then(|| Ipv4Addr::from(octets));
    (len, ip, numeric)
}

/// Dotted-quad IPv4 (`IPv4address`, RFC 3261 §25.1): four decimal octets of one to three
/// digits, each at most 255.
pub(crate) fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut index = 0;
    let mut value: u32 = 0;
    let mut digits = 0;
    for &b in text {
        match b {
            b'0'..=b'9' if digits < 3 => {
                value = value * 10 + u32::from(b - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && index < 3 => {
                octets[index] = u8::try_from(value).ok()?;
                index += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if digits == 0 || index != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// Why a URI was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriError {
    /// Not a `sip:` or `sips:` URI.
    NotSip,
    BadHost,
    BadPort,
    BadParams,
    /// A space, a control byte or DEL: a URI carries those only %-escaped (RFC 3986 §2).
    BadByte,
}

/// A parsed SIP or SIPS URI; all spans are absolute offsets in the scanned buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipUri {
    /// The whole URI.
    pub span: Span,
    pub scheme: Scheme,
    /// `user[:password]`, without the `@`.
    pub user: Option<Span>,
    pub host: HostSpan,
    pub port: Option<u16>,
    /// The `;...` parameters, up to `?` or the end (empty when there are none).
    pub params: Span,
    /// `lr` is present (a loose router, RFC 3261 §19.1.1).
    pub lr: bool,
    /// The `transport` parameter's value, when present.
    pub transport_param: Option<Span>,
    /// The `maddr` parameter's value, when present.
    pub maddr: Option<Span>,
}

impl SipUri {
    /// Parses `buf[span]` as a SIP or SIPS URI.
    pub fn parse(buf: &[u8], span: Span) -> Result<SipUri, UriError> {
        let text = span.of(buf);
        let scheme = scheme_of(text);
        let after_scheme = match scheme {
            Scheme::Sip => 4,
            Scheme::Sips => 5,
            _ => return Err(UriError::NotSip),
        };
        // The same bytes the scanner refuses in a Request-URI: a URI copied there (strict
        // routing) must scan again (cargo fuzz, issue 11).
        if text.iter().any(|&b| super::chars::NOT_IN_URI[b as usize]) {
            return Err(UriError::BadByte);
        }
        let base = span.start();
        let (user, host_start) = match memchr(b'@', text) {
            Some(at) if at > after_scheme => {
                (Some(Span::new(base + after_scheme, base + at)), at + 1)
            }
            Some(_) => return Err(UriError::BadHost),
            None => (None, after_scheme),
        };
        let end = span.end();
        let (host, mut pos) = parse_host(buf, base + host_start, end).ok_or(UriError::BadHost)?;
        let mut port = None;
        if buf.get(pos) == Some(&b':') && pos < end {
            let digits_end = (pos + 1..end)
                .find(|&i| !buf[i].is_ascii_digit())
                .unwrap_or(end);
            port = Some(parse_port(&buf[pos + 1..digits_end]).ok_or(UriError::BadPort)?);
            pos = digits_end;
        }
        let params_end = memchr(b'?', &buf[pos..end]).map_or(end, |q| pos + q);
        let params = Span::new(pos, params_end);
        let mut uri = SipUri {
            span,
            scheme,
            user,
            host,
            port,
            params,
            lr: false,
            transport_param: None,
            maddr: None,
        };
        uri.read_params(buf)?;
        Ok(uri)
    }

    fn read_params(&mut self, buf: &[u8]) -> Result<(), UriError> {
        for param in Params::new(buf, self.params) {
            let param = param.map_err(|()| UriError::BadParams)?;
            if param.is(buf, b"lr") {
                self.lr = true;
            } else if param.is(buf, b"transport") {
                self.transport_param = param.value;
            } else if param.is(buf, b"maddr") {
                self.maddr = param.value;
            }
        }
        Ok(())
    }

    /// The transport this URI asks for: its `transport` parameter, else TLS for SIPS and
    /// UDP for SIP (RFC 3263 §4.1 without NAPTR). `None` for an unknown transport.
    pub fn transport(&self, buf: &[u8]) -> Option<Transport> {
        match self.transport_param {
            Some(t) => Transport::from_token(t.of(buf)),
            None if self.scheme == Scheme::Sips => Some(Transport::Tls),
            None => Some(Transport::Udp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> SipUri {
        SipUri::parse(text, Span::new(0, text.len())).expect("parses")
    }

    #[test]
    fn full_uri() {
        let t =
            b"sip:alice:secret@atlanta.example.com:5070;transport=TCP;lr;maddr=10.1.1.1?subject=x";
        let u = parse(t);
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.unwrap().of(t), b"alice:secret");
        assert_eq!(u.host.span.of(t), b"atlanta.example.com");
        assert_eq!(u.host.kind, HostKind::Name);
        assert_eq!(u.port, Some(5070));
        assert!(u.lr);
        assert_eq!(u.transport(t), Some(Transport::Tcp));
        assert_eq!(u.maddr.unwrap().of(t), b"10.1.1.1");
        assert_eq!(u.params.of(t), b";transport=TCP;lr;maddr=10.1.1.1");
    }

    #[test]
    fn hosts() {
        let t = b"sip:10.0.0.1";
        assert_eq!(
            parse(t).host.kind,
            HostKind::Ipv4(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(parse(t).port, None);
        let t = b"sips:[2001:db8::1]:5061;lr";
        let u = parse(t);
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.host.kind, HostKind::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.host.span.of(t), b"[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(t), Some(Transport::Tls));
        assert!(parse(b"SIP:Bob@Biloxi.COM").user.is_some());
        let t = b"sip:1and1.example:5060";
        assert_eq!(parse(t).host.kind, HostKind::Name);
        assert_eq!(parse(t).port, Some(5060));
        let t = b"sip:10.0.0.1.example";
        assert_eq!(parse(t).host.kind, HostKind::Name);
    }

    #[test]
    fn user_part_may_hold_semicolons() {
        let t = b"sip:+1-212-555-1212;npdi@gw.example.com;user=phone";
        let u = parse(t);
        assert_eq!(u.user.unwrap().of(t), b"+1-212-555-1212;npdi");
        assert_eq!(u.host.span.of(t), b"gw.example.com");
        assert_eq!(u.params.of(t), b";user=phone");
        assert!(!u.lr);
    }

    #[test]
    fn rejects() {
        let bad: &[(&[u8], UriError)] = &[
            (b"tel:+1555", UriError::NotSip),
            (b"http://x", UriError::NotSip),
            (b"sip:", UriError::BadHost),
            (b"sip:@host", UriError::BadHost),
            (b"sip:[::1", UriError::BadHost),
            (b"sip:[nothex]", UriError::BadHost),
            (b"sip:1.2.3.999", UriError::BadHost),
            (b"sip:99999999999999999999999", UriError::BadHost),
            (b"sip:1.2.3.4.5", UriError::BadHost),
            (b"sip:1.2.3", UriError::BadHost),
            (b"sip:-bad", UriError::BadHost),
            (b"sip:host:0", UriError::BadPort),
            (b"sip:host:99999", UriError::BadPort),
            (b"sip:host:", UriError::BadPort),
            (b"sip:host junk", UriError::BadByte),
            (b"sip:host;", UriError::BadParams),
            // Found by cargo fuzz: a CR inside <...> must not reach a Request-URI.
            (b"sip:2.0.2.5\r", UriError::BadByte),
            (b"sip:host ;lr", UriError::BadByte),
            (b"sip:a\x7fb@host", UriError::BadByte),
        ];
        for (text, want) in bad {
            assert_eq!(
                SipUri::parse(text, Span::new(0, text.len())).err(),
                Some(*want),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn unknown_transport_is_none() {
        let t = b"sip:h;transport=sctp";
        assert_eq!(parse(t).transport(t), None);
    }

    #[test]
    fn ipv4_vectors() {
        assert_eq!(parse_ipv4(b"192.0.2.1"), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_ipv4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(parse_ipv4(b"010.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        for bad in [
            &b"256.0.0.1"[..],
            b"1.2.3",
            b"1.2.3.4.5",
            b"1..3.4",
            b"1.2.3.",
            b"1234.1.1.1",
            b"",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme_of(b"SIPS:x"), Scheme::Sips);
        assert_eq!(scheme_of(b"tel:+1"), Scheme::Tel);
        assert_eq!(scheme_of(b"urn:x"), Scheme::Other);
        assert_eq!(scheme_of(b"nocolon"), Scheme::Other);
    }
}
