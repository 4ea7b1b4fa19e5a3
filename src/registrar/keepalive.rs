//! NAT keepalives for UDP bindings (issue 14 item 5): pings to a binding's flow so that the
//! NAT pinhole its REGISTER opened stays open, and (with OPTIONS) flows that stopped answering
//! are found and their bindings removed.
//!
//! A phone behind NAT is reachable over UDP only while the NAT keeps the mapping its packets
//! created; many NATs forget an idle UDP mapping after 30–60 s, far sooner than a REGISTER
//! refresh. RFC 5626 §3.5 / §4.4 makes keepalives the client's job (STUN over UDP, a
//! double-CRLF over TCP — the stream code already answers that with a CRLF pong, §4.4.1); a
//! carrier edge cannot count on every phone doing it, so like other edges it pings the
//! phones itself:
//! - `crlf`: a `\r\n\r\n` datagram (what SIP stacks read as a keepalive and ignore); cheap,
//!   but nothing answers it, so a dead flow is not noticed;
//! - `options`: an OPTIONS request (RFC 3261 §11) to the Contact over the flow; any response
//!   proves the flow alive. After `dead-after` unanswered pings in a row the flow is dead:
//!   its bindings are removed (a call gets 480 at once instead of going into a void).
//!
//! [`Keepalives`] is the sans-IO schedule a side thread drives once a second: each flow falls
//! in one of `interval` one-second slots (by a keyed hash of its address), so the pings of
//! many bindings are spread evenly over the interval and each flow is pinged once per
//! interval. The OPTIONS' Via branch is `z9hG4bKfvk` + 16 hex digits of a keyed hash of the
//! flow's address; whichever worker receives the answer (the kernel spreads them over the
//! `SO_REUSEPORT` sockets) hands it to [`KeepaliveAnswers::consume`], which checks the tag
//! against the answer's source and passes the source on over a bounded channel without
//! waiting. A `k` after our stateless prefix `z9hG4bKfv` is not a hex digit, so no forwarded
//! request's branch looks like a keepalive's.

use std::collections::HashMap;
use std::hash::Hasher;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use siphasher::sip::SipHasher13;

use crate::sip::{HeaderName, HostKind, Message, SipUri, Span, StartLine, Transport, Values, Via};

use super::Registrar;
use super::bindings::Binding;
use super::counters::KeepaliveResult;

/// The start of every keepalive OPTIONS' branch.
pub(crate) const KEEPALIVE_BRANCH_PREFIX: &[u8] = b"z9hG4bKfvk";
const KEEPALIVE_BRANCH_LEN: usize = KEEPALIVE_BRANCH_PREFIX.len() + 16;

/// What a keepalive is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveMode {
    /// A `\r\n\r\n` datagram.
    Crlf,
    /// An OPTIONS request; unanswered ones count toward a dead flow.
    Options,
}

/// `[registrar]`'s keepalive settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepaliveConfig {
    pub mode: KeepaliveMode,
    /// How often each flow is pinged (whole seconds, at least 1).
    pub interval: Duration,
    /// OPTIONS only: this many unanswered pings in a row make the flow dead.
    pub dead_after: u32,
    /// Ping only bindings behind NAT (the Contact is not where the REGISTER came from).
    pub nat_only: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> KeepaliveConfig {
        KeepaliveConfig {
            mode: KeepaliveMode::Crlf,
            interval: Duration::from_secs(25),
            dead_after: 3,
            nat_only: true,
        }
    }
}

/// The keyed hash naming a flow in a keepalive's branch.
fn tag(key: &[u8; 16], source: SocketAddr) -> u64 {
    let mut h = SipHasher13::new_with_key(key);
    match source.ip() {
        IpAddr::V4(ip) => h.write(&ip.octets()),
        IpAddr::V6(ip) => h.write(&ip.octets()),
    }
    h.write_u16(source.port());
    h.finish()
}

/// The workers' side: recognises answers to our keepalives and passes their source to the
/// schedule.
#[derive(Debug)]
pub struct KeepaliveAnswers {
    key: [u8; 16],
    answered: Sender<SocketAddr>,
}

impl KeepaliveAnswers {
    pub fn new(key: [u8; 16], answered: Sender<SocketAddr>) -> KeepaliveAnswers {
        KeepaliveAnswers { key, answered }
    }

    /// Whether `msg` is an answer to one of our keepalives (then it is consumed, never
    /// forwarded): a response whose top Via branch has our keepalive prefix. Its source is
    /// handed on when the tag is the one we wrote for that source (a full queue loses it: the
    /// next answer counts as well).
    pub(crate) fn consume(&self, msg: &Message<'_>, source: SocketAddr) -> bool {
        if !matches!(msg.start(), StartLine::Response { .. }) {
            return false;
        }
        let Some(branch) = top_branch(msg) else {
            return false;
        };
        if !branch.starts_with(KEEPALIVE_BRANCH_PREFIX) {
            return false;
        }
        if parse_branch(branch) == Some(tag(&self.key, source)) {
            let _ = self.answered.try_send(source);
        }
        true
    }
}

fn top_branch<'a>(msg: &Message<'a>) -> Option<&'a [u8]> {
    let line = msg.header(HeaderName::Via)?;
    let value = Values::new(msg.buf(), line.value).next()?;
    let via = Via::parse(msg.buf(), value).ok()?;
    Some(msg.bytes(via.branch?))
}

/// The tag of a keepalive branch, when it is well-formed.
fn parse_branch(branch: &[u8]) -> Option<u64> {
    if branch.len() != KEEPALIVE_BRANCH_LEN {
        return None;
    }
    let hex = std::str::from_utf8(&branch[KEEPALIVE_BRANCH_PREFIX.len()..]).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// Whether a binding gets keepalives: our own UDP flow straight to the phone (not another
/// node's, not through another edge named in Path), and with `nat_only` only when it is
/// behind NAT.
fn eligible(b: &Binding, nat_only: bool) -> bool {
    b.flow.transport == Transport::Udp
        && b.remote.is_none()
        && b.path.is_none()
        && (!nat_only || behind_nat(b))
}

/// RFC 3581 §4's test, as a registrar sees it: the Contact's host and port are not the
/// address the REGISTER came from (a host name, e.g. RFC 5626's `.invalid`, counts as NAT:
/// only the flow reaches it).
fn behind_nat(b: &Binding) -> bool {
    let Ok(uri) = SipUri::parse(&b.contact, Span::new(0, b.contact.len())) else {
        return true;
    };
    let ip = match uri.host.kind {
        HostKind::Ipv4(ip) => IpAddr::V4(ip),
        HostKind::Ipv6(ip) => IpAddr::V6(ip),
        HostKind::Name => return true,
    };
    SocketAddr::new(ip, uri.port.unwrap_or(5060)) != b.flow.source
}

/// A flow due for a ping this tick.
struct Due {
    source: SocketAddr,
    local: SocketAddr,
    contact: std::sync::Arc<[u8]>,
}

/// What the schedule remembers of a flow between pings (OPTIONS).
#[derive(Clone, Copy, Debug, Default)]
struct FlowState {
    /// Pings sent since the last answer.
    misses: u32,
    /// The tick of the last ping.
    pinged: u64,
}

/// The keepalive schedule, driven once a second by its side thread.
pub struct Keepalives {
    config: KeepaliveConfig,
    key: [u8; 16],
    answered: Receiver<SocketAddr>,
    flows: HashMap<SocketAddr, FlowState>,
    tick: u64,
    cseq: u32,
    due: Vec<Due>,
    out: Vec<u8>,
}

impl Keepalives {
    /// The schedule and the workers' half (to give the registrar).
    pub fn new(config: KeepaliveConfig, key: [u8; 16]) -> (Keepalives, KeepaliveAnswers) {
        let (tx, rx) = crossbeam_channel::bounded(4096);
        let schedule = Keepalives {
            config,
            key,
            answered: rx,
            flows: HashMap::new(),
            tick: 0,
            cseq: 0,
            due: Vec::new(),
            out: Vec::with_capacity(512),
        };
        (schedule, KeepaliveAnswers::new(key, tx))
    }

    fn slots(&self) -> u64 {
        self.config.interval.as_secs().max(1)
    }

    /// One second's work: takes the answers received since the last tick, then pings every
    /// flow whose slot this is through `send(bytes, listener, to)` (false: not sent), with
    /// `origin(listener)` the `host:port` our Via shows for that listener. Dead flows' bindings
    /// are removed from the registrar's table.
    pub fn tick(
        &mut self,
        registrar: &Registrar,
        now: Instant,
        origin: &dyn Fn(SocketAddr) -> Option<String>,
        send: &mut dyn FnMut(&[u8], SocketAddr, SocketAddr) -> bool,
    ) {
        let counters = registrar.counters();
        while let Ok(source) = self.answered.try_recv() {
            counters.keepalive(KeepaliveResult::Answered);
            if let Some(state) = self.flows.get_mut(&source) {
                state.misses = 0;
            }
        }
        let tick = self.tick;
        self.tick += 1;
        let slots = self.slots();
        if tick.is_multiple_of(slots) {
            // A new round: forget flows not pinged in the last one (their bindings went).
            self.flows
                .retain(|_, s| s.pinged + slots >= tick && s.pinged <= tick);
        }
        self.collect(registrar, tick % slots, now);
        let due = std::mem::take(&mut self.due);
        for flow in &due {
            self.ping(registrar, flow, tick, now, origin, send);
        }
        self.due = due;
        self.due.clear();
    }

    /// The flows in slot `slot`, each once.
    fn collect(&mut self, registrar: &Registrar, slot: u64, now: Instant) {
        let (key, slots, nat_only) = (self.key, self.slots(), self.config.nat_only);
        let due = &mut self.due;
        registrar.location().each(|_, bindings| {
            for b in bindings.iter().filter(|b| b.expires > now) {
                let source = b.flow.source;
                if tag(&key, source) % slots == slot
                    && eligible(b, nat_only)
                    && !due.iter().any(|d| d.source == source)
                {
                    due.push(Due {
                        source,
                        local: b.flow.local,
                        contact: b.contact.clone(),
                    });
                }
            }
        });
    }

    fn ping(
        &mut self,
        registrar: &Registrar,
        flow: &Due,
        tick: u64,
        now: Instant,
        origin: &dyn Fn(SocketAddr) -> Option<String>,
        send: &mut dyn FnMut(&[u8], SocketAddr, SocketAddr) -> bool,
    ) {
        let counters = registrar.counters();
        self.out.clear();
        match self.config.mode {
            KeepaliveMode::Crlf => self.out.extend_from_slice(b"\r\n\r\n"),
            KeepaliveMode::Options => {
                let state = self.flows.entry(flow.source).or_default();
                if state.misses >= self.config.dead_after {
                    self.flows.remove(&flow.source);
                    counters.keepalive(KeepaliveResult::Dead);
                    registrar.remove_flow(flow.source, flow.local, now);
                    return;
                }
                state.misses += 1;
                state.pinged = tick;
                let Some(sent_by) = origin(flow.local) else {
                    counters.keepalive(KeepaliveResult::Failed);
                    return;
                };
                self.cseq = self.cseq.wrapping_add(1);
                let tag = tag(&self.key, flow.source);
                write_options(&mut self.out, &flow.contact, &sent_by, tag, self.cseq);
            }
        }
        let result = if send(&self.out, flow.local, flow.source) {
            KeepaliveResult::Sent
        } else {
            KeepaliveResult::Failed
        };
        counters.keepalive(result);
    }
}

/// An OPTIONS keepalive (RFC 3261 §11, §8.1.1) to `contact` from the listener shown as
/// `sent_by`; `rport` (RFC 3581) so the answer comes back over the same pinhole.
fn write_options(out: &mut Vec<u8>, contact: &[u8], sent_by: &str, tag: u64, cseq: u32) {
    out.extend_from_slice(b"OPTIONS ");
    out.extend_from_slice(contact);
    out.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/UDP ");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{sent_by};branch=z9hG4bKfvk{tag:016x};rport\r\n");
    out.extend_from_slice(b"Max-Forwards: 70\r\nTo: <");
    out.extend_from_slice(contact);
    let _ = write!(
        out,
        ">\r\nFrom: <sip:keepalive@{sent_by}>;tag=fvk{tag:016x}\r\n\
         Call-ID: fvk{tag:016x}-{cseq:08x}@{sent_by}\r\nCSeq: {cseq} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Flow;

    fn scan(raw: &[u8]) -> Option<Message<'_>> {
        Message::scan(raw, false).ok()
    }

    fn binding(contact: &str, source: &str) -> Binding {
        let now = Instant::now();
        Binding {
            contact: contact.as_bytes().into(),
            flow: Flow::new(
                Transport::Udp,
                source.parse().unwrap(),
                "127.0.0.1:5060".parse().unwrap(),
            ),
            q: 1000,
            expires: now + Duration::from_secs(60),
            registered: now,
            call_id: b"c"[..].into(),
            cseq: 1,
            instance: None,
            reg_id: None,
            path: None,
            remote: None,
        }
    }

    #[test]
    fn rfc3581_nat_is_a_contact_that_is_not_the_source() {
        assert!(!behind_nat(&binding(
            "sip:a@192.0.2.1:5062",
            "192.0.2.1:5062"
        )));
        assert!(!behind_nat(&binding("sip:a@192.0.2.1", "192.0.2.1:5060")));
        assert!(behind_nat(&binding(
            "sip:a@10.0.0.1:5062",
            "192.0.2.1:5062"
        )));
        assert!(behind_nat(&binding(
            "sip:a@192.0.2.1:5062",
            "192.0.2.1:40000"
        )));
        assert!(behind_nat(&binding(
            "sip:a@abc.invalid;transport=ws",
            "192.0.2.1:1"
        )));
        let mut tcp = binding("sip:a@10.0.0.1", "192.0.2.1:1");
        tcp.flow.transport = Transport::Tcp;
        assert!(!eligible(&tcp, false));
        let mut pathed = binding("sip:a@10.0.0.1", "192.0.2.1:1");
        pathed.path = Some(b"<sip:edge.example;lr>"[..].into());
        assert!(!eligible(&pathed, false));
        assert!(eligible(
            &binding("sip:a@192.0.2.1", "192.0.2.1:5060"),
            false
        ));
    }

    #[test]
    fn the_options_parses_and_its_answer_is_recognised_from_its_flow_only() {
        let key = [7u8; 16];
        let source: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let mut out = Vec::new();
        write_options(
            &mut out,
            b"sip:a@10.0.0.1:5062",
            "127.0.0.1:5060",
            tag(&key, source),
            9,
        );
        let msg = scan(&out).unwrap();
        assert_eq!(
            msg.bytes(msg.header(HeaderName::CSeq).unwrap().value),
            b"9 OPTIONS"
        );
        let branch = top_branch(&msg).unwrap().to_vec();
        let answer = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={};rport=5060\r\n\
             Content-Length: 0\r\n\r\n",
            String::from_utf8(branch).unwrap()
        );
        let (tx, rx) = crossbeam_channel::bounded(4);
        let answers = KeepaliveAnswers::new(key, tx);
        let reply = scan(answer.as_bytes()).unwrap();
        assert!(answers.consume(&reply, source));
        assert_eq!(rx.try_recv(), Ok(source));
        // From anywhere else: consumed (never forwarded), but not an answer for that flow.
        assert!(answers.consume(&reply, "192.0.2.9:40000".parse().unwrap()));
        assert!(rx.try_recv().is_err());
        // Another response, or the OPTIONS itself: not ours to consume.
        let other = scan(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\r\n").unwrap();
        assert!(!answers.consume(&other, source));
        assert!(!answers.consume(&msg, source));
        assert_eq!(parse_branch(b"z9hG4bKfvkzz"), None);
    }

    fn registrar_with(bindings: Vec<(&str, Binding)>) -> Registrar {
        let location = std::sync::Arc::new(super::super::Location::new(10));
        let now = Instant::now();
        for (aor, b) in bindings {
            location.restore(aor.as_bytes(), vec![b], now);
        }
        Registrar::new(Default::default(), None, location)
    }

    fn count(registrar: &Registrar, name: &str) -> u64 {
        let stats = registrar.stats();
        stats
            .keepalive
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    #[test]
    fn crlf_pings_each_nat_flow_once_per_interval_and_no_other() {
        let config = KeepaliveConfig {
            interval: Duration::from_secs(2),
            ..KeepaliveConfig::default()
        };
        let (mut schedule, _) = Keepalives::new(config, [1; 16]);
        let registrar = registrar_with(vec![
            ("a@d", binding("sip:a@10.0.0.1:5062", "192.0.2.1:40000")),
            ("b@d", binding("sip:b@192.0.2.2:5060", "192.0.2.2:5060")),
        ]);
        let mut sent = Vec::new();
        let now = Instant::now();
        for _ in 0..6 {
            schedule.tick(
                &registrar,
                now,
                &|_| Some("127.0.0.1:5060".into()),
                &mut |b, l, to| {
                    sent.push((b.to_vec(), l, to));
                    true
                },
            );
        }
        // Six ticks of a two-second interval: three rounds, one ping each, to the NAT'd flow.
        assert_eq!(sent.len(), 3);
        let to: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        assert!(
            sent.iter()
                .all(|(b, l, t)| b == b"\r\n\r\n" && *t == to && l.port() == 5060)
        );
        assert_eq!(count(&registrar, "sent"), 3);
    }

    #[test]
    fn unanswered_options_make_a_flow_dead_and_answers_keep_it() {
        let config = KeepaliveConfig {
            mode: KeepaliveMode::Options,
            interval: Duration::from_secs(1),
            dead_after: 2,
            nat_only: true,
        };
        let (mut schedule, answers) = Keepalives::new(config, [2; 16]);
        let registrar = registrar_with(vec![
            ("a@d", binding("sip:a@10.0.0.1:5062", "192.0.2.1:40000")),
            ("b@d", binding("sip:b@10.0.0.2:5062", "192.0.2.2:40000")),
        ])
        .with_keepalive(answers);
        let now = Instant::now();
        let live: SocketAddr = "192.0.2.2:40000".parse().unwrap();
        for _ in 0..4 {
            let mut sent = Vec::new();
            schedule.tick(
                &registrar,
                now,
                &|_| Some("127.0.0.1:5060".into()),
                &mut |b, _, to| {
                    sent.push((b.to_vec(), to));
                    true
                },
            );
            // Only b's phone answers (with the Via of the OPTIONS it got).
            for (bytes, to) in sent.iter().filter(|(_, to)| *to == live) {
                let msg = scan(bytes).unwrap();
                let via = msg
                    .bytes(msg.header(HeaderName::Via).unwrap().value)
                    .to_vec();
                let answer = [
                    &b"SIP/2.0 200 OK\r\nVia: "[..],
                    &via,
                    b"\r\nContent-Length: 0\r\n\r\n",
                ]
                .concat();
                assert!(registrar.consume_keepalive_answer(&scan(&answer).unwrap(), *to));
            }
        }
        // a: pinged twice unanswered, then dead at the third round (its binding removed).
        assert_eq!(count(&registrar, "dead"), 1);
        assert_eq!(registrar.location().lookup(b"a@d", now, |_| ()), None);
        assert!(registrar.location().lookup(b"b@d", now, |_| ()).is_some());
        // Answers are taken at the start of a tick: the fourth waits for the next one.
        assert_eq!(count(&registrar, "answered"), 3);
        assert_eq!(count(&registrar, "sent"), 2 + 4);
    }
}
