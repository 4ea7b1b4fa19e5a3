//! The worked example black-box: the real binary run as
//! `ferrovia --config examples/policy/edge.toml --listen udp:127.0.0.1:PORT --workers 2`,
//! driven over loopback from 127.0.0.2, .3 and .4, with the example's next hops (5070, 5072,
//! 5073, 5090) played by sockets of this test. Then reloads: SIGHUP and `POST /reload` with a
//! changed, then a broken file, and 10,000 requests across reloads, none lost or reordered.

mod policy_support;
mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use policy_support::{request, request_uri};
use runtime_support::process::Ferrovia;
use runtime_support::sip::{header, status};
use runtime_support::{RECV_LIMIT, http, recv_text};

/// The example's fixed next-hop ports: one test at a time may hold them.
static PORTS: Mutex<()> = Mutex::new(());

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy/edge.toml")
}

fn bind(addr: &str) -> UdpSocket {
    let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    socket.set_read_timeout(Some(RECV_LIMIT)).unwrap();
    socket
}

/// Runs the binary with `config` on 127.0.0.1 (port 0), 2 workers, metrics at `metrics`
/// (`off` or an address); returns it and its SIP address.
fn start(config: &Path, metrics: &str) -> (Ferrovia, SocketAddr) {
    let proxy = Ferrovia::start(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "udp:127.0.0.1:0",
            "--workers",
            "2",
            "--metrics",
            metrics,
        ],
        1,
    );
    let addr = proxy.addr();
    (proxy, addr)
}

/// Sends and expects a reply; returns the status and the text.
fn ask(client: &UdpSocket, proxy: SocketAddr, text: &str) -> (u16, String) {
    client.send_to(text.as_bytes(), proxy).unwrap();
    let (reply, _) = recv_text(client);
    (status(&reply).unwrap_or(0), reply)
}

/// Sends and expects the request at `hop`; returns its Request-URI and the text.
fn via(client: &UdpSocket, proxy: SocketAddr, hop: &UdpSocket, text: &str) -> (String, String) {
    client.send_to(text.as_bytes(), proxy).unwrap();
    let (got, _) = recv_text(hop);
    let uri = request_uri(&got);
    (uri, got)
}

#[test]
fn the_worked_example_behaves_line_by_line() {
    let _ports = PORTS.lock().unwrap_or_else(|p| p.into_inner());
    let core = bind("127.0.0.1:5070");
    let registrar = bind("127.0.0.1:5072");
    let scripted = bind("127.0.0.1:5073");
    let someone = bind("127.0.0.1:5090");
    let elsewhere = bind("127.0.0.9:0");
    let (mut proxy, addr) = start(&example(), "off");
    let banned = bind("127.0.0.2:0");
    let alice = bind("127.0.0.3:0");
    let trusted = bind("127.0.0.4:0");
    let a = alice.local_addr().unwrap();
    let me = format!("sip:{addr}");

    // Size: 8,193 bytes is too large, 8,192 is not.
    let base = request("INVITE", "sip:bob@edge.example", a, "alice", 1, "");
    let padded = |total: usize| {
        let pad = "a".repeat(total - base.len() - "X-Pad: \r\n".len());
        request(
            "INVITE",
            "sip:bob@edge.example",
            a,
            "alice",
            1,
            &format!("X-Pad: {pad}\r\n"),
        )
    };
    assert_eq!(ask(&alice, addr, &padded(8193)).0, 513);
    assert_eq!(
        via(&alice, addr, &core, &padded(8192)).0,
        "sip:bob@edge.example"
    );

    let b = banned.local_addr().unwrap();
    let (code, text) = ask(&banned, addr, &request("OPTIONS", &me, b, "x", 2, ""));
    assert_eq!(code, 403, "{text}");

    for uri in [me.as_str(), "sip:edge.example"] {
        assert_eq!(
            ask(&alice, addr, &request("OPTIONS", uri, a, "x", 3, "")).0,
            200,
            "{uri}"
        );
    }

    let (code, text) = ask(
        &alice,
        addr,
        &request("INVITE", "sip:900555@edge.example", a, "alice", 4, ""),
    );
    assert_eq!(code, 403);
    assert!(
        text.starts_with("SIP/2.0 403 Premium Numbers Barred\r\n"),
        "{text}"
    );

    let (uri, _) = via(
        &alice,
        addr,
        &someone,
        &request("INVITE", "sip:anyone@edge.example", a, "alice", 5, ""),
    );
    assert_eq!(uri, "sip:someone@127.0.0.1:5090");

    let (code, text) = ask(
        &alice,
        addr,
        &request("INVITE", "sip:moved@edge.example", a, "alice", 6, ""),
    );
    assert_eq!(code, 302);
    assert_eq!(header(&text, "Contact"), Some("<sip:moved@127.0.0.1:5091>"));

    for method in ["INVITE", "MESSAGE"] {
        let (uri, _) = via(
            &alice,
            addr,
            &core,
            &request(method, "sip:+15551234@edge.example", a, "alice", 7, ""),
        );
        assert_eq!(uri, "sip:5551234@edge.example", "{method}");
    }

    let x = "X-Script: yes\r\n";
    let (uri, text) = via(
        &alice,
        addr,
        &scripted,
        &request("INVITE", "sip:bob@edge.example", a, "alice", 8, x),
    );
    assert_eq!(uri, "sip:bob@edge.example");
    assert_eq!(header(&text, "X-Scripted"), Some("1"));
    assert_eq!(
        ask(
            &alice,
            addr,
            &request("INVITE", "sip:bob@edge.example", a, "mallory", 9, x)
        )
        .0,
        404
    );

    let (uri, _) = via(
        &alice,
        addr,
        &registrar,
        &request("REGISTER", "sip:edge.example", a, "alice", 10, ""),
    );
    assert_eq!(uri, "sip:edge.example");

    for method in ["INVITE", "MESSAGE", "OPTIONS"] {
        let (uri, _) = via(
            &alice,
            addr,
            &core,
            &request(method, "sip:bob@edge.example", a, "alice", 11, ""),
        );
        assert_eq!(uri, "sip:bob@edge.example", "{method}");
    }

    let other = format!("sip:carol@{}", elsewhere.local_addr().unwrap());
    let t = trusted.local_addr().unwrap();
    let (uri, _) = via(
        &trusted,
        addr,
        &elsewhere,
        &request("INVITE", &other, t, "alice", 12, ""),
    );
    assert_eq!(uri, other);
    assert_eq!(
        ask(&alice, addr, &request("INVITE", &other, a, "alice", 13, "")).0,
        403
    );

    let (code, text) = ask(
        &alice,
        addr,
        &request("SUBSCRIBE", "sip:bob@edge.example", a, "alice", 14, ""),
    );
    assert_eq!(code, 501);
    assert!(text.starts_with("SIP/2.0 501 Not Implemented\r\n"));

    // SIGHUP never stops the process.
    proxy.signal(libc::SIGHUP);
    proxy.await_line("policy reloaded");
    assert!(proxy.is_running());
    assert_eq!(
        ask(&alice, addr, &request("OPTIONS", &me, a, "x", 15, "")).0,
        200
    );
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
}

/// A copy of the example in its own directory, to edit.
fn scratch_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrovia-policy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = example();
    let examples = examples.parent().unwrap();
    for file in ["edge.toml", "edge.lua"] {
        std::fs::copy(examples.join(file), dir.join(file)).unwrap();
    }
    dir.join("edge.toml")
}

fn premium_reason(client: &UdpSocket, proxy: SocketAddr, n: u32) -> String {
    let a = client.local_addr().unwrap();
    let (code, text) = ask(
        client,
        proxy,
        &request("INVITE", "sip:900555@edge.example", a, "alice", n, ""),
    );
    assert_eq!(code, 403);
    text.lines()
        .next()
        .unwrap()
        .trim_start_matches("SIP/2.0 403 ")
        .to_owned()
}

#[test]
fn sighup_and_post_reload_apply_a_changed_file_and_keep_the_old_on_a_broken_one() {
    let config = scratch_copy("reload");
    let original = std::fs::read_to_string(&config).unwrap();
    let metrics_port = runtime_support::free_udp_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let (mut proxy, addr) = start(&config, &metrics);
    let alice = bind("127.0.0.3:0");
    assert_eq!(premium_reason(&alice, addr, 1), "Premium Numbers Barred");

    // A changed rule, SIGHUP: the new rule applies.
    std::fs::write(
        &config,
        original.replace("Premium Numbers Barred", "Premium Barred Today"),
    )
    .unwrap();
    proxy.signal(libc::SIGHUP);
    proxy.await_line("policy reloaded");
    assert_eq!(premium_reason(&alice, addr, 2), "Premium Barred Today");

    // A broken file, SIGHUP: the old rule still applies, the process serves on.
    std::fs::write(&config, original.replace("code = 513", "code = \"oops\"")).unwrap();
    proxy.signal(libc::SIGHUP);
    let line = proxy.await_line("reload failed");
    assert!(line.contains("edge.toml:"), "file:line in {line}");
    assert!(proxy.is_running());
    assert_eq!(premium_reason(&alice, addr, 3), "Premium Barred Today");

    // The same over HTTP: refused with file:line, then accepted.
    let metrics: SocketAddr = metrics.parse().unwrap();
    let (status, answer) = http(metrics, "POST", "/reload");
    assert_eq!(status, 500, "{answer}");
    assert!(answer.contains("edge.toml:"), "{answer}");
    std::fs::write(&config, &original).unwrap();
    let (status, answer) = http(metrics, "POST", "/reload");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(premium_reason(&alice, addr, 4), "Premium Numbers Barred");

    // The counters: reloads, rule hits and actions in /metrics.
    let text = runtime_support::http_get(metrics, "/metrics");
    assert!(
        text.contains("ferrovia_policy_reloads_total{result=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("ferrovia_policy_reloads_total{result=\"failed\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("ferrovia_policy_rule_hits_total{rule=\"premium\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("ferrovia_policy_actions_total{action=\"reject\"} 4"),
        "{text}"
    );
    let json = runtime_support::http_get(metrics, "/stats");
    assert!(json.contains("\"reloads_failed\": 2"), "{json}");
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
    let _ = std::fs::remove_dir_all(config.parent().unwrap());
}

/// Reloads that succeeded so far, from `/metrics`.
fn reloads_ok(metrics: SocketAddr) -> u64 {
    let text = runtime_support::http_get(metrics, "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("ferrovia_policy_reloads_total{result=\"ok\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_requests_across_reloads_none_lost_or_reordered() {
    const TOTAL: u32 = 10_000;
    const WINDOW: u32 = 50;
    const RELOADS: [usize; 3] = [1_000, 4_000, 7_000];
    let config = scratch_copy("order");
    let metrics = format!("127.0.0.1:{}", runtime_support::free_udp_port());
    let (proxy, addr) = start(&config, &metrics);
    let metrics: SocketAddr = metrics.parse().unwrap();
    let alice = bind("127.0.0.3:0");
    let a = alice.local_addr().unwrap();
    let me = format!("sip:{addr}");
    let sent = AtomicUsize::new(0);
    let pid = proxy.pid().expect("the proxy runs");
    let during = std::thread::scope(|s| {
        // Each reload is confirmed (by the counter) before the next is asked for, so the
        // signals cannot coalesce; traffic flows all along.
        let reloader = s.spawn(|| {
            let mut confirmed_at = Vec::new();
            for (i, at) in RELOADS.into_iter().enumerate() {
                while sent.load(Ordering::Acquire) < at {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let hup = std::process::Command::new("kill")
                    .args(["-HUP", &pid.to_string()])
                    .status()
                    .expect("run kill");
                assert!(hup.success());
                for _ in 0..500 {
                    if reloads_ok(metrics) > i as u64 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                confirmed_at.push(sent.load(Ordering::Acquire));
            }
            confirmed_at
        });
        let mut buf = vec![0u8; 4096];
        let mut next = 1;
        while next <= TOTAL {
            let end = (next + WINDOW).min(TOTAL + 1);
            for n in next..end {
                alice
                    .send_to(request("OPTIONS", &me, a, "x", n, "").as_bytes(), addr)
                    .unwrap();
            }
            sent.store(end as usize, Ordering::Release);
            for n in next..end {
                let (len, _) = alice
                    .recv_from(&mut buf)
                    .unwrap_or_else(|e| panic!("reply {n} lost: {e}"));
                let text = String::from_utf8_lossy(&buf[..len]);
                assert_eq!(status(&text), Some(200), "{text}");
                assert_eq!(
                    header(&text, "CSeq"),
                    Some(format!("{n} OPTIONS").as_str()),
                    "reordered"
                );
            }
            next = end;
            std::thread::sleep(Duration::from_millis(2));
        }
        reloader.join().unwrap()
    });
    assert_eq!(reloads_ok(metrics), 3);
    assert!(
        during.iter().all(|&n| n < TOTAL as usize),
        "every reload completed while requests were flowing: {during:?}"
    );
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{stderr}");
    let _ = std::fs::remove_dir_all(config.parent().unwrap());
}
