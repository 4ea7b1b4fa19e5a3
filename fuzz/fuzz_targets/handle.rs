//! Scan + decide + rewrite on arbitrary bytes, over UDP and over a stream: no panic, and
//! every forwarded or replied message re-scans as a valid message.
//!
//! `cargo fuzz run handle` (from the repository root; not run in CI).

#![no_main]

use std::time::Instant;

use ferrovia::proxy::{
    ConnectionId, Input, Listener, NextHop, OUTPUT_BUFFER_SIZE, Outcome, Proxy, ProxyConfig,
    Transport,
};
use ferrovia::sip::Message;
use libfuzzer_sys::fuzz_target;

fn proxy() -> Proxy {
    let listener = Listener {
        transport: Transport::Udp,
        addr: "192.0.2.10:5060".parse().unwrap(),
        advertise: None,
    };
    let mut config = ProxyConfig::new(listener, *b"ferrovia-fuzzkey");
    config.listeners.push(Listener {
        transport: Transport::Tcp,
        addr: "192.0.2.10:5060".parse().unwrap(),
        advertise: None,
    });
    config.record_route = true;
    config.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
    Proxy::new(config).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let proxy = proxy();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    for (transport, connection) in [(Transport::Udp, None), (Transport::Tcp, Some(ConnectionId(9)))] {
        let input = Input {
            data,
            source: "10.0.0.1:5060".parse().unwrap(),
            local: "192.0.2.10:5060".parse().unwrap(),
            transport,
            connection,
            now: Instant::now(),
        };
        match proxy.handle(input, &mut out) {
            Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => {
                assert!(Message::scan(&out[..t.len], false).is_ok());
            }
            Outcome::Drop(_) => {}
        }
        let _ = proxy.handle_oversized(input, &mut out);
    }
});
