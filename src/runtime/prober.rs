//! The prober thread: drives the groups' probe schedule ([`Prober`]) and sends its OPTIONS
//! from a duplicate of a worker's UDP listener socket, so the answers come back to the
//! listener (to whichever worker the kernel picks) and are consumed there by the core.
//!
//! The duplicate shares the socket's non-blocking mode: a send that would block is a lost
//! probe, which the schedule counts as a failure when it times out. The thread never receives.

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::groups::{Groups, ProbeOrigin, Prober};

/// How often answers are picked up at the latest (a verdict needs no finer time).
const PICKUP: Duration = Duration::from_millis(20);

/// The running prober thread.
pub struct ProbeThread {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl ProbeThread {
    /// Starts probing every destination of `groups` through `socket`, as `origin`.
    pub fn start(
        groups: Arc<Groups>,
        origin: ProbeOrigin,
        socket: UdpSocket,
    ) -> io::Result<ProbeThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ferrovia-probe".into())
            .spawn(move || run(Prober::new(groups, origin, Instant::now()), &socket, &flag))?;
        Ok(ProbeThread { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

fn run(mut prober: Prober, socket: &UdpSocket, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let next = prober.poll(now, |bytes, to| {
            if let Err(e) = socket.send_to(bytes, to) {
                log::debug!("probe to {to}: {e}");
            }
        });
        let wait = next.saturating_duration_since(Instant::now()).min(PICKUP);
        std::thread::park_timeout(wait.max(Duration::from_millis(1)));
    }
}
