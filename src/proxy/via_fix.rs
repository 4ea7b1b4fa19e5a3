//! What the top Via of a received request gains: `received` (RFC 3261 §18.2.1) and the
//! filled-in `rport` (RFC 3581 §4); and where a locally generated response goes (§18.2.2).

use std::net::{IpAddr, SocketAddr};

use crate::sip::{HostKind, Rport, Span, Via};

use super::rewrite::{Edit, Edits, Insert};

/// The edits to the top Via of a request, decided once and applied both to the forwarded
/// request and to any local reply (whose Via must carry the same parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ViaFix {
    /// `(existing received value to replace, or None to append; the address)`.
    received: Option<(Option<Span>, IpAddr)>,
    /// Where to write `=PORT` after a value-less `rport`, and the port.
    rport: Option<(usize, u16)>,
    /// The end of the Via value, where a new `;received=` goes.
    end: usize,
}

impl ViaFix {
    pub(super) fn new(via: &Via, source: SocketAddr) -> ViaFix {
        let ip = source.ip().to_canonical();
        let rport = match via.rport {
            Rport::Requested(name) => Some((name.end(), source.port())),
            _ => None,
        };
        // §18.2.1: add received when sent-by is not the source address; RFC 3581 §4: always
        // when rport was asked for.
        let sent_by_is_source = match via.host.kind {
            HostKind::Ipv4(a) => IpAddr::V4(a) == ip,
            HostKind::Ipv6(a) => IpAddr::V6(a) == ip,
            HostKind::Name => false,
        };
        let received = (rport.is_some() || !sent_by_is_source).then_some((via.received, ip));
        ViaFix {
            received,
            rport,
            end: via.span.end(),
        }
    }

    /// Pushes the edits (none when the Via needs nothing).
    pub(super) fn push_edits(&self, edits: &mut Edits<'_>) {
        if let Some((at, port)) = self.rport {
            edits.push(Edit::insert(
                at,
                Insert::Number {
                    prefix: b"=",
                    n: u32::from(port),
                    suffix: b"",
                },
            ));
        }
        match self.received {
            Some((Some(existing), ip)) => edits.push(Edit::replace(existing, Insert::Ip(ip))),
            Some((None, ip)) => edits.push(Edit::insert(self.end, Insert::Received(ip))),
            None => {}
        }
    }

    /// Whether the response should go to the source port (rport was asked for).
    pub(super) fn wants_source_port(&self) -> bool {
        self.rport.is_some()
    }
}

/// Where a locally generated response to a datagram goes (RFC 3261 §18.2.2, RFC 3581 §4):
/// the source address, at the source port when rport was asked for, else at the sent-by port.
pub(crate) fn reply_destination(
    via: &Via,
    fix: &ViaFix,
    source: SocketAddr,
    default_port: u16,
) -> SocketAddr {
    if fix.wants_source_port() {
        return source;
    }
    SocketAddr::new(source.ip(), via.port.unwrap_or(default_port))
}

#[cfg(test)]
mod tests {
    use super::super::rewrite::{Out, apply_range};
    use super::*;

    fn fixed(via_text: &str, source: &str) -> String {
        let buf = via_text.as_bytes();
        let via = Via::parse(buf, Span::new(0, buf.len())).unwrap();
        let fix = ViaFix::new(&via, source.parse().unwrap());
        let mut edits = Edits::new();
        fix.push_edits(&mut edits);
        let mut out_buf = [0u8; 256];
        let mut out = Out::new(&mut out_buf);
        apply_range(&mut out, buf, Span::new(0, buf.len()), &mut edits);
        let n = out.finish().unwrap();
        String::from_utf8_lossy(&out_buf[..n]).into_owned()
    }

    #[test]
    fn received_only_when_sent_by_differs() {
        // RFC 3261 §18.2.1
        assert_eq!(
            fixed("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1", "10.0.0.1:5060"),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"
        );
        assert_eq!(
            fixed(
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
                "192.0.2.7:5060"
            ),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=192.0.2.7"
        );
        assert_eq!(
            fixed(
                "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1",
                "192.0.2.7:5060"
            ),
            "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.7"
        );
    }

    #[test]
    fn rport_is_filled_and_received_always_added() {
        // RFC 3581 §4 (its example: sent-by 10.1.1.1:4540 seen from 192.0.2.1:9988)
        assert_eq!(
            fixed(
                "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff",
                "192.0.2.1:9988"
            ),
            "SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bKkjshdyff;received=192.0.2.1"
        );
        assert_eq!(
            fixed(
                "SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bK1;rport",
                "10.1.1.1:4540"
            ),
            "SIP/2.0/UDP 10.1.1.1:4540;branch=z9hG4bK1;rport=4540;received=10.1.1.1"
        );
    }

    #[test]
    fn ipv6_sources() {
        assert_eq!(
            fixed("SIP/2.0/UDP [2001:db8::1]:5060;rport", "[2001:db8::2]:6000"),
            "SIP/2.0/UDP [2001:db8::1]:5060;rport=6000;received=2001:db8::2"
        );
        assert_eq!(
            fixed(
                "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1",
                "[2001:db8::1]:5060"
            ),
            "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1"
        );
        // An IPv4-mapped source compares as IPv4.
        assert_eq!(
            fixed(
                "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
                "[::ffff:192.0.2.1]:5060"
            ),
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"
        );
    }

    #[test]
    fn an_existing_received_is_replaced() {
        assert_eq!(
            fixed(
                "SIP/2.0/UDP h;received=1.1.1.1;branch=z9hG4bK1",
                "192.0.2.9:5060"
            ),
            "SIP/2.0/UDP h;received=192.0.2.9;branch=z9hG4bK1"
        );
    }

    #[test]
    fn reply_goes_to_source_ip() {
        let buf = b"SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1";
        let via = Via::parse(buf, Span::new(0, buf.len())).unwrap();
        let src: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let fix = ViaFix::new(&via, src);
        assert_eq!(
            reply_destination(&via, &fix, src, 5060),
            "192.0.2.1:5070".parse().unwrap()
        );
        let buf = b"SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bK1";
        let via = Via::parse(buf, Span::new(0, buf.len())).unwrap();
        let fix = ViaFix::new(&via, src);
        assert_eq!(reply_destination(&via, &fix, src, 5060), src);
    }
}
