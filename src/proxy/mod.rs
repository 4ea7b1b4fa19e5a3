//! The stateless proxy's decisions and rewriting (RFC 3261 §16, §16.11, §18; RFC 3581).
//!
//! Sans-IO: [`Proxy::handle`] takes one received message (bytes, addresses, transport, `now`)
//! and a buffer the caller owns, and returns an [`Outcome`]. No sockets, threads or clocks.

#![forbid(unsafe_code)]

pub mod config;
pub mod outcome;

use std::net::SocketAddr;
use std::time::Instant;

pub use config::{ConfigError, Host, HostPort, Listener, NextHop, ProxyConfig};
pub use outcome::{Direction, DropReason, Outcome, Transmit, Transport};

/// Output buffers must hold the largest message the proxy can emit: a 64 KiB datagram
/// plus what the proxy adds (Via, Record-Route, Max-Forwards, received/rport).
pub const OUTPUT_BUFFER_SIZE: usize = 65_535 + 1024;

/// One received message, as the runtime hands it to the core.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The message bytes: one datagram, or one framed message from a stream.
    pub data: &'a [u8],
    /// Who sent it (the packet's source address).
    pub source: SocketAddr,
    /// The listener it arrived on (its configured address).
    pub local: SocketAddr,
    /// The transport it arrived over.
    pub transport: Transport,
    /// The time it arrived; the core reads no clock.
    pub now: Instant,
}

/// The stateless proxy core. Cheap to share: `handle` takes `&self`.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
}

impl Proxy {
    /// Validates the configuration once and prepares what the hot path writes.
    pub fn new(config: ProxyConfig) -> Result<Proxy, ConfigError> {
        if config.listeners.is_empty() {
            return Err(ConfigError("at least one listener is needed".into()));
        }
        Ok(Proxy { config })
    }

    /// The configuration this proxy was built from.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Decides what to do with one message, writing any bytes to send into `out`
    /// (which should be at least [`OUTPUT_BUFFER_SIZE`] long).
    pub fn handle(&self, input: Input<'_>, out: &mut [u8]) -> Outcome {
        let _ = (input, out);
        Outcome::Drop(DropReason::NotSip) // placeholder while the core is written
    }
}
