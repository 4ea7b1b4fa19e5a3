//! Requests through the location service allocate nothing: an authenticated INVITE for a
//! registered user (digest verified, binding looked up, Request-URI replaced, credentials
//! removed) and an in-dialog BYE routed by our Record-Route, in a loop, perform zero heap
//! allocations after warm-up. A REGISTER may allocate (it writes the table); it is not in
//! the loop.

mod registrar_support;

use std::time::Instant;

use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome};
use registrar_support::{
    DOMAIN, PROXY, authorization, invite, proxy, register, register_auth, registrar, udp,
};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

#[test]
fn location_routed_and_in_dialog_requests_allocate_nothing() {
    let now = Instant::now();
    let mut proxy = proxy(registrar(now));
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let text = |out: &[u8], o: &Outcome| match o {
        Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => {
            String::from_utf8_lossy(&out[..t.len]).into_owned()
        }
        Outcome::Drop(_) | Outcome::Park(_) => String::new(),
    };
    // Bob registers (allowed to allocate).
    let first = register("bob", "sip:bob@10.1.1.1:5060", 1, "");
    let o = proxy.handle(udp(first.as_bytes(), "10.1.1.1:5060", now), &mut out);
    let challenge = text(&out, &o);
    let auth = register_auth(&challenge, "bob", "bob-secret");
    let second = register("bob", "sip:bob@10.1.1.1:5060", 2, &auth);
    let o = proxy.handle(udp(second.as_bytes(), "10.1.1.1:5060", now), &mut out);
    assert!(matches!(o, Outcome::Reply { status: 200, .. }), "{o:?}");
    // Alice's INVITE with credentials for a challenge she got.
    let probe = invite("alice", "bob", "inv1", 1, "");
    let o = proxy.handle(udp(probe.as_bytes(), "10.2.2.2:5060", now), &mut out);
    let challenge = text(&out, &o);
    let uri = format!("sip:bob@{DOMAIN}");
    let auth = authorization(
        &challenge,
        "Proxy-Authorization",
        "alice",
        "alice-secret",
        "INVITE",
        &uri,
    );
    let call = invite("alice", "bob", "inv2", 2, &auth);
    let bye = format!(
        "BYE sip:bob@10.1.1.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.2.2.2:5060;branch=z9hG4bKbye1\r\n\
         Route: <sip:{PROXY};lr>\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=c1\r\n\
         To: <sip:bob@{DOMAIN}>;tag=b1\r\nCall-ID: call-inv2\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let mut round = |out: &mut [u8]| {
        for msg in [&call, &bye] {
            let o = proxy.handle(udp(msg.as_bytes(), "10.2.2.2:5060", now), out);
            assert!(matches!(o, Outcome::Forward(_)), "{o:?}");
        }
    };
    round(&mut out); // warm-up
    let before = alloc_support::on_this_thread();
    for _ in 0..1000 {
        round(&mut out);
    }
    assert_eq!(
        alloc_support::on_this_thread() - before,
        0,
        "heap allocations per request"
    );
}
