//! Proves the contact table's lookup path allocates nothing: a counting global allocator
//! counts each thread's allocations, and lookups of every outcome (restored, forged,
//! malformed, foreign, unknown, expired) must add none, also while another thread inserts
//! and sweeps. A thread's first use of the table may allocate (the epoch-based reclamation
//! registers the thread once), so each reader warms up first. The proxy's write-back of
//! tokens in a 2xx to REGISTER (issue 10) allocates nothing either, REGISTER refresh included.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferrovia::contact::{
    ContactTable, ContactTableConfig, ContactToken, EntryId, Flow, Lifetime, NodeId, TokenFields,
    TokenKey,
};
use ferrovia::proxy::{
    ContactRewrite, Context, Input, Listener, NextHop, OUTPUT_BUFFER_SIZE, Outcome, Proxy,
    ProxyConfig, Tables, Transport, WorkerState,
};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

fn allocations_by_this_thread() -> u64 {
    alloc_support::on_this_thread()
}

const SECRET: [u8; 16] = *b"alloc-test-key!!";

fn flow(port: u16) -> Flow {
    Flow::new(
        Transport::Udp,
        SocketAddr::from(([203, 0, 113, 7], port)),
        SocketAddr::from(([198, 51, 100, 1], 5060)),
    )
}

fn uri(n: u16) -> Vec<u8> {
    format!("sip:user{n}@192.168.1.10:5060;transport=udp").into_bytes()
}

fn table_with(n: u16, now: Instant) -> (ContactTable, Vec<ContactToken>) {
    let mut config = ContactTableConfig::new(TokenKey::new(SECRET), 7);
    config.idle_timeout = Duration::from_secs(30);
    let table = ContactTable::new(config, now);
    let tokens = (0..n)
        .map(|i| {
            let life = Lifetime::Registration(Duration::from_secs(3600));
            table.insert(&uri(i), flow(10_000 + i), life, now).unwrap() // table has room for n
        })
        .collect();
    (table, tokens)
}

/// Every kind of lookup outcome, `rounds` times; returns the restored URI lengths' sum so
/// the work cannot be optimised away.
fn lookups(table: &ContactTable, tokens: &[ContactToken], now: Instant, rounds: usize) -> usize {
    let mut forged = [0u8; 29];
    forged.copy_from_slice(tokens[0].as_bytes());
    forged[28] = if forged[28] == b'a' { b'q' } else { b'a' };
    let foreign = TokenKey::new(SECRET).seal(TokenFields {
        node: NodeId(9),
        entry: EntryId(7),
    });
    let unknown = TokenKey::new(SECRET).seal(TokenFields {
        node: NodeId(0),
        entry: EntryId(1 << 40),
    });
    let mut sum = 0;
    for round in 0..rounds {
        let token = &tokens[round % tokens.len()];
        sum += table
            .lookup(token.as_bytes(), now, |e| e.original_uri().len())
            .unwrap_or(0);
        for junk in [
            &forged[..],
            b"alice",
            foreign.as_bytes(),
            unknown.as_bytes(),
        ] {
            assert!(table.lookup(junk, now, |_| ()).is_err());
        }
    }
    sum
}

#[test]
fn lookups_allocate_nothing() {
    let t0 = Instant::now();
    let (table, tokens) = table_with(1000, t0);
    lookups(&table, &tokens, t0, 1); // warm up this thread
    let before = allocations_by_this_thread();
    let sum = lookups(&table, &tokens, t0, 10_000);
    assert_eq!(allocations_by_this_thread() - before, 0);
    assert!(sum > 0);
}

#[test]
fn expired_lookups_allocate_nothing() {
    let t0 = Instant::now();
    let (table, tokens) = table_with(10, t0);
    let late = t0 + Duration::from_secs(7200);
    assert!(table.lookup(tokens[0].as_bytes(), late, |_| ()).is_err()); // warm up
    let before = allocations_by_this_thread();
    for token in &tokens {
        assert!(table.lookup(token.as_bytes(), late, |_| ()).is_err());
    }
    assert_eq!(allocations_by_this_thread() - before, 0);
}

#[test]
fn refreshing_an_existing_contact_allocates_nothing() {
    let t0 = Instant::now();
    let (table, tokens) = table_with(100, t0);
    let life = Lifetime::Registration(Duration::from_secs(3600));
    let before = allocations_by_this_thread();
    for i in 0..100u16 {
        let u = uri(i);
        let again = table.insert(&u, flow(10_000 + i), life, t0 + Duration::from_secs(60));
        assert_eq!(again, Ok(tokens[usize::from(i)]));
        drop(u);
    }
    // Only the 100 test URIs were allocated (by `uri`), nothing by the table.
    assert_eq!(allocations_by_this_thread() - before, 100);
}

#[test]
fn lookups_allocate_nothing_while_another_thread_inserts_and_sweeps() {
    let t0 = Instant::now();
    let (table, tokens) = table_with(1000, t0);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0u16;
            let mut now = t0;
            while !done.load(Ordering::Relaxed) {
                now += Duration::from_millis(10);
                let u = uri(20_000 + i % 2000);
                let _ = table.insert(&u, flow(i), Lifetime::Dialog, now);
                if i.is_multiple_of(256) {
                    table.sweep(now);
                }
                i = i.wrapping_add(1);
            }
        });
        lookups(&table, &tokens, t0, 1);
        let before = allocations_by_this_thread();
        let sum = lookups(&table, &tokens, t0, 50_000);
        let after = allocations_by_this_thread();
        done.store(true, Ordering::Relaxed);
        assert_eq!(after - before, 0);
        assert!(sum > 0);
    });
}

const PHONE: &str = "203.0.113.5:40000";
const EDGE: &str = "192.0.2.10:5060";

/// A proxy rewriting contacts into `table`, with one worker's state.
struct Edge {
    proxy: Proxy,
    tables: Tables,
    state: std::cell::RefCell<WorkerState>,
}

fn edge(table: std::sync::Arc<ContactTable>) -> Edge {
    let listener = Listener {
        transport: Transport::Udp,
        addr: EDGE.parse().unwrap(),
        advertise: None,
    };
    let mut config = ProxyConfig::new(listener, [42; 16]);
    config.next_hop = Some(NextHop::parse("sip:10.0.0.9:5060").unwrap());
    config.contact = Some(ContactRewrite {
        requests: true,
        responses: true,
    });
    let proxy = Proxy::new(config).unwrap();
    let state = std::cell::RefCell::new(WorkerState::new(proxy.config()));
    let tables = Tables {
        contact: Some(table),
        ..Tables::default()
    };
    Edge {
        proxy,
        tables,
        state,
    }
}

fn handle(edge: &Edge, data: &[u8], source: &str, now: Instant, out: &mut [u8]) -> usize {
    let input = Input {
        data,
        flow: Flow::new(
            Transport::Udp,
            source.parse().unwrap(),
            EDGE.parse().unwrap(),
        ),
        now,
    };
    let mut state = edge.state.borrow_mut();
    let mut ctx = Context::new(&edge.tables, &mut state);
    match edge.proxy.handle(input, &mut ctx, out) {
        Outcome::Forward(t) => t.len,
        other => panic!("not forwarded: {other:?}"),
    }
}

#[test]
fn writing_tokens_back_in_a_register_200_allocates_nothing() {
    let t0 = Instant::now();
    let table = std::sync::Arc::new(ContactTable::new(
        ContactTableConfig::new(TokenKey::new(SECRET), 7),
        t0,
    ));
    let proxy = edge(std::sync::Arc::clone(&table));
    let phone = SocketAddr::from(([203, 0, 113, 5], 40000));
    let ours = |user: &str| {
        let flow = Flow::new(Transport::Udp, phone, EDGE.parse().unwrap());
        let life = Lifetime::Registration(Duration::from_secs(60));
        let uri = format!("sip:{user}@192.168.1.20:5062;transport=udp");
        table.insert(uri.as_bytes(), flow, life, t0).unwrap() // the table has room
    };
    let (a, b) = (ours("dave"), ours("dave-desk"));
    let register = "REGISTER sip:192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKnashds7;rport\r\nMax-Forwards: 70\r\n\
From: <sip:dave@example.net>;tag=r1\r\nTo: <sip:dave@example.net>\r\nCall-ID: reg1@phone\r\n\
CSeq: 2 REGISTER\r\nContact: <sip:dave@192.168.1.20:5062;transport=udp>;expires=60\r\n\
Content-Length: 0\r\n\r\n";
    let ok = format!(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef\r\n\
Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKnashds7;received=203.0.113.5;rport=40000\r\n\
From: <sip:dave@example.net>;tag=r1\r\nTo: <sip:dave@example.net>;tag=reg\r\n\
Call-ID: reg1@phone\r\nCSeq: 2 REGISTER\r\nExpires: 20\r\n\
Contact: <sip:{a}@192.0.2.10:5060;transport=udp>;expires=10;+sip.instance=\"<urn:uuid:1>\";\
pub-gruu=\"sip:dave@example.net;gr=urn:uuid:1\", <sip:dave@198.51.100.77>;expires=300\r\n\
Contact: sip:{b}@192.0.2.10:5060\r\nContent-Length: 0\r\n\r\n"
    );
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let round = |out: &mut [u8]| {
        handle(&proxy, register.as_bytes(), PHONE, t0, out);
        let len = handle(&proxy, ok.as_bytes(), "10.0.0.9:5060", t0, out);
        let text = &out[..len];
        assert!(
            memchr::memmem::find(
                text,
                b"<sip:dave@192.168.1.20:5062;transport=udp>;expires=10;"
            )
            .is_some()
        );
        assert!(
            memchr::memmem::find(text, b"<sip:dave-desk@192.168.1.20:5062;transport=udp>\r\n")
                .is_some()
        );
    };
    round(&mut out); // warm-up: the REGISTER's first insert, this thread's first pin
    let before = allocations_by_this_thread();
    for _ in 0..1000 {
        round(&mut out);
    }
    assert_eq!(allocations_by_this_thread() - before, 0);
}
