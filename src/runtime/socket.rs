//! Opening the workers' UDP sockets: one `SO_REUSEPORT` socket per worker on the same
//! address, non-blocking, with large kernel buffers and arrival timestamps turned on.
//!
//! The kernel spreads datagrams over a reuse-port group by their 4-tuple, so each flow stays
//! on one socket (one worker) and is never reordered. A port of 0 is resolved by the first
//! socket; the rest of the group binds the port it got.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use log::{debug, info, warn};
use mio::net::UdpSocket;
use socket2::{Domain, Protocol, Socket, Type};

use super::sys;
use crate::settings::SocketOptions;

/// Opens `count` sockets on `addr` (one per worker); returns them and the bound address.
pub(crate) fn open_group(
    addr: SocketAddr,
    count: usize,
    options: &SocketOptions,
) -> io::Result<(Vec<UdpSocket>, SocketAddr)> {
    if addr.port() != 0 {
        check_unused(addr)?;
    }
    let first = open_udp(addr, options, true)?;
    let bound = first.local_addr()?;
    let mut sockets = Vec::with_capacity(count);
    sockets.push(first);
    for _ in 1..count {
        sockets.push(open_udp(bound, options, false)?);
    }
    Ok((sockets, bound))
}

/// Fails with `AddrInUse` when anything already holds `addr`, even another reuse-port
/// group: without this check a second proxy would silently share our traffic.
fn check_unused(addr: SocketAddr) -> io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        probe.set_only_v6(true)?;
    }
    probe.bind(&addr.into())
}

/// One non-blocking reuse-port UDP socket bound to `addr`.
fn open_udp(addr: SocketAddr, options: &SocketOptions, log_grant: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    size_buffers(&socket, options, log_grant);
    if let Err(e) = sys::tune_socket(&socket) {
        warn!("udp:{addr}: no arrival timestamps or kernel drop counts: {e}");
    }
    if let Err(e) = sys::report_unreachable(&socket, addr.is_ipv6()) {
        warn!("udp:{addr}: ICMP unreachable errors will not mark group destinations down: {e}");
    }
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(StdUdpSocket::from(socket)))
}

/// Asks for the configured buffer sizes, forcing past the system limit where permitted,
/// and logs what the kernel granted. Never fails: a smaller buffer still works.
fn size_buffers(socket: &Socket, options: &SocketOptions, log_grant: bool) {
    let _ = socket.set_recv_buffer_size(options.recv_buffer);
    if socket.recv_buffer_size().unwrap_or(0) < options.recv_buffer {
        let _ = sys::force_recv_buffer(socket, options.recv_buffer);
    }
    let _ = socket.set_send_buffer_size(options.send_buffer);
    if socket.send_buffer_size().unwrap_or(0) < options.send_buffer {
        let _ = sys::force_send_buffer(socket, options.send_buffer);
    }
    let recv = socket.recv_buffer_size().unwrap_or(0);
    let send = socket.send_buffer_size().unwrap_or(0);
    let message = format!(
        "socket buffers: receive {} KiB (asked {} KiB), send {} KiB (asked {} KiB)",
        recv >> 10,
        options.recv_buffer >> 10,
        send >> 10,
        options.send_buffer >> 10
    );
    if log_grant {
        info!("{message}");
    } else {
        debug!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_shares_one_resolved_port() {
        let options = SocketOptions::default();
        let (sockets, bound) = open_group("127.0.0.1:0".parse().unwrap(), 3, &options).unwrap();
        assert_ne!(bound.port(), 0);
        for s in &sockets {
            assert_eq!(s.local_addr().unwrap(), bound);
        }
    }

    #[test]
    fn a_taken_port_is_refused() {
        let taken = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = open_group(addr, 1, &SocketOptions::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
