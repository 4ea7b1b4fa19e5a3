//! Opening sockets for TCP: one `SO_REUSEPORT` listener per worker on the same address (the
//! kernel spreads new connections over them by 4-tuple), and the outbound connections a
//! worker opens toward next hops (non-blocking, bound to the listener's address so the next
//! hop sees the address this proxy advertises).

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues per listener before refusing more.
const BACKLOG: i32 = 1024;

/// Opens `count` listeners on `addr` (one per worker); returns them and the bound address.
pub(crate) fn open_group(
    addr: SocketAddr,
    count: usize,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    if addr.port() != 0 {
        check_unused(addr)?;
    }
    let first = open_listener(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = Vec::with_capacity(count);
    listeners.push(first);
    for _ in 1..count {
        listeners.push(open_listener(bound)?);
    }
    Ok((listeners, bound))
}

fn stream_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Fails with `AddrInUse` when anything already listens on `addr`, even another reuse-port
/// group (which would otherwise silently share our connections).
fn check_unused(addr: SocketAddr) -> io::Result<()> {
    let probe = stream_socket(addr)?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())
}

fn open_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = stream_socket(addr)?;
    // SO_REUSEADDR lets a restarted proxy bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(StdTcpListener::from(socket)))
}

/// Starts a non-blocking connect to `destination` from `local`'s address (any port), or from
/// any address when `local` is a wildcard or of the other family.
pub(crate) fn connect(destination: SocketAddr, local: SocketAddr) -> io::Result<TcpStream> {
    let socket = stream_socket(destination)?;
    socket.set_tcp_nodelay(true)?;
    if !local.ip().is_unspecified() && local.is_ipv4() == destination.is_ipv4() {
        socket.bind(&SocketAddr::new(local.ip(), 0).into())?;
    }
    match socket.connect(&destination.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_shares_one_resolved_port_and_a_taken_port_is_refused() {
        let (listeners, bound) = open_group("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_ne!(bound.port(), 0);
        for l in &listeners {
            assert_eq!(l.local_addr().unwrap(), bound);
        }
        let err = open_group(bound, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn connects_from_the_listener_address() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = connect(server.local_addr().unwrap(), "127.0.0.1:9".parse().unwrap()).unwrap();
        let (_, from) = server.accept().unwrap();
        assert_eq!(from.ip(), stream.local_addr().unwrap().ip());
        assert_ne!(from.port(), 9);
    }
}
