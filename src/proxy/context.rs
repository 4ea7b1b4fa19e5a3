//! What the core reads and writes besides the message in hand.
//!
//! [`Proxy::handle`](super::Proxy::handle) and [`Proxy::resume`](super::Proxy::resume) take a
//! [`Context`]: the shared [`Tables`] every worker reads (and, where a feature says so,
//! writes), and this worker's own [`WorkerState`], passed `&mut` and never shared. The
//! `Proxy` itself is immutable configuration. Nothing else is read or written: no clock (time
//! is `Input::now`), no socket, no thread, no global.
//!
//! What each entry point touches today:
//!
//! | state | read | written |
//! | --- | --- | --- |
//! | [`Tables::contact`] | a request for a rewritten contact (`sip:<token>@us`) | each Contact rewritten on a forwarded request or 101–299 response (insert or refresh) |
//! | [`Tables::registrar`] | a REGISTER for our domains, a request from one of our users (digest), a request for one of our AoRs (location lookup) | a REGISTER's bindings (one compare-and-swap per AoR) |
//! | [`Tables::dns`] | a request whose next hop is a host name outside the static table (RFC 3263) | the hit / miss counters; the resolver thread writes the entries |
//! | [`WorkerState::parking`] | each request that would park (a retransmission is absorbed) | a request that parks; `resume` takes it out |
//! | [`WorkerState::router`] | each request, after Route preprocessing (`crate::policy`); the shared policy snapshot (`policy::PolicyHandle`, swapped whole on reload) is reached through it | what the router keeps (regex caches, its Lua VM, counters) |
//!
//! The shared tables are built for many readers and no lock on the hot path (the contact
//! table is a lock-free map); new shared state (a policy snapshot, the location table,
//! destination health, a DNS cache, bans) joins [`Tables`] as a field, and new per-worker state
//! (rate buckets, a script VM) joins [`WorkerState`]. The core keeps no transaction state:
//! nothing here remembers a transaction once its message has left.

use std::sync::Arc;

use crate::contact::ContactTable;
use crate::groups::Groups;
use crate::policy::Router;

use super::ProxyConfig;
use super::park::Parking;

/// Shared, read-mostly state that every worker reaches through the [`Context`]. Cheap to
/// share: wrap it in an `Arc` and hand each worker a reference.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// The contact-rewrite table, when rewriting is on (`ProxyConfig::contact`); without it
    /// no Contact is rewritten and no token is restored.
    pub contact: Option<Arc<ContactTable>>,
    /// The registrar: the location table, the users and the digest configuration, when
    /// `[registrar]` is on (issue 14). Read by every request (authentication of requests
    /// from our users, location lookups); written by a REGISTER for our domains.
    pub registrar: Option<Arc<crate::registrar::Registrar>>,
    /// The destination groups (selection and health), when any are configured; a request
    /// routed to a group without them gets 503.
    pub groups: Option<Arc<Groups>>,
    /// The DNS cache (RFC 3263 results), filled by the resolver side service; without it
    /// every name outside the static host table parks (when a resolver is wired) or gets 503.
    pub dns: Option<Arc<crate::dns::DnsCache>>,
}

/// State one worker owns and passes to the core by `&mut`; never shared between workers.
pub struct WorkerState {
    /// Messages waiting for an answer from a side thread.
    pub parking: Parking,
    /// The routing policy's router for this worker (the compiled rules' `Engine` with its Lua
    /// VM, or an embedder's own); `None` routes every request as addressed.
    pub router: Option<Box<dyn Router>>,
    /// This worker's lane in shared per-worker counters (its index; 0 by default): the
    /// destination groups count sent requests there, so that workers do not share a cache
    /// line per destination.
    pub lane: usize,
}

impl std::fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerState")
            .field("parking", &self.parking)
            .field("router", &self.router.is_some())
            .field("lane", &self.lane)
            .finish()
    }
}

impl WorkerState {
    /// A worker's state for a proxy built from `config` (its parking limits).
    pub fn new(config: &ProxyConfig) -> WorkerState {
        WorkerState {
            parking: Parking::new(config.parking),
            router: None,
            lane: 0,
        }
    }
}

/// What one call into the core may read and write besides its input.
#[derive(Debug)]
pub struct Context<'a> {
    pub tables: &'a Tables,
    pub worker: &'a mut WorkerState,
}

impl<'a> Context<'a> {
    pub fn new(tables: &'a Tables, worker: &'a mut WorkerState) -> Context<'a> {
        Context { tables, worker }
    }
}
