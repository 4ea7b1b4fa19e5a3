//! The worker's WebSocket framing (RFC 6455, RFC 7118): on a `ws:` / `wss:` connection the
//! read buffer holds the client's HTTP upgrade, then frames. Each whole WebSocket message is
//! one SIP message and goes to the core exactly as a TCP-framed one does, as a slice of the
//! read buffer; pings are answered, a close is echoed, and a frame or message over the
//! stream message limit closes the connection with 1009.

use std::time::Instant;

use super::Worker;
use crate::record::Recorder;
use crate::runtime::stream::WsStep;
use crate::websocket::{Upgrade, accepted, parse_upgrade};

/// The largest upgrade request read (a browser's is under 1 KiB); longer is refused.
const MAX_UPGRADE: usize = 8 * 1024;

impl<R: Recorder> Worker<R> {
    /// Hands every whole WebSocket message now in `slot`'s buffer to the core.
    pub(super) fn frame_ws(&mut self, slot: u32, now: Instant, arrival_ns: u64) {
        let at = self.streams.reference(slot);
        let limit = self.streams.max_message();
        let mut completed = false;
        loop {
            if self.streams.reference(slot) != at {
                return; // closed while a message was sent (the slot may be reused)
            }
            let Some(conn) = self.streams.connection_mut(slot) else {
                return;
            };
            if !conn.usable() {
                return;
            }
            let Some(ws) = conn.layers.ws.as_deref_mut() else {
                return;
            };
            if !ws.open {
                if !self.upgrade(slot, now) {
                    break;
                }
                continue;
            }
            let step = ws.step(&mut conn.rx, limit);
            let consumed = match step {
                WsStep::Partial => break,
                WsStep::Message {
                    start,
                    len,
                    consumed,
                } => {
                    completed = true;
                    self.handle(slot, (start, len), false, now, arrival_ns);
                    consumed
                }
                WsStep::Ping {
                    payload,
                    len,
                    consumed,
                } => {
                    let payload = payload.get(..len).unwrap_or_default();
                    self.streams.ws_pong(slot, payload, &mut self.recorder);
                    consumed
                }
                WsStep::Skip(n) => n,
                // The peer's close is counted by its code and answered with its echo
                // (§5.5.1); ours (1002, 1009) is sent as is.
                WsStep::Close(code) | WsStep::Fail(code) => {
                    return self.streams.ws_close(slot, code, now, &mut self.recorder);
                }
            };
            if self.streams.reference(slot) != at {
                return;
            }
            if let Some(conn) = self.streams.connection_mut(slot) {
                conn.rx.consume(consumed);
            }
        }
        if let Some(conn) = self.streams.connection_mut(slot) {
            conn.note_progress(completed, now);
        }
    }

    /// Reads the HTTP upgrade at the front of `slot`'s buffer and answers it (RFC 6455
    /// §4.2.2); false while it is incomplete or once the connection is refused.
    fn upgrade(&mut self, slot: u32, now: Instant) -> bool {
        let Some(conn) = self.streams.connection(slot) else {
            return false;
        };
        let data = conn.rx.data();
        let verdict = match parse_upgrade(data, self.streams.origins()) {
            Upgrade::Partial if data.len() >= MAX_UPGRADE.min(conn.rx.limit()) => {
                Upgrade::Refuse(crate::websocket::Refusal::Malformed)
            }
            v => v,
        };
        match verdict {
            Upgrade::Partial => false,
            Upgrade::Accept { len, accept } => {
                let mut response = [0u8; 160];
                let n = accepted(&accept, &mut response);
                if let Some(conn) = self.streams.connection_mut(slot) {
                    conn.rx.consume(len);
                }
                let response = response.get(..n).unwrap_or_default();
                self.streams.ws_accept(slot, response, &mut self.recorder);
                true
            }
            Upgrade::Refuse(why) => {
                self.streams.ws_refuse(slot, why, now, &mut self.recorder);
                false
            }
        }
    }
}
