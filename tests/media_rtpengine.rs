//! Media anchoring with the real rtpengine (Debian's rtpengine-daemon, userspace forwarding
//! on loopback, started by the test): the worked example black-box with sipp calls carrying
//! RTP, and the fallbacks when rtpengine stops mid-run, in process with loopback peers.
//!
//! Skipped with a message when rtpengine or sipp is missing, unless FERROVIA_REQUIRE_TOOLS
//! is set (CI installs both), when it fails.

mod media_support;
mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ferrovia::media::{MediaConfig, OnFailure};
use ferrovia::proxy::NextHop;
use ferrovia::settings::Settings;
use media_support::{Rtpengine, audio_port, connection_address, port_range, relayed};
use runtime_support::process::{Ferrovia, Sipp};
use runtime_support::{free_udp_port, free_udp_port_pair, http_get, loopback_settings};

const SIPP_LIMIT: Duration = Duration::from_secs(60);

/// The messages sipp logged (`-trace_msg`) that it received, one string each.
fn received(log: &str) -> Vec<String> {
    log.split("message received")
        .skip(1)
        .map(|m| {
            m.split("----------------")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The example file as shipped: ferrovia first (its rtpengine is not up yet), then a sipp
/// UAS with RTP echo at 5070, then rtpengine at 127.0.0.1:2223; two seconds later a sipp
/// call with 7 s of RTP goes through and is anchored.
#[test]
fn the_example_anchors_a_sipp_call_with_rtp_and_deletes_it_on_bye() {
    if !media_support::tools_present(&["rtpengine", "sipp"]) {
        return;
    }
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/media/anchor.toml");
    let listen = format!("udp:127.0.0.1:{}", free_udp_port());
    let metrics = format!("127.0.0.1:{}", free_udp_port());
    let proxy = Ferrovia::start(
        &[
            "--config",
            example,
            "--listen",
            &listen,
            "--metrics",
            &metrics,
            "--workers",
            "2",
        ],
        1,
    );
    let uas_media = free_udp_port_pair();
    let uas_scenario = Sipp::scenario("media_uas.xml");
    let uas = Sipp::start(
        "media-uas",
        &[
            "-sf",
            uas_scenario.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            "5070",
            "-mp",
            &uas_media.to_string(),
            "-rtp_echo",
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            "messages.log",
            "-timeout",
            "50s",
            "-timeout_error",
        ]
        .map(String::from),
    );
    let engine = Rtpengine::start("127.0.0.1:2223".parse().unwrap(), port_range(0));
    // The example's promise: an rtpengine that comes up after ferrovia is used within 2 s.
    std::thread::sleep(Duration::from_secs(2));
    let scenario = Sipp::scenario("media_uac.xml");
    let uac = Sipp::start(
        "media-uac",
        &[
            &proxy.addr().to_string(),
            "-sf",
            scenario.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            &free_udp_port().to_string(),
            "-mp",
            &free_udp_port_pair().to_string(),
            "-m",
            "1",
            "-cid_str",
            "ferrovia-media-%u@sipp",
            "-trace_msg",
            "-message_file",
            "messages.log",
            "-timeout",
            "50s",
            "-timeout_error",
        ]
        .map(String::from),
    );
    // While the call is up, rtpengine's own `query` shows the RTP it relayed.
    let call = "ferrovia-media-1@sipp";
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut packets = 0;
    while packets == 0 && Instant::now() < deadline {
        packets = relayed(engine.ng, call).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(100));
    }
    let uac_dir = uac.dir.clone();
    let result = uac.finish(SIPP_LIMIT);
    assert_eq!(result.code, Some(0), "the call failed: {result:#?}");
    assert!(packets > 0, "rtpengine relayed no RTP for {call}");
    // BYE deleted the session at once (delete-delay 0).
    assert_eq!(
        relayed(engine.ng, call),
        None,
        "the session outlived the BYE"
    );
    let uas_dir = uas.dir.clone();
    let _ = uas.finish(SIPP_LIMIT);

    // The SDP each side received names rtpengine's address and ports, not the other side's.
    let log = |dir: &std::path::Path| std::fs::read_to_string(dir.join("messages.log")).unwrap();
    let at_uas = received(&log(&uas_dir));
    let invite = at_uas
        .iter()
        .find(|m| m.contains("INVITE sip:"))
        .expect("the UAS got the INVITE");
    let port = audio_port(invite).expect("an SDP in the INVITE");
    assert!(
        engine.owns(port),
        "the callee's offer names port {port}:\n{invite}"
    );
    assert_eq!(connection_address(invite).as_deref(), Some("127.0.0.1"));
    let at_uac = received(&log(&uac_dir));
    let ok = at_uac
        .iter()
        .find(|m| {
            m.contains("SIP/2.0 200") && m.contains("INVITE\r\n")
                || m.contains("SIP/2.0 200") && m.contains("m=audio")
        })
        .expect("the UAC got the 200");
    let port = audio_port(ok).expect("an SDP in the 200");
    assert!(
        engine.owns(port),
        "the caller's answer names port {port}:\n{ok}"
    );

    // The counters say the same.
    let metrics: SocketAddr = metrics.parse().unwrap();
    let text = http_get(metrics, "/metrics");
    for line in [
        "ferrovia_media_requests_total{command=\"offer\",result=\"ok\"} 1",
        "ferrovia_media_requests_total{command=\"answer\",result=\"ok\"} 1",
        "ferrovia_media_requests_total{command=\"delete\",result=\"ok\"} 1",
        "ferrovia_media_sessions_anchored_total 1",
        "ferrovia_media_fallbacks_total{action=\"503\"} 0",
        "ferrovia_media_instance_up{instance=\"0\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    let stats = http_get(metrics, "/stats");
    assert!(stats.contains("\"sessions_anchored\": 1"), "{stats}");
    drop(engine);
    let (status, _) = proxy.terminate();
    assert!(status.success());
}

/// A loopback peer with a read timeout.
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

/// Receives until a message starting with `start` (skipping retransmissions and others).
fn recv_starting(s: &UdpSocket, start: &str) -> String {
    for _ in 0..20 {
        let m = recv(s);
        if m.starts_with(start) {
            return m;
        }
    }
    panic!("no {start:?} at {:?}", s.local_addr());
}

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40002 RTP/AVP 0\r\n";

fn invite(uac: &UdpSocket, call: &str) -> String {
    let port = uac.local_addr().unwrap().port();
    format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call}\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a-{call}\r\nTo: <sip:bob@127.0.0.1>\r\n\
Call-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:{port}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    )
}

/// The UAS's 200 with an answer: the request's Via, Record-Route, From, To (tagged),
/// Call-ID and CSeq copied (RFC 3261 §8.2.6.2, §12.1.1).
fn ok_for(request: &str) -> String {
    let head: String = request
        .lines()
        .filter(|l| {
            ["Via:", "Record-Route:", "From:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| l.starts_with(h))
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    let to = request.lines().find(|l| l.starts_with("To:")).unwrap();
    format!(
        "SIP/2.0 200 OK\r\n{head}{to};tag=b\r\nContact: <sip:bob@127.0.0.1>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    )
}

/// An in-dialog request from the caller following our Record-Route (taken from the 200).
fn in_dialog(method: &str, uac: &UdpSocket, ok: &str, call: &str, cseq: u32) -> String {
    let port = uac.local_addr().unwrap().port();
    let route = ok
        .lines()
        .find_map(|l| l.strip_prefix("Record-Route: "))
        .expect("a Record-Route");
    format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}{call}\r\n\
Route: {route}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a-{call}\r\n\
To: <sip:bob@127.0.0.1>;tag=b\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// rtpengine stopped mid-run: the BYE of an anchored call is still forwarded (delete best
/// effort, counted), a new INVITE gets 503 (counted) while a non-anchored request passes,
/// and once rtpengine is back new calls are anchored again.
#[test]
fn rtpengine_stopped_mid_run_gets_the_fallback_and_no_worker_stalls() {
    if !media_support::tools_present(&["rtpengine"]) {
        return;
    }
    let ng: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let mut engine = Rtpengine::start(ng, port_range(1));
    let (uac, uas) = (socket(), socket());
    let uas_port = uas.local_addr().unwrap().port();
    let settings = Settings {
        record_route: true,
        route_all_to: Some(NextHop::parse(&format!("sip:127.0.0.1:{uas_port}")).unwrap()),
        media: Some(MediaConfig {
            rtpengine: vec![ng],
            on_failure: OnFailure::Reject,
            delete_delay: Some(0),
            ping_interval: Duration::from_millis(200),
            toward_callee: ferrovia::media::Flags::parse(
                "replace-origin replace-session-connection",
            )
            .unwrap(),
            toward_caller: ferrovia::media::Flags::parse(
                "replace-origin replace-session-connection",
            )
            .unwrap(),
            ..MediaConfig::default()
        }),
        ..loopback_settings(1)
    };
    let (service, proxy) = runtime_support::start_proxy(&settings);

    // An anchored call: each side sees rtpengine's port.
    uac.send_to(invite(&uac, "call-a").as_bytes(), proxy)
        .unwrap();
    let got = recv_starting(&uas, "INVITE");
    assert!(engine.owns(audio_port(&got).unwrap()), "{got}");
    uas.send_to(ok_for(&got).as_bytes(), proxy).unwrap();
    let ok = recv_starting(&uac, "SIP/2.0 200");
    assert!(engine.owns(audio_port(&ok).unwrap()), "{ok}");
    assert!(relayed(ng, "call-a").is_some(), "rtpengine knows the call");

    engine.stop();
    // The BYE goes on without rtpengine.
    uac.send_to(in_dialog("BYE", &uac, &ok, "call-a", 2).as_bytes(), proxy)
        .unwrap();
    recv_starting(&uas, "BYE");
    // A new call: 503, while a request that is not anchored passes meanwhile.
    uac.send_to(invite(&uac, "call-b").as_bytes(), proxy)
        .unwrap();
    let message = "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKm1\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=m\r\nTo: <sip:bob@127.0.0.1>\r\n\
Call-ID: m1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    uac.send_to(message.as_bytes(), proxy).unwrap();
    recv_starting(&uas, "MESSAGE");
    let refused = recv_starting(&uac, "SIP/2.0 503");
    assert!(refused.contains("Call-ID: call-b"), "{refused}");

    let snapshot = service.snapshot();
    let media = snapshot.media().expect("media counters");
    let fallback = |name: &str| media.fallbacks.iter().find(|(f, _)| f == name).unwrap().1;
    assert_eq!(fallback("503"), 1, "{media:?}");
    assert_eq!(fallback("forwarded"), 1, "{media:?}");
    assert!(media.failures() >= 2, "{media:?}");

    // rtpengine back: a new call is anchored again (pings bring it back).
    let mut engine = Rtpengine::start(ng, port_range(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempt = 0;
    // A forwarded INVITE reaches the UAS (which does not answer it); a refused one gets 503.
    uas.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let anchored = loop {
        attempt += 1;
        let call = format!("call-c{attempt}");
        uac.send_to(invite(&uac, &call).as_bytes(), proxy).unwrap();
        let mut buf = vec![0u8; 65_536];
        if let Ok((n, _)) = uas.recv_from(&mut buf) {
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        let refused = recv(&uac);
        assert!(refused.starts_with("SIP/2.0 503"), "{refused}");
        assert!(
            Instant::now() < deadline,
            "rtpengine never came back into use"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(engine.owns(audio_port(&anchored).unwrap()), "{anchored}");
    engine.stop();
    let _ = service.shutdown();
}
