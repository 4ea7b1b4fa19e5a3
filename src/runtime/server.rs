//! Starting and stopping the workers.
//!
//! [`Server::start`] binds every listen address once per worker (one reuse-port group per
//! address), builds the core from the bound addresses, and spawns one pinned worker thread per
//! core. [`Server::shutdown`] sets the shared stop flag, wakes every worker, joins them and
//! returns their recorders. Dropping a `Server` stops it the same way.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{error, info};
use mio::{Interest, Poll, Token, Waker};

use super::record::{Counters, Recorder};
use super::summary::Summary;
use super::worker::{self, WAKE, WorkerSetup, WorkerSocket};
use super::{identity, socket};
use crate::proxy::{ConfigError, ContactRewrite, Proxy, ProxyConfig};
use crate::settings::{ListenAddr, Settings};

/// How long `start` waits for the workers to be ready.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// A running proxy: its worker threads and how to stop them.
pub struct Server<R: Recorder = Counters> {
    local_addrs: Vec<SocketAddr>,
    proxy: Arc<Proxy>,
    stop: Arc<AtomicBool>,
    wakers: Vec<Waker>,
    threads: Vec<JoinHandle<R>>,
    started: Instant,
}

impl Server<Counters> {
    /// Starts the workers with the built-in [`Counters`].
    pub fn start(settings: &Settings) -> Result<Server<Counters>, StartError> {
        Server::start_with(settings, |_| Counters::default())
    }
}

impl<R: Recorder> Server<R> {
    /// Starts the workers, giving worker `i` the recorder `recorder(i)`; contact rewriting,
    /// when the settings ask for it, uses a table of its own.
    pub fn start_with(
        settings: &Settings,
        recorder: impl FnMut(usize) -> R,
    ) -> Result<Server<R>, StartError> {
        let contact = identity::contact_rewrite(settings);
        Server::start_with_contact(settings, contact, recorder)
    }

    /// Like [`Server::start_with`], with a contact-rewrite table made (and shared) elsewhere.
    pub fn start_with_contact(
        settings: &Settings,
        contact: Option<ContactRewrite>,
        mut recorder: impl FnMut(usize) -> R,
    ) -> Result<Server<R>, StartError> {
        let workers = settings.workers.max(1);
        let (mut groups, bound) = bind_all(settings, workers)?;
        let mut config = identity::proxy_config(settings, &bound);
        config.contact = contact;
        let proxy = Arc::new(Proxy::new(config).map_err(StartError::Config)?);
        let mut server = Server {
            local_addrs: bound,
            proxy,
            stop: Arc::new(AtomicBool::new(false)),
            wakers: Vec::with_capacity(workers),
            threads: Vec::with_capacity(workers),
            started: Instant::now(),
        };
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (ready, readiness) = crossbeam_channel::bounded(workers);
        for index in 0..workers {
            let sockets = groups.iter_mut().filter_map(Iterator::next).collect();
            let core = cores.get(index % cores.len().max(1)).copied();
            let setup = (sockets, recorder(index), ready.clone());
            server.spawn(index, core, setup, settings.socket.batch)?;
        }
        drop(ready);
        // Every worker has built its buffers before the server counts as started; a worker
        // that dies while starting drops its sender, which ends the wait.
        for _ in 0..workers {
            if readiness.recv_timeout(READY_LIMIT).is_err() {
                break;
            }
        }
        server.log_listeners(settings);
        Ok(server)
    }

    fn spawn(
        &mut self,
        index: usize,
        core: Option<core_affinity::CoreId>,
        (sockets, recorder, ready): (Vec<WorkerSocket>, R, crossbeam_channel::Sender<()>),
        batch: usize,
    ) -> Result<(), StartError> {
        let mut sockets = sockets;
        let poll = Poll::new().map_err(StartError::Poll)?;
        for (i, s) in sockets.iter_mut().enumerate() {
            poll.registry()
                .register(&mut s.socket, Token(i), Interest::READABLE)
                .map_err(StartError::Poll)?;
        }
        let waker = Waker::new(poll.registry(), WAKE).map_err(StartError::Poll)?;
        let setup = WorkerSetup {
            index,
            core,
            poll,
            sockets,
            proxy: Arc::clone(&self.proxy),
            recorder,
            stop: Arc::clone(&self.stop),
            batch,
            ready: Some(ready),
        };
        let thread = std::thread::Builder::new()
            .name(format!("ferrovia-w{index}"))
            .spawn(move || worker::run(setup))
            .map_err(StartError::Spawn)?;
        self.wakers.push(waker);
        self.threads.push(thread);
        Ok(())
    }

    fn log_listeners(&self, settings: &Settings) {
        for (listener, addr) in self.proxy.config().listeners.iter().zip(&self.local_addrs) {
            let shown = ListenAddr {
                transport: listener.transport,
                addr: *addr,
            };
            match &listener.advertise {
                Some(a) => info!("listening on {shown} as {a} ({} workers)", settings.workers),
                None => info!("listening on {shown} ({} workers)", settings.workers),
            }
        }
    }

    /// The bound address of each listen address, in the order given (ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The core's configuration as started (advertised addresses, aliases).
    pub fn config(&self) -> &ProxyConfig {
        self.proxy.config()
    }

    /// Every worker is still running (false once any has stopped on its own).
    pub fn is_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Stops the workers after their in-flight batch, joins them, returns their recorders.
    pub fn shutdown(mut self) -> Stopped<R> {
        let uptime = self.started.elapsed();
        let (recorders, failed) = self.stop_and_join();
        Stopped {
            recorders,
            failed_workers: failed,
            uptime,
        }
    }

    fn stop_and_join(&mut self) -> (Vec<R>, usize) {
        self.stop.store(true, Ordering::Release);
        for waker in &self.wakers {
            let _ = waker.wake();
        }
        let mut recorders = Vec::with_capacity(self.threads.len());
        let mut failed = 0;
        for (index, thread) in self.threads.drain(..).enumerate() {
            match thread.join() {
                Ok(r) => recorders.push(r),
                Err(_) => {
                    error!("worker {index} panicked");
                    failed += 1;
                }
            }
        }
        (recorders, failed)
    }
}

impl<R: Recorder> Drop for Server<R> {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_and_join();
        }
    }
}

/// Opens one reuse-port group per listen address; returns the groups and bound addresses.
#[allow(clippy::type_complexity)]
fn bind_all(
    settings: &Settings,
    workers: usize,
) -> Result<(Vec<std::vec::IntoIter<WorkerSocket>>, Vec<SocketAddr>), StartError> {
    let mut groups = Vec::with_capacity(settings.listen.len());
    let mut bound = Vec::with_capacity(settings.listen.len());
    for listen in &settings.listen {
        let (sockets, addr) =
            socket::open_group(listen.addr, workers, &settings.socket).map_err(|source| {
                StartError::Bind {
                    listen: *listen,
                    source,
                }
            })?;
        let group: Vec<WorkerSocket> = sockets
            .into_iter()
            .map(|socket| WorkerSocket {
                socket,
                local: addr,
                transport: listen.transport,
            })
            .collect();
        groups.push(group.into_iter());
        bound.push(addr);
    }
    Ok((groups, bound))
}

/// What the workers left behind: one recorder per worker that stopped cleanly.
#[derive(Debug)]
pub struct Stopped<R> {
    pub recorders: Vec<R>,
    /// Workers that panicked (their recorders are lost).
    pub failed_workers: usize,
    pub uptime: Duration,
}

impl Stopped<Counters> {
    /// All workers' counters added up.
    pub fn total(&self) -> Counters {
        let mut total = Counters::default();
        self.recorders.iter().for_each(|c| total.merge(c));
        total
    }

    /// The one-screen report printed at exit.
    pub fn summary(&self) -> Summary {
        Summary::new(&self.recorders, self.uptime)
    }
}

/// Why the proxy could not start.
#[derive(Debug)]
pub enum StartError {
    /// A listen address could not be bound (in use, not local, no permission).
    Bind {
        listen: ListenAddr,
        source: io::Error,
    },
    /// The core rejected the configuration.
    Config(ConfigError),
    /// An event loop could not be created.
    Poll(io::Error),
    /// A worker thread could not be spawned.
    Spawn(io::Error),
}

impl StartError {
    /// True when the operator's settings are at fault (exit code 2) rather than the system.
    pub fn is_config(&self) -> bool {
        matches!(self, StartError::Config(_))
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind { listen, source } => write!(f, "cannot listen on {listen}: {source}"),
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Poll(e) => write!(f, "cannot create an event loop: {e}"),
            StartError::Spawn(e) => write!(f, "cannot start a worker thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind { source, .. }
            | StartError::Poll(source)
            | StartError::Spawn(source) => Some(source),
            StartError::Config(e) => Some(e),
        }
    }
}
