//! `[dns]`: the resolver of next hops named by host (RFC 3263).
//!
//! ```toml
//! [dns]
//! enabled = true                  # false: names outside [hosts] get 503 at once
//! servers = ["127.0.0.1:5353"]    # default: the nameservers of /etc/resolv.conf, port 53
//! timeout = "1s"                  # one attempt
//! attempts = 2                    # per question and server
//! cache-size = 10000              # entries
//! max-ttl = "24h"                 # positive answers kept at most this long
//! max-negative-ttl = "1h"         # negative answers (RFC 2308) at most this long
//! stale-ttl = "30s"               # an expired answer served again while servers fail (0s: never)
//! ```

use std::net::SocketAddr;

use serde::Deserialize;

use super::{SettingsError, parse_duration};
use crate::dns::DnsConfig;

/// The resolver's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// Whether the service wires a resolver (on by default).
    pub enabled: bool,
    pub config: DnsConfig,
}

impl Default for DnsSettings {
    fn default() -> DnsSettings {
        DnsSettings {
            enabled: true,
            config: DnsConfig::default(),
        }
    }
}

/// The `[dns]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileDns {
    enabled: Option<bool>,
    servers: Option<Vec<String>>,
    timeout: Option<String>,
    attempts: Option<u32>,
    cache_size: Option<usize>,
    max_ttl: Option<String>,
    max_negative_ttl: Option<String>,
    stale_ttl: Option<String>,
}

impl FileDns {
    pub(super) fn apply(&self, dns: &mut DnsSettings) -> Result<(), SettingsError> {
        let c = &mut dns.config;
        if let Some(enabled) = self.enabled {
            dns.enabled = enabled;
        }
        if let Some(servers) = &self.servers {
            c.servers = servers
                .iter()
                .map(|s| server(s))
                .collect::<Result<_, _>>()?;
        }
        let durations = [
            (&self.timeout, &mut c.timeout),
            (&self.max_ttl, &mut c.max_ttl),
            (&self.max_negative_ttl, &mut c.max_negative_ttl),
            (&self.stale_ttl, &mut c.stale_ttl),
        ];
        for (text, to) in durations {
            if let Some(text) = text {
                *to = parse_duration(text)?;
            }
        }
        if let Some(attempts) = self.attempts {
            c.attempts = attempts;
        }
        if let Some(size) = self.cache_size {
            c.cache_size = size;
        }
        if c.timeout.is_zero() || c.attempts == 0 || c.cache_size == 0 {
            return Err(SettingsError(
                "dns.timeout, dns.attempts and dns.cache-size must be above zero".into(),
            ));
        }
        Ok(())
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, or an IP alone (port 53).
fn server(text: &str) -> Result<SocketAddr, SettingsError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| SettingsError(format!("dns.servers: {text:?} is not IP[:PORT]")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::settings::Settings;

    #[test]
    fn dns_settings_from_the_file() {
        let s = Settings::from_toml(
            "[dns]\nservers = [\"127.0.0.1:5353\", \"::1\"]\ntimeout = \"300ms\"\nattempts = 3\nstale-ttl = \"0s\"\n",
        )
        .unwrap();
        assert!(s.dns.enabled);
        assert_eq!(
            s.dns.config.servers,
            vec![
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(s.dns.config.timeout, Duration::from_millis(300));
        assert_eq!(s.dns.config.attempts, 3);
        assert!(s.dns.config.stale_ttl.is_zero());
        assert!(
            !Settings::from_toml("[dns]\nenabled = false\n")
                .unwrap()
                .dns
                .enabled
        );
        assert!(Settings::from_toml("[dns]\nservers = [\"nowhere\"]\n").is_err());
        assert!(Settings::from_toml("[dns]\nattempts = 0\n").is_err());
        assert!(Settings::from_toml("[dns]\nport = 1\n").is_err());
    }
}
