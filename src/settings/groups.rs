//! The `[[group]]` tables (destination groups) and `route-to-group`.
//!
//! ```toml
//! route-to-group = "core"        # every request not following our Record-Route goes here
//!
//! [[group]]
//! name = "core"
//! algorithm = "hash"             # hash (default) | priority | weighted
//! key = "call-id"                # call-id (default) | from-user | to-user | ruri-user | source-ip
//! retry-after = 30               # seconds, on the 503 when every destination is down
//! destinations = [
//!   { uri = "sip:10.0.0.1:5060", weight = 1, priority = 0 },
//!   { uri = "sip:10.0.0.2:5060;transport=tcp", weight = 2 },
//! ]
//! [group.probe]
//! enabled = true
//! interval = "5s"                # between two probes of one destination
//! timeout = "2s"                 # unanswered this long: failed
//! down-after = 3                 # failed probes in a row
//! up-after = 2                   # answered probes in a row
//! alive-codes = [200]
//! ```

use std::net::IpAddr;

use serde::Deserialize;

use crate::groups::{Algorithm, DestinationConfig, GroupConfig, HashKey, ProbeConfig};

use super::{SettingsError, parse_duration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileGroup {
    name: String,
    algorithm: Option<String>,
    key: Option<String>,
    retry_after: Option<u32>,
    destinations: Vec<FileDestination>,
    probe: Option<FileProbe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileDestination {
    uri: String,
    weight: Option<u32>,
    priority: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileProbe {
    enabled: Option<bool>,
    interval: Option<String>,
    timeout: Option<String>,
    down_after: Option<u32>,
    up_after: Option<u32>,
    alive_codes: Option<Vec<u16>>,
}

impl FileGroup {
    /// The group, with host names looked up in `hosts` (the `[hosts]` table).
    pub(super) fn config(&self, hosts: &[(String, IpAddr)]) -> Result<GroupConfig, SettingsError> {
        let err = |e: crate::groups::GroupError| SettingsError(format!("group {}: {e}", self.name));
        let lookup = |name: &str| hosts.iter().find(|(n, _)| n == name).map(|(_, ip)| *ip);
        let destinations = self
            .destinations
            .iter()
            .map(|d| {
                let weight = d.weight.unwrap_or(1);
                DestinationConfig::parse(&d.uri, weight, d.priority.unwrap_or(0), lookup)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let mut group = GroupConfig::new(&self.name, destinations);
        if let Some(a) = &self.algorithm {
            group.algorithm = Algorithm::parse(a).map_err(err)?;
        }
        if let Some(k) = &self.key {
            group.key = HashKey::parse(k).map_err(err)?;
        }
        group.retry_after = self.retry_after.unwrap_or(group.retry_after);
        if let Some(p) = &self.probe {
            p.apply(&mut group.probe)?;
        }
        group.validate().map_err(|e| SettingsError(e.to_string()))?;
        Ok(group)
    }
}

impl FileProbe {
    fn apply(&self, probe: &mut ProbeConfig) -> Result<(), SettingsError> {
        probe.enabled = self.enabled.unwrap_or(probe.enabled);
        if let Some(i) = &self.interval {
            probe.interval = parse_duration(i)?;
        }
        if let Some(t) = &self.timeout {
            probe.timeout = parse_duration(t)?;
        }
        probe.down_after = self.down_after.unwrap_or(probe.down_after);
        probe.up_after = self.up_after.unwrap_or(probe.up_after);
        if let Some(codes) = &self.alive_codes {
            probe.alive_codes = codes.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::settings::Settings;

    use super::*;

    #[test]
    fn the_worked_example_parses() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/groups/core-farm.toml"
        ))
        .unwrap();
        let s = Settings::from_toml(&text).unwrap();
        assert_eq!(s.route_to_group.as_deref(), Some("core"));
        let g = &s.groups[0];
        assert_eq!(
            (g.name.as_str(), g.algorithm, g.key),
            ("core", Algorithm::Hash, HashKey::CallId)
        );
        let weights: Vec<(u16, u32)> = g
            .destinations
            .iter()
            .map(|d| (d.addr.port(), d.weight))
            .collect();
        assert_eq!(weights, [(5071, 1), (5072, 1), (5073, 2)]);
        assert_eq!(g.probe.interval, Duration::from_secs(1));
        assert_eq!(g.probe.timeout, Duration::from_millis(900));
        assert_eq!((g.probe.down_after, g.probe.up_after), (2, 1));
        assert_eq!(g.probe.alive_codes, [200]);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                "[[group]]\nname = \"a\"\ndestinations = []\n",
                "1 to 64 destinations",
            ),
            (
                "[[group]]\nname = \"a\"\nalgorithm = \"random\"\ndestinations = [{ uri = \"sip:1.2.3.4\" }]\n",
                "algorithm",
            ),
            (
                // A name outside [hosts] needs DNS.
                "[dns]\nenabled = false\n[[group]]\nname = \"a\"\ndestinations = [{ uri = \"sip:core\" }]\n",
                "[hosts]",
            ),
            (
                "[[group]]\nname = \"a\"\ndestinations = [{ uri = \"sip:1.2.3.4\" }]\n[group.probe]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
                "timeout",
            ),
            (
                "route-to-group = \"b\"\n[[group]]\nname = \"a\"\ndestinations = [{ uri = \"sip:1.2.3.4\" }]\n",
                "no group",
            ),
            (
                "[[group]]\nname = \"a\"\ndestinations = [{ uri = \"sip:1.2.3.4\" }]\n[[group]]\nname = \"a\"\ndestinations = [{ uri = \"sip:1.2.3.5\" }]\n",
                "twice",
            ),
        ];
        for (text, want) in cases {
            let err = Settings::from_toml(text).unwrap_err().0;
            assert!(err.contains(want), "{text}: {err}");
        }
        let text = "[hosts]\ncore = \"10.1.1.1\"\n[[group]]\nname = \"a\"\nalgorithm = \"priority\"\n\
key = \"from-user\"\ndestinations = [{ uri = \"sip:core:5080\", priority = 2 }]\n";
        let s = Settings::from_toml(text).unwrap();
        assert_eq!(
            s.groups[0].destinations[0].addr,
            "10.1.1.1:5080".parse().unwrap()
        );
        assert_eq!(s.groups[0].destinations[0].priority, 2);
    }
}
