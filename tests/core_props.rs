//! Property tests of scan + decide + rewrite: arbitrary bytes, mutated real messages, and
//! generated messages with awkward but legal shapes. Whatever the input: no panic; every
//! output re-scans; a forward keeps the body byte for byte and changes the Via count by
//! exactly one; the same input always gives the same bytes (retransmissions). Every case runs
//! with contact rewriting off and on (the rewrite reads Contacts off the network too).

mod common;

use std::time::Instant;

use ferrovia::proxy::{Direction, OUTPUT_BUFFER_SIZE, Outcome};
use ferrovia::sip::{HeaderName, Message, Values};
use proptest::prelude::*;

fn via_count(msg: &Message<'_>) -> usize {
    msg.headers_named(HeaderName::Via)
        .map(|h| Values::new(msg.buf(), h.value).count())
        .sum()
}

/// Runs one message through the core, without and with contact rewriting, and checks every
/// invariant.
fn check(data: &[u8], source: &str) -> Result<(), TestCaseError> {
    check_in(&mut common::core(), data, source)?;
    check_in(&mut common::core_with_contacts(), data, source)
}

fn check_in(core: &mut common::Core, data: &[u8], source: &str) -> Result<(), TestCaseError> {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let now = Instant::now();
    let outcome = core.handle(common::input(data, source, now), &mut out);
    let mut again = vec![0u8; OUTPUT_BUFFER_SIZE];
    let second = core.handle(common::input(data, source, now), &mut again);
    prop_assert_eq!(outcome, second, "deterministic outcome");
    let (transmit, is_reply) = match outcome {
        Outcome::Drop(_) | Outcome::Park(_) => return Ok(()),
        Outcome::Forward(t) => (t, false),
        Outcome::Reply { transmit, status } => {
            prop_assert!(status >= 200, "never a provisional reply");
            (transmit, true)
        }
    };
    let bytes = &out[..transmit.len];
    prop_assert_eq!(
        bytes,
        &again[..transmit.len],
        "retransmissions rewrite identically"
    );
    let output = Message::scan(bytes, false);
    prop_assert!(
        output.is_ok(),
        "output re-scans: {:?}",
        String::from_utf8_lossy(bytes)
    );
    let output = output.unwrap();
    if is_reply {
        let input = Message::scan(data, false).ok();
        prop_assert!(
            input.as_ref().is_none_or(|m| m.is_request()),
            "responses are never answered"
        );
        prop_assert!(
            input.and_then(|m| m.method()) != Some(ferrovia::sip::Method::Ack),
            "ACK is never answered"
        );
        return Ok(());
    }
    let input = Message::scan(data, false);
    prop_assert!(input.is_ok(), "only well-framed messages are forwarded");
    let input = input.unwrap();
    prop_assert_eq!(
        input.bytes(input.body()),
        output.bytes(output.body()),
        "body unchanged"
    );
    let (vin, vout) = (via_count(&input), via_count(&output));
    match transmit.direction {
        Direction::Request => prop_assert_eq!(vout, vin + 1, "a request gains our Via"),
        Direction::Response => prop_assert_eq!(vout + 1, vin, "a response loses our Via"),
    }
    Ok(())
}

/// Bytes that matter to SIP syntax, to make mutations interesting.
fn sip_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(b','),
        Just(b';'),
        Just(b':'),
        Just(b'<'),
        Just(b'>'),
        Just(b'"'),
        Just(b'\r'),
        Just(b'\n'),
        Just(b' '),
        Just(b'\t'),
        Just(b'='),
        Just(b'@'),
        Just(b'['),
        Just(b']'),
        Just(b'\\'),
        Just(b'0'),
        any::<u8>(),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    DuplicateLine(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), sip_byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), sip_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1..40usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if data.is_empty() {
            break;
        }
        let len = data.len();
        match *m {
            Mutation::Set(i, b) => data[i % len] = b,
            Mutation::Insert(i, b) => data.insert(i % (len + 1), b),
            Mutation::Delete(i, n) => {
                let at = i % len;
                data.drain(at..(at + n).min(len));
            }
            Mutation::DuplicateLine(i) => {
                let at = i % len;
                let start = data[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = data[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |p| at + p + 1);
                let line = data[start..end].to_vec();
                data.splice(end..end, line);
            }
            Mutation::Truncate(i) => data.truncate(i % len),
        }
    }
    data
}

/// Header lines with the shapes the proxy has to get right.
fn header_line() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("10.0.0.7".to_owned()),
        Just("192.0.2.10".to_owned()),
        Just("192.0.2.10:5060".to_owned()),
        Just("[2001:db8::7]:5070".to_owned()),
        Just("core.example.net".to_owned()),
        Just("127.0.0.1:5060".to_owned()),
    ];
    let via_params = prop::collection::vec(
        prop_oneof![
            Just(";rport"),
            Just(";rport=1234"),
            Just(";received=10.9.9.9"),
            Just(";maddr=10.0.0.8"),
            Just(";branch=z9hG4bKabc"),
            Just(";branch=z9hG4bKfv0123456789abcdef"),
            Just(";branch=old"),
            Just(";ttl=1"),
        ],
        0..4,
    );
    let route = (host.clone(), any::<bool>())
        .prop_map(|(h, lr)| format!("<sip:{h}{}>", if lr { ";lr" } else { "" }));
    prop_oneof![
        (host.clone(), via_params, prop::bool::ANY).prop_map(|(h, p, compact)| {
            let name = if compact { "v" } else { "Via" };
            format!("{name}: SIP/2.0/UDP {h}{}", p.concat())
        }),
        prop::collection::vec(route, 1..4).prop_map(|r| format!("Route: {}", r.join(", "))),
        Just("Record-Route: <sip:10.0.0.5;lr>".to_owned()),
        (0u32..4).prop_map(|n| format!("Max-Forwards: {n}")),
        Just("Max-Forwards: 70".to_owned()),
        Just("To: \"Bob, Jr.\" <sip:bob@b.example>".to_owned()),
        Just("t: <sip:bob@b.example>;tag=x1".to_owned()),
        Just("From: <sip:al@a.example>;tag=f1".to_owned()),
        Just("Call-ID: c1@a".to_owned()),
        Just("CSeq: 7 INVITE".to_owned()),
        Just("CSeq: 7 ACK".to_owned()),
        Just("Proxy-Require: foo".to_owned()),
        Just("Contact: <sip:al@10.0.0.1>;expires=60".to_owned()),
        Just("Subject: folded,\r\n continued".to_owned()),
        Just("Content-Length: 4".to_owned()),
    ]
}

/// A start line, with the method for CSeq (`None` for a response).
fn start_line() -> impl Strategy<Value = (&'static str, Option<&'static str>)> {
    prop_oneof![
        Just(("INVITE sip:bob@10.0.0.7 SIP/2.0", Some("INVITE"))),
        Just(("INVITE sip:bob@[2001:db8::7] SIP/2.0", Some("INVITE"))),
        Just(("ACK sip:bob@10.0.0.7:5070 SIP/2.0", Some("ACK"))),
        Just(("BYE sip:bob@core.example.net SIP/2.0", Some("BYE"))),
        Just(("OPTIONS sip:192.0.2.10 SIP/2.0", Some("OPTIONS"))),
        Just(("REGISTER sip:192.0.2.10:5060 SIP/2.0", Some("REGISTER"))),
        Just(("BYE sip:192.0.2.10:5060;lr SIP/2.0", Some("BYE"))),
        Just(("INVITE tel:+15551234 SIP/2.0", Some("INVITE"))),
        Just(("SIP/2.0 200 OK", None)),
        Just(("SIP/2.0 180 Ringing", None)),
    ]
}

/// Mostly well-formed messages: the transaction headers are there (a request's top Via is
/// a client's, a response's is usually ours), then extra lines from `header_line`.
fn generated() -> impl Strategy<Value = Vec<u8>> {
    let body = prop_oneof![Just(""), Just("v=0\r\n"), Just("body")];
    (
        start_line(),
        prop::collection::vec(header_line(), 0..8),
        body,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|((start, method), extra, body, bare_lf, ours)| {
            let eol = if bare_lf { "\n" } else { "\r\n" };
            let mut lines = vec![start.to_owned()];
            if method.is_none() && ours {
                lines.push(
                    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef".into(),
                );
            }
            lines.push("Via: SIP/2.0/UDP 10.0.0.1:5062;rport;branch=z9hG4bK1a".into());
            lines.extend(extra);
            lines.push("To: <sip:bob@b.example>".into());
            lines.push("From: <sip:al@a.example>;tag=f1".into());
            lines.push("Call-ID: c1@a".into());
            lines.push(format!("CSeq: 7 {}", method.unwrap_or("INVITE")));
            let mut text = lines.join(eol);
            text.push_str(eol);
            text.push_str(eol);
            text.push_str(body);
            text.into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..1500)) {
        check(&data, "10.0.0.1:5060")?;
    }

    #[test]
    fn mutated_real_messages(
        which in 0..common::VECTORS.len(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let (_, bytes, source) = common::VECTORS[which];
        let data = mutate(bytes.to_vec(), &mutations);
        check(&data, source)?;
    }

    #[test]
    fn generated_messages(data in generated()) {
        check(&data, "10.0.0.1:5060")?;
    }
}

#[test]
fn the_vectors_themselves_pass() {
    for (name, bytes, source) in common::VECTORS {
        check(bytes, source).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
