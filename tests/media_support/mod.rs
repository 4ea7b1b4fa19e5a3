//! What the media tests share: a real rtpengine started as a child (userspace forwarding on
//! loopback, killed on drop), its NG `query` and `ping`, and the SDP readers.

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrovia::media::ng::{self, Reply};

/// How long rtpengine may take to answer its first ping.
const START_LIMIT: Duration = Duration::from_secs(15);

/// Whether the tools a media test needs are here; without them the test is skipped with a
/// message, unless `FERROVIA_REQUIRE_TOOLS` is set (CI installs them), when it fails.
pub fn tools_present(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
        "missing {missing:?}: apt-get install rtpengine-daemon sip-tester"
    );
    eprintln!("skipped: {missing:?} not installed (apt-get install rtpengine-daemon sip-tester)");
    false
}

/// A running rtpengine, killed (by its pid) on drop.
pub struct Rtpengine {
    child: Option<Child>,
    pub ng: SocketAddr,
    pub ports: RangeInclusive<u16>,
}

impl Rtpengine {
    /// Starts rtpengine in the foreground, userspace only (`--table=-1`), on 127.0.0.1 with
    /// its NG socket at `ng` and media ports `ports`; waits (bounded) for its first pong.
    pub fn start(ng: SocketAddr, ports: RangeInclusive<u16>) -> Rtpengine {
        let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "rtpengine-{}-{}.log",
            std::process::id(),
            ng.port()
        ));
        let child = Command::new("rtpengine")
            .args([
                "--foreground",
                "--table=-1",
                "--interface=127.0.0.1",
                &format!("--listen-ng={ng}"),
                // Its command-line control port too, or two rtpengines collide on 9900.
                &format!("--listen-cli=127.0.0.1:{}", Rtpengine::free_tcp_port()),
                &format!("--listen-http=127.0.0.1:{}", Rtpengine::free_tcp_port()),
                &format!("--port-min={}", ports.start()),
                &format!("--port-max={}", ports.end()),
                "--log-stderr",
                "--log-level=6",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("rtpengine log file"))
            .spawn()
            .expect("spawn rtpengine");
        let engine = Rtpengine {
            child: Some(child),
            ng,
            ports,
        };
        let deadline = Instant::now() + START_LIMIT;
        while !ping(ng) {
            assert!(
                Instant::now() < deadline,
                "rtpengine did not answer a ping; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        engine
    }

    /// A TCP port that was free a moment ago.
    fn free_tcp_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        listener.local_addr().expect("local address").port()
    }

    /// Stops it (SIGKILL to our own child, by pid) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether `port` is one of its media ports.
    pub fn owns(&self, port: u16) -> bool {
        self.ports.contains(&port)
    }
}

impl Drop for Rtpengine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A cookie never used before: rtpengine answers a cookie it has seen with its cached reply.
fn cookie() -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("t{}-{nanos}-{n}", std::process::id()).into_bytes()
}

/// Sends `datagram` to `ng` and returns the reply (one try, 300 ms).
fn ask(ng: SocketAddr, datagram: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    socket.send_to(datagram, ng).ok()?;
    let mut buf = vec![0u8; 65_536];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}

/// Whether rtpengine at `ng` answers a ping.
pub fn ping(ng: SocketAddr) -> bool {
    let mut datagram = Vec::new();
    ng::encode_ping(&mut datagram, &cookie());
    ask(ng, &datagram).is_some_and(|r| Reply::parse(&r).is_some_and(|r| r.is_pong()))
}

/// A call's relayed packets from rtpengine's `query`; `None` when it does not know the call
/// (never created, or deleted).
pub fn relayed(ng: SocketAddr, call_id: &str) -> Option<i64> {
    let mut datagram = Vec::new();
    ng::encode_query(&mut datagram, &cookie(), call_id.as_bytes());
    let reply = ask(ng, &datagram)?;
    let reply = Reply::parse(&reply)?;
    if !reply.is_ok() {
        return None;
    }
    Some(ng::relayed_packets(&reply).unwrap_or(0))
}

/// The port of the first `m=audio` line of the SDP in `message`.
pub fn audio_port(message: &str) -> Option<u16> {
    message
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
}

/// The address of the first `c=IN IP4` line.
pub fn connection_address(message: &str) -> Option<String> {
    message
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))
        .map(|a| a.trim().to_string())
}

/// Media ports for one test's rtpengine, apart from other tests' (by a tag) and processes'.
pub fn port_range(tag: u16) -> RangeInclusive<u16> {
    let base = 30_000 + (std::process::id() % 50) as u16 * 200 + tag * 100;
    base..=base + 99
}
