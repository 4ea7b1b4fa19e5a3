//! WebSocket for SIP (RFC 6455, RFC 7118), sans-IO: the server side of the HTTP/1.1 upgrade
//! ([`handshake`]) and the frame layer ([`frame`]). Both work on bytes the caller owns —
//! headers are parsed in place, client payloads unmasked in place, our frame headers written
//! into a caller's array — so an established WebSocket connection costs no allocation per
//! message. The runtime (`runtime::stream`) moves the bytes and keeps the per-connection state.
//!
//! Why hand-written and not `tungstenite`: tungstenite owns the socket (or a `Read + Write`
//! stream) and hands out an owned `Message` per frame (a `Vec` or `Bytes` each), which breaks
//! the per-message allocation budget and the worker's own buffering, limits and hand-off. The
//! frame format is small (RFC 6455 §5.2) and fully tested here; tungstenite is still used as an
//! independent client in the tests.

#![forbid(unsafe_code)]

pub mod frame;
pub mod handshake;

pub use frame::{CloseCode, Frame, Opcode, ParsedFrame, encode_header, parse_frame, unmask};
pub use handshake::{Refusal, Upgrade, accept_key, accepted, parse_upgrade};
