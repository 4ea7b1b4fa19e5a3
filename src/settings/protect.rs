//! The `[protect]` settings: per-source rate limits, bans, scanner patterns, the allowlist and
//! per-listener access lists. See `docs/PROTECTION.md`.
//!
//! ```toml
//! [protect]
//! allow = ["10.0.0.0/8"]                 # never limited or banned (the core, peers)
//! scanners = ["friendly-scanner", "sipvicious", "sipcli"]   # User-Agent, any case
//! scanners-from = ["sipvicious"]        # From (display name or URI), any case
//! ban-scanners = false
//! over-limit = "drop"                   # or "503"
//! retry-after = "5s"                    # with over-limit = "503"
//! sources = 65536                       # sources tracked at once (64 bytes each)
//! max-bans = 4096
//!
//! [protect.limit]                       # per source (IPv6: per /64), whole process
//! requests-per-second = 1000
//! burst = 2000
//! register = { requests-per-second = 20, burst = 40 }   # per method class, optional
//! invite = { requests-per-second = 100, burst = 200 }
//! other = { requests-per-second = 500, burst = 1000 }
//!
//! [protect.ban]
//! after = "1s"                          # over the limit this long in a row
//! time = "60s"                          # doubled for each recent earlier ban ...
//! max-time = "1h"                       # ... up to this
//!
//! [[protect.access]]                    # one per list; `listen` optional (all listeners)
//! listen = "udp:0.0.0.0:5060"
//! allow = ["192.0.2.0/24"]
//! deny = ["192.0.2.66"]
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{ListenAddr, SettingsError, parse_duration};
use crate::protect::ScannerField;
use crate::protect::{AccessList, CidrSet, Limit, ListenerMatch, OverLimit, ProtectConfig};

/// `[protect]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileProtect {
    allow: Option<Vec<String>>,
    scanners: Option<Vec<String>>,
    scanners_from: Option<Vec<String>>,
    ban_scanners: Option<bool>,
    over_limit: Option<String>,
    retry_after: Option<String>,
    sources: Option<usize>,
    max_bans: Option<usize>,
    limit: Option<FileLimits>,
    ban: Option<FileBan>,
    access: Option<Vec<FileAccess>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileLimits {
    requests_per_second: Option<u32>,
    burst: Option<u32>,
    register: Option<FileLimit>,
    invite: Option<FileLimit>,
    other: Option<FileLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileLimit {
    requests_per_second: u32,
    burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileBan {
    after: Option<String>,
    time: Option<String>,
    max_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAccess {
    listen: Option<String>,
    allow: Option<Vec<String>>,
    deny: Option<Vec<String>>,
}

fn bad(what: String) -> SettingsError {
    SettingsError(format!("protect.{what}"))
}

fn cidrs(key: &str, list: &Option<Vec<String>>) -> Result<CidrSet, SettingsError> {
    CidrSet::parse(list.as_deref().unwrap_or_default()).map_err(|e| bad(format!("{key}: {e}")))
}

/// A limit: `per_second` at least 1, the burst (default: one second's worth) at least 1.
fn limit(key: &str, per_second: u32, burst: Option<u32>) -> Result<Limit, SettingsError> {
    if per_second == 0 || burst == Some(0) {
        return Err(bad(format!(
            "{key}: requests-per-second and burst must be at least 1"
        )));
    }
    Ok(Limit {
        per_second,
        burst: burst.unwrap_or(per_second),
    })
}

impl FileProtect {
    pub(super) fn settings(&self) -> Result<ProtectConfig, SettingsError> {
        let mut config = ProtectConfig {
            allow: cidrs("allow", &self.allow)?,
            ban_scanners: self.ban_scanners.unwrap_or(false),
            ..ProtectConfig::default()
        };
        let agents = self
            .scanners
            .iter()
            .flatten()
            .map(|p| (ScannerField::UserAgent, p));
        let froms = self
            .scanners_from
            .iter()
            .flatten()
            .map(|p| (ScannerField::From, p));
        config.scanners = agents.chain(froms).map(|(f, p)| (f, p.clone())).collect();
        config.over_limit = self.over_limit()?;
        if let Some(n) = self.sources {
            config.sources = n;
        }
        if let Some(n) = self.max_bans {
            config.max_bans = n;
        }
        if let Some(limits) = &self.limit {
            config.limits = limits.classes()?;
        }
        if let Some(ban) = &self.ban {
            ban.apply(&mut config)?;
        }
        for (i, access) in self.access.iter().flatten().enumerate() {
            config.access.push(access.list(i)?);
        }
        validate(&config)?;
        Ok(config)
    }

    fn over_limit(&self) -> Result<OverLimit, SettingsError> {
        let retry_after = match &self.retry_after {
            Some(t) => parse_duration(t)?,
            None => Duration::from_secs(5),
        };
        match self.over_limit.as_deref() {
            None | Some("drop") => Ok(OverLimit::Drop),
            Some("503") => Ok(OverLimit::Reply { retry_after }),
            Some(other) => Err(bad(format!(
                "over-limit {other:?}: expected \"drop\" or \"503\""
            ))),
        }
    }
}

impl FileLimits {
    /// REGISTER, INVITE, other: each its own limit, else the common one, else none.
    fn classes(&self) -> Result<[Option<Limit>; 3], SettingsError> {
        let common = match self.requests_per_second {
            Some(rate) => Some(limit("limit", rate, self.burst)?),
            None if self.burst.is_some() => {
                return Err(bad("limit: burst without requests-per-second".into()));
            }
            None => None,
        };
        let class = |key: &str, own: &Option<FileLimit>| match own {
            Some(l) => limit(&format!("limit.{key}"), l.requests_per_second, l.burst).map(Some),
            None => Ok(common),
        };
        Ok([
            class("register", &self.register)?,
            class("invite", &self.invite)?,
            class("other", &self.other)?,
        ])
    }
}

impl FileBan {
    fn apply(&self, config: &mut ProtectConfig) -> Result<(), SettingsError> {
        if let Some(after) = &self.after {
            config.ban_after = Some(parse_duration(after)?);
        }
        if let Some(time) = &self.time {
            config.ban_time = parse_duration(time)?;
        }
        config.ban_max_time = match &self.max_time {
            Some(t) => parse_duration(t)?,
            None => config.ban_max_time.max(config.ban_time),
        };
        Ok(())
    }
}

impl FileAccess {
    fn list(&self, i: usize) -> Result<AccessList, SettingsError> {
        let listener = match &self.listen {
            Some(text) => {
                let l: ListenAddr = text.parse()?;
                Some(ListenerMatch {
                    transport: l.transport,
                    addr: l.addr,
                })
            }
            None => None,
        };
        Ok(AccessList {
            listener,
            allow: cidrs(&format!("access[{i}].allow"), &self.allow)?,
            deny: cidrs(&format!("access[{i}].deny"), &self.deny)?,
        })
    }
}

fn validate(config: &ProtectConfig) -> Result<(), SettingsError> {
    if !(64..=1 << 24).contains(&config.sources) {
        return Err(bad("sources must be between 64 and 16777216".into()));
    }
    if !(16..=1 << 20).contains(&config.max_bans) {
        return Err(bad("max-bans must be between 16 and 1048576".into()));
    }
    if config.ban_time.is_zero() || config.ban_max_time < config.ban_time {
        return Err(bad(
            "ban.time must be longer than zero and ban.max-time at least ban.time".into(),
        ));
    }
    if config.ban_after.is_some() && config.limits.iter().all(Option::is_none) {
        return Err(bad("ban.after needs a [protect.limit] to be over".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProtectConfig, SettingsError> {
        let file: FileProtect = toml::from_str(text).map_err(|e| SettingsError(e.to_string()))?;
        file.settings()
    }

    #[test]
    fn the_worked_example_reads_as_meant() {
        let text = std::fs::read_to_string("examples/protection/edge.toml").unwrap();
        let s = super::super::Settings::from_toml(&text).unwrap();
        let p = s.protect.unwrap();
        let limit = Limit {
            per_second: 1000,
            burst: 2000,
        };
        assert_eq!(p.limits, [Some(limit); 3]);
        assert_eq!(p.ban_after, Some(Duration::from_secs(1)));
        assert_eq!(p.ban_time, Duration::from_secs(60));
        assert!(p.allow.contains("127.0.0.9".parse().unwrap()));
        assert!(!p.allow.contains("127.0.0.1".parse().unwrap()));
        assert_eq!(p.scanners.len(), 2);
        assert_eq!(p.over_limit, OverLimit::Drop);
        assert_eq!(s.route_all_to.unwrap().port, Some(5070));
    }

    #[test]
    fn classes_override_the_common_limit() {
        let p = parse(
            "[limit]\nrequests-per-second = 100\nregister = { requests-per-second = 5 }\n\
             [ban]\nafter = \"2s\"\ntime = \"10m\"\n[[access]]\nlisten = \"udp:0.0.0.0:5060\"\n\
             deny = [\"192.0.2.0/24\"]\n",
        )
        .unwrap();
        let l = |per_second, burst| Some(Limit { per_second, burst });
        assert_eq!(p.limits, [l(5, 5), l(100, 100), l(100, 100)]);
        assert_eq!(p.ban_time, Duration::from_secs(600));
        assert_eq!(p.ban_max_time, Duration::from_secs(3600));
        assert_eq!(p.access.len(), 1);
        assert!(!p.access[0].permits("192.0.2.1".parse().unwrap()));
        let p = parse("over-limit = \"503\"\nretry-after = \"30s\"\n").unwrap();
        let retry_after = Duration::from_secs(30);
        assert_eq!(p.over_limit, OverLimit::Reply { retry_after });
        assert_eq!(p.limits, [None; 3]);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("allow = [\"10.0.0.0/99\"]", "protect.allow"),
            ("over-limit = \"reject\"", "over-limit"),
            ("[limit]\nrequests-per-second = 0", "at least 1"),
            ("[limit]\nburst = 10", "burst without"),
            ("[ban]\nafter = \"1s\"", "needs a [protect.limit]"),
            ("sources = 1", "sources"),
            ("[[access]]\nlisten = \"x\"", "listen address"),
            ("[[access]]\ndeny = [\"nope\"]", "access[0].deny"),
            ("bogus = 1", "unknown field"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
