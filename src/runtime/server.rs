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

use super::prober::{ProbeSocket, ProbeThread};
use super::side::{SideLinks, SideService, SideThreads};
use super::stream::{self, Mesh, StreamListener, StreamSetup, Streams};
use super::worker::{self, WAKE, WorkerSetup, WorkerSocket};
use super::{identity, socket, sys};
use crate::groups::{Groups, ProbeListener, ProbeOrigin};
use crate::policy::PolicyHandle;
use crate::protect::Protection;
use crate::proxy::{ConfigError, Proxy, ProxyConfig, SideKind, Tables};
use crate::record::Recorder;
use crate::settings::{ListenAddr, Settings};
use crate::sip::Transport;

/// How long `start` waits for the workers to be ready.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// A running proxy: its worker threads and how to stop them.
pub struct Server<R: Recorder> {
    local_addrs: Vec<SocketAddr>,
    proxy: Arc<Proxy>,
    protect: Option<Arc<Protection>>,
    tables: Arc<Tables>,
    policy: Option<Arc<PolicyHandle>>,
    side: Option<SideThreads>,
    stop: Arc<AtomicBool>,
    wakers: Vec<Arc<Waker>>,
    threads: Vec<JoinHandle<R>>,
    started: Instant,
    /// The TLS configuration the workers share, for a certificate reload.
    secure: Option<Arc<stream::Secure>>,
    /// A duplicate of each UDP listener's socket (and its address), in listen order: health
    /// probes leave from the first, NAT keepalives from the one their flow came to.
    udp_duplicates: Vec<(std::net::UdpSocket, SocketAddr)>,
}

impl<R: Recorder> Server<R> {
    /// Starts the workers with the shared tables and side services of `wiring`: with a
    /// resolver, a host name outside the static table parks its request until the resolver
    /// answers (see `side`).
    pub fn start(
        settings: &Settings,
        wiring: Wiring,
        mut recorder: impl FnMut(usize) -> R,
    ) -> Result<Server<R>, StartError> {
        let workers = settings.workers.max(1);
        let BoundGroups {
            mut groups,
            addrs: bound,
        } = bind_all(settings, workers)?;
        if settings.listen.iter().any(|l| l.transport.is_stream()) {
            raise_descriptor_limit(settings);
        }
        let udp_duplicates = udp_duplicates(&groups);
        let mut config = identity::proxy_config(settings, &bound);
        config.resolver =
            wiring.resolver.is_some() || wiring.side.iter().any(|(s, _)| *s == SideKind::Resolve);
        config.media = wiring.media.clone();
        let proxy = Arc::new(Proxy::new(config).map_err(StartError::Config)?);
        let EventLoops { polls, wakers } = event_loops(workers)?;
        let queue = settings.parking.messages.max(1) * workers;
        let mut services = wiring.side;
        if let Some(resolver) = wiring.resolver {
            services.push((SideKind::Resolve, resolver));
        }
        let (side, links) =
            SideThreads::start(services, &wakers, queue).map_err(StartError::Spawn)?;
        let side = Some(side);
        let tcp = &settings.tcp;
        let (mesh, inboxes) = Mesh::new(wakers.clone(), tcp.handoff_queue, tcp.max_connections);
        let secure = stream::secure(settings).map_err(|e| StartError::Config(ConfigError(e)))?;
        let mut server = Server {
            local_addrs: bound,
            proxy,
            protect: wiring.protect,
            tables: Arc::new(wiring.tables),
            policy: wiring.policy,
            side,
            stop: Arc::new(AtomicBool::new(false)),
            wakers,
            threads: Vec::with_capacity(workers),
            started: Instant::now(),
            secure: secure.clone(),
            udp_duplicates,
        };
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (ready, readiness) = crossbeam_channel::bounded(workers);
        let parts = polls.into_iter().enumerate().zip(inboxes).zip(links);
        for (((index, poll), inbox), side) in parts {
            let (sockets, listeners) = worker_sockets(&mut groups);
            let streams = StreamSetup {
                listeners,
                inbox,
                mesh: Arc::clone(&mesh),
                options: settings.tcp,
                secure: secure.clone(),
            };
            let parts = WorkerParts {
                index,
                core: cores.get(index % cores.len().max(1)).copied(),
                poll,
                sockets,
                streams,
                side,
            };
            server.spawn(parts, recorder(index), ready.clone(), settings.socket.batch)?;
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
        parts: WorkerParts,
        recorder: R,
        ready: crossbeam_channel::Sender<()>,
        batch: usize,
    ) -> Result<(), StartError> {
        let WorkerParts {
            index,
            core,
            poll,
            mut sockets,
            streams,
            side,
        } = parts;
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
            protect: self.protect.clone(),
            tables: Arc::clone(&self.tables),
            policy: self.policy.clone(),
            recorder,
            stop: Arc::clone(&self.stop),
            batch,
            streams,
            side,
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

    /// Reads the `[tls]` certificate, key and CA files again for new connections (SIGHUP);
    /// established ones keep theirs. `Ok(false)` when no listener uses TLS.
    pub fn reload_certificates(&self) -> Result<bool, String> {
        match &self.secure {
            Some(secure) => secure.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// Starts the prober thread for `groups`: its OPTIONS leave from the listeners of each
    /// destination's transport (UDP from a duplicate of the listener's socket, TCP and TLS on
    /// connections of its own from the listener's address), shown as the proxy shows that
    /// listener in Via. `None` without a UDP, TCP or TLS listener (nothing is probed then;
    /// destinations stay up).
    pub fn start_prober(&self, groups: Arc<Groups>) -> io::Result<Option<ProbeThread>> {
        let mut origin = ProbeOrigin::default();
        let mut sockets = Vec::new();
        for listener in &self.proxy.config().listeners {
            let (transport, local) = (listener.transport, listener.addr);
            let socket = match transport {
                Transport::Udp => match self.udp_duplicates.iter().find(|(_, a)| *a == local) {
                    Some((socket, _)) => ProbeSocket::Udp(socket.try_clone()?),
                    None => continue,
                },
                Transport::Tcp | Transport::Tls => ProbeSocket::Stream(local),
                Transport::Ws | Transport::Wss => continue,
            };
            let Some(shown) = self.proxy.shown(local, transport) else {
                continue;
            };
            origin.listeners.push(ProbeListener {
                transport,
                ipv6: local.is_ipv6(),
                sent_by: String::from_utf8_lossy(shown).into_owned(),
            });
            sockets.push(socket);
        }
        if origin.listeners.is_empty() {
            warn!("destination groups are not probed: no UDP, TCP or TLS listener to probe from");
            return Ok(None);
        }
        let secure = self.secure.clone();
        ProbeThread::start(groups, origin, sockets, secure).map(Some)
    }

    /// A duplicate of every UDP listener's socket with its address and `host:port` as our Via
    /// shows it, for a side thread that sends from the listeners (NAT keepalives) and never
    /// receives.
    pub fn udp_senders(&self) -> io::Result<Vec<UdpSender>> {
        let mut senders = Vec::new();
        for (socket, local) in &self.udp_duplicates {
            let Some(shown) = self.proxy.shown(*local, crate::sip::Transport::Udp) else {
                continue;
            };
            senders.push(UdpSender {
                socket: socket.try_clone()?,
                local: *local,
                shown: String::from_utf8_lossy(shown).into_owned(),
            });
        }
        Ok(senders)
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
        // Every worker has dropped its link: the side thread's queue is disconnected.
        if let Some(side) = self.side.take() {
            side.join();
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

/// What one worker is started with besides its recorder.
struct WorkerParts {
    index: usize,
    /// The core to pin it to, when the core list is known.
    core: Option<core_affinity::CoreId>,
    poll: Poll,
    sockets: Vec<WorkerSocket>,
    streams: StreamSetup,
    /// Its links to the side services that are wired.
    side: SideLinks,
}

/// What the workers share besides the core's configuration: the tables the core reads and
/// writes, and the side services that answer parked messages' queries.
#[derive(Default)]
pub struct Wiring {
    pub tables: Tables,
    /// The routing policy: each worker makes its `policy::Engine` (its router) from it.
    pub policy: Option<Arc<PolicyHandle>>,
    /// Resolves host names outside the static host table (the core parks their requests).
    pub resolver: Option<Box<dyn SideService>>,
    /// Other side services, each answering the queries of its [`SideKind`] on a thread
    /// of its own (a service listed twice: the first one answers).
    pub side: Vec<(SideKind, Box<dyn SideService>)>,
    /// Edge protection, screening each message in the worker before the core.
    pub protect: Option<Arc<Protection>>,
    /// Media anchoring (`[media]`): the core's settings and counters, shared with the NG
    /// client, which must be among the side services (kind `SideKind::Media`).
    pub media: Option<Arc<crate::media::Media>>,
}

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

/// A duplicate (same open socket, another descriptor) of the first UDP listener socket.
fn udp_duplicates(groups: &[std::vec::IntoIter<Bound>]) -> Vec<(std::net::UdpSocket, SocketAddr)> {
    groups
        .iter()
        .filter_map(|group| match group.as_slice().first() {
            Some(Bound::Udp(s)) => {
                let duplicate = socket2::SockRef::from(&s.socket).try_clone().ok()?;
                Some((duplicate.into(), s.local))
            }
            _ => None,
        })
        .collect()
}

/// A duplicate of a UDP listener's socket (non-blocking like the original), to send from.
#[derive(Debug)]
pub struct UdpSender {
    pub socket: std::net::UdpSocket,
    /// The listener's bound address.
    pub local: SocketAddr,
    /// `host:port` as our Via shows the listener.
    pub shown: String,
}

/// One worker's socket of a reuse-port group.
enum Bound {
    Udp(WorkerSocket),
    Tcp(StreamListener),
}

/// Each worker's event loop and the waker that interrupts it (same order).
struct EventLoops {
    polls: Vec<Poll>,
    wakers: Vec<Arc<Waker>>,
}

/// An event loop and its waker per worker, made before any worker starts.
fn event_loops(workers: usize) -> Result<EventLoops, StartError> {
    let mut polls = Vec::with_capacity(workers);
    let mut wakers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let poll = Poll::new().map_err(StartError::Poll)?;
        let waker = Waker::new(poll.registry(), WAKE).map_err(StartError::Poll)?;
        polls.push(poll);
        wakers.push(Arc::new(waker));
    }
    Ok(EventLoops { polls, wakers })
}

/// Every listen address's reuse-port group, and the addresses they bound (same order).
struct BoundGroups {
    groups: Vec<std::vec::IntoIter<Bound>>,
    addrs: Vec<SocketAddr>,
}

/// Opens one reuse-port group per listen address.
fn bind_all(settings: &Settings, workers: usize) -> Result<BoundGroups, StartError> {
    let mut groups = Vec::with_capacity(settings.listen.len());
    let mut bound = Vec::with_capacity(settings.listen.len());
    for listen in &settings.listen {
        let group = bind_group(listen, settings, workers).map_err(|source| StartError::Bind {
            listen: *listen,
            source,
        })?;
        groups.push(group.sockets.into_iter());
        bound.push(group.addr);
    }
    Ok(BoundGroups {
        groups,
        addrs: bound,
    })
}

/// One reuse-port group: a socket per worker, all bound to `addr`.
struct Group {
    sockets: Vec<Bound>,
    addr: SocketAddr,
}

/// One reuse-port group: a UDP socket or a TCP listener per worker.
fn bind_group(listen: &ListenAddr, settings: &Settings, workers: usize) -> io::Result<Group> {
    if listen.transport.is_stream() {
        let (listeners, local) = stream::open_group(listen.addr, workers)?;
        let tcp = listeners.into_iter();
        return Ok(Group {
            sockets: tcp
                .map(|listener| {
                    Bound::Tcp(StreamListener {
                        listener,
                        local,
                        transport: listen.transport,
                    })
                })
                .collect(),
            addr: local,
        });
    }
    let (sockets, local) = socket::open_group(listen.addr, workers, &settings.socket)?;
    let udp = sockets.into_iter().map(|socket| {
        Bound::Udp(WorkerSocket {
            socket,
            local,
            transport: listen.transport,
        })
    });
    Ok(Group {
        sockets: udp.collect(),
        addr: local,
    })
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
