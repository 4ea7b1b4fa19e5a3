//! `[parking]`: what each worker may hold of messages waiting for a side service's answer (a
//! resolver). Only a proxy with a side service parks anything.

use serde::Deserialize;

use super::{SettingsError, parse_duration};
use crate::proxy::ParkingLimits;

/// The `[parking]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileParking {
    messages: Option<usize>,
    bytes: Option<usize>,
    /// A duration such as `2s` or `500ms`.
    timeout: Option<String>,
}

impl FileParking {
    pub(super) fn apply(&self, limits: &mut ParkingLimits) -> Result<(), SettingsError> {
        if let Some(messages) = self.messages {
            limits.messages = messages;
        }
        if let Some(bytes) = self.bytes {
            limits.bytes = bytes;
        }
        if let Some(timeout) = &self.timeout {
            limits.timeout = parse_duration(timeout)?;
        }
        if limits.messages == 0 || limits.bytes == 0 || limits.timeout.is_zero() {
            return Err(SettingsError(
                "parking.messages, parking.bytes and parking.timeout must be above zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::settings::Settings;

    #[test]
    fn parking_limits_from_the_file() {
        let s = Settings::from_toml("[parking]\nmessages = 8\ntimeout = \"500ms\"\n").unwrap();
        assert_eq!(s.parking.messages, 8);
        assert_eq!(s.parking.timeout, Duration::from_millis(500));
        assert_eq!(s.parking.bytes, 1 << 20);
        assert!(Settings::from_toml("[parking]\nmessages = 0\n").is_err());
        assert!(Settings::from_toml("[parking]\nsize = 1\n").is_err());
    }
}
