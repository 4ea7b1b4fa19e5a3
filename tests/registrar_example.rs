//! The worked example, black-box: `ferrovia --config examples/registrar/registrar.toml
//! --listen udp:127.0.0.1:0 --listen tcp:127.0.0.1:0`, phones speaking raw SIP over UDP and
//! TCP with the example's users. OPTIONS to ferrovia gets 200; REGISTER sip:edge.example
//! with and without a Route naming ferrovia is challenged, then accepted; a wrong password
//! gets 403; INVITE and MESSAGE from our users get 407; calls reach a phone behind a NAT at
//! its source and a TCP phone over its connection; after un-REGISTER a call gets 480.
//! Also: `ferrovia passwd` writes entries the registrar reads, and the snapshot file keeps
//! bindings across a restart.

mod registrar_support;
mod runtime_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

use registrar_support::{authorization, param};
use runtime_support::process::Ferrovia;
use runtime_support::tcp::SipStream;
use runtime_support::{http_get, peer, recv_text};

/// A phone: a UDP socket or a TCP connection to ferrovia.
enum Phone {
    Udp(UdpSocket, SocketAddr),
    Tcp(SipStream),
}

impl Phone {
    fn send(&mut self, text: &str) {
        match self {
            Phone::Udp(socket, proxy) => {
                socket.send_to(text.as_bytes(), *proxy).expect("send");
            }
            Phone::Tcp(stream) => stream.send(text.as_bytes()),
        }
    }

    fn recv(&mut self) -> String {
        match self {
            Phone::Udp(socket, _) => recv_text(socket).0,
            Phone::Tcp(stream) => stream.recv(),
        }
    }

    fn transport(&self) -> &'static str {
        match self {
            Phone::Udp(..) => "UDP",
            Phone::Tcp(_) => "TCP",
        }
    }

    fn local(&self) -> SocketAddr {
        match self {
            Phone::Udp(socket, _) => socket.local_addr().unwrap(),
            Phone::Tcp(stream) => stream.local_addr(),
        }
    }

    /// Sends `request`, answers a 401 / 407 with `user`'s `password`, returns the final
    /// response's first line and text.
    fn authenticated(&mut self, request: &str, user: &str, password: &str) -> String {
        self.send(request);
        let challenge = self.recv();
        let (header, reply_to) = if challenge.starts_with("SIP/2.0 401") {
            ("Authorization", "WWW-Authenticate")
        } else if challenge.starts_with("SIP/2.0 407") {
            ("Proxy-Authorization", "Proxy-Authenticate")
        } else {
            panic!("expected a challenge to {request}\ngot {challenge}");
        };
        assert!(
            challenge.contains(&format!("{reply_to}: Digest")),
            "{challenge}"
        );
        let line = request.lines().next().unwrap();
        let mut parts = line.split(' ');
        let (method, uri) = (parts.next().unwrap(), parts.next().unwrap());
        let auth = authorization(&challenge, header, user, password, method, uri);
        let retry = request
            .replace("CSeq: 1 ", "CSeq: 2 ")
            .replace(";branch=z9hG4bK", ";branch=z9hG4bK2")
            .replace(
                "Content-Length: 0\r\n",
                &format!("{auth}Content-Length: 0\r\n"),
            );
        self.send(&retry);
        self.recv()
    }
}

fn request(method: &str, ruri: &str, phone: &Phone, from: &str, to: &str, extra: &str) -> String {
    let local = phone.local();
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {local};rport;branch=z9hG4bK{method}{}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@edge.example>;tag=f{}\r\nTo: <{to}>\r\n\
         Call-ID: {method}-{from}-{}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n",
        phone.transport(),
        local.port(),
        local.port(),
        local.port()
    )
}

fn register(phone: &Phone, user: &str, contact: &str, extra: &str) -> String {
    let extra = format!("Contact: <{contact}>\r\n{extra}");
    request(
        "REGISTER",
        "sip:edge.example",
        phone,
        user,
        &format!("sip:{user}@edge.example"),
        &extra,
    )
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/registrar/registrar.toml")
}

fn metrics_addr(proxy: &mut Ferrovia) -> SocketAddr {
    let line = proxy.await_line("metrics on http://");
    line.split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .expect("the metrics address")
}

#[test]
fn the_worked_example_registers_authenticates_and_routes_calls() {
    let config = example();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "udp:127.0.0.1:0",
        "--listen",
        "tcp:127.0.0.1:0",
    ];
    let mut proxy = Ferrovia::start(&args, 2);
    let metrics = metrics_addr(&mut proxy);
    let (udp, tcp) = (proxy.addrs[0], proxy.addrs[1]);

    // OPTIONS to ferrovia's address: 200.
    let mut alice = Phone::Udp(peer(), udp);
    let options = request(
        "OPTIONS",
        &format!("sip:{udp}"),
        &alice,
        "alice",
        &format!("sip:{udp}"),
        "",
    );
    alice.send(&options);
    assert!(alice.recv().starts_with("SIP/2.0 200"));

    // Alice behind a NAT: her Contact names a port nothing listens on; a Route names us.
    let route = format!("Route: <sip:{udp};lr>\r\n");
    let reg = register(
        &alice,
        "alice",
        "sip:alice@127.0.0.1:9;transport=udp",
        &route,
    );
    let ok = alice.authenticated(&reg, "alice", "alice-secret");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("Contact: <sip:alice@127.0.0.1:9;transport=udp>;expires="),
        "{ok}"
    );

    // Bob over TCP, without a Route; his Contact is not his connection's port either.
    let mut bob = Phone::Tcp(SipStream::connect(tcp));
    let reg = register(&bob, "bob", "sip:bob@127.0.0.1:9;transport=tcp", "");
    assert!(
        bob.authenticated(&reg, "bob", "bob-secret")
            .starts_with("SIP/2.0 200")
    );

    // A wrong password: 403.
    let mut carol = Phone::Udp(peer(), udp);
    let reg = register(&carol, "carol", "sip:carol@127.0.0.1:9", "");
    assert!(
        carol
            .authenticated(&reg, "carol", "guess")
            .starts_with("SIP/2.0 403")
    );

    // Alice calls Bob: 407, then the INVITE reaches Bob over his connection.
    let invite = request(
        "INVITE",
        "sip:bob@edge.example",
        &alice,
        "alice",
        "sip:bob@edge.example",
        "",
    );
    let challenge_and_call = alice_calls(&mut alice, &invite, "alice", "alice-secret");
    assert!(challenge_and_call, "alice's INVITE was challenged");
    let got = bob.recv();
    assert!(
        got.starts_with("INVITE sip:bob@127.0.0.1:9;transport=tcp SIP/2.0"),
        "{got}"
    );
    assert!(got.contains("Record-Route: "), "{got}");
    assert!(!got.contains("Proxy-Authorization"), "{got}");

    // Bob sends Alice a MESSAGE over TCP: 407, then it reaches Alice at her NAT's address.
    let message = request(
        "MESSAGE",
        "sip:alice@edge.example",
        &bob,
        "bob",
        "sip:alice@edge.example",
        "",
    );
    bob.send(&message);
    let challenge = bob.recv();
    assert!(challenge.starts_with("SIP/2.0 407"), "{challenge}");
    let auth = authorization(
        &challenge,
        "Proxy-Authorization",
        "bob",
        "bob-secret",
        "MESSAGE",
        "sip:alice@edge.example",
    );
    bob.send(&message.replace("CSeq: 1 ", "CSeq: 2 ").replace(
        "Content-Length: 0\r\n",
        &format!("{auth}Content-Length: 0\r\n"),
    ));
    let got = alice.recv();
    assert!(
        got.starts_with("MESSAGE sip:alice@127.0.0.1:9;transport=udp SIP/2.0"),
        "{got}"
    );

    // Bob un-registers; a call to him now gets 480.
    let unreg = register(
        &bob,
        "bob",
        "sip:bob@127.0.0.1:9;transport=tcp",
        "Expires: 0\r\n",
    )
    .replace("Call-ID: REGISTER-bob", "Call-ID: REGISTER-bob-2");
    let ok = bob.authenticated(&unreg, "bob", "bob-secret");
    assert!(
        ok.starts_with("SIP/2.0 200") && !ok.contains("Contact:"),
        "{ok}"
    );
    let invite = request(
        "INVITE",
        "sip:bob@edge.example",
        &alice,
        "alice",
        "sip:bob@edge.example",
        "",
    )
    .replace("Call-ID: INVITE", "Call-ID: second-INVITE");
    let last = alice.authenticated(&invite, "alice", "alice-secret");
    assert!(
        last.starts_with("SIP/2.0 480") || last.starts_with("SIP/2.0 404"),
        "{last}"
    );

    let stats = http_get(metrics, "/metrics");
    assert!(
        stats.contains("ferrovia_registrar_auth_total{result=\"bad_response\"} 1"),
        "{stats}"
    );
    let location = http_get(metrics, "/location");
    assert!(
        location.contains("\"aor\": \"alice@edge.example\"") && !location.contains("bob@"),
        "{location}"
    );
}

/// Alice's INVITE: the 407, her ACK for it, then the INVITE with credentials (the
/// forwarded INVITE is read by the callee). True when the first answer was a 407.
fn alice_calls(alice: &mut Phone, invite: &str, user: &str, password: &str) -> bool {
    alice.send(invite);
    let challenge = alice.recv();
    if !challenge.starts_with("SIP/2.0 407") {
        return false;
    }
    let to = challenge.lines().find(|l| l.starts_with("To:")).unwrap();
    let tag = param(to, "tag").unwrap();
    let ack = invite
        .replacen("INVITE ", "ACK ", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(
            "To: <sip:bob@edge.example>",
            &format!("To: <sip:bob@edge.example>;tag={tag}"),
        );
    alice.send(&ack);
    let auth = authorization(
        &challenge,
        "Proxy-Authorization",
        user,
        password,
        "INVITE",
        "sip:bob@edge.example",
    );
    alice.send(
        &invite
            .replace("CSeq: 1 ", "CSeq: 2 ")
            .replace(";branch=z9hG4bK", ";branch=z9hG4bK2")
            .replace(
                "Content-Length: 0\r\n",
                &format!("{auth}Content-Length: 0\r\n"),
            ),
    );
    true
}

#[test]
fn passwd_writes_entries_and_bindings_survive_a_restart() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registrar-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users");
    let status = Command::new(Ferrovia::binary())
        .args([
            "passwd",
            "--users",
            users.to_str().unwrap(),
            "--realm",
            "edge.example",
            "--password",
            "alice-secret",
            "alice",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.contains("alice:edge.example:MD5:af6d34e9b2b1b362fc847f6b63958c1d\n"),
        "{text}"
    );
    std::fs::write(
        dir.join("ferrovia.toml"),
        "metrics = \"127.0.0.1:0\"\n[registrar]\ndomains = [\"edge.example\"]\nusers = \"users\"\n\
         snapshot = \"bindings.json\"\n",
    )
    .unwrap();
    let config = dir.join("ferrovia.toml");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "udp:127.0.0.1:0",
    ];
    let proxy = Ferrovia::start(&args, 1);
    let mut alice = Phone::Udp(peer(), proxy.addr());
    let reg = register(&alice, "alice", "sip:alice@127.0.0.1:9", "");
    assert!(
        alice
            .authenticated(&reg, "alice", "alice-secret")
            .starts_with("SIP/2.0 200")
    );
    let (status, _) = proxy.terminate();
    assert!(status.success());
    let saved = std::fs::read_to_string(dir.join("bindings.json")).unwrap();
    assert!(saved.contains("alice@edge.example"), "{saved}");
    let mut proxy = Ferrovia::start(&args, 1);
    let line = proxy.await_line("bindings restored");
    assert!(line.contains("1 bindings restored"), "{line}");
    let metrics = metrics_addr(&mut proxy);
    assert!(http_get(metrics, "/location").contains("sip:alice@127.0.0.1:9"));
    let _ = std::fs::remove_dir_all(&dir);
}
