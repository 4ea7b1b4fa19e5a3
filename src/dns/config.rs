//! The resolver's settings (`[dns]`) and the servers of `/etc/resolv.conf`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How the resolver asks and how long the cache keeps answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// The servers asked, in turn; empty: those of `/etc/resolv.conf` (127.0.0.1:53 when it
    /// names none, as the C library does).
    pub servers: Vec<SocketAddr>,
    /// How long one attempt waits for its reply.
    pub timeout: Duration,
    /// Attempts per question and server (a question goes to each server in turn).
    pub attempts: u32,
    /// Entries the cache holds at most.
    pub cache_size: usize,
    /// The longest a positive answer is kept, whatever its TTL.
    pub max_ttl: Duration,
    /// The longest a negative answer is kept (RFC 2308 §5 suggests 1 to 3 hours at most).
    pub max_negative_ttl: Duration,
    /// How long an expired answer is served again when the servers fail (RFC 8767 §4
    /// suggests 30 s); zero: never.
    pub stale_ttl: Duration,
    /// Ask a host's AAAA records before its A records (A only when it has no AAAA). Set by
    /// the service when every listener is IPv6: an IPv4 address is of no use to such a proxy.
    pub ipv6_first: bool,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig {
            servers: Vec::new(),
            timeout: Duration::from_secs(1),
            attempts: 2,
            cache_size: 10_000,
            max_ttl: Duration::from_secs(86_400),
            max_negative_ttl: Duration::from_secs(3_600),
            stale_ttl: Duration::from_secs(30),
            ipv6_first: false,
        }
    }
}

impl DnsConfig {
    /// The servers to ask: the configured ones, else `/etc/resolv.conf`'s.
    pub fn effective_servers(&self) -> Vec<SocketAddr> {
        if !self.servers.is_empty() {
            return self.servers.clone();
        }
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let found = resolv_conf_servers(&text);
        if found.is_empty() {
            vec![SocketAddr::from(([127, 0, 0, 1], 53))]
        } else {
            found
        }
    }
}

/// The `nameserver` lines of a resolv.conf(5), port 53, at most three (MAXNS); link-local
/// IPv6 addresses with a zone (`fe80::1%eth0`) are skipped.
pub fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .take(3)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_from_resolv_conf() {
        let text = "# comment\nsearch example.net\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver fe80::1%eth0\noptions ndots:2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n";
        let servers = resolv_conf_servers(text);
        assert_eq!(
            servers,
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "10.0.0.3:53".parse().unwrap()
            ]
        );
        assert!(resolv_conf_servers("").is_empty());
    }

    #[test]
    fn configured_servers_win() {
        let config = DnsConfig {
            servers: vec!["127.0.0.1:5353".parse().unwrap()],
            ..DnsConfig::default()
        };
        assert_eq!(config.effective_servers(), config.servers);
        assert!(!DnsConfig::default().effective_servers().is_empty());
    }
}
