//! The DNS side service (`ferrovia-resolve`): takes the core's `Query::Resolve` (A/AAAA for a
//! name with a port) and `Query::Locate` (RFC 3263 NAPTR/SRV/A for a name without one) from
//! the workers, resolves them with [`crate::dns::Resolver`] — which fills the shared cache
//! the workers read — and answers each parked message, in whatever order the answers come.
//! Many questions are in flight at once; a name asked while it is being resolved waits for
//! the same DNS exchange.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{error, info, warn};

use super::side::{Questions, Replier, SideService};
use crate::dns::{DnsCache, DnsConfig, Lookup, Resolution, Resolver, Target, Want};
use crate::groups::{DestinationConfig, GroupConfig, GroupId, Groups, Placed, Refreshed, SrvRank};
use crate::proxy::{Answer, Query};
use crate::sip::{Scheme, SipUri, Span, Transport};

/// The resolver as a side service.
pub struct DnsService {
    config: DnsConfig,
    cache: Arc<DnsCache>,
}

impl DnsService {
    pub fn new(config: DnsConfig, cache: Arc<DnsCache>) -> DnsService {
        DnsService { config, cache }
    }
}

impl SideService for DnsService {
    fn run(self: Box<Self>, questions: Questions) {
        let resolver = match Resolver::start(self.config, self.cache, super::random_secret()) {
            Ok(resolver) => resolver,
            Err(e) => {
                // Returning drops the queue: every parked name is answered 503 at once.
                error!("dns: cannot start the resolver: {e}");
                return;
            }
        };
        info!("dns: resolving with {:?}", resolver.servers());
        let replier = questions.replier();
        while let Some(question) = questions.recv() {
            let asker = question.asker();
            let (lookup, address_only) = match question.into_query() {
                Query::Resolve(name) => (Lookup::new(name.as_bytes(), Want::Address), true),
                Query::Locate(lookup) => (Some(lookup), false),
                // Another kind's query never reaches this service (the runtime routes by
                // `Query::kind`); answered "not found" rather than left to time out.
                Query::Media(_) | Query::Location(_) => (None, true),
            };
            let Some(lookup) = lookup else {
                replier.reply(asker, Answer::NotFound);
                continue;
            };
            let replier: Replier = replier.clone();
            resolver.resolve(
                lookup,
                Box::new(move |resolution| {
                    replier.reply(asker, answer(resolution, address_only));
                }),
            );
        }
    }
}

/// The answer for a parked message. The worker reads the cache again on resuming (and
/// chooses there by the call's key); this target is used only when the entry is gone (a TTL
/// of 0): the first of the lowest priority.
fn answer(resolution: &Resolution, address_only: bool) -> Answer {
    match resolution {
        Resolution::Found(targets) => match best(targets) {
            Some(t) if address_only => Answer::Address(t.addr.ip()),
            Some(t) => Answer::Target(t.addr, t.transport),
            None => Answer::NotFound,
        },
        Resolution::NotFound => Answer::NotFound,
        Resolution::Failed => Answer::TimedOut,
    }
}

fn best(targets: &[Target]) -> Option<&Target> {
    targets
        .iter()
        .min_by_key(|t| (t.priority, u16::MAX - t.weight))
}

/// What DNS is asked for a destination named by host (RFC 3263 §4, as for a Request-URI);
/// `None` for an IP literal or a `[hosts]` name.
pub fn destination_lookup(uri: &str, name: Option<&str>, transport: Transport) -> Option<Lookup> {
    let name = name?;
    let buf = uri.as_bytes();
    let parsed = SipUri::parse(buf, Span::new(0, buf.len())).ok()?;
    let explicit = parsed.transport_param.map(|_| transport);
    let want = Want::of(parsed.port, explicit, parsed.scheme == Scheme::Sips);
    Lookup::new(name.as_bytes(), want)
}

/// Where a destination goes for a target: an explicit port (A/AAAA only) keeps the URI's port
/// and transport; SRV targets bring theirs.
fn place(
    lookup: &Lookup,
    configured: SocketAddr,
    transport: Transport,
    t: &Target,
) -> (SocketAddr, Transport) {
    match lookup.want {
        Want::Address => (SocketAddr::new(t.addr.ip(), configured.port()), transport),
        _ => (t.addr, t.transport),
    }
}

/// A target's SRV priority and weight (0 and 0 without SRV).
fn rank(t: &Target) -> SrvRank {
    SrvRank {
        priority: t.priority,
        weight: t.weight,
    }
}

/// Resolves the groups' DNS names at start (blocking, before the workers run): each named
/// destination becomes one destination slot per target found — each with its own health and
/// probes, and its SRV priority and weight, which choose among the name's targets (the
/// configured weight and priority are the name's, in the group) — as long as the group has
/// room (64); a name that does not resolve stays one destination with no address, down until
/// the refresher finds it.
pub fn resolve_group_names(groups: &mut [GroupConfig], resolver: &Resolver) {
    for group in groups.iter_mut() {
        let configured = std::mem::take(&mut group.destinations);
        let named = configured.iter().filter(|d| d.name.is_some()).count();
        let mut room = MAX_GROUP.saturating_sub(configured.len() - named);
        for d in configured {
            let Some(lookup) = destination_lookup(&d.uri, d.name.as_deref(), d.transport) else {
                group.destinations.push(d);
                continue;
            };
            room = room.saturating_sub(1);
            match resolver.resolve_blocking(lookup) {
                Resolution::Found(targets) => {
                    let keep = targets.len().min(room + 1).min(usize::from(u8::MAX));
                    room -= keep - 1;
                    for (i, t) in targets.iter().take(keep).enumerate() {
                        let (addr, transport) = place(&lookup, d.addr, d.transport, t);
                        info!("group {}: {} is {addr}", group.name, d.uri);
                        group.destinations.push(DestinationConfig {
                            addr,
                            transport,
                            target: i as u8,
                            srv: Some(rank(t)),
                            ..d.clone()
                        });
                    }
                }
                other => {
                    warn!(
                        "group {}: {} does not resolve ({other:?}): down until it does",
                        group.name, d.uri
                    );
                    group.destinations.push(d);
                }
            }
        }
    }
}

/// The most destinations a group holds (its live set is one 64-bit word).
const MAX_GROUP: usize = 64;

/// How soon a name is asked again when it did not resolve.
const RETRY: Duration = Duration::from_secs(5);

/// One DNS name of a group: its destinations (consecutive, one per address) and when to ask
/// again.
struct Named {
    group: usize,
    first: usize,
    slots: usize,
    lookup: Lookup,
    next: Instant,
    /// What the last refresh left vacant or out (logged when it changes).
    last: Refreshed,
}

/// Keeps the groups' DNS names fresh (`ferrovia-names`): each is asked again before its
/// cached answer expires (at four fifths of what was left of its TTL), and the addresses of
/// its destinations follow what DNS says; a failure keeps the addresses and asks again in
/// 5 s.
pub struct NameRefresher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl NameRefresher {
    /// `None` when no group destination is a DNS name.
    pub fn start(
        groups: Arc<Groups>,
        resolver: Resolver,
        cache: Arc<DnsCache>,
    ) -> io::Result<Option<NameRefresher>> {
        let now = Instant::now();
        let mut names: Vec<Named> = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            for (i, d) in group.destinations.iter().enumerate() {
                let Some(lookup) = destination_lookup(&d.uri, d.name.as_deref(), d.transport)
                else {
                    continue;
                };
                match names.last_mut() {
                    Some(n) if n.group == g && d.target > 0 && n.first + n.slots == i => {
                        n.slots += 1
                    }
                    _ => names.push(Named {
                        group: g,
                        first: i,
                        slots: 1,
                        lookup,
                        next: next_refresh(&cache, &lookup, now),
                        last: Refreshed::default(),
                    }),
                }
            }
        }
        if names.is_empty() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ferrovia-names".into())
            .spawn(move || refresh_loop(&groups, &resolver, &cache, names, &flag))?;
        Ok(Some(NameRefresher { stop, thread }))
    }

    pub fn stop(self) {
        self.stop.store(true, Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// Four fifths of what is left of the cached answer's TTL (at least 1 s); without a cached
/// answer (a TTL of 0, a failure), soon.
fn next_refresh(cache: &DnsCache, lookup: &Lookup, now: Instant) -> Instant {
    match cache.expires(lookup) {
        Some(expires) if expires > now => {
            let left = expires - now;
            now + (left * 4 / 5).max(Duration::from_secs(1))
        }
        _ => now + RETRY,
    }
}

fn refresh_loop(
    groups: &Groups,
    resolver: &Resolver,
    cache: &DnsCache,
    mut names: Vec<Named>,
    stop: &AtomicBool,
) {
    while !stop.load(Relaxed) {
        let now = Instant::now();
        for named in names.iter_mut().filter(|n| n.next <= now) {
            named.next = match resolver.resolve_blocking(named.lookup) {
                Resolution::Found(targets) => {
                    refresh(groups, named, &targets);
                    next_refresh(cache, &named.lookup, Instant::now())
                }
                _ => Instant::now() + RETRY,
            };
        }
        let next = names.iter().map(|n| n.next).min().unwrap_or(now + RETRY);
        std::thread::park_timeout(
            next.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1)),
        );
    }
}

/// Moves `named`'s slots to what DNS now gives (addresses, SRV priorities and weights); logs
/// what changed.
fn refresh(groups: &Groups, named: &mut Named, targets: &[Target]) {
    let Some(group) = groups.iter().nth(named.group) else {
        return;
    };
    let Some(first) = group.destinations.get(named.first) else {
        return;
    };
    let placed: Vec<Placed> = targets
        .iter()
        .map(|t| {
            let (addr, transport) = place(&named.lookup, first.addr(), first.transport, t);
            Placed {
                addr,
                transport,
                rank: rank(t),
            }
        })
        .collect();
    let id = GroupId(named.group as u16);
    let news = groups.refresh_name(id, named.first, named.slots, &placed);
    if news.moved > 0 {
        info!(
            "group {}: {} moved {} target(s)",
            group.name, first.uri, news.moved
        );
    }
    let was = (named.last.vacant, named.last.left_out);
    if (news.vacant, news.left_out) != was {
        warn!(
            "group {}: {} has {} target(s) without a slot (restart to use them), {} slot(s) \
             without a target",
            group.name, first.uri, news.left_out, news.vacant
        );
    }
    named.last = news;
}
