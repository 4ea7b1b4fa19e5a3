//! Two nodes sharing the location through a real Redis (Debian `redis-server`, started here
//! on a loopback port): Bob registers on node A; node B learns the binding from Redis; Alice
//! calls Bob through node B, which sends the INVITE to A (the owner of Bob's flow), which
//! delivers it to Bob's phone. Then Redis stops: both nodes keep serving the bindings they
//! hold and count the store's errors; a REGISTER on A is still answered.
//!
//! Skipped with a message when redis-server is missing, unless FERROVIA_REQUIRE_TOOLS is set.

mod registrar_support;
mod runtime_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use registrar_support::{authorization, param};
use runtime_support::process::Ferrovia;
use runtime_support::{free_udp_port, http_get, peer, recv_text};

fn redis_present() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("FERROVIA_REQUIRE_TOOLS").is_none(),
            "redis-server is not on PATH: apt-get install redis-server"
        );
        eprintln!("registrar_redis: skipped: redis-server is not on PATH");
    }
    found
}

struct Redis(Child);

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis(child)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node(dir: &Path, name: &str, port: u16, peer_port: u16, redis: u16) -> (Ferrovia, SocketAddr) {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "metrics = \"127.0.0.1:0\"\nrecord-route = true\n[registrar]\ndomains = [\"edge.example\"]\n\
             users = \"users\"\nauthenticate = [\"INVITE\"]\nredis = \"redis://127.0.0.1:{redis}/\"\n\
             node = \"127.0.0.1:{port}\"\npeers = [\"127.0.0.1:{peer_port}\"]\n"
        ),
    )
    .unwrap();
    let listen = format!("udp:127.0.0.1:{port}");
    let mut proxy = Ferrovia::start(
        &["--config", config.to_str().unwrap(), "--listen", &listen],
        1,
    );
    let line = proxy.await_line("metrics on http://");
    let metrics = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    (proxy, metrics)
}

/// Sends `request` from `socket` to `to`, answers the challenge, returns what comes back.
fn with_auth(socket: &std::net::UdpSocket, to: SocketAddr, request: &str, user: &str) -> String {
    socket.send_to(request.as_bytes(), to).unwrap();
    let (challenge, _) = recv_text(socket);
    let header = if challenge.starts_with("SIP/2.0 401") {
        "Authorization"
    } else {
        "Proxy-Authorization"
    };
    let line = request.lines().next().unwrap();
    let mut parts = line.split(' ');
    let (method, uri) = (parts.next().unwrap(), parts.next().unwrap());
    if method == "INVITE" {
        let to_line = challenge.lines().find(|l| l.starts_with("To:")).unwrap();
        let tag = param(to_line, "tag").unwrap();
        let to_sent = request.lines().find(|l| l.starts_with("To:")).unwrap();
        let ack = request
            .replacen("INVITE ", "ACK ", 1)
            .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
            .replace(to_sent, &format!("{to_sent};tag={tag}"));
        socket.send_to(ack.as_bytes(), to).unwrap();
    }
    let auth = authorization(
        &challenge,
        header,
        user,
        &format!("{user}-secret"),
        method,
        uri,
    );
    let retry = request
        .replace("CSeq: 1 ", "CSeq: 2 ")
        .replace(";branch=z9hG4bK", ";branch=z9hG4bK2")
        .replace(
            "Content-Length: 0\r\n",
            &format!("{auth}Content-Length: 0\r\n"),
        );
    socket.send_to(retry.as_bytes(), to).unwrap();
    String::new()
}

fn register(user: &str, phone: SocketAddr, call: &str) -> String {
    format!(
        "REGISTER sip:edge.example SIP/2.0\r\nVia: SIP/2.0/UDP {phone};rport;branch=z9hG4bKr{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@edge.example>;tag=r\r\nTo: <sip:{user}@edge.example>\r\n\
         Call-ID: {call}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{phone}>\r\nContent-Length: 0\r\n\r\n"
    )
}

fn invite(caller: SocketAddr, call: &str) -> String {
    invite_to("bob", caller, call)
}

fn invite_to(callee: &str, caller: SocketAddr, call: &str) -> String {
    format!(
        "INVITE sip:{callee}@edge.example SIP/2.0\r\nVia: SIP/2.0/UDP {caller};rport;branch=z9hG4bKi{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@edge.example>;tag=a\r\nTo: <sip:{callee}@edge.example>\r\n\
         Call-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{caller}>\r\nContent-Length: 0\r\n\r\n"
    )
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn counter(metrics: SocketAddr, name: &str) -> u64 {
    let text = http_get(metrics, "/metrics");
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_call_through_node_b_reaches_a_phone_registered_on_node_a_and_survives_a_redis_outage() {
    if !redis_present() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registrar-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("users"), registrar_support::USERS).unwrap();
    let redis_port = free_udp_port();
    let redis = Redis::start(redis_port);
    let (port_a, port_b) = (free_udp_port(), free_udp_port());
    let (_a, metrics_a) = node(&dir, "a", port_a, port_b, redis_port);
    let (_b, metrics_b) = node(&dir, "b", port_b, port_a, redis_port);
    let (addr_a, addr_b): (SocketAddr, SocketAddr) = (
        format!("127.0.0.1:{port_a}").parse().unwrap(),
        format!("127.0.0.1:{port_b}").parse().unwrap(),
    );

    let bob = peer();
    let bob_addr = bob.local_addr().unwrap();
    with_auth(&bob, addr_a, &register("bob", bob_addr, "reg-bob"), "bob");
    let (ok, _) = recv_text(&bob);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    wait_for("node B to learn Bob's binding", || {
        http_get(metrics_b, "/location").contains(&format!("\"node\": \"{addr_a}\""))
    });

    let alice = peer();
    let alice_addr = alice.local_addr().unwrap();
    with_auth(&alice, addr_b, &invite(alice_addr, "call-1"), "alice");
    let (got, from) = recv_text(&bob);
    assert!(
        got.starts_with(&format!("INVITE sip:bob@{bob_addr} SIP/2.0")),
        "{got}"
    );
    assert_eq!(from, addr_a, "node A, the owner of Bob's flow, delivers it");
    assert_eq!(got.matches("Record-Route:").count(), 2, "{got}");

    // A binding Redis holds that neither node has heard of (written without a publication,
    // as a node that missed one would be): B's table misses, the INVITE parks while B reads
    // the AoR from Redis, then goes to A, the owner, which reads it too and delivers it.
    let url = format!("redis://127.0.0.1:{redis_port}/");
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let bob_record: String = redis::cmd("GET")
        .arg("ferrovia:location:bob@edge.example")
        .query(&mut con)
        .unwrap();
    let carol_record = bob_record
        .replace("sip:bob@", "sip:carol@")
        .replace("\"bob@edge.example\"", "\"carol@edge.example\"");
    redis::cmd("SET")
        .arg("ferrovia:location:carol@edge.example")
        .arg(carol_record)
        .arg("PX")
        .arg(600_000)
        .query::<()>(&mut con)
        .unwrap();
    assert!(!http_get(metrics_b, "/location").contains("carol"));
    with_auth(
        &alice,
        addr_b,
        &invite_to("carol", alice_addr, "call-c"),
        "alice",
    );
    let (got, from) = recv_text(&bob);
    assert!(
        got.starts_with(&format!("INVITE sip:carol@{bob_addr} SIP/2.0")),
        "read from Redis on a miss: {got}"
    );
    assert_eq!(from, addr_a);

    drop(redis);
    let carol = peer();
    let carol_addr = carol.local_addr().unwrap();
    with_auth(
        &carol,
        addr_a,
        &register("carol", carol_addr, "reg-carol"),
        "carol",
    );
    let (ok, _) = recv_text(&carol);
    assert!(
        ok.starts_with("SIP/2.0 200"),
        "A answers without Redis: {ok}"
    );
    wait_for("both nodes to count the store's errors", || {
        counter(
            metrics_a,
            "ferrovia_registrar_store_total{result=\"error\"}",
        ) > 0
            && counter(
                metrics_b,
                "ferrovia_registrar_store_total{result=\"error\"}",
            ) > 0
    });
    with_auth(&alice, addr_b, &invite(alice_addr, "call-2"), "alice");
    let (got, _) = recv_text(&bob);
    assert!(
        got.starts_with("INVITE sip:bob@"),
        "B still serves its cached binding: {got}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
