//! Every line of the worked example (`examples/policy/edge.toml`) through the core, in
//! memory: the compiled policy as the workers run it (an `Engine` per worker) in front of
//! `Proxy::handle_routed`.

mod common;
mod policy_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use std::sync::Arc;

use ferrovia::policy::{CompileOptions, PolicyHandle, compile_file};
use ferrovia::proxy::{Input, Listener, Outcome, ProxyConfig, Tables};
use ferrovia::sip::{Flow, Message, Transport};

const PROXY: &str = "127.0.0.1:5060";

struct Edge {
    core: common::Core,
    handle: Arc<PolicyHandle>,
}

impl Edge {
    fn new() -> Edge {
        let listener = Listener {
            transport: Transport::Udp,
            addr: PROXY.parse().unwrap(),
            advertise: None,
        };
        let mut core = common::Core::new(ProxyConfig::new(listener, [7; 16]), Tables::default());
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy/edge.toml");
        let policy = compile_file(&path, &CompileOptions::new(1)).unwrap();
        let handle = PolicyHandle::new(policy, 1);
        core.route_by(&handle);
        Edge { core, handle }
    }

    /// The outcome, the bytes sent, and the rule that decided.
    fn run(&mut self, raw: &str, source: &str) -> (Outcome, String, Option<String>) {
        let input = Input {
            data: raw.as_bytes(),
            flow: Flow::new(
                Transport::Udp,
                source.parse().unwrap(),
                PROXY.parse().unwrap(),
            ),
            now: Instant::now(),
        };
        let before = self.handle.counters();
        let (outcome, bytes) = self.core.exchange(input);
        if !bytes.is_empty() {
            Message::scan(&bytes, false).expect("output re-scans");
        }
        let (rule, _) = self.handle.counters().decided_since(&before);
        (outcome, String::from_utf8_lossy(&bytes).into_owned(), rule)
    }

    fn reply(&mut self, raw: &str, source: &str) -> (u16, String) {
        match self.run(raw, source) {
            (Outcome::Reply { status, .. }, text, _) => (status, text),
            other => panic!("expected a reply, got {:?}", other),
        }
    }

    /// The destination and the forwarded Request-URI.
    fn forward(&mut self, raw: &str, source: &str) -> (SocketAddr, String, String) {
        match self.run(raw, source) {
            (Outcome::Forward(t), text, _) => {
                let ruri = policy_support::request_uri(&text);
                (t.destination, ruri, text)
            }
            other => panic!("expected a forward, got {:?}", other),
        }
    }
}

const ALICE: &str = "127.0.0.3:5062";

fn request(method: &str, uri: &str, from_user: &str, extra: &str) -> String {
    policy_support::request(method, uri, ALICE, from_user, 1, extra)
}

#[test]
fn larger_than_8192_bytes_is_513_and_exactly_8192_is_not() {
    let mut edge = Edge::new();
    let base = request("INVITE", "sip:bob@edge.example", "alice", "");
    let pad = |total: usize| {
        let filler = total - base.len() - "X-Pad: \r\n".len();
        request(
            "INVITE",
            "sip:bob@edge.example",
            "alice",
            &format!("X-Pad: {}\r\n", "a".repeat(filler)),
        )
    };
    let big = pad(8193);
    assert_eq!(big.len(), 8193);
    let (code, text) = edge.reply(&big, ALICE);
    assert_eq!(code, 513);
    assert!(text.starts_with("SIP/2.0 513 Message Too Large\r\n"));
    let exact = pad(8192);
    assert_eq!(exact.len(), 8192);
    let (to, _, _) = edge.forward(&exact, ALICE);
    assert_eq!(to, "127.0.0.1:5070".parse().unwrap());
}

#[test]
fn anything_from_127_0_0_2_is_403() {
    let mut edge = Edge::new();
    let (code, text) = edge.reply(
        &request("OPTIONS", "sip:127.0.0.1:5060", "x", ""),
        "127.0.0.2:5060",
    );
    assert_eq!(code, 403);
    assert!(text.starts_with("SIP/2.0 403 Forbidden\r\n"));
}

#[test]
fn options_to_the_proxy_itself_is_200() {
    let mut edge = Edge::new();
    for uri in ["sip:127.0.0.1:5060", "sip:edge.example"] {
        let (code, _) = edge.reply(&request("OPTIONS", uri, "x", ""), ALICE);
        assert_eq!(code, 200, "{uri}");
    }
    assert_eq!(
        edge.run(&request("OPTIONS", "sip:edge.example", "x", ""), ALICE)
            .2
            .as_deref(),
        Some("ping")
    );
}

#[test]
fn premium_numbers_are_barred() {
    let mut edge = Edge::new();
    let (code, text) = edge.reply(
        &request("INVITE", "sip:900123@edge.example", "alice", ""),
        ALICE,
    );
    assert_eq!(code, 403);
    assert!(text.starts_with("SIP/2.0 403 Premium Numbers Barred\r\n"));
}

#[test]
fn anyone_becomes_someone_at_5090() {
    let mut edge = Edge::new();
    let (to, ruri, _) = edge.forward(
        &request("INVITE", "sip:anyone@edge.example", "alice", ""),
        ALICE,
    );
    assert_eq!(to, "127.0.0.1:5090".parse().unwrap());
    assert_eq!(ruri, "sip:someone@127.0.0.1:5090");
}

#[test]
fn moved_is_redirected() {
    let mut edge = Edge::new();
    let (code, text) = edge.reply(
        &request("INVITE", "sip:moved@edge.example", "alice", ""),
        ALICE,
    );
    assert_eq!(code, 302);
    assert!(
        text.contains("\r\nContact: <sip:moved@127.0.0.1:5091>\r\n"),
        "{text}"
    );
}

#[test]
fn plus_one_is_stripped_for_invite_and_message_only() {
    let mut edge = Edge::new();
    for method in ["INVITE", "MESSAGE"] {
        let (to, ruri, _) = edge.forward(
            &request(method, "sip:+15551234@edge.example", "alice", ""),
            ALICE,
        );
        assert_eq!(to, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(ruri, "sip:5551234@edge.example", "{method}");
    }
    // OPTIONS keeps its +1 and still reaches the core (the "other requests" line).
    let (to, ruri, _) = edge.forward(
        &request("OPTIONS", "sip:+15551234@edge.example", "alice", ""),
        ALICE,
    );
    assert_eq!(to, "127.0.0.1:5070".parse().unwrap());
    assert_eq!(ruri, "sip:+15551234@edge.example");
}

#[test]
fn the_script_decides_for_x_script() {
    let mut edge = Edge::new();
    let scripted = "X-Script: yes\r\n";
    let (to, ruri, text) = edge.forward(
        &request("INVITE", "sip:bob@edge.example", "alice", scripted),
        ALICE,
    );
    assert_eq!(to, "127.0.0.1:5073".parse().unwrap());
    assert_eq!(ruri, "sip:bob@edge.example");
    assert!(text.contains("\r\nX-Scripted: 1\r\n"), "{text}");
    let (code, text) = edge.reply(
        &request("INVITE", "sip:bob@edge.example", "mallory", scripted),
        ALICE,
    );
    assert_eq!(code, 404);
    assert!(text.starts_with("SIP/2.0 404 Not Found\r\n"));
}

#[test]
fn register_goes_to_the_registrar() {
    let mut edge = Edge::new();
    let (to, ruri, _) = edge.forward(&request("REGISTER", "sip:edge.example", "alice", ""), ALICE);
    assert_eq!(to, "127.0.0.1:5072".parse().unwrap());
    assert_eq!(ruri, "sip:edge.example");
}

#[test]
fn other_requests_for_our_users_go_to_the_core() {
    let mut edge = Edge::new();
    for method in ["INVITE", "MESSAGE", "OPTIONS"] {
        let (to, ruri, _) =
            edge.forward(&request(method, "sip:bob@edge.example", "alice", ""), ALICE);
        assert_eq!(to, "127.0.0.1:5070".parse().unwrap(), "{method}");
        assert_eq!(ruri, "sip:bob@edge.example");
    }
}

#[test]
fn only_the_trusted_source_relays_to_other_domains() {
    let mut edge = Edge::new();
    let raw = request("INVITE", "sip:carol@127.0.0.9:5099", "alice", "");
    let (to, ruri, _) = edge.forward(&raw, "127.0.0.4:5060");
    assert_eq!(to, "127.0.0.9:5099".parse().unwrap());
    assert_eq!(ruri, "sip:carol@127.0.0.9:5099");
    let (code, _) = edge.reply(&raw, ALICE);
    assert_eq!(code, 403);
    assert_eq!(edge.run(&raw, ALICE).2.as_deref(), Some("no-relay"));
}

#[test]
fn anything_else_is_501() {
    let mut edge = Edge::new();
    for (method, uri) in [
        ("SUBSCRIBE", "sip:bob@edge.example"),
        ("BYE", "sip:bob@edge.example"),
        ("INFO", "sip:127.0.0.1:5060"),
    ] {
        let (code, text) = edge.reply(&request(method, uri, "alice", ""), ALICE);
        assert_eq!(code, 501, "{method}");
        assert!(text.starts_with("SIP/2.0 501 Not Implemented\r\n"));
    }
    // Trusted or not, a request for our own domain is never relayed as addressed.
    let (code, _) = edge.reply(
        &request("SUBSCRIBE", "sip:bob@edge.example", "alice", ""),
        "127.0.0.4:5060",
    );
    assert_eq!(code, 501);
}
