//! Health probes: the OPTIONS request a probe sends (RFC 3261 §11), the branch that lets a
//! worker recognise its answer, and [`Prober`], the sans-IO schedule a prober thread drives.
//!
//! A probe's Via branch is `z9hG4bKfvp` + group (2 hex) + destination (2 hex) + sequence
//! (8 hex) + a keyed tag (8 hex). The `p` after our stateless prefix `z9hG4bKfv` is not a hex
//! digit, so no forwarded request's branch looks like a probe's; the tag (SipHash-1-3 under a
//! per-process key) keeps a forged answer from keeping a dead destination up. Whichever
//! worker receives the answer (the kernel spreads them over the `SO_REUSEPORT` sockets) hands
//! it to [`Groups::consume_probe_answer`](super::Groups::consume_probe_answer), which stores it in the
//! destination's answer slot and consumes it: a probe answer is never forwarded.

use std::hash::Hasher;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use siphasher::sip::SipHasher13;

use super::health::{Change, Tracker};
use super::{DestinationId, GroupId, Groups};
use crate::sip::Transport;

/// The start of every probe's branch.
pub(crate) const PROBE_BRANCH_PREFIX: &[u8] = b"z9hG4bKfvp";
const PROBE_BRANCH_LEN: usize = PROBE_BRANCH_PREFIX.len() + 2 + 2 + 8 + 8;

/// The code stored in a destination's answer slot when its probe failed before any answer
/// could come (a refused connect, a failed TLS handshake, a connection closed under it).
pub(crate) const FAILED_UNANSWERED: u16 = 0;

/// Which probe an answer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProbeId {
    pub group: GroupId,
    pub destination: DestinationId,
    pub seq: u32,
}

fn tag(key: &[u8; 16], id: ProbeId) -> u32 {
    let mut h = SipHasher13::new_with_key(key);
    h.write_u16(id.group.0);
    h.write_u8(id.destination.0);
    h.write_u32(id.seq);
    h.finish() as u32
}

/// Writes the probe branch for `id`.
pub(crate) fn write_branch(out: &mut Vec<u8>, key: &[u8; 16], id: ProbeId) {
    out.extend_from_slice(PROBE_BRANCH_PREFIX);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{:02x}{:02x}{:08x}{:08x}",
        id.group.0,
        id.destination.0,
        id.seq,
        tag(key, id)
    );
}

/// The probe a branch names, when it is one of ours with a valid tag.
pub(crate) fn parse_branch(branch: &[u8], key: &[u8; 16]) -> Option<ProbeId> {
    if branch.len() != PROBE_BRANCH_LEN || !branch.starts_with(PROBE_BRANCH_PREFIX) {
        return None;
    }
    let hex = &branch[PROBE_BRANCH_PREFIX.len()..];
    let field = |from: usize, to: usize| -> Option<u32> {
        let text = std::str::from_utf8(hex.get(from..to)?).ok()?;
        u32::from_str_radix(text, 16).ok()
    };
    let id = ProbeId {
        group: GroupId(u16::try_from(field(0, 2)?).ok()?),
        destination: DestinationId(u8::try_from(field(2, 4)?).ok()?),
        seq: field(4, 12)?,
    };
    (field(12, 20)? == tag(key, id)).then_some(id)
}

/// Where probes leave from: the proxy's listeners a probe may use, as Via and From show them.
/// A destination is probed over its own transport, from the first listener of that transport
/// and of its address family (as the core picks the listener a request leaves from).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeOrigin {
    pub listeners: Vec<ProbeListener>,
}

/// One listener probes may leave from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeListener {
    pub transport: Transport,
    /// Bound to an IPv6 address (it reaches IPv6 destinations only).
    pub ipv6: bool,
    /// `host:port` of the listener (its advertised address when it has one).
    pub sent_by: String,
}

impl ProbeOrigin {
    /// Probes from one IPv4 UDP listener shown as `sent_by`.
    pub fn udp(sent_by: &str) -> ProbeOrigin {
        ProbeOrigin {
            listeners: vec![ProbeListener {
                transport: Transport::Udp,
                ipv6: false,
                sent_by: sent_by.to_owned(),
            }],
        }
    }

    /// The listener a probe to `addr` over `transport` leaves from: the first of that
    /// transport and family (`true`); else, when only the family differs, the first of that
    /// transport (`false`: the probe is written but cannot leave, so it fails unsent).
    fn listener_for(&self, transport: Transport, addr: SocketAddr) -> Option<(usize, bool)> {
        let fits = |l: &ProbeListener| l.transport == transport && l.ipv6 == addr.is_ipv6();
        match self.listeners.iter().position(fits) {
            Some(i) => Some((i, true)),
            None => self
                .listeners
                .iter()
                .position(|l| l.transport == transport)
                .map(|i| (i, false)),
        }
    }

    /// The transports some listener can probe over (see [`transport_bit`]).
    fn transports(&self) -> u8 {
        self.listeners
            .iter()
            .fold(0, |m, l| m | transport_bit(l.transport))
    }
}

/// A transport's bit in the set of probed transports. WebSocket is never probed: it is a
/// browser's transport, not a next hop's.
pub(crate) fn transport_bit(transport: Transport) -> u8 {
    match transport {
        Transport::Udp => 1,
        Transport::Tcp => 2,
        Transport::Tls => 4,
        Transport::Ws | Transport::Wss => 0,
    }
}

/// One probe to send: its bytes, where and how they go, and which probe it is (so that the
/// I/O can report a transport failure, [`Groups::note_probe_failure`](super::Groups::note_probe_failure)).
#[derive(Clone, Copy, Debug)]
pub struct Probe<'a> {
    pub bytes: &'a [u8],
    pub to: SocketAddr,
    pub transport: Transport,
    /// Which of the origin's listeners it leaves from.
    pub listener: usize,
    /// The destination's DNS name: over TLS, what its certificate must name (RFC 5922 §7.2);
    /// `None` verifies the address (or its `[hosts]` name), as for any next hop.
    pub name: Option<&'a str>,
    pub group: GroupId,
    pub destination: DestinationId,
    pub seq: u32,
}

/// Writes the OPTIONS probe `id` to `uri` into `out` (cleared first). RFC 3261 §11: OPTIONS
/// with Max-Forwards 70, a fresh branch per probe, a Call-ID per destination. The Via names
/// the transport of the listener it leaves from (RFC 3261 §18.1.1), with `rport` over UDP
/// (RFC 3581; a stream's answer comes back on the connection).
pub(crate) fn write_options(
    out: &mut Vec<u8>,
    from: &ProbeListener,
    key: &[u8; 16],
    uri: &str,
    id: ProbeId,
) {
    out.clear();
    let sent_by = &from.sent_by;
    let via = from.transport.via_token();
    let _ = write!(
        out,
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/{via} {sent_by};branch="
    );
    write_branch(out, key, id);
    if from.transport == Transport::Udp {
        out.extend_from_slice(b";rport");
    }
    let _ = write!(
        out,
        "\r\nMax-Forwards: 70\r\nFrom: <sip:ferrovia@{sent_by}>;tag=fvprobe\r\n\
         To: <{uri}>\r\nCall-ID: fvprobe-{:x}-{:x}-{}\r\nCSeq: {} OPTIONS\r\n\
         Accept: application/sdp\r\nUser-Agent: ferrovia-probe\r\nContent-Length: 0\r\n\r\n",
        id.group.0,
        id.destination.0,
        sent_by,
        id.seq % 0x7fff_ffff + 1,
    );
}

/// One destination's probing state.
#[derive(Debug)]
struct Probed {
    group: GroupId,
    destination: DestinationId,
    tracker: Tracker,
    next_send: Instant,
    seq: u32,
    /// The probe in flight: its sequence number and when it left.
    pending: Option<(u32, Instant)>,
}

/// The probing schedule of every destination of every group: sans-IO, driven by a thread
/// that calls [`Prober::poll`] and sends what it is told to. It owns the up/down decision;
/// workers only store answers (and passive holds).
#[derive(Debug)]
pub struct Prober {
    groups: Arc<Groups>,
    origin: ProbeOrigin,
    probed: Vec<Probed>,
    buf: Vec<u8>,
}

impl Prober {
    /// A schedule starting at `now` for probes leaving from `origin`'s listeners; destinations
    /// start up, the first probes leave at once. A destination whose transport no listener of
    /// `origin` has is not probed (see [`Groups::probed`]).
    pub fn new(groups: Arc<Groups>, origin: ProbeOrigin, now: Instant) -> Prober {
        groups.probing.store(origin.transports(), Relaxed);
        let mut probed = Vec::new();
        for (g, group) in groups.groups.iter().enumerate() {
            for (d, dest) in group.destinations.iter().enumerate() {
                let mut tracker = Tracker::new();
                // A DNS name not resolved at start starts down (as its live bit).
                if dest.addr().ip().is_unspecified() {
                    let _ = tracker.force_down();
                }
                probed.push(Probed {
                    group: GroupId(g as u16),
                    destination: DestinationId(d as u8),
                    tracker,
                    next_send: now,
                    seq: 0,
                    pending: None,
                });
            }
        }
        Prober {
            groups,
            origin,
            probed,
            buf: Vec::with_capacity(512),
        }
    }

    /// Settles answered and timed-out probes, applies state changes, and hands `send` each
    /// probe due at `now` ([`Probe`]: the OPTIONS bytes, where and how they go). Returns when
    /// to poll next at the latest (answers arriving earlier are picked up by an earlier poll).
    pub fn poll(&mut self, now: Instant, mut send: impl FnMut(Probe<'_>)) -> Instant {
        let mut next = now + Duration::from_secs(1);
        let groups = Arc::clone(&self.groups);
        for i in 0..self.probed.len() {
            self.settle(i, now);
            let p = &self.probed[i];
            let group = &groups.groups[usize::from(p.group.0)];
            if !groups.probed(group, &group.destinations[usize::from(p.destination.0)]) {
                continue;
            }
            if p.pending.is_none() && now >= p.next_send {
                self.send(i, now, &mut send);
            }
            let p = &self.probed[i];
            if let Some((_, sent)) = p.pending {
                next = next.min(sent + group.probe.timeout);
            }
            next = next.min(p.next_send);
        }
        next
    }

    /// Writes destination `i`'s next probe and hands it to `send`, unless it has nowhere to
    /// go (a DNS name not resolved yet, no listener of its family): then it fails unsent,
    /// when it times out.
    fn send(&mut self, i: usize, now: Instant, send: &mut impl FnMut(Probe<'_>)) {
        let groups = Arc::clone(&self.groups);
        let p = &mut self.probed[i];
        let group = &groups.groups[usize::from(p.group.0)];
        let dest = &group.destinations[usize::from(p.destination.0)];
        p.seq = p.seq.wrapping_add(1).max(1);
        p.pending = Some((p.seq, now));
        p.next_send = (p.next_send + group.probe.interval).max(now);
        dest.health.probes_sent.fetch_add(1, Relaxed);
        let addr = dest.addr();
        let Some((listener, fits)) = self.origin.listener_for(dest.transport, addr) else {
            return;
        };
        let id = ProbeId {
            group: p.group,
            destination: p.destination,
            seq: p.seq,
        };
        let from = &self.origin.listeners[listener];
        write_options(&mut self.buf, from, &groups.probe_key, &dest.uri, id);
        if fits && !addr.ip().is_unspecified() {
            send(Probe {
                bytes: &self.buf,
                to: addr,
                transport: dest.transport,
                listener,
                name: dest.name.as_deref(),
                group: id.group,
                destination: id.destination,
                seq: id.seq,
            });
        }
    }

    /// Settles destination `i`'s probe in flight (answered, or timed out) and its passive hold.
    fn settle(&mut self, i: usize, now: Instant) {
        let groups = Arc::clone(&self.groups);
        let p = &mut self.probed[i];
        let group = &groups.groups[usize::from(p.group.0)];
        let dest = &group.destinations[usize::from(p.destination.0)];
        let probe = &group.probe;
        let verdict = verdict(p, dest, probe, groups.epoch, now);
        if verdict == Some(false) {
            dest.health.probes_failed.fetch_add(1, Relaxed);
        }
        let unreachable = dest.health.take_unreachable();
        let held = dest.health.held_at(groups.nanos_since_epoch(now));
        let change = if unreachable || held {
            p.tracker.force_down()
        } else if !groups.probed(group, dest) && !p.tracker.up && !dest.addr().ip().is_unspecified()
        {
            // No probe can bring it back: its hold is over, so it is up again.
            p.tracker = Tracker::new();
            Some(Change::WentUp)
        } else {
            verdict.and_then(|alive| p.tracker.observe(alive, probe.down_after, probe.up_after))
        };
        let live = p.tracker.up && !held;
        if live {
            groups.set_live_strict(p.group, p.destination, true);
            // A signal that came between the take above and the bit set: down again now,
            // counted at the next poll.
            if dest.health.unreachable_pending() {
                groups.set_live_strict(p.group, p.destination, false);
            }
        } else {
            groups.set_live(p.group, p.destination, false);
        }
        log_change(group, dest, change, unreachable, held);
    }
}

/// The verdict on `p`'s probe in flight at `now`, if there is one yet: answered with an
/// alive code (a success), with another code, or by a transport failure (code 0, which
/// leaves the round-trip time alone), or unanswered past the timeout (failures).
fn verdict(
    p: &mut Probed,
    dest: &super::Destination,
    probe: &super::ProbeConfig,
    epoch: Instant,
    now: Instant,
) -> Option<bool> {
    let (seq, sent) = p.pending?;
    match dest.health.last_answer().filter(|a| a.seq == seq) {
        Some(answer) if answer.code == FAILED_UNANSWERED => {
            p.pending = None;
            Some(false)
        }
        Some(answer) => {
            let at = epoch + Duration::from_nanos(answer.at_nanos);
            let rtt = at.saturating_duration_since(sent).as_micros() as u64;
            dest.health.last_rtt_us.store(rtt.max(1), Relaxed);
            p.pending = None;
            Some(probe.alive_codes.contains(&answer.code))
        }
        None if now >= sent + probe.timeout => {
            p.pending = None;
            Some(false)
        }
        None => None,
    }
}

/// Logs and counts a destination's change of state.
fn log_change(
    group: &super::Group,
    dest: &super::Destination,
    change: Option<Change>,
    unreachable: bool,
    held: bool,
) {
    match change {
        Some(Change::WentDown) => {
            dest.health.went_down.fetch_add(1, Relaxed);
            let why = if unreachable {
                "unreachable: ICMP error or failed connect"
            } else if held {
                "held down by 503 Retry-After"
            } else {
                "probes failed"
            };
            log::warn!(
                "group {}: destination {} is down ({why})",
                group.name,
                dest.uri
            );
        }
        Some(Change::WentUp) => {
            dest.health.went_up.fetch_add(1, Relaxed);
            log::info!("group {}: destination {} is up", group.name, dest.uri);
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn branches_round_trip_and_forgeries_fail() {
        let id = ProbeId {
            group: GroupId(3),
            destination: DestinationId(63),
            seq: 0xdead_beef,
        };
        let mut b = Vec::new();
        write_branch(&mut b, &KEY, id);
        assert_eq!(b.len(), PROBE_BRANCH_LEN);
        assert_eq!(parse_branch(&b, &KEY), Some(id));
        assert_eq!(parse_branch(&b, b"fedcba9876543210"), None);
        let mut forged = b.clone();
        forged[PROBE_BRANCH_PREFIX.len() + 5] ^= 1;
        assert_eq!(parse_branch(&forged, &KEY), None);
        assert_eq!(parse_branch(b"z9hG4bKfv0123456789abcdef", &KEY), None);
        assert_eq!(parse_branch(&b[..b.len() - 1], &KEY), None);
    }

    #[test]
    fn the_probe_is_a_well_formed_options() {
        let origin = ProbeOrigin::udp("127.0.0.1:5060");
        let id = ProbeId {
            group: GroupId(0),
            destination: DestinationId(1),
            seq: 5,
        };
        let mut out = Vec::new();
        let from = &origin.listeners[0];
        write_options(&mut out, from, &KEY, "sip:127.0.0.1:5071", id);
        let msg = crate::sip::Message::scan(&out, false).unwrap();
        assert_eq!(msg.method(), Some(crate::sip::Method::Options));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfvp0001"));
        assert!(text.contains("CSeq: 6 OPTIONS\r\n"), "{text}");
    }

    #[test]
    fn rfc3261_18_1_1_a_stream_probe_names_its_transport_in_via() {
        let tls = ProbeListener {
            transport: Transport::Tls,
            ipv6: false,
            sent_by: "192.0.2.1:5061".into(),
        };
        let id = ProbeId {
            group: GroupId(1),
            destination: DestinationId(2),
            seq: 9,
        };
        let mut out = Vec::new();
        write_options(&mut out, &tls, &KEY, "sip:core.test;transport=tls", id);
        let msg = crate::sip::Message::scan(&out, true).unwrap();
        assert_eq!(msg.method(), Some(crate::sip::Method::Options));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKfvp0102"));
        assert!(!text.contains("rport"), "{text}");
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn a_probe_leaves_from_a_listener_of_its_transport_and_family() {
        let l = |transport, ipv6| ProbeListener {
            transport,
            ipv6,
            sent_by: String::new(),
        };
        let origin = ProbeOrigin {
            listeners: vec![
                l(Transport::Udp, false),
                l(Transport::Tcp, false),
                l(Transport::Udp, true),
                l(Transport::Ws, false),
            ],
        };
        let v4: SocketAddr = "192.0.2.7:5060".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::7]:5060".parse().unwrap();
        assert_eq!(origin.listener_for(Transport::Udp, v4), Some((0, true)));
        assert_eq!(origin.listener_for(Transport::Udp, v6), Some((2, true)));
        assert_eq!(origin.listener_for(Transport::Tcp, v4), Some((1, true)));
        // No IPv6 TCP listener: written from the IPv4 one, never sent.
        assert_eq!(origin.listener_for(Transport::Tcp, v6), Some((1, false)));
        assert_eq!(origin.listener_for(Transport::Tls, v4), None);
        assert_eq!(
            origin.transports(),
            0b011,
            "UDP and TCP; WebSocket is never probed"
        );
    }
}
