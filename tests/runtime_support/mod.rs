//! Shared helpers for the runtime's black-box tests: the shipping [`Service`] in process (the
//! one `main` runs, recording into the stats module), loopback peers that speak just enough
//! SIP, the ferrovia binary and sipp as child processes that are killed when dropped.
//! Every port is chosen by the kernel; every wait is bounded.

#![allow(dead_code, unreachable_pub)]

pub mod process;
pub mod round_trips;
pub mod sip;
pub mod tcp;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ferrovia::record::StreamEvent;
use ferrovia::service::{Service, ServiceOptions};
use ferrovia::settings::{ListenAddr, Metrics, Settings};

/// How long a test waits for one datagram before it fails.
pub const RECV_LIMIT: Duration = Duration::from_secs(5);

/// Settings for an in-process proxy on 127.0.0.1 (kernel-chosen port) with `workers`. DNS is
/// off (a name outside `[hosts]` gets 503 at once): tests stay on loopback and never ask the
/// machine's resolver; the DNS tests turn it on with a dnsmasq of their own.
pub fn loopback_settings(workers: usize) -> Settings {
    let mut settings = Settings {
        listen: vec![ListenAddr::udp(SocketAddr::from(([127, 0, 0, 1], 0)))],
        workers,
        metrics: Metrics::Off,
        ..Settings::default()
    };
    settings.dns.enabled = false;
    settings
}

/// How often the in-process proxies hand their statistics over, so a test sees events soon.
pub const STATS_INTERVAL: Duration = Duration::from_millis(10);

/// Starts the shipping service in process, with a short statistics interval.
pub fn start_service(settings: &Settings) -> Service {
    start_service_with(settings, ServiceOptions::default())
}

/// [`start_service`] with side services of the test's own.
pub fn start_service_with(settings: &Settings, options: ServiceOptions) -> Service {
    let options = ServiceOptions {
        stats_interval: STATS_INTERVAL,
        ..options
    };
    Service::start_with(settings, options).expect("the proxy starts on loopback")
}

/// Starts an in-process proxy; returns it and its address.
pub fn start_proxy(settings: &Settings) -> (Service, SocketAddr) {
    let service = start_service(settings);
    let addr = service.local_addrs()[0];
    (service, addr)
}

/// How often `event` was counted so far (as of the workers' last statistics hand-off).
pub fn count(service: &Service, event: StreamEvent) -> u64 {
    service
        .snapshot()
        .merged()
        .cumulative
        .counters()
        .stream(event)
}

/// Waits until the proxy has received at least `n` messages; fails the test after
/// [`RECV_LIMIT`].
pub fn wait_for_received(service: &Service, n: u64) {
    let received = || service.snapshot().merged().cumulative.counters().received();
    let deadline = std::time::Instant::now() + RECV_LIMIT;
    while received() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy received {}, not {n}",
            received()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `event` was counted at least `n` times; fails the test after [`RECV_LIMIT`].
pub fn wait_for(service: &Service, event: StreamEvent, n: u64) {
    let deadline = std::time::Instant::now() + RECV_LIMIT;
    while count(service, event) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy reported {event} {} times, not {n}",
            count(service, event)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A UDP socket on 127.0.0.1 with a bounded read timeout and room for bursts.
pub fn peer() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback peer");
    socket
        .set_read_timeout(Some(RECV_LIMIT))
        .expect("set a read timeout");
    let sock = socket2::SockRef::from(&socket);
    let _ = sock.set_recv_buffer_size(4 << 20);
    socket
}

/// Receives one datagram as text, failing the test after [`RECV_LIMIT`].
pub fn recv_text(socket: &UdpSocket) -> (String, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    let (len, from) = socket
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("nothing arrived at {:?}: {e}", socket.local_addr()));
    (String::from_utf8_lossy(&buf[..len]).into_owned(), from)
}

/// `METHOD path` over HTTP/1.1 (one request per connection, no body, bounded read): the
/// status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the metrics port");
    stream
        .set_read_timeout(Some(RECV_LIMIT))
        .expect("set a read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read the answer");
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `GET path`: the body of a 200 answer; fails the test on anything else.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = http(addr, "GET", path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// A UDP port that was free a moment ago (for programs that need a port number up front).
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind port 0");
    socket.local_addr().expect("local address").port()
}

/// Two free UDP ports `p` and `p + 2` (sipp's media ports).
pub fn free_udp_port_pair() -> u16 {
    for _ in 0..64 {
        let first = UdpSocket::bind("127.0.0.1:0").expect("bind port 0");
        let port = first.local_addr().expect("local address").port();
        if port < u16::MAX - 2 && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok() {
            return port;
        }
    }
    panic!("no pair of free UDP ports found");
}
