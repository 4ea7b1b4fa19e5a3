//! Who this proxy is: the core's [`ProxyConfig`] built from the settings and the addresses the
//! sockets actually bound (ports of 0 resolved), the address to advertise when bound to a
//! wildcard, the names it answers to, and a fresh branch secret.

use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use log::{info, warn};

use super::sys;
use std::sync::Arc;
use std::time::Instant;

use crate::contact::{ContactTable, ContactTableConfig, NodeId, TokenKey};
use crate::groups::{GroupError, Groups};
use crate::protect::Protection;
use crate::proxy::{ContactRewrite, Host, HostPort, Listener, MAX_RESTORED_URI, ProxyConfig};
use crate::settings::Settings;

/// The core's configuration for listeners `settings.listen` bound at `bound` (same order).
pub fn proxy_config(settings: &Settings, bound: &[SocketAddr]) -> ProxyConfig {
    let listeners = settings
        .listen
        .iter()
        .zip(bound)
        .map(|(listen, &addr)| Listener {
            transport: listen.transport,
            addr,
            advertise: advertise(
                settings.advertise.as_ref(),
                addr,
                &format!("{}:", listen.transport.uri_param()),
            ),
        })
        .collect();
    let branch = branch_secret();
    ProxyConfig {
        listeners,
        aliases: aliases(settings, bound),
        record_route: settings.record_route,
        add_path: settings.add_path,
        path_secret: settings.path_secret.unwrap_or(branch),
        next_hop: settings.next_hop.clone(),
        route_all_to: settings.route_all_to.clone(),
        hosts: settings.hosts.clone(),
        max_stream_message: settings.tcp.max_message,
        parking: settings.parking,
        route_to_group: settings.route_to_group.as_ref().and_then(|name| {
            let i = settings.groups.iter().position(|g| &g.name == name)?;
            Some(crate::groups::GroupId(u16::try_from(i).ok()?))
        }),
        contact: settings
            .rewrite_contact
            .as_ref()
            .map(|wanted| ContactRewrite {
                requests: wanted.requests,
                responses: wanted.responses,
            }),
        ..ProxyConfig::new(placeholder_listener(), branch)
    }
}

/// Edge protection as the settings configure it, shared by every worker (and the stats); its
/// tables' hashes are keyed with a random seed.
pub fn protection(settings: &Settings) -> Option<Arc<Protection>> {
    let config = settings.protect.as_ref()?;
    let seed = u64::from_le_bytes(branch_secret()[..8].try_into().unwrap_or_default());
    Some(Arc::new(Protection::new(config, seed)))
}

/// The contact-rewrite table the settings ask for, shared by every worker (and the stats).
/// The destination groups' shared table, when groups are configured (the settings checked
/// them; a random probe key per start).
pub fn destination_groups(settings: &Settings) -> Result<Option<Arc<Groups>>, GroupError> {
    if settings.groups.is_empty() {
        return Ok(None);
    }
    let groups = Groups::new(settings.groups.clone(), branch_secret(), Instant::now())?;
    // One counter lane per worker.
    Ok(Some(Arc::new(groups.with_lanes(settings.workers))))
}

pub fn contact_table(settings: &Settings) -> Option<Arc<ContactTable>> {
    let wanted = settings.rewrite_contact.as_ref()?;
    let key = TokenKey::new(wanted.secret.unwrap_or_else(branch_secret));
    let first = branch_secret();
    // Random per start: a token from an earlier run cannot name an entry of this one.
    let first_entry = u64::from_le_bytes([
        first[0], first[1], first[2], first[3], first[4], first[5], first[6], 0,
    ]);
    let mut config = ContactTableConfig::new(key, first_entry);
    config.node = NodeId(wanted.node);
    config.capacity = wanted.capacity;
    config.idle_timeout = wanted.idle_timeout;
    config.max_expires = wanted.max_expires;
    config.max_uri_len = config.max_uri_len.min(MAX_RESTORED_URI);
    Some(Arc::new(ContactTable::new(config, Instant::now())))
}

fn placeholder_listener() -> Listener {
    Listener {
        transport: crate::proxy::Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise: None,
    }
}

/// What to write in Via / Record-Route for a listener bound at `addr`: the operator's
/// `--advertise` (with the bound port when it names none), else, for a wildcard bind, the
/// address this host would send from.
/// `what` names the listener's transport in the log line (`udp:`).
fn advertise(configured: Option<&HostPort>, addr: SocketAddr, what: &str) -> Option<HostPort> {
    if let Some(hp) = configured {
        return Some(HostPort {
            host: hp.host.clone(),
            port: hp.port.or(Some(addr.port())),
        });
    }
    if !addr.ip().is_unspecified() {
        return None;
    }
    let ip = outbound_ip(addr.ip());
    info!("{what}{addr} is a wildcard bind: advertising {ip} (set --advertise to choose)");
    Some(HostPort {
        host: Host::Ip(ip),
        port: Some(addr.port()),
    })
}

/// The source address the kernel would pick toward a documentation address (no packet is
/// sent: connecting a UDP socket only looks up the route); loopback when there is no route.
fn outbound_ip(family: IpAddr) -> IpAddr {
    let (any, probe, fallback): (SocketAddr, SocketAddr, IpAddr) = match family {
        IpAddr::V4(_) => (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            (Ipv4Addr::new(192, 0, 2, 1), 5060).into(),
            Ipv4Addr::LOCALHOST.into(),
        ),
        IpAddr::V6(_) => (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 5060).into(),
            Ipv6Addr::LOCALHOST.into(),
        ),
    };
    let chosen = UdpSocket::bind(any)
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .map(|a| a.ip());
    match chosen {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => fallback,
    }
}

/// The configured aliases, plus every interface address (with the port) of a wildcard
/// listener, so the proxy knows itself in Route and Request-URI.
fn aliases(settings: &Settings, bound: &[SocketAddr]) -> Vec<HostPort> {
    let mut aliases = settings.aliases.clone();
    let wildcards: Vec<&SocketAddr> = bound.iter().filter(|a| a.ip().is_unspecified()).collect();
    if wildcards.is_empty() {
        return aliases;
    }
    let interfaces = sys::interface_addrs().unwrap_or_else(|e| {
        warn!("cannot list interface addresses ({e}); only loopback is known as this proxy");
        vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
    });
    for addr in wildcards {
        for ip in interfaces
            .iter()
            .filter(|ip| ip.is_ipv4() == addr.is_ipv4())
        {
            let alias = HostPort {
                host: Host::Ip(*ip),
                port: Some(addr.port()),
            };
            if !aliases.contains(&alias) {
                aliases.push(alias);
            }
        }
    }
    aliases
}

/// 16 random bytes keying the stateless branch hash: from the OS, else hashed entropy.
pub fn branch_secret() -> [u8; 16] {
    let mut secret = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut secret));
    if from_os.is_err() {
        let state = std::collections::hash_map::RandomState::new();
        for (i, chunk) in secret.chunks_mut(8).enumerate() {
            let mut hasher = state.build_hasher();
            hasher.write_usize(i);
            hasher.write_u128(sys::realtime_ns().into());
            hasher.write_u32(std::process::id());
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ListenAddr;

    #[test]
    fn a_specific_bind_advertises_nothing_extra() {
        let settings = Settings {
            listen: vec![ListenAddr::udp("127.0.0.1:0".parse().unwrap())],
            ..Settings::default()
        };
        let bound = ["127.0.0.1:40000".parse().unwrap()];
        let config = proxy_config(&settings, &bound);
        assert_eq!(config.listeners.len(), 1);
        assert_eq!(config.listeners[0].addr, bound[0]);
        assert_eq!(config.listeners[0].advertise, None);
        assert!(config.aliases.is_empty());
    }

    #[test]
    fn advertise_takes_the_bound_port_when_it_names_none() {
        let hp = HostPort::parse("sip.example.net").unwrap();
        let got = advertise(Some(&hp), "0.0.0.0:5080".parse().unwrap(), "udp:").unwrap();
        assert_eq!(got.to_string(), "sip.example.net:5080");
        let hp = HostPort::parse("192.0.2.7:5999").unwrap();
        let got = advertise(Some(&hp), "0.0.0.0:5080".parse().unwrap(), "udp:").unwrap();
        assert_eq!(got.to_string(), "192.0.2.7:5999");
    }

    #[test]
    fn a_wildcard_bind_advertises_a_real_address_and_knows_loopback() {
        let settings = Settings::default();
        let bound = ["0.0.0.0:5060".parse().unwrap()];
        let config = proxy_config(&settings, &bound);
        let advertised = config.listeners[0].advertise.clone().unwrap();
        assert!(matches!(advertised.host, Host::Ip(ip) if !ip.is_unspecified()));
        assert_eq!(advertised.port, Some(5060));
        assert!(
            config
                .aliases
                .contains(&HostPort::parse("127.0.0.1:5060").unwrap())
        );
    }

    #[test]
    fn branch_secrets_differ() {
        assert_ne!(branch_secret(), branch_secret());
    }
}
