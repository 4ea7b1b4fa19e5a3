//! One TCP connection as a worker holds it: the socket, who is at the other end, which
//! listener the core knows it by, where it is in its life, and its two bounded buffers.

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use super::buffer::{ReadBuffer, SendQueue};
use super::tls::TlsSession;
use super::ws::WsSession;
use crate::sip::Transport;

/// The first size of a connection's read buffer; it doubles up to the message limit when
/// one message needs it.
const READ_BUFFER_START: usize = 8 * 1024;

/// Who opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A client connected to one of our listeners (it is in the shared directory).
    Accepted,
    /// This worker opened it toward a next hop (it is in this worker's pool).
    Opened,
}

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// An outbound connect in progress since then; what is sent waits in the send queue.
    Connecting(Instant),
    /// Reading and writing.
    Open,
    /// Since then, no more reading: the send queue is written out, then the connection is
    /// closed (at the latest when the linger time has passed). Why it is closing was
    /// counted when it started.
    Closing(Instant),
}

/// What runs over a connection's bytes besides TCP: the transport the core knows it by, a TLS
/// session (TLS, WSS), a WebSocket session (WS, WSS), and the deadline of their handshakes.
pub(crate) struct Layers {
    pub(crate) transport: Transport,
    pub(crate) tls: Option<Box<TlsSession>>,
    pub(crate) ws: Option<Box<WsSession>>,
    pub(crate) handshake_until: Option<Instant>,
    /// A TLS connection this worker opened: the hash of the name its peer's certificate was
    /// verified against (`None`: the address); reused only for that name (RFC 5922 §7.2).
    pub(crate) name: Option<u64>,
}

impl Layers {
    /// Plain TCP.
    pub(crate) fn tcp() -> Layers {
        Layers {
            transport: Transport::Tcp,
            tls: None,
            ws: None,
            handshake_until: None,
            name: None,
        }
    }
}

pub(crate) struct Connection {
    pub(crate) socket: TcpStream,
    /// TCP, TLS, WS or WSS, with the sessions that carry it (see [`super::layered`]).
    pub(crate) layers: Layers,
    pub(crate) peer: SocketAddr,
    /// The listener the core knows this connection by (the arrival of what is read on it).
    pub(crate) local: SocketAddr,
    pub(crate) origin: Origin,
    pub(crate) phase: Phase,
    pub(crate) rx: ReadBuffer,
    pub(crate) tx: SendQueue,
    /// The last time bytes were read (or the socket became writable again).
    pub(crate) last_active: Instant,
    /// When the message being read started to arrive (`None` between messages).
    pub(crate) partial_since: Option<Instant>,
    /// The peer has finished sending (end of stream read).
    pub(crate) peer_done: bool,
    /// Our side has finished sending (FIN sent while closing).
    pub(crate) fin_sent: bool,
    /// The kernel reported the peer's FIN (or an error): read to the end, not just until a
    /// short read.
    pub(crate) read_closed: bool,
    /// Half-closed: the peer finished sending between messages and may still read. Kept
    /// open for the responses to what it sent (RFC 3261 §18.2.2: on the same connection),
    /// its close already counted and its place under the connection limit given back.
    pub(crate) half_closed: bool,
    /// Requests read (ACK aside) minus final responses written: what a half-closed client
    /// may still be waiting for. A stateless count (retransmissions and requests that get no
    /// answer skew it), so a half-closed connection also ends after a bounded linger.
    pub(crate) awaiting: u32,
    /// Readiness reported and not yet acted on (the slot is in the worker's list).
    pub(crate) read_ready: bool,
    pub(crate) write_ready: bool,
}

impl Connection {
    pub(crate) fn new(
        socket: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        origin: Origin,
        (layers, limits): (Layers, (usize, usize)),
        now: Instant,
    ) -> Connection {
        let (max_message, send_queue) = limits;
        // A WebSocket buffer holds a whole message and the header of the frame behind it.
        let max_read = max_message + layers.ws.as_ref().map_or(0, |_| super::ws::MAX_HEADER);
        let phase = match origin {
            Origin::Accepted => Phase::Open,
            Origin::Opened => Phase::Connecting(now),
        };
        Connection {
            socket,
            layers,
            peer,
            local,
            origin,
            phase,
            rx: ReadBuffer::new(READ_BUFFER_START, max_read),
            tx: SendQueue::new(send_queue),
            last_active: now,
            partial_since: None,
            peer_done: false,
            fin_sent: false,
            read_closed: false,
            half_closed: false,
            awaiting: 0,
            read_ready: false,
            write_ready: false,
        }
    }

    /// Whether what is in the read buffer is the start of a message, not just line ends
    /// (a lone CRLF keep-alive must not count against the header timeout).
    pub(crate) fn reading_a_message(&self) -> bool {
        self.rx.data().iter().any(|&b| b != b'\r' && b != b'\n')
    }

    /// After framing: restarts the header clock when a message completed, starts it when a
    /// new one began, clears it when nothing is left.
    pub(crate) fn note_progress(&mut self, completed: bool, now: Instant) {
        self.partial_since = match (self.reading_a_message(), completed) {
            (false, _) => None,
            (true, true) => Some(now),
            (true, false) => self.partial_since.or(Some(now)),
        };
    }

    /// Stops reading messages; it closes once the send queue is written (and, unless the
    /// peer already finished, after a FIN and a short linger that discards its input, so the
    /// kernel does not reset the connection before the peer reads our last reply). Returns
    /// false when it was closing already.
    pub(crate) fn start_closing(&mut self, now: Instant) -> bool {
        let first = self.usable();
        if first {
            self.phase = Phase::Closing(now);
        }
        first
    }

    /// A message of `bytes` was read: a request other than ACK awaits a final response.
    pub(crate) fn note_read(&mut self, bytes: &[u8]) {
        if awaits_answer(bytes) {
            self.awaiting = self.awaiting.saturating_add(1);
        }
    }

    /// A message of `bytes` is being sent on it: a final response (RFC 3261 §7.2, 2xx–6xx)
    /// answers one request.
    pub(crate) fn note_sent(&mut self, bytes: &[u8]) {
        if is_final_response(bytes) {
            self.awaiting = self.awaiting.saturating_sub(1);
        }
    }

    /// Whether a message may be queued on it (not once it is closing).
    pub(crate) fn usable(&self) -> bool {
        !matches!(self.phase, Phase::Closing(..))
    }
}

/// A request that earns a response: anything but a response or an ACK (RFC 3261 §17.1.1.3).
fn awaits_answer(message: &[u8]) -> bool {
    let response = message
        .get(..4)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"SIP/"));
    !response && !message.starts_with(b"ACK ")
}

/// A final response: status 200–699 (RFC 3261 §7.2; 1xx are provisional).
fn is_final_response(message: &[u8]) -> bool {
    let response = message
        .get(..8)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"SIP/2.0 "));
    response && message.get(8).is_some_and(|&c| (b'2'..=b'6').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_half_closed_client_still_waits_for() {
        for (message, awaits, is_final) in [
            (&b"INVITE sip:a SIP/2.0\r\n"[..], true, false),
            (b"BYE sip:a SIP/2.0\r\n", true, false),
            (b"ACK sip:a SIP/2.0\r\n", false, false),
            (b"SIP/2.0 180 Ringing\r\n", false, false),
            (b"SIP/2.0 200 OK\r\n", false, true),
            (b"sip/2.0 486 Busy\r\n", false, true),
            (b"SIP/2.0 100 Trying\r\n", false, false),
        ] {
            assert_eq!(awaits_answer(message), awaits, "{message:?}");
            assert_eq!(is_final_response(message), is_final, "{message:?}");
        }
    }
}
