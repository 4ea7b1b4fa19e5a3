//! Opening the UDP sockets the tools use: non-blocking, large kernel buffers, optionally
//! `SO_REUSEPORT` so that several threads can bind one address; and the loopback-only rule.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// Kernel buffer size asked for each socket; the kernel caps it at `net.core.[rw]mem_max`.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Whether other sockets may bind the same address (`SO_REUSEPORT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    Exclusive,
    ReusePort,
}

/// A non-blocking UDP socket bound to `addr`, with large buffers.
pub fn udp_socket(addr: SocketAddr, sharing: Sharing) -> io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if sharing == Sharing::ReusePort {
        socket.set_reuse_port(true)?;
    }
    // Best effort: a smaller buffer than asked for is still a working socket.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}

/// The loopback address of `peer`'s family, port 0: where to bind a socket that talks to it.
pub fn any_port_toward(peer: SocketAddr) -> SocketAddr {
    let ip = match peer.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, 0)
}

/// These tools send load: they only ever aim at this machine (127.0.0.0/8 or ::1).
pub fn require_loopback(what: &str, addr: SocketAddr) -> Result<SocketAddr, String> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{what} {addr} is not a loopback address (127.0.0.0/8 or [::1]): refused"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_pass() {
        assert!(require_loopback("target", "127.0.0.1:5060".parse().unwrap()).is_ok());
        assert!(require_loopback("target", "127.9.9.9:5060".parse().unwrap()).is_ok());
        assert!(require_loopback("target", "[::1]:5060".parse().unwrap()).is_ok());
        assert!(require_loopback("target", "10.0.0.1:5060".parse().unwrap()).is_err());
        assert!(require_loopback("target", "0.0.0.0:5060".parse().unwrap()).is_err());
    }

    #[test]
    fn two_reuse_port_sockets_share_an_address() {
        let first = udp_socket("127.0.0.1:0".parse().unwrap(), Sharing::ReusePort).unwrap();
        let addr = first.local_addr().unwrap();
        assert!(udp_socket(addr, Sharing::ReusePort).is_ok());
        assert!(udp_socket(addr, Sharing::Exclusive).is_err());
    }
}
