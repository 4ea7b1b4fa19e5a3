//! The I/O shell: thread-per-core workers that move UDP datagrams and TCP streams through the
//! sans-IO core.
//!
//! Contract:
//! - [`Server::start`] binds every listen address once per worker with `SO_REUSEPORT`, so the
//!   kernel keeps each flow (4-tuple) on one worker and its messages in order.
//! - Each worker owns its sockets, event loop, receive and output buffers, its [`Recorder`]
//!   (the stats module's `WorkerStats` in the shipping service) and its part of the core's
//!   context (`WorkerState`: parked messages); workers share the read-only
//!   [`Proxy`](crate::proxy::Proxy), the core's shared `Tables`, and a stop flag.
//! - A message the core parks waits in its worker's parking area while a side thread
//!   ([`SideService`], e.g. a resolver) answers; the answer wakes the worker through its
//!   `mio::Waker` and the worker resumes the message in the core.
//! - The hot path does not lock or allocate: buffers are allocated when a worker starts.
//!   Datagrams move in batches (`recvmmsg` / `sendmmsg` on Linux), with one clock read per batch.
//! - TCP listeners sit beside the UDP sockets in the same loops (`stream`): each worker owns
//!   the connections it accepts or opens; a message for another worker's connection is handed
//!   over through a bounded queue and a waker, never under a lock.
//! - Send errors (including ICMP port unreachable reported later) are counted, never fatal.
//! - [`Server::shutdown`] finishes the in-flight batch, drops (and counts) what is still
//!   parked, joins every worker, and returns their recorders.
//!
//! OS-specific code lives in `sys`.

mod identity;
mod ng_client;
mod note;
mod prober;
mod resolver;
mod server;
mod side;
mod socket;
mod stream;
mod sys;
mod worker;

pub use crate::record::Recorder;
/// 16 random bytes (from the OS when it can), for keys made at start.
pub use identity::branch_secret as random_secret;
pub use identity::{contact_table, destination_groups, protection, proxy_config};
pub use ng_client::NgClient;
pub use prober::ProbeThread;
pub use resolver::{DnsService, NameRefresher, destination_lookup, resolve_group_names};
pub use server::{Server, StartError, Stopped, UdpSender, Wiring};
pub use side::{Asker, Question, Questions, Replier, SideService};
pub use stream::StreamEvent;
