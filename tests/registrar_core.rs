//! The registrar inside the core, message by message (no sockets): the worked example's
//! flows — 401 then 200 for REGISTER, 403 for a wrong password, 407 then location routing
//! for INVITE over the recorded flow (a NAT's source port, a TCP connection), credentials
//! removed before forwarding, 480 after un-REGISTER, 404 for strangers, 423, OPTIONS, and
//! the ACK of our own 407 ending at the proxy.

mod registrar_support;

use std::time::{Duration, Instant};

use ferrovia::proxy::{ConnectionId, DropReason, Input, Outcome, Transport};
use ferrovia::sip::Flow;
use registrar_support::Core;
use registrar_support::{
    DOMAIN, PROXY, authorization, invite, proxy, register, register_auth, registrar, status, udp,
};

/// Registers `user` from `source` with `contact` through the 401 dance; returns the 200.
fn registered(proxy: &mut Core, user: &str, contact: &str, source: &str, now: Instant) -> String {
    let first = register(user, contact, 1, "");
    let (outcome, challenge) = proxy.exchange(udp(first.as_bytes(), source, now));
    assert_eq!(status(&outcome), Some(401), "{challenge}");
    let auth = register_auth(&challenge, user, &format!("{user}-secret"));
    let second = register(user, contact, 2, &auth);
    let (outcome, ok) = proxy.exchange(udp(second.as_bytes(), source, now));
    assert_eq!(status(&outcome), Some(200), "{ok}");
    ok
}

/// Sends an INVITE from alice to `to` through the 407 dance; returns the final outcome.
fn call(proxy: &mut Core, to: &str, now: Instant) -> (Outcome, String) {
    let first = invite("alice", to, "inv1", 1, "");
    let (outcome, challenge) = proxy.exchange(udp(first.as_bytes(), "10.2.2.2:5060", now));
    assert_eq!(status(&outcome), Some(407), "{challenge}");
    assert!(
        challenge.contains("Proxy-Authenticate: Digest realm=\"edge.example\""),
        "{challenge}"
    );
    let uri = format!("sip:{to}@{DOMAIN}");
    let auth = authorization(
        &challenge,
        "Proxy-Authorization",
        "alice",
        "alice-secret",
        "INVITE",
        &uri,
    );
    let second = invite("alice", to, "inv2", 2, &auth);
    proxy.exchange(udp(second.as_bytes(), "10.2.2.2:5060", now))
}

#[test]
fn register_is_challenged_then_listed_with_its_expiry() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    let first = register("bob", "sip:bob@10.1.1.1:5060", 1, "Expires: 600\r\n");
    let (outcome, challenge) = proxy.exchange(udp(first.as_bytes(), "10.1.1.1:5060", now));
    assert_eq!(status(&outcome), Some(401));
    assert!(
        challenge.contains("WWW-Authenticate: Digest realm=\"edge.example\", nonce=\"")
            && challenge.contains("qop=\"auth\", algorithm=MD5\r\n")
            && !challenge.contains("SHA-256"),
        "{challenge}"
    );
    let auth = register_auth(&challenge, "bob", "bob-secret");
    let second = register(
        "bob",
        "sip:bob@10.1.1.1:5060",
        2,
        &format!("Expires: 600\r\n{auth}"),
    );
    let (outcome, ok) = proxy.exchange(udp(second.as_bytes(), "10.1.1.1:5060", now));
    assert_eq!(status(&outcome), Some(200), "{ok}");
    assert!(
        ok.contains("Contact: <sip:bob@10.1.1.1:5060>;expires=600\r\n"),
        "{ok}"
    );
    // The same REGISTER again (a retransmission) is answered the same way.
    let (outcome, again) = proxy.exchange(udp(second.as_bytes(), "10.1.1.1:5060", now));
    assert_eq!(
        (status(&outcome), again.contains(";expires=600")),
        (Some(200), true)
    );
}

#[test]
fn wrong_passwords_and_other_users_are_refused() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    let first = register("bob", "sip:bob@10.1.1.1", 1, "");
    let (_, challenge) = proxy.exchange(udp(first.as_bytes(), "10.1.1.1:5060", now));
    let wrong = register_auth(&challenge, "bob", "guess");
    let (outcome, text) = proxy.exchange(udp(
        register("bob", "sip:bob@10.1.1.1", 2, &wrong).as_bytes(),
        "10.1.1.1:5060",
        now,
    ));
    assert_eq!(status(&outcome), Some(403), "{text}");
    // Alice's good password does not register Bob.
    let alice = register_auth(&challenge, "alice", "alice-secret");
    let (outcome, _) = proxy.exchange(udp(
        register("bob", "sip:bob@10.1.1.1", 3, &alice).as_bytes(),
        "10.1.1.1:5060",
        now,
    ));
    assert_eq!(status(&outcome), Some(403));
    // A nonce minted for another address is not accepted from this one: a new challenge.
    let good = register_auth(&challenge, "bob", "bob-secret");
    let (outcome, _) = proxy.exchange(udp(
        register("bob", "sip:bob@10.1.1.1", 4, &good).as_bytes(),
        "10.9.9.9:5060",
        now,
    ));
    assert_eq!(status(&outcome), Some(401));
    // A stale nonce gets stale=true.
    let later = now + Duration::from_secs(301);
    let (outcome, stale) = proxy.exchange(udp(
        register("bob", "sip:bob@10.1.1.1", 5, &good).as_bytes(),
        "10.1.1.1:5060",
        later,
    ));
    assert_eq!(status(&outcome), Some(401));
    assert!(stale.contains("stale=true"), "{stale}");
}

#[test]
fn a_call_reaches_the_binding_at_the_source_it_registered_from() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    // Bob's Contact says 10.1.1.1:5060; his packets come from the NAT's 203.0.113.5:40000.
    registered(
        &mut proxy,
        "bob",
        "sip:bob@10.1.1.1:5060",
        "203.0.113.5:40000",
        now,
    );
    let (outcome, text) = call(&mut proxy, "bob", now);
    let Outcome::Forward(t) = outcome else {
        panic!("{outcome:?}: {text}");
    };
    assert_eq!(t.destination, "203.0.113.5:40000".parse().unwrap());
    assert_eq!(t.transport, Transport::Udp);
    assert!(
        text.starts_with("INVITE sip:bob@10.1.1.1:5060 SIP/2.0\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Record-Route: <sip:192.0.2.10:5060;lr>\r\n"),
        "{text}"
    );
    assert!(
        !text.contains("Proxy-Authorization"),
        "our realm's credentials stay here: {text}"
    );
}

#[test]
fn the_ack_of_our_own_407_ends_here() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    registered(
        &mut proxy,
        "bob",
        "sip:bob@10.1.1.1:5060",
        "10.1.1.1:5060",
        now,
    );
    let first = invite("alice", "bob", "inv1", 1, "");
    let (_, challenge) = proxy.exchange(udp(first.as_bytes(), "10.2.2.2:5060", now));
    let to = challenge.lines().find(|l| l.starts_with("To:")).unwrap();
    let tag = registrar_support::param(to, "tag").unwrap();
    let ack = first
        .replace("INVITE sip:bob@edge.example", "ACK sip:bob@edge.example")
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(
            "To: <sip:bob@edge.example>",
            &format!("To: <sip:bob@edge.example>;tag={tag}"),
        );
    let (outcome, _) = proxy.exchange(udp(ack.as_bytes(), "10.2.2.2:5060", now));
    assert_eq!(outcome, Outcome::Drop(DropReason::AckNotForwarded));
}

#[test]
fn a_tcp_binding_is_reached_over_its_connection() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    let conn = ConnectionId(0x42);
    let tcp = |data: &'static str| {
        let data: &'static [u8] = Box::leak(data.to_owned().into_boxed_str()).as_bytes();
        Input {
            data,
            flow: Flow::new(
                Transport::Tcp,
                "198.51.100.7:51000".parse().unwrap(),
                PROXY.parse().unwrap(),
            )
            .on(conn),
            now,
        }
    };
    let contact = "sip:carol@198.51.100.7:5070;transport=tcp";
    let first: &'static str = Box::leak(register("carol", contact, 1, "").into_boxed_str());
    let (outcome, challenge) = proxy.exchange(tcp(first));
    assert_eq!(status(&outcome), Some(401));
    let auth = register_auth(&challenge, "carol", "carol-secret");
    let second: &'static str = Box::leak(register("carol", contact, 2, &auth).into_boxed_str());
    let (outcome, _) = proxy.exchange(tcp(second));
    assert_eq!(status(&outcome), Some(200));
    let (outcome, text) = call(&mut proxy, "carol", now);
    let Outcome::Forward(t) = outcome else {
        panic!("{outcome:?}: {text}");
    };
    assert_eq!((t.transport, t.connection), (Transport::Tcp, Some(conn)));
    assert_eq!(t.destination, "198.51.100.7:51000".parse().unwrap());
    assert!(
        text.starts_with(&format!("INVITE {contact} SIP/2.0")),
        "{text}"
    );
}

#[test]
fn after_unregister_a_call_gets_480_and_strangers_404() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    registered(
        &mut proxy,
        "bob",
        "sip:bob@10.1.1.1:5060",
        "10.1.1.1:5060",
        now,
    );
    let first = register("bob", "*", 3, "Expires: 0\r\n").replace("Contact: <*>", "Contact: *");
    let (_, challenge) = proxy.exchange(udp(first.as_bytes(), "10.1.1.1:5060", now));
    let auth = register_auth(&challenge, "bob", "bob-secret");
    let second = register("bob", "*", 4, &format!("Expires: 0\r\n{auth}"))
        .replace("Contact: <*>", "Contact: *");
    let (outcome, ok) = proxy.exchange(udp(second.as_bytes(), "10.1.1.1:5060", now));
    assert_eq!(status(&outcome), Some(200), "{ok}");
    assert!(!ok.contains("Contact:"), "{ok}");
    assert_eq!(status(&call(&mut proxy, "bob", now).0), Some(480));
    assert_eq!(status(&call(&mut proxy, "mallory", now).0), Some(404));
}

#[test]
fn too_brief_an_expiry_is_423_with_min_expires() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    let first = register("bob", "sip:bob@10.1.1.1", 1, "Expires: 10\r\n");
    let (_, challenge) = proxy.exchange(udp(first.as_bytes(), "10.1.1.1:5060", now));
    let auth = register_auth(&challenge, "bob", "bob-secret");
    let second = register(
        "bob",
        "sip:bob@10.1.1.1",
        2,
        &format!("Expires: 10\r\n{auth}"),
    );
    let (outcome, text) = proxy.exchange(udp(second.as_bytes(), "10.1.1.1:5060", now));
    assert_eq!(status(&outcome), Some(423));
    assert!(text.contains("Min-Expires: 60\r\n"), "{text}");
}

#[test]
fn register_with_a_route_naming_us_and_options_to_us() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    let routed = register(
        "bob",
        "sip:bob@10.1.1.1",
        1,
        &format!("Route: <sip:{PROXY};lr>\r\n"),
    );
    let (outcome, _) = proxy.exchange(udp(routed.as_bytes(), "10.1.1.1:5060", now));
    assert_eq!(status(&outcome), Some(401));
    let options = format!(
        "OPTIONS sip:{PROXY} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKo1\r\n\
         From: <sip:bob@{DOMAIN}>;tag=o\r\nTo: <sip:{PROXY}>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let (outcome, _) = proxy.exchange(udp(options.as_bytes(), "10.1.1.1:5060", now));
    assert_eq!(status(&outcome), Some(200));
}

#[test]
fn a_binding_with_a_path_gets_it_as_a_preloaded_route() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    let path = "Path: <sip:edge2.example;lr>\r\nSupported: path\r\n";
    let first = register("bob", "sip:bob@10.1.1.1", 1, path);
    let (_, challenge) = proxy.exchange(udp(first.as_bytes(), "198.51.100.2:5060", now));
    let auth = register_auth(&challenge, "bob", "bob-secret");
    let second = register("bob", "sip:bob@10.1.1.1", 2, &format!("{path}{auth}"));
    let (outcome, ok) = proxy.exchange(udp(second.as_bytes(), "198.51.100.2:5060", now));
    assert_eq!(status(&outcome), Some(200));
    assert!(
        ok.contains("Path: <sip:edge2.example;lr>\r\n"),
        "the 200 echoes Path: {ok}"
    );
    let (outcome, text) = call(&mut proxy, "bob", now);
    let Outcome::Forward(t) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(t.destination, "198.51.100.2:5060".parse().unwrap());
    assert!(text.contains("Route: <sip:edge2.example;lr>\r\n"), "{text}");
}

#[test]
fn contact_tokens_are_restored_before_the_location_service_is_asked() {
    use ferrovia::contact::{ContactTable, ContactTableConfig, TokenKey};
    use ferrovia::proxy::ContactRewrite;
    use std::sync::Arc;
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    // The same core with contact rewriting on as well.
    let mut config = proxy.proxy.config().clone();
    config.contact = Some(ContactRewrite {
        requests: true,
        responses: true,
    });
    proxy.proxy = ferrovia::proxy::Proxy::new(config).unwrap();
    let table = ContactTable::new(ContactTableConfig::new(TokenKey::new([7; 16]), 1), now);
    proxy.tables.contact = Some(Arc::new(table));
    registered(
        &mut proxy,
        "bob",
        "sip:bob@10.1.1.1:5060",
        "10.1.1.1:5060",
        now,
    );
    let (outcome, text) = call(&mut proxy, "bob", now);
    assert!(matches!(outcome, Outcome::Forward(_)), "{text}");
    // Alice's Contact went out as a token URI naming us; Bob's BYE to it reaches Alice.
    let contact = text.lines().find(|l| l.starts_with("Contact:")).unwrap();
    let token_uri = &contact[contact.find('<').unwrap() + 1..contact.find('>').unwrap()];
    assert!(token_uri.ends_with("@192.0.2.10:5060"), "{contact}");
    let bye = format!(
        "BYE {token_uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKbye\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@{DOMAIN}>;tag=b\r\nTo: <sip:alice@{DOMAIN}>;tag=c1\r\n\
         Call-ID: call-inv2\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let (outcome, text) = proxy.exchange(udp(bye.as_bytes(), "10.1.1.1:5060", now));
    let Outcome::Forward(t) = outcome else {
        panic!("{outcome:?}: {text}");
    };
    assert_eq!(t.destination, "10.2.2.2:5060".parse().unwrap());
    assert!(
        text.starts_with("BYE sip:alice@10.2.2.2:5060 SIP/2.0"),
        "{text}"
    );
}
