//! The `[tcp]` settings: connection limits, timeouts and buffer bounds for stream listeners.
//!
//! Every limit is enforced per connection or per worker by the runtime, never by locking per
//! message. Durations are written with a unit, `250ms`, `10s` or `5m`, in the file as on the
//! command line.

use std::time::Duration;

use serde::Deserialize;

use super::SettingsError;

/// Limits and timeouts of TCP connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// Open connections across all workers (accepted and opened); more are refused.
    pub max_connections: usize,
    /// Open connections one worker holds; more are refused.
    pub max_connections_per_worker: usize,
    /// A connection on which nothing was read for this long is closed.
    pub idle_timeout: Duration,
    /// A message must be read whole within this time of its first byte (slow senders are cut).
    pub header_timeout: Duration,
    /// An outbound connection must be established within this time.
    pub connect_timeout: Duration,
    /// Bytes waiting to be written on one connection; past this the connection is dropped.
    pub send_queue: usize,
    /// The largest message read from a stream (larger: 513, then close). RFC 3261 §18.3.
    pub max_message: usize,
    /// Messages waiting in one worker's hand-off queue; more are dropped and counted.
    pub handoff_queue: usize,
}

impl Default for TcpOptions {
    fn default() -> TcpOptions {
        TcpOptions {
            max_connections: 16_384,
            max_connections_per_worker: 8_192,
            idle_timeout: Duration::from_secs(300),
            header_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            send_queue: 512 * 1024,
            max_message: 64 * 1024,
            handoff_queue: 4_096,
        }
    }
}

/// The most connections one worker can name: the slot field of a connection id.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 1 << 24;

impl TcpOptions {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        let bad = |what: &str| Err(SettingsError(format!("tcp.{what}")));
        if self.max_connections == 0 {
            return bad("max-connections must be at least 1");
        }
        if !(1..=MAX_CONNECTIONS_PER_WORKER).contains(&self.max_connections_per_worker) {
            return bad("max-connections-per-worker must be between 1 and 16777216");
        }
        if [self.idle_timeout, self.header_timeout, self.connect_timeout].contains(&Duration::ZERO)
        {
            return bad("timeouts must be longer than zero");
        }
        if !(1024..=16 << 20).contains(&self.max_message) {
            return bad("max-message must be between 1024 and 16777216 bytes");
        }
        if self.send_queue < self.max_message {
            return bad("send-queue must hold at least one max-message");
        }
        if !(1..=1 << 20).contains(&self.handoff_queue) {
            return bad("handoff-queue must be between 1 and 1048576");
        }
        Ok(())
    }
}

/// The `[tcp]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileTcp {
    max_connections: Option<usize>,
    max_connections_per_worker: Option<usize>,
    idle_timeout: Option<String>,
    header_timeout: Option<String>,
    connect_timeout: Option<String>,
    send_queue: Option<usize>,
    max_message: Option<usize>,
    handoff_queue: Option<usize>,
}

impl FileTcp {
    pub(super) fn apply(&self, tcp: &mut TcpOptions) -> Result<(), SettingsError> {
        let duration = |text: &Option<String>, current: Duration| match text {
            Some(t) => parse_duration(t),
            None => Ok(current),
        };
        tcp.max_connections = self.max_connections.unwrap_or(tcp.max_connections);
        tcp.max_connections_per_worker = self
            .max_connections_per_worker
            .unwrap_or(tcp.max_connections_per_worker);
        tcp.idle_timeout = duration(&self.idle_timeout, tcp.idle_timeout)?;
        tcp.header_timeout = duration(&self.header_timeout, tcp.header_timeout)?;
        tcp.connect_timeout = duration(&self.connect_timeout, tcp.connect_timeout)?;
        tcp.send_queue = self.send_queue.unwrap_or(tcp.send_queue);
        tcp.max_message = self.max_message.unwrap_or(tcp.max_message);
        tcp.handoff_queue = self.handoff_queue.unwrap_or(tcp.handoff_queue);
        Ok(())
    }
}

/// Parses a duration with its unit: `250ms`, `10s`, `5m`, `1h` (ban times run to hours).
pub fn parse_duration(text: &str) -> Result<Duration, SettingsError> {
    let bad = || {
        SettingsError(format!(
            "duration {text:?}: expected a whole number with a unit, e.g. 250ms, 10s, 5m or 1h"
        ))
    };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad),
        "h" => n.checked_mul(3600).map(Duration::from_secs).ok_or_else(bad),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "10", "s", "1.5s", "-1s", "10 s", "10d", "1H"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_defaults_are_valid_and_mistakes_are_named() {
        assert_eq!(TcpOptions::default().validate(), Ok(()));
        let cases = [
            TcpOptions {
                max_connections: 0,
                ..TcpOptions::default()
            },
            TcpOptions {
                header_timeout: Duration::ZERO,
                ..TcpOptions::default()
            },
            TcpOptions {
                send_queue: 1024,
                ..TcpOptions::default()
            },
            TcpOptions {
                max_message: 10,
                ..TcpOptions::default()
            },
        ];
        for case in cases {
            let err = case.validate().unwrap_err();
            assert!(err.0.starts_with("tcp."), "{err}");
        }
    }
}
