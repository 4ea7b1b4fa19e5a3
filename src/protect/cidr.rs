//! CIDR blocks and sets of them: the address predicate of the allowlist and the access lists,
//! public so that other modules (the routing policy) can match sources the same way.
//!
//! A [`CidrSet`] keeps, per prefix length in use, a sorted list of masked networks; a lookup
//! masks the address once per length in use and binary-searches. It never allocates and never
//! panics. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match as the IPv4 address they carry.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One block: a network address and a prefix length, e.g. `10.0.0.0/8` or `2001:db8::/32`.
/// A bare address is a block of one (`/32` or `/128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    len: u8,
}

impl Cidr {
    /// The block of `len` leading bits of `ip` (bits past `len` are cleared); `None` when
    /// `len` is longer than the address.
    pub fn new(ip: IpAddr, len: u8) -> Option<Cidr> {
        let ip = canonical(ip);
        match ip {
            IpAddr::V4(v4) if len <= 32 => Some(Cidr {
                network: IpAddr::V4(mask_v4(u32::from(v4), len).into()),
                len,
            }),
            IpAddr::V6(v6) if len <= 128 => Some(Cidr {
                network: IpAddr::V6(mask_v6(u128::from(v6), len).into()),
                len,
            }),
            _ => None,
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(u32::from(ip), self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_v6(u128::from(ip), self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an address or ADDRESS/LENGTH block");
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let bare = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let ip: IpAddr = bare.parse().map_err(|_| bad())?;
        let full = if canonical(ip).is_ipv4() { 32 } else { 128 };
        Cidr::new(ip, len.unwrap_or(full)).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// A set of CIDR blocks with longest-prefix lookups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrSet {
    /// (prefix length, sorted masked networks), longest prefix first.
    v4: Vec<(u8, Vec<u32>)>,
    v6: Vec<(u8, Vec<u128>)>,
    blocks: Vec<Cidr>,
}

impl CidrSet {
    /// The set of `blocks` (duplicates are harmless).
    pub fn new(blocks: impl IntoIterator<Item = Cidr>) -> CidrSet {
        let mut set = CidrSet::default();
        for block in blocks {
            set.insert(block);
        }
        set
    }

    /// Parses every text as a [`Cidr`]; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<CidrSet, String> {
        let blocks = texts
            .iter()
            .map(|t| t.as_ref().parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CidrSet::new(blocks))
    }

    fn insert(&mut self, block: Cidr) {
        self.blocks.push(block);
        match block.network {
            IpAddr::V4(net) => add(&mut self.v4, block.len, u32::from(net)),
            IpAddr::V6(net) => add(&mut self.v6, block.len, u128::from(net)),
        }
    }

    /// True when the set holds no block.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The blocks, in the order given.
    pub fn blocks(&self) -> &[Cidr] {
        &self.blocks
    }

    /// Whether any block contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.longest_match(ip).is_some()
    }

    /// The prefix length of the most specific block containing `ip`.
    pub fn longest_match(&self, ip: IpAddr) -> Option<u8> {
        match canonical(ip) {
            IpAddr::V4(v4) => {
                let ip = u32::from(v4);
                self.v4
                    .iter()
                    .find(|(len, nets)| nets.binary_search(&mask_v4(ip, *len)).is_ok())
                    .map(|(len, _)| *len)
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                self.v6
                    .iter()
                    .find(|(len, nets)| nets.binary_search(&mask_v6(ip, *len)).is_ok())
                    .map(|(len, _)| *len)
            }
        }
    }
}

fn add<T: Ord + Copy>(lists: &mut Vec<(u8, Vec<T>)>, len: u8, net: T) {
    let at = match lists.binary_search_by(|(l, _)| len.cmp(l)) {
        Ok(i) => i,
        Err(i) => {
            lists.insert(i, (len, Vec::new()));
            i
        }
    };
    let nets = &mut lists[at].1;
    if let Err(i) = nets.binary_search(&net) {
        nets.insert(i, net);
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries; anything else unchanged.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn mask_v4(ip: u32, len: u8) -> u32 {
    match len {
        0 => 0,
        l => ip & (u32::MAX << (32 - u32::from(l.min(32)))),
    }
}

fn mask_v6(ip: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l => ip & (u128::MAX << (128 - u32::from(l.min(128)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_clear_host_bits() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert_eq!(
            "127.0.0.9".parse::<Cidr>().unwrap().to_string(),
            "127.0.0.9/32"
        );
        assert_eq!(
            "[2001:db8::1]/32".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            "::ffff:10.0.0.1".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.1/32"
        );
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().prefix_len(), 0);
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "banana",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn membership_follows_the_prefix() {
        let c: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(c.contains(ip("192.0.2.255")));
        assert!(c.contains(ip("::ffff:192.0.2.7")));
        assert!(!c.contains(ip("192.0.3.0")));
        assert!(!c.contains(ip("2001:db8::1")));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains(ip("2001:db8::1")));
        assert!(!all.contains(ip("10.0.0.1")));
    }

    #[test]
    fn sets_find_the_longest_match() {
        let set =
            CidrSet::parse(&["10.0.0.0/8", "10.66.0.0/16", "10.66.1.1", "2001:db8::/64"]).unwrap();
        assert_eq!(set.longest_match(ip("10.1.1.1")), Some(8));
        assert_eq!(set.longest_match(ip("10.66.9.9")), Some(16));
        assert_eq!(set.longest_match(ip("10.66.1.1")), Some(32));
        assert_eq!(set.longest_match(ip("11.0.0.1")), None);
        assert_eq!(set.longest_match(ip("2001:db8::ffff")), Some(64));
        assert_eq!(set.longest_match(ip("2001:db8:0:1::1")), None);
        assert!(set.contains(ip("::ffff:10.0.0.1")));
        assert_eq!(set.blocks().len(), 4);
        assert!(CidrSet::default().is_empty());
        assert!(!CidrSet::default().contains(ip("10.0.0.1")));
        assert!(CidrSet::parse(&["10.0.0.0/8", "nope"]).is_err());
    }

    #[test]
    fn a_thousand_blocks_match_like_a_scan() {
        let blocks: Vec<Cidr> = (0..1000u32)
            .map(|i| {
                Cidr::new(
                    IpAddr::V4((i.wrapping_mul(2_654_435_761)).into()),
                    (i % 25 + 8) as u8,
                )
                .unwrap()
            })
            .collect();
        let set = CidrSet::new(blocks.iter().copied());
        for probe in (0..5000u32).map(|i| IpAddr::V4(i.wrapping_mul(40_503).into())) {
            let want = blocks
                .iter()
                .filter(|b| b.contains(probe))
                .map(|b| b.prefix_len())
                .max();
            assert_eq!(set.longest_match(probe), want, "{probe}");
        }
    }
}
