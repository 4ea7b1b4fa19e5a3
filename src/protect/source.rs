//! What a limit or a ban counts against: an IPv4 address, or the /64 an IPv6 address is in
//! (one customer's LAN or one host's privacy addresses, RFC 4941), packed into one `u64`.
//!
//! Packing: an IPv6 /64 is its 64 prefix bits; an IPv4 address is `0xffff_ffff` in the high
//! half and the address in the low half — a prefix inside `ff00::/8` (multicast), which is
//! never a packet's source. `u64::MAX` (255.255.255.255, the broadcast address, never a
//! source either) is reserved as the empty slot of the tables.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cidr::canonical;

const V4_TAG: u64 = 0xffff_ffff_0000_0000;

/// A source as the limits and bans see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey(u64);

impl SourceKey {
    /// The value of an empty table slot; no address packs to it.
    pub(crate) const EMPTY: u64 = u64::MAX;

    /// The key of `ip`: the address itself (IPv4) or its /64 (IPv6). `None` for the
    /// broadcast address, which cannot be a source.
    pub fn of(ip: IpAddr) -> Option<SourceKey> {
        let key = match canonical(ip) {
            IpAddr::V4(v4) => V4_TAG | u64::from(u32::from(v4)),
            IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64,
        };
        (key != Self::EMPTY).then_some(SourceKey(key))
    }

    /// The packed value stored in a table slot.
    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    /// The key a table slot holds, unless it is empty.
    pub(crate) fn from_bits(bits: u64) -> Option<SourceKey> {
        (bits != Self::EMPTY).then_some(SourceKey(bits))
    }

    /// A well-mixed hash of the key, for a table index (keyed by `seed`, so that an attacker
    /// cannot pick addresses that collide without knowing it).
    pub(crate) fn hash(self, seed: u64) -> u64 {
        let mut x = self.0 ^ seed;
        // splitmix64's finalizer: every input bit reaches every output bit.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

impl fmt::Display for SourceKey {
    /// `192.0.2.7` for IPv4, `2001:db8:1:2::/64` for IPv6.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 & V4_TAG == V4_TAG {
            write!(f, "{}", Ipv4Addr::from(self.0 as u32))
        } else {
            write!(f, "{}/64", Ipv6Addr::from(u128::from(self.0) << 64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SourceKey {
        SourceKey::of(text.parse().unwrap()).unwrap()
    }

    #[test]
    fn ipv4_is_per_address_and_ipv6_per_64() {
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2::5").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("::1").to_string(), "::/64");
        assert!(SourceKey::of("255.255.255.255".parse().unwrap()).is_none());
        let k = key("10.0.0.1");
        assert_eq!(SourceKey::from_bits(k.bits()), Some(k));
        assert_eq!(SourceKey::from_bits(SourceKey::EMPTY), None);
    }
}
