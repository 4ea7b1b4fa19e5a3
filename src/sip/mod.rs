//! SIP message scanning and field parsing: zero-copy, allocation-free, never panics on input.
//!
//! [`Message::scan`] checks a message's framing once (start line, header lines, body bounds)
//! and records every header as offsets into the received bytes. The field parsers
//! ([`Via`], [`SipUri`], [`NameAddr`], the numeric fields) then read one header value at a
//! time, again as offsets, so the proxy can rewrite the original bytes in one pass.
//!
//! [`next_frame`] splits a stream into messages with the scanner's own line and header
//! rules (`line`, one rule for both), so a message is framed exactly as it is parsed.

#![forbid(unsafe_code)]

mod chars;
mod fields;
mod flow;
mod framing;
mod header;
mod line;
mod list;
mod name_addr;
mod params;
mod scan;
mod transport;
mod uri;
mod via;

pub use fields::{
    CSeq, FieldError, parse_content_length, parse_cseq, parse_delta_seconds, parse_max_forwards,
};
pub use flow::{ConnectionId, Flow};
pub use framing::{Frame, next_frame};
pub use header::HeaderName;
pub use list::Values;
pub use name_addr::NameAddr;
pub use params::{Param, Params};
pub use scan::{Header, MAX_HEADERS, Message, Method, ScanError, ScanFailure, StartLine};
pub use transport::Transport;
pub use uri::{HostKind, HostSpan, Scheme, SipUri, UriError, scheme_of};
pub(crate) use uri::{parse_host, parse_ipv4};
pub use via::{Rport, Via, ViaError};

/// A range of byte offsets into a message buffer. Copy-able, four bytes per end: SIP
/// messages are far below 4 GiB (the stream limit is 64 KiB by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// A span from `start` to `end` (callers guarantee `start <= end`).
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes this span covers in `buf`; empty if it does not fit (never panics).
    pub fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    pub fn start(self) -> usize {
        self.start as usize
    }

    pub fn end(self) -> usize {
        self.end as usize
    }
}

/// The branch prefix of RFC 3261 transactions (§8.1.1.7).
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";
