//! The prober thread: drives the groups' probe schedule ([`Prober`]) and sends its OPTIONS
//! the way the proxy sends its own traffic, so that the answers come back to it and are
//! consumed, never forwarded:
//!
//! - over UDP, from a duplicate of the listener's socket: the answer comes back to the
//!   listener, to whichever worker the kernel picks, and is consumed there by the core. The
//!   duplicate shares the socket's non-blocking mode: a send that would block is a lost
//!   probe, which the schedule counts as a failure when it times out;
//! - over TCP and TLS, on a connection of the prober's own ([`links`]), opened as a worker
//!   opens its outbound connections; the answer comes back on it and is consumed here.
//!
//! The thread receives nothing over UDP; it waits on its connections (or sleeps) between
//! polls, at most [`PICKUP`] at a time.

mod links;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::debug;

use self::links::Links;
use super::stream::Secure;
use crate::groups::{Groups, Probe, ProbeOrigin, Prober};

/// How often answers are picked up at the latest (a verdict needs no finer time).
const PICKUP: Duration = Duration::from_millis(20);

/// Where the probes of one of the origin's listeners leave from.
pub(crate) enum ProbeSocket {
    /// A duplicate of a UDP listener's socket.
    Udp(UdpSocket),
    /// A TCP or TLS listener's address: connections are opened from its IP.
    Stream(SocketAddr),
}

/// The running prober thread.
pub struct ProbeThread {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl ProbeThread {
    /// Starts probing every destination of `groups` from `origin`'s listeners, whose sockets
    /// are `sockets` (in the same order); `secure` is the outbound TLS configuration (TLS
    /// destinations need one).
    pub(crate) fn start(
        groups: Arc<Groups>,
        origin: ProbeOrigin,
        sockets: Vec<ProbeSocket>,
        secure: Option<Arc<Secure>>,
    ) -> io::Result<ProbeThread> {
        let streams = sockets.iter().any(|s| matches!(s, ProbeSocket::Stream(_)));
        let links = match streams {
            true => Some(Links::new(Arc::clone(&groups), secure)?),
            false => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let prober = Prober::new(groups, origin, Instant::now());
        let thread = std::thread::Builder::new()
            .name("ferrovia-probe".into())
            .spawn(move || run(prober, &sockets, links, &flag))?;
        Ok(ProbeThread { stop, thread })
    }

    /// Stops the thread and waits for it (within one [`PICKUP`]).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

fn run(mut prober: Prober, sockets: &[ProbeSocket], mut links: Option<Links>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let next = prober.poll(now, |probe| send(&probe, sockets, links.as_mut(), now));
        let wait = next
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), PICKUP);
        match links.as_mut() {
            Some(links) => links.wait(wait),
            None => std::thread::park_timeout(wait),
        }
    }
}

fn send(probe: &Probe<'_>, sockets: &[ProbeSocket], links: Option<&mut Links>, now: Instant) {
    match (sockets.get(probe.listener), links) {
        (Some(ProbeSocket::Udp(socket)), _) => {
            if let Err(e) = socket.send_to(probe.bytes, probe.to) {
                debug!("probe to {}: {e}", probe.to);
            }
        }
        (Some(ProbeSocket::Stream(local)), Some(links)) => links.send(probe, *local, now),
        // Not built that way: no socket for the listener the schedule chose.
        _ => {}
    }
}
