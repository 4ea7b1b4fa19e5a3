//! The metrics HTTP server: one thread, one connection at a time, one request per connection.
//!
//! It talks only to the stats thread (for snapshots), never to a worker, so nothing it does can
//! slow the hot path. A connection gets [`DEADLINE`] in total to send a request head of at most
//! [`MAX_HEAD`] bytes: a slow client is answered 408 when the deadline passes, an oversized
//! head 431, a malformed one 400; then the connection is closed. A hostile client can
//! therefore delay other scrapers by at most [`DEADLINE`] per connection it opens.
//!
//! Stopping wakes the thread's `mio` poll; a connection being served finishes first.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::routes::{self, Head, Response};
use super::routes_bans;
use super::thread::{Command, request_snapshot};
use crate::protect::Protection;

/// The longest a connection may take to send its request and read the answer.
pub(super) const DEADLINE: Duration = Duration::from_secs(2);
/// The largest request head accepted.
pub(super) const MAX_HEAD: usize = 8 * 1024;
/// The most bytes read and discarded after answering, so closing does not reset the answer.
const MAX_DRAIN: usize = 64 * 1024;
/// The longest wait for the client to close after the answer.
const DRAIN_WAIT: Duration = Duration::from_millis(200);

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);

/// The running metrics server.
#[derive(Debug)]
pub(super) struct Server {
    addr: SocketAddr,
    waker: Arc<Waker>,
    thread: JoinHandle<()>,
}

impl Server {
    /// The bound address.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread and waits for it.
    pub(super) fn stop(self) {
        if let Err(e) = self.waker.wake() {
            log::error!("cannot wake the metrics server to stop it: {e}");
            return;
        }
        if self.thread.join().is_err() {
            log::error!("the metrics server thread panicked");
        }
    }
}

/// Binds `addr` and serves on a new thread.
pub(super) fn spawn(
    addr: SocketAddr,
    commands: Sender<Command>,
    protect: Option<Arc<Protection>>,
) -> io::Result<Server> {
    let backend = Backend { commands, protect };
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let thread = std::thread::Builder::new()
        .name("ferrovia-metrics".into())
        .spawn(move || serve(poll, listener, &backend))?;
    log::info!("metrics on http://{addr}/metrics");
    Ok(Server {
        addr,
        waker,
        thread,
    })
}

/// What the server answers from: the stats thread, and protection's bans.
struct Backend {
    commands: Sender<Command>,
    protect: Option<Arc<Protection>>,
}

fn serve(mut poll: Poll, listener: TcpListener, backend: &Backend) {
    let mut events = Events::with_capacity(8);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("metrics server stops: {e}");
            return;
        }
        if events.iter().any(|e| e.token() == WAKE) {
            return;
        }
        accept_all(&listener, backend);
    }
}

/// Serves every pending connection (the listener is edge-triggered).
fn accept_all(listener: &TcpListener, backend: &Backend) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => serve_connection(stream.into(), backend),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("metrics server cannot accept: {e}");
                return;
            }
        }
    }
}

fn serve_connection(mut stream: TcpStream, backend: &Backend) {
    let deadline = Instant::now() + DEADLINE;
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let response = match read_head(&mut stream, deadline) {
        Received::Complete { method, target } if target == "/reload" => {
            routes::answer_reload(&method, || {
                super::thread::request_reload(&backend.commands, remaining(deadline))
            })
        }
        Received::Complete { method, target } => {
            let protect = backend.protect.as_deref();
            routes_bans::answer(&method, &target, protect, Instant::now()).unwrap_or_else(|| {
                routes::answer(&method, &target, || {
                    request_snapshot(&backend.commands, Some(remaining(deadline)))
                })
            })
        }
        Received::Invalid => Response::error(400, "malformed HTTP request"),
        Received::TooLarge => Response::error(431, "request head too large"),
        Received::TimedOut => Response::error(408, "request not received in time"),
        Received::Closed => return,
    };
    let _ = stream.set_write_timeout(Some(remaining(deadline)));
    if stream.write_all(&response.to_bytes()).is_ok() {
        linger(&mut stream, deadline);
    }
}

/// What came of reading a request head.
enum Received {
    Complete { method: String, target: String },
    Invalid,
    TooLarge,
    TimedOut,
    Closed,
}

/// Reads until httparse has a complete or an invalid head, the cap, the deadline or EOF.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Received {
    let mut buf = [0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        if Instant::now() >= deadline {
            return Received::TimedOut;
        }
        if stream.set_read_timeout(Some(remaining(deadline))).is_err() {
            return Received::Closed;
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) if len == 0 => return Received::Closed,
            Ok(0) => return Received::Invalid, // EOF inside a head
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Received::TimedOut,
            Err(_) => return Received::Closed,
        }
        match routes::parse(&buf[..len]) {
            Head::Complete { method, target } => return Received::Complete { method, target },
            Head::Invalid => return Received::Invalid,
            Head::Partial if len == buf.len() => return Received::TooLarge,
            Head::Partial => {}
        }
    }
}

/// Half-closes, then reads what the client still sends (bounded) until it closes, so the
/// kernel does not reset the connection and discard the answer.
fn linger(stream: &mut TcpStream, deadline: Instant) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let until = deadline.min(Instant::now() + DRAIN_WAIT);
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX_DRAIN {
        if stream.set_read_timeout(Some(remaining(until))).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Time left until `deadline`, at least 1 ms (a zero timeout means "none" to the socket).
fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
