//! The differential property of issue 11: every message ferrovia sends (a forward or a local
//! reply) is accepted by the independent strict reader ([`super::strict`]) with the same
//! header count, body and Content-Length that ferrovia's own scanner sees — one datagram at a
//! time, and as a TCP stream carrying all of them back to back (the pooled-connection case:
//! a reader that frames one message differently would swallow the next one).
//!
//! The input is handled twice: as one UDP datagram, and as the bytes of a TCP connection split
//! by ferrovia's framer (so several messages back to back in the input are several inputs).

#![allow(dead_code)]

use std::time::Instant;

use ferrovia::proxy::{ConnectionId, Listener, OUTPUT_BUFFER_SIZE, Outcome, Tables, Transport};
use ferrovia::sip::{Frame, HeaderName, Message, next_frame, parse_content_length};

use super::Core;

use super::strict;

/// The stream size limit the stream half uses (the proxy's default).
const LIMIT: usize = 64 * 1024;

/// The shared test core ([`super::config`]) with a TCP listener on the same address.
pub fn proxy() -> Core {
    let mut config = super::config();
    config.listeners.push(Listener {
        transport: Transport::Tcp,
        addr: super::PROXY_ADDR.parse().unwrap(),
        advertise: None,
    });
    Core::new(config, Tables::default())
}

/// Checks the property for `data`; `Err` says what disagreed, with the bytes.
pub fn check(proxy: &mut Core, data: &[u8]) -> Result<(), String> {
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    if let Some(len) = handle(proxy, data, Transport::Udp, &mut out) {
        sent.push(out[..len].to_vec());
    }
    let mut rest = data;
    for _ in 0..64 {
        let (take, oversized) = match next_frame(rest, LIMIT) {
            Frame::Message(len) => (len, false),
            Frame::Ping => (4, false),
            Frame::Skip(n) => (n, false),
            Frame::Partial => break,
            Frame::Unframed(len) => (len, false),
            Frame::Oversized(len) => (len, true),
        };
        let frame = &rest[..take];
        let message = matches!(
            next_frame(rest, LIMIT),
            Frame::Message(_) | Frame::Unframed(_)
        );
        if message && let Some(len) = handle(proxy, frame, Transport::Tcp, &mut out) {
            sent.push(out[..len].to_vec());
        }
        if oversized || matches!(next_frame(rest, LIMIT), Frame::Unframed(_)) {
            break; // the connection closes here
        }
        rest = &rest[take..];
    }
    for bytes in &sent {
        agree(bytes).map_err(|e| format!("{e}\n--- sent ---\n{}", show(bytes)))?;
    }
    stream(&sent)
}

/// Handles one input; the length of what the proxy sends, if anything.
fn handle(proxy: &mut Core, data: &[u8], transport: Transport, out: &mut [u8]) -> Option<usize> {
    let conn = transport.is_stream().then_some(ConnectionId(9));
    let input = super::input_on(data, "10.0.0.1:5060", transport, conn, Instant::now());
    match proxy.handle(input, out) {
        Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => Some(t.len),
        Outcome::Drop(_) | Outcome::Park(_) => None,
    }
}

/// One message as both readers see it.
pub fn agree(bytes: &[u8]) -> Result<(), String> {
    let strict = strict::read(bytes, false).map_err(|e| format!("strict reader: {e}"))?;
    for stream in [false, true] {
        let msg = Message::scan(bytes, stream)
            .map_err(|f| format!("ferrovia rescans with {:?}", f.error))?;
        if msg.headers().len() != strict.headers {
            return Err(format!(
                "headers: ferrovia {}, strict {}",
                msg.headers().len(),
                strict.headers
            ));
        }
        if msg.bytes(msg.body()) != strict.body {
            return Err("bodies differ".into());
        }
        let length = msg
            .header(HeaderName::ContentLength)
            .and_then(|h| parse_content_length(msg.bytes(h.value)).ok());
        if length != Some(strict.content_length as u32) {
            return Err(format!(
                "Content-Length: ferrovia {length:?}, strict {}",
                strict.content_length
            ));
        }
        if !msg.is_canonical() {
            return Err("ferrovia does not call its own output canonical".into());
        }
    }
    Ok(())
}

/// Everything sent, back to back on one connection: both readers split it into the same
/// messages.
fn stream(sent: &[Vec<u8>]) -> Result<(), String> {
    let wire: Vec<u8> = sent.concat();
    let strict = strict::read_stream(&wire).map_err(|e| format!("strict stream: {e}"))?;
    let strict: Vec<usize> = strict.iter().map(|m| m.len).collect();
    let mut framed = Vec::new();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        match next_frame(rest, LIMIT) {
            Frame::Message(len) => {
                framed.push(len);
                rest = &rest[len..];
            }
            other => {
                return Err(format!(
                    "ferrovia's framer: {other:?} at {}",
                    wire.len() - rest.len()
                ));
            }
        }
    }
    let want: Vec<usize> = sent.iter().map(Vec::len).collect();
    if strict != want || framed != want {
        return Err(format!(
            "stream split: sent {want:?}, strict {strict:?}, ferrovia {framed:?}"
        ));
    }
    Ok(())
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}
