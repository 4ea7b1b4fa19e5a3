//! TCP for the runtime's tests: a proxy listening on UDP and TCP on one loopback address
//! (IPv4 or IPv6), a SIP client that frames what it reads by Content-Length, a next hop that
//! accepts the proxy's connections, and a guard that skips IPv6 tests (with a message) where
//! the machine has no IPv6 loopback. Every read is bounded by [`RECV_LIMIT`].

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use ferrovia::service::Service;
use ferrovia::settings::{ListenAddr, Metrics, Settings};

use super::{RECV_LIMIT, start_service};

/// The loopback address of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn ip(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        }
    }

    /// Port 0 on this family's loopback.
    pub fn any_port(self) -> SocketAddr {
        SocketAddr::new(self.ip(), 0)
    }

    /// A UDP socket on this family's loopback (port 0) with a bounded read timeout: a
    /// client or a next hop.
    pub fn udp_peer(self) -> UdpSocket {
        let socket = UdpSocket::bind(self.any_port()).expect("bind a UDP peer");
        socket
            .set_read_timeout(Some(super::RECV_LIMIT))
            .expect("read timeout");
        socket
    }

    /// Whether the machine has this loopback; prints why a test is skipped when not.
    pub fn available(self, test: &str) -> bool {
        let ok =
            TcpListener::bind(self.any_port()).is_ok() && UdpSocket::bind(self.any_port()).is_ok();
        if !ok {
            eprintln!(
                "{test}: skipped on {self:?}: no loopback address {}",
                self.ip()
            );
        }
        ok
    }
}

/// `addr` as a SIP host and port: an IPv6 address in brackets.
pub fn host(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Runs `test` on IPv4 loopback, and on IPv6 loopback where the machine has it.
pub fn on_each_family(name: &str, mut test: impl FnMut(Family)) {
    for family in [Family::V4, Family::V6] {
        if family.available(name) {
            test(family);
        }
    }
}

/// Settings for an in-process proxy listening on `udp:` then `tcp:` on this family's
/// loopback (ports chosen by the kernel).
pub fn dual_settings(family: Family, workers: usize) -> Settings {
    let addr = family.any_port();
    Settings {
        listen: vec![ListenAddr::udp(addr), ListenAddr::tcp(addr)],
        workers,
        metrics: Metrics::Off,
        ..Settings::default()
    }
}

/// A running in-process proxy with its UDP and TCP addresses.
pub struct DualProxy {
    pub server: Service,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

pub fn start_dual(settings: &Settings) -> DualProxy {
    let server = start_service(settings);
    let (udp, tcp) = (server.local_addrs()[0], server.local_addrs()[1]);
    DualProxy { server, udp, tcp }
}

/// One SIP-over-TCP connection, reading whole messages.
pub struct SipStream {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl SipStream {
    pub fn connect(to: SocketAddr) -> SipStream {
        let stream = TcpStream::connect_timeout(&to, RECV_LIMIT).expect("connect to the proxy");
        SipStream::wrap(stream)
    }

    pub fn wrap(stream: TcpStream) -> SipStream {
        stream
            .set_read_timeout(Some(RECV_LIMIT))
            .expect("set a read timeout");
        stream.set_nodelay(true).expect("set nodelay");
        SipStream {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the proxy");
    }

    /// The next whole message, failing the test after [`RECV_LIMIT`].
    pub fn recv(&mut self) -> String {
        self.try_recv()
            .unwrap_or_else(|e| panic!("no message arrived on {:?}: {e}", self.stream.local_addr()))
    }

    /// The next whole message, or why none came (end of stream, timeout).
    pub fn try_recv(&mut self) -> io::Result<String> {
        loop {
            if let Some(len) = framed_len(&self.buf) {
                let message: Vec<u8> = self.buf.drain(..len).collect();
                return Ok(String::from_utf8_lossy(&message).into_owned());
            }
            self.fill()?;
        }
    }

    /// Reads exactly `n` raw bytes (e.g. a CRLF pong).
    pub fn recv_raw(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().expect("raw bytes arrive");
        }
        self.buf.drain(..n).collect()
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// Waits until the proxy closes the connection (end of stream or reset), discarding
    /// what arrives; fails the test if it stays open past [`RECV_LIMIT`].
    pub fn expect_closed(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("the proxy did not close the connection: {e}"),
            }
        }
    }
}

/// The length of the first whole message in `buf` (leading CRLFs included), if any.
fn framed_len(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let length: usize = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length") || n.trim() == "l")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    (buf.len() >= end + length).then_some(end + length)
}

/// A next hop that accepts connections on loopback.
pub struct NextHop {
    pub listener: TcpListener,
}

impl NextHop {
    pub fn bind(family: Family) -> NextHop {
        NextHop {
            listener: TcpListener::bind(family.any_port()).expect("bind a next hop"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("local address")
    }

    /// The next connection the proxy opens to us (bounded wait).
    pub fn accept(&self) -> SipStream {
        self.listener.set_nonblocking(true).expect("nonblocking");
        let deadline = std::time::Instant::now() + RECV_LIMIT;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    return SipStream::wrap(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the proxy never connected"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept failed: {e}"),
            }
        }
    }
}
