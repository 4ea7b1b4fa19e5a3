//! The whole proxy as an operator runs it: the workers ([`runtime::Server`]) recording into
//! the stats module's per-worker histograms (the one recording stack), the stats thread, the
//! metrics endpoint, the core's shared tables (the contact-rewrite table and its sweeper when
//! rewriting is on) and the side services that answer parked messages (a resolver, when one
//! is given).
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

use crate::contact::ContactTable;
use crate::proxy::Tables;
use crate::runtime::{self, Server, SideService, StartError, Wiring};
use crate::settings::{Metrics, Settings};
use crate::stats::{self, Snapshot, StatsConfig, StatsHandle, WorkerStats};

/// How often workers hand their interval histograms to the stats thread.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// How often expired contacts are swept out of the table.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What a service is started with besides its settings. The default is what `main` runs.
pub struct ServiceOptions {
    /// Resolves host names that are neither IP literals nor in the static host table; their
    /// requests park until it answers. `None` (the default): such names get 503 at once.
    pub resolver: Option<Box<dyn SideService>>,
    /// How often workers hand their statistics to the stats thread (1 s).
    pub stats_interval: Duration,
}

impl Default for ServiceOptions {
    fn default() -> ServiceOptions {
        ServiceOptions {
            resolver: None,
            stats_interval: STATS_INTERVAL,
        }
    }
}

/// A running proxy with its statistics.
pub struct Service {
    server: Server<WorkerStats>,
    stats: StatsHandle,
    sweeper: Option<Sweeper>,
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
        let table = runtime::contact_table(settings);
        let config = StatsConfig {
            workers,
            interval: options.stats_interval,
            metrics,
            contact: table.clone(),
        };
        let (stats, recorders) = stats::start(config).map_err(ServiceError::Metrics)?;
        let mut recorders = recorders.into_iter();
        // `stats::start` made exactly `workers` recorders and the server asks for exactly
        // `workers` (it uses the same `settings.workers.max(1)`), once each.
        let wiring = Wiring {
            tables: Tables {
                contact: table.clone(),
            },
            resolver: options.resolver,
        };
        let server = Server::start(settings, wiring, |_| {
            recorders.next().expect("one recorder per worker")
        })
        .map_err(ServiceError::Start)?;
        let sweeper = match table {
            Some(table) => Some(Sweeper::start(table).map_err(ServiceError::Sweeper)?),
            None => None,
        };
        Ok(Service {
            server,
            stats,
            sweeper,
        })
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
        let stopped = self.server.shutdown();
        Stopped {
            snapshot: self.stats.shutdown(),
            failed_workers: stopped.failed_workers,
            workers: stopped.recorders.len() + stopped.failed_workers,
            uptime: stopped.uptime,
        }
    }
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
}

impl ServiceError {
    /// True when the operator's settings are at fault (exit code 2) rather than the system.
    pub fn is_config(&self) -> bool {
        matches!(self, ServiceError::Start(e) if e.is_config())
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Metrics(e) => write!(f, "cannot serve metrics: {e}"),
            ServiceError::Sweeper(e) => write!(f, "cannot start the contact sweeper: {e}"),
            ServiceError::Start(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServiceError {}
