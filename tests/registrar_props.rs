//! Property tests of the registrar inside the core: REGISTERs and INVITEs with arbitrary
//! Contact lists, expiries, q values, instance ids, Require, Path and digest credentials
//! (well-formed, truncated, mutated) never panic, every reply re-scans with its added header
//! lines, and the table stays within its limits.

mod registrar_support;

use std::time::Instant;

use ferrovia::proxy::{OUTPUT_BUFFER_SIZE, Outcome};
use ferrovia::sip::{Message, Method};
use proptest::prelude::*;
use registrar_support::Core;
use registrar_support::{open_registrar, proxy, registrar, udp};

fn check(proxy: &mut Core, data: &[u8], now: Instant) -> Result<(), TestCaseError> {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let outcome = proxy.handle(udp(data, "10.1.1.1:5060", now), &mut out);
    let (t, reply) = match outcome {
        Outcome::Drop(_) | Outcome::Park(_) => return Ok(()),
        Outcome::Forward(t) => (t, false),
        Outcome::Reply { transmit, .. } => (transmit, true),
    };
    let bytes = &out[..t.len];
    let scanned = Message::scan(bytes, false);
    prop_assert!(
        scanned.is_ok(),
        "output re-scans: {:?}",
        String::from_utf8_lossy(bytes)
    );
    if reply {
        let method = Message::scan(data, false).ok().and_then(|m| m.method());
        prop_assert!(method != Some(Method::Ack), "ACK is never answered");
    }
    Ok(())
}

fn contact() -> impl Strategy<Value = String> {
    let uri = prop_oneof![
        Just("sip:bob@10.1.1.1".to_string()),
        Just("sip:bob@10.1.1.1:5062;transport=tcp".to_string()),
        Just("sips:bob@[2001:db8::1]".to_string()),
        Just("tel:+123".to_string()),
        "[a-z0-9@:;.=]{0,40}".prop_map(|s| format!("sip:{s}")),
    ];
    let param = prop_oneof![
        (0u64..100_000).prop_map(|n| format!(";expires={n}")),
        Just(";expires=99999999999999".to_string()),
        Just(";expires=x".to_string()),
        "(0(\\.[0-9]{0,4})?|1(\\.0{0,3})?|[2-9])".prop_map(|q| format!(";q={q}")),
        Just(";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"".to_string()),
        (0u32..5).prop_map(|n| format!(";reg-id={n}")),
        Just(";reg-id=-1".to_string()),
    ];
    (uri, prop::collection::vec(param, 0..4), any::<bool>()).prop_map(
        |(u, ps, angle)| match angle {
            true => format!("<{u}>{}", ps.concat()),
            false => format!("{u}{}", ps.concat()),
        },
    )
}

fn credentials() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("username=\"bob\"".to_string()),
        Just("username=\"alice\"".to_string()),
        Just("realm=\"edge.example\"".to_string()),
        Just("realm=\"other\"".to_string()),
        "[0-9a-f]{0,60}".prop_map(|n| format!("nonce=\"{n}\"")),
        Just("uri=\"sip:edge.example\"".to_string()),
        "[0-9a-fA-F]{0,70}".prop_map(|r| format!("response=\"{r}\"")),
        prop_oneof![Just("MD5"), Just("SHA-256"), Just("md5-sess"), Just("x")]
            .prop_map(|a| format!("algorithm={a}")),
        Just("qop=auth".to_string()),
        Just("qop=auth-int".to_string()),
        Just("nc=00000001".to_string()),
        "[ -~]{0,12}".prop_map(|c| format!("cnonce=\"{}\"", c.replace(['"', '\\'], ""))),
        "[ -~]{0,20}",
    ];
    (
        prop::collection::vec(field, 0..10),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(fs, proxy, digest)| {
            let name = if proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            let scheme = if digest { "Digest" } else { "Basic" };
            format!("{name}: {scheme} {}\r\n", fs.join(", "))
        })
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    let extra = prop_oneof![
        (0u64..10_000).prop_map(|n| format!("Expires: {n}\r\n")),
        Just("Expires: 0\r\n".to_string()),
        Just("Require: path, outbound\r\n".to_string()),
        Just("Require: foo\r\n".to_string()),
        Just("Path: <sip:edge2.example;lr>\r\n".to_string()),
        Just("Route: <sip:192.0.2.10:5060;lr>\r\n".to_string()),
        Just("Contact: *\r\n".to_string()),
        credentials(),
        prop::collection::vec(contact(), 1..4)
            .prop_map(|cs| format!("Contact: {}\r\n", cs.join(", "))),
    ];
    let start = prop_oneof![
        Just(("REGISTER", "sip:edge.example")),
        Just(("REGISTER", "sip:192.0.2.10:5060")),
        Just(("INVITE", "sip:bob@edge.example")),
        Just(("MESSAGE", "sip:alice@edge.example")),
        Just(("ACK", "sip:bob@edge.example")),
        Just(("OPTIONS", "sip:192.0.2.10:5060")),
    ];
    let user = prop_oneof![Just("bob"), Just("alice"), Just("mallory"), Just("")];
    let to_tag = prop_oneof![Just(""), Just(";tag=t1")];
    (start, user, to_tag, 1u32..5, prop::collection::vec(extra, 0..6)).prop_map(
        |((method, ruri), user, to_tag, cseq, extras)| {
            format!(
                "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKp{cseq}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{user}@edge.example>;tag=f\r\n\
                 To: <sip:{user}@edge.example>{to_tag}\r\nCall-ID: prop\r\nCSeq: {cseq} {method}\r\n\
                 {}Content-Length: 0\r\n\r\n",
                extras.concat()
            )
            .into_bytes()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn registrar_requests_never_panic_and_replies_rescan(messages in prop::collection::vec(request(), 1..6)) {
        let now = Instant::now();
        let registrar = registrar(now);
        let mut proxy = proxy(registrar.clone());
        for m in &messages {
            check(&mut proxy, m, now)?;
        }
        let stats = registrar.stats();
        prop_assert!(stats.bindings <= 10 * stats.aors.max(1));
    }

    /// Without a users file every REGISTER reaches §10.3 and the table, and calls reach the
    /// location service.
    #[test]
    fn open_registrar_requests_never_panic_and_replies_rescan(messages in prop::collection::vec(request(), 1..8)) {
        let now = Instant::now();
        let registrar = open_registrar();
        let mut proxy = proxy(registrar.clone());
        for m in &messages {
            check(&mut proxy, m, now)?;
        }
        let stats = registrar.stats();
        prop_assert!(stats.bindings <= 10 * stats.aors);
        prop_assert_eq!(stats.bindings as usize, registrar.location().entries().iter().map(|(_, b)| b.len()).sum::<usize>());
    }
}
