//! The stats thread: absorbs the workers' hand-offs, recycles their intervals, and answers
//! snapshot requests.
//!
//! It waits on two channels: intervals from the workers and commands from the handle and the
//! metrics server. Before answering a command it absorbs every interval already queued, so a
//! snapshot includes each hand-off sent before it was asked for. The views live behind an
//! `Arc`; a snapshot shares them, and absorbing copies them only while a snapshot is held.

use crate::contact::ContactTable;
use crate::protect::Protection;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};

use super::Snapshot;
use super::policy::PolicyHooks;
use super::snapshot::{Inner, Views, add_histogram};
use super::worker::{Interval, POOL, WorkerStats};

/// What the handle and the metrics server ask of the stats thread.
#[derive(Debug)]
pub(super) enum Command {
    /// Reply with a snapshot.
    Snapshot(Sender<Snapshot>),
    /// Reply with a last snapshot and stop.
    Shutdown(Sender<Snapshot>),
    /// Carry the policy's counters in every snapshot and answer reloads with it.
    AttachPolicy(PolicyHooks),
    /// Reload the policy and reply with the result.
    Reload(Sender<Result<String, String>>),
}

/// The running stats thread.
pub(super) struct Aggregator {
    pub(super) commands: Sender<Command>,
    pub(super) thread: JoinHandle<()>,
}

/// The shared tables whose figures every snapshot carries.
pub(super) struct Tables {
    pub(super) contact: Option<Arc<ContactTable>>,
    pub(super) protect: Option<Arc<Protection>>,
    pub(super) registrar: Option<Arc<crate::registrar::Registrar>>,
    pub(super) groups: Option<Arc<crate::groups::Groups>>,
    pub(super) dns: Option<Arc<crate::dns::DnsCache>>,
    pub(super) media: Option<Arc<crate::media::Media>>,
}

/// Makes the recorders and the channels between them and a new stats thread.
pub(super) fn spawn(
    workers: usize,
    interval: Duration,
    tables: Tables,
) -> io::Result<(Aggregator, Vec<WorkerStats>)> {
    let now = Instant::now();
    // Every interval that exists fits in this channel at once, so a send never finds it full.
    let (to_stats, intervals) = bounded(workers.max(1) * POOL);
    let mut recycle = Vec::with_capacity(workers);
    let mut recorders = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (spares, recycled) = bounded(POOL);
        for _ in 1..POOL {
            // Fewer than POOL sends into a channel of capacity POOL whose receiver is alive.
            spares
                .send(Interval::new(worker, now))
                .expect("room for the spares");
        }
        recycle.push(spares);
        recorders.push(WorkerStats::new(
            worker,
            interval,
            to_stats.clone(),
            recycled,
            now,
        ));
    }
    drop(to_stats);
    let (commands, requests) = unbounded();
    let mut state = State::new(workers, interval, now, recycle);
    state.contact = tables.contact;
    state.protect = tables.protect;
    state.registrar = tables.registrar;
    state.groups = tables.groups;
    state.dns = tables.dns;
    state.media = tables.media;
    let thread = std::thread::Builder::new()
        .name("ferrovia-stats".into())
        .spawn(move || state.run(intervals, requests))?;
    Ok((Aggregator { commands, thread }, recorders))
}

/// Asks for a snapshot; `None` if the stats thread is gone or (with a timeout) too slow.
pub(super) fn request_snapshot(
    commands: &Sender<Command>,
    timeout: Option<Duration>,
) -> Option<Snapshot> {
    let (reply, answer) = bounded(1);
    commands.send(Command::Snapshot(reply)).ok()?;
    match timeout {
        Some(timeout) => answer.recv_timeout(timeout).ok(),
        None => answer.recv().ok(),
    }
}

/// Asks the stats thread to reload the policy; `None` when it is gone or too slow.
pub(super) fn request_reload(
    commands: &Sender<Command>,
    timeout: Duration,
) -> Option<Result<String, String>> {
    let (reply, answer) = bounded(1);
    commands.send(Command::Reload(reply)).ok()?;
    answer.recv_timeout(timeout).ok()
}

/// Asks the stats thread for its last snapshot and to stop.
pub(super) fn request_shutdown(commands: &Sender<Command>) -> Option<Snapshot> {
    let (reply, answer) = bounded(1);
    commands.send(Command::Shutdown(reply)).ok()?;
    answer.recv().ok()
}

enum Event {
    Interval(Box<Interval>),
    WorkersGone,
    Command(Command),
    HandlesGone,
}

struct State {
    inner: Arc<Inner>,
    started: Instant,
    recycle: Vec<Sender<Box<Interval>>>,
    merged_stale: bool,
    contact: Option<Arc<ContactTable>>,
    policy: Option<PolicyHooks>,
    protect: Option<Arc<Protection>>,
    registrar: Option<Arc<crate::registrar::Registrar>>,
    groups: Option<Arc<crate::groups::Groups>>,
    dns: Option<Arc<crate::dns::DnsCache>>,
    media: Option<Arc<crate::media::Media>>,
}

impl State {
    fn new(
        workers: usize,
        interval: Duration,
        now: Instant,
        recycle: Vec<Sender<Box<Interval>>>,
    ) -> State {
        let inner = Inner {
            workers: (0..workers).map(|_| Views::new()).collect(),
            merged: Views::new(),
            interval,
        };
        State {
            inner: Arc::new(inner),
            started: now,
            recycle,
            merged_stale: false,
            contact: None,
            policy: None,
            protect: None,
            registrar: None,
            groups: None,
            dns: None,
            media: None,
        }
    }

    fn run(mut self, intervals: Receiver<Box<Interval>>, commands: Receiver<Command>) {
        let mut intervals = Some(intervals);
        loop {
            match next_event(intervals.as_ref(), &commands) {
                Event::Interval(interval) => self.absorb(interval),
                Event::WorkersGone => intervals = None,
                Event::HandlesGone => return,
                Event::Command(command) => {
                    if let Some(queued) = &intervals {
                        while let Ok(interval) = queued.try_recv() {
                            self.absorb(interval);
                        }
                    }
                    if self.answer(command) {
                        return;
                    }
                }
            }
        }
    }

    /// Answers a command; true when the thread should stop.
    fn answer(&mut self, command: Command) -> bool {
        let (reply, stop) = match command {
            Command::Snapshot(reply) => (reply, false),
            Command::Shutdown(reply) => (reply, true),
            Command::AttachPolicy(hooks) => {
                self.policy = Some(hooks);
                return false;
            }
            Command::Reload(reply) => {
                let result = match &self.policy {
                    Some(p) => (p.reload)(),
                    None => Err("no policy to reload".into()),
                };
                let _ = reply.send(result);
                return false;
            }
        };
        // The asker may have given up waiting; that is not an error here.
        let _ = reply.send(self.snapshot());
        stop
    }

    /// Adds one hand-off to its worker's views and sends the cleared interval back.
    fn absorb(&mut self, mut interval: Box<Interval>) {
        let inner = Arc::make_mut(&mut self.inner);
        let Some(views) = inner.workers.get_mut(interval.worker) else {
            return;
        };
        let cumulative = &mut views.cumulative;
        cumulative.counters.add(&interval.counters);
        for (into, from) in cumulative.latency.iter_mut().zip(&interval.latency) {
            add_histogram(into, from);
        }
        cumulative.period += interval.period();
        let last = &mut views.last_interval;
        std::mem::swap(&mut last.latency, &mut interval.latency);
        std::mem::swap(&mut last.counters, &mut interval.counters);
        last.period = interval.period();
        interval.clear();
        self.merged_stale = true;
        if let Some(back) = self.recycle.get(interval.worker) {
            // Full cannot happen (the worker owns POOL intervals); Disconnected means the
            // worker is gone and the interval is simply freed.
            let _ = back.try_send(interval);
        }
    }

    fn snapshot(&mut self) -> Snapshot {
        if self.merged_stale {
            self.merge();
            self.merged_stale = false;
        }
        let contact = self.contact.as_ref().map(|table| table.counters());
        let policy = self.policy.as_ref().map(|p| p.handle.counters());
        let groups = self.groups.as_ref().map(|groups| groups.snapshot());
        let protect = self.protect.as_ref().map(|p| p.report(Instant::now()));
        Snapshot::new(self.inner.clone(), self.started.elapsed())
            .with_contact(contact)
            .with_policy(policy)
            .with_protect(protect)
            .with_registrar(self.registrar.clone())
            .with_groups(groups)
            .with_dns(self.dns.as_ref().map(|d| d.snapshot()))
            .with_media(self.media.as_ref().map(|m| m.counters.snapshot()))
    }

    /// Rebuilds the merged views as the sum of the workers' views.
    fn merge(&mut self) {
        let Inner {
            workers, merged, ..
        } = Arc::make_mut(&mut self.inner);
        merged.cumulative.clear();
        merged.last_interval.clear();
        for views in workers.iter() {
            merged.cumulative.merge(&views.cumulative);
            merged.last_interval.merge(&views.last_interval);
        }
    }
}

fn next_event(intervals: Option<&Receiver<Box<Interval>>>, commands: &Receiver<Command>) -> Event {
    let Some(intervals) = intervals else {
        return commands.recv().map_or(Event::HandlesGone, Event::Command);
    };
    select! {
        recv(intervals) -> got => got.map_or(Event::WorkersGone, Event::Interval),
        recv(commands) -> got => got.map_or(Event::HandlesGone, Event::Command),
    }
}
