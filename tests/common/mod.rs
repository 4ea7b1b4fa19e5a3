//! Shared by the core's black-box tests and benches: the realistic message vectors in
//! `tests/vectors/` and a core configured for them (192.0.2.10:5060, Record-Route on, the
//! registrar at 10.0.0.9 as next hop), with its context: shared tables and one worker's state.

#![allow(dead_code, unreachable_pub)]

pub mod differential;
pub mod strict;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ferrovia::contact::{ContactTable, ContactTableConfig, TokenKey};
use ferrovia::policy::{Engine, PolicyHandle};
use ferrovia::proxy::{
    ConnectionId, ContactRewrite, Context, Input, Listener, NextHop, OUTPUT_BUFFER_SIZE, Outcome,
    Proxy, ProxyConfig, Tables, Transport, WorkerState,
};
use ferrovia::sip::Flow;

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

/// A proxy with the context a worker gives it: the shared tables and one worker's state.
pub struct Core {
    pub proxy: Proxy,
    pub tables: Tables,
    pub state: WorkerState,
}

impl Core {
    pub fn new(config: ProxyConfig, tables: Tables) -> Core {
        let proxy = Proxy::new(config).unwrap();
        let state = WorkerState::new(proxy.config());
        Core {
            proxy,
            tables,
            state,
        }
    }

    /// `Proxy::handle` with this core's context.
    pub fn handle(&mut self, input: Input<'_>, out: &mut [u8]) -> Outcome {
        let mut ctx = Context::new(&self.tables, &mut self.state);
        self.proxy.handle(input, &mut ctx, out)
    }

    /// Handles `input` into a buffer of its own: the outcome and the bytes sent, if any.
    pub fn exchange(&mut self, input: Input<'_>) -> (Outcome, Vec<u8>) {
        let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
        let outcome = self.handle(input, &mut out);
        (outcome, written(outcome, &out).to_vec())
    }

    /// Puts a worker's engine for `policy` in front of the core's own decisions.
    pub fn route_by(&mut self, policy: &Arc<PolicyHandle>) {
        self.state.router = Some(Box::new(Engine::new(Arc::clone(policy), 0)));
    }

    pub fn handle_oversized(&self, input: Input<'_>, out: &mut [u8]) -> Outcome {
        self.proxy.handle_oversized(input, out)
    }
}

pub fn config() -> ProxyConfig {
    let listener = Listener {
        transport: Transport::Udp,
        addr: PROXY_ADDR.parse().unwrap(),
        advertise: None,
    };
    let mut config = ProxyConfig::new(listener, *b"ferrovia-testkey");
    config.record_route = true;
    config.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
    config
}

/// The core without contact rewriting.
pub fn core() -> Core {
    Core::new(config(), Tables::default())
}

/// The core with contact rewriting on, for requests and responses, over a table of its own.
pub fn core_with_contacts() -> Core {
    let mut config = config();
    config.contact = Some(ContactRewrite {
        requests: true,
        responses: true,
    });
    let table = ContactTable::new(
        ContactTableConfig::new(TokenKey::new(*b"ferrovia-contact"), 1),
        Instant::now(),
    );
    let tables = Tables {
        contact: Some(Arc::new(table)),
        ..Tables::default()
    };
    Core::new(config, tables)
}

/// A datagram from `source` to the proxy at `now`.
pub fn input<'a>(data: &'a [u8], source: &str, now: Instant) -> Input<'a> {
    input_on(data, source, Transport::Udp, None, now)
}

/// A message from `source` over `transport` (on connection `conn`, a stream's) to the proxy
/// at `now`.
pub fn input_on<'a>(
    data: &'a [u8],
    source: &str,
    transport: Transport,
    conn: Option<ConnectionId>,
    now: Instant,
) -> Input<'a> {
    Input {
        data,
        flow: Flow {
            transport,
            source: source.parse::<SocketAddr>().unwrap(),
            local: PROXY_ADDR.parse().unwrap(),
            conn,
        },
        now,
    }
}

/// The bytes `outcome` wrote into `out`: the forwarded message or the reply, else nothing.
pub fn written(outcome: Outcome, out: &[u8]) -> &[u8] {
    match outcome {
        Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => &out[..t.len],
        Outcome::Drop(_) | Outcome::Park(_) => &[],
    }
}
