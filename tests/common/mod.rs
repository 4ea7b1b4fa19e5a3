//! Shared by the core's black-box tests and benches: the realistic message vectors in
//! `tests/vectors/` and a proxy configured for them (192.0.2.10:5060, Record-Route on, the
//! registrar at 10.0.0.9 as next hop).

#![allow(dead_code)]

pub mod differential;
pub mod strict;

use std::net::SocketAddr;
use std::time::Instant;

use ferrovia::proxy::{Input, Listener, NextHop, Proxy, ProxyConfig, Transport};

pub const PROXY_ADDR: &str = "192.0.2.10:5060";

/// (name, bytes, sender): a call's messages as they reach the proxy.
pub const VECTORS: &[(&str, &[u8], &str)] = &[
    (
        "invite_sdp",
        include_bytes!("../vectors/invite_sdp.sip"),
        "10.0.0.1:5060",
    ),
    (
        "ringing_180",
        include_bytes!("../vectors/ringing_180.sip"),
        "10.0.0.7:5060",
    ),
    (
        "ok_200_sdp",
        include_bytes!("../vectors/ok_200_sdp.sip"),
        "10.0.0.7:5060",
    ),
    ("ack", include_bytes!("../vectors/ack.sip"), "10.0.0.1:5060"),
    ("bye", include_bytes!("../vectors/bye.sip"), "10.0.0.1:5060"),
    (
        "register",
        include_bytes!("../vectors/register.sip"),
        "10.0.0.1:5060",
    ),
];

pub fn proxy() -> Proxy {
    let listener = Listener {
        transport: Transport::Udp,
        addr: PROXY_ADDR.parse().unwrap(),
        advertise: None,
    };
    let mut config = ProxyConfig::new(listener, *b"ferrovia-testkey");
    config.record_route = true;
    config.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
    Proxy::new(config).unwrap()
}

pub fn input<'a>(data: &'a [u8], source: &str, now: Instant) -> Input<'a> {
    Input {
        data,
        source: source.parse::<SocketAddr>().unwrap(),
        local: PROXY_ADDR.parse().unwrap(),
        transport: Transport::Udp,
        connection: None,
        now,
    }
}
