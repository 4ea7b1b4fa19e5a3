//! What the core's rule tests share: a proxy with its context ([`Core`]), running one message
//! through it, and the vectors' common parts. Every forwarded or replied message is re-scanned,
//! and the proxy's branch hash is masked as `HASH` (its properties are tested in `branch`) so the
//! expected bytes can be written out.
//!
//! The rules' tests live next to the rules: `request/tests.rs`, `response/tests.rs`,
//! `contact/tests.rs`, `park/tests.rs`, and `tests.rs` for the entry points (framing, size, the
//! header limit, refusal).

#![allow(unused_imports, dead_code)]

pub(super) use std::net::SocketAddr;
pub(super) use std::time::Instant;

pub(super) use super::*;
pub(super) use crate::sip::{Flow, Message, Transport};

pub(super) const PROXY: &str = "192.0.2.10:5060";

pub(super) fn listener(addr: &str, transport: Transport) -> Listener {
    Listener {
        transport,
        addr: addr.parse().unwrap(),
        advertise: None,
    }
}

/// A proxy with its context: the shared tables and one worker's state.
pub(super) struct Core {
    pub(super) proxy: Proxy,
    pub(super) tables: Tables,
    pub(super) state: std::cell::RefCell<WorkerState>,
}

impl Core {
    pub(super) fn handle(&self, input: Input<'_>, out: &mut [u8]) -> Outcome {
        let mut state = self.state.borrow_mut();
        self.proxy
            .handle(input, &mut Context::new(&self.tables, &mut state), out)
    }

    pub(super) fn handle_oversized(&self, input: Input<'_>, out: &mut [u8]) -> Outcome {
        self.proxy.handle_oversized(input, out)
    }

    pub(super) fn config(&self) -> &ProxyConfig {
        self.proxy.config()
    }
}

pub(super) fn core_with(edit: impl FnOnce(&mut ProxyConfig), tables: Tables) -> Core {
    let mut config = ProxyConfig::new(listener(PROXY, Transport::Udp), [42; 16]);
    edit(&mut config);
    let proxy = Proxy::new(config).unwrap();
    let state = std::cell::RefCell::new(WorkerState::new(proxy.config()));
    Core {
        proxy,
        tables,
        state,
    }
}

pub(super) fn proxy_with(edit: impl FnOnce(&mut ProxyConfig)) -> Core {
    core_with(edit, Tables::default())
}

pub(super) fn proxy() -> Core {
    proxy_with(|_| {})
}

/// A contact table sealed with the tests' key, its entry ids starting at `first` (random per
/// run in production), holding `capacity` entries (the default when `None`).
pub(super) fn contact_table(
    first: u64,
    capacity: Option<usize>,
    now: Instant,
) -> std::sync::Arc<crate::contact::ContactTable> {
    use crate::contact::{ContactTable, ContactTableConfig, TokenKey};
    let mut config = ContactTableConfig::new(TokenKey::new([5; 16]), first);
    if let Some(capacity) = capacity {
        config.capacity = capacity;
    }
    std::sync::Arc::new(ContactTable::new(config, now))
}

/// An edge rewriting contacts both ways over `table`, the registrar (10.0.0.9:5060) as its
/// next hop.
pub(super) fn contact_edge(table: &std::sync::Arc<crate::contact::ContactTable>) -> Core {
    let tables = Tables {
        contact: Some(std::sync::Arc::clone(table)),
        ..Tables::default()
    };
    core_with(
        |c| {
            c.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
            c.contact = Some(ContactRewrite {
                requests: true,
                responses: true,
            });
        },
        tables,
    )
}

/// What came out: the outcome and the bytes, with our branch hashes masked.
pub(super) struct Handled {
    pub(super) outcome: Outcome,
    pub(super) text: String,
}

impl Handled {
    /// Fails, showing the whole text, unless it contains `part`.
    #[track_caller]
    pub(super) fn assert_has(&self, part: &str) {
        assert!(self.text.contains(part), "no {part:?} in:\n{}", self.text);
    }

    /// Fails, showing the whole text, unless it starts with `start`.
    #[track_caller]
    pub(super) fn assert_starts(&self, start: &str) {
        assert!(
            self.text.starts_with(start),
            "no {start:?} at the start of:\n{}",
            self.text
        );
    }
}

/// A message from `source` over `transport` (on connection `conn`, if a stream's) to the
/// proxy's first listener, now.
pub(super) fn input_on<'a>(
    p: &Core,
    data: &'a [u8],
    source: &str,
    transport: Transport,
    conn: Option<u64>,
) -> Input<'a> {
    Input {
        data,
        flow: Flow {
            transport,
            source: source.parse().unwrap(),
            local: p.config().listeners[0].addr,
            conn: conn.map(ConnectionId),
        },
        now: Instant::now(),
    }
}

/// A datagram from `source` to the proxy's first listener, now.
pub(super) fn input<'a>(p: &Core, data: &'a [u8], source: &str) -> Input<'a> {
    input_on(p, data, source, Transport::Udp, None)
}

/// The bytes `outcome` wrote into `out`: the forwarded message or the reply, else nothing.
pub(super) fn written(outcome: Outcome, out: &[u8]) -> &[u8] {
    let len = match outcome {
        Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => t.len,
        Outcome::Drop(_) | Outcome::Park(_) => 0,
    };
    &out[..len]
}

/// Handles `input` into `out`: the outcome and what it wrote (re-scanned, not masked).
pub(super) fn handle_into(p: &Core, input: Input<'_>, out: &mut [u8]) -> (Outcome, String) {
    let stream = input.flow.transport.is_stream();
    let outcome = p.handle(input, out);
    let bytes = written(outcome, out);
    if !bytes.is_empty() {
        Message::scan(bytes, stream).expect("output re-scans");
    }
    (outcome, String::from_utf8_lossy(bytes).into_owned())
}

/// What the proxy does with `raw` from `source` over `transport` (on connection `conn`), its
/// bytes unmasked: a response to them still carries our real branch.
pub(super) fn handle_on(
    p: &Core,
    raw: &str,
    source: &str,
    transport: Transport,
    conn: Option<u64>,
) -> (Outcome, String) {
    let input = input_on(p, raw.as_bytes(), source, transport, conn);
    handle_into(p, input, &mut vec![0u8; OUTPUT_BUFFER_SIZE])
}

pub(super) fn run_on(p: &Core, raw: &str, source: &str, transport: Transport) -> Handled {
    let (outcome, text) = handle_on(p, raw, source, transport, None);
    Handled {
        outcome,
        text: mask(&text),
    }
}

pub(super) fn run(p: &Core, raw: &str, source: &str) -> Handled {
    run_on(p, raw, source, Transport::Udp)
}

/// Replaces 16 hex digits after `z9hG4bKfv` (our branch) or `;tag=` (a stateless To tag)
/// with `HASH`.
pub(super) fn mask(text: &str) -> String {
    let mut s = text.to_owned();
    for marker in ["z9hG4bKfv", ";tag="] {
        let mut from = 0;
        while let Some(i) = s[from..].find(marker) {
            let start = from + i + marker.len();
            let end = start + 16;
            let hex = |t: &str| t.bytes().all(|b| b.is_ascii_hexdigit());
            let next_is_hex = s.get(end..end + 1).is_some_and(hex);
            if s.get(start..end).is_some_and(hex) && !next_is_hex {
                s.replace_range(start..end, "HASH");
            }
            from = start;
        }
    }
    s
}

pub(super) fn forwarded_to(r: &Handled) -> SocketAddr {
    match r.outcome {
        Outcome::Forward(t) => t.destination,
        other => panic!("not forwarded: {other:?}\n{}", r.text),
    }
}

pub(super) fn replied(r: &Handled) -> (u16, SocketAddr) {
    match r.outcome {
        Outcome::Reply { status, transmit } => (status, transmit.destination),
        other => panic!("no reply: {other:?}"),
    }
}

pub(super) fn dropped(r: &Handled) -> DropReason {
    match r.outcome {
        Outcome::Drop(reason) => reason,
        other => panic!("not dropped: {other:?}\n{}", r.text),
    }
}

/// A request with the usual transaction headers; `{extra}` lines go after Max-Forwards.
pub(super) fn request(start: &str, extra: &str) -> String {
    let method = start.split(' ').next().unwrap();
    format!(
        "{start} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n{extra}To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

pub(super) const TAIL: &str = "To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n";

pub(super) const OUR_VIA: &str = "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfvHASH\r\n";

pub(super) fn response(status: &str, vias: &str) -> String {
    format!(
        "SIP/2.0 {status}\r\n{vias}To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

pub(super) const OURS: &str = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef";

/// Turns a forwarded request into the response its next hop would send back.
pub(super) fn response_to(forwarded: &str) -> String {
    let vias: String = forwarded
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    response("200 OK", &vias)
}
