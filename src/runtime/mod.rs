//! The I/O shell: thread-per-core workers that move UDP datagrams and TCP streams through the
//! sans-IO core.
//!
//! Contract:
//! - [`Server::start`] binds every listen address once per worker with `SO_REUSEPORT`, so the
//!   kernel keeps each flow (4-tuple) on one worker and its messages in order.
//! - Each worker owns its sockets, event loop, receive and output buffers and [`Recorder`];
//!   workers share only the read-only [`Proxy`](crate::proxy::Proxy) and a stop flag.
//! - The hot path does not lock or allocate: buffers are allocated when a worker starts.
//!   Datagrams move in batches (`recvmmsg` / `sendmmsg` on Linux), with one clock read per batch.
//! - TCP listeners sit beside the UDP sockets in the same loops (`stream`): each worker owns
//!   the connections it accepts or opens; a message for another worker's connection is handed
//!   over through a bounded queue and a waker, never under a lock.
//! - Send errors (including ICMP port unreachable reported later) are counted, never fatal.
//! - [`Server::shutdown`] finishes the in-flight batch, joins every worker, and returns
//!   the recorders ([`Counters`] by default, summarised by [`Summary`]).
//!
//! OS-specific code lives in `sys`.

mod identity;
mod note;
mod prober;
mod record;
mod server;
mod socket;
mod stream;
mod summary;
mod sys;
mod worker;

pub use identity::contact_rewrite;
pub use prober::ProbeThread;
pub use record::{Counters, Recorder};
pub use server::{Server, StartError, Stopped};
pub use stream::StreamEvent;
pub use summary::Summary;
