//! The operator's settings: defaults, a TOML file, then command-line flags, in that order.
//!
//! [`Settings`] is what the runtime starts from. [`Settings::load`] reads `--config FILE` when
//! given (unknown keys are an error naming the key), then lets every flag that was given
//! override the file. Every value is parsed by the same function whether it came from a flag
//! or from the file, so both report the same message for the same mistake.

mod dns;
mod groups;
mod media;
mod overrides;
mod parking;
mod protect;
mod registrar;
mod secure;
mod tcp;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use log::LevelFilter;
use serde::Deserialize;

use crate::contact::ContactTableConfig;
use crate::protect::ProtectConfig;
use crate::proxy::{HostPort, NextHop, ParkingLimits, Transport};

pub use dns::DnsSettings;
pub use overrides::Overrides;
pub use registrar::RegistrarSettings;
pub use secure::{TlsSettings, TlsVersion, WebSocketSettings};
pub use tcp::{MAX_CONNECTIONS_PER_WORKER, TcpOptions, parse_duration};

/// One address to receive SIP on, written `udp:IP:PORT`, `tcp:`, `tls:`, `ws:` or `wss:`
/// (IPv6 in brackets: `udp:[::1]:5060`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl ListenAddr {
    /// A UDP listener on `addr`.
    pub fn udp(addr: SocketAddr) -> ListenAddr {
        ListenAddr {
            transport: Transport::Udp,
            addr,
        }
    }

    /// A TCP listener on `addr`.
    pub fn tcp(addr: SocketAddr) -> ListenAddr {
        ListenAddr {
            transport: Transport::Tcp,
            addr,
        }
    }
}

impl FromStr for ListenAddr {
    type Err = SettingsError;

    fn from_str(text: &str) -> Result<ListenAddr, SettingsError> {
        let bad = |why: &str| SettingsError(format!("listen address {text:?}: {why}"));
        let (scheme, rest) = text.split_once(':').ok_or_else(|| {
            bad("expected udp:IP:PORT (or tcp:, tls:, ws:, wss:), e.g. tls:[::1]:5061")
        })?;
        let transport = Transport::from_token(scheme.as_bytes()).ok_or_else(|| {
            bad("expected udp:IP:PORT (the transport must be udp, tcp, tls, ws or wss)")
        })?;
        let addr = rest.parse().map_err(|_| {
            bad("expected IP:PORT after the transport, IPv6 in brackets ([::1]:5060)")
        })?;
        Ok(ListenAddr { transport, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.uri_param(), self.addr)
    }
}

/// Where the metrics HTTP endpoint listens, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metrics {
    Off,
    On(SocketAddr),
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::On(SocketAddr::from(([127, 0, 0, 1], 9090)))
    }
}

impl FromStr for Metrics {
    type Err = SettingsError;

    fn from_str(text: &str) -> Result<Metrics, SettingsError> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Metrics::Off);
        }
        text.parse().map(Metrics::On).map_err(|_| {
            SettingsError(format!(
                "metrics {text:?}: expected IP:PORT (127.0.0.1:9090) or off"
            ))
        })
    }
}

/// Socket tuning: kernel buffer sizes and how many datagrams one system call moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// Requested `SO_RCVBUF` in bytes (the kernel may grant less; the grant is logged).
    pub recv_buffer: usize,
    /// Requested `SO_SNDBUF` in bytes.
    pub send_buffer: usize,
    /// Datagrams per `recvmmsg` / `sendmmsg` call (1..=1024).
    pub batch: usize,
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            recv_buffer: 8 << 20,
            send_buffer: 8 << 20,
            batch: 32,
        }
    }
}

/// Contact rewriting (`--rewrite-contact`, or `[rewrite-contact]` in the config file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactSettings {
    /// Rewrite the Contact of forwarded requests.
    pub requests: bool,
    /// Rewrite the Contact of forwarded 101–299 responses.
    pub responses: bool,
    /// Most contacts held; beyond it a request is refused with 503, counted.
    pub capacity: usize,
    /// How long a dialog contact lives unused.
    pub idle_timeout: Duration,
    /// The longest a REGISTER's expires may keep a contact.
    pub max_expires: Duration,
    /// The token key (16 bytes): set it so tokens survive a restart and instances behind one
    /// address accept each other's; random at start otherwise.
    pub secret: Option<[u8; 16]>,
    /// This instance's number among those sharing the key.
    pub node: u8,
}

impl Default for ContactSettings {
    /// Both directions, and the table's own defaults (one set, in `contact`).
    fn default() -> ContactSettings {
        ContactSettings {
            requests: true,
            responses: true,
            capacity: ContactTableConfig::DEFAULT_CAPACITY,
            idle_timeout: ContactTableConfig::DEFAULT_IDLE_TIMEOUT,
            max_expires: ContactTableConfig::DEFAULT_MAX_EXPIRES,
            secret: None,
            node: 0,
        }
    }
}

/// Everything the process is started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub listen: Vec<ListenAddr>,
    /// Written in Via / Record-Route instead of the bound address.
    pub advertise: Option<HostPort>,
    pub workers: usize,
    pub record_route: bool,
    /// Add a Path header naming this proxy to the REGISTER requests it forwards (RFC 3327).
    pub add_path: bool,
    /// The key sealing the flow tokens in our Path (`path-secret`): random per start when
    /// absent, so that a restart orphans the Paths a registrar stored.
    pub path_secret: Option<[u8; 16]>,
    pub next_hop: Option<NextHop>,
    pub metrics: Metrics,
    pub log_level: LevelFilter,
    /// Other names this proxy answers to in Route and Request-URI.
    pub aliases: Vec<HostPort>,
    /// Static host name → address table.
    pub hosts: Vec<(String, IpAddr)>,
    pub socket: SocketOptions,
    /// Limits and timeouts of TCP connections (`[tcp]`).
    pub tcp: TcpOptions,
    /// Where to write the latency percentile distribution (HdrHistogram `.hgrm`) at exit.
    pub hgrm: Option<PathBuf>,
    /// Contact rewriting, when enabled.
    pub rewrite_contact: Option<ContactSettings>,
    /// Certificates and peers' verification for `tls:` / `wss:` and outbound TLS (`[tls]`).
    pub tls: TlsSettings,
    /// The HTTP upgrade of `ws:` / `wss:` listeners (`[websocket]`).
    pub websocket: WebSocketSettings,
    /// The registrar and digest authentication (`[registrar]`), when enabled.
    pub registrar: Option<RegistrarSettings>,
    /// Destination groups (`[[group]]`).
    pub groups: Vec<crate::groups::GroupConfig>,
    /// The group every request not following our Record-Route goes to (`route-to-group`).
    pub route_to_group: Option<String>,
    /// What each worker may hold of messages waiting for a side service's answer.
    pub parking: ParkingLimits,
    /// The config file, read again for the routing policy (`[policy]`, `[sets]`,
    /// `[[route]]`; see `crate::policy`) at start and on every reload.
    pub config_file: Option<PathBuf>,
    /// Where every request goes, whatever it is addressed to (`route-all-to`).
    pub route_all_to: Option<NextHop>,
    /// Edge protection (`[protect]`), when configured.
    pub protect: Option<ProtectConfig>,
    /// The resolver of next hops named by host (`[dns]`, RFC 3263).
    pub dns: dns::DnsSettings,
    /// Media anchoring through rtpengine (`[media]`), when configured.
    pub media: Option<crate::media::MediaConfig>,
}

impl Default for Settings {
    /// UDP on 0.0.0.0:5060, one worker per available core, routing by Route / Request-URI.
    fn default() -> Settings {
        Settings {
            listen: vec![ListenAddr::udp(SocketAddr::from(([0, 0, 0, 0], 5060)))],
            advertise: None,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            record_route: false,
            add_path: true,
            path_secret: None,
            next_hop: None,
            metrics: Metrics::default(),
            log_level: LevelFilter::Info,
            aliases: Vec::new(),
            hosts: Vec::new(),
            socket: SocketOptions::default(),
            tcp: TcpOptions::default(),
            hgrm: None,
            rewrite_contact: None,
            tls: TlsSettings::default(),
            websocket: WebSocketSettings::default(),
            registrar: None,
            groups: Vec::new(),
            route_to_group: None,
            parking: ParkingLimits::default(),
            config_file: None,
            route_all_to: None,
            protect: None,
            dns: dns::DnsSettings::default(),
            media: None,
        }
    }
}

impl Settings {
    /// Defaults, then the `--config` file if any, then the flags that were given (as
    /// [`Overrides`], which the CLI builds).
    pub fn load(args: &Overrides) -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();
        if let Some(path) = &args.config {
            settings.apply_file(&FileSettings::read(path)?)?;
            settings.config_file = Some(path.clone());
            // Files the config names are found beside it.
            if let (Some(r), Some(dir)) = (&mut settings.registrar, path.parent()) {
                r.resolve_paths(dir);
            }
        }
        settings.apply_args(args);
        settings.validate()?;
        Ok(settings)
    }

    /// Parses TOML text (the `--config` format) over the defaults.
    pub fn from_toml(text: &str) -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();
        settings.apply_file(&FileSettings::parse(text)?)?;
        settings.validate()?;
        Ok(settings)
    }

    fn apply_file(&mut self, file: &FileSettings) -> Result<(), SettingsError> {
        if let Some(listen) = &file.listen {
            self.listen = listen.iter().map(|l| l.parse()).collect::<Result<_, _>>()?;
        }
        if let Some(advertise) = &file.advertise {
            self.advertise = Some(parse_host_port(advertise)?);
        }
        if let Some(workers) = file.workers {
            self.workers = workers;
        }
        self.record_route = file.record_route.unwrap_or(self.record_route);
        self.add_path = file.add_path.unwrap_or(self.add_path);
        if let Some(hex) = &file.path_secret {
            self.path_secret = Some(parse_secret("path-secret", hex)?);
        }
        if let Some(next_hop) = &file.next_hop {
            self.next_hop = Some(parse_next_hop(next_hop)?);
        }
        if let Some(metrics) = &file.metrics {
            self.metrics = metrics.parse()?;
        }
        if let Some(level) = &file.log_level {
            self.log_level = parse_log_level(level)?;
        }
        if let Some(aliases) = &file.aliases {
            self.aliases = aliases
                .iter()
                .map(|a| parse_host_port(a))
                .collect::<Result<_, _>>()?;
        }
        if let Some(hosts) = &file.hosts {
            self.hosts = hosts
                .iter()
                .map(|(n, ip)| (n.to_ascii_lowercase(), *ip))
                .collect();
        }
        if let Some(socket) = &file.socket {
            socket.apply(&mut self.socket);
        }
        if let Some(tcp) = &file.tcp {
            tcp.apply(&mut self.tcp)?;
        }
        if let Some(tls) = &file.tls {
            tls.apply(&mut self.tls)?;
        }
        if let Some(ws) = &file.websocket {
            ws.apply(&mut self.websocket)?;
        }
        if let Some(parking) = &file.parking {
            parking.apply(&mut self.parking)?;
        }
        if let Some(dns) = &file.dns {
            dns.apply(&mut self.dns)?;
        }
        if let Some(hgrm) = &file.hgrm {
            self.hgrm = Some(hgrm.clone());
        }
        if let Some(contact) = &file.rewrite_contact {
            self.rewrite_contact = Some(contact.settings()?);
        }
        if let Some(route_all_to) = &file.route_all_to {
            self.route_all_to = Some(parse_next_hop(route_all_to)?);
        }
        if let Some(protect) = &file.protect {
            self.protect = Some(protect.settings()?);
        }
        if let Some(media) = &file.media {
            self.media = Some(media.settings()?);
        }
        if let Some(registrar) = &file.registrar {
            self.registrar = Some(registrar.settings()?);
        }
        if let Some(groups) = &file.group {
            self.groups = groups
                .iter()
                .map(|g| g.config(&self.hosts))
                .collect::<Result<_, _>>()?;
        }
        if let Some(name) = &file.route_to_group {
            self.route_to_group = Some(name.clone());
        }
        Ok(())
    }

    fn apply_args(&mut self, args: &Overrides) {
        if !args.listen.is_empty() {
            self.listen = args.listen.clone();
        }
        if let Some(advertise) = &args.advertise {
            self.advertise = Some(advertise.clone());
        }
        if let Some(workers) = args.workers {
            self.workers = workers;
        }
        self.record_route |= args.record_route;
        if let Some(next_hop) = &args.next_hop {
            self.next_hop = Some(next_hop.clone());
        }
        if let Some(metrics) = args.metrics {
            self.metrics = metrics;
        }
        if let Some(level) = args.log_level {
            self.log_level = level;
        }
        if let Some(hgrm) = &args.hgrm {
            self.hgrm = Some(hgrm.clone());
        }
        if args.rewrite_contact && self.rewrite_contact.is_none() {
            self.rewrite_contact = Some(ContactSettings::default());
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if self.listen.is_empty() {
            return Err(SettingsError(
                "at least one listen address is needed".into(),
            ));
        }
        check_workers(self.workers)?;
        if !(1..=1024).contains(&self.socket.batch) {
            return Err(SettingsError(
                "socket.batch must be between 1 and 1024".into(),
            ));
        }
        self.validate_groups()?;
        self.tcp.validate()?;
        let secure = |l: &&ListenAddr| matches!(l.transport, Transport::Tls | Transport::Wss);
        if let Some(l) = self.listen.iter().find(secure)
            && self.tls.certificates.is_empty()
        {
            return Err(SettingsError(format!(
                "listener {l} needs [tls] certificate and key"
            )));
        }
        Ok(())
    }

    fn validate_groups(&self) -> Result<(), SettingsError> {
        for (i, g) in self.groups.iter().enumerate() {
            if let Some(d) = g.destinations.iter().find(|d| d.name.is_some())
                && !self.dns.enabled
            {
                return Err(SettingsError(format!(
                    "group {}: destination {}: a host name must be in [hosts] when [dns] is off",
                    g.name, d.uri
                )));
            }
            if self.groups[..i].iter().any(|h| h.name == g.name) {
                return Err(SettingsError(format!("group {:?} twice", g.name)));
            }
        }
        match &self.route_to_group {
            Some(name) if !self.groups.iter().any(|g| &g.name == name) => Err(SettingsError(
                format!("route-to-group {name:?}: there is no group of that name"),
            )),
            _ => Ok(()),
        }
    }
}

/// The TOML file's shape: the flags' names, plus what only a file can say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    listen: Option<Vec<String>>,
    advertise: Option<String>,
    workers: Option<usize>,
    record_route: Option<bool>,
    add_path: Option<bool>,
    /// 32 hex digits.
    path_secret: Option<String>,
    next_hop: Option<String>,
    metrics: Option<String>,
    log_level: Option<String>,
    aliases: Option<Vec<String>>,
    hosts: Option<BTreeMap<String, IpAddr>>,
    socket: Option<FileSocket>,
    tcp: Option<tcp::FileTcp>,
    tls: Option<secure::FileTls>,
    websocket: Option<secure::FileWebSocket>,
    parking: Option<parking::FileParking>,
    dns: Option<dns::FileDns>,
    route_all_to: Option<String>,
    protect: Option<protect::FileProtect>,
    media: Option<media::FileMedia>,
    hgrm: Option<PathBuf>,
    rewrite_contact: Option<FileContact>,
    // The routing policy's tables: compiled by `crate::policy`, which reports their errors
    // with file and line.
    #[allow(dead_code)]
    policy: Option<toml::Value>,
    #[allow(dead_code)]
    sets: Option<toml::Value>,
    #[allow(dead_code)]
    route: Option<toml::Value>,
    registrar: Option<registrar::FileRegistrar>,
    group: Option<Vec<groups::FileGroup>>,
    route_to_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileContact {
    requests: Option<bool>,
    responses: Option<bool>,
    capacity: Option<usize>,
    /// Seconds.
    idle_timeout: Option<u64>,
    /// Seconds.
    max_expires: Option<u64>,
    /// 32 hex digits.
    secret: Option<String>,
    node: Option<u8>,
}

impl FileContact {
    fn settings(&self) -> Result<ContactSettings, SettingsError> {
        let d = ContactSettings::default();
        let secret = match &self.secret {
            Some(hex) => Some(parse_secret("rewrite-contact.secret", hex)?),
            None => None,
        };
        let capacity = self.capacity.unwrap_or(d.capacity);
        if capacity == 0 {
            return Err(SettingsError(
                "rewrite-contact.capacity must be at least 1".into(),
            ));
        }
        Ok(ContactSettings {
            requests: self.requests.unwrap_or(d.requests),
            responses: self.responses.unwrap_or(d.responses),
            capacity,
            idle_timeout: self
                .idle_timeout
                .map_or(d.idle_timeout, Duration::from_secs),
            max_expires: self.max_expires.map_or(d.max_expires, Duration::from_secs),
            secret,
            node: self.node.unwrap_or(d.node),
        })
    }
}

/// 32 hex digits → 16 bytes.
fn parse_secret(name: &str, hex: &str) -> Result<[u8; 16], SettingsError> {
    let bad = || SettingsError(format!("{name}: expected 32 hex digits"));
    if hex.len() != 32 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut secret = [0u8; 16];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(secret)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSocket {
    recv_buffer: Option<usize>,
    send_buffer: Option<usize>,
    batch: Option<usize>,
}

impl FileSocket {
    fn apply(&self, options: &mut SocketOptions) {
        options.recv_buffer = self.recv_buffer.unwrap_or(options.recv_buffer);
        options.send_buffer = self.send_buffer.unwrap_or(options.send_buffer);
        options.batch = self.batch.unwrap_or(options.batch);
    }
}

impl FileSettings {
    fn read(path: &Path) -> Result<FileSettings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SettingsError(format!("cannot read config file {}: {e}", path.display()))
        })?;
        FileSettings::parse(&text)
            .map_err(|e| SettingsError(format!("config file {}: {e}", path.display())))
    }

    fn parse(text: &str) -> Result<FileSettings, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError(e.to_string().trim_end().to_owned()))
    }
}

/// Parses `HOST[:PORT]` (for `--advertise` and aliases).
pub fn parse_host_port(text: &str) -> Result<HostPort, SettingsError> {
    HostPort::parse(text).map_err(|e| SettingsError(e.to_string()))
}

/// Parses a next hop URI, `sip:HOST[:PORT]`.
pub fn parse_next_hop(text: &str) -> Result<NextHop, SettingsError> {
    NextHop::parse(text).map_err(|e| SettingsError(e.to_string()))
}

/// Parses `off`, `error`, `warn`, `info`, `debug` or `trace`.
pub fn parse_log_level(text: &str) -> Result<LevelFilter, SettingsError> {
    text.parse().map_err(|_| {
        SettingsError(format!(
            "log level {text:?}: expected off, error, warn, info, debug or trace"
        ))
    })
}

/// Parses a worker count, 1..=1024.
pub fn parse_workers(text: &str) -> Result<usize, SettingsError> {
    let workers = text
        .parse()
        .map_err(|_| SettingsError(format!("workers {text:?}: expected a number")))?;
    check_workers(workers)?;
    Ok(workers)
}

fn check_workers(workers: usize) -> Result<(), SettingsError> {
    if (1..=1024).contains(&workers) {
        Ok(())
    } else {
        Err(SettingsError(format!(
            "workers {workers}: must be between 1 and 1024"
        )))
    }
}

/// A setting that cannot be used, with a message for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError(pub String);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SettingsError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Host;

    #[test]
    fn listen_addresses_parse_v4_and_bracketed_v6() {
        let l: ListenAddr = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!(l, ListenAddr::udp("127.0.0.1:5060".parse().unwrap()));
        let l: ListenAddr = "UDP:[::1]:5080".parse().unwrap();
        assert_eq!(l.addr, "[::1]:5080".parse().unwrap());
        assert_eq!(l.to_string(), "udp:[::1]:5080");
        for bad in [
            "127.0.0.1:5060",
            "udp:::1:5060",
            "udp:host:5060",
            "sctp:1.2.3.4:5",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
        let l: ListenAddr = "tcp:[::1]:5060".parse().unwrap();
        assert_eq!(l, ListenAddr::tcp("[::1]:5060".parse().unwrap()));
        assert_eq!(l.to_string(), "tcp:[::1]:5060");
        let l: ListenAddr = "wss:[::1]:443".parse().unwrap();
        assert_eq!(
            (l.transport, l.to_string()),
            (Transport::Wss, "wss:[::1]:443".into())
        );
    }

    #[test]
    fn tls_and_websocket_tables() {
        let s = Settings::from_toml(
            "listen = [\"tls:127.0.0.1:5061\", \"ws:127.0.0.1:80\", \"wss:127.0.0.1:443\"]\n\
             [tls]\ncertificate = \"a.pem\"\nkey = \"a.key\"\nca = \"ca.pem\"\n\
             verify-client = true\nmin-version = \"1.3\"\nallowed-clients = [\"carrier.example\"]\n\
             [websocket]\norigins = [\"https://phone.example.com\"]\n",
        )
        .unwrap();
        assert_eq!(s.tls.certificates, [("a.pem".into(), "a.key".into())]);
        assert_eq!(s.tls.ca, Some("ca.pem".into()));
        assert!(s.tls.verify_client);
        assert_eq!(s.tls.allowed_clients, ["carrier.example"]);
        assert_eq!(s.tls.min_version, TlsVersion::V1_3);
        assert_eq!(s.websocket.origins, ["https://phone.example.com"]);
        let err = Settings::from_toml("listen = [\"tls:127.0.0.1:5061\"]").unwrap_err();
        assert!(err.0.contains("[tls]"), "{err}");
        let err =
            Settings::from_toml("[tls]\ncertificate = \"a\"\nkey = \"b\"\nverify-client = true")
                .unwrap_err();
        assert!(err.0.contains("ca"), "{err}");
    }

    #[test]
    fn rewrite_contact_table() {
        let s = Settings::from_toml(
            "[rewrite-contact]\nresponses = false\ncapacity = 10\nidle-timeout = 60\n\
             max-expires = 600\nsecret = \"00112233445566778899aabbccddeeff\"\nnode = 3\n",
        )
        .unwrap();
        let c = s.rewrite_contact.expect("enabled by the table");
        assert!(c.requests && !c.responses);
        assert_eq!((c.capacity, c.node), (10, 3));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_expires, Duration::from_secs(600));
        assert_eq!(c.secret.unwrap()[1], 0x11);
        assert_eq!(Settings::from_toml("").unwrap().rewrite_contact, None);
        let s = Settings::from_toml("path-secret = \"000102030405060708090a0b0c0d0e0f\"\n");
        assert_eq!(s.unwrap().path_secret.map(|k| k[15]), Some(15));
        assert_eq!(Settings::from_toml("").unwrap().path_secret, None);
        let err = Settings::from_toml("path-secret = \"0a\"").unwrap_err();
        assert!(err.0.starts_with("path-secret:"), "{err}");
        for bad in [
            "[rewrite-contact]\nsecret = \"xyz\"\n",
            "[rewrite-contact]\ncapacity = 0\n",
            "[rewrite-contact]\nunknown = 1\n",
        ] {
            assert!(Settings::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metrics_accepts_an_address_or_off() {
        assert_eq!("off".parse::<Metrics>().unwrap(), Metrics::Off);
        assert_eq!(
            "127.0.0.1:9191".parse::<Metrics>().unwrap(),
            Metrics::On("127.0.0.1:9191".parse().unwrap())
        );
        assert!("9090".parse::<Metrics>().is_err());
    }

    #[test]
    fn defaults_listen_on_every_ipv4_address_at_5060() {
        let s = Settings::default();
        assert_eq!(s.listen, [ListenAddr::udp("0.0.0.0:5060".parse().unwrap())]);
        assert!(s.workers >= 1);
        assert_eq!(s.metrics, Metrics::default());
        assert!(!s.record_route && s.next_hop.is_none());
    }

    #[test]
    fn a_full_file_is_read() {
        let s = Settings::from_toml(
            r#"
            listen = ["udp:127.0.0.1:5070", "udp:[::1]:5070"]
            advertise = "sip.example.net"
            workers = 3
            record-route = true
            next-hop = "sip:10.0.0.9:5060"
            metrics = "off"
            log-level = "debug"
            aliases = ["edge.example.net:5060"]
            [hosts]
            "Core.Example.net" = "10.0.0.9"
            [socket]
            recv-buffer = 1048576
            batch = 8
            [tcp]
            max-connections = 100
            idle-timeout = "2m"
            header-timeout = "250ms"
            "#,
        )
        .unwrap();
        assert_eq!(s.listen.len(), 2);
        assert_eq!(
            s.advertise.unwrap().host,
            Host::Name("sip.example.net".into())
        );
        assert_eq!((s.workers, s.record_route), (3, true));
        assert_eq!(s.next_hop.unwrap().port, Some(5060));
        assert_eq!((s.metrics, s.log_level), (Metrics::Off, LevelFilter::Debug));
        assert_eq!(s.aliases.len(), 1);
        assert_eq!(
            s.hosts,
            [("core.example.net".into(), "10.0.0.9".parse().unwrap())]
        );
        assert_eq!((s.socket.recv_buffer, s.socket.batch), (1 << 20, 8));
        assert_eq!(s.socket.send_buffer, SocketOptions::default().send_buffer);
        assert_eq!(s.tcp.max_connections, 100);
        assert_eq!(s.tcp.idle_timeout, std::time::Duration::from_secs(120));
        assert_eq!(s.tcp.header_timeout, std::time::Duration::from_millis(250));
        assert_eq!(s.tcp.send_queue, TcpOptions::default().send_queue);
    }

    #[test]
    fn file_mistakes_are_named() {
        let err = Settings::from_toml("lissten = []").unwrap_err();
        assert!(err.0.contains("lissten"), "{err}");
        let err = Settings::from_toml("[socket]\nbuffer = 1").unwrap_err();
        assert!(err.0.contains("buffer"), "{err}");
        let err = Settings::from_toml("listen = [\"udp:nowhere\"]").unwrap_err();
        assert!(err.0.contains("udp:nowhere"), "{err}");
        assert!(Settings::from_toml("workers = 0").is_err());
        assert!(Settings::from_toml("listen = []").is_err());
        assert!(Settings::from_toml("log-level = \"loud\"").is_err());
        assert!(Settings::from_toml("[socket]\nbatch = 0").is_err());
        let err = Settings::from_toml("[tcp]\nidle-timeout = \"10\"").unwrap_err();
        assert!(err.0.contains("10"), "{err}");
        let err = Settings::from_toml("[tcp]\nmax-conections = 1").unwrap_err();
        assert!(err.0.contains("max-conections"), "{err}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("ferrovia-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("override.toml");
        std::fs::write(&path, "workers = 3\nlisten = [\"udp:127.0.0.1:5070\"]\n").unwrap();
        let args = Overrides {
            config: Some(path),
            workers: Some(1),
            record_route: true,
            ..Overrides::default()
        };
        let s = Settings::load(&args).unwrap();
        assert_eq!(s.workers, 1);
        assert!(s.record_route);
        assert_eq!(
            s.listen,
            [ListenAddr::udp("127.0.0.1:5070".parse().unwrap())]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let args = Overrides {
            config: Some("/nonexistent/ferrovia.toml".into()),
            ..Overrides::default()
        };
        let err = Settings::load(&args).unwrap_err();
        assert!(err.0.contains("/nonexistent/ferrovia.toml"), "{err}");
    }
}
