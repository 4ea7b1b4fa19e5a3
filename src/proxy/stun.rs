//! STUN keep-alives on the SIP port (RFC 5626 §4.4.2, §8.4): a phone behind a NAT that
//! registered over UDP with `outbound` sends STUN Binding requests to the port it sends SIP
//! to, and expects a Binding success response carrying the address it was seen from. Both
//! protocols share the port; a STUN message is told apart by its first two bits (zero, where
//! a SIP message starts with a letter) and the magic cookie (RFC 5389 §6, RFC 7983 §7).
//!
//! Written here rather than with a STUN crate: the whole job is to check a 20-byte header
//! and its attribute list, then write a 44-byte answer into the caller's buffer without an
//! allocation; the crates build messages in `Vec`s.

use std::net::{IpAddr, SocketAddr};

/// RFC 5389 §6.
const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER: usize = 20;
/// Binding request and Binding success response (RFC 5389 §6, §18.1).
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
/// RFC 5389 §18.2.
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const FINGERPRINT: u16 = 0x8028;
/// RFC 5389 §15.5: the CRC-32 is XORed with "STUN".
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// The longest answer: header, XOR-MAPPED-ADDRESS for IPv6 (4 + 20), FINGERPRINT (8).
pub const MAX_ANSWER: usize = HEADER + 24 + 8;

/// What a datagram that looks like STUN gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stun {
    /// A Binding request: answer it (the answer's length in `out`).
    Answered(usize),
    /// STUN, but not something to answer: another method or class, a broken attribute
    /// list or FINGERPRINT, an attribute we would have to understand (RFC 5389 §7.3.1 asks
    /// for a 420 then; a keep-alive never carries one), or no room to answer.
    Ignored,
}

/// Whether `data` is a STUN message rather than SIP (RFC 5389 §6: the first two bits zero,
/// the magic cookie at bytes 4..8, a length that is a multiple of 4 and matches).
pub fn is_stun(data: &[u8]) -> bool {
    let Some(header) = data.get(..HEADER) else {
        return false;
    };
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    header[0] & 0xC0 == 0
        && u32::from_be_bytes([header[4], header[5], header[6], header[7]]) == MAGIC_COOKIE
        && len % 4 == 0
        && HEADER + len == data.len()
}

/// Answers the STUN message `data` from `source` into `out` (anything [`is_stun`] refuses is
/// [`Stun::Ignored`]).
pub fn answer(data: &[u8], source: SocketAddr, out: &mut [u8]) -> Stun {
    // `is_stun` first: it guarantees the 20-byte header the indexing below reads.
    if !is_stun(data)
        || u16::from_be_bytes([data[0], data[1]]) != BINDING_REQUEST
        || !attributes_ok(data)
    {
        return Stun::Ignored;
    }
    let Some(out) = out.get_mut(..MAX_ANSWER) else {
        return Stun::Ignored;
    };
    // RFC 5389 §15.2: the port XORed with the cookie's high half, an IPv4 address with the
    // cookie, an IPv6 address with the cookie and the transaction id.
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(&data[8..HEADER]);
    let mut address = [0u8; 16];
    let (family, octets) = match source.ip() {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            address.copy_from_slice(&v6.octets());
            (2, &address[..16])
        }
        ip => {
            let v4 = match ip {
                IpAddr::V4(v4) => v4,
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            };
            address[..4].copy_from_slice(&v4.octets());
            (1, &address[..4])
        }
    };
    let value_len = 4 + octets.len();
    let mut at = HEADER;
    out[at..at + 2].copy_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&(value_len as u16).to_be_bytes());
    out[at + 4] = 0;
    out[at + 5] = family;
    let port = source.port() ^ (MAGIC_COOKIE >> 16) as u16;
    out[at + 6..at + 8].copy_from_slice(&port.to_be_bytes());
    for (i, b) in octets.iter().enumerate() {
        out[at + 8 + i] = b ^ key[i];
    }
    at += 4 + value_len;
    // RFC 5389 §15.5: FINGERPRINT last, its CRC over everything before it with the length
    // already counting it.
    let total = at + 8;
    out[..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out[2..4].copy_from_slice(&((total - HEADER) as u16).to_be_bytes());
    out[4..HEADER].copy_from_slice(&data[4..HEADER]);
    let crc = crc32fast::hash(&out[..at]) ^ FINGERPRINT_XOR;
    out[at..at + 2].copy_from_slice(&FINGERPRINT.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&4u16.to_be_bytes());
    out[at + 4..total].copy_from_slice(&crc.to_be_bytes());
    Stun::Answered(total)
}

/// RFC 5389 §15: type-length-value attributes padded to 4 bytes; none of the
/// comprehension-required ones (below 0x8000) since a keep-alive carries none we know; a
/// FINGERPRINT, when present, last and right (§15.5).
fn attributes_ok(data: &[u8]) -> bool {
    let mut at = HEADER;
    while at < data.len() {
        let Some(&[t0, t1, l0, l1]) = data.get(at..at + 4) else {
            return false;
        };
        let (typ, len) = (
            u16::from_be_bytes([t0, t1]),
            usize::from(u16::from_be_bytes([l0, l1])),
        );
        let end = at + 4 + len.next_multiple_of(4);
        if end > data.len() || typ < 0x8000 {
            return false;
        }
        if typ == FINGERPRINT {
            let Some(&[a, b, c, d]) = data.get(at + 4..at + 8) else {
                return false;
            };
            let want = crc32fast::hash(&data[..at]) ^ FINGERPRINT_XOR;
            return len == 4 && end == data.len() && u32::from_be_bytes([a, b, c, d]) == want;
        }
        at = end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.1–2.3's transaction id, and the mapped addresses of §2.2 / §2.3.
    const TXID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    fn request(attributes: &[u8]) -> Vec<u8> {
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&TXID);
        m.extend_from_slice(attributes);
        m
    }

    fn with_fingerprint(mut m: Vec<u8>) -> Vec<u8> {
        let len = u16::from_be_bytes([m[2], m[3]]) + 8;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32fast::hash(&m) ^ FINGERPRINT_XOR;
        m.extend_from_slice(&[0x80, 0x28, 0, 4]);
        m.extend_from_slice(&crc.to_be_bytes());
        m
    }

    fn answered(data: &[u8], source: &str) -> Vec<u8> {
        assert!(is_stun(data));
        let mut out = [0u8; 128];
        match answer(data, source.parse().unwrap(), &mut out) {
            Stun::Answered(len) => out[..len].to_vec(),
            Stun::Ignored => panic!("not answered"),
        }
    }

    #[test]
    fn the_crc_is_the_v42_one_of_rfc_5389_section_15_5() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn rfc5769_2_2_and_2_3_xor_mapped_addresses() {
        let ipv4 = answered(&request(&[]), "192.0.2.1:32853");
        assert_eq!(&ipv4[..2], &[0x01, 0x01], "Binding success");
        assert_eq!(
            &ipv4[4..20],
            &request(&[])[4..20],
            "cookie and transaction id"
        );
        assert_eq!(
            &ipv4[20..32],
            &[
                0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43
            ]
        );
        let ipv6 = answered(
            &request(&[]),
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        );
        assert_eq!(
            &ipv6[20..44],
            &[
                0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3,
                0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9
            ]
        );
        // A v4-mapped source (a dual-stack socket) is answered as IPv4.
        let mapped = answered(&request(&[]), "[::ffff:192.0.2.1]:32853");
        assert_eq!(&mapped[20..32], &ipv4[20..32]);
    }

    #[test]
    fn rfc5389_15_5_the_answer_ends_with_a_right_fingerprint() {
        for source in ["192.0.2.1:5060", "[2001:db8::1]:5060"] {
            let a = answered(&with_fingerprint(request(&[])), source);
            assert_eq!(
                usize::from(u16::from_be_bytes([a[2], a[3]])),
                a.len() - HEADER
            );
            let (body, fp) = a.split_at(a.len() - 8);
            assert_eq!(&fp[..4], &[0x80, 0x28, 0, 4]);
            let want = crc32fast::hash(body) ^ FINGERPRINT_XOR;
            assert_eq!(fp[4..], want.to_be_bytes());
        }
    }

    #[test]
    fn what_is_not_a_keepalive_binding_request_is_ignored() {
        let mut out = [0u8; 128];
        let from = "192.0.2.1:5060".parse().unwrap();
        let mut bad_fingerprint = with_fingerprint(request(&[]));
        bad_fingerprint[27] ^= 1;
        let mut indication = request(&[]);
        indication[1] = 0x11;
        // USERNAME (0x0006) is comprehension-required: an ICE check, not a keep-alive.
        let username = request(&[0x00, 0x06, 0x00, 0x01, b'a', 0, 0, 0]);
        // SOFTWARE (0x8022) is comprehension-optional: answered.
        let software = request(&[0x80, 0x22, 0x00, 0x02, b'p', b'h', 0, 0]);
        let overrun = request(&[0x80, 0x22, 0x00, 0x09, 0, 0, 0, 0]);
        for data in [bad_fingerprint, indication, username, overrun] {
            assert!(is_stun(&data));
            assert_eq!(answer(&data, from, &mut out), Stun::Ignored, "{data:02x?}");
        }
        assert!(matches!(
            answer(&software, from, &mut out),
            Stun::Answered(_)
        ));
        assert_eq!(answer(&request(&[]), from, &mut out[..40]), Stun::Ignored);
        assert_eq!(
            answer(b"\x00\x01", from, &mut out),
            Stun::Ignored,
            "no header"
        );
    }

    #[test]
    fn sip_and_keepalive_crlfs_are_not_stun() {
        assert!(!is_stun(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"
        ));
        assert!(!is_stun(b"\r\n\r\n"));
        let mut truncated = request(&[0x80, 0x22, 0x00, 0x02, b'p', b'h', 0, 0]);
        truncated.pop();
        assert!(!is_stun(&truncated), "the length must match the datagram");
    }

    #[test]
    fn any_bytes_after_a_stun_header_never_panic() {
        let from = "192.0.2.1:5060".parse().unwrap();
        let mut out = [0u8; MAX_ANSWER];
        let mut seed = 0x9e37_79b9_u32;
        for n in 0..2000usize {
            let len = (n % 16) * 4;
            let tail: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let data = request(&tail);
            if is_stun(&data) {
                let _ = answer(&data, from, &mut out);
            }
        }
    }
}
