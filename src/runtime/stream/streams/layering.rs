//! The TLS and WebSocket side of `Streams`: the layers a new connection gets from its listener
//! (or, opened toward a next hop, from its transport), and the WebSocket handshake answer and
//! control frames the worker's framing asks for.

use std::net::SocketAddr;
use std::time::Instant;

use super::super::connection::{Layers, Origin};
use super::super::tls::TlsSession;
use super::Streams;
use crate::proxy::{PeerName, Transport};
use crate::record::Recorder;
use crate::record::StreamEvent;
use crate::websocket::{CloseCode, Opcode, Refusal};

/// The event that counts a client accepted on a `transport` listener, besides `Accepted`.
pub(super) fn accepted_event(transport: Transport) -> Option<StreamEvent> {
    match transport {
        Transport::Tls => Some(StreamEvent::TlsAccepted),
        Transport::Ws => Some(StreamEvent::WsAccepted),
        Transport::Wss => Some(StreamEvent::WssAccepted),
        _ => None,
    }
}

impl Streams {
    /// The layers of a client accepted on a `transport` listener; `None` when its TLS
    /// session cannot be made.
    pub(super) fn accepted_layers(&self, transport: Transport) -> Option<Layers> {
        let mut layers = Layers::tcp();
        layers.transport = transport;
        let Some(secure) = self.secure.as_deref() else {
            return (transport == Transport::Tcp).then_some(layers);
        };
        if let Some(session) = secure.accept(transport) {
            layers.tls = Some(Box::new(TlsSession::new(session.ok()?)));
            layers.handshake_until = Some(Instant::now() + secure.tls_handshake);
        }
        if matches!(transport, Transport::Ws | Transport::Wss) {
            layers.ws = Some(Box::default());
            let tls_time = layers
                .tls
                .as_ref()
                .map_or(Default::default(), |_| secure.tls_handshake);
            layers.handshake_until = Some(Instant::now() + tls_time + secure.ws_handshake);
        }
        Some(layers)
    }

    /// The layers of a connection this worker opens toward `destination` over `transport`:
    /// plain TCP, or a TLS client session verified against `name`, the domain the next hop
    /// was reached by (RFC 5922 §7.2), else the address. Never WebSocket: browsers are not
    /// connected to (RFC 7118 §5).
    pub(super) fn opened_layers(
        &self,
        transport: Transport,
        destination: SocketAddr,
        name: Option<&PeerName>,
    ) -> Option<Layers> {
        match transport {
            Transport::Tcp => Some(Layers::tcp()),
            Transport::Tls => {
                let secure = self.secure.as_deref()?;
                let session = secure.connect(destination.ip(), name).ok()?;
                let mut layers = Layers::tcp();
                layers.transport = Transport::Tls;
                layers.name = name.map(PeerName::hash);
                layers.tls = Some(Box::new(TlsSession::new(session)));
                let connect = self.options.connect_timeout;
                layers.handshake_until = Some(Instant::now() + connect + secure.tls_handshake);
                Some(layers)
            }
            _ => None,
        }
    }

    /// A TLS handshake on `slot` completed: counted, and what waited for it in the send queue
    /// is written now; no writable edge would come for it.
    pub(crate) fn handshake_done(
        &mut self,
        slot: u32,
        event: StreamEvent,
        recorder: &mut impl Recorder,
    ) {
        if !self.client_allowed(slot) {
            return self.close(slot, StreamEvent::TlsFailedCertificate, recorder);
        }
        recorder.stream_event(event);
        self.drain_queue(slot, recorder);
    }

    /// Mutual TLS on a `tls:` listener: the client's certificate names an allowed client.
    fn client_allowed(&self, slot: u32) -> bool {
        let (Some(secure), Some(conn)) = (self.secure.as_deref(), self.table.get(slot)) else {
            return true;
        };
        let Some(tls) = conn.layers.tls.as_deref() else {
            return true;
        };
        if conn.origin != Origin::Accepted || conn.layers.transport != Transport::Tls {
            return true;
        }
        secure.client_allowed(tls.peer_certificates())
    }

    /// Answers an accepted WebSocket upgrade on `slot` with `101` (RFC 6455 §4.2.2).
    pub(crate) fn ws_accept(&mut self, slot: u32, response: &[u8], recorder: &mut impl Recorder) {
        let Some(conn) = self.table.get_mut(slot) else {
            return;
        };
        if let Some(ws) = &mut conn.layers.ws {
            ws.open = true;
        }
        conn.layers.handshake_until = None;
        recorder.stream_event(StreamEvent::WsHandshake);
        if conn.tx.push(response, false).is_err() {
            return self.close(slot, StreamEvent::ClosedSendOverflow, recorder);
        }
        self.drain_queue(slot, recorder);
    }

    /// Refuses a WebSocket upgrade on `slot` with the HTTP status of `why`, then closes.
    pub(crate) fn ws_refuse(
        &mut self,
        slot: u32,
        why: Refusal,
        now: Instant,
        recorder: &mut impl Recorder,
    ) {
        let event = match why {
            Refusal::NoSip => StreamEvent::WsFailedNoSip,
            Refusal::Origin => StreamEvent::WsFailedOrigin,
            Refusal::Malformed | Refusal::Version => StreamEvent::WsFailedMalformed,
        };
        if let Some(conn) = self.table.get_mut(slot) {
            let _ = conn.tx.push(why.response(), false);
        }
        self.close_after_sending(slot, event, now, recorder);
        self.drain_queue(slot, recorder);
        self.finish_closing(slot, recorder);
    }

    /// Answers a WebSocket ping with a pong carrying its payload (RFC 6455 §5.5.3).
    pub(crate) fn ws_pong(&mut self, slot: u32, payload: &[u8], recorder: &mut impl Recorder) {
        recorder.stream_event(StreamEvent::WsPing);
        let queued = match self.table.get_mut(slot) {
            Some(conn) => conn.queue_control(Opcode::Pong, payload).is_ok(),
            None => return,
        };
        if !queued {
            return self.close(slot, StreamEvent::ClosedSendOverflow, recorder);
        }
        self.drain_queue(slot, recorder);
    }

    /// Closes a WebSocket with a close frame of `code` (RFC 6455 §5.5.1, §7.1.2): the echo of
    /// the peer's close, or our own (1002, 1009). The connection closes once it is written.
    pub(crate) fn ws_close(
        &mut self,
        slot: u32,
        code: CloseCode,
        now: Instant,
        recorder: &mut impl Recorder,
    ) {
        if let Some(conn) = self.table.get_mut(slot) {
            let _ = conn.queue_close(code.echo());
        }
        self.close_after_sending(slot, StreamEvent::ws_close(code.0), now, recorder);
        self.drain_queue(slot, recorder);
        self.finish_closing(slot, recorder);
    }
}
