//! Black-box tests of the contact table: tokens are network input, so random bytes and
//! random token-shaped strings must never panic a lookup and never be accepted; and
//! concurrent readers, an inserter and a sweeper must only ever see the contact a token was
//! issued for.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferrovia::contact::{
    ContactTable, ContactTableConfig, Flow, Lifetime, LookupError, TOKEN_LEN, TokenKey,
};
use ferrovia::proxy::Transport;
use proptest::prelude::*;

const SECRET: [u8; 16] = *b"table-test-key!!";

fn table(now: Instant) -> ContactTable {
    let mut config = ContactTableConfig::new(TokenKey::new(SECRET), 0);
    config.capacity = 128;
    ContactTable::new(config, now)
}

fn flow(port: u16) -> Flow {
    Flow::new(
        Transport::Tcp,
        SocketAddr::from(([203, 0, 113, 9], port)),
        SocketAddr::from(([198, 51, 100, 1], 5060)),
    )
}

/// A table with entries 0..64 so that a lucky guess of an id would find one.
fn filled(now: Instant) -> ContactTable {
    let table = table(now);
    for i in 0..64u16 {
        let uri = format!("sip:u{i}@10.0.0.1");
        table
            .insert(uri.as_bytes(), flow(i), Lifetime::Dialog, now)
            .unwrap(); // 64 entries fit a capacity of 128
    }
    table
}

proptest! {
    #[test]
    fn random_bytes_are_never_accepted(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let now = Instant::now();
        let table = filled(now);
        let result = table.lookup(&bytes, now, |_| ());
        prop_assert!(result.is_err());
    }

    #[test]
    fn random_token_shaped_strings_are_forged(
        symbols in proptest::collection::vec(
            proptest::sample::select(b"abcdefghijklmnopqrstuvwxyz234567".to_vec()),
            TOKEN_LEN,
        )
    ) {
        let now = Instant::now();
        let table = filled(now);
        let result = table.lookup(&symbols, now, |_| ());
        prop_assert!(
            matches!(result, Err(LookupError::Forged | LookupError::Malformed)),
            "{:?}", result
        );
    }

    #[test]
    fn a_changed_genuine_token_is_refused(
        position in 0..TOKEN_LEN,
        replacement in any::<u8>(),
    ) {
        let now = Instant::now();
        let table = filled(now);
        let token = table.insert(b"sip:x@10.0.0.2", flow(9999), Lifetime::Dialog, now).unwrap();
        let mut text = token.as_bytes().to_vec();
        prop_assume!(text[position] != replacement);
        text[position] = replacement;
        prop_assert!(table.lookup(&text, now, |_| ()).is_err());
    }
}

#[test]
fn concurrent_readers_see_only_their_own_contact() {
    let t0 = Instant::now();
    let mut config = ContactTableConfig::new(TokenKey::new(SECRET), 0);
    config.idle_timeout = Duration::from_millis(500);
    let table = ContactTable::new(config, t0);
    let stable: Vec<_> = (0..256u16)
        .map(|i| {
            let uri = format!("sip:stable{i}@192.168.0.{}", i % 250);
            let life = Lifetime::Registration(Duration::from_secs(3600));
            let token = table.insert(uri.as_bytes(), flow(i), life, t0).unwrap(); // room
            (token, uri, flow(i))
        })
        .collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| churn(&table, t0, &done));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let stable = &stable;
                let table = &table;
                s.spawn(move || {
                    for round in 0..20_000usize {
                        let (token, uri, flow) = &stable[(round * 7 + r) % stable.len()];
                        let got = table.lookup(token.as_bytes(), t0, |e| {
                            (e.original_uri() == uri.as_bytes(), e.flow() == *flow)
                        });
                        assert_eq!(got, Ok((true, true)));
                    }
                })
            })
            .collect();
        for reader in readers {
            reader.join().unwrap(); // re-raises a reader's assertion failure
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(table.len() >= stable.len());
}

/// Inserts short-lived dialog contacts and sweeps them, with virtual time running ahead,
/// until `done`, and for less virtual time than the stable registrations' hour.
fn churn(table: &ContactTable, t0: Instant, done: &AtomicBool) {
    let mut now = t0;
    let mut i = 0u32;
    while !done.load(Ordering::Relaxed) && i < 1_000_000 {
        now += Duration::from_millis(1);
        let uri = format!("sip:churn{}@10.1.0.1", i % 5000);
        let _ = table.insert(uri.as_bytes(), flow(40_000), Lifetime::Dialog, now);
        if i.is_multiple_of(500) {
            table.sweep(now);
        }
        i = i.wrapping_add(1);
    }
}
