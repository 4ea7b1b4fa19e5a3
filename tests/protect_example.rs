//! The worked example, black-box: `examples/protection/edge.toml` run by the binary as the
//! issue says (`--listen udp:127.0.0.1:PORT --metrics 127.0.0.1:MPORT --workers 2`), with a
//! stand-in core on 127.0.0.1:5070 that records what reaches it. Each check sends from its
//! own loopback address, so one source's limit or ban never touches another check.
//!
//! When 5070 is taken on this machine the test runs a copy of the example naming a free port
//! instead (the file is otherwise used as shipped).

mod protect_support;
mod runtime_support;

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protect_support::{EXAMPLE, banned, http, start};
use runtime_support::sip::{header, invite, response, with_header};

/// What reached the core: requests counted by the Call-ID's prefix (before the first `-`).
#[derive(Clone, Default)]
struct Core {
    seen: Arc<Mutex<HashMap<String, u64>>>,
}

impl Core {
    fn count(&self, prefix: &str) -> u64 {
        self.seen.lock().unwrap().get(prefix).copied().unwrap_or(0)
    }

    /// Waits (bounded) until `prefix` reached `n`, then a little longer for stragglers.
    fn settle(&self, prefix: &str, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.count(prefix) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.count(prefix)
    }
}

/// Binds the core at 5070 (or a free port, with a copy of the example naming it); answers
/// each request 200 back through the proxy and counts it.
fn start_core() -> (PathBuf, Core) {
    let (socket, config) = match UdpSocket::bind("127.0.0.1:5070") {
        Ok(socket) => (socket, PathBuf::from(EXAMPLE)),
        Err(_) => {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = socket.local_addr().unwrap().port();
            let text = std::fs::read_to_string(EXAMPLE).unwrap();
            let copy = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("edge-test.toml");
            std::fs::write(
                &copy,
                text.replace("127.0.0.1:5070", &format!("127.0.0.1:{port}")),
            )
            .unwrap();
            (socket, copy)
        }
    };
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let core = Core::default();
    let seen = core.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0") {
                continue;
            }
            let call = header(&text, "Call-ID").unwrap_or_default();
            let prefix = call.split('-').next().unwrap_or_default().to_owned();
            *seen.seen.lock().unwrap().entry(prefix).or_default() += 1;
            let _ = socket.send_to(response(&text, 200, "OK").as_bytes(), from);
        }
    });
    (config, core)
}

/// A client on loopback address `ip`.
fn client(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

/// Somewhere the example's requests do not name: every request goes to the core anyway.
const ELSEWHERE: &str = "198.51.100.7:5060";

fn request(from: &UdpSocket, call: &str, user_agent: Option<&str>) -> Vec<u8> {
    let text = invite(from.local_addr().unwrap(), ELSEWHERE.parse().unwrap(), call);
    match user_agent {
        Some(ua) => with_header(&text, &format!("User-Agent: {ua}")),
        None => text,
    }
    .into_bytes()
}

#[test]
fn the_worked_example_behaves_as_documented() {
    let (config, core) = start_core();
    let (proxy, metrics) = start(&config);
    let to = proxy.addr();

    // Every request goes to the core, whatever it names; the answer comes back.
    let alice = client("127.0.0.1");
    alice
        .send_to(&request(&alice, "route-1", None), to)
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = alice
        .recv_from(&mut buf)
        .expect("the core's answer comes back");
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK"));
    assert_eq!(core.settle("route", 1), 1);

    // Scanners are dropped whatever the letter case; the same source's other requests pass.
    let scanner = client("127.0.0.3");
    for (i, ua) in [
        "friendly-scanner",
        "SIPVicious 0.3.4",
        "x Friendly-Scanner y",
    ]
    .iter()
    .enumerate()
    {
        scanner
            .send_to(&request(&scanner, &format!("scan-{i}"), Some(ua)), to)
            .unwrap();
    }
    scanner
        .send_to(&request(&scanner, "plain-1", Some("Linphone")), to)
        .unwrap();
    assert_eq!(core.settle("plain", 1), 1);
    assert_eq!(core.count("scan"), 0);

    // The limit: a burst of 2,000 passes, the rest of 2,500 sent at once does not; a short
    // overrun is no ban.
    let burst = client("127.0.0.4");
    let started = Instant::now();
    for i in 0..2_500 {
        burst
            .send_to(&request(&burst, &format!("burst-{i}"), None), to)
            .unwrap();
    }
    let took_ms = started.elapsed().as_millis() as u64;
    let passed = core.settle("burst", 2_000);
    // One more token per millisecond the proxy takes to work through the queue (sending
    // took `took_ms`; a busy machine may stretch the proxy's share a little).
    assert!(
        (2_000..=2_250).contains(&passed),
        "{passed} passed, sent in {took_ms} ms"
    );

    // The allowlisted 127.0.0.9 is never limited.
    let trusted = client("127.0.0.9");
    for i in 0..3_000 {
        trusted
            .send_to(&request(&trusted, &format!("trusted-{i}"), None), to)
            .unwrap();
        if i % 500 == 499 {
            std::thread::sleep(Duration::from_millis(5)); // keep the stand-in core's queue short
        }
    }
    assert_eq!(core.settle("trusted", 3_000), 3_000);

    // A flooder over its limit for a second in a row is banned (60 s), listed and liftable.
    let flooder = client("127.0.0.2");
    let flood = request(&flooder, "flood-1", None);
    let start = Instant::now();
    let mut banned_after = None;
    while start.elapsed() < Duration::from_secs(4) && banned_after.is_none() {
        for _ in 0..50 {
            flooder.send_to(&flood, to).unwrap(); // 50 every 5 ms: 10,000/s
        }
        std::thread::sleep(Duration::from_millis(5));
        if start.elapsed() > Duration::from_millis(900) && banned(metrics, "127.0.0.2") {
            banned_after = Some(start.elapsed());
        }
    }
    let banned_after = banned_after.expect("the flooder was banned");
    // The burst lasts ~0.2 s at 10,000/s, then a second over the limit; bounded loosely.
    assert!(
        banned_after >= Duration::from_millis(1_000),
        "{banned_after:?}"
    );
    assert!(
        banned_after < Duration::from_millis(3_000),
        "{banned_after:?}"
    );
    let (_, bans) = http(metrics, "GET", "/bans");
    assert!(bans.contains("\"reason\": \"rate\""), "{bans}");
    assert!(
        !banned(metrics, "127.0.0.4"),
        "the short burst was not banned: {bans}"
    );
    let before = core.settle("flood", 0);
    flooder
        .send_to(&request(&flooder, "flood-2", None), to)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(core.count("flood"), before, "banned: nothing passes");
    assert_eq!(http(metrics, "DELETE", "/bans/127.0.0.2").0, 200);
    assert_eq!(http(metrics, "DELETE", "/bans/127.0.0.2").0, 404);
    std::thread::sleep(Duration::from_millis(2_100)); // the bucket refills
    flooder
        .send_to(&request(&flooder, "flood-3", None), to)
        .unwrap();
    assert_eq!(
        core.settle("flood", before + 1),
        before + 1,
        "lifted: it passes again"
    );

    // Counted by reason, and shown.
    let (_, text) = http(metrics, "GET", "/metrics");
    for reason in ["rate", "ban", "scanner"] {
        let merged: u64 = text
            .lines()
            .filter(|l| {
                l.starts_with("ferrovia_dropped_total{")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(merged > 0, "no {reason} drops in /metrics:\n{text}");
    }
    assert!(text.contains("ferrovia_protect_scanner_dropped_total{header=\"user-agent\",pattern=\"friendly-scanner\"} 2"), "{text}");
    let (_, stats) = http(metrics, "GET", "/stats");
    assert!(stats.contains("\"top_talkers\""), "{stats}");
    let (status, log) = proxy.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(
        log.matches("protect] banned 127.0.0.2").count(),
        1,
        "logged once per ban:\n{log}"
    );
}
