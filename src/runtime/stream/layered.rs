//! A connection's byte I/O through its layers: plain TCP goes straight to the socket; TLS
//! through its session ([`super::tls`]); a WebSocket connection's messages get a frame header
//! each on the way out ([`crate::websocket::frame`]). The worker and `Streams` call these and
//! never look at the layers themselves.

use std::io;
use std::time::Instant;

use super::buffer::Overflow;
use super::connection::Connection;
use super::tls::TlsIo;
use crate::record::StreamEvent;
use crate::websocket::{CloseCode, Opcode, encode_header};

impl Connection {
    /// Reads once into the read buffer: plaintext, whatever the layers (see
    /// [`super::buffer::ReadBuffer::read_from`] for the result).
    pub(crate) fn read_in(&mut self) -> io::Result<Option<usize>> {
        match &mut self.layers.tls {
            None => self.rx.read_from(&mut self.socket),
            Some(tls) => self.rx.read_from(&mut TlsIo {
                tls,
                socket: &mut self.socket,
            }),
        }
    }

    /// After a read of `n > 0` bytes: the kernel had no more. Under TLS a short read says
    /// nothing of the socket, so it is read until it would block.
    pub(crate) fn drained(&self) -> bool {
        !self.rx.is_full() && !self.read_closed && self.layers.tls.is_none()
    }

    /// Messages may be written straight from the output slots with `writev` (plain TCP);
    /// else they go through the send queue and the layers.
    pub(crate) fn direct(&self) -> bool {
        self.layers.tls.is_none() && self.layers.ws.is_none()
    }

    /// Something waits to be written: the send queue, or a TLS session's records.
    pub(crate) fn has_output(&self) -> bool {
        !self.tx.is_empty() || self.layers.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes what waits, through the layers; `Ok(true)` once nothing does.
    pub(crate) fn write_out(&mut self) -> io::Result<bool> {
        match &mut self.layers.tls {
            None => self.tx.write_to(&mut self.socket),
            Some(tls) => {
                let mut io = TlsIo {
                    tls,
                    socket: &mut self.socket,
                };
                let queue_empty = self.tx.write_to(&mut io)?;
                Ok(queue_empty && io.tls.flush(io.socket)?)
            }
        }
    }

    /// Queues one SIP message (or the unwritten tail of one when `message` is false, only on
    /// plain TCP): in a frame of its own on a WebSocket (RFC 7118 §5, binary or text alike;
    /// we send text, which browsers hand to JavaScript as a string).
    pub(crate) fn queue_message(&mut self, bytes: &[u8], message: bool) -> Result<(), Overflow> {
        if self.layers.ws.is_some() {
            let mut header = [0u8; 10];
            let n = encode_header(Opcode::Text, bytes.len(), &mut header);
            self.tx.push(&header[..n], false)?;
        }
        self.tx.push(bytes, message)
    }

    /// Queues a WebSocket control frame (RFC 6455 §5.5).
    pub(crate) fn queue_control(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), Overflow> {
        let mut header = [0u8; 10];
        let n = encode_header(opcode, payload.len(), &mut header);
        self.tx.push(&header[..n], false)?;
        self.tx.push(payload, false)
    }

    /// Queues a close frame with `code` (none for 1005, which is never sent: §7.4.1).
    pub(crate) fn queue_close(&mut self, code: CloseCode) -> Result<(), Overflow> {
        let bytes = code.0.to_be_bytes();
        let payload: &[u8] = if code == CloseCode::NO_STATUS {
            &[]
        } else {
            &bytes
        };
        self.queue_control(Opcode::Close, payload)
    }

    /// Once, when a TLS handshake has just completed: the event to count. The handshake
    /// deadline ends with it unless a WebSocket upgrade is still to come.
    pub(crate) fn handshake_news(&mut self) -> Option<StreamEvent> {
        let news = self.layers.tls.as_mut()?.handshake_news()?;
        if self.layers.ws.is_none() {
            self.layers.handshake_until = None;
        }
        Some(news)
    }

    /// Why the connection failed, when its TLS session knows better than `fallback`.
    pub(crate) fn failure(&self, fallback: StreamEvent) -> StreamEvent {
        self.layers
            .tls
            .as_ref()
            .and_then(|t| t.failure)
            .unwrap_or(fallback)
    }

    /// The event to close with when a handshake has not completed by its deadline.
    pub(crate) fn handshake_expired(&self, now: Instant) -> Option<StreamEvent> {
        let until = self.layers.handshake_until?;
        if now < until {
            return None;
        }
        Some(match &self.layers.tls {
            Some(t) if t.handshaking() => StreamEvent::TlsFailedTimeout,
            _ => StreamEvent::WsFailedTimeout,
        })
    }

    /// Before the FIN of a graceful close: TLS's own close (`close_notify`).
    pub(crate) fn close_layers(&mut self) {
        if let Some(tls) = &mut self.layers.tls {
            tls.close_notify(&mut self.socket);
        }
    }
}
