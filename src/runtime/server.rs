//! Starting and stopping the workers.
//!
//! [`Server::start`] binds every listen address once per worker (one reuse-port group per
//! address, UDP sockets or TCP listeners), builds the core from the bound addresses, creates
//! each worker's event loop and waker up front (the stream [`Mesh`] needs every waker), and
//! spawns one pinned worker thread per core. [`Server::shutdown`] sets the shared stop flag,
//! wakes every worker, joins them and returns their recorders. Dropping a `Server` stops it
//! the same way.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use mio::{Interest, Poll, Token, Waker};

use super::record::{Counters, Recorder};
use super::stream::{self, Mesh, StreamListener, StreamSetup, Streams};
use super::summary::Summary;
use super::worker::{self, WAKE, WorkerSetup, WorkerSocket};
use super::{identity, socket, sys};
use crate::proxy::{ConfigError, ContactRewrite, Proxy, ProxyConfig};
use crate::settings::{ListenAddr, Settings};

/// How long `start` waits for the workers to be ready.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// A running proxy: its worker threads and how to stop them.
pub struct Server<R: Recorder = Counters> {
    local_addrs: Vec<SocketAddr>,
    proxy: Arc<Proxy>,
    stop: Arc<AtomicBool>,
    wakers: Vec<Arc<Waker>>,
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
        if settings.listen.iter().any(|l| l.transport.is_stream()) {
            raise_descriptor_limit(settings);
        }
        let mut config = identity::proxy_config(settings, &bound);
        config.contact = contact;
        let proxy = Arc::new(Proxy::new(config).map_err(StartError::Config)?);
        let (polls, wakers) = event_loops(workers)?;
        let tcp = &settings.tcp;
        let (mesh, inboxes) = Mesh::new(wakers.clone(), tcp.handoff_queue, tcp.max_connections);
        let secure = stream::secure(settings).map_err(|e| StartError::Config(ConfigError(e)))?;
        let mut server = Server {
            local_addrs: bound,
            proxy,
            stop: Arc::new(AtomicBool::new(false)),
            wakers,
            threads: Vec::with_capacity(workers),
            started: Instant::now(),
        };
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (ready, readiness) = crossbeam_channel::bounded(workers);
        for ((index, poll), inbox) in polls.into_iter().enumerate().zip(inboxes) {
            let (sockets, listeners) = worker_sockets(&mut groups);
            let streams = StreamSetup {
                listeners,
                inbox,
                mesh: Arc::clone(&mesh),
                options: settings.tcp,
                secure: secure.clone(),
            };
            let core = cores.get(index % cores.len().max(1)).copied();
            let setup = (index, core, poll, sockets, streams);
            server.spawn(setup, recorder(index), ready.clone(), settings.socket.batch)?;
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
        (index, core, poll, sockets, streams): WorkerParts,
        recorder: R,
        ready: crossbeam_channel::Sender<()>,
        batch: usize,
    ) -> Result<(), StartError> {
        let mut sockets = sockets;
        for (i, s) in sockets.iter_mut().enumerate() {
            poll.registry()
                .register(&mut s.socket, Token(i), Interest::READABLE)
                .map_err(StartError::Poll)?;
        }
        let registry = poll.registry().try_clone().map_err(StartError::Poll)?;
        let streams = Streams::new(index, registry, streams).map_err(StartError::Poll)?;
        let setup = WorkerSetup {
            index,
            core,
            poll,
            sockets,
            proxy: Arc::clone(&self.proxy),
            recorder,
            stop: Arc::clone(&self.stop),
            batch,
            streams,
            ready: Some(ready),
        };
        let thread = std::thread::Builder::new()
            .name(format!("ferrovia-w{index}"))
            .spawn(move || worker::run(setup))
            .map_err(StartError::Spawn)?;
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

/// What one worker is started with besides its recorder: index, core, event loop, UDP
/// sockets and stream side.
type WorkerParts = (
    usize,
    Option<core_affinity::CoreId>,
    Poll,
    Vec<WorkerSocket>,
    StreamSetup,
);

/// The next socket of every group: one worker's UDP sockets and TCP listeners.
fn worker_sockets(
    groups: &mut [std::vec::IntoIter<Bound>],
) -> (Vec<WorkerSocket>, Vec<StreamListener>) {
    let mut sockets = Vec::new();
    let mut listeners = Vec::new();
    for group in groups.iter_mut() {
        match group.next() {
            Some(Bound::Udp(s)) => sockets.push(s),
            Some(Bound::Tcp(l)) => listeners.push(l),
            None => {}
        }
    }
    (sockets, listeners)
}

/// One worker's socket of a reuse-port group.
enum Bound {
    Udp(WorkerSocket),
    Tcp(StreamListener),
}

/// An event loop and its waker per worker, made before any worker starts.
fn event_loops(workers: usize) -> Result<(Vec<Poll>, Vec<Arc<Waker>>), StartError> {
    let mut polls = Vec::with_capacity(workers);
    let mut wakers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let poll = Poll::new().map_err(StartError::Poll)?;
        let waker = Waker::new(poll.registry(), WAKE).map_err(StartError::Poll)?;
        polls.push(poll);
        wakers.push(Arc::new(waker));
    }
    Ok((polls, wakers))
}

/// Opens one reuse-port group per listen address; returns the groups and bound addresses.
#[allow(clippy::type_complexity)]
fn bind_all(
    settings: &Settings,
    workers: usize,
) -> Result<(Vec<std::vec::IntoIter<Bound>>, Vec<SocketAddr>), StartError> {
    let mut groups = Vec::with_capacity(settings.listen.len());
    let mut bound = Vec::with_capacity(settings.listen.len());
    for listen in &settings.listen {
        let (group, addr) =
            bind_group(listen, settings, workers).map_err(|source| StartError::Bind {
                listen: *listen,
                source,
            })?;
        groups.push(group.into_iter());
        bound.push(addr);
    }
    Ok((groups, bound))
}

/// One reuse-port group: a UDP socket or a TCP listener per worker.
fn bind_group(
    listen: &ListenAddr,
    settings: &Settings,
    workers: usize,
) -> std::io::Result<(Vec<Bound>, SocketAddr)> {
    if listen.transport.is_stream() {
        let (listeners, local) = stream::open_group(listen.addr, workers)?;
        let tcp = listeners.into_iter();
        return Ok((
            tcp.map(|listener| {
                let transport = listen.transport;
                Bound::Tcp(StreamListener {
                    listener,
                    local,
                    transport,
                })
            })
            .collect(),
            local,
        ));
    }
    let (sockets, local) = socket::open_group(listen.addr, workers, &settings.socket)?;
    let udp = sockets.into_iter().map(|socket| {
        Bound::Udp(WorkerSocket {
            socket,
            local,
            transport: listen.transport,
        })
    });
    Ok((udp.collect(), local))
}

/// Raises the open-file limit to what the connection limit needs (up to the hard limit),
/// and warns when even that is short.
fn raise_descriptor_limit(settings: &Settings) {
    let per_socket = settings.listen.len() * settings.workers.max(1);
    let wanted = (settings.tcp.max_connections + per_socket + 64) as u64;
    match sys::raise_open_files(wanted) {
        Ok(granted) if granted < wanted => warn!(
            "open-file limit is {granted}: fewer than tcp.max-connections ({}) can be open",
            settings.tcp.max_connections
        ),
        Ok(_) => {}
        Err(e) => warn!("cannot read or raise the open-file limit: {e}"),
    }
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
