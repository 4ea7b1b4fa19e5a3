//! Contact rewriting at the edge: the Contact of a forwarded request or response becomes
//! `sip:<token>@<this proxy>`, and a request for such a URI goes to the original contact over
//! the flow its packets really came from (RFC 3261 §8.1.1.8, §10.2.1; behind NAT the Contact's
//! own address is unreachable, the flow's source is not).
//!
//! The table (`crate::contact::ContactTable`) is shared by every worker and reached through
//! the context (`Tables::contact`); an insert may allocate, a lookup never does. Sans-IO like
//! the rest of the core: `now` comes in the input.

use std::time::{Duration, Instant};

use crate::contact::{ContactTable, Flow, InsertRefused, Lifetime, LookupError, TOKEN_LEN};
use crate::sip::{HeaderName, Message, NameAddr, Scheme, SipUri, Span, Values};

use super::identity::SelfNames;
use super::rewrite::{Edit, Edits, Insert};

/// Contact rewriting, when the operator enables it: which messages' Contacts are rewritten.
/// The table they go into is shared state (`Tables::contact`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactRewrite {
    /// Rewrite the Contact of forwarded requests (REGISTER, INVITE, SUBSCRIBE, ...).
    pub requests: bool,
    /// Rewrite the Contact of forwarded 101–299 responses (the callee's Contact in a 180 or
    /// 200). Responses to REGISTER are not rewritten: their Contacts are the registrar's list,
    /// in which our own tokens are written back whatever this says (`bindings`).
    pub responses: bool,
}

/// A registration's lifetime when neither the Contact's `expires` nor Expires says
/// (RFC 3261 §10.2.1.1).
const DEFAULT_EXPIRES: u64 = 3600;

/// The longest original URI a restore copies; larger table limits are capped to it.
pub const MAX_RESTORED_URI: usize = 512;

/// What is written for each rewritten Contact: the departure listener's `host:port` and the
/// flow the message came over.
pub(crate) struct Rewriting<'a> {
    pub host: &'a [u8],
    pub flow: Flow,
    pub register: bool,
    pub now: Instant,
}

/// Pushes an edit replacing the URI of every Contact value with a token URI. Wildcards,
/// non-SIP and unparsable values, and URIs that already are our tokens are left as they are.
/// `Err` when the table is full (the caller decides: 503 for a request, unchanged for a
/// response); a URI too long for the table stays unrewritten (the table counts it).
pub(crate) fn push_rewrites<'a>(
    table: &ContactTable,
    names: &SelfNames,
    msg: &Message<'_>,
    how: &Rewriting<'a>,
    edits: &mut Edits<'a>,
) -> Result<(), InsertRefused> {
    let buf = msg.buf();
    for header in msg.headers_named(HeaderName::Contact) {
        for value in Values::new(buf, header.value) {
            let Some(addr) = NameAddr::parse(buf, value) else {
                continue; // includes `*` (RFC 3261 §10.2.2), which has no URI
            };
            let Ok(uri) = SipUri::parse(buf, addr.uri) else {
                continue;
            };
            if is_our_token(names, buf, &uri) {
                continue;
            }
            let lifetime = match how.register {
                true => Lifetime::Registration(registration_expires(msg, &addr)),
                false => Lifetime::Dialog,
            };
            let token = match table.insert(addr.uri.of(buf), how.flow, lifetime, how.now) {
                Ok(token) => token,
                Err(InsertRefused::UriTooLong) => continue,
                Err(full) => return Err(full),
            };
            edits.push(Edit::replace(
                addr.uri,
                Insert::ContactUri {
                    token,
                    host: how.host,
                    transport: uri.transport_param,
                    secure: uri.scheme == Scheme::Sips,
                    angle: addr.angle,
                },
            ));
        }
    }
    Ok(())
}

/// `sip:<29 token characters>@<one of our names>`.
pub(crate) fn is_our_token(names: &SelfNames, buf: &[u8], uri: &SipUri) -> bool {
    uri.user.is_some_and(|u| u.len() == TOKEN_LEN) && names.is_me(buf, &uri.host, uri.port, 5060)
}

/// A REGISTER Contact's lifetime: its `expires` parameter, else the Expires header, else
/// 3600 s (RFC 3261 §10.2.1.1). The table caps it.
fn registration_expires(msg: &Message<'_>, addr: &NameAddr) -> Duration {
    let buf = msg.buf();
    let seconds = addr
        .param(buf, b"expires")
        .map(|s| s.of(buf))
        .or_else(|| msg.header(HeaderName::Expires).map(|h| msg.bytes(h.value)))
        .and_then(|text| crate::sip::parse_delta_seconds(text).ok())
        .map_or(DEFAULT_EXPIRES, u64::from);
    Duration::from_secs(seconds)
}

/// An original Contact URI copied out of the table, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct RestoredUri {
    bytes: [u8; MAX_RESTORED_URI],
    len: usize,
}

impl RestoredUri {
    pub(crate) fn copy(uri: &[u8]) -> Option<RestoredUri> {
        let mut restored = RestoredUri {
            bytes: [0; MAX_RESTORED_URI],
            len: uri.len(),
        };
        restored.bytes.get_mut(..uri.len())?.copy_from_slice(uri);
        Some(restored)
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Debug for RestoredUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// What a Request-URI naming this proxy says about contact rewriting.
// The restored URI rides inline on purpose: boxing it would allocate for every request sent
// back to a rewritten contact.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Restore {
    /// Its user part is not a token: route it as usual.
    NotAToken,
    /// A live token: send to `flow` with `uri` as the Request-URI.
    Found { uri: RestoredUri, flow: Flow },
    /// A token that is forged, unknown, another instance's or expired.
    Refused(LookupError),
}

/// Looks the Request-URI's user part up (without touching the map when the MAC fails).
pub(crate) fn restore(table: &ContactTable, buf: &[u8], user: Span, now: Instant) -> Restore {
    let found = table.lookup(user.of(buf), now, |entry| {
        (RestoredUri::copy(entry.original_uri()), entry.flow())
    });
    match found {
        Ok((Some(uri), flow)) => Restore::Found { uri, flow },
        // Longer than the table accepts: the configuration caps it, so this cannot happen.
        Ok((None, _)) => Restore::Refused(LookupError::Unknown),
        Err(LookupError::Malformed) => Restore::NotAToken,
        Err(refused) => Restore::Refused(refused),
    }
}

#[cfg(test)]
mod tests;
