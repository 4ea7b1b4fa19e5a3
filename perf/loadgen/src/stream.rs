//! Load over stream transports (TCP, TLS, WS, WSS) through a forwarder, for whole-process
//! figures: many client connections, each keeping a window of requests in flight
//! (closed-loop), through the forwarder to a next hop this tool also plays (a TCP or TLS
//! listener answering every request with a stateless 200 OK), and back. With `--pid`, the
//! forwarder's CPU time (utime + stime from `/proc/PID/stat`) over the run gives its CPU per
//! forwarded message (a request and its response are two). A handshake mode opens TLS
//! connections one after another per thread, full or resumed, with one round trip each.
//!
//! Blocking sockets, a thread per connection: a load tool, not the thing measured. Every run
//! is bounded by a count and a duration, and aims at loopback only.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls::{HandshakeKind, StreamOwned};

use crate::sip::reply;

/// How the clients reach the forwarder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    fn tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }
    fn ws(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }
    fn via(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }
}

/// The PEM files of the run: the CA the clients (and the forwarder) trust, and the next
/// hop's certificate and key (for 127.0.0.1: the forwarder verifies it by IP address).
#[derive(Clone, Debug)]
pub struct Pems {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub proxy: SocketAddr,
    pub transport: Transport,
    /// The next hop speaks TLS (else TCP).
    pub next_tls: bool,
    pub connections: usize,
    pub window: usize,
    /// Requests in all.
    pub count: u64,
    pub duration: Duration,
    /// Pad each request to at least this many bytes.
    pub size: usize,
    pub pems: Option<Pems>,
    /// The name the forwarder's certificate is checked against.
    pub server_name: String,
    pub pid: Option<u32>,
}

#[derive(Debug)]
pub struct StreamReport {
    pub transport: Transport,
    pub sent: u64,
    pub answered: u64,
    pub secs: f64,
    /// The forwarder's CPU time over the run, when `--pid` was given.
    pub proxy_cpu: Option<Duration>,
}

impl StreamReport {
    /// Forwarded messages: each answered request crossed twice (request, response).
    pub fn messages(&self) -> u64 {
        2 * self.answered
    }
    pub fn cpu_per_message_ns(&self) -> Option<f64> {
        let cpu = self.proxy_cpu?;
        Some(cpu.as_nanos() as f64 / self.messages().max(1) as f64)
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "transport": self.transport.name(),
            "sent": self.sent,
            "answered": self.answered,
            "secs": self.secs,
            "messages_per_sec": self.messages() as f64 / self.secs.max(1e-9),
            "proxy_cpu_ns": self.proxy_cpu.map(|c| c.as_nanos() as u64),
            "cpu_per_message_ns": self.cpu_per_message_ns(),
        })
    }
}

/// A byte stream of any layer.
trait Wire: Read + Write + Send {}
impl<T: Read + Write + Send> Wire for T {}

/// The forwarder's CPU time (all its threads), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, 100 on every architecture it runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Runs the message load; the next hop runs for its length.
pub fn run(config: &StreamConfig, stop: &AtomicBool) -> io::Result<StreamReport> {
    let next = NextHop::start(config)?;
    let client = client_config(config)?;
    let remaining = Arc::new(AtomicU64::new(config.count));
    let answered = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + config.duration;
    let cpu_before = config.pid.and_then(cpu_time);
    let start = Instant::now();
    let errors = Arc::new(Mutex::new(Vec::new()));
    thread::scope(|s| {
        for c in 0..config.connections {
            let (remaining, answered, sent) = (remaining.clone(), answered.clone(), sent.clone());
            let (client, errors, next_addr) = (client.clone(), errors.clone(), next.addr);
            s.spawn(move || {
                let outcome = drive(config, c, next_addr, client, deadline, stop, &remaining).map(
                    |(s, a)| {
                        sent.fetch_add(s, Ordering::Relaxed);
                        answered.fetch_add(a, Ordering::Relaxed);
                    },
                );
                if let Err(e) = outcome {
                    errors.lock().unwrap().push(e.to_string());
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = config.pid.and_then(cpu_time);
    next.stop();
    if let Some(e) = errors.lock().unwrap().first() {
        eprintln!("stream: a connection failed: {e}");
    }
    Ok(StreamReport {
        transport: config.transport,
        sent: sent.load(Ordering::Relaxed),
        answered: answered.load(Ordering::Relaxed),
        secs,
        proxy_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b)),
    })
}

/// One client connection: a window of requests in flight until the count or the deadline.
fn drive(
    config: &StreamConfig,
    c: usize,
    next: SocketAddr,
    client: Option<Arc<ClientConfig>>,
    deadline: Instant,
    stop: &AtomicBool,
    remaining: &AtomicU64,
) -> io::Result<(u64, u64)> {
    let mut conn = connect(config, client)?;
    let take = || {
        remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    };
    let (mut sent, mut answered, mut in_flight) = (0u64, 0u64, 0usize);
    while in_flight < config.window && take() {
        conn.send(&request(config, c, sent, next))?;
        sent += 1;
        in_flight += 1;
    }
    while in_flight > 0 {
        conn.recv()?;
        answered += 1;
        in_flight -= 1;
        let go_on = Instant::now() < deadline && !stop.load(Ordering::Relaxed);
        if go_on && take() {
            conn.send(&request(config, c, sent, next))?;
            sent += 1;
            in_flight += 1;
        }
    }
    Ok((sent, answered))
}

/// A request through the forwarder to the next hop (RFC 3261 §16.12: routed by its Route).
fn request(config: &StreamConfig, c: usize, seq: u64, next: SocketAddr) -> Vec<u8> {
    let t = config.transport;
    let hop = if config.next_tls { "tls" } else { "tcp" };
    let via_host = if t.ws() {
        "lg.invalid".to_string()
    } else {
        "127.0.0.1:9".to_string()
    };
    let head = format!(
        "INVITE sip:bob@{next};transport={hop} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {via_host};branch=z9hG4bK-lg{c}x{seq};rport\r\n\
         Route: <sip:{next};transport={hop};lr>\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@loadgen.test>;tag=lg{c}\r\n\
         To: <sip:bob@{next}>\r\n\
         Call-ID: lg{c}x{seq}@loadgen.test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{via_host};transport={tr}>\r\n\
         Content-Type: application/sdp\r\n",
        via = t.via(),
        tr = t.name(),
    );
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=x:";
    let build = |pad: usize| {
        let body = format!("{sdp}{}\r\n", "p".repeat(pad));
        format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    let bare = build(0);
    match config.size.checked_sub(bare.len()) {
        Some(pad) if pad > 0 => build(pad),
        _ => bare,
    }
}

/// A client connection to the forwarder, with its layers.
struct Conn {
    wire: Box<dyn Wire>,
    ws: bool,
    buf: Vec<u8>,
}

fn connect(config: &StreamConfig, client: Option<Arc<ClientConfig>>) -> io::Result<Conn> {
    let tcp = TcpStream::connect(config.proxy)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut wire: Box<dyn Wire> = match client {
        Some(cfg) => {
            let name =
                ServerName::try_from(config.server_name.clone()).map_err(io::Error::other)?;
            let tls = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
            Box::new(StreamOwned::new(tls, tcp))
        }
        None => Box::new(tcp),
    };
    let mut buf = Vec::new();
    if config.transport.ws() {
        upgrade(&mut wire, config.proxy, &mut buf)?;
    }
    Ok(Conn {
        wire,
        ws: config.transport.ws(),
        buf,
    })
}

/// The WebSocket upgrade (RFC 6455 §4.1) with the `sip` subprotocol (RFC 7118 §4).
fn upgrade(wire: &mut Box<dyn Wire>, host: SocketAddr, buf: &mut Vec<u8>) -> io::Result<()> {
    let hello = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: sip\r\n\r\n"
    );
    wire.write_all(hello.as_bytes())?;
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(wire, buf)?;
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other("WebSocket upgrade refused"));
    }
    buf.drain(..end);
    Ok(())
}

impl Conn {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        if !self.ws {
            return self.wire.write_all(message);
        }
        // One masked text frame (RFC 6455 §5.2, §5.3); the key need not be secret here.
        let mask = [0x5a, 0x17, 0xc3, 0x81];
        let mut frame = Vec::with_capacity(message.len() + 14);
        frame.push(0x81);
        match message.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(message.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.wire.write_all(&frame)
    }

    /// Reads one whole message (a SIP message on a stream, or one WebSocket frame).
    fn recv(&mut self) -> io::Result<()> {
        loop {
            let whole = if self.ws {
                ws_frame(&self.buf)
            } else {
                sip_message(&self.buf)
            };
            if let Some(n) = whole {
                self.buf.drain(..n);
                return Ok(());
            }
            fill(&mut self.wire, &mut self.buf)?;
        }
    }
}

fn fill(wire: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = wire.read(&mut chunk)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The length of the SIP message at the front of `buf` once it is all there (RFC 3261
/// §18.3: Content-Length frames it on a stream).
fn sip_message(buf: &[u8]) -> Option<usize> {
    let end = find(buf, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let len = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length") || n.trim() == "l")
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= end + len).then_some(end + len)
}

/// The length of the unmasked frame at the front of `buf` once it is all there.
fn ws_frame(buf: &[u8]) -> Option<usize> {
    let (&b1, rest) = buf.get(1).map(|b| (b, &buf[2..]))?;
    let (len, head) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    (buf.len() >= head + len).then_some(head + len)
}

/// The next hop: accepts the forwarder's connections and answers each request.
struct NextHop {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl NextHop {
    fn start(config: &StreamConfig) -> io::Result<NextHop> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let server = match (config.next_tls, &config.pems) {
            (true, Some(p)) => Some(server_config(&p.cert, &p.key)?),
            (true, None) => return Err(io::Error::other("a TLS next hop needs --pems")),
            _ => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut workers = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (server, flag) = (server.clone(), flag.clone());
                        workers.push(thread::spawn(move || {
                            let _ = answer_all(tcp, server, &flag);
                        }));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            workers.into_iter().for_each(|w| {
                let _ = w.join();
            });
        });
        Ok(NextHop {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers every request on one of the forwarder's connections with a 200 OK.
fn answer_all(
    tcp: TcpStream,
    server: Option<Arc<ServerConfig>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut wire: Box<dyn Wire> = match server {
        Some(cfg) => Box::new(StreamOwned::new(
            ServerConnection::new(cfg).map_err(io::Error::other)?,
            tcp,
        )),
        None => Box::new(tcp),
    };
    let (mut buf, mut out) = (Vec::new(), vec![0u8; 64 * 1024]);
    while !stop.load(Ordering::Relaxed) {
        while let Some(n) = sip_message(&buf) {
            if let Ok(reply::Answer::Ok(len)) = reply::answer(&buf[..n], b"nh", &mut out) {
                wire.write_all(&out[..len])?;
            }
            buf.drain(..n);
        }
        match fill(&mut wire, &mut buf) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn roots(ca: &Path) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(io::Error::other)? {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    Ok(roots)
}

fn client_config(config: &StreamConfig) -> io::Result<Option<Arc<ClientConfig>>> {
    if !config.transport.tls() {
        return Ok(None);
    }
    let pems = config
        .pems
        .as_ref()
        .ok_or_else(|| io::Error::other("TLS needs --ca"))?;
    Ok(Some(new_client(&pems.ca)?))
}

/// A client configuration with its own (empty) resumption store.
fn new_client(ca: &Path) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let c = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth();
    Ok(Arc::new(c))
}

fn server_config(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(io::Error::other)?;
    let key = PrivateKeyDer::from_pem_reader(BufReader::new(File::open(key)?))
        .map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let c = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(c))
}

/// What a handshake run measured.
#[derive(Debug)]
pub struct HandshakeReport {
    pub resumed: bool,
    pub handshakes: u64,
    /// How many of them the server resumed (all, or none, when it works).
    pub resumed_count: u64,
    pub secs: f64,
    pub proxy_cpu: Option<Duration>,
}

impl HandshakeReport {
    pub fn to_json(&self) -> serde_json::Value {
        let per = self
            .proxy_cpu
            .map(|c| c.as_nanos() as f64 / self.handshakes.max(1) as f64);
        serde_json::json!({
            "mode": if self.resumed { "resumed" } else { "full" },
            "handshakes": self.handshakes,
            "resumed_count": self.resumed_count,
            "secs": self.secs,
            "per_sec": self.handshakes as f64 / self.secs.max(1e-9),
            "proxy_cpu_ns_each": per,
            "per_proxy_core_sec": per.map(|p| 1e9 / p.max(1.0)),
        })
    }
}

/// TLS connections one after another on each of `config.connections` threads, `count` in
/// all: a handshake and one OPTIONS round trip with the forwarder each (so its side is
/// complete, and TLS 1.3 tickets have arrived), full or resumed.
pub fn handshakes(
    config: &StreamConfig,
    resumed: bool,
    stop: &AtomicBool,
) -> io::Result<HandshakeReport> {
    let ca = &config
        .pems
        .as_ref()
        .ok_or_else(|| io::Error::other("handshakes need --ca"))?
        .ca;
    let remaining = AtomicU64::new(config.count);
    let (done, resumed_count) = (AtomicU64::new(0), AtomicU64::new(0));
    let deadline = Instant::now() + config.duration;
    // Resumed: one configuration per thread, warmed by one handshake before the clock starts.
    let mut shared = Vec::new();
    for _ in 0..config.connections {
        let c = new_client(ca)?;
        if resumed {
            one_handshake(config, c.clone())?;
        }
        shared.push(c);
    }
    let cpu_before = config.pid.and_then(cpu_time);
    let start = Instant::now();
    thread::scope(|s| {
        for c in &shared {
            let (remaining, done, resumed_count) = (&remaining, &done, &resumed_count);
            s.spawn(move || {
                while Instant::now() < deadline
                    && !stop.load(Ordering::Relaxed)
                    && remaining
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                {
                    let client = match resumed {
                        true => c.clone(),
                        false => match new_client(ca) {
                            Ok(c) => c,
                            Err(_) => return,
                        },
                    };
                    match one_handshake(config, client) {
                        Ok(kind) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            if kind == Some(HandshakeKind::Resumed) {
                                resumed_count.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            eprintln!("handshake: {e}");
                            return;
                        }
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = config.pid.and_then(cpu_time);
    Ok(HandshakeReport {
        resumed,
        handshakes: done.load(Ordering::Relaxed),
        resumed_count: resumed_count.load(Ordering::Relaxed),
        secs,
        proxy_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b)),
    })
}

fn one_handshake(
    config: &StreamConfig,
    client: Arc<ClientConfig>,
) -> io::Result<Option<HandshakeKind>> {
    let tcp = TcpStream::connect(config.proxy)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from(config.server_name.clone()).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(
        ClientConnection::new(client, name).map_err(io::Error::other)?,
        tcp,
    );
    let p = config.proxy;
    let options = format!(
        "OPTIONS sip:{p} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bK-hs;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:lg@loadgen.test>;tag=hs\r\nTo: <sip:{p}>\r\n\
         Call-ID: hs@loadgen.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    tls.write_all(options.as_bytes())?;
    let mut buf = Vec::new();
    while sip_message(&buf).is_none() {
        fill(&mut tls, &mut buf)?;
    }
    let kind = tls.conn.handshake_kind();
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_messages_are_framed_by_content_length() {
        let m = b"SIP/2.0 200 OK\r\nl: 3\r\n\r\nabcSIP/2.0";
        assert_eq!(sip_message(m), Some(27));
        assert_eq!(sip_message(&m[..26]), None);
        assert_eq!(sip_message(b"SIP/2.0 200 OK\r\n\r\n"), Some(18));
    }

    #[test]
    fn websocket_frames_are_measured_by_their_header() {
        assert_eq!(ws_frame(&[0x81, 3, b'a', b'b', b'c', 0]), Some(5));
        assert_eq!(ws_frame(&[0x81, 126, 0, 200]), None);
        let mut long = vec![0x81, 126, 0, 200];
        long.extend([0; 200]);
        assert_eq!(ws_frame(&long), Some(204));
    }

    #[test]
    fn requests_are_padded_and_framed() {
        let config = StreamConfig {
            proxy: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Wss,
            next_tls: true,
            connections: 1,
            window: 1,
            count: 1,
            duration: Duration::from_secs(1),
            size: 900,
            pems: None,
            server_name: "localhost".into(),
            pid: None,
        };
        let r = request(&config, 3, 7, "127.0.0.1:5080".parse().unwrap());
        assert!(r.len() >= 900, "{}", r.len());
        assert_eq!(sip_message(&r), Some(r.len()));
        let text = String::from_utf8(r).unwrap();
        assert!(text.contains("Via: SIP/2.0/WSS lg.invalid;branch=z9hG4bK-lg3x7"));
        assert!(text.contains("Route: <sip:127.0.0.1:5080;transport=tls;lr>"));
    }
}
