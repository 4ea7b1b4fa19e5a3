//! `[media]`: media anchoring through rtpengine (issue 18; docs/MEDIA.md).

use std::net::SocketAddr;

use serde::Deserialize;

use super::{SettingsError, parse_duration};
use crate::media::{Anchor, Flags, MediaConfig, OnFailure};

/// The `[media]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileMedia {
    /// NG control sockets, `IP:PORT`.
    rtpengine: Vec<String>,
    /// A duration: `1s`, `500ms`.
    timeout: Option<String>,
    retries: Option<u32>,
    /// `"503"` or `"unanchored"`.
    on_failure: Option<String>,
    /// `"invites"` or `"rules"`.
    anchor: Option<String>,
    ping_interval: Option<String>,
    delete_delay: Option<String>,
    /// Flag words for both directions.
    flags: Option<String>,
    toward_callee: Option<String>,
    toward_caller: Option<String>,
}

impl FileMedia {
    pub(super) fn settings(&self) -> Result<MediaConfig, SettingsError> {
        let err = |m: String| SettingsError(format!("media.{m}"));
        let d = MediaConfig::default();
        if self.rtpengine.is_empty() {
            return Err(err(
                "rtpengine: at least one NG address (IP:PORT) is needed".into(),
            ));
        }
        let rtpengine = self
            .rtpengine
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map_err(|_| err(format!("rtpengine: {a:?} is not IP:PORT")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let duration = |key: &str, text: &Option<String>, default| match text {
            Some(t) => parse_duration(t).map_err(|e| err(format!("{key}: {e}"))),
            None => Ok(default),
        };
        let timeout = duration("timeout", &self.timeout, d.timeout)?;
        let ping_interval = duration("ping-interval", &self.ping_interval, d.ping_interval)?;
        if timeout.is_zero() || ping_interval.is_zero() {
            return Err(err("timeout and ping-interval must be above zero".into()));
        }
        let delete_delay = match &self.delete_delay {
            Some(t) => Some(
                u32::try_from(
                    parse_duration(t)
                        .map_err(|e| err(format!("delete-delay: {e}")))?
                        .as_secs(),
                )
                .unwrap_or(u32::MAX),
            ),
            None => None,
        };
        let on_failure = match self.on_failure.as_deref() {
            None | Some("503") => OnFailure::Reject,
            Some("unanchored") => OnFailure::Unanchored,
            Some(other) => {
                return Err(err(format!(
                    "on-failure: {other:?} (\"503\" or \"unanchored\")"
                )));
            }
        };
        let anchor = match self.anchor.as_deref() {
            None | Some("invites") => Anchor::Invites,
            Some("rules") => Anchor::Rules,
            Some(other) => {
                return Err(err(format!("anchor: {other:?} (\"invites\" or \"rules\")")));
            }
        };
        let common = self.flags.as_deref().unwrap_or_default();
        let flags = |own: &Option<String>| {
            Flags::parse(&format!("{common} {}", own.as_deref().unwrap_or_default()))
                .map_err(|e| err(format!("flags: {e}")))
        };
        Ok(MediaConfig {
            rtpengine,
            timeout,
            retries: self.retries.unwrap_or(d.retries).min(10),
            on_failure,
            anchor,
            ping_interval,
            delete_delay,
            toward_callee: flags(&self.toward_callee)?,
            toward_caller: flags(&self.toward_caller)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::media::{Anchor, OnFailure};
    use crate::settings::Settings;

    #[test]
    fn the_media_table() {
        let s = Settings::from_toml(
            "[media]\nrtpengine = [\"127.0.0.1:2223\", \"[::1]:2224\"]\ntimeout = \"1s\"\n\
on-failure = \"unanchored\"\nanchor = \"rules\"\ndelete-delay = \"0s\"\n\
flags = \"replace-origin\"\ntoward-caller = \"ICE=force UDP/TLS/RTP/SAVPF\"\n",
        )
        .unwrap();
        let m = s.media.unwrap();
        assert_eq!(m.rtpengine.len(), 2);
        assert_eq!(m.timeout, Duration::from_secs(1));
        assert_eq!(m.on_failure, OnFailure::Unanchored);
        assert_eq!(m.anchor, Anchor::Rules);
        assert_eq!(m.delete_delay, Some(0));
        assert_eq!(m.toward_callee.replace, ["origin"]);
        assert!(m.toward_callee.entries.is_empty());
        assert_eq!(m.toward_caller.replace, ["origin"]);
        assert_eq!(m.toward_caller.entries.len(), 2);
        for bad in [
            "[media]\nrtpengine = []\n",
            "[media]\nrtpengine = [\"localhost:2223\"]\n",
            "[media]\nrtpengine = [\"127.0.0.1:1\"]\non-failure = \"drop\"\n",
            "[media]\nrtpengine = [\"127.0.0.1:1\"]\ntimeout = \"0s\"\n",
            "[media]\nrtpengine = [\"127.0.0.1:1\"]\nflags = \"sdp=x\"\n",
            "[media]\nrtpengine = [\"127.0.0.1:1\"]\nunknown = 1\n",
        ] {
            assert!(Settings::from_toml(bad).is_err(), "{bad}");
        }
    }
}
