//! The DNS side service (`ferrovia-resolve`): takes the core's `Query::Resolve` (A/AAAA for a
//! name with a port) and `Query::Locate` (RFC 3263 NAPTR/SRV/A for a name without one) from
//! the workers, resolves them with [`crate::dns::Resolver`] — which fills the shared cache
//! the workers read — and answers each parked message, in whatever order the answers come.
//! Many questions are in flight at once; a name asked while it is being resolved waits for
//! the same DNS exchange.

use std::sync::Arc;

use log::{error, info};

use super::side::{Questions, Replier, SideService};
use crate::dns::{DnsCache, DnsConfig, Lookup, Resolution, Resolver, Target, Want};
use crate::proxy::{Answer, Query};

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
