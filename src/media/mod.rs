//! Media anchoring through rtpengine: the NG control protocol ([`ng`], over [`bencode`]), the
//! offer/answer decision table ([`table`]), the settings and the counters ([`MediaCounters`])
//! shared by the core and the NG client (`crate::runtime::NgClient`, the side service: it is
//! I/O, so it lives with the runtime).
//!
//! Contract: the core (`crate::proxy`, its media hook) decides which message of an anchored
//! call needs which command, parks the message with a [`MediaQuery`] and, on resume, puts
//! rtpengine's SDP in place of the body (Content-Length fixed in the same one-pass rewrite)
//! or applies [`OnFailure`]. The client runs on its own thread with its own UDP socket,
//! matches replies to queries by cookie, retries within the timeout, spreads calls over the
//! instances by a hash of the Call-ID and checks them with `ping`. Nothing here runs on a
//! worker's thread but the decision table and the counters' relaxed atomic adds.
//!
//! docs/MEDIA.md describes the behaviour, the configuration and the counters.

#![forbid(unsafe_code)]

pub mod bencode;
mod counters;
pub mod ng;
pub mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use counters::{
    Fallback, LATENCY_BOUNDS_US, MediaCounters, MediaSnapshot, Outcome as NgOutcome,
};
pub use ng::{Command, Flags, MediaAnswer, MediaQuery, Toward};

/// What an anchored INVITE gets when rtpengine does not answer its offer in time (or
/// refuses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// 503 Service Unavailable to the caller.
    Reject,
    /// Forwarded as it came: the call goes on without anchoring.
    Unanchored,
}

/// Which calls are anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Every INVITE outside a dialog, and its dialog.
    Invites,
    /// Only INVITEs whose routing rule says `media = true` (and their dialogs).
    Rules,
}

/// The `[media]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// rtpengine NG control sockets; a call's messages go to one chosen by its Call-ID.
    pub rtpengine: Vec<SocketAddr>,
    /// How long an NG command may take, retries included (the first offer's deadline).
    pub timeout: Duration,
    /// How many times a command is sent again within `timeout` before it counts as lost.
    pub retries: u32,
    pub on_failure: OnFailure,
    pub anchor: Anchor,
    /// How often each instance is pinged; one that misses a ping is down for new calls.
    pub ping_interval: Duration,
    /// `delete-delay` sent with every delete (`Some(0)`: deleted at once).
    pub delete_delay: Option<u32>,
    pub toward_callee: Flags,
    pub toward_caller: Flags,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            rtpengine: Vec::new(),
            timeout: Duration::from_secs(1),
            retries: 2,
            on_failure: OnFailure::Reject,
            anchor: Anchor::Invites,
            ping_interval: Duration::from_millis(500),
            delete_delay: None,
            toward_callee: Flags::default(),
            toward_caller: Flags::default(),
        }
    }
}

impl MediaConfig {
    pub fn flags(&self, toward: Toward) -> &Flags {
        match toward {
            Toward::Callee => &self.toward_callee,
            Toward::Caller => &self.toward_caller,
        }
    }
}

/// What the core and the client share: the settings and the counters.
#[derive(Debug)]
pub struct Media {
    pub config: MediaConfig,
    pub counters: MediaCounters,
}

impl Media {
    pub fn new(config: MediaConfig) -> Arc<Media> {
        let instances = config.rtpengine.len();
        Arc::new(Media {
            config,
            counters: MediaCounters::new(instances),
        })
    }
}
