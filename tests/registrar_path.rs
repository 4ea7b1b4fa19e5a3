//! Path (RFC 3327, RFC 5626 §5.1 / §5.3) with ferrovia as the edge in front of another
//! registrar, message by message (no sockets): the edge puts `Path: <sip:TOKEN@edge;lr>` on
//! the REGISTER it forwards (`;ob` for an outbound first hop), the registrar — here a second
//! ferrovia core with the registrar — stores it and sends a call for the user to the edge
//! with the Path as its preloaded Route, and the edge delivers it over the flow the REGISTER
//! came from (the NAT's public address, or the TCP connection), not to the private Contact.

mod registrar_support;

use std::net::SocketAddr;
use std::time::Instant;

use ferrovia::proxy::{
    ConnectionId, Input, Listener, Outcome, Proxy, ProxyConfig, Tables, Transport, WorkerState,
};
use ferrovia::sip::Flow;
use registrar_support::{
    Core, PROXY, authorization, proxy, register, register_auth, registrar, udp,
};

const EDGE: &str = "192.0.2.20:5060";
const PHONE: &str = "203.0.113.5:40000";

/// An edge core on UDP and TCP `EDGE`, no registrar, forwarding `edge.example` to `PROXY`.
fn edge(add_path: bool) -> Core {
    edge_keyed(add_path, *b"ferrovia-edgekey", None)
}

/// The same edge with its own branch key and, when given, a configured `path-secret`.
fn edge_keyed(add_path: bool, branch: [u8; 16], path_secret: Option<[u8; 16]>) -> Core {
    let udp = Listener {
        transport: Transport::Udp,
        addr: EDGE.parse().unwrap(),
        advertise: None,
    };
    let mut config = ProxyConfig::new(udp, branch);
    config.path_secret = path_secret.unwrap_or(branch);
    config.listeners.push(Listener {
        transport: Transport::Tcp,
        ..config.listeners[0].clone()
    });
    config.hosts = vec![("edge.example".into(), "192.0.2.10".parse().unwrap())];
    config.add_path = add_path;
    let proxy = Proxy::new(config).unwrap();
    let state = WorkerState::new(proxy.config());
    Core {
        proxy,
        tables: Tables::default(),
        state,
    }
}

fn at_edge<'a>(data: &'a [u8], flow: Flow, now: Instant) -> Input<'a> {
    Input { data, flow, now }
}

fn phone_flow(transport: Transport) -> Flow {
    Flow::new(transport, PHONE.parse().unwrap(), EDGE.parse().unwrap())
}

fn forwarded(outcome: &Outcome) -> ferrovia::proxy::Transmit {
    match outcome {
        Outcome::Forward(t) => *t,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn path_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Path: "))
        .unwrap_or_else(|| panic!("no Path in {text}"))
        .to_owned()
}

/// Registers bob (Contact 10.1.1.1, unreachable) through the edge over `flow`; returns the
/// Path the registrar stored.
fn register_through_edge(
    edge: &mut Core,
    registrar: &mut Core,
    flow: Flow,
    now: Instant,
) -> String {
    let first = register("bob", "sip:bob@10.1.1.1", 1, "");
    let (outcome, text) = edge.exchange(at_edge(first.as_bytes(), flow, now));
    assert_eq!(forwarded(&outcome).destination, PROXY.parse().unwrap());
    let path = path_of(&text);
    let (_, challenge) = registrar.exchange(udp(text.as_bytes(), EDGE, now));
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let auth = register_auth(&challenge, "bob", "bob-secret");
    let second = register("bob", "sip:bob@10.1.1.1", 2, &auth);
    let (_, text) = edge.exchange(at_edge(second.as_bytes(), flow, now));
    let (outcome, ok) = registrar.exchange(udp(text.as_bytes(), EDGE, now));
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(matches!(outcome, Outcome::Reply { .. }));
    assert!(
        ok.contains(&format!("Path: {path}\r\n")),
        "§5.3: the 200 echoes Path: {ok}"
    );
    path
}

/// Alice calls bob at the registrar (the 407 dance from 10.2.2.2); returns what the registrar
/// sends, which must be for the edge.
fn call_bob(registrar: &mut Core, now: Instant) -> String {
    use registrar_support::invite;
    let first = invite("alice", "bob", "p1", 1, "");
    let (_, challenge) = registrar.exchange(udp(first.as_bytes(), "10.2.2.2:5060", now));
    let auth = authorization(
        &challenge,
        "Proxy-Authorization",
        "alice",
        "alice-secret",
        "INVITE",
        "sip:bob@edge.example",
    );
    let second = invite("alice", "bob", "p2", 2, &auth);
    let (outcome, text) = registrar.exchange(udp(second.as_bytes(), "10.2.2.2:5060", now));
    assert_eq!(
        forwarded(&outcome).destination,
        EDGE.parse().unwrap(),
        "{text}"
    );
    text
}

#[test]
fn rfc3327_a_call_comes_back_through_our_path_to_the_flow() {
    let now = Instant::now();
    let mut edge = edge(true);
    let mut registrar = proxy(registrar(now));
    let path = register_through_edge(&mut edge, &mut registrar, phone_flow(Transport::Udp), now);
    assert!(
        path.starts_with("<sip:") && path.ends_with("@192.0.2.20:5060;lr>"),
        "{path}"
    );
    let invite = call_bob(&mut registrar, now);
    assert!(
        invite.starts_with("INVITE sip:bob@10.1.1.1 SIP/2.0\r\n"),
        "{invite}"
    );
    assert!(invite.contains(&format!("Route: {path}\r\n")), "{invite}");
    // The edge: its own Route removed, the request over the REGISTER's flow.
    let (outcome, text) = edge.exchange(at_edge(
        invite.as_bytes(),
        Flow::new(
            Transport::Udp,
            PROXY.parse().unwrap(),
            EDGE.parse().unwrap(),
        ),
        now,
    ));
    let t = forwarded(&outcome);
    assert_eq!(t.destination, PHONE.parse::<SocketAddr>().unwrap());
    assert_eq!(t.transport, Transport::Udp);
    assert!(
        text.starts_with("INVITE sip:bob@10.1.1.1 SIP/2.0\r\n"),
        "{text}"
    );
    assert!(!text.contains("\r\nRoute:"), "our Route removed: {text}");
}

#[test]
fn a_configured_path_secret_keeps_stored_paths_working_after_a_restart() {
    let now = Instant::now();
    let secret = *b"operator-pathkey";
    let mut before = edge_keyed(true, *b"branch-key-run-1", Some(secret));
    let mut registrar = proxy(registrar(now));
    register_through_edge(&mut before, &mut registrar, phone_flow(Transport::Udp), now);
    let invite = call_bob(&mut registrar, now);
    let from_registrar = Flow::new(
        Transport::Udp,
        PROXY.parse().unwrap(),
        EDGE.parse().unwrap(),
    );
    // Restarted: a new random branch key, the same configured path-secret.
    let mut after = edge_keyed(true, *b"branch-key-run-2", Some(secret));
    let (outcome, _) = after.exchange(at_edge(invite.as_bytes(), from_registrar, now));
    assert_eq!(
        forwarded(&outcome).destination,
        PHONE.parse::<SocketAddr>().unwrap()
    );
    // Restarted without one (the default: the branch key, random per start): the token no
    // longer opens, and the request is not sent to the phone's flow.
    let mut unkeyed = edge_keyed(true, *b"branch-key-run-3", None);
    let (outcome, _) = unkeyed.exchange(at_edge(invite.as_bytes(), from_registrar, now));
    if let Outcome::Forward(t) = outcome {
        assert_ne!(t.destination, PHONE.parse::<SocketAddr>().unwrap());
    }
}

#[test]
fn rfc5626_a_tcp_flow_is_reached_over_its_connection_and_outbound_gets_ob() {
    let now = Instant::now();
    let mut edge = edge(true);
    let flow = phone_flow(Transport::Tcp).on(ConnectionId(42));
    let outbound = register(
        "bob",
        "sip:bob@10.1.1.1;transport=tcp",
        1,
        "Supported: outbound, path\r\n",
    )
    .replace("Contact: <sip:bob@10.1.1.1;transport=tcp>", "Contact: <sip:bob@10.1.1.1;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1")
    .replace("SIP/2.0/UDP 10.1.1.1", "SIP/2.0/TCP 10.1.1.1");
    let (outcome, text) = edge.exchange(at_edge(outbound.as_bytes(), flow, now));
    forwarded(&outcome);
    let path = path_of(&text);
    assert!(path.ends_with(";lr;ob>"), "first hop, reg-id: {path}");
    // The registrar's request back: Route is that Path.
    let back = format!(
        "INVITE sip:bob@10.1.1.1;transport=tcp SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKback\r\n\
         Max-Forwards: 69\r\nRoute: {path}\r\nFrom: <sip:alice@edge.example>;tag=a\r\n\
         To: <sip:bob@edge.example>\r\nCall-ID: back\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    let from_registrar = Flow::new(
        Transport::Udp,
        PROXY.parse().unwrap(),
        EDGE.parse().unwrap(),
    );
    let (outcome, _) = edge.exchange(at_edge(back.as_bytes(), from_registrar, now));
    let t = forwarded(&outcome);
    assert_eq!(
        (t.destination, t.transport),
        (PHONE.parse().unwrap(), Transport::Tcp)
    );
    assert_eq!(t.connection, Some(ConnectionId(42)));
    // A forged token (another key's) is not a flow: the request goes by its Request-URI.
    let forged = back.replace(&path[5..15], "0000000000");
    let (outcome, _) = edge.exchange(at_edge(forged.as_bytes(), from_registrar, now));
    if let Outcome::Forward(t) = outcome {
        assert_ne!(t.destination, PHONE.parse().unwrap());
    }
}

#[test]
fn without_add_path_no_path_is_added() {
    let now = Instant::now();
    let mut edge = edge(false);
    let first = register("bob", "sip:bob@10.1.1.1", 1, "");
    let (_, text) = edge.exchange(at_edge(first.as_bytes(), phone_flow(Transport::Udp), now));
    assert!(!text.contains("Path:"), "{text}");
}
