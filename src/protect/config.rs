//! What protection is started with: plain data that the settings build from `[protect]`.

use std::time::Duration;

use super::acl::AccessList;
use super::bucket::Limit;
use super::cidr::CidrSet;
use super::scanner::ScannerField;

/// What to do with a request over its source's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverLimit {
    /// Drop it silently (the default: an answer only helps the flooder).
    Drop,
    /// Answer 503 Service Unavailable with `Retry-After` (whole seconds, RFC 3261 §20.33).
    Reply { retry_after: Duration },
}

/// Edge protection's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectConfig {
    /// Sources never rate-limited or banned (the core, peers).
    pub allow: CidrSet,
    /// The limit per source of REGISTER, INVITE and other requests (indexed by
    /// [`MethodClass`](super::MethodClass)); `None` leaves the class unlimited.
    pub limits: [Option<Limit>; 3],
    pub over_limit: OverLimit,
    /// A source over its limit this long in a row is banned; `None`: no automatic bans.
    pub ban_after: Option<Duration>,
    /// A first ban's length; repeated bans double it, up to `ban_max_time`.
    pub ban_time: Duration,
    pub ban_max_time: Duration,
    /// Sources tracked at once (the rate table's slots, 64 bytes each).
    pub sources: usize,
    /// Bans held at once.
    pub max_bans: usize,
    /// Scanner patterns: case-insensitive substrings of a header.
    pub scanners: Vec<(ScannerField, String)>,
    /// Ban a source that sent a scanner's request.
    pub ban_scanners: bool,
    /// Per-listener access lists.
    pub access: Vec<AccessList>,
}

impl Default for ProtectConfig {
    /// Nothing limited, nothing filtered: every feature is switched on by its own key.
    fn default() -> ProtectConfig {
        ProtectConfig {
            allow: CidrSet::default(),
            limits: [None; 3],
            over_limit: OverLimit::Drop,
            ban_after: None,
            ban_time: Duration::from_secs(60),
            ban_max_time: Duration::from_secs(3600),
            sources: 65_536,
            max_bans: 4_096,
            scanners: Vec::new(),
            ban_scanners: false,
            access: Vec::new(),
        }
    }
}
