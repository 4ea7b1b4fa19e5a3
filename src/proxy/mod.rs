//! The stateless proxy's decisions and rewriting (RFC 3261 §16, §16.11, §18; RFC 3581).
//!
//! Sans-IO: [`Proxy::handle`] takes one received message (bytes, its [`Flow`], `now`), a
//! [`Context`] and a buffer the caller owns, and returns an [`Outcome`]. No sockets, threads or
//! clocks. The `Proxy` is immutable configuration shared by every worker; what the core reads
//! and writes beyond the message is in the context ([`context`] lists it): the shared
//! [`Tables`] (the contact table) and the worker's own [`WorkerState`] (its parked messages).
//! The core keeps no transaction state: once a message has left, nothing remembers it.
//!
//! A request that needs an answer from outside the worker first (a host name to resolve)
//! parks ([`Outcome::Park`], see [`park`]); the runtime asks a side thread and calls
//! [`Proxy::resume`] with the answer.

#![forbid(unsafe_code)]

mod bindings;
mod branch;
mod canonical;
pub mod config;
mod contact;
pub mod context;
mod identity;
mod media_hook;
pub mod outcome;
pub mod park;
mod policy_hook;
mod registrar;
mod reply;
mod request;
mod response;
mod rewrite;
mod route;
pub mod stun;
mod via_fix;

use std::net::SocketAddr;
use std::time::Instant;

use crate::sip::{Flow, Message, ScanError, ScanFailure};

use branch::BranchKey;
use identity::Identity;
use reply::Status;

pub use config::{ConfigError, Host, HostPort, Listener, NextHop, ProxyConfig};
pub use contact::{ContactRewrite, MAX_RESTORED_URI};
pub use context::{Context, Tables, WorkerState};
pub use outcome::{ConnectionId, Direction, DropReason, Outcome, PeerName, Transmit, Transport};
pub use park::{Answer, HostName, ParkingLimits, Query, SideKind, Ticket};

/// The status a STUN Binding answer is counted under among local replies (the "outside
/// 100..=699" slot, which no SIP reply uses).
pub const STUN_REPLY_STATUS: u16 = 0;

/// Output buffers must hold the largest message the proxy can emit: a 64 KiB datagram
/// plus what the proxy adds (Via, Record-Route, Max-Forwards, received/rport).
pub const OUTPUT_BUFFER_SIZE: usize = 65_535 + 1024;

/// The most header lines a message may have for the proxy to forward it: the proxy adds up
/// to five (two Record-Route, Via, Max-Forwards, Content-Length) and what it sends must stay
/// within the scanner's limit, [`MAX_HEADERS`](crate::sip::MAX_HEADERS), which the next
/// ferrovia also applies.
pub const MAX_FORWARDED_HEADERS: usize = crate::sip::MAX_HEADERS - 5;

/// One received message, as the runtime hands it to the core.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The message bytes: one datagram, or one framed message from a stream.
    pub data: &'a [u8],
    /// Where it came from: transport, source, our listener, and the connection on a stream.
    pub flow: Flow,
    /// The time it arrived; the core reads no clock.
    pub now: Instant,
}

/// The stateless proxy core: immutable configuration, shared by every worker (`handle` takes
/// `&self`). State lives in the [`Context`] each call is given.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    identity: Identity,
    branch_key: BranchKey,
    next_hop: Option<(SocketAddr, Transport)>,
    route_all_to: Option<(SocketAddr, Transport)>,
    record_route: bool,
    max_stream_message: usize,
    contact: Option<ContactRewrite>,
    resolver: bool,
    route_to_group: Option<crate::groups::GroupId>,
}

impl Proxy {
    /// Validates the configuration once and prepares what the hot path writes.
    pub fn new(config: ProxyConfig) -> Result<Proxy, ConfigError> {
        if config.listeners.is_empty() {
            return Err(ConfigError("at least one listener is needed".into()));
        }
        let identity = Identity::new(&config)?;
        let next_hop = match &config.next_hop {
            Some(hop) => Some(resolve_next_hop(hop, &identity)?),
            None => None,
        };
        let route_all_to = match &config.route_all_to {
            Some(hop) => Some(resolve_next_hop(hop, &identity)?),
            None => None,
        };
        Ok(Proxy {
            route_all_to,
            identity,
            branch_key: BranchKey::new(config.branch_secret),
            next_hop,
            record_route: config.record_route,
            max_stream_message: config.max_stream_message,
            contact: config.contact,
            resolver: config.resolver,
            route_to_group: config.route_to_group,
            config,
        })
    }

    /// `host:port` as this proxy writes it in Via for its listener bound to `local` over
    /// `transport` (health probes leave with it).
    pub fn shown(&self, local: SocketAddr, transport: Transport) -> Option<&[u8]> {
        let i = self.identity.arrival(local, transport);
        self.identity.locals.get(i).map(|l| &*l.shown)
    }

    /// The configuration this proxy was built from.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Decides what to do with one message, writing any bytes to send into `out`
    /// (which should be at least [`OUTPUT_BUFFER_SIZE`] long).
    pub fn handle(&self, input: Input<'_>, ctx: &mut Context<'_>, out: &mut [u8]) -> Outcome {
        let stream = input.flow.transport.is_stream();
        // RFC 3261 §18.3 / §21.5.14: over a stream the size is bounded by configuration; a
        // datagram is bounded by the transport itself.
        let too_large = stream && input.data.len() > self.max_stream_message;
        if !stream && stun::is_stun(input.data) {
            return Self::stun(&input, out);
        }
        match Message::scan(input.data, stream) {
            Ok(msg) if too_large => self.too_large(&msg, &input, out),
            Ok(msg) if msg.is_request() => request::handle(self, &msg, &input, ctx, out),
            Ok(msg) => response::handle(self, &msg, &input, ctx, out),
            Err(failure) => self.malformed(failure, &input, too_large, out),
        }
    }

    /// RFC 5626 §4.4.2 / §8.4: a STUN Binding request on a UDP SIP port (a phone keeping its
    /// NAT binding open) gets a Binding success response naming the address it came from.
    /// Counted as a local reply with status [`STUN_REPLY_STATUS`].
    fn stun(input: &Input<'_>, out: &mut [u8]) -> Outcome {
        match stun::answer(input.data, input.flow.source, out) {
            stun::Stun::Answered(len) => Outcome::Reply {
                transmit: Transmit {
                    destination: input.flow.source,
                    transport: input.flow.transport,
                    local: input.flow.local,
                    len,
                    direction: Direction::Response,
                    connection: None,
                    name: None,
                },
                status: STUN_REPLY_STATUS,
            },
            stun::Stun::Ignored => Outcome::Drop(DropReason::StunIgnored),
        }
    }

    /// Handles a parked message again, now that its query has `answer` (or timed out):
    /// the message leaves the parking area and gets the outcome it would have had with the
    /// answer known (forward, or the reply the feature names, e.g. 503). `None` when the
    /// ticket finds nothing: that message already left (timed out, or drained).
    #[must_use]
    pub fn resume(
        &self,
        ticket: Ticket,
        answer: Answer,
        ctx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Option<Outcome> {
        let (bytes, parked) = ctx.worker.parking.take(ticket)?;
        let input = Input {
            data: &bytes,
            flow: parked.flow,
            now: parked.since,
        };
        let stream = input.flow.transport.is_stream();
        let outcome = match Message::scan(input.data, stream) {
            Ok(msg) if msg.is_request() => {
                request::resume(self, &msg, &input, (parked.query, answer), ctx, out)
            }
            // A response parks only for the media relay (issue 18).
            Ok(msg) => response::resume(self, &msg, &input, &answer, ctx.tables, out),
            // It scanned when it parked; the same bytes scan the same way.
            Err(_) => Outcome::Drop(DropReason::MalformedRequest),
        };
        ctx.worker.parking.give_back(ticket, bytes);
        Some(outcome)
    }

    /// A stream message that outgrew the size limit before it was complete: `input.data`
    /// holds what was read (its headers, or the start of them). A request whose Via was
    /// read gets 513 (RFC 3261 §21.5.14), after which the runtime closes the connection;
    /// anything else is dropped as [`DropReason::TooLarge`].
    pub fn handle_oversized(&self, input: Input<'_>, out: &mut [u8]) -> Outcome {
        let msg = match Message::scan(input.data, true) {
            Ok(msg) => msg,
            Err(ScanFailure {
                partial: Some(msg), ..
            }) => msg,
            Err(_) => return Outcome::Drop(DropReason::TooLarge),
        };
        self.too_large(&msg, &input, out)
    }

    /// A request edge protection refused before the core looked at it (over its source's
    /// rate limit): 503 Service Unavailable with `Retry-After` when its Via allows an answer
    /// (RFC 3261 §21.5.4), else dropped as [`DropReason::RateLimited`].
    pub fn refuse(&self, input: Input<'_>, retry_after: u32, out: &mut [u8]) -> Outcome {
        let status = Status {
            retry_after,
            ..Status::new(503, "Service Unavailable")
        };
        match Message::scan(input.data, input.flow.transport.is_stream()) {
            Ok(msg) if msg.is_request() => {
                request::reject(self, &msg, &input, status, DropReason::RateLimited, out)
            }
            _ => Outcome::Drop(DropReason::RateLimited),
        }
    }

    fn too_large(&self, msg: &Message<'_>, input: &Input<'_>, out: &mut [u8]) -> Outcome {
        if !msg.is_request() {
            return Outcome::Drop(DropReason::TooLarge);
        }
        request::reject(
            self,
            msg,
            input,
            request::TOO_LARGE,
            DropReason::TooLarge,
            out,
        )
    }

    /// A message whose framing is broken: a request with a usable Via gets 400 (513 when it
    /// is also too large); everything else is a counted drop.
    fn malformed(
        &self,
        failure: ScanFailure<'_>,
        input: &Input<'_>,
        too_large: bool,
        out: &mut [u8],
    ) -> Outcome {
        match failure {
            ScanFailure {
                error: ScanError::Empty,
                ..
            } => Outcome::Drop(DropReason::Keepalive),
            ScanFailure {
                partial: Some(msg),
                error,
            } if msg.is_request() => {
                let status = if too_large {
                    request::TOO_LARGE
                } else {
                    Status::new(error.status_code(), error.reason_phrase())
                };
                let otherwise = canonical::drop_reason(error, true);
                request::reject(self, &msg, input, status, otherwise, out)
            }
            ScanFailure {
                partial: Some(_),
                error,
            } => Outcome::Drop(canonical::drop_reason(error, false)),
            ScanFailure { partial: None, .. } => Outcome::Drop(DropReason::NotSip),
        }
    }
}

/// The next hop's address: an IP literal, or a name from the static host table.
fn resolve_next_hop(
    hop: &NextHop,
    identity: &Identity,
) -> Result<(SocketAddr, Transport), ConfigError> {
    let ip = match &hop.host {
        Host::Ip(ip) => *ip,
        Host::Name(name) => identity
            .hosts
            .lookup(name.as_bytes())
            .ok_or_else(|| ConfigError(format!("next hop {name}: not in the host table")))?,
    };
    let port = hop.port.unwrap_or(hop.transport.default_port());
    Ok((SocketAddr::new(ip, port), hop.transport))
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
