//! The host's interface addresses (`getifaddrs`), so a proxy bound to a wildcard address
//! can recognise itself in Route and Request-URI.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

/// Every IPv4 and IPv6 address configured on the host's interfaces.
pub(crate) fn interface_addrs() -> io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer; on success we free it with freeifaddrs below.
    syscall!(getifaddrs(&mut list))?;
    let mut addrs = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: a non-null entry of the list getifaddrs built, still alive.
        let entry = unsafe { &*cursor };
        if let Some(ip) = ip_of(entry.ifa_addr) {
            addrs.push(ip);
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(list) };
    Ok(addrs)
}

fn ip_of(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: a non-null ifa_addr points at a sockaddr whose family says its real type.
    match i32::from(unsafe { (*addr).sa_family }) {
        libc::AF_INET => {
            // SAFETY: the family is AF_INET, so this is a sockaddr_in.
            let sin = unsafe { ptr::read_unaligned(addr.cast::<libc::sockaddr_in>()) };
            Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
            let sin6 = unsafe { ptr::read_unaligned(addr.cast::<libc::sockaddr_in6>()) };
            Some(Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_the_interface_addresses() {
        let addrs = interface_addrs().unwrap();
        assert!(
            addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{addrs:?}"
        );
    }
}
