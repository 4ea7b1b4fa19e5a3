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
//! | [`WorkerState::parking`] | each request that would park (a retransmission is absorbed) | a request that parks; `resume` takes it out |
//!
//! The shared tables are built for many readers and no lock on the hot path (the contact
//! table is a lock-free map); new shared state (a policy snapshot, the location table,
//! destination health, a DNS cache, bans) joins [`Tables`] as a field, and new per-worker state
//! (rate buckets, a script VM) joins [`WorkerState`]. The core keeps no transaction state:
//! nothing here remembers a transaction once its message has left.

use std::sync::Arc;

use crate::contact::ContactTable;

use super::ProxyConfig;
use super::park::Parking;

/// Shared, read-mostly state that every worker reaches through the [`Context`]. Cheap to
/// share: wrap it in an `Arc` and hand each worker a reference.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// The contact-rewrite table, when rewriting is on (`ProxyConfig::contact`); without it
    /// no Contact is rewritten and no token is restored.
    pub contact: Option<Arc<ContactTable>>,
}

/// State one worker owns and passes to the core by `&mut`; never shared between workers.
#[derive(Debug)]
pub struct WorkerState {
    /// Messages waiting for an answer from a side thread.
    pub parking: Parking,
}

impl WorkerState {
    /// A worker's state for a proxy built from `config` (its parking limits).
    pub fn new(config: &ProxyConfig) -> WorkerState {
        WorkerState {
            parking: Parking::new(config.parking),
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
