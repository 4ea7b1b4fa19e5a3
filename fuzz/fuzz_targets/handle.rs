//! Scan + decide + rewrite on arbitrary bytes, over UDP and over a stream, with contact
//! rewriting on (the rewrite and the token restore read Contacts and Request-URIs off the
//! network) and a resolver (a host name outside the static table parks the request, resumed
//! here at once with an address): no panic, and every forwarded or replied message re-scans as
//! a valid message.
//!
//! `cargo fuzz run handle` (from the repository root; not run in CI).

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ferrovia::contact::{ContactTable, ContactTableConfig, TokenKey};
use ferrovia::proxy::{
    Answer, ConnectionId, ContactRewrite, Context, Input, Listener, NextHop, OUTPUT_BUFFER_SIZE, Outcome,
    Proxy, ProxyConfig, Tables, Transport, WorkerState,
};
use ferrovia::sip::{Flow, Message};
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
    config.contact = Some(ContactRewrite {
        requests: true,
        responses: true,
    });
    config.resolver = true;
    Proxy::new(config).unwrap()
}

/// One contact table for the whole run, so that a token an earlier input minted can be
/// restored by a later one; small, so that "full" is reached too.
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut config = ContactTableConfig::new(TokenKey::new(*b"ferrovia-fuzzctc"), 1);
        config.capacity = 64;
        Tables {
            contact: Some(Arc::new(ContactTable::new(config, Instant::now()))),
            ..Tables::default()
        }
    })
}

fuzz_target!(|data: &[u8]| {
    static PROXY: OnceLock<Proxy> = OnceLock::new();
    let proxy = PROXY.get_or_init(proxy);
    let mut state = WorkerState::new(proxy.config());
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    for (transport, conn) in [(Transport::Udp, None), (Transport::Tcp, Some(ConnectionId(9)))] {
        let input = Input {
            data,
            flow: Flow {
                transport,
                source: "10.0.0.1:5060".parse().unwrap(),
                local: "192.0.2.10:5060".parse().unwrap(),
                conn,
            },
            now: Instant::now(),
        };
        let mut ctx = Context::new(tables(), &mut state);
        let mut outcome = proxy.handle(input, &mut ctx, &mut out);
        if let Outcome::Park(ticket) = outcome {
            let answer = Answer::Address("10.0.0.77".parse().unwrap());
            outcome = proxy.resume(ticket, answer, &mut ctx, &mut out).expect("parked");
            assert!(!matches!(outcome, Outcome::Park(_)), "a resumed message never parks");
        }
        match outcome {
            Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => {
                assert!(Message::scan(&out[..t.len], false).is_ok());
            }
            Outcome::Drop(_) | Outcome::Park(_) => {}
        }
        let _ = proxy.handle_oversized(input, &mut out);
    }
});
