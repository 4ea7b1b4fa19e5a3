//! The NG client against fake rtpengines on loopback (no rtpengine needed): a new call whose
//! instance (by Call-ID hash) does not answer its pings goes to the other one, and an
//! unreadable reply fails the offer at once (503), counted. Every wait is bounded.

mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use ferrovia::media::bencode::Value;
use ferrovia::media::{MediaConfig, OnFailure};
use ferrovia::proxy::NextHop;
use ferrovia::settings::Settings;
use runtime_support::loopback_settings;

const SILENT: u8 = 0;
const ANSWERING: u8 = 1;
const GARBAGE: u8 = 2;

/// A fake rtpengine: answers pings with pong and offers with an SDP naming 192.0.2.`id`,
/// stays silent, or answers garbage, as `mode` says. Stops when `mode` is dropped to 255.
struct FakeEngine {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
}

impl FakeEngine {
    fn start(id: u8, mode: u8) -> FakeEngine {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(mode));
        let shared = Arc::clone(&mode);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while shared.load(Ordering::Relaxed) != 255 {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                // The mode as it is when the datagram is in hand.
                let mode = shared.load(Ordering::Relaxed);
                let Some(reply) = answer(&buf[..n], id, mode) else {
                    continue;
                };
                let _ = socket.send_to(&reply, from);
            }
        });
        FakeEngine { addr, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::Relaxed);
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.mode.store(255, Ordering::Relaxed);
    }
}

fn answer(datagram: &[u8], id: u8, mode: u8) -> Option<Vec<u8>> {
    let space = datagram.iter().position(|&b| b == b' ')?;
    let cookie = &datagram[..space];
    let (command, _) = Value::decode(&datagram[space + 1..]).ok()?;
    let command = command.get(b"command")?.as_bytes()?;
    let body = match (mode, command) {
        (SILENT, _) => return None,
        (GARBAGE, _) => b"d6:result".to_vec(),
        (_, b"ping") => b"d6:result4:ponge".to_vec(),
        (_, b"offer" | b"answer") => {
            let sdp = format!(
                "v=0\r\no=- 1 1 IN IP4 192.0.2.{id}\r\ns=-\r\nc=IN IP4 192.0.2.{id}\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0\r\n"
            );
            format!("d3:sdp{}:{sdp}6:result2:oke", sdp.len()).into_bytes()
        }
        _ => b"d6:result2:oke".to_vec(),
    };
    Some([cookie, b" ", &body].concat())
}

/// The instance the client picks for `call_id` among `count` (FNV-1a, as documented in
/// docs/MEDIA.md).
fn home(call_id: &str, count: u64) -> u64 {
    let hash = call_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % count
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn recv(s: &UdpSocket) -> String {
    let mut buf = vec![0u8; 65_536];
    let (n, _) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("nothing arrived at {:?}: {e}", s.local_addr()));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn invite(uac: &UdpSocket, call: &str) -> String {
    let port = uac.local_addr().unwrap().port();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call}\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\n\
Call-ID: {call}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn new_calls_fail_over_to_an_instance_that_answers_and_garbage_fails_fast() {
    let (a, b) = (
        FakeEngine::start(1, SILENT),
        FakeEngine::start(2, ANSWERING),
    );
    let (uac, uas) = (socket(), socket());
    let uas_port = uas.local_addr().unwrap().port();
    let settings = Settings {
        route_all_to: Some(NextHop::parse(&format!("sip:127.0.0.1:{uas_port}")).unwrap()),
        media: Some(MediaConfig {
            rtpengine: vec![a.addr, b.addr],
            on_failure: OnFailure::Reject,
            ping_interval: Duration::from_millis(100),
            ..MediaConfig::default()
        }),
        ..loopback_settings(1)
    };
    let (service, proxy) = runtime_support::start_proxy(&settings);
    // Pings find instance 0 silent.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = service.snapshot();
        let up = snapshot.media().map(|m| m.instances_up.clone());
        if up.as_deref() == Some(&[false, true][..]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance 0 never marked down: {up:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Calls whose home is either instance are anchored by instance 1.
    for want_home in [0, 1] {
        let call = (0..)
            .map(|i| format!("call-{i}"))
            .find(|c| home(c, 2) == want_home)
            .unwrap();
        uac.send_to(invite(&uac, &call).as_bytes(), proxy).unwrap();
        let got = recv(&uas);
        assert!(got.contains(&format!("Call-ID: {call}")), "{got}");
        assert!(
            got.contains("c=IN IP4 192.0.2.2\r\n"),
            "home {want_home}: {got}"
        );
    }
    // An unreadable reply: the offer fails at once, 503, counted.
    b.set(GARBAGE);
    uac.send_to(invite(&uac, "call-garbage").as_bytes(), proxy)
        .unwrap();
    let refused = recv(&uac);
    assert!(refused.starts_with("SIP/2.0 503"), "{refused}");
    let snapshot = service.snapshot();
    let media = snapshot.media().unwrap();
    let count = |c: &str, r: &str| {
        media
            .requests
            .iter()
            .find(|(x, y, _)| x == c && y == r)
            .map_or(0, |e| e.2)
    };
    assert_eq!(count("offer", "ok"), 2, "{media:?}");
    assert_eq!(count("offer", "malformed"), 1, "{media:?}");
    assert_eq!(media.sessions_anchored, 2);
    let _ = service.shutdown();
}
