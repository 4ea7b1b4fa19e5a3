//! Where a message came from and how to reach its sender again: the transport, the packet's
//! source, the listener it arrived on and, on a stream, the connection. The runtime fills it
//! in; the core reads it, carries the connection in its Via, and the contact table keeps it.

use std::net::SocketAddr;

use super::Transport;

/// A stream connection, as the runtime names it (opaque to the core). A request that arrives
/// on a connection carries its id in this proxy's Via, so that the response can go back on
/// the same connection (RFC 3261 §18.2.2) although the proxy keeps no transaction state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u64);

/// Where a message's packets really came from, and how to reach its sender again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    /// The packet's source address: the NAT's public side, not what the message says.
    pub source: SocketAddr,
    /// The proxy's listener it arrived on; a request back must leave from it.
    pub local: SocketAddr,
    /// For TCP, TLS and WebSocket: the connection, if the runtime names connections.
    pub conn: Option<ConnectionId>,
}

impl Flow {
    /// A flow without a connection id (UDP, or a stream the runtime does not number).
    pub fn new(transport: Transport, source: SocketAddr, local: SocketAddr) -> Flow {
        Flow {
            transport,
            source,
            local,
            conn: None,
        }
    }

    /// The same flow, on connection `conn`.
    pub fn on(self, conn: ConnectionId) -> Flow {
        Flow {
            conn: Some(conn),
            ..self
        }
    }
}
