//! One worker: a thread pinned to a core that owns its sockets, its `mio::Poll`, its
//! buffers and its recorder, and moves datagrams through the core with no lock and no
//! allocation per message.
//!
//! The loop: wait for readiness (or a wake from [`Server::shutdown`](super::Server::shutdown),
//! or a quarter-second tick); for each readable socket, receive a batch, hand each datagram to
//! [`Proxy::handle`] with its own output slot, then send the batch's outcomes grouped by
//! socket. A socket is drained until `WouldBlock` (mio's edge-triggered contract; a batch
//! shorter than the slots counts, since the kernel stopped on an empty queue), at most
//! [`BATCHES_PER_TURN`] batches at a time so the other sockets and the stop flag get a turn.
//! The stop flag is checked between turns, so an in-flight batch is always finished; on
//! the way out each socket gets one more bounded turn for what the kernel already queued.
//!
//! TCP runs in the same loop (`stream_input` and [`Streams`]): after the UDP sockets, each
//! turn takes hand-offs from other workers, accepts, finishes connects and writes queued
//! bytes, reads ready connections and hands their framed messages to the core, then writes
//! the batch. A message may arrive over one transport and leave over the other; both share
//! the worker's output slots, and every batch ends with one send per UDP socket and one
//! `writev` per connection.

mod parked;
mod stream_input;
mod ws_input;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use log::{debug, error, warn};
use mio::net::UdpSocket;
use mio::{Events, Poll, Token};

use super::note::{Kind, Note};
use super::side::SideLinks;
use super::stream::{LISTENER_TOKENS, Streams};
use super::sys::{self, Outgoing, RecvBatch, SendScratch};
use crate::policy::{Engine, PolicyHandle, Router};
use crate::protect::Protection;
use crate::proxy::{
    Context, DropReason, Input, OUTPUT_BUFFER_SIZE, Outcome, Proxy, Tables, Transmit, Transport,
    WorkerState,
};
use crate::record::Recorder;
use crate::sip::Flow;

/// The token of the waker that interrupts a worker's poll.
pub(crate) const WAKE: Token = Token(usize::MAX);
/// Longest sleep in `poll`, so the recorder is flushed and the stop flag seen while idle.
const IDLE_TICK: Duration = Duration::from_millis(250);
/// Batches taken from one socket before the loop looks at the others.
const BATCHES_PER_TURN: usize = 16;

/// A worker's socket and the listener address the core knows it by.
pub(crate) struct WorkerSocket {
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) transport: Transport,
}

/// Everything a worker thread starts with.
pub(crate) struct WorkerSetup<R> {
    pub(crate) index: usize,
    pub(crate) core: Option<CoreId>,
    pub(crate) poll: Poll,
    pub(crate) sockets: Vec<WorkerSocket>,
    pub(crate) proxy: Arc<Proxy>,
    /// Edge protection, screening each message before the core.
    pub(crate) protect: Option<Arc<Protection>>,
    pub(crate) tables: Arc<Tables>,
    /// The routing policy, when the service runs one (the worker makes its engine).
    pub(crate) policy: Option<Arc<PolicyHandle>>,
    pub(crate) recorder: R,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) batch: usize,
    pub(crate) streams: Streams,
    /// The resolver's link, when one is wired (the core then parks unresolved names).
    pub(crate) side: SideLinks,
    /// Told once the worker has built its buffers, so that `Server::start` returns a server
    /// whose workers are all ready (and allocate nothing more).
    pub(crate) ready: Option<crossbeam_channel::Sender<()>>,
}

/// Runs a worker until the stop flag is set; returns its recorder.
pub(crate) fn run<R: Recorder>(mut setup: WorkerSetup<R>) -> R {
    pin(setup.index, setup.core);
    let ready = setup.ready.take();
    let mut worker = Worker::new(setup);
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    worker.event_loop();
    worker.drain_all();
    worker.drop_parked();
    worker.streams.shutdown(&mut worker.recorder);
    worker.recorder.flush();
    worker.recorder
}

fn pin(index: usize, core: Option<CoreId>) {
    match core {
        Some(id) if core_affinity::set_for_current(id) => {
            debug!("worker {index} pinned to core {}", id.id);
        }
        Some(id) => warn!(
            "worker {index}: cannot pin to core {}; running unpinned",
            id.id
        ),
        None => warn!("worker {index}: core list unavailable; running unpinned"),
    }
}

/// The core's outcome for `input`, unless edge protection decides first (a drop, a 503).
fn screen_then_handle(
    protect: Option<&Protection>,
    proxy: &Proxy,
    ctx: &mut Context<'_>,
    input: Input<'_>,
    out: &mut [u8],
) -> Outcome {
    match protect.and_then(|p| p.screen(proxy, input, out)) {
        Some(outcome) => outcome,
        None => proxy.handle(input, ctx, out),
    }
}

struct Worker<R> {
    index: usize,
    /// Datagrams one receive call can return.
    batch: usize,
    poll: Poll,
    sockets: Vec<WorkerSocket>,
    proxy: Arc<Proxy>,
    protect: Option<Arc<Protection>>,
    /// The shared tables the core reads and writes through its context.
    tables: Arc<Tables>,
    /// This worker's own state in the core (its parked messages).
    state: WorkerState,
    recorder: R,
    stop: Arc<AtomicBool>,
    rx: RecvBatch,
    /// One output slot of `OUTPUT_BUFFER_SIZE` per receive slot.
    out: Box<[u8]>,
    /// Per socket: datagrams to send, and what to record for each (same index).
    queues: Vec<Vec<Outgoing>>,
    notes: Vec<Vec<Note>>,
    scratch: SendScratch,
    /// Per socket: readable and not yet drained to `WouldBlock`.
    backlog: Vec<bool>,
    /// Per socket: cumulative kernel drops last reported.
    kernel_drops: Vec<u64>,
    /// TCP listeners and connections.
    streams: Streams,
    /// Output slots taken by stream messages since the last send.
    used: usize,
    /// The resolver's link, when one is wired.
    side: SideLinks,
    /// Per parking slot: the arrival time (ns) of the message parked there.
    parked_arrival: Box<[u64]>,
    /// When the last UDP batch of this turn was handed to the core: the turn's clock for
    /// streams, parked messages and the recorder (at most one batch old), so that a turn
    /// that processed a batch reads the clock once.
    batch_at: Option<Instant>,
}

impl<R: Recorder> Worker<R> {
    fn new(setup: WorkerSetup<R>) -> Worker<R> {
        let batch = setup.batch.max(1);
        let n = setup.sockets.len();
        let parking = setup.proxy.config().parking.messages;
        let mut state = WorkerState::new(setup.proxy.config());
        state.lane = setup.index;
        // The routing policy's engine is made here, on the worker's thread: its Lua VM never
        // leaves it.
        state.router = setup.policy.as_ref().map(|handle| {
            Box::new(Engine::new(Arc::clone(handle), setup.index)) as Box<dyn Router>
        });
        Worker {
            index: setup.index,
            batch,
            poll: setup.poll,
            sockets: setup.sockets,
            state,
            proxy: setup.proxy,
            protect: setup.protect,
            tables: setup.tables,
            recorder: setup.recorder,
            stop: setup.stop,
            rx: RecvBatch::new(batch),
            out: vec![0u8; batch * OUTPUT_BUFFER_SIZE].into_boxed_slice(),
            queues: (0..n).map(|_| Vec::with_capacity(batch)).collect(),
            notes: (0..n).map(|_| Vec::with_capacity(batch)).collect(),
            scratch: SendScratch::new(batch),
            backlog: vec![true; n],
            kernel_drops: vec![0; n],
            streams: setup.streams,
            used: 0,
            parked_arrival: vec![0; parking].into_boxed_slice(),
            side: setup.side,
            batch_at: None,
        }
    }

    fn event_loop(&mut self) {
        let mut events = Events::with_capacity(64);
        while !self.stop.load(Ordering::Acquire) {
            let busy = self.backlog.contains(&true) || self.streams.busy();
            let tick = self.streams.tick().map_or(IDLE_TICK, |t| t.min(IDLE_TICK));
            let tick = self.parking_tick().map_or(tick, |t| t.min(tick));
            let timeout = if busy { Duration::ZERO } else { tick };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                error!("worker {}: poll failed, stopping: {e}", self.index);
                return;
            }
            self.dispatch(&events);
            for i in 0..self.sockets.len() {
                if self.backlog[i] {
                    self.backlog[i] = !self.drain(i);
                }
            }
            let now = self.batch_at.take().unwrap_or_else(Instant::now);
            self.turn_streams(now);
            self.turn_parked(now);
            self.recorder.maybe_flush(now);
        }
    }

    /// Notes which sockets, listeners and connections reported readiness.
    fn dispatch(&mut self, events: &Events) {
        for event in events.iter().filter(|e| e.token() != WAKE) {
            // EPOLLERR on a UDP socket: ICMP errors wait in its error queue.
            if event.is_error() && event.token().0 < self.sockets.len() {
                self.read_unreachable(event.token().0);
            }
            match self.backlog.get_mut(event.token().0) {
                Some(ready) => *ready = true,
                None if event.token().0 >= LISTENER_TOKENS => self.streams.on_event(event),
                None => {}
            }
        }
    }

    /// After the stop flag: one bounded turn on every socket and connection, so what the
    /// kernel queued before the stop is handled rather than left behind.
    fn drain_all(&mut self) {
        let mut events = Events::with_capacity(64);
        if self.poll.poll(&mut events, Some(Duration::ZERO)).is_ok() {
            self.dispatch(&events);
        }
        for i in 0..self.sockets.len() {
            self.drain(i);
        }
        self.turn_streams(Instant::now());
    }

    /// Moves batches from socket `i` until it would block (`true`) or its turn is over.
    fn drain(&mut self, i: usize) -> bool {
        for _ in 0..BATCHES_PER_TURN {
            match self.rx.recv(&self.sockets[i].socket) {
                Ok(n) => {
                    self.process(i, n);
                    // A short batch means the kernel met an empty queue (recvmmsg with
                    // MSG_DONTWAIT stops there; the portable loop saw WouldBlock): the
                    // socket is drained, and a later arrival raises a new edge.
                    if n < self.batch {
                        return true;
                    }
                }
                Err(e) => match e.kind() {
                    std::io::ErrorKind::WouldBlock => return true,
                    std::io::ErrorKind::Interrupted => {}
                    // An ICMP error for an earlier send, reported on this call.
                    _ if sys::is_icmp_report(&e) => {
                        self.recorder.send_error();
                        self.read_unreachable(i);
                    }
                    _ => {
                        warn!(
                            "worker {}: receive on {} failed: {e}",
                            self.index, self.sockets[i].local
                        );
                        return true;
                    }
                },
            }
        }
        false
    }

    /// Reads socket `i`'s queued ICMP errors (bounded, never blocking): a destination
    /// unreachable for a group destination takes it down at once. Read even without groups,
    /// so the queue never holds the socket's receive buffer.
    fn read_unreachable(&mut self, i: usize) {
        let groups = self.tables.groups.as_deref();
        let now = Instant::now();
        sys::read_unreachable(&self.sockets[i].socket, |addr| {
            if let Some(groups) = groups {
                groups.note_unreachable(addr, Transport::Udp, now);
            }
        });
    }

    /// Hands the `n` datagrams just received on socket `i` to the core, then sends.
    fn process(&mut self, i: usize, n: usize) {
        let now = Instant::now();
        self.batch_at = Some(now);
        // The kernel's arrival time (SO_TIMESTAMPNS) is the rule; the clock is read only for
        // a datagram without one.
        let mut received_ns = None;
        self.recorder.received(n);
        let (local, transport) = (self.sockets[i].local, self.sockets[i].transport);
        for k in 0..n {
            let Some(datagram) = self.rx.datagram(k) else {
                self.recorder.dropped(DropReason::NotSip);
                continue;
            };
            if datagram.truncated {
                self.recorder.dropped(DropReason::TooLarge);
                continue;
            }
            let start = k * OUTPUT_BUFFER_SIZE;
            let out = &mut self.out[start..start + OUTPUT_BUFFER_SIZE];
            let input = Input {
                data: datagram.data,
                flow: Flow::new(transport, datagram.source, local),
                now,
            };
            let mut ctx = Context::new(&self.tables, &mut self.state);
            let protect = self.protect.as_deref();
            let outcome = screen_then_handle(protect, &self.proxy, &mut ctx, input, out);
            let arrival_ns = datagram
                .arrival_ns
                .unwrap_or_else(|| *received_ns.get_or_insert_with(sys::realtime_ns));
            self.enqueue(k, outcome, arrival_ns);
        }
        self.note_kernel_drops(i);
        self.send_queued();
    }

    fn enqueue(&mut self, slot: usize, outcome: Outcome, arrival_ns: u64) {
        let (transmit, kind) = match outcome {
            Outcome::Forward(t) => (t, Kind::Forward(t.direction)),
            Outcome::Reply { transmit, status } => (transmit, Kind::Reply(status)),
            Outcome::Drop(reason) => return self.recorder.dropped(reason),
            Outcome::Park(ticket) => return self.ask(slot, ticket, arrival_ns),
        };
        if transmit.len > OUTPUT_BUFFER_SIZE {
            return self.recorder.dropped(DropReason::OutputTooLarge);
        }
        let note = Note { kind, arrival_ns };
        if transmit.transport.is_stream() {
            let start = slot * OUTPUT_BUFFER_SIZE;
            let (out, recorder) = (&self.out[..], &mut self.recorder);
            return self.streams.enqueue(out, start, transmit, note, recorder);
        }
        let Some(s) = self.socket_for(&transmit) else {
            debug!("worker {}: no socket for {transmit:?}", self.index);
            return self.recorder.send_error();
        };
        self.queues[s].push(Outgoing {
            slot,
            len: transmit.len,
            destination: transmit.destination,
            sent: false,
        });
        self.notes[s].push(note);
    }

    /// The socket of the listener the core chose; else any UDP socket of the right family.
    fn socket_for(&self, transmit: &Transmit) -> Option<usize> {
        let udp = |s: &WorkerSocket| s.transport == transmit.transport;
        self.sockets
            .iter()
            .position(|s| udp(s) && s.local == transmit.local)
            .or_else(|| {
                let family = transmit.destination.is_ipv4();
                self.sockets
                    .iter()
                    .position(|s| udp(s) && s.local.is_ipv4() == family)
            })
    }

    fn note_kernel_drops(&mut self, i: usize) {
        let Some(cumulative) = self.rx.kernel_drops() else {
            return;
        };
        if self.kernel_drops[i] != u64::from(cumulative) {
            self.kernel_drops[i] = u64::from(cumulative);
            self.recorder.kernel_drops(self.kernel_drops.iter().sum());
        }
    }

    /// Sends every queued datagram and stream message, then records each one's fate with one
    /// clock read per transport that sent something (none when nothing was queued).
    fn send_queued(&mut self) {
        self.used = 0;
        let mut queued = false;
        for (socket, queue) in self.sockets.iter().zip(self.queues.iter_mut()) {
            if !queue.is_empty() {
                queued = true;
                let stale = sys::send_batch(
                    &socket.socket,
                    &self.out,
                    OUTPUT_BUFFER_SIZE,
                    queue,
                    &mut self.scratch,
                );
                (0..stale).for_each(|_| self.recorder.send_error());
            }
        }
        if queued {
            self.record_sent();
        }
        self.streams.flush(&self.out, &mut self.recorder);
    }

    /// Records the fate of every queued datagram (each queue's notes match it index for
    /// index), then empties the queues.
    fn record_sent(&mut self) {
        let sent_ns = sys::realtime_ns();
        for (queue, notes) in self.queues.iter_mut().zip(self.notes.iter_mut()) {
            for (out, note) in queue.iter().zip(notes.iter()) {
                match out.sent {
                    false => self.recorder.send_error(),
                    true => note.sent(&mut self.recorder, sent_ns),
                }
            }
            queue.clear();
            notes.clear();
        }
    }
}
