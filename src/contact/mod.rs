//! Contact rewriting's shared state: the table that maps a short, MAC-sealed token to the
//! Contact URI a client really sent and the flow it really came over (RFC 3261 §8.1.1.8,
//! §10.2.1; behind NAT the Contact's address is unreachable, the flow's source is not).
//!
//! The proxy rewrites a Contact it forwards to `sip:<token>@<advertised host:port>` and, when a
//! request comes back for that URI, restores the original URI and sends over the recorded
//! flow. This module owns the token format ([`token`]) and the table ([`ContactTable`]); the
//! rewriting itself belongs to `proxy`. Sans-IO: no clock, socket or thread in here.
//! See `docs/CONTACT.md` for the design and the measurements.

#![forbid(unsafe_code)]

mod base32;
mod counters;
mod entry;
mod id_hash;
mod table;
pub mod token;

pub use crate::sip::Flow;
pub use counters::ContactCounters;
pub use entry::{ContactEntry, Lifetime};
pub use table::{ContactTable, ContactTableConfig, InsertRefused, LookupError};
pub use token::{ContactToken, EntryId, NodeId, TOKEN_LEN, TokenError, TokenFields, TokenKey};
