//! A REGISTER addressed to one of our domains, answered here (RFC 3261 §10.3).
//!
//! Steps 1 (the domain) and 3 (authentication) are the caller's; this file does step 2
//! (Require), 4 (the authenticated user may change this AoR: checked by `Auth::verify`
//! against the To user), 5 (the AoR is ours and known), 6–7 (the contacts, through
//! [`super::bindings::apply`] in the shared table) and 8 (200 OK listing every binding).

use smallvec::SmallVec;

use crate::sip::Flow;
use crate::sip::{HeaderName, Message, NameAddr, SipUri, Values, parse_cseq, parse_delta_seconds};

use super::Registrar;
use super::answer::{Answer, Extra};
use super::bindings::{ContactSpec, Refusal, Request};
use super::counters::RegisterResult;
use super::fields;
use super::location::RegisterError;

/// The most Contact values one REGISTER may carry.
const MAX_CONTACTS: usize = 16;

/// Require options a registrar that keeps flows and Path understands (RFC 3327, RFC 5626).
const SUPPORTED: [&[u8]; 3] = [b"path", b"outbound", b"gruu"];

/// Applies a REGISTER whose AoR (the To URI's user in our domain `domain`) is already
/// authenticated; answers with the outcome.
pub(crate) fn register(
    registrar: &Registrar,
    msg: &Message<'_>,
    aor_key: &[u8],
    flow: Flow,
    now: std::time::Instant,
) -> (Answer, RegisterResult) {
    if let Some(value) = unsupported_require(msg) {
        let answer = Answer {
            code: 420,
            reason: "Bad Extension",
            extra: Extra::Unsupported(value),
        };
        return (answer, RegisterResult::BadRequest);
    }
    let Some(parsed) = Parsed::read(msg) else {
        return (
            Answer::plain(400, "Bad Contact"),
            RegisterResult::BadRequest,
        );
    };
    let path = joined_path(msg);
    let request = Request {
        wildcard: parsed.wildcard,
        expires: parsed.expires,
        call_id: parsed.call_id,
        cseq: parsed.cseq,
        flow,
        path: path.as_deref(),
        now,
    };
    let limits = &registrar.config.limits;
    match registrar
        .location
        .register(aor_key, &parsed.contacts, &request, limits)
    {
        Ok(list) => {
            registrar.replicate(aor_key, &list);
            let result = if list.is_empty() {
                RegisterResult::Removed
            } else {
                RegisterResult::Ok
            };
            let extra = Extra::Bindings { list, now };
            (
                Answer {
                    code: 200,
                    reason: "OK",
                    extra,
                },
                result,
            )
        }
        Err(e) => refused(e),
    }
}

fn refused(e: RegisterError) -> (Answer, RegisterResult) {
    match e {
        RegisterError::Full => (
            Answer::plain(503, "Location Table Full"),
            RegisterResult::TableFull,
        ),
        RegisterError::Refused(Refusal::IntervalTooBrief(min)) => (
            Answer {
                code: 423,
                reason: "Interval Too Brief",
                extra: Extra::MinExpires(min),
            },
            RegisterResult::IntervalTooBrief,
        ),
        RegisterError::Refused(Refusal::BadWildcard) => (
            Answer::plain(400, "Bad Wildcard"),
            RegisterResult::BadRequest,
        ),
        RegisterError::Refused(Refusal::ContactTooLong) => (
            Answer::plain(400, "Contact Too Long"),
            RegisterResult::BadRequest,
        ),
        RegisterError::Refused(Refusal::OutOfOrder) => (
            Answer::plain(500, "Out Of Order"),
            RegisterResult::OutOfOrder,
        ),
        RegisterError::Refused(Refusal::TooManyBindings) => (
            Answer::plain(403, "Too Many Bindings"),
            RegisterResult::TooManyBindings,
        ),
    }
}

/// The REGISTER's fields §10.3 steps 6–7 read.
struct Parsed<'m> {
    wildcard: bool,
    expires: Option<u32>,
    call_id: &'m [u8],
    cseq: u32,
    contacts: SmallVec<[ContactSpec<'m>; 4]>,
}

impl<'m> Parsed<'m> {
    fn read(msg: &Message<'m>) -> Option<Parsed<'m>> {
        let buf = msg.buf();
        let call_id = msg.bytes(msg.header(HeaderName::CallId)?.value);
        let cseq = parse_cseq(buf, msg.header(HeaderName::CSeq)?.value)
            .ok()?
            .number;
        let expires = match msg.header(HeaderName::Expires) {
            Some(h) => Some(delta_seconds(msg.bytes(h.value))?),
            None => None,
        };
        let mut parsed = Parsed {
            wildcard: false,
            expires,
            call_id,
            cseq,
            contacts: SmallVec::new(),
        };
        for h in msg.headers_named(HeaderName::Contact) {
            for value in Values::new(buf, h.value) {
                if value.of(buf).trim_ascii() == b"*" {
                    parsed.wildcard = true;
                    continue;
                }
                if parsed.contacts.len() == MAX_CONTACTS {
                    return None;
                }
                parsed
                    .contacts
                    .push(contact(buf, NameAddr::parse(buf, value)?)?);
            }
        }
        Some(parsed)
    }
}

fn contact(buf: &[u8], addr: NameAddr) -> Option<ContactSpec<'_>> {
    // Bindings are SIP URIs: requests are routed to them.
    SipUri::parse(buf, addr.uri).ok()?;
    let expires = match fields::param(buf, &addr, b"expires") {
        Some(text) => Some(delta_seconds(text)?),
        None => None,
    };
    let q = match fields::param(buf, &addr, b"q") {
        Some(text) => Some(q_value(text)?),
        None => None,
    };
    let reg_id = match fields::param(buf, &addr, b"reg-id") {
        Some(text) => Some(std::str::from_utf8(text).ok()?.parse().ok()?),
        None => None,
    };
    Some(ContactSpec {
        uri: addr.uri.of(buf),
        expires,
        q,
        instance: fields::param(buf, &addr, b"+sip.instance"),
        reg_id,
    })
}

/// A delta-seconds value; values past 2^32-1 are read as the largest (RFC 3261 §20.19).
fn delta_seconds(text: &[u8]) -> Option<u32> {
    let text = text.trim_ascii();
    match parse_delta_seconds(text) {
        Ok(n) => Some(n),
        Err(_) if !text.is_empty() && text.iter().all(u8::is_ascii_digit) => Some(u32::MAX),
        Err(_) => None,
    }
}

/// RFC 3261 §25.1 `qvalue`: `0[.ddd]` or `1[.000]`, in thousandths.
fn q_value(text: &[u8]) -> Option<u16> {
    let (int, frac) = match text.iter().position(|b| *b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// RFC 3261 §10.3 step 2 / §8.2.2.3: the Require value naming an option we lack.
fn unsupported_require(msg: &Message<'_>) -> Option<crate::sip::Span> {
    let buf = msg.buf();
    fields::named(msg, b"require")
        .map(|h| h.value)
        .find(|value| {
            Values::new(buf, *value).any(|v| {
                let option = v.of(buf).trim_ascii();
                !SUPPORTED.iter().any(|s| option.eq_ignore_ascii_case(s))
            })
        })
}

/// Every Path value, comma-joined in order (RFC 3327 §5.3), for the binding.
fn joined_path(msg: &Message<'_>) -> Option<Vec<u8>> {
    let mut path: Option<Vec<u8>> = None;
    for h in fields::named(msg, b"path") {
        let p = path.get_or_insert_with(Vec::new);
        if !p.is_empty() {
            p.extend_from_slice(b", ");
        }
        p.extend_from_slice(msg.bytes(h.value));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_and_delta_seconds() {
        assert_eq!(q_value(b"0.5"), Some(500));
        assert_eq!(q_value(b"0.125"), Some(125));
        assert_eq!(q_value(b"1"), Some(1000));
        assert_eq!(q_value(b"1.000"), Some(1000));
        assert_eq!(q_value(b"0"), Some(0));
        for bad in [&b"1.5"[..], b"2", b"0.1234", b"x", b"", b".5"] {
            assert_eq!(q_value(bad), None, "{bad:?}");
        }
        assert_eq!(delta_seconds(b"3600"), Some(3600));
        assert_eq!(delta_seconds(b"99999999999"), Some(u32::MAX));
        assert_eq!(delta_seconds(b"-1"), None);
    }

    /// A Contact as the tests compare it: URI, expires, q.
    type Seen = (String, Option<u32>, Option<u16>);

    fn parsed(contacts: &str) -> Option<(bool, Vec<Seen>)> {
        let raw = format!(
            "REGISTER sip:d SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@d>\r\n\
             From: <sip:a@d>;tag=1\r\nCall-ID: c\r\nCSeq: 7 REGISTER\r\n{contacts}Content-Length: 0\r\n\r\n"
        );
        let msg = Message::scan(raw.as_bytes(), false).unwrap();
        let p = Parsed::read(&msg)?;
        assert_eq!((p.call_id, p.cseq), (&b"c"[..], 7));
        let list = p
            .contacts
            .iter()
            .map(|c| (String::from_utf8_lossy(c.uri).into_owned(), c.expires, c.q))
            .collect();
        Some((p.wildcard, list))
    }

    #[test]
    fn contacts_with_their_parameters() {
        let (star, list) = parsed(
            "Contact: \"A\" <sip:a@10.0.0.1:5062;transport=tcp>;expires=60;q=0.5, sip:a@h\r\nm: <sip:b@h>\r\n",
        )
        .unwrap();
        assert!(!star);
        assert_eq!(
            list[0],
            (
                "sip:a@10.0.0.1:5062;transport=tcp".into(),
                Some(60),
                Some(500)
            )
        );
        assert_eq!(list[1], ("sip:a@h".into(), None, None));
        assert_eq!(list[2].0, "sip:b@h");
        let (star, list) = parsed("Contact: *\r\nExpires: 0\r\n").unwrap();
        assert!(star && list.is_empty());
        assert!(parsed("Contact: <mailto:a@h>\r\n").is_none());
        assert!(parsed("Contact: <sip:a@h>;q=7\r\n").is_none());
        assert!(parsed("Contact: <sip:a@h>\r\nExpires: soon\r\n").is_none());
    }
}
