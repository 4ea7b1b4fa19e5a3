//! A connection's life on its worker: accepted or opened (within the limits), established,
//! closing gracefully after a last reply, and closed by the peer, an error or a timeout.
//! Every change is counted once, when the connection closes or opens.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use log::{debug, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::super::connection::{Connection, Layers, Origin, Phase};
use super::super::listener;
use super::layering::accepted_event;
use super::{ACCEPTS_PER_TURN, CONNECTION_TOKENS, HALF_CLOSED_LINGER, LINGER, Streams};
use crate::proxy::{PeerName, Transport};
use crate::record::Recorder;
use crate::record::StreamEvent;

impl Streams {
    /// Accepts new clients on the listeners that reported readiness.
    pub(crate) fn accept(&mut self, recorder: &mut impl Recorder) {
        for i in 0..self.listeners.len() {
            if self.accept_backlog[i] {
                self.accept_backlog[i] = !self.accept_from(i, recorder);
            }
        }
    }

    /// Takes connections from listener `i` until it would block (`true`) or the turn ends.
    fn accept_from(&mut self, i: usize, recorder: &mut impl Recorder) -> bool {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listeners[i].listener.accept() {
                Ok((socket, peer)) => self.adopt(socket, peer, i, recorder),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or memory: the connection waits in the kernel's
                    // backlog and is tried again when the next one arrives.
                    warn!("worker {}: accept failed: {e}", self.worker);
                    return true;
                }
            }
        }
        false
    }

    fn adopt(&mut self, socket: TcpStream, peer: SocketAddr, i: usize, rec: &mut impl Recorder) {
        let (local, transport) = (self.listeners[i].local, self.listeners[i].transport);
        let _ = socket.set_nodelay(true);
        let Some(layers) = self.accepted_layers(transport) else {
            rec.stream_event(StreamEvent::Refused);
            return;
        };
        match self.insert(socket, peer, local, Origin::Accepted, layers) {
            Ok(slot) => {
                let id = self.table.reference(slot).id();
                self.mesh.add_client(peer, id);
                rec.stream_event(StreamEvent::Accepted);
                if let Some(event) = accepted_event(transport) {
                    rec.stream_event(event);
                }
                rec.open_connections(self.table.open());
            }
            Err(socket) => {
                rec.stream_event(StreamEvent::Refused);
                drop(socket); // closed only now, so the count is there when the client sees it
            }
        }
    }

    /// Opens a connection toward `destination` from listener `local` (over TLS, verified
    /// against `name`, else the address); `None` when a limit or the system refuses (counted).
    pub(super) fn open(
        &mut self,
        destination: SocketAddr,
        (local, transport): (SocketAddr, Transport),
        name: Option<&PeerName>,
        recorder: &mut impl Recorder,
    ) -> Option<u32> {
        let Some(layers) = self.opened_layers(transport, destination, name) else {
            recorder.stream_event(StreamEvent::ConnectFailed);
            return None;
        };
        let socket = match listener::connect(destination, local) {
            Ok(socket) => socket,
            Err(e) => {
                debug!("worker {}: connect to {destination}: {e}", self.worker);
                recorder.stream_event(StreamEvent::ConnectFailed);
                self.note_failed_connect(destination);
                return None;
            }
        };
        match self.insert(socket, destination, local, Origin::Opened, layers) {
            Ok(slot) => {
                if transport == Transport::Tls {
                    recorder.stream_event(StreamEvent::TlsOpened);
                }
                recorder.open_connections(self.table.open());
                Some(slot)
            }
            Err(_) => {
                recorder.stream_event(StreamEvent::OpenRefused);
                None
            }
        }
    }

    /// Registers and stores a connection within the per-worker and process-wide limits;
    /// gives the socket back when it cannot.
    fn insert(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        origin: Origin,
        layers: Layers,
    ) -> Result<u32, TcpStream> {
        let Some(at) = self.table.vacant() else {
            return Err(socket);
        };
        if !self.mesh.reserve() {
            return Err(socket);
        }
        let token = Token(CONNECTION_TOKENS + at.slot as usize);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.registry.register(&mut socket, token, interest) {
            warn!("worker {}: cannot watch a connection: {e}", self.worker);
            self.mesh.release();
            return Err(socket);
        }
        let limits = (self.options.max_message, self.options.send_queue);
        let now = Instant::now();
        let connection = Connection::new(socket, peer, local, origin, (layers, limits), now);
        self.table.fill(at, connection);
        Ok(at.slot)
    }

    /// Closes the connection in `slot` now, counting any message it still held, and `event`
    /// unless it was closing already (then why was counted when it started).
    pub(crate) fn close(&mut self, slot: u32, event: StreamEvent, recorder: &mut impl Recorder) {
        let Some((at, mut conn)) = self.table.remove(slot) else {
            return;
        };
        let _ = self.registry.deregister(&mut conn.socket);
        if conn.origin == Origin::Accepted {
            self.mesh.remove_client(conn.peer, at.id());
        }
        // A half-closed connection was counted, and released, when the peer finished.
        if !conn.half_closed {
            self.mesh.release();
        }
        // Counted once the connection no longer counts against any limit, and before the
        // peer can see it closed (the socket is dropped on return).
        if conn.usable() && !conn.half_closed {
            recorder.stream_event(conn.failure(event));
        }
        if event == StreamEvent::ConnectFailed && conn.origin == Origin::Opened {
            self.note_failed_connect(conn.peer);
        }
        debug!(
            "worker {}: {:?} connection with {} closed: {event}",
            self.worker, conn.origin, conn.peer
        );
        (0..conn.tx.messages()).for_each(|_| recorder.send_error());
        recorder.open_connections(self.table.open());
    }

    /// Stops reading `slot`, counting why; it closes once what it has to send is written.
    pub(crate) fn close_after_sending(
        &mut self,
        slot: u32,
        event: StreamEvent,
        now: Instant,
        recorder: &mut impl Recorder,
    ) {
        if let Some(conn) = self.table.get_mut(slot)
            && conn.start_closing(now)
        {
            recorder.stream_event(event);
            self.closing.push(slot);
        }
    }

    /// The peer finished sending on `slot`: a message it left unfinished is discarded. A
    /// client that finished between messages with requests still unanswered may be reading:
    /// its connection stays open for those responses (RFC 3261 §18.2.2), until they are
    /// written or for at most [`HALF_CLOSED_LINGER`], counted as closed by the peer now. One
    /// with nothing outstanding is closed at once (clients that wait for our FIN, as sipp
    /// does with a connection per call, must not be kept waiting).
    pub(crate) fn end_of_stream(&mut self, slot: u32, now: Instant, recorder: &mut impl Recorder) {
        let Some(conn) = self.table.get_mut(slot) else {
            return;
        };
        if conn.half_closed {
            return; // an end of stream seen again
        }
        conn.peer_done = true;
        let answered = conn.awaiting == 0;
        if conn.origin == Origin::Accepted
            && conn.usable()
            && !conn.reading_a_message()
            && !answered
        {
            conn.half_closed = true;
            conn.last_active = now;
            conn.partial_since = None;
            conn.rx.consume(usize::MAX);
            self.mesh.release();
            recorder.stream_event(StreamEvent::ClosedByPeer);
            return recorder.open_connections(self.table.open());
        }
        let event = if conn.reading_a_message() {
            StreamEvent::ClosedMidMessage
        } else {
            StreamEvent::ClosedByPeer
        };
        if !conn.has_output() {
            return self.close(slot, event, recorder);
        }
        self.close_after_sending(slot, event, now, recorder);
    }

    /// Moves a closing connection on once its queue is empty: closed when the peer has
    /// finished too, else a FIN and a linger for the peer's.
    pub(super) fn finish_closing(&mut self, slot: u32, recorder: &mut impl Recorder) {
        let Some(conn) = self.table.get_mut(slot) else {
            return;
        };
        if conn.usable() || conn.has_output() {
            return;
        }
        if conn.peer_done {
            return self.close(slot, StreamEvent::ClosedByPeer, recorder);
        }
        if !conn.fin_sent {
            conn.fin_sent = true;
            conn.close_layers();
            if conn.socket.shutdown(Shutdown::Write).is_err() {
                self.close(slot, StreamEvent::ClosedError, recorder);
            }
        }
    }

    /// Moves on every connection that started closing this turn.
    pub(super) fn finish_closing_all(&mut self, recorder: &mut impl Recorder) {
        while let Some(slot) = self.closing.pop() {
            self.finish_closing(slot, recorder);
        }
    }

    /// Remembers a connect that failed (refused, unreachable or timed out), for the worker to
    /// tell the groups ([`Streams::take_failed_connects`]); bounded, the excess is dropped.
    fn note_failed_connect(&mut self, destination: SocketAddr) {
        if self.failed_connects.len() < self.failed_connects.capacity() {
            self.failed_connects.push(destination);
        }
    }

    /// Hands `failed` each destination a connect failed to since the last call.
    pub(crate) fn take_failed_connects(&mut self, mut failed: impl FnMut(SocketAddr)) {
        self.failed_connects.drain(..).for_each(&mut failed);
    }

    /// A connect in progress reported writable: established, still pending, or failed.
    pub(super) fn finish_connect(&mut self, slot: u32, recorder: &mut impl Recorder) -> bool {
        let Some(conn) = self.table.get_mut(slot) else {
            return false;
        };
        let failed = match conn.socket.take_error() {
            Ok(None) => false,
            Ok(Some(_)) | Err(_) => true,
        };
        match conn.socket.peer_addr() {
            Ok(_) if !failed => {
                conn.phase = Phase::Open;
                recorder.stream_event(StreamEvent::Connected);
                true
            }
            Err(e) if !failed && e.kind() == io::ErrorKind::NotConnected => false,
            _ => {
                self.close(slot, StreamEvent::ConnectFailed, recorder);
                false
            }
        }
    }

    /// Enforces the connect, header, idle and linger timeouts (at most every sweep tick).
    pub(crate) fn sweep(&mut self, now: Instant, recorder: &mut impl Recorder) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + self.sweep_every;
        for slot in 0..self.table.slots() {
            if let Some(event) = self.table.get(slot).and_then(|c| self.expired(c, now)) {
                self.close(slot, event, recorder);
            }
        }
    }

    /// The event to close `conn` with when one of its timeouts has passed.
    fn expired(&self, conn: &Connection, now: Instant) -> Option<StreamEvent> {
        let o = &self.options;
        let past = |since: Instant, limit| now.saturating_duration_since(since) >= limit;
        if let Some(event) = conn.handshake_expired(now).filter(|_| conn.usable()) {
            return Some(event);
        }
        match conn.phase {
            Phase::Connecting(since) if past(since, o.connect_timeout) => {
                Some(StreamEvent::ConnectFailed)
            }
            Phase::Closing(since) => past(since, LINGER).then_some(StreamEvent::ClosedIdle),
            // Half-closed: closed once its requests are answered and written, or at the latest
            // after the linger.
            _ if conn.half_closed && conn.awaiting == 0 && !conn.has_output() => {
                Some(StreamEvent::ClosedByPeer)
            }
            _ if conn.half_closed => past(conn.last_active, o.idle_timeout.min(HALF_CLOSED_LINGER))
                .then_some(StreamEvent::ClosedIdle),
            _ if conn
                .partial_since
                .is_some_and(|t| past(t, o.header_timeout)) =>
            {
                Some(StreamEvent::ClosedSlow)
            }
            _ if past(conn.last_active, o.idle_timeout) => Some(StreamEvent::ClosedIdle),
            _ => None,
        }
    }

    /// Closes every connection (the worker is stopping); counted as such unless closing.
    pub(crate) fn shutdown(&mut self, recorder: &mut impl Recorder) {
        for slot in 0..self.table.slots() {
            if self.table.get(slot).is_some() {
                self.close(slot, StreamEvent::ClosedShutdown, recorder);
            }
        }
    }
}
