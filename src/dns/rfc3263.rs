//! RFC 3263 §4 as a sans-IO procedure: given a [`Lookup`], which DNS questions to ask in
//! which order (NAPTR → SRV → A/AAAA) and what the answers make of it — a list of
//! [`Target`]s with the TTL they may be kept for, "no such name" with its negative TTL
//! (RFC 2308), or a failure. The I/O (sockets, retries, timeouts) is the client's.
//!
//! One question at a time per procedure (many procedures run at once in the client); at
//! most [`MAX_QUESTIONS`] questions and [`MAX_TARGETS`] targets per procedure, whatever the
//! records say.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use super::lookup::{Lookup, Want};
use super::wire::{Kind, Rcode, Rec, Reply};
use crate::sip::Transport;

/// Questions one procedure may ask (a NAPTR, a few SRV, an A and an AAAA per SRV target).
pub const MAX_QUESTIONS: usize = 24;
/// Targets one name may resolve to (the live set of a choice is one 64-bit word).
pub const MAX_TARGETS: usize = 64;

/// One place a request for a name may go, with the SRV record's priority and weight (0 and
/// 0 without SRV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub priority: u16,
    pub weight: u16,
}

/// What a procedure made of its answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Where to send, for `ttl` seconds (the smallest TTL of the records used).
    Found { targets: Vec<Target>, ttl: u32 },
    /// The name has nothing we can use; cache that for `negative_ttl` seconds when known
    /// (RFC 2308 §5), else not at all.
    NotFound { negative_ttl: Option<u32> },
    /// No verdict (server failure, timeout, malformed replies).
    Failed,
}

/// What the procedure wants next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Ask(String, Kind),
    Done(Outcome),
}

/// What the client heard for the last question.
#[derive(Clone, Debug)]
pub enum Heard {
    Reply(Reply),
    /// Every attempt timed out, or the replies did not decode.
    Failed,
}

/// An SRV target (or the name itself) waiting for its addresses.
#[derive(Clone, Debug)]
struct Host {
    name: String,
    port: u16,
    transport: Transport,
    priority: u16,
    weight: u16,
    /// The first family asked had nothing: the other one is asked.
    second: bool,
}

#[derive(Clone, Debug)]
enum Stage {
    Naptr,
    /// SRV names still to try, in order, with the transport each one is for.
    Srv(VecDeque<(String, Transport)>),
    Hosts,
}

/// One name being resolved. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Procedure {
    name: String,
    want: Want,
    stage: Stage,
    hosts: VecDeque<Host>,
    targets: Vec<Target>,
    ttl: u32,
    negative_ttl: Option<u32>,
    asked: usize,
    /// AAAA is asked before A (a proxy that can only send over IPv6).
    v6_first: bool,
}

impl Procedure {
    /// The procedure for `lookup` and its first question; a host's A records are asked for
    /// first, its AAAA records only when it has none.
    pub fn start(lookup: &Lookup) -> (Procedure, Step) {
        Procedure::start_with(lookup, false)
    }

    /// [`Procedure::start`], asking a host's AAAA records first when `v6_first` (and its A
    /// records only when it has none). A host's addresses are of one family, the first that
    /// has any: see `docs/DNS.md` for why.
    pub fn start_with(lookup: &Lookup, v6_first: bool) -> (Procedure, Step) {
        let name = lookup.name_str().to_owned();
        let mut p = Procedure {
            name: name.clone(),
            want: lookup.want,
            stage: Stage::Naptr,
            hosts: VecDeque::new(),
            targets: Vec::new(),
            ttl: u32::MAX,
            negative_ttl: None,
            asked: 0,
            v6_first,
        };
        let step = match lookup.want {
            Want::Address => {
                p.stage = Stage::Hosts;
                p.hosts.push_back(p.host(&name, 0, Transport::Udp));
                p.next_host()
            }
            Want::Srv(t) => match srv_name(&name, t) {
                Some(srv) => {
                    p.stage = Stage::Srv(VecDeque::from([(srv, t)]));
                    p.next_srv()
                }
                // RFC 7118 defines no SRV for WebSocket: A/AAAA at its default port.
                None => p.address_fallback(t),
            },
            Want::Naptr { .. } => p.ask(name, Kind::Naptr),
        };
        (p, step)
    }

    /// Takes in what was heard for the last question; the next question or the outcome.
    pub fn heard(&mut self, heard: Heard) -> Step {
        let Heard::Reply(reply) = heard else {
            return Step::Done(Outcome::Failed);
        };
        // FORMERR reaches here only when the question was asked again without EDNS (the
        // client's part, RFC 6891 §7): no verdict either way.
        if matches!(reply.rcode, Rcode::Failed | Rcode::FormErr) {
            return Step::Done(Outcome::Failed);
        }
        match std::mem::replace(&mut self.stage, Stage::Hosts) {
            Stage::Naptr => self.naptr(reply),
            Stage::Srv(queue) => self.srv(reply, queue),
            Stage::Hosts => self.addresses(reply),
        }
    }

    fn host(&self, name: &str, port: u16, transport: Transport) -> Host {
        Host {
            name: name.to_owned(),
            port,
            transport,
            priority: 0,
            weight: 0,
            second: false,
        }
    }

    fn ask(&mut self, name: String, kind: Kind) -> Step {
        self.asked += 1;
        if self.asked > MAX_QUESTIONS {
            return Step::Done(Outcome::Failed);
        }
        Step::Ask(name, kind)
    }

    fn naptr(&mut self, reply: Reply) -> Step {
        if reply.rcode == Rcode::NxDomain {
            // RFC 2308 §2.1: NXDOMAIN says the name has no records of any type: no SRV or
            // A/AAAA lookup of it can succeed.
            return Step::Done(Outcome::NotFound {
                negative_ttl: reply.negative_ttl,
            });
        }
        let secure = matches!(self.want, Want::Naptr { secure: true });
        let services = naptr_services(&reply.records, secure);
        let queue: VecDeque<(String, Transport)> = if services.is_empty() {
            // RFC 3263 §4.1: "If no NAPTR records are found, the client constructs SRV
            // queries for those transport protocols it supports".
            fallback_transports(secure)
                .iter()
                .filter_map(|&t| Some((srv_name(&self.name, t)?, t)))
                .collect()
        } else {
            self.keep_ttl(services.iter().map(|s| s.2));
            services.into_iter().map(|(n, t, _)| (n, t)).collect()
        };
        self.stage = Stage::Srv(queue);
        self.next_srv()
    }

    fn next_srv(&mut self) -> Step {
        let Stage::Srv(queue) = &self.stage else {
            return Step::Done(Outcome::Failed);
        };
        match queue.front() {
            Some((name, _)) => {
                let name = name.clone();
                self.ask(name, Kind::Srv)
            }
            None => {
                // RFC 3263 §4.2: "If no SRV records were found, the client performs an A or
                // AAAA record lookup of the domain name", at the transport's default port.
                let t = match self.want {
                    Want::Srv(t) => t,
                    Want::Naptr { secure: true } => Transport::Tls,
                    _ => Transport::Udp,
                };
                self.address_fallback(t)
            }
        }
    }

    fn address_fallback(&mut self, t: Transport) -> Step {
        self.stage = Stage::Hosts;
        let host = self.host(&self.name.clone(), t.default_port(), t);
        self.hosts.push_back(host);
        self.next_host()
    }

    fn srv(&mut self, reply: Reply, mut queue: VecDeque<(String, Transport)>) -> Step {
        let Some((asked, transport)) = queue.pop_front() else {
            return Step::Done(Outcome::Failed);
        };
        let mut hosts = srv_hosts(&reply.records, &asked, transport);
        if hosts.is_empty() {
            self.keep_negative(reply.negative_ttl);
            self.stage = Stage::Srv(queue);
            return self.next_srv();
        }
        self.keep_ttl(
            reply
                .records
                .iter()
                .filter(|r| matches!(r, Rec::Srv { name, .. } if *name == asked))
                .map(ttl),
        );
        hosts.truncate(MAX_TARGETS);
        // Addresses the server added (RFC 2782 "Additional data") spare a question.
        for host in hosts {
            let known = self.one_family(reply.records.iter().filter_map(|r| match r {
                Rec::Address { name, ip, ttl } if *name == host.name => Some((*ip, *ttl)),
                _ => None,
            }));
            if known.is_empty() {
                self.hosts.push_back(host);
            } else {
                self.keep_ttl(known.iter().map(|k| k.1));
                for (ip, _) in known {
                    self.add_target(&host, ip);
                }
            }
        }
        self.stage = Stage::Hosts;
        self.next_host()
    }

    fn next_host(&mut self) -> Step {
        match self.hosts.front() {
            Some(host) => {
                let kind = match host.second != self.v6_first {
                    true => Kind::Aaaa,
                    false => Kind::A,
                };
                self.ask(host.name.clone(), kind)
            }
            None if self.targets.is_empty() => Step::Done(Outcome::NotFound {
                negative_ttl: self.negative_ttl,
            }),
            None => Step::Done(Outcome::Found {
                targets: std::mem::take(&mut self.targets),
                ttl: if self.ttl == u32::MAX { 0 } else { self.ttl },
            }),
        }
    }

    fn addresses(&mut self, reply: Reply) -> Step {
        let Some(mut host) = self.hosts.pop_front() else {
            return Step::Done(Outcome::Failed);
        };
        let want_v6 = host.second != self.v6_first;
        // The answer may be a CNAME chain ending in the addresses: take the addresses of the
        // family asked, whatever owner name the chain gives them.
        let found: Vec<(IpAddr, u32)> = reply
            .records
            .iter()
            .filter_map(|r| match r {
                Rec::Address { ip, ttl, .. } if ip.is_ipv6() == want_v6 => Some((*ip, *ttl)),
                _ => None,
            })
            .collect();
        if found.is_empty() {
            self.keep_negative(reply.negative_ttl);
            // NXDOMAIN holds for every type (RFC 2308 §2.1): no AAAA either.
            if !host.second && reply.rcode != Rcode::NxDomain {
                // No address of the first family: ask for the other before giving it up.
                host.second = true;
                self.hosts.push_front(host);
            }
        } else {
            self.keep_ttl(found.iter().map(|f| f.1));
            for (ip, _) in found {
                self.add_target(&host, ip);
            }
        }
        self.next_host()
    }

    /// The addresses of the family asked first, else those of the other (a host's addresses
    /// are of one family, as when they are asked for).
    fn one_family(&self, found: impl Iterator<Item = (IpAddr, u32)>) -> Vec<(IpAddr, u32)> {
        let (first, other): (Vec<_>, Vec<_>) =
            found.partition(|(ip, _)| ip.is_ipv6() == self.v6_first);
        if first.is_empty() { other } else { first }
    }

    fn add_target(&mut self, host: &Host, ip: IpAddr) {
        if self.targets.len() < MAX_TARGETS {
            self.targets.push(Target {
                addr: SocketAddr::new(ip, host.port),
                transport: host.transport,
                priority: host.priority,
                weight: host.weight,
            });
        }
    }

    fn keep_ttl(&mut self, ttls: impl Iterator<Item = u32>) {
        self.ttl = ttls.fold(self.ttl, u32::min);
    }

    fn keep_negative(&mut self, negative: Option<u32>) {
        if let Some(n) = negative {
            self.negative_ttl = Some(self.negative_ttl.map_or(n, |m| m.min(n)));
        }
    }
}

fn ttl(r: &Rec) -> u32 {
    match r {
        Rec::Address { ttl, .. }
        | Rec::Srv { ttl, .. }
        | Rec::Naptr { ttl, .. }
        | Rec::Cname { ttl, .. } => *ttl,
    }
}

/// RFC 3263 §4.1 (and RFC 3261 §19.1.2 for the ports): the SRV name for a transport
/// (`_sip._udp`, `_sip._tcp`, `_sips._tcp`); WebSocket has none.
pub fn srv_name(name: &str, transport: Transport) -> Option<String> {
    let prefix = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
        Transport::Ws | Transport::Wss => return None,
    };
    Some(format!("{prefix}.{name}"))
}

/// RFC 3263 §4.1: the transports whose SRV records are tried, in our order of preference,
/// when a name has no NAPTR records: UDP, TCP, then TLS (a `sips:` URI: TLS only).
pub fn fallback_transports(secure: bool) -> &'static [Transport] {
    if secure {
        &[Transport::Tls]
    } else {
        &[Transport::Udp, Transport::Tcp, Transport::Tls]
    }
}

/// RFC 3263 §4.1: the NAPTR records we can use, best first: flag "s", a service we support
/// (`SIP+D2U` UDP, `SIP+D2T` TCP, `SIPS+D2T` TLS; SCTP and WebSocket are not ours), only
/// `SIPS+` ones for a `sips:` URI; sorted by order, then preference (RFC 3403 §4.1). Each
/// comes with its replacement (the SRV name) and its TTL.
pub fn naptr_services(records: &[Rec], secure: bool) -> Vec<(String, Transport, u32)> {
    let mut found: Vec<(u16, u16, String, Transport, u32)> = records
        .iter()
        .filter_map(|r| match r {
            Rec::Naptr {
                order,
                preference,
                flags,
                services,
                replacement,
                ttl,
                ..
            } => {
                if !flags.eq_ignore_ascii_case(b"s") || replacement.is_empty() {
                    return None;
                }
                let transport = naptr_transport(services)?;
                if secure && transport != Transport::Tls {
                    return None;
                }
                Some((*order, *preference, replacement.clone(), transport, *ttl))
            }
            _ => None,
        })
        .collect();
    found.sort_by_key(|f| (f.0, f.1));
    found.into_iter().map(|f| (f.2, f.3, f.4)).collect()
}

/// RFC 3263 §4.1 service fields (case-insensitive, RFC 3403 §4.1).
fn naptr_transport(services: &[u8]) -> Option<Transport> {
    let is = |s: &[u8]| services.eq_ignore_ascii_case(s);
    if is(b"SIP+D2U") {
        Some(Transport::Udp)
    } else if is(b"SIP+D2T") {
        Some(Transport::Tcp)
    } else if is(b"SIPS+D2T") {
        Some(Transport::Tls)
    } else {
        None
    }
}

/// The SRV records of `name` as hosts to resolve. RFC 2782: a single record whose target is
/// "." says the service is decidedly not available: no host.
fn srv_hosts(records: &[Rec], name: &str, transport: Transport) -> Vec<Host> {
    records
        .iter()
        .filter_map(|r| match r {
            Rec::Srv {
                name: owner,
                priority,
                weight,
                port,
                target,
                ..
            } if owner == name && !target.is_empty() && target != "." => Some(Host {
                name: target.clone(),
                port: *port,
                transport,
                priority: *priority,
                weight: *weight,
                second: false,
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
