//! One Via header field value (RFC 3261 §20.42, RFC 3581):
//! `SIP / 2.0 / transport sent-by *( ; via-params )`.

use super::Span;
use super::chars::{TOKEN, is_lws, parse_port};
use super::params::Params;
use super::transport::Transport;
use super::uri::{HostSpan, parse_host};

/// The `rport` parameter (RFC 3581 §3): absent, asked for (no value), or filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rport {
    Absent,
    /// `;rport` with no value; the span covers the name, so `=PORT` can be added after it.
    Requested(Span),
    Value(u16),
}

/// Why a Via value was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaError {
    /// Not `SIP/2.0/<transport>`.
    BadProtocol,
    BadSentBy,
    BadParams,
}

/// A parsed Via value; spans are absolute offsets in the scanned buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via {
    /// The whole value (one comma-separated element).
    pub span: Span,
    /// The transport token as written (`UDP`, `TCP`, ... or an unknown one).
    pub transport_token: Span,
    pub host: HostSpan,
    pub port: Option<u16>,
    /// `host[:port]` as written.
    pub sent_by: Span,
    pub branch: Option<Span>,
    /// The `received` parameter's value.
    pub received: Option<Span>,
    pub rport: Rport,
    pub maddr: Option<Span>,
}

impl Via {
    /// Parses one Via value `buf[span]` (a single element of a possibly comma-separated line).
    pub fn parse(buf: &[u8], span: Span) -> Result<Via, ViaError> {
        let end = span.end().min(buf.len());
        let mut pos = protocol_end(buf, span.start(), end)?;
        pos = skip(buf, pos, end);
        let token_start = pos;
        while pos < end && TOKEN[buf[pos] as usize] {
            pos += 1;
        }
        if pos == token_start || pos == end || !is_lws(buf[pos]) {
            return Err(ViaError::BadProtocol);
        }
        let transport_token = Span::new(token_start, pos);
        pos = skip(buf, pos, end);
        let (host, mut after) = parse_host(buf, pos, end).ok_or(ViaError::BadSentBy)?;
        let mut port = None;
        let colon = skip(buf, after, end);
        if buf.get(colon) == Some(&b':') && colon < end {
            let digits = skip(buf, colon + 1, end);
            let digits_end = (digits..end)
                .find(|&i| !buf[i].is_ascii_digit())
                .unwrap_or(end);
            port = Some(parse_port(&buf[digits..digits_end]).ok_or(ViaError::BadSentBy)?);
            after = digits_end;
        }
        let mut via = Via {
            span,
            transport_token,
            host,
            port,
            sent_by: Span::new(host.span.start(), after),
            branch: None,
            received: None,
            rport: Rport::Absent,
            maddr: None,
        };
        via.read_params(buf, Span::new(after, end))?;
        Ok(via)
    }

    fn read_params(&mut self, buf: &[u8], span: Span) -> Result<(), ViaError> {
        for param in Params::new(buf, span) {
            let p = param.map_err(|()| ViaError::BadParams)?;
            if p.is(buf, b"branch") {
                self.branch = Some(p.value.ok_or(ViaError::BadParams)?);
            } else if p.is(buf, b"received") {
                self.received = Some(p.value.ok_or(ViaError::BadParams)?);
            } else if p.is(buf, b"maddr") {
                self.maddr = Some(p.value.ok_or(ViaError::BadParams)?);
            } else if p.is(buf, b"rport") {
                self.rport = match p.value {
                    None => Rport::Requested(p.name),
                    Some(v) => Rport::Value(parse_port(v.of(buf)).ok_or(ViaError::BadParams)?),
                };
            }
        }
        Ok(())
    }

    /// The transport, when it is one this proxy knows.
    pub fn transport(&self, buf: &[u8]) -> Option<Transport> {
        Transport::from_token(self.transport_token.of(buf))
    }

    /// The branch has the RFC 3261 magic cookie `z9hG4bK` (§8.1.1.7).
    pub fn has_magic_cookie(&self, buf: &[u8]) -> bool {
        self.branch
            .is_some_and(|b| b.of(buf).starts_with(super::MAGIC_COOKIE))
    }
}

/// The offset after `SIP / 2.0 /` (white space allowed around the slashes, RFC 3261 §25.1
/// SLASH); the usual `SIP/2.0/` is checked in one comparison. The version is a `token`
/// (§20.42 `protocol-version`): a request saying `SIP/7.0` keeps a Via its 505 can follow.
fn protocol_end(buf: &[u8], start: usize, end: usize) -> Result<usize, ViaError> {
    const USUAL: &[u8] = b"SIP/2.0/";
    let usual = buf.get(start..start + USUAL.len());
    if start + USUAL.len() <= end && usual.is_some_and(|p| p.eq_ignore_ascii_case(USUAL)) {
        return Ok(start + USUAL.len());
    }
    let expect = |pos: usize, part: &[u8]| -> Result<usize, ViaError> {
        let got = buf
            .get(pos..pos + part.len())
            .ok_or(ViaError::BadProtocol)?;
        if pos + part.len() > end || !got.eq_ignore_ascii_case(part) {
            return Err(ViaError::BadProtocol);
        }
        Ok(pos + part.len())
    };
    let pos = expect(start, b"SIP")?;
    let pos = expect(skip(buf, pos, end), b"/")?;
    let version = skip(buf, pos, end);
    let mut pos = version;
    while pos < end && TOKEN[buf[pos] as usize] {
        pos += 1;
    }
    if pos == version {
        return Err(ViaError::BadProtocol);
    }
    expect(skip(buf, pos, end), b"/")
}

fn skip(buf: &[u8], mut pos: usize, end: usize) -> usize {
    while pos < end && is_lws(buf[pos]) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::super::uri::HostKind;
    use super::*;

    fn parse(text: &[u8]) -> Via {
        Via::parse(text, Span::new(0, text.len())).expect("parses")
    }

    #[test]
    fn rfc3261_example() {
        let t = b"SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds";
        let v = parse(t);
        assert_eq!(v.transport(t), Some(Transport::Udp));
        assert_eq!(v.host.span.of(t), b"pc33.atlanta.com");
        assert_eq!(v.port, None);
        assert_eq!(v.sent_by.of(t), b"pc33.atlanta.com");
        assert_eq!(v.branch.unwrap().of(t), b"z9hG4bK776asdhds");
        assert!(v.has_magic_cookie(t));
        assert_eq!(v.rport, Rport::Absent);
    }

    #[test]
    fn ipv6_sent_by_with_port() {
        let t = b"SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKx;received=2001:db8::9:255";
        let v = parse(t);
        assert_eq!(v.transport(t), Some(Transport::Tcp));
        assert_eq!(
            v.host.kind,
            HostKind::Ipv6("2001:db8::9:1".parse().unwrap())
        );
        assert_eq!(v.sent_by.of(t), b"[2001:db8::9:1]:5061");
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.received.unwrap().of(t), b"2001:db8::9:255");
    }

    #[test]
    fn rport_forms() {
        // RFC 3581 §3: rport without a value asks for the source port.
        let t = b"SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1";
        match parse(t).rport {
            Rport::Requested(name) => assert_eq!(name.of(t), b"rport"),
            other => panic!("{other:?}"),
        }
        let t = b"SIP/2.0/UDP 10.0.0.1;received=192.0.2.4;rport=9988;branch=z9hG4bK1";
        assert_eq!(parse(t).rport, Rport::Value(9988));
        let t = b"SIP/2.0/UDP 10.0.0.1;rport=x";
        assert_eq!(
            Via::parse(t, Span::new(0, t.len())),
            Err(ViaError::BadParams)
        );
    }

    #[test]
    fn white_space_and_case_are_tolerated() {
        let t =
            b"sip / 2.0 / udp\r\n host.example.com : 5080 ; branch = z9hG4bKa ; maddr=224.2.0.1";
        let v = parse(t);
        assert_eq!(v.transport(t), Some(Transport::Udp));
        assert_eq!(v.port, Some(5080));
        assert_eq!(v.sent_by.of(t), b"host.example.com : 5080");
        assert_eq!(v.branch.unwrap().of(t), b"z9hG4bKa");
        assert_eq!(v.maddr.unwrap().of(t), b"224.2.0.1");
    }

    #[test]
    fn unknown_transport_still_parses() {
        let t = b"SIP/2.0/SCTP h;branch=1";
        let v = parse(t);
        assert_eq!(v.transport(t), None);
        assert_eq!(v.transport_token.of(t), b"SCTP");
        assert!(!v.has_magic_cookie(t));
    }

    #[test]
    fn rejects() {
        let bad: &[(&[u8], ViaError)] = &[
            (b"", ViaError::BadProtocol),
            (b"SIP/2.0/UDP", ViaError::BadProtocol),
            (b"SIP//UDP h", ViaError::BadProtocol),
            (b"SIP/2.0/UDPh", ViaError::BadProtocol),
            (b"SIP/2.0 h", ViaError::BadProtocol),
            (b"SIP/2.0/UDP ;branch=1", ViaError::BadSentBy),
            (b"SIP/2.0/UDP h:99999", ViaError::BadSentBy),
            (b"SIP/2.0/UDP [::1", ViaError::BadSentBy),
            (b"SIP/2.0/UDP h;branch", ViaError::BadParams),
            (b"SIP/2.0/UDP h extra", ViaError::BadParams),
        ];
        for (text, want) in bad {
            assert_eq!(
                Via::parse(text, Span::new(0, text.len())).err(),
                Some(*want),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
