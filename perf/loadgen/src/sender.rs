//! The load generator's sending side: many flows (one UDP socket, so one source port, each),
//! requests paced at a fixed offered rate and sent in `sendmmsg` bursts, answers matched back by
//! sequence number, round trips in an HdrHistogram.
//!
//! Contract: a run is bounded by its count and its duration, then waits at most its grace period
//! for outstanding answers; what is still unanswered then is lost. One [`Sender`] serves many runs
//! (the rate search reuses its sockets); each run has its own [`RunId`], so late answers to an
//! earlier run are counted as stale, never matched. The loop is single-threaded on purpose: on a
//! small machine every core it does not take is one the forwarder under test can use.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use socket2::SockAddr;

use crate::batch::{Received, RecvBatch, SendScratch, flush};
use crate::hgrm::Percentiles;
use crate::net::{Sharing, any_port_toward, udp_socket};
use crate::pacer::Pacer;
use crate::sip::{CallRef, Message, RequestSpec, RequestTemplate, RunId, StartLine};
use crate::tracker::Tracker;

/// Largest answer read; a 200 from the reflector is a few hundred bytes.
const RECV_SLOT: usize = 16 * 1024;
/// The longest the loop sleeps while requests are due soon.
const MAX_TICK: Duration = Duration::from_millis(1);
/// The longest the loop sleeps while waiting for the last answers.
const GRACE_TICK: Duration = Duration::from_millis(10);

/// One bounded run.
#[derive(Clone, Copy, Debug)]
pub struct SendPlan {
    /// The run id in it is replaced by a fresh one for each run.
    pub spec: RequestSpec,
    /// Offered requests per second.
    pub rate: u64,
    pub count: u64,
    pub duration: Duration,
    /// How long to wait for answers after the last request.
    pub grace: Duration,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct SendReport {
    pub plan: SendPlan,
    pub target: SocketAddr,
    pub flows: usize,
    pub batch: usize,
    pub request_bytes: usize,
    pub sent: u64,
    pub answered: u64,
    /// Sent and still unanswered after the grace period.
    pub lost: u64,
    pub counts: AnswerCounts,
    pub duplicates: u64,
    pub send_failed: u64,
    /// Times a socket's send buffer was full (the requests went later).
    pub send_blocked: u64,
    /// From the run's start to its last request.
    pub send_secs: f64,
    /// From the run's start to its last answer.
    pub answer_secs: f64,
    pub rtt: Histogram<u64>,
}

/// Datagrams that came back and were not first 2xx answers of this run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnswerCounts {
    /// Answers to a previous run (e.g. a previous search step).
    pub stale: u64,
    /// Answers of this run to a sequence number never sent.
    pub unknown: u64,
    pub provisional: u64,
    /// Final answers other than 2xx (the forwarder refused or failed).
    pub error_responses: u64,
    /// Requests, or responses whose Call-ID is not ours.
    pub foreign: u64,
    pub malformed: u64,
    pub truncated: u64,
}

impl SendReport {
    /// Requests per second actually offered.
    pub fn offered_per_sec(&self) -> f64 {
        per_sec(self.sent, self.send_secs)
    }

    /// Transactions (first 2xx answers) completed per second.
    pub fn answered_per_sec(&self) -> f64 {
        per_sec(self.answered, self.answer_secs.max(self.send_secs))
    }

    /// Whether the load generator kept to the asked rate (within 3%) for the asked count/time.
    pub fn kept_up(&self) -> bool {
        let asked_secs = self.plan.duration.as_secs_f64();
        let scheduled = (self.plan.rate as f64 * asked_secs).min(self.plan.count as f64);
        self.sent as f64 >= 0.97 * scheduled.floor()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let c = self.counts;
        serde_json::json!({
            "mode": "send", "target": self.target.to_string(),
            "reflector": self.plan.spec.reflector.to_string(),
            "method": format!("{:?}", self.plan.spec.method).to_uppercase(),
            "request_bytes": self.request_bytes, "flows": self.flows, "batch": self.batch,
            "rate": self.plan.rate, "count_limit": self.plan.count,
            "duration_limit_s": self.plan.duration.as_secs_f64(),
            "sent": self.sent, "answered": self.answered, "lost": self.lost,
            "duplicates": self.duplicates, "stale": c.stale, "unknown": c.unknown,
            "provisional": c.provisional, "error_responses": c.error_responses,
            "foreign": c.foreign, "malformed": c.malformed, "truncated": c.truncated,
            "send_failed": self.send_failed, "send_blocked": self.send_blocked,
            "send_s": round3(self.send_secs), "offered_per_s": self.offered_per_sec().round(),
            "answered_per_s": self.answered_per_sec().round(), "kept_up": self.kept_up(),
            "rtt": Percentiles::of(&self.rtt).to_json(),
        })
    }

    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let p = Percentiles::of(&self.rtt);
        format!(
            "send → {target} (reflector {reflector}): {flows} flows, {bytes} B requests, asked {rate}/s\n  \
             sent {sent} in {secs:.2} s ({offered:.0}/s{behind}), answered {answered}, lost {lost}, \
             duplicates {dup}, stale {stale}, error responses {err}\n  \
             transactions/s {tps:.0}; RTT µs p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
            p.p50,
            p.p90,
            p.p99,
            p.p999,
            p.max,
            target = self.target,
            reflector = self.plan.spec.reflector,
            flows = self.flows,
            bytes = self.request_bytes,
            rate = self.plan.rate,
            sent = self.sent,
            secs = self.send_secs,
            offered = self.offered_per_sec(),
            behind = if self.kept_up() {
                ""
            } else {
                ", BEHIND the asked rate"
            },
            answered = self.answered,
            lost = self.lost,
            dup = self.duplicates,
            stale = self.counts.stale,
            err = self.counts.error_responses,
            tps = self.answered_per_sec(),
        )
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One flow: its socket and a batch of request slots pre-filled with its template.
struct Flow {
    socket: UdpSocket,
    local: SocketAddr,
    template: RequestTemplate,
    slots: Vec<u8>,
}

/// The sockets and buffers, reused run after run.
pub struct Sender {
    target: SocketAddr,
    target_addr: SockAddr,
    flows: Vec<Flow>,
    next_flow: usize,
    batch: usize,
    poll: Poll,
    events: Events,
    recv: RecvBatch,
    scratch: SendScratch,
    failed: Vec<usize>,
    runs: u32,
}

/// The state of one run.
struct Run {
    id: RunId,
    start: Instant,
    tracker: Tracker,
    pacer: Pacer,
    counts: AnswerCounts,
    send_failed: u64,
    send_blocked: u64,
    last_send_ns: u64,
    last_answer_ns: u64,
}

impl Run {
    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Classifies one received datagram; only a first 2xx of this run records a round trip.
    fn on_datagram(&mut self, datagram: Received<'_>, now_ns: u64) {
        if datagram.truncated {
            self.counts.truncated += 1;
            return;
        }
        let Ok(message) = Message::parse(datagram.bytes) else {
            self.counts.malformed += 1;
            return;
        };
        let call_id = message.header(b"Call-ID", Some(b'i'));
        let call = call_id.and_then(|h| CallRef::parse(h.value));
        let (StartLine::Response { code }, Some(call)) = (message.start, call) else {
            self.counts.foreign += 1;
            return;
        };
        if call.run != self.id {
            self.counts.stale += 1;
            return;
        }
        match code {
            100..=199 => self.counts.provisional += 1,
            200..=299 => self.on_success(call.seq, now_ns),
            _ => self.counts.error_responses += 1,
        }
    }

    fn on_success(&mut self, seq: u64, now_ns: u64) {
        if let crate::tracker::Match::First { .. } = self.tracker.answered(seq, now_ns) {
            self.last_answer_ns = now_ns;
        }
    }
}

impl Sender {
    /// Opens `flows` sockets (at least 1) toward `target`, each sending `batch` requests per call.
    pub fn open(target: SocketAddr, flows: usize, batch: usize) -> io::Result<Sender> {
        Sender::open_from(target, None, flows, batch)
    }

    /// Like [`Sender::open`], with every flow bound to `source` (any loopback address, e.g.
    /// `127.0.0.2`, to be one source among many) instead of the loopback address.
    pub fn open_from(
        target: SocketAddr,
        source: Option<IpAddr>,
        flows: usize,
        batch: usize,
    ) -> io::Result<Sender> {
        let poll = Poll::new()?;
        let mut opened = Vec::with_capacity(flows.max(1));
        let bind = match source {
            Some(ip) => SocketAddr::new(ip, 0),
            None => any_port_toward(target),
        };
        for i in 0..flows.max(1) {
            let mut socket = udp_socket(bind, Sharing::Exclusive)?;
            poll.registry()
                .register(&mut socket, Token(i), Interest::READABLE)?;
            let local = socket.local_addr()?;
            opened.push(Flow {
                socket,
                local,
                template: RequestTemplate::new(&placeholder_spec(target), local),
                slots: Vec::new(),
            });
        }
        let batch = batch.max(1);
        Ok(Sender {
            target,
            target_addr: SockAddr::from(target),
            flows: opened,
            next_flow: 0,
            batch,
            poll,
            events: Events::with_capacity(1024),
            recv: RecvBatch::new(batch.max(32), RECV_SLOT),
            scratch: SendScratch::new(batch),
            failed: Vec::with_capacity(batch),
            runs: 0,
        })
    }

    /// One bounded run: send at the plan's rate, then wait out the grace period.
    pub fn run(&mut self, plan: &SendPlan, stop: &AtomicBool) -> io::Result<SendReport> {
        let mut run = self.start_run(plan);
        let send_limit_ns = duration_ns(plan.duration);
        loop {
            let now = run.elapsed_ns();
            if stop.load(Ordering::Relaxed) || run.pacer.is_done() || now >= send_limit_ns {
                break;
            }
            self.send_due(&mut run, now);
            let wait = run.pacer.wait_ns(run.elapsed_ns()).unwrap_or(0);
            self.receive(&mut run, Duration::from_nanos(wait).min(MAX_TICK))?;
        }
        let grace_end = run.elapsed_ns().saturating_add(duration_ns(plan.grace));
        while run.tracker.unanswered() > 0 && !stop.load(Ordering::Relaxed) {
            let left = grace_end.saturating_sub(run.elapsed_ns());
            if left == 0 {
                break;
            }
            self.receive(&mut run, Duration::from_nanos(left).min(GRACE_TICK))?;
        }
        Ok(self.report(plan, run))
    }

    fn start_run(&mut self, plan: &SendPlan) -> Run {
        self.runs = self.runs.wrapping_add(1);
        let id = fresh_run_id(self.runs);
        let spec = RequestSpec {
            run: id,
            ..plan.spec
        };
        for flow in &mut self.flows {
            flow.template = RequestTemplate::new(&spec, flow.local);
            flow.slots = flow.template.bytes().repeat(self.batch);
        }
        let count = plan.count.min(crate::sip::MAX_SEQ + 1);
        Run {
            id,
            start: Instant::now(),
            tracker: Tracker::new(usize::try_from(count).unwrap_or(usize::MAX)),
            pacer: Pacer::new(plan.rate, count, self.batch as u64),
            counts: AnswerCounts::default(),
            send_failed: 0,
            send_blocked: 0,
            last_send_ns: 0,
            last_answer_ns: 0,
        }
    }

    /// Sends what the pacer says is due, one burst per flow at most, rotating over the flows.
    fn send_due(&mut self, run: &mut Run, now_ns: u64) {
        for _ in 0..self.flows.len() {
            let due = run.pacer.due(now_ns);
            if due == 0 {
                return;
            }
            let flow = self.next_flow;
            self.next_flow = (self.next_flow + 1) % self.flows.len();
            let blocked = self.send_burst(flow, due.min(self.batch as u64) as usize, run);
            if blocked {
                return;
            }
        }
    }

    /// Sends `count` requests (numbered from the pacer's next) on one flow; true if blocked.
    fn send_burst(&mut self, flow: usize, count: usize, run: &mut Run) -> bool {
        let first_seq = run.pacer.released();
        let Some(flow) = self.flows.get_mut(flow) else {
            return false;
        };
        let slot_len = flow.template.bytes().len();
        for (i, slot) in flow.slots.chunks_mut(slot_len).take(count).enumerate() {
            flow.template.stamp(slot, first_seq + i as u64);
        }
        let mut queue = self.scratch.queue();
        let mut queued = 0;
        for slot in flow.slots.chunks(slot_len).take(count) {
            queued += usize::from(queue.push(slot, Some(&self.target_addr)));
        }
        let failed = &mut self.failed;
        failed.clear();
        let sent_at = run.elapsed_ns();
        let done = flush(&mut queue, &flow.socket, |i, _| failed.push(i));
        // Sent or failed; what the kernel would not take yet goes again in the next burst.
        let consumed = queued - queue.pending();
        for i in (0..consumed).filter(|i| !failed.contains(i)) {
            run.tracker.sent(first_seq + i as u64, sent_at);
        }
        run.pacer.release(consumed as u64);
        run.send_failed += done.failed as u64;
        run.send_blocked += u64::from(done.blocked);
        run.last_send_ns = sent_at;
        done.blocked
    }

    /// Waits up to `timeout` for answers and takes in everything that arrived.
    fn receive(&mut self, run: &mut Run, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for event in &self.events {
            let Some(flow) = self.flows.get(event.token().0) else {
                continue;
            };
            drain_answers(&flow.socket, &mut self.recv, run)?;
        }
        Ok(())
    }

    fn report(&self, plan: &SendPlan, run: Run) -> SendReport {
        let mut counts = run.counts;
        counts.unknown = run.tracker.unknown();
        SendReport {
            plan: *plan,
            target: self.target,
            flows: self.flows.len(),
            batch: self.batch,
            request_bytes: self.flows.first().map_or(0, |f| f.template.bytes().len()),
            sent: run.tracker.sent_count(),
            answered: run.tracker.answered_count(),
            lost: run.tracker.unanswered(),
            counts,
            duplicates: run.tracker.duplicates(),
            send_failed: run.send_failed,
            send_blocked: run.send_blocked,
            send_secs: run.last_send_ns as f64 / 1e9,
            answer_secs: run.last_answer_ns as f64 / 1e9,
            rtt: run.tracker.rtt().clone(),
        }
    }
}

/// Reads one flow's socket until it has nothing more.
fn drain_answers(socket: &UdpSocket, recv: &mut RecvBatch, run: &mut Run) -> io::Result<()> {
    loop {
        match recv.recv(socket) {
            Ok(_) => {
                let now = run.elapsed_ns();
                for datagram in recv.datagrams() {
                    run.on_datagram(datagram, now);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // An ICMP error from an earlier send: nothing to read, the socket still works.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
    }
}

/// A spec to fill the flows before the first run (each run renders its own).
fn placeholder_spec(target: SocketAddr) -> RequestSpec {
    RequestSpec {
        method: crate::sip::Method::Options,
        reflector: target,
        route: false,
        size: 0,
        run: RunId(0),
    }
}

/// Different for every run of this process and, very likely, from any other process's.
fn fresh_run_id(run_number: u32) -> RunId {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    RunId(clock ^ std::process::id().rotate_left(16) ^ run_number.wrapping_mul(0x9e37_79b9))
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
