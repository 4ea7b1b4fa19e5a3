//! Stream transports (TCP) inside the thread-per-core runtime.
//!
//! Contract:
//! - Each worker owns a `SO_REUSEPORT` listener per TCP listen address and every connection
//!   it accepts or opens, in its own `mio` loop; a connection is only ever touched by its
//!   owner. A [`ConnectionId`](crate::proxy::ConnectionId) names the owner, the slot and the
//!   slot's generation ([`id`]), so the core can carry it in Via and a stale one finds nothing.
//! - Messages are framed by Content-Length ([`crate::sip::next_frame`], the scanner's own
//!   rules): several per read, one across many
//!   reads, CRLF keep-alives answered (RFC 5626 §3.5.1). A message that cannot be framed or
//!   is too large is answered by the core (400 / 513) and the connection is closed.
//! - A message for a connection another worker owns is handed to that worker through its
//!   bounded queue and waker ([`mesh`]); no lock is held around a socket, and a full queue
//!   drops the message (counted).
//! - Limits: connections per worker and in total, idle and header timeouts, a bounded read
//!   buffer (the message limit) and a bounded send queue per connection. Every connection
//!   event is counted through the worker's [`Recorder`](crate::runtime::Recorder) as a
//!   [`StreamEvent`].
//! - Per message: no allocation once a connection's buffers have grown to its traffic, no
//!   lock, one `writev` per connection per batch, and a read per readiness.

mod buffer;
mod connection;
mod id;
mod layered;
mod listener;
mod mesh;
mod secure;
mod streams;
mod table;
mod tls;
mod ws;

pub use crate::record::StreamEvent;
pub(crate) use connection::Phase;
pub(crate) use listener::{connect, open_group};
pub(crate) use mesh::Mesh;
pub(crate) use secure::{Secure, secure};
pub(crate) use streams::{StreamListener, StreamSetup, Streams};
pub(crate) use tls::{TlsIo, TlsSession};
pub(crate) use ws::WsStep;

/// Tokens at and above this (below [`CONNECTION_TOKENS`]) are TCP listeners; below it, the
/// worker's UDP sockets.
pub(crate) const LISTENER_TOKENS: usize = 1 << 20;
/// Tokens at and above this are connections: `CONNECTION_TOKENS + slot`.
pub(crate) const CONNECTION_TOKENS: usize = 1 << 24;
