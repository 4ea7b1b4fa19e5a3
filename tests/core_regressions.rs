//! Every input that ever crashed the core or made it emit a broken message, by name. Each one
//! runs through scan + decide + rewrite over UDP and over a stream, with contact rewriting off
//! and on: no panic, and any output re-scans as a valid message.

mod common;

use std::time::Instant;

use ferrovia::proxy::{ConnectionId, Input, OUTPUT_BUFFER_SIZE, Outcome, Transport};
use ferrovia::sip::Flow;
use ferrovia::sip::Message;

fn survives(data: &[u8]) {
    for mut core in [common::core(), common::core_with_contacts()] {
        survives_in(&mut core, data);
    }
}

fn survives_in(core: &mut common::Core, data: &[u8]) {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    for (transport, connection) in [
        (Transport::Udp, None),
        (Transport::Tcp, Some(ConnectionId(9))),
    ] {
        let input = Input {
            data,
            flow: Flow {
                transport,
                source: "10.0.0.1:5060".parse().unwrap(),
                local: common::PROXY_ADDR.parse().unwrap(),
                conn: connection,
            },
            now: Instant::now(),
        };
        if let Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } =
            core.handle(input, &mut out)
        {
            let bytes = &out[..t.len];
            assert!(
                Message::scan(bytes, false).is_ok(),
                "{transport:?} output does not re-scan:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let _ = core.handle_oversized(input, &mut out);
    }
}

/// cargo fuzz, 2026-11-21: a Route URI with a raw CR inside `<...>` was accepted, then copied
/// into the Request-URI by the strict-routing rewrite (RFC 3261 §16.6 step 6), breaking the
/// start line. URIs now reject white space and control bytes.
#[test]
fn cr_inside_a_strict_route_uri() {
    survives(b"BYE sip:b SIP/2.0\nVia: SIP/2.0/U 1.0.0.3\nF:\nCall-ID:\nCSeq:2 BYE\nT:\x01\nRoute:<sip:2.0.2.5\r>\n\n");
}

/// cargo fuzz, 2026-11-21: a request with well over a hundred short Via and To lines was
/// answered 400 with every one of them copied, a reply longer than the 128-line limit. A reply
/// now copies only the first To / From / Call-ID / CSeq, and a request whose Vias alone would
/// overflow the reply is dropped as `too_many_headers`.
#[test]
fn a_reply_that_would_pass_the_header_limit() {
    survives(b"E s SIP/2.0\nVia: SIP/2.0/UP t\r\nV:\nV:0\nT:\nT:\r\nV:\nV:\nTo:\r\nV:\nTo:\nV:\xff0\nT:\r\nV:\nV:\nT:\r\nT:\r\nV:\nT:\nV:\xff\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nT:\nT:\nTo:\nV:\nT:\r\nT:\r\nV:\nT:\nV:\xff0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nT:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nT:\nT::\nTo:\r\nV:\nT:\r\nT:\r\nV:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\nV:\nT:\nTo:\r\nV:\nTo:\r\nT:\nV:\nT:\nV:\nT:\nT:\r\nV:\nT:\nV:\xff0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nV:\nTo:\r\nTo:\r\nV:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\r\nV:\nT:\nT:\nT:\nTo:\r\nV:\nT:\r\nT:\r\nV:\nT:\nV:0\nT:\nT:\r\nV:\nTo:\r\nV:\nTo:\r\nTo:\nV:\nT:\n");
}
