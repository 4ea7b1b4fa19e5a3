//! DNS for next hops named by host (RFC 3263): which records to ask for a SIP URI (NAPTR →
//! SRV → A/AAAA, [`rfc3263`]), the messages on the wire (`hickory-proto`, [`wire`]), the
//! resolver's I/O ([`Resolver`]: UDP, many questions in flight, retries, TCP on truncation),
//! and the shared [`DnsCache`] the workers read without a lock.
//!
//! The core never waits for DNS: it reads the cache ([`DnsCache::find`]); on a miss it parks
//! the request and asks the resolver side service (a `Query::Locate` / `Query::Resolve`),
//! which runs the procedure here, fills the cache and answers. See `docs/DNS.md`.

#![forbid(unsafe_code)]

mod cache;
mod client;
mod config;
mod lookup;
pub mod rfc3263;
pub mod wire;

pub use cache::{DnsCache, DnsCounters, DnsSnapshot, Found};
pub use client::{Done, Resolution, Resolver};
pub use config::{DnsConfig, resolv_conf_servers};
pub use lookup::{Lookup, MAX_NAME, Want};
pub use rfc3263::Target;
