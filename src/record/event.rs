//! What happens to stream connections, as the worker reports it to its
//! [`Recorder`](super::Recorder): one event per connection change or per unusual
//! message, never per ordinary message. Each event is a counter.

use std::fmt;

macro_rules! stream_events {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// A connection event. Each one is a counter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum StreamEvent {
            $($(#[$doc])* $variant,)+
        }

        impl StreamEvent {
            /// Every event, in counter order (`event as usize` indexes this list).
            pub const ALL: &'static [StreamEvent] = &[$(StreamEvent::$variant,)+];

            /// A stable snake_case name for metrics and logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(StreamEvent::$variant => $name,)+
                }
            }
        }
    };
}

stream_events! {
    /// A client's connection was accepted.
    Accepted => "accepted",
    /// A connection this proxy opened toward a next hop was established.
    Connected => "connected",
    /// A connection this proxy opened failed or did not complete in time; what was queued
    /// on it is lost (and counted as send errors).
    ConnectFailed => "connect_failed",
    /// A client was refused (closed at once) because a connection limit was reached.
    Refused => "refused",
    /// A connection to a next hop was not opened because a connection limit was reached;
    /// the message is counted as a send error.
    OpenRefused => "open_refused",
    /// The peer closed the connection between messages.
    ClosedByPeer => "closed_by_peer",
    /// The peer closed the connection in the middle of a message (the part is discarded).
    ClosedMidMessage => "closed_mid_message",
    /// Closed after the idle timeout.
    ClosedIdle => "closed_idle",
    /// Closed because a message was not read whole within the header timeout.
    ClosedSlow => "closed_slow",
    /// Closed after a message over the size limit (answered 513 when it could be).
    ClosedOversized => "closed_oversized",
    /// Closed after a message that could not be framed (answered 400 when it could be).
    ClosedUnframed => "closed_unframed",
    /// Closed because its send queue would have passed its bound.
    ClosedSendOverflow => "closed_send_overflow",
    /// Closed after a read or write error (a reset, a broken pipe).
    ClosedError => "closed_error",
    /// Closed because the worker stopped.
    ClosedShutdown => "closed_shutdown",
    /// A message left for a connection another worker owns, through its hand-off queue.
    HandedOff => "handed_off",
    /// A message arrived from another worker's hand-off.
    HandoffReceived => "handoff_received",
    /// The owning worker's hand-off queue was full; the message was dropped.
    HandoffOverflow => "handoff_overflow",
    /// The connection named for a message had closed; it was sent by address instead
    /// (RFC 3261 §18.2.2).
    ConnectionGone => "connection_gone",
    /// A double-CRLF keep-alive ping was answered with a pong (RFC 5626 §3.5.1).
    Ping => "ping",
    /// A client's connection was accepted on a `tls:` listener (also counted as accepted).
    TlsAccepted => "tls_accepted",
    /// A client's connection was accepted on a `ws:` listener.
    WsAccepted => "ws_accepted",
    /// A client's connection was accepted on a `wss:` listener.
    WssAccepted => "wss_accepted",
    /// A connection toward a next hop was opened with TLS (also counted as connected later).
    TlsOpened => "tls_opened",
    /// A TLS handshake completed (either side).
    TlsHandshake => "tls_handshake_ok",
    /// A TLS handshake failed on a certificate: none presented when one was required, or
    /// one that does not verify (closed).
    TlsFailedCertificate => "tls_handshake_failed_certificate",
    /// A TLS handshake failed because the peer sent an alert.
    TlsFailedAlert => "tls_handshake_failed_alert",
    /// A TLS handshake failed on anything else (not TLS, no common version or cipher).
    TlsFailedProtocol => "tls_handshake_failed_protocol",
    /// A TLS (or the WebSocket upgrade after it) handshake did not complete in time.
    TlsFailedTimeout => "tls_handshake_failed_timeout",
    /// An established TLS session ended on the peer's fatal alert.
    TlsAlertReceived => "tls_alert_received",
    /// An established TLS session failed on our side (a bad record): we sent an alert.
    TlsError => "tls_error",
    /// A WebSocket upgrade was accepted (101, RFC 6455 §4.2.2).
    WsHandshake => "ws_handshake_ok",
    /// A WebSocket upgrade without the `sip` subprotocol was refused (400, RFC 7118 §4).
    WsFailedNoSip => "ws_handshake_failed_no_sip",
    /// A WebSocket upgrade from an Origin not allowed was refused (403).
    WsFailedOrigin => "ws_handshake_failed_origin",
    /// A malformed, oversized or wrong-version upgrade request was refused (400 / 426).
    WsFailedMalformed => "ws_handshake_failed_malformed",
    /// A WebSocket upgrade did not complete in time.
    WsFailedTimeout => "ws_handshake_failed_timeout",
    /// A WebSocket ping was answered (RFC 6455 §5.5.2).
    WsPing => "ws_ping",
    /// WebSocket close handshakes by status code (RFC 6455 §7.4.1), whichever side began:
    /// 1000 normal.
    WsClose1000 => "ws_close_1000",
    /// 1001 going away (a browser tab closed).
    WsClose1001 => "ws_close_1001",
    /// 1002 protocol error (an unmasked or malformed frame; we close with it).
    WsClose1002 => "ws_close_1002",
    /// 1005 a close frame without a code.
    WsClose1005 => "ws_close_1005",
    /// 1009 a frame or message over the stream message limit (we close with it).
    WsClose1009 => "ws_close_1009",
    /// Any other code.
    WsCloseOther => "ws_close_other",
    /// A message for a WebSocket destination without an open connection to it (browsers
    /// are never connected to: RFC 7118 §5); counted as a send error too.
    WsNoConnection => "ws_no_connection",
}

impl StreamEvent {
    /// The close event for a WebSocket close code.
    pub fn ws_close(code: u16) -> StreamEvent {
        match code {
            1000 => StreamEvent::WsClose1000,
            1001 => StreamEvent::WsClose1001,
            1002 => StreamEvent::WsClose1002,
            1005 => StreamEvent::WsClose1005,
            1009 => StreamEvent::WsClose1009,
            _ => StreamEvent::WsCloseOther,
        }
    }

    /// The number of distinct events (the length of a counter array).
    pub const COUNT: usize = Self::ALL.len();
}

impl fmt::Display for StreamEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_index_their_own_list() {
        for (i, e) in StreamEvent::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
            assert!(!e.name().is_empty());
        }
    }
}
