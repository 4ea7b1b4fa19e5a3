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
}

impl StreamEvent {
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
