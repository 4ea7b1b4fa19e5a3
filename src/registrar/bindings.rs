//! One address-of-record's bindings and how a REGISTER changes them (RFC 3261 §10.3 steps
//! 6–7; RFC 5626 §6 for `+sip.instance` / `reg-id`).
//!
//! [`apply`] is a pure function: the current bindings, the REGISTER's contacts, the limits
//! and `now` in, the new bindings (or the refusal) out. It changes all bindings or none, as
//! §10.3 step 7 requires ("the update MUST be aborted and the request fails").

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sip::Flow;

/// The longest Contact URI a binding keeps (requests to it carry it as Request-URI; the
/// proxy copies it onto the stack, within its `MAX_RESTORED_URI`).
pub const MAX_CONTACT_URI: usize = 512;

/// One registered contact.
///
/// The byte fields are shared (`Arc`): a REGISTER copies the AoR's list to change it and
/// copies it again for the 200 OK, and a clone then costs a reference count, not an
/// allocation per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI (without angle brackets or header parameters).
    pub contact: Arc<[u8]>,
    /// Where the REGISTER's packets came from: requests for the binding go there.
    pub flow: Flow,
    /// `q` in thousandths (RFC 3261 §20.10: 0 to 1, three decimals); 1000 when absent.
    pub q: u16,
    pub expires: Instant,
    /// When the binding was last refreshed: the most recent wins a tie in `q`.
    pub registered: Instant,
    pub call_id: Arc<[u8]>,
    pub cseq: u32,
    /// RFC 5626 `+sip.instance` (the value as written, quotes included) and `reg-id`.
    pub instance: Option<Arc<[u8]>>,
    pub reg_id: Option<u32>,
    /// RFC 3327 Path values of the REGISTER (comma-separated), used as a preloaded route.
    pub path: Option<Arc<[u8]>>,
    /// Another node owns the flow (a binding learnt from the shared store): requests go to
    /// that node's SIP address, which delivers them over the flow (RFC 5626 edge model).
    pub remote: Option<std::net::SocketAddr>,
}

impl Binding {
    /// Seconds left, rounded down (0 once expired).
    pub fn remaining(&self, now: Instant) -> u64 {
        self.expires.saturating_duration_since(now).as_secs()
    }

    fn same_as(&self, c: &ContactSpec<'_>) -> bool {
        match (c.instance, c.reg_id) {
            // RFC 5626 §6: the instance and reg-id name the flow, whatever the URI.
            (Some(instance), Some(reg_id)) => {
                self.instance.as_deref() == Some(instance) && self.reg_id == Some(reg_id)
            }
            // RFC 3261 §10.3 step 7 compares Contact URIs (§19.1.4, simplified to a
            // case-insensitive byte comparison).
            _ => self.contact.eq_ignore_ascii_case(c.uri),
        }
    }
}

/// One Contact value of a REGISTER, as the parser found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactSpec<'a> {
    pub uri: &'a [u8],
    /// The `expires` parameter.
    pub expires: Option<u32>,
    pub q: Option<u16>,
    pub instance: Option<&'a [u8]>,
    pub reg_id: Option<u32>,
}

/// What a REGISTER asks, besides its contacts.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `Contact: *` (§10.2.2).
    pub wildcard: bool,
    /// The Expires header.
    pub expires: Option<u32>,
    pub call_id: &'a [u8],
    pub cseq: u32,
    pub flow: Flow,
    pub path: Option<&'a [u8]>,
    pub now: Instant,
}

/// The registrar's expiry and size limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Shorter non-zero expiries get 423 (§10.3 step 7).
    pub min_expires: u32,
    /// Longer expiries are cut to this.
    pub max_expires: u32,
    /// When neither the parameter nor the header says (§10.2.1.1 suggests 3600).
    pub default_expires: u32,
    /// Most bindings per address-of-record.
    pub max_bindings: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_bindings: 10,
        }
    }
}

/// Why a REGISTER changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A non-zero expiry below the minimum: 423 with Min-Expires (§10.3 step 7).
    IntervalTooBrief(u32),
    /// `*` with other contacts or a non-zero Expires: 400 (§10.3 step 6).
    BadWildcard,
    /// The same Call-ID with a lower CSeq than the binding's: the request fails (§10.3
    /// step 7); answered 500. An equal CSeq is a retransmission and changes nothing.
    OutOfOrder,
    /// More bindings than the limit: 403.
    TooManyBindings,
    /// A Contact URI longer than [`MAX_CONTACT_URI`]: 400.
    ContactTooLong,
}

/// §10.3 steps 6–7: the bindings after `request` with `contacts`, from `old`.
pub(crate) fn apply(
    old: &[Binding],
    contacts: &[ContactSpec<'_>],
    request: &Request<'_>,
    limits: &Limits,
) -> Result<Vec<Binding>, Refusal> {
    let now = request.now;
    let mut new: Vec<Binding> = old.iter().filter(|b| b.expires > now).cloned().collect();
    if request.wildcard {
        // Step 6: `*` only alone and with Expires: 0.
        if !contacts.is_empty() || request.expires != Some(0) {
            return Err(Refusal::BadWildcard);
        }
        let mut kept = Vec::new();
        for b in new {
            match order(&b, request) {
                Order::Newer => {}
                Order::Retransmission => kept.push(b),
                Order::Older => return Err(Refusal::OutOfOrder),
            }
        }
        return Ok(kept);
    }
    for c in contacts {
        let expires = c
            .expires
            .or(request.expires)
            .unwrap_or(limits.default_expires);
        if expires != 0 && expires < limits.min_expires {
            return Err(Refusal::IntervalTooBrief(limits.min_expires));
        }
        if c.uri.len() > MAX_CONTACT_URI {
            return Err(Refusal::ContactTooLong);
        }
        let existing = new.iter().position(|b| b.same_as(c));
        if let Some(i) = existing {
            match order(&new[i], request) {
                Order::Newer => {
                    new.remove(i);
                }
                Order::Retransmission => continue,
                Order::Older => return Err(Refusal::OutOfOrder),
            }
        }
        if expires > 0 {
            new.push(binding(c, request, expires.min(limits.max_expires)));
        }
    }
    if new.len() > limits.max_bindings {
        return Err(Refusal::TooManyBindings);
    }
    Ok(new)
}

/// How a REGISTER stands to the one that last changed a binding (§10.3 step 7).
enum Order {
    /// Another Call-ID, or a higher CSeq: apply it.
    Newer,
    /// The same Call-ID and CSeq: a retransmission this stateless registrar sees again
    /// (no transaction layer absorbs it); the binding stays as that request left it.
    Retransmission,
    /// The same Call-ID with a lower CSeq: the request fails.
    Older,
}

fn order(b: &Binding, request: &Request<'_>) -> Order {
    if b.call_id.as_ref() != request.call_id || request.cseq > b.cseq {
        Order::Newer
    } else if request.cseq == b.cseq {
        Order::Retransmission
    } else {
        Order::Older
    }
}

fn binding(c: &ContactSpec<'_>, request: &Request<'_>, expires: u32) -> Binding {
    Binding {
        contact: c.uri.into(),
        flow: request.flow,
        q: c.q.unwrap_or(1000),
        expires: request.now + Duration::from_secs(u64::from(expires)),
        registered: request.now,
        call_id: request.call_id.into(),
        cseq: request.cseq,
        instance: c.instance.map(Into::into),
        reg_id: c.reg_id,
        path: request.path.map(Into::into),
        remote: None,
    }
}

/// The binding a request goes to: highest `q`, then the most recently registered (RFC 3261
/// §16.6: a stateless proxy forwards to exactly one target, §16.11). Expired ones never.
pub(crate) fn best(bindings: &[Binding], now: Instant) -> Option<&Binding> {
    bindings
        .iter()
        .filter(|b| b.expires > now)
        .max_by(|a, b| a.q.cmp(&b.q).then(a.registered.cmp(&b.registered)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    fn flow(port: u16) -> Flow {
        Flow::new(
            Transport::Udp,
            format!("192.0.2.1:{port}").parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
        )
    }

    fn contact(uri: &str) -> ContactSpec<'_> {
        ContactSpec {
            uri: uri.as_bytes(),
            expires: None,
            q: None,
            instance: None,
            reg_id: None,
        }
    }

    fn request<'a>(call_id: &'a str, cseq: u32, now: Instant) -> Request<'a> {
        Request {
            wildcard: false,
            expires: None,
            call_id: call_id.as_bytes(),
            cseq,
            flow: flow(5060),
            path: None,
            now,
        }
    }

    fn uris(b: &[Binding]) -> Vec<String> {
        b.iter()
            .map(|b| String::from_utf8_lossy(&b.contact).into_owned())
            .collect()
    }

    #[test]
    fn step7_expiry_from_the_parameter_then_the_header_then_the_default() {
        let now = Instant::now();
        let limits = Limits::default();
        let mut a = contact("sip:a@h");
        a.expires = Some(120);
        let b = contact("sip:b@h");
        let got = apply(&[], &[a, b], &request("c", 1, now), &limits).unwrap();
        assert_eq!(got[0].remaining(now), 120);
        assert_eq!(got[1].remaining(now), 3600);
        let mut with_header = request("c", 2, now);
        with_header.expires = Some(600);
        let got = apply(&[], &[b], &with_header, &limits).unwrap();
        assert_eq!(got[0].remaining(now), 600);
    }

    #[test]
    fn step7_too_brief_is_423_and_too_long_is_cut() {
        let now = Instant::now();
        let limits = Limits::default();
        let mut a = contact("sip:a@h");
        a.expires = Some(30);
        assert_eq!(
            apply(&[], &[a], &request("c", 1, now), &limits),
            Err(Refusal::IntervalTooBrief(60))
        );
        a.expires = Some(1_000_000);
        let got = apply(&[], &[a], &request("c", 1, now), &limits).unwrap();
        assert_eq!(got[0].remaining(now), 7200);
    }

    #[test]
    fn step7_refresh_replaces_and_expires_zero_removes() {
        let now = Instant::now();
        let limits = Limits::default();
        let first = apply(&[], &[contact("sip:a@h")], &request("c", 1, now), &limits).unwrap();
        let later = now + Duration::from_secs(10);
        let mut refresh = request("c", 2, later);
        refresh.flow = flow(7000);
        let second = apply(&first, &[contact("SIP:A@H")], &refresh, &limits).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!((second[0].cseq, second[0].flow.source.port()), (2, 7000));
        let mut gone = contact("sip:a@h");
        gone.expires = Some(0);
        let third = apply(&second, &[gone], &request("c", 3, later), &limits).unwrap();
        assert!(third.is_empty());
    }

    #[test]
    fn step7_same_call_id_needs_a_higher_cseq_and_fails_whole() {
        let now = Instant::now();
        let limits = Limits::default();
        let old = apply(&[], &[contact("sip:a@h")], &request("c", 5, now), &limits).unwrap();
        let got = apply(
            &old,
            &[contact("sip:b@h"), contact("sip:a@h")],
            &request("c", 4, now),
            &limits,
        );
        assert_eq!(got, Err(Refusal::OutOfOrder));
        // The same CSeq again is a retransmission: answered with the bindings unchanged.
        let later = now + Duration::from_secs(5);
        let again = apply(
            &old,
            &[contact("sip:a@h")],
            &request("c", 5, later),
            &limits,
        )
        .unwrap();
        assert_eq!(again, old);
        // Another Call-ID (a rebooted phone) may lower the CSeq.
        let got = apply(
            &old,
            &[contact("sip:a@h")],
            &request("other", 1, now),
            &limits,
        )
        .unwrap();
        assert_eq!(&*got[0].call_id, b"other");
    }

    #[test]
    fn step6_wildcard_alone_with_expires_zero_removes_everything() {
        let now = Instant::now();
        let limits = Limits::default();
        let old = apply(
            &[],
            &[contact("sip:a@h"), contact("sip:b@h")],
            &request("c", 1, now),
            &limits,
        )
        .unwrap();
        let mut star = request("c", 2, now);
        star.wildcard = true;
        assert_eq!(apply(&old, &[], &star, &limits), Err(Refusal::BadWildcard));
        star.expires = Some(0);
        assert_eq!(apply(&old, &[], &star, &limits), Ok(Vec::new()));
        assert_eq!(
            apply(&old, &[contact("sip:c@h")], &star, &limits),
            Err(Refusal::BadWildcard)
        );
        star.cseq = 0;
        assert_eq!(apply(&old, &[], &star, &limits), Err(Refusal::OutOfOrder));
    }

    #[test]
    fn rfc5626_instance_and_reg_id_replace_the_flow_whatever_the_uri() {
        let now = Instant::now();
        let limits = Limits::default();
        let mut a = contact("sip:a@10.0.0.1:5060");
        a.instance = Some(b"\"<urn:uuid:1>\"");
        a.reg_id = Some(1);
        let old = apply(&[], &[a], &request("c", 1, now), &limits).unwrap();
        let mut moved = contact("sip:a@10.0.0.2:6000");
        moved.instance = a.instance;
        moved.reg_id = Some(1);
        let got = apply(&old, &[moved], &request("d", 1, now), &limits).unwrap();
        assert_eq!(uris(&got), ["sip:a@10.0.0.2:6000"]);
        let mut second = moved;
        second.reg_id = Some(2);
        let got = apply(&got, &[second], &request("d", 2, now), &limits).unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn limits_on_bindings_and_uri_length() {
        let now = Instant::now();
        let limits = Limits {
            max_bindings: 2,
            ..Limits::default()
        };
        let three = [contact("sip:a@h"), contact("sip:b@h"), contact("sip:c@h")];
        assert_eq!(
            apply(&[], &three, &request("c", 1, now), &limits),
            Err(Refusal::TooManyBindings)
        );
        let long = format!("sip:{}@h", "x".repeat(MAX_CONTACT_URI));
        assert_eq!(
            apply(&[], &[contact(&long)], &request("c", 1, now), &limits),
            Err(Refusal::ContactTooLong)
        );
    }

    #[test]
    fn expired_bindings_are_dropped_and_never_chosen() {
        let now = Instant::now();
        let limits = Limits::default();
        let mut a = contact("sip:a@h");
        a.expires = Some(60);
        let old = apply(&[], &[a], &request("c", 1, now), &limits).unwrap();
        let later = now + Duration::from_secs(61);
        assert!(best(&old, later).is_none());
        let got = apply(
            &old,
            &[contact("sip:b@h")],
            &request("d", 1, later),
            &limits,
        )
        .unwrap();
        assert_eq!(uris(&got), ["sip:b@h"]);
    }

    #[test]
    fn best_is_highest_q_then_most_recent() {
        let now = Instant::now();
        let limits = Limits::default();
        let mut low = contact("sip:low@h");
        low.q = Some(500);
        let old = apply(
            &[],
            &[low, contact("sip:one@h")],
            &request("c", 1, now),
            &limits,
        )
        .unwrap();
        assert_eq!(&*best(&old, now).unwrap().contact, b"sip:one@h");
        let later = now + Duration::from_secs(1);
        let newer = apply(
            &old,
            &[contact("sip:two@h")],
            &request("d", 1, later),
            &limits,
        )
        .unwrap();
        assert_eq!(&*best(&newer, later).unwrap().contact, b"sip:two@h");
    }
}
