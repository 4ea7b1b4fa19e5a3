//! Destination groups: load sharing and fail-over over a farm of next hops.
//!
//! A group is a list of destinations (a SIP URI each, with weight and priority) and a rule to
//! choose one ([`Algorithm`]): rendezvous hashing over a key (`hash`, the default), the lowest
//! live priority tier (`priority`), or a weighted spread (`weighted`). [`Groups`] is the shared
//! table: workers read it on the hot path ([`Groups::select`]: one atomic load of the group's
//! live set, a few hashes, no allocation, no lock) and store what they see of destinations
//! ([`Groups::consume_probe_answer`]: probe answers, consumed; [`Groups::note_response`]: 503
//! with Retry-After, a passive hold). A prober thread drives [`Prober`], which sends the OPTIONS
//! probes and alone decides up and down from their answers.
//!
//! Contract: a destination is up until probes say otherwise (or a 503 holds it down); the live
//! set changes only at probe verdicts and holds, so every message of a call reaches the same
//! destination while it is up, and a retransmission after it went down reaches the next live
//! one. When nothing is live, [`Selection::AllDown`] carries the Retry-After of the 503 to
//! answer. Sans-IO like the core: no socket, no clock (time comes in), no thread.

#![forbid(unsafe_code)]

mod config;
mod health;
mod key;
mod named;
mod probe;
pub(crate) mod select;

/// The Call-ID key of a message (as `key = "call-id"`): what DNS targets are chosen by.
pub(crate) fn call_key(msg: &Message<'_>, source: SocketAddr) -> u64 {
    key::key_hash(msg, HashKey::CallId, source)
}
mod snapshot;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::sip::{HeaderName, Message, StartLine, Transport, Values, Via, parse_delta_seconds};

pub use config::{
    Algorithm, DestinationConfig, GroupConfig, GroupError, HashKey, MAX_DESTINATIONS, ProbeConfig,
    SrvRank,
};
pub use health::DestinationHealth;
pub use named::{Placed, Refreshed};
pub use probe::{Probe, ProbeListener, ProbeOrigin, Prober};
pub use snapshot::{DestinationSnapshot, GroupSnapshot, GroupsSnapshot};

use select::{Candidate, Farm};

/// A group's index in the table (its position in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupId(pub u16);

/// A destination's index within its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DestinationId(pub u8);

/// Where a destination is: fixed for an IP literal or a `[hosts]` name (read as a plain
/// field on the hot path); for a DNS name, written by the refresher when the name resolves to
/// another address (read lock-free).
#[derive(Debug)]
enum Address {
    Fixed(SocketAddr),
    Named(arc_swap::ArcSwap<SocketAddr>),
}

/// One destination as the table holds it.
#[derive(Debug)]
pub struct Destination {
    pub uri: String,
    address: Address,
    /// The DNS name behind the address, when there is one.
    pub name: Option<String>,
    /// Which of the name's addresses this is (0: the first).
    pub target: u8,
    pub transport: Transport,
    pub weight: u32,
    pub priority: u32,
    pub health: DestinationHealth,
}

impl Destination {
    /// Its address now (an unspecified one: a DNS name not resolved yet).
    pub fn addr(&self) -> SocketAddr {
        match &self.address {
            Address::Fixed(addr) => *addr,
            Address::Named(addr) => **addr.load(),
        }
    }

    /// A new address for a DNS name (the refresher's); a destination not named in DNS keeps
    /// its address.
    pub fn set_addr(&self, addr: SocketAddr) {
        if let Address::Named(current) = &self.address
            && **current.load() != addr
        {
            current.store(std::sync::Arc::new(addr));
        }
    }

    /// The name operators see: the URI, with the address's rank when a name has several.
    pub fn label(&self) -> String {
        if self.target == 0 {
            self.uri.clone()
        } else {
            format!("{} [{}]", self.uri, self.target)
        }
    }
}

/// The live set, alone on its cache line: the prober writes it rarely, every worker reads it.
#[derive(Debug, Default)]
#[repr(align(64))]
struct LiveSet(AtomicU64);

/// Eight counters on a cache line of their own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct CounterLine([AtomicU64; 8]);

/// Requests sent to each destination of a group, counted in one lane per worker: a worker
/// adds to its own cache lines only, so no two workers write one line on the hot path (a
/// lane index beyond the lanes shares a lane, still counting exactly). Read as the sum over
/// the lanes.
#[derive(Debug)]
struct SentCounters {
    lines: Box<[CounterLine]>,
    lanes: usize,
    /// Cache lines per lane (8 destinations a line).
    per_lane: usize,
}

impl SentCounters {
    fn new(destinations: usize, lanes: usize) -> SentCounters {
        let (lanes, per_lane) = (lanes.max(1), destinations.div_ceil(8).max(1));
        let lines = (0..per_lane * lanes)
            .map(|_| CounterLine::default())
            .collect();
        SentCounters {
            lines,
            lanes,
            per_lane,
        }
    }

    fn counter(&self, lane: usize, dest: usize) -> Option<&AtomicU64> {
        // No division on the hot path unless the lane is beyond the lanes.
        let lane = if lane < self.lanes {
            lane
        } else {
            lane % self.lanes
        };
        let line = lane * self.per_lane + dest / 8;
        self.lines.get(line).map(|l| &l.0[dest % 8])
    }

    fn add(&self, lane: usize, dest: usize) {
        if let Some(c) = self.counter(lane, dest) {
            c.fetch_add(1, Relaxed);
        }
    }

    fn total(&self, dest: usize) -> u64 {
        (0..self.lanes)
            .filter_map(|lane| self.counter(lane, dest))
            .map(|c| c.load(Relaxed))
            .sum()
    }
}

/// One group as the table holds it.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub algorithm: Algorithm,
    pub key: HashKey,
    pub probe: ProbeConfig,
    pub retry_after: u32,
    pub destinations: Vec<Destination>,
    farm: Farm,
    /// With destinations named in DNS: the two-step choice (the configured destinations,
    /// then RFC 2782 among a name's targets); `None`: one step over `farm`.
    named: Option<named::Named>,
    /// Bit `i` set: destination `i` is up.
    live: LiveSet,
    sent: SentCounters,
}

impl Group {
    /// The live destinations as a bit set (bit `i`: destination `i`).
    pub fn live(&self) -> u64 {
        self.live.0.load(Relaxed)
    }

    /// Requests sent to destination `i` (each retransmission counts), summed over the workers.
    pub fn messages_sent(&self, i: DestinationId) -> u64 {
        self.sent.total(usize::from(i.0))
    }
}

/// Where a request for a group goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    To {
        addr: SocketAddr,
        transport: Transport,
        destination: DestinationId,
    },
    /// Nothing is live: answer 503 with this Retry-After (seconds).
    AllDown { retry_after: u32 },
}

/// Every configured group: shared by the workers (selection, answers) and the prober.
#[derive(Debug)]
pub struct Groups {
    groups: Vec<Group>,
    /// The key of the probe branches' tags.
    probe_key: [u8; 16],
    /// The zero of the nanosecond times stored in atomics.
    epoch: Instant,
    /// The transports the prober can probe over (bits of `probe::transport_bit`), written
    /// when it starts: none until then.
    probing: AtomicU8,
}

impl Groups {
    /// Builds the table; every destination starts up. `probe_key` should be random per
    /// process; `epoch` is any instant before the first message.
    pub fn new(
        configs: Vec<GroupConfig>,
        probe_key: [u8; 16],
        epoch: Instant,
    ) -> Result<Groups, GroupError> {
        if configs.len() > usize::from(u8::MAX) {
            return Err(GroupError("at most 255 groups".into()));
        }
        let mut groups = Vec::with_capacity(configs.len());
        for config in configs {
            config.validate()?;
            if groups.iter().any(|g: &Group| g.name == config.name) {
                return Err(GroupError(format!("group {:?} twice", config.name)));
            }
            groups.push(Group::new(config));
        }
        Ok(Groups {
            groups,
            probe_key,
            epoch,
            probing: AtomicU8::new(0),
        })
    }

    /// The same table counting sent requests in `lanes` lanes, one per worker (see
    /// [`Groups::select`]): the service makes one per worker; without this call, one lane.
    pub fn with_lanes(mut self, lanes: usize) -> Groups {
        for g in &mut self.groups {
            g.sent = SentCounters::new(g.destinations.len(), lanes);
        }
        self
    }

    /// The group called `name` (for routing rules that name a group).
    pub fn id(&self, name: &str) -> Option<GroupId> {
        self.groups
            .iter()
            .position(|g| g.name == name)
            .map(|i| GroupId(i as u16))
    }

    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(usize::from(id.0))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Chooses the destination of `msg` (from `source`) in group `id`; `transaction` is the
    /// request's stateless transaction hash (what `weighted` spreads by). One atomic load of
    /// the live set (and, for a group with a DNS name, of its SRV plan); no allocation.
    /// Counts the message as sent to the chosen destination, in counter lane `lane` (the
    /// worker's index: see [`Groups::with_lanes`]).
    pub fn select(
        &self,
        id: GroupId,
        msg: &Message<'_>,
        source: SocketAddr,
        transaction: u64,
        lane: usize,
    ) -> Selection {
        let Some(group) = self.group(id) else {
            return Selection::AllDown { retry_after: 0 };
        };
        let live = group.live();
        let (farm, c) = (&group.farm, group.farm.candidates());
        let chosen = match (&group.named, group.algorithm) {
            (Some(named), Algorithm::Weighted) => named.choose(group.algorithm, live, transaction),
            (Some(named), algorithm) => {
                named.choose(algorithm, live, key::key_hash(msg, group.key, source))
            }
            (None, Algorithm::Hash) => {
                farm.rendezvous(live, key::key_hash(msg, group.key, source), None)
            }
            (None, Algorithm::Priority) => select::lowest_live_tier(c, live).and_then(|tier| {
                farm.rendezvous(live, key::key_hash(msg, group.key, source), Some(tier))
            }),
            (None, Algorithm::Weighted) => select::weighted(c, live, transaction),
        };
        match chosen {
            Some(i) => {
                let d = &group.destinations[i];
                group.sent.add(lane, i);
                Selection::To {
                    addr: d.addr(),
                    transport: d.transport,
                    destination: DestinationId(i as u8),
                }
            }
            None => Selection::AllDown {
                retry_after: group.retry_after,
            },
        }
    }

    /// The DNS name destination `dest` of `group` was configured by (the URI's host, lower
    /// case): over TLS, the name its certificate must carry (RFC 5922 §7.2); `None` for an IP
    /// literal or a `[hosts]` name.
    pub fn tls_name(&self, group: GroupId, dest: DestinationId) -> Option<&str> {
        let g = self.group(group)?;
        g.destinations.get(usize::from(dest.0))?.name.as_deref()
    }

    /// A response whose top Via is not one the core forwarded for: when it answers one of our
    /// probes it is stored for the prober, and `true` says to consume it (never forward it).
    /// A provisional answer is consumed and not stored: only a final one settles a probe
    /// (RFC 4320 §4.1 lets a 100 Trying answer a non-INVITE request late).
    pub fn consume_probe_answer(
        &self,
        msg: &Message<'_>,
        source: SocketAddr,
        now: Instant,
    ) -> bool {
        let StartLine::Response { code, .. } = msg.start() else {
            return false;
        };
        match top_branch(msg).filter(|b| b.starts_with(probe::PROBE_BRANCH_PREFIX)) {
            Some(_) if code < 200 => true,
            Some(branch) => {
                self.note_probe_answer(branch, source, code, now);
                true
            }
            None => false,
        }
    }

    /// Probe `seq` of destination `dest` in `group` failed before any answer could come (over
    /// TCP or TLS: a refused or failed connect, a failed handshake, a connection closed under
    /// it): it counts as a failed probe at the prober's next poll, without waiting for its
    /// timeout.
    pub fn note_probe_failure(&self, group: GroupId, dest: DestinationId, seq: u32, now: Instant) {
        let Some(d) = self
            .group(group)
            .and_then(|g| g.destinations.get(usize::from(dest.0)))
        else {
            return;
        };
        let at = self.nanos_since_epoch(now);
        d.health.note_answer(seq, probe::FAILED_UNANSWERED, at);
    }

    /// Whether `dest` of `group` is probed: probing is on for the group, and the prober has
    /// a listener of the destination's transport (UDP, TCP or TLS) to probe from.
    pub(crate) fn probed(&self, group: &Group, dest: &Destination) -> bool {
        group.probe.enabled
            && self.probing.load(Relaxed) & probe::transport_bit(dest.transport) != 0
    }

    /// Every response the core receives: a 503 with Retry-After from a group destination holds
    /// that destination down for that long (RFC 3261 §21.5.4); the response is forwarded as
    /// usual. Costs one comparison for any other status (inlined into the response path).
    #[inline]
    pub fn note_response(&self, msg: &Message<'_>, source: SocketAddr, now: Instant) {
        if matches!(msg.start(), StartLine::Response { code: 503, .. }) {
            self.note_unavailable(msg, source, now);
        }
    }

    fn note_probe_answer(&self, branch: &[u8], source: SocketAddr, code: u16, now: Instant) {
        let Some(id) = probe::parse_branch(branch, &self.probe_key) else {
            return;
        };
        let Some(dest) = self
            .group(id.group)
            .and_then(|g| g.destinations.get(usize::from(id.destination.0)))
        else {
            return;
        };
        // Only the destination itself answers for itself.
        if dest.addr() == source {
            dest.health
                .note_answer(id.seq, code, self.nanos_since_epoch(now));
        }
    }

    /// A 503 with Retry-After from a destination: down until then, at once (the prober keeps
    /// it down until the hold ends and probes bring it back).
    fn note_unavailable(&self, msg: &Message<'_>, source: SocketAddr, now: Instant) {
        let Some(seconds) = retry_after(msg) else {
            return;
        };
        let until = self.nanos_since_epoch(now + Duration::from_secs(u64::from(seconds)));
        for (g, group) in self.groups.iter().enumerate() {
            for (d, dest) in group.destinations.iter().enumerate() {
                if dest.addr() == source {
                    dest.health.hold_down(until);
                    self.set_live(GroupId(g as u16), DestinationId(d as u8), false);
                }
            }
        }
    }

    /// A passive sign that `addr` cannot be reached over `transport`: an ICMP port, host or
    /// network unreachable for a datagram sent there (`Transport::Udp`), or a failed TCP/TLS
    /// connect (a stream transport). Every destination of every group at that address and
    /// over that kind of transport goes down at once (its live bit cleared here, so the next
    /// request or retransmission goes to a live one); the prober logs and counts the change
    /// and keeps it down until `up-after` answered probes bring it back. A destination no
    /// probe reaches (probing off, or no listener of its transport) is held down for one probe interval
    /// instead, then comes back by itself. An address no group names changes nothing.
    /// Returns how many destinations it took down.
    pub fn note_unreachable(&self, addr: SocketAddr, transport: Transport, now: Instant) -> usize {
        let mut marked = 0;
        for (g, group) in self.groups.iter().enumerate() {
            for (d, dest) in group.destinations.iter().enumerate() {
                if dest.addr() != addr || dest.transport.is_stream() != transport.is_stream() {
                    continue;
                }
                let hold_until = if self.probed(group, dest) {
                    0
                } else {
                    self.nanos_since_epoch(now + group.probe.interval)
                };
                dest.health.mark_unreachable(hold_until);
                self.set_live_strict(GroupId(g as u16), DestinationId(d as u8), false);
                marked += 1;
            }
        }
        marked
    }

    /// What DNS now says of a name of `group` whose targets hold the `count` slots from
    /// `first` (the refresher's, at each refresh): each slot follows its target, keeping it
    /// when its address is still there; the SRV priorities and weights choose among them from
    /// the next request on (see the `named` module). Slots left without a target are never
    /// chosen until a target comes back.
    pub fn refresh_name(
        &self,
        group: GroupId,
        first: usize,
        count: usize,
        targets: &[Placed],
    ) -> Refreshed {
        let Some(g) = self.group(group) else {
            return Refreshed::default();
        };
        let (Some(named), Some(dests)) = (&g.named, g.destinations.get(first..first + count))
        else {
            return Refreshed::default();
        };
        named.refresh(first, dests, targets)
    }

    /// Marks a destination live or not (the prober's verdicts, passive holds).
    pub(crate) fn set_live(&self, group: GroupId, dest: DestinationId, live: bool) {
        let Some(g) = self.group(group) else {
            return;
        };
        let bit = 1u64 << dest.0;
        if live {
            if g.live() & bit == 0 {
                g.live.0.fetch_or(bit, Relaxed);
            }
        } else if g.live() & bit != 0 {
            g.live.0.fetch_and(!bit, Relaxed);
        }
    }

    /// `set_live` with sequentially consistent ordering, for the race between a passive
    /// signal (flag, then bit cleared) and a probe verdict (bit set, then flag re-read).
    pub(crate) fn set_live_strict(&self, group: GroupId, dest: DestinationId, live: bool) {
        let Some(g) = self.group(group) else {
            return;
        };
        let bit = 1u64 << dest.0;
        if live {
            if g.live() & bit == 0 {
                g.live.0.fetch_or(bit, std::sync::atomic::Ordering::SeqCst);
            }
        } else {
            g.live
                .0
                .fetch_and(!bit, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

impl Group {
    fn new(config: GroupConfig) -> Group {
        let n = config.destinations.len();
        let farm = Farm::new(
            config
                .destinations
                .iter()
                .map(|d| Candidate {
                    // Each address of a name is a destination of its own.
                    seed: key::seed(&d.uri) ^ select::mix(u64::from(d.target)),
                    weight: d.weight,
                    priority: d.priority,
                })
                .collect(),
        );
        // A DNS name not resolved at start is down until the refresher finds it and probes
        // bring it up.
        let unresolved = config
            .destinations
            .iter()
            .enumerate()
            .filter(|(_, d)| d.addr.ip().is_unspecified())
            .fold(0u64, |m, (i, _)| m | 1 << i);
        let ranks = config.destinations.iter().map(|d| d.srv).collect();
        let destinations: Vec<Destination> = config
            .destinations
            .into_iter()
            .map(|d| Destination {
                uri: d.uri,
                address: match d.name {
                    Some(_) => Address::Named(arc_swap::ArcSwap::from_pointee(d.addr)),
                    None => Address::Fixed(d.addr),
                },
                name: d.name,
                target: d.target,
                transport: d.transport,
                weight: d.weight,
                priority: d.priority,
                health: DestinationHealth::default(),
            })
            .collect();
        let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        let named = named::Named::new(&destinations, ranks);
        Group {
            name: config.name,
            algorithm: config.algorithm,
            key: config.key,
            probe: config.probe,
            retry_after: config.retry_after,
            destinations,
            farm,
            named,
            live: LiveSet(AtomicU64::new(all & !unresolved)),
            sent: SentCounters::new(n, 1),
        }
    }
}

/// The branch of a message's top Via.
fn top_branch<'a>(msg: &Message<'a>) -> Option<&'a [u8]> {
    let line = msg.header(HeaderName::Via)?;
    let value = Values::new(msg.buf(), line.value).next()?;
    let via = Via::parse(msg.buf(), value).ok()?;
    Some(msg.bytes(via.branch?))
}

/// The delta-seconds of a Retry-After header (RFC 3261 §20.33), comment and params ignored.
pub(crate) fn retry_after(msg: &Message<'_>) -> Option<u32> {
    let buf = msg.buf();
    let header = msg.headers().iter().find(|h| {
        h.name == HeaderName::Other
            && buf
                .get(h.line.start()..h.line.start() + 12)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"retry-after:"))
    })?;
    let value = msg.bytes(header.value);
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    parse_delta_seconds(&value[..digits])
        .ok()
        .filter(|&s| s > 0)
}

#[cfg(test)]
mod tests;
