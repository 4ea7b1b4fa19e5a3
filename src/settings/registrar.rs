//! `[registrar]`: the registrar, location service and digest authentication (issue 14).
//!
//! ```toml
//! [registrar]
//! domains = ["edge.example"]          # we are the registrar for these
//! realm = "edge.example"              # default: the first domain
//! users = "users"                     # user:realm:kind:value lines (relative to this file)
//! authenticate-register = true        # 401 for REGISTER
//! authenticate = ["INVITE", "MESSAGE"] # 407 for these, out of dialog, From one of our domains
//! algorithms = ["MD5"]                # ["SHA-256", "MD5"] offers RFC 8760 first
//! match-from-user = true              # the authenticated user must be the From user
//! nonce-lifetime = "5m"
//! nonce-keys = ["1:<64 hex digits>"]  # the first mints; all verify (random key when absent)
//! min-expires = 60
//! max-expires = 7200
//! default-expires = 3600
//! max-bindings = 10                   # per AoR
//! capacity = 100000                   # AoRs
//! unknown-user = 404                  # or 480
//! snapshot = "bindings.json"          # bindings survive a restart (relative to this file)
//! snapshot-interval = "30s"
//! keepalive = "crlf"                  # NAT keepalives to UDP bindings: "crlf", "options", "off"
//! keepalive-interval = "25s"
//! keepalive-dead-after = 3            # options: unanswered pings before the flow is dead
//! keepalive-nat-only = true           # only bindings whose Contact is not their source
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{SettingsError, parse_duration};
use crate::registrar::{
    Algorithm, KeepaliveConfig, KeepaliveMode, Limits, NonceKey, RegistrarConfig, nonce,
};
use crate::sip::Method;

/// The registrar's settings, parsed (the service reads the users file when it starts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrarSettings {
    pub config: RegistrarConfig,
    pub realm: String,
    /// The users file; without one nothing is authenticated.
    pub users: Option<PathBuf>,
    pub algorithms: Vec<Algorithm>,
    pub match_from_user: bool,
    pub nonce_lifetime: Duration,
    /// Empty: a random key (id 0) per start.
    pub nonce_keys: Vec<NonceKey>,
    pub snapshot: Option<PathBuf>,
    pub snapshot_interval: Duration,
    /// The shared store (`redis://HOST:PORT/`) and this node's SIP address (UDP) as the
    /// other nodes reach it; both or neither.
    pub redis: Option<String>,
    pub node: Option<std::net::SocketAddr>,
    /// The other nodes' SIP addresses: requests from them were authenticated where they
    /// came in (more are learnt from the store).
    pub peers: Vec<std::net::SocketAddr>,
    /// NAT keepalives to UDP bindings; `None` when off.
    pub keepalive: Option<KeepaliveConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileRegistrar {
    domains: Vec<String>,
    realm: Option<String>,
    users: Option<PathBuf>,
    authenticate_register: Option<bool>,
    authenticate: Option<Vec<String>>,
    algorithms: Option<Vec<String>>,
    match_from_user: Option<bool>,
    nonce_lifetime: Option<String>,
    nonce_keys: Option<Vec<String>>,
    min_expires: Option<u32>,
    max_expires: Option<u32>,
    default_expires: Option<u32>,
    max_bindings: Option<usize>,
    capacity: Option<usize>,
    unknown_user: Option<u16>,
    snapshot: Option<PathBuf>,
    snapshot_interval: Option<String>,
    redis: Option<String>,
    node: Option<String>,
    peers: Option<Vec<String>>,
    keepalive: Option<String>,
    keepalive_interval: Option<String>,
    keepalive_dead_after: Option<u32>,
    keepalive_nat_only: Option<bool>,
}

fn bad(why: String) -> SettingsError {
    SettingsError(format!("registrar.{why}"))
}

impl FileRegistrar {
    pub(super) fn settings(&self) -> Result<RegistrarSettings, SettingsError> {
        if self.domains.is_empty() {
            return Err(bad("domains: at least one domain is needed".into()));
        }
        let domains: Vec<String> = self
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        let d = RegistrarConfig::default();
        let limits = self.limits()?;
        let authenticate = match &self.authenticate {
            Some(list) => list.iter().map(|m| method(m)).collect::<Result<_, _>>()?,
            None => d.authenticate,
        };
        let unknown_user = self.unknown_user.unwrap_or(404);
        if !matches!(unknown_user, 404 | 480) {
            return Err(bad(format!(
                "unknown-user {unknown_user}: expected 404 or 480"
            )));
        }
        let config = RegistrarConfig {
            domains: domains.clone(),
            limits,
            capacity: positive("capacity", self.capacity.unwrap_or(d.capacity))?,
            authenticate_register: self.authenticate_register.unwrap_or(true),
            authenticate,
            unknown_user,
        };
        Ok(RegistrarSettings {
            realm: self.realm.clone().unwrap_or_else(|| domains[0].clone()),
            config,
            users: self.users.clone(),
            algorithms: self.algorithms()?,
            match_from_user: self.match_from_user.unwrap_or(true),
            nonce_lifetime: self.duration(&self.nonce_lifetime, "nonce-lifetime", 300)?,
            nonce_keys: self.nonce_keys()?,
            snapshot: self.snapshot.clone(),
            snapshot_interval: self.duration(&self.snapshot_interval, "snapshot-interval", 30)?,
            redis: self.redis.clone(),
            node: self.node()?,
            peers: self.peers()?,
            keepalive: self.keepalive()?,
        })
    }

    /// On by default with CRLF every 25 s to bindings behind NAT: an idle UDP mapping is
    /// forgotten by many NATs after 30–60 s, and a CRLF costs the phone nothing.
    fn keepalive(&self) -> Result<Option<KeepaliveConfig>, SettingsError> {
        let d = KeepaliveConfig::default();
        let mode = match self.keepalive.as_deref() {
            None | Some("crlf") => KeepaliveMode::Crlf,
            Some("options") => KeepaliveMode::Options,
            Some("off") => return Ok(None),
            Some(other) => {
                return Err(bad(format!(
                    "keepalive {other:?}: expected \"crlf\", \"options\" or \"off\""
                )));
            }
        };
        let interval = self.duration(&self.keepalive_interval, "keepalive-interval", 25)?;
        if interval < std::time::Duration::from_secs(1) {
            return Err(bad("keepalive-interval must be at least 1s".into()));
        }
        let dead_after = self.keepalive_dead_after.unwrap_or(d.dead_after);
        if dead_after == 0 {
            return Err(bad("keepalive-dead-after must be at least 1".into()));
        }
        Ok(Some(KeepaliveConfig {
            mode,
            interval,
            dead_after,
            nat_only: self.keepalive_nat_only.unwrap_or(d.nat_only),
        }))
    }

    fn peers(&self) -> Result<Vec<std::net::SocketAddr>, SettingsError> {
        self.peers
            .iter()
            .flatten()
            .map(|p| {
                p.parse()
                    .map_err(|_| bad(format!("peers: {p:?} is not IP:PORT")))
            })
            .collect()
    }

    fn node(&self) -> Result<Option<std::net::SocketAddr>, SettingsError> {
        let node = match &self.node {
            Some(text) => Some(text.parse().map_err(|_| {
                bad(format!(
                    "node {text:?}: expected IP:PORT, this node's UDP SIP address"
                ))
            })?),
            None => None,
        };
        if self.redis.is_some() != node.is_some() {
            return Err(bad("redis and node go together".into()));
        }
        Ok(node)
    }

    fn limits(&self) -> Result<Limits, SettingsError> {
        let d = Limits::default();
        let limits = Limits {
            min_expires: self.min_expires.unwrap_or(d.min_expires),
            max_expires: self.max_expires.unwrap_or(d.max_expires),
            default_expires: self.default_expires.unwrap_or(d.default_expires),
            max_bindings: positive("max-bindings", self.max_bindings.unwrap_or(d.max_bindings))?,
        };
        if limits.min_expires > limits.max_expires
            || !(limits.min_expires..=limits.max_expires).contains(&limits.default_expires)
        {
            return Err(bad(
                "min-expires <= default-expires <= max-expires must hold".into(),
            ));
        }
        Ok(limits)
    }

    fn algorithms(&self) -> Result<Vec<Algorithm>, SettingsError> {
        let Some(list) = &self.algorithms else {
            return Ok(vec![Algorithm::Md5]);
        };
        let mut out = Vec::new();
        for name in list {
            let alg = Algorithm::parse(name.as_bytes())
                .ok_or_else(|| bad(format!("algorithms: {name:?} is not MD5 or SHA-256")))?;
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        if out.is_empty() {
            return Err(bad("algorithms: at least one is needed".into()));
        }
        Ok(out)
    }

    fn nonce_keys(&self) -> Result<Vec<NonceKey>, SettingsError> {
        let mut keys = Vec::new();
        for text in self.nonce_keys.iter().flatten() {
            let err = || bad(format!("nonce-keys: {text:?} is not ID:64-hex-digits"));
            let (id, hex) = text.split_once(':').ok_or_else(err)?;
            let id: u8 = id.parse().map_err(|_| err())?;
            let mut secret = [0u8; 32];
            if !nonce::hex_decode(hex.as_bytes(), &mut secret) {
                return Err(err());
            }
            keys.push(NonceKey { id, secret });
        }
        Ok(keys)
    }

    fn duration(
        &self,
        text: &Option<String>,
        name: &str,
        default: u64,
    ) -> Result<Duration, SettingsError> {
        match text {
            Some(t) => parse_duration(t).map_err(|e| bad(format!("{name}: {e}"))),
            None => Ok(Duration::from_secs(default)),
        }
    }
}

fn positive(name: &str, n: usize) -> Result<usize, SettingsError> {
    if n == 0 {
        return Err(bad(format!("{name} must be at least 1")));
    }
    Ok(n)
}

fn method(name: &str) -> Result<Method, SettingsError> {
    let m = match name {
        "INVITE" => Method::Invite,
        "MESSAGE" => Method::Message,
        "SUBSCRIBE" => Method::Subscribe,
        "REFER" => Method::Refer,
        "PUBLISH" => Method::Publish,
        "OPTIONS" => Method::Options,
        "NOTIFY" => Method::Notify,
        "INFO" => Method::Info,
        "UPDATE" => Method::Update,
        "BYE" => Method::Bye,
        _ => {
            return Err(bad(format!(
                "authenticate: {name:?} is not a method that can be challenged (INVITE, MESSAGE, \
                 SUBSCRIBE, REFER, PUBLISH, OPTIONS, NOTIFY, INFO, UPDATE, BYE)"
            )));
        }
    };
    Ok(m)
}

impl RegistrarSettings {
    /// Paths relative to the config file's directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        for path in [&mut self.users, &mut self.snapshot].into_iter().flatten() {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RegistrarSettings, SettingsError> {
        let file: FileRegistrar = toml::from_str(text).map_err(|e| SettingsError(e.to_string()))?;
        file.settings()
    }

    #[test]
    fn defaults_and_every_key() {
        let s = parse("domains = [\"Edge.Example\"]").unwrap();
        assert_eq!(s.config.domains, ["edge.example"]);
        assert_eq!(s.realm, "edge.example");
        assert_eq!(s.algorithms, [Algorithm::Md5]);
        assert!(s.config.authenticate_register && s.match_from_user);
        let s = parse(
            "domains = [\"a.example\", \"b.example\"]\nrealm = \"r\"\nusers = \"u\"\n\
             authenticate-register = false\nauthenticate = [\"INVITE\"]\n\
             algorithms = [\"SHA-256\", \"MD5\"]\nmatch-from-user = false\nnonce-lifetime = \"1m\"\n\
             nonce-keys = [\"2:0000000000000000000000000000000000000000000000000000000000000001\"]\n\
             min-expires = 30\nmax-expires = 600\ndefault-expires = 300\nmax-bindings = 3\n\
             capacity = 5\nunknown-user = 480\nsnapshot = \"b.json\"\nsnapshot-interval = \"10s\"\n\
             redis = \"redis://127.0.0.1:6379/\"\nnode = \"10.0.0.1:5060\"\npeers = [\"10.0.0.2:5060\"]\n\
             keepalive = \"options\"\nkeepalive-interval = \"2s\"\nkeepalive-dead-after = 2\n\
             keepalive-nat-only = false\n",
        )
        .unwrap();
        assert_eq!(s.algorithms, [Algorithm::Sha256, Algorithm::Md5]);
        assert_eq!(s.config.authenticate, [Method::Invite]);
        assert_eq!(s.nonce_keys[0].id, 2);
        assert_eq!(s.nonce_keys[0].secret[31], 1);
        assert_eq!(s.config.limits.max_bindings, 3);
        assert_eq!((s.config.capacity, s.config.unknown_user), (5, 480));
        assert_eq!(s.nonce_lifetime, Duration::from_secs(60));
        assert_eq!(s.node, Some("10.0.0.1:5060".parse().unwrap()));
        assert_eq!(s.peers, ["10.0.0.2:5060".parse().unwrap()]);
        let k = s.keepalive.unwrap();
        assert_eq!(
            (k.mode, k.dead_after, k.nat_only),
            (KeepaliveMode::Options, 2, false)
        );
        assert_eq!(k.interval, Duration::from_secs(2));
        let off = parse("domains = [\"d\"]\nkeepalive = \"off\"").unwrap();
        assert_eq!(off.keepalive, None);
        let default = parse("domains = [\"d\"]").unwrap();
        assert_eq!(default.keepalive, Some(KeepaliveConfig::default()));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, word) in [
            ("domains = []", "domains"),
            ("domains = [\"d\"]\nalgorithms = [\"SHA-1\"]", "SHA-1"),
            ("domains = [\"d\"]\nauthenticate = [\"ACK\"]", "ACK"),
            ("domains = [\"d\"]\nnonce-keys = [\"1:abc\"]", "nonce-keys"),
            ("domains = [\"d\"]\nmin-expires = 7201", "min-expires"),
            ("domains = [\"d\"]\nunknown-user = 500", "unknown-user"),
            (
                "domains = [\"d\"]\nnonce-lifetime = \"5\"",
                "nonce-lifetime",
            ),
            ("domains = [\"d\"]\nredis = \"redis://x/\"", "node"),
            ("domains = [\"d\"]\nnode = \"x\"", "node"),
            ("domains = [\"d\"]\npeers = [\"x\"]", "peers"),
            ("domains = [\"d\"]\nkeepalive = \"stun\"", "keepalive"),
            (
                "domains = [\"d\"]\nkeepalive-interval = \"0s\"",
                "keepalive-interval",
            ),
            ("domains = [\"d\"]\nkeepalive-dead-after = 0", "dead-after"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.0.contains(word), "{text}: {err}");
        }
    }
}
