//! The differential property of issue 11 as a proptest (the fuzz target
//! `fuzz/fuzz_targets/differential.rs` runs the same check): every message ferrovia sends is
//! read by an independent strict reader exactly as ferrovia's scanner reads it, alone and as
//! one of several on a TCP stream. Inputs: real messages, the same with their line ends, folds,
//! Content-Length and start line mangled, several of them back to back, and arbitrary bytes.

mod common;

use common::differential::{check, proxy};
use proptest::prelude::*;

/// Realistic messages and the issue's own attack shapes.
fn seeds() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = common::VECTORS.iter().map(|(_, b, _)| b.to_vec()).collect();
    all.push(
        b"INVITE sip:bob@10.0.0.7 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKs1\r\n\
Max-Forwards: 70\r\nTo: <sip:bob@b>\r\nFrom: <sip:a@a>;tag=1\r\nCall-ID: s1\r\nCSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\n\nContent-Length: 4\r\n\r\nv=0\n"
            .to_vec(),
    );
    all
}

/// One mutation that keeps a message recognisable: line ends, folding, spacing, duplicates.
#[derive(Clone, Debug)]
enum Mutation {
    /// The n-th CRLF becomes a bare LF.
    BareLf(usize),
    /// The n-th CRLF becomes `\n\r\n` or `\r\n\n`.
    DoubleEnd(usize, bool),
    /// A CR, SP or HT inserted before the n-th CRLF.
    Before(usize, u8),
    /// The n-th CRLF gets a fold (`CRLF SP`).
    Fold(usize),
    /// A header line inserted after the n-th CRLF.
    Line(usize, &'static str),
    /// A byte replaced.
    Byte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = prop::sample::select(vec![
        "Content-Length: 0\r\n",
        "l: 3\r\n",
        "Content-Length : 2\r\n",
        "Content-Length:\r\n 1\r\n",
        "Max-Forwards: 9\r\n",
        "CSeq: 1 INVITE\r\n",
        "X-A: b\r\n",
        "Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKm\r\n",
    ]);
    prop_oneof![
        (0usize..40).prop_map(Mutation::BareLf),
        ((0usize..40), any::<bool>()).prop_map(|(n, b)| Mutation::DoubleEnd(n, b)),
        ((0usize..40), prop::sample::select(vec![b'\r', b' ', b'\t']))
            .prop_map(|(n, b)| Mutation::Before(n, b)),
        (0usize..40).prop_map(Mutation::Fold),
        ((0usize..40), line).prop_map(|(n, l)| Mutation::Line(n, l)),
        ((0usize..2000), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
    ]
}

fn crlf_at(bytes: &[u8], n: usize) -> Option<usize> {
    let ends: Vec<usize> = bytes
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\r\n")
        .map(|(i, _)| i)
        .collect();
    (!ends.is_empty()).then(|| ends[n % ends.len()])
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::BareLf(n) => {
            if let Some(i) = crlf_at(bytes, n) {
                bytes.remove(i);
            }
        }
        Mutation::DoubleEnd(n, first) => {
            if let Some(i) = crlf_at(bytes, n) {
                // Before the CRLF: `\n\r\n`; after it: `\r\n\n`.
                bytes.insert(if first { i } else { i + 2 }, b'\n');
            }
        }
        Mutation::Before(n, b) => {
            if let Some(i) = crlf_at(bytes, n) {
                bytes.insert(i, b);
            }
        }
        Mutation::Fold(n) => {
            if let Some(i) = crlf_at(bytes, n) {
                bytes.insert(i + 2, b' ');
            }
        }
        Mutation::Line(n, line) => {
            if let Some(i) = crlf_at(bytes, n) {
                bytes.splice(i + 2..i + 2, line.bytes());
            }
        }
        Mutation::Byte(i, b) => {
            if !bytes.is_empty() {
                let i = i % bytes.len();
                bytes[i] = b;
            }
        }
    }
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    (prop::collection::vec(
        (0..seeds.len(), prop::collection::vec(mutation(), 0..4)),
        1..4,
    ),)
        .prop_map(move |(parts,)| {
            let mut wire = Vec::new();
            for (seed, mutations) in parts {
                let mut m = seeds[seed].clone();
                for mu in &mutations {
                    apply(&mut m, mu);
                }
                wire.extend_from_slice(&m);
            }
            wire
        })
}

#[test]
fn real_messages_agree() {
    let mut proxy = proxy();
    for seed in seeds() {
        check(&mut proxy, &seed).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_messages_agree(data in mutated()) {
        let mut proxy = proxy();
        if let Err(e) = check(&mut proxy, &data) {
            prop_assert!(false, "{}\n--- input ---\n{}", e, String::from_utf8_lossy(&data).escape_debug());
        }
    }

    #[test]
    fn arbitrary_bytes_agree(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut proxy = proxy();
        if let Err(e) = check(&mut proxy, &data) {
            prop_assert!(false, "{}", e);
        }
    }
}
