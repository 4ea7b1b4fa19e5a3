//! What an established TLS, WS or WSS connection allocates per message, with a counting
//! global allocator: the proxy's own allocations are the process's less the test thread's
//! (the clients and next hops run on the test thread). Once the buffers are warm nothing is
//! allocated per message over WS, TLS or WSS: after the handshake the TLS records are opened
//! in place in the session's input buffer and sealed straight into its output buffer
//! (`src/runtime/stream/tls/record.rs`), not through rustls' record layer, which takes a
//! `Vec` per record. Any allocation coming back fails the test.

mod runtime_support;
mod secure_support;

use std::io::{Read, Write};

use runtime_support::sip::{invite_over, response};
use runtime_support::start_service;
use runtime_support::tcp::{Family, NextHop};
use secure_support::{
    Listeners, Pki, SipConn, TlsNextHop, secure_settings, tls_connect, ws_connect,
};
use tungstenite::Message;

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const ROUND_TRIPS: u64 = 500;

/// The proxy's allocations (all threads but this one) while `f` runs.
fn proxy_allocations(f: impl FnOnce()) -> u64 {
    let (process, thread) = (alloc_support::in_process(), alloc_support::on_this_thread());
    f();
    (alloc_support::in_process() - process) - (alloc_support::on_this_thread() - thread)
}

#[test]
fn per_message_allocations_on_established_tls_ws_and_wss() {
    let pki = Pki::new("no-alloc");
    let family = Family::V4;
    let server = start_service(&secure_settings(family, &pki, 1));
    let at = Listeners::of(server.local_addrs());

    // TLS → TLS: four records per round trip cross the proxy's sessions (two opened, two
    // sealed), and the proxy is the client toward the next hop.
    let next = TlsNextHop::bind(family, &pki);
    let mut client =
        SipConn::new(tls_connect(at.tls, pki.client_config(false), "localhost").unwrap());
    let me = client.stream.sock.local_addr().unwrap();
    let request = invite_over("TLS", me, next.addr(), "tls", "tls-alloc").into_bytes();
    client.send(&request);
    let mut hop = next.accept();
    let forwarded = hop.recv();
    let answer = response(&forwarded, 200, "OK").into_bytes();
    hop.send(&answer);
    let returned = client.recv();
    let (mut fbuf, mut rbuf) = (vec![0u8; forwarded.len()], vec![0u8; returned.len()]);
    let mut tls_round = || {
        client.stream.write_all(&request).unwrap();
        hop.stream.read_exact(&mut fbuf).unwrap();
        hop.stream.write_all(&answer).unwrap();
        client.stream.read_exact(&mut rbuf).unwrap();
    };
    (0..50).for_each(|_| tls_round());
    let tls = proxy_allocations(|| (0..ROUND_TRIPS).for_each(|_| tls_round()));

    // WS and WSS → TCP: the WebSocket side is the browser's; the next hop is plain TCP.
    let mut ws_figures = Vec::new();
    for secure in [false, true] {
        let next = NextHop::bind(family);
        let (addr, config) = match secure {
            true => (at.wss, Some(pki.client_config(false))),
            false => (at.ws, None),
        };
        let mut ws = ws_connect(addr, config, Some("sip"), None).unwrap();
        let request = invite_over(
            if secure { "WSS" } else { "WS" },
            me,
            next.addr(),
            "tcp",
            "ws-alloc",
        );
        ws.send(Message::text(request.clone())).unwrap();
        let mut hop = next.accept();
        let forwarded = hop.recv();
        let answer = response(&forwarded, 200, "OK").into_bytes();
        let mut fbuf = vec![0u8; forwarded.len()];
        hop.send(&answer);
        ws.read().unwrap();
        let message = Message::text(request);
        let mut round = || {
            ws.send(message.clone()).unwrap();
            hop.stream.read_exact(&mut fbuf).unwrap();
            hop.stream.write_all(&answer).unwrap();
            ws.read().unwrap();
        };
        (0..50).for_each(|_| round());
        ws_figures.push(proxy_allocations(|| (0..ROUND_TRIPS).for_each(|_| round())));
    }
    let (ws, wss) = (ws_figures[0], ws_figures[1]);
    eprintln!(
        "allocations per round trip: TLS↔TLS {:.2}, WS↔TCP {:.2}, WSS↔TCP {:.2}",
        tls as f64 / ROUND_TRIPS as f64,
        ws as f64 / ROUND_TRIPS as f64,
        wss as f64 / ROUND_TRIPS as f64
    );
    assert_eq!(ws, 0, "WS: {ws} allocations in {ROUND_TRIPS} round trips");
    assert_eq!(
        tls, 0,
        "TLS: {tls} allocations in {ROUND_TRIPS} round trips"
    );
    assert_eq!(
        wss, 0,
        "WSS: {wss} allocations in {ROUND_TRIPS} round trips"
    );
}
