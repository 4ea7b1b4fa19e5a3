//! Source addresses: CIDR blocks and named sets of them.

use std::net::IpAddr;

/// One CIDR block, e.g. `10.0.0.0/8` or `::1/128`. IPv4-mapped IPv6 sources match IPv4
/// blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `IP` or `IP/BITS`.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (ip, bits) = match text.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let net: IpAddr = ip.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits })
    }

    /// Whether `ip` is inside this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.bits,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.bits)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    match bits {
        0 => true,
        b2 if b2 >= 128 => a == b,
        _ => (a ^ b) >> (128 - u32::from(bits)) == 0,
    }
}

/// Loopback, trusted when the operator names no trusted sources.
pub(super) fn loopback() -> Vec<Cidr> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|c| Cidr::parse(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(Cidr::parse("127.0.0.4").unwrap().contains(ip("127.0.0.4")));
        assert!(!Cidr::parse("127.0.0.4").unwrap().contains(ip("127.0.0.5")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("192.0.2.1")));
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
        assert!(
            !Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("10.0.0.1"))
        );
        assert!(
            net.contains(ip("::ffff:10.1.0.9")),
            "IPv4-mapped sources match"
        );
    }

    #[test]
    fn bad_blocks_are_refused() {
        for bad in ["10.0.0.0/33", "::/129", "host", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn loopback_is_v4_and_v6() {
        let lo = loopback();
        assert!(lo.iter().any(|c| c.contains(ip("127.9.9.9"))));
        assert!(lo.iter().any(|c| c.contains(ip("::1"))));
        assert!(!lo.iter().any(|c| c.contains(ip("192.0.2.1"))));
    }
}
