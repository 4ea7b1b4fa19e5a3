//! The whole proxy as an operator runs it: the workers ([`runtime::Server`]) recording into
//! the stats module's per-worker histograms (the one recording stack), the stats thread, the
//! metrics endpoint, the core's shared tables (the contact-rewrite table and its sweeper when
//! rewriting is on), edge protection's shared tables (read by the workers before the core,
//! reported by the stats, lifted through `/bans`) when configured, and the side services that
//! answer parked messages (a resolver, when one is given).
//!
//! `main` and the integration tests start it the same way ([`Service::start`]; tests may add a
//! side service or a shorter statistics interval with [`Service::start_with`]), so what the
//! tests check is what the binary does.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod registrar;
mod store;

use crate::contact::ContactTable;
use crate::dns::{DnsCache, DnsConfig, Resolver};
use crate::groups::GroupError;
use crate::policy::{CompileOptions, PolicyError, PolicyHandle};
use crate::proxy::{SideKind, Tables};
use crate::runtime::{
    self, DnsService, NameRefresher, ProbeThread, Server, SideService, StartError, Wiring,
};
use crate::settings::{Metrics, Settings};
use crate::stats::{self, Snapshot, StatsConfig, StatsHandle, WorkerStats};

/// How often workers hand their interval histograms to the stats thread.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// How often expired contacts are swept out of the table.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What a service is started with besides its settings. The default is what `main` runs.
pub struct ServiceOptions {
    /// Resolves host names that are neither IP literals nor in the static host table; their
    /// requests park until it answers. `None` (the default): the DNS resolver of `[dns]`
    /// (RFC 3263, with its shared cache), unless `[dns] enabled = false`.
    pub resolver: Option<Box<dyn SideService>>,
    /// Other side services (a remote location store, the media relay), each for the queries
    /// of its kind; the service adds those its settings configure.
    pub side: Vec<(SideKind, Box<dyn SideService>)>,
    /// How often workers hand their statistics to the stats thread (1 s).
    pub stats_interval: Duration,
}

impl Default for ServiceOptions {
    fn default() -> ServiceOptions {
        ServiceOptions {
            resolver: None,
            side: Vec::new(),
            stats_interval: STATS_INTERVAL,
        }
    }
}

/// A running proxy with its statistics.
pub struct Service {
    server: Server<WorkerStats>,
    policy: Arc<PolicyHandle>,
    reload: stats::ReloadFn,
    stats: StatsHandle,
    sweeper: Option<Sweeper>,
    keeper: Option<registrar::Keeper>,
    keepalive: Option<registrar::KeepaliveThread>,
    store: Option<store::Store>,
    /// Probes the destination groups, when any are configured.
    prober: Option<ProbeThread>,
    /// Keeps the groups' DNS names fresh, when there are any.
    refresher: Option<NameRefresher>,
}

/// What is left after a stop: the final statistics and whether every worker ended well.
pub struct Stopped {
    pub snapshot: Snapshot,
    pub failed_workers: usize,
    pub workers: usize,
    pub uptime: Duration,
}

impl Stopped {
    /// Every worker's counters, summed over the whole run.
    pub fn counters(&self) -> stats::Counters {
        self.snapshot.merged().cumulative.counters().clone()
    }

    /// The one-screen report printed at exit: a header line, then the statistics.
    pub fn summary(&self) -> String {
        format!(
            "ferrovia stopped after {:.1} s with {} workers\n{}",
            self.uptime.as_secs_f64(),
            self.workers,
            self.snapshot.summary()
        )
    }
}

impl Service {
    /// Starts the stats thread (and the metrics endpoint unless `metrics` is off), then the
    /// workers, each recording into its own [`WorkerStats`].
    pub fn start(settings: &Settings) -> Result<Service, ServiceError> {
        Service::start_with(settings, ServiceOptions::default())
    }

    /// Like [`Service::start`], with side services and a statistics interval of its own.
    pub fn start_with(
        settings: &Settings,
        options: ServiceOptions,
    ) -> Result<Service, ServiceError> {
        let workers = settings.workers.max(1);
        let metrics = match settings.metrics {
            Metrics::On(addr) => Some(addr),
            Metrics::Off => None,
        };
        // The shared store's queue: bounded, filled without waiting by the workers.
        let (changes, store_queue) = crossbeam_channel::bounded(4096);
        let shared = settings
            .registrar
            .as_ref()
            .and_then(|r| r.redis.clone().zip(r.node));
        let (registrar, keepalives) = match &settings.registrar {
            Some(r) => {
                let writer = shared.is_some().then_some(changes);
                let (built, keepalives) =
                    registrar::build(r, writer).map_err(ServiceError::Registrar)?;
                (Some(built), keepalives)
            }
            None => (None, None),
        };
        let store = match (&registrar, shared.clone()) {
            (Some(r), Some((url, node))) => Some(
                store::Store::start(&url, node, Arc::clone(r), store_queue)
                    .map_err(ServiceError::Registrar)?,
            ),
            _ => None,
        };
        let table = runtime::contact_table(settings);
        let protect = runtime::protection(settings);
        // The DNS resolver, unless the embedder brings its own (the tests' fakes) or the
        // settings turn it off.
        let own_resolver =
            options.resolver.is_some() || options.side.iter().any(|(k, _)| *k == SideKind::Resolve);
        let dns = (settings.dns.enabled && !own_resolver)
            .then(|| Arc::new(DnsCache::new(settings.dns.config.cache_size)));
        // A proxy that can only send over IPv6 asks for a host's AAAA records first.
        let dns_config = DnsConfig {
            ipv6_first: settings.listen.iter().all(|l| l.addr.is_ipv6()),
            ..settings.dns.config.clone()
        };
        let resolver = match &dns {
            Some(cache) => Some(
                Box::new(DnsService::new(dns_config.clone(), Arc::clone(cache)))
                    as Box<dyn SideService>,
            ),
            None => options.resolver,
        };
        // Groups' destinations named in DNS are resolved now, before the workers run, by a
        // resolver of their own that keeps them fresh afterwards.
        let named = settings
            .groups
            .iter()
            .any(|g| g.destinations.iter().any(|d| d.name.is_some()));
        let (names, groups) = match &dns {
            Some(cache) if named => {
                let resolver =
                    Resolver::start(dns_config, Arc::clone(cache), runtime::random_secret())
                        .map_err(ServiceError::Prober)?;
                let mut resolved = settings.clone();
                runtime::resolve_group_names(&mut resolved.groups, &resolver);
                let groups =
                    runtime::destination_groups(&resolved).map_err(ServiceError::Groups)?;
                (Some((resolver, Arc::clone(cache))), groups)
            }
            _ => (
                None,
                runtime::destination_groups(settings).map_err(ServiceError::Groups)?,
            ),
        };
        let media = settings.media.clone().map(crate::media::Media::new);
        let config = StatsConfig {
            workers,
            interval: options.stats_interval,
            metrics,
            contact: table.clone(),
            protect: protect.clone(),
            registrar: registrar.clone(),
            groups: groups.clone(),
            dns: dns.clone(),
            media: media.clone(),
        };
        let policy = PolicyHandle::new(load_policy(settings)?, workers);
        let reload = reloader(settings, Arc::clone(&policy));
        let (stats, recorders) = stats::start(config).map_err(ServiceError::Metrics)?;
        stats.attach_policy(Arc::clone(&policy), Arc::clone(&reload));
        let mut recorders = recorders.into_iter();
        // `stats::start` made exactly `workers` recorders and the server asks for exactly
        // `workers` (it uses the same `settings.workers.max(1)`), once each.
        let mut side = options.side;
        if let (Some(r), Some((url, node))) = (&registrar, &shared) {
            let reader = store::LocationReader::new(url, *node, Arc::clone(r))
                .map_err(ServiceError::Registrar)?;
            side.push((SideKind::Location, Box::new(reader)));
        }
        if let Some(media) = &media {
            let client =
                crate::runtime::NgClient::new(Arc::clone(media)).map_err(ServiceError::Media)?;
            side.push((SideKind::Media, Box::new(client)));
        }
        let wiring = Wiring {
            tables: Tables {
                contact: table.clone(),
                registrar: registrar.clone(),
                groups: groups.clone(),
                dns: dns.clone(),
            },
            policy: Some(Arc::clone(&policy)),
            resolver,
            side,
            protect: protect.clone(),
            media: media.clone(),
        };
        let server = Server::start(settings, wiring, |_| {
            recorders.next().expect("one recorder per worker")
        })
        .map_err(ServiceError::Start)?;
        let keeper = match (&registrar, &settings.registrar) {
            (Some(r), Some(s)) => {
                let snapshot = s.snapshot.clone().map(|p| (p, s.snapshot_interval));
                let keeper = registrar::Keeper::start(Arc::clone(r.location()), snapshot);
                Some(keeper.map_err(ServiceError::Sweeper)?)
            }
            _ => None,
        };
        let keepalive = match (&registrar, keepalives) {
            (Some(r), Some(schedule)) => {
                let senders = server.udp_senders().map_err(ServiceError::Sweeper)?;
                let thread = registrar::KeepaliveThread::start(Arc::clone(r), schedule, senders);
                Some(thread.map_err(ServiceError::Sweeper)?)
            }
            _ => None,
        };
        let sweeper = match table {
            Some(table) => Some(Sweeper::start(table).map_err(ServiceError::Sweeper)?),
            None => None,
        };
        let refresher = match (&groups, names) {
            (Some(groups), Some((resolver, cache))) => {
                NameRefresher::start(Arc::clone(groups), resolver, cache)
                    .map_err(ServiceError::Prober)?
            }
            _ => None,
        };
        let prober = match groups {
            Some(groups) => server.start_prober(groups).map_err(ServiceError::Prober)?,
            None => None,
        };
        Ok(Service {
            server,
            policy,
            reload,
            stats,
            sweeper,
            keeper,
            keepalive,
            store,
            prober,
            refresher,
        })
    }

    /// Re-reads the config file's policy, compiles it here (off the workers' path) and puts
    /// it in force for every worker's next message; a file that does not compile leaves the
    /// running policy in place (logged with file:line, counted as a failed reload).
    pub fn reload(&self) -> Result<String, String> {
        (self.reload)()
    }

    /// The routing policy in force and its counters.
    pub fn policy(&self) -> &Arc<PolicyHandle> {
        &self.policy
    }

    /// The bound listen addresses (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.server.local_addrs()
    }

    /// Where `/metrics`, `/stats` and `/stats.hgrm` are served, when they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.stats.metrics_addr()
    }

    /// The statistics so far (each worker's hand-offs up to its last interval).
    pub fn snapshot(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// Reads the `[tls]` files again for new connections (SIGHUP); established connections
    /// keep their certificates. `Ok(false)` when no listener uses TLS.
    pub fn reload_certificates(&self) -> Result<bool, String> {
        self.server.reload_certificates()
    }

    /// False once a worker has stopped on its own.
    pub fn is_running(&self) -> bool {
        self.server.is_running()
    }

    /// Stops the workers (each flushes its statistics), then the stats thread.
    pub fn shutdown(self) -> Stopped {
        if let Some(sweeper) = self.sweeper {
            sweeper.stop();
        }
        if let Some(prober) = self.prober {
            prober.stop();
        }
        if let Some(keepalive) = self.keepalive {
            keepalive.stop();
        }
        if let Some(refresher) = self.refresher {
            refresher.stop();
        }
        let stopped = self.server.shutdown();
        // After the workers: the snapshot holds every REGISTER they answered.
        if let Some(keeper) = self.keeper {
            keeper.stop();
        }
        if let Some(store) = self.store {
            store.stop();
        }
        Stopped {
            snapshot: self.stats.shutdown(),
            failed_workers: stopped.failed_workers,
            workers: stopped.recorders.len() + stopped.failed_workers,
            uptime: stopped.uptime,
        }
    }
}

/// The policy of the config file, or the built-in relay guard (loopback trusted, the
/// registrar's domains ours)
/// when there is none: ferrovia is never an open relay by default.
fn load_policy(settings: &Settings) -> Result<crate::policy::Policy, ServiceError> {
    let mut options = CompileOptions::new(settings.workers.max(1));
    // The registrar's domains are ours too: its users' requests are not relaying.
    if let Some(registrar) = &settings.registrar {
        options.domains = registrar.config.domains.clone();
    }
    // `to = "group:NAME"` may name the configured groups.
    options.groups = settings.groups.iter().map(|g| g.name.clone()).collect();
    match &settings.config_file {
        Some(path) => crate::policy::compile_file(path, &options).map_err(ServiceError::Policy),
        None => Ok(crate::policy::relay_guard(&options)),
    }
}

/// What SIGHUP and `POST /reload` run.
fn reloader(settings: &Settings, handle: Arc<PolicyHandle>) -> stats::ReloadFn {
    let settings = settings.clone();
    Arc::new(move || match load_policy(&settings) {
        Ok(policy) => {
            let what = format!(
                "policy reloaded from {}: {} rules",
                policy.origin().display(),
                policy.len()
            );
            handle.replace(policy);
            log::info!("{what}");
            Ok(what)
        }
        Err(e) => {
            handle.reload_failed();
            log::error!("reload failed, the running policy stays: {e}");
            Err(e.to_string())
        }
    })
}

/// Sweeps expired contacts out of the shared table, off the workers' path.
struct Sweeper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Sweeper {
    fn start(table: Arc<ContactTable>) -> io::Result<Sweeper> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ferrovia-sweep".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(SWEEP_INTERVAL);
                    table.sweep(Instant::now());
                }
            })?;
        Ok(Sweeper { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// Why the proxy could not start.
#[derive(Debug)]
pub enum ServiceError {
    /// The metrics address could not be bound.
    Metrics(io::Error),
    /// The contact table's sweeper thread could not be spawned.
    Sweeper(io::Error),
    /// The workers could not start.
    Start(StartError),
    /// The routing policy does not compile.
    Policy(PolicyError),
    /// The registrar's users file cannot be used.
    Registrar(String),
    /// The destination groups cannot be built (a setting the checks let through).
    Groups(GroupError),
    /// The prober thread could not be started.
    Prober(io::Error),
    /// The media relay's NG client could not open its socket.
    Media(io::Error),
}

impl ServiceError {
    /// True when the operator's settings are at fault (exit code 2) rather than the system.
    pub fn is_config(&self) -> bool {
        match self {
            ServiceError::Start(e) => e.is_config(),
            ServiceError::Policy(_) | ServiceError::Registrar(_) | ServiceError::Groups(_) => true,
            _ => false,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Metrics(e) => write!(f, "cannot serve metrics: {e}"),
            ServiceError::Sweeper(e) => write!(f, "cannot start the contact sweeper: {e}"),
            ServiceError::Start(e) => write!(f, "{e}"),
            ServiceError::Policy(e) => write!(f, "{e}"),
            ServiceError::Registrar(e) => f.write_str(e),
            ServiceError::Groups(e) => write!(f, "{e}"),
            ServiceError::Prober(e) => write!(f, "cannot start the prober: {e}"),
            ServiceError::Media(e) => write!(f, "cannot start the media relay client: {e}"),
        }
    }
}

impl std::error::Error for ServiceError {}
