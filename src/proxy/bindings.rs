//! Contacts in responses that list bindings: a registrar's 2xx to REGISTER and a 3xx. A
//! Contact that is one of this proxy's live tokens is written back as the URI it stands for,
//! so that a phone finds the contact it created (RFC 3261 §10.2.4) with what the registrar
//! says about it — `expires`, `q`, `+sip.instance`, `reg-id` (RFC 5626), `pub-gruu` and
//! `temp-gruu` (RFC 5627) — since only the URI is replaced and every header parameter stays.
//!
//! - A 2xx to REGISTER lists every binding of the AoR (§10.3 step 8): each of our tokens is
//!   written back, and its table entry's lifetime becomes what the registrar granted (the
//!   Contact's `expires`, else the Expires header), not what the phone asked for.
//! - A 3xx lists where to try next. Only tokens whose flow is the one the response goes to
//!   are written back: any other token is the one address that reaches its phone through NAT,
//!   so the caller must keep it.
//! - Contacts that are not ours (other devices, registered elsewhere), `*`, and forged,
//!   unknown, expired or another instance's tokens stay as they are: the response is still
//!   the registrar's answer, and a phone that misses its contact behaves as without this.
//!
//! The restored URIs are copied out of the table into the tail of the caller's output buffer
//! ([`Staging`]), which the message, written from the front, cannot reach: no allocation, and
//! a response that cannot fit both is an `OutputTooLarge` drop.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::{
    HeaderName, Message, NameAddr, SipUri, StartLine, Transport, Values, parse_cseq,
    parse_delta_seconds,
};

use super::contact::is_our_token;
use super::identity::SelfNames;
use super::rewrite::{Edit, Edits, Insert};
use crate::contact::ContactTable;

/// What kind of Contact list a response carries, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listing {
    /// A 2xx to REGISTER: the AoR's bindings, with their granted expiry (RFC 3261 §10.3).
    Registered,
    /// A 3xx: alternative locations (RFC 3261 §21.3).
    Redirect,
}

impl Listing {
    /// The listing a response carries: 2xx to REGISTER, or any 3xx.
    pub(crate) fn of(msg: &Message<'_>) -> Option<Listing> {
        let StartLine::Response { code, .. } = msg.start() else {
            return None;
        };
        match code {
            200..=299 if cseq_method(msg) == Some(&b"REGISTER"[..]) => Some(Listing::Registered),
            300..=399 => Some(Listing::Redirect),
            _ => None,
        }
    }
}

fn cseq_method<'m>(msg: &Message<'m>) -> Option<&'m [u8]> {
    let header = msg.header(HeaderName::CSeq)?;
    let cseq = parse_cseq(msg.buf(), header.value).ok()?;
    Some(msg.bytes(cseq.method))
}

/// Where the response goes: a 3xx writes back only the tokens whose flow this is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recipient {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// The tail of the caller's output buffer, handed out from the end, one restored URI at a
/// time; what is left at the front is where the message is written.
pub(crate) struct Staging<'o> {
    rest: &'o mut [u8],
}

impl<'o> Staging<'o> {
    pub(crate) fn new(out: &'o mut [u8]) -> Staging<'o> {
        Staging { rest: out }
    }

    /// Copies `parts` one after the other into the end of what is left; `None` when they do
    /// not fit (nothing is taken then).
    fn stage(&mut self, parts: [&[u8]; 3]) -> Option<&'o [u8]> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        let rest = std::mem::take(&mut self.rest);
        let Some(split) = rest.len().checked_sub(len) else {
            self.rest = rest;
            return None;
        };
        let (front, piece) = rest.split_at_mut(split);
        let mut at = 0;
        for part in parts {
            piece[at..at + part.len()].copy_from_slice(part); // the lengths sum to `len`
            at += part.len();
        }
        self.rest = front;
        Some(piece)
    }

    /// What is left for the message itself.
    pub(crate) fn into_front(self) -> &'o mut [u8] {
        self.rest
    }
}

/// What a write-back needs besides the message.
pub(crate) struct WriteBack<'r> {
    /// The shared contact table (`Tables::contact`).
    pub table: &'r ContactTable,
    pub names: &'r SelfNames,
    pub listing: Listing,
    pub to: Recipient,
    pub now: Instant,
}

/// Pushes an edit writing back every Contact of `msg` that is one of our live tokens (see the
/// module documentation for which), and for a 2xx to REGISTER sets each one's table lifetime
/// to the granted expiry.
pub(crate) fn push_write_backs<'o>(
    how: &WriteBack<'_>,
    msg: &Message<'_>,
    staging: &mut Staging<'o>,
    edits: &mut Edits<'o>,
) {
    let buf = msg.buf();
    for header in msg.headers_named(HeaderName::Contact) {
        for value in Values::new(buf, header.value) {
            // `*` (RFC 3261 §10.2.2) has no URI: NameAddr::parse refuses it.
            let Some(addr) = NameAddr::parse(buf, value) else {
                continue;
            };
            if let Some(restored) = write_back(how, msg, &addr, staging) {
                edits.push(Edit::replace(addr.uri, Insert::Bytes(restored)));
            }
        }
    }
}

/// The staged original URI for one Contact, when it is one of our live tokens to write back;
/// sets its entry's lifetime to the grant on the way.
fn write_back<'o>(
    how: &WriteBack<'_>,
    msg: &Message<'_>,
    addr: &NameAddr,
    staging: &mut Staging<'o>,
) -> Option<&'o [u8]> {
    let buf = msg.buf();
    let uri = SipUri::parse(buf, addr.uri).ok()?;
    let user = uri.user.filter(|_| is_our_token(how.names, buf, &uri))?;
    let granted = match how.listing {
        Listing::Registered => granted_expires(msg, addr),
        Listing::Redirect => None,
    };
    // RFC 3261 §20.10: a URI with `;`, `,` or `?` needs angle brackets, and without them the
    // header parameters after it would become the URI's.
    let (open, close): (&[u8], &[u8]) = match addr.angle {
        true => (b"", b""),
        false => (b"<", b">"),
    };
    let table = how.table;
    let staged = table.confirm(user.of(buf), granted, how.now, |entry| {
        let flow = entry.flow();
        let owner = flow.source == how.to.addr && flow.transport == how.to.transport;
        if how.listing == Listing::Redirect && !owner {
            return None;
        }
        staging.stage([open, entry.original_uri(), close])
    });
    staged.ok().flatten()
}

/// The expiry a registrar granted one binding: the Contact's `expires`, else the Expires
/// header (RFC 3261 §10.2.4, §10.3 step 8); `None` when neither says (the entry keeps the
/// lifetime the REGISTER asked for) or the value is not delta-seconds.
fn granted_expires(msg: &Message<'_>, addr: &NameAddr) -> Option<Duration> {
    let buf = msg.buf();
    let text = match addr.param(buf, b"expires") {
        Some(span) => span.of(buf),
        None => msg.bytes(msg.header(HeaderName::Expires)?.value),
    };
    let seconds = parse_delta_seconds(text).ok()?;
    Some(Duration::from_secs(u64::from(seconds)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::contact::{ContactTable, ContactTableConfig, Flow, Lifetime, LookupError, TokenKey};
    use crate::proxy::test_support::{Core, core_with};
    use crate::proxy::{
        ContactRewrite, DropReason, Input, NextHop, OUTPUT_BUFFER_SIZE, Outcome, Tables,
    };

    const PHONE: &str = "203.0.113.5:40000";
    const REGISTRAR: &str = "10.0.0.9:5060";
    const DAVE: &str = "sip:dave@192.168.1.20:5062;transport=udp";

    /// An edge at 192.0.2.10:5060 rewriting contacts both ways, the registrar as next hop.
    fn edge() -> (Core, Arc<ContactTable>, Instant) {
        let t0 = Instant::now();
        let config = ContactTableConfig::new(TokenKey::new([5; 16]), 1000);
        let table = Arc::new(ContactTable::new(config, t0));
        let tables = Tables {
            contact: Some(Arc::clone(&table)),
            registrar: None,
            groups: None,
            dns: None,
        };
        let core = core_with(
            |c| {
                c.next_hop = Some(NextHop::parse(&format!("sip:{REGISTRAR}")).unwrap());
                c.contact = Some(ContactRewrite {
                    requests: true,
                    responses: true,
                });
            },
            tables,
        );
        (core, table, t0)
    }

    fn handle_in(
        p: &Core,
        raw: &str,
        from: &str,
        now: Instant,
        out: &mut [u8],
    ) -> (Outcome, String) {
        let input = Input {
            data: raw.as_bytes(),
            flow: Flow::new(
                Transport::Udp,
                from.parse().unwrap(),
                "192.0.2.10:5060".parse().unwrap(),
            ),
            now,
        };
        let outcome = p.handle(input, out);
        let len = match outcome {
            Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => t.len,
            Outcome::Drop(_) | Outcome::Park(_) => 0,
        };
        let text = String::from_utf8_lossy(&out[..len]).into_owned();
        if len > 0 {
            Message::scan(&out[..len], false).expect("output re-scans");
        }
        (outcome, text)
    }

    fn handle(p: &Core, raw: &str, from: &str, now: Instant) -> (Outcome, String) {
        handle_in(p, raw, from, now, &mut vec![0u8; OUTPUT_BUFFER_SIZE])
    }

    /// The phone's entry, as its REGISTER (from [`PHONE`]) would have made it.
    fn token_for(table: &ContactTable, uri: &str, from: &str, asked: u64, now: Instant) -> String {
        let flow = Flow::new(
            Transport::Udp,
            from.parse().unwrap(),
            "192.0.2.10:5060".parse().unwrap(),
        );
        let life = Lifetime::Registration(Duration::from_secs(asked));
        let token = table.insert(uri.as_bytes(), flow, life, now).unwrap();
        token.as_str().to_owned()
    }

    /// A response from the registrar: our Via, then the phone's; `{extra}` before the end.
    fn answer(status: &str, method: &str, extra: &str) -> String {
        format!(
            "SIP/2.0 {status}\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef\r\n\
Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKnashds7;received=203.0.113.5;rport=40000\r\n\
From: <sip:dave@example.net>;tag=r1\r\nTo: <sip:dave@example.net>;tag=reg\r\n\
Call-ID: reg1@phone\r\nCSeq: 2 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    /// What the phone receives for [`answer`]: our Via gone, `{extra}` as written back.
    fn delivered(status: &str, method: &str, extra: &str) -> String {
        answer(status, method, extra).replace(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfv0123456789abcdef\r\n",
            "",
        )
    }

    fn forwarded(r: &(Outcome, String)) -> &str {
        match r.0 {
            Outcome::Forward(t) if t.destination == PHONE.parse().unwrap() => &r.1,
            other => panic!("not forwarded to the phone: {other:?}\n{}", r.1),
        }
    }

    /// Whether the entry behind `token` is live at `at`, without keeping it alive.
    fn live(table: &ContactTable, token: &str, at: Instant) -> Result<(), LookupError> {
        table.confirm(token.as_bytes(), None, at, |_| ())
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_registered_contact_comes_back_with_the_registrars_parameters() {
        // RFC 3261 §10.2.4, RFC 5626 §5.2, RFC 5627 §4.2: the phone finds its own Contact with
        // the expiry it was granted, its instance, reg-id and both GRUUs.
        let (p, table, t0) = edge();
        let register = format!(
            "REGISTER sip:192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKnashds7;rport\r\nMax-Forwards: 70\r\n\
From: <sip:dave@example.net>;tag=r1\r\nTo: <sip:dave@example.net>\r\nCall-ID: reg1@phone\r\n\
CSeq: 2 REGISTER\r\nSupported: gruu, outbound\r\n\
Contact: <{DAVE}>;expires=60;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";reg-id=1\r\n\
Content-Length: 0\r\n\r\n"
        );
        let (_, sent) = handle(&p, &register, PHONE, t0);
        let at = sent.find("@192.0.2.10:5060").expect("rewritten");
        let token = &sent[at - crate::contact::TOKEN_LEN..at];
        let params = ";expires=10;q=0.5;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";\
reg-id=1;pub-gruu=\"sip:dave@example.net;gr=urn:uuid:00000000-0000-1000-8000-000a95a0e128\";\
temp-gruu=\"sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.net;gr\"";
        let ok = answer(
            "200 OK",
            "REGISTER",
            &format!("Contact: <sip:{token}@192.0.2.10:5060;transport=udp>{params}\r\n"),
        );
        let r = handle(&p, &ok, REGISTRAR, t0);
        let want = delivered(
            "200 OK",
            "REGISTER",
            &format!("Contact: <{DAVE}>{params}\r\n"),
        );
        assert_eq!(forwarded(&r), want);
        // The registrar granted 10 s of the 60 asked: the entry follows it.
        assert_eq!(live(&table, token, t0 + secs(9)), Ok(()));
        assert_eq!(
            live(&table, token, t0 + secs(10)),
            Err(LookupError::Expired)
        );
    }

    #[test]
    fn several_contacts_ours_and_foreign() {
        // §10.3 step 8: the 200 lists every binding of the AoR; only ours are written back.
        let (p, table, t0) = edge();
        let home = "sip:dave@192.168.1.20:5062";
        let desk = "sip:dave@10.1.1.4";
        let tablet = "sip:dave-tab@192.168.7.3:5070;ob";
        let a = token_for(&table, home, PHONE, 60, t0);
        let b = token_for(&table, desk, PHONE, 60, t0);
        let c = token_for(&table, tablet, "198.51.100.20:5070", 3600, t0);
        let theirs = "<sip:dave@198.51.100.77:5060>;expires=1800";
        let star = "*";
        let contacts = format!(
            "Contact: <sip:{a}@192.0.2.10:5060>;expires=10, {theirs}\r\n\
Contact: sip:{b}@192.0.2.10;expires=20\r\nContact: \"Tab\" <sip:{c}@192.0.2.10:5060>;expires=30\r\n\
Contact: {star}\r\n"
        );
        let r = handle(&p, &answer("200 OK", "REGISTER", &contacts), REGISTRAR, t0);
        let want = format!(
            "Contact: <{home}>;expires=10, {theirs}\r\n\
Contact: <{desk}>;expires=20\r\nContact: \"Tab\" <{tablet}>;expires=30\r\n\
Contact: {star}\r\n"
        );
        assert_eq!(forwarded(&r), delivered("200 OK", "REGISTER", &want));
        for (token, granted) in [(&a, 10), (&b, 20), (&c, 30)] {
            assert_eq!(live(&table, token, t0 + secs(granted - 1)), Ok(()));
            assert!(live(&table, token, t0 + secs(granted)).is_err(), "{token}");
        }
    }

    #[test]
    fn expires_as_a_header_and_as_a_parameter() {
        // §10.2.4: a Contact's own `expires` wins over the Expires header; without either the
        // entry keeps what the REGISTER asked for.
        let (p, table, t0) = edge();
        let a = token_for(&table, "sip:a@192.168.1.20", PHONE, 60, t0);
        let b = token_for(&table, "sip:b@192.168.1.20", PHONE, 60, t0);
        let contacts = format!(
            "Expires: 15\r\nContact: <sip:{a}@192.0.2.10:5060>\r\n\
Contact: <sip:{b}@192.0.2.10:5060>;expires=25\r\n"
        );
        let r = handle(&p, &answer("200 OK", "REGISTER", &contacts), REGISTRAR, t0);
        let want = "Expires: 15\r\nContact: <sip:a@192.168.1.20>\r\n\
Contact: <sip:b@192.168.1.20>;expires=25\r\n";
        assert_eq!(forwarded(&r), delivered("200 OK", "REGISTER", want));
        assert_eq!(live(&table, &a, t0 + secs(14)), Ok(()));
        assert!(live(&table, &a, t0 + secs(15)).is_err());
        assert_eq!(live(&table, &b, t0 + secs(24)), Ok(()));
        assert!(live(&table, &b, t0 + secs(25)).is_err());

        let c = token_for(&table, "sip:c@192.168.1.20", PHONE, 60, t0);
        let silent = format!("Contact: <sip:{c}@192.0.2.10:5060>\r\n");
        let r = handle(&p, &answer("200 OK", "REGISTER", &silent), REGISTRAR, t0);
        assert!(forwarded(&r).contains("Contact: <sip:c@192.168.1.20>\r\n"));
        assert_eq!(live(&table, &c, t0 + secs(59)), Ok(()), "as asked");
    }

    #[test]
    fn wildcards_forged_and_unknown_tokens_stay_as_they_are() {
        // A forged or unknown token in a response is not an error: the registrar's answer
        // still goes to the phone, and the table counts what it refused.
        let (p, table, t0) = edge();
        let real = token_for(&table, DAVE, PHONE, 60, t0);
        let mut forged = real.clone().into_bytes();
        forged[3] = if forged[3] == b'a' { b'b' } else { b'a' };
        let forged = String::from_utf8(forged).unwrap();
        let other_run = ContactTable::new(ContactTableConfig::new(TokenKey::new([5; 16]), 9), t0);
        let unknown = token_for(&other_run, DAVE, PHONE, 60, t0);
        let contacts = format!(
            "Contact: <sip:{forged}@192.0.2.10:5060>;expires=10\r\n\
Contact: <sip:{unknown}@192.0.2.10:5060>;expires=10\r\nContact: *\r\n"
        );
        let ok = answer("200 OK", "REGISTER", &contacts);
        let r = handle(&p, &ok, REGISTRAR, t0);
        assert_eq!(forwarded(&r), delivered("200 OK", "REGISTER", &contacts));
        let c = table.counters();
        assert_eq!((c.forged, c.misses, c.restores), (1, 1, 0), "{c:?}");
        // An unregister-all (`Contact: *`, RFC 3261 §10.2.2) gets a 200 with no Contact.
        let r = handle(&p, &answer("200 OK", "REGISTER", ""), REGISTRAR, t0);
        assert_eq!(forwarded(&r), delivered("200 OK", "REGISTER", ""));
    }

    #[test]
    fn a_redirect_writes_back_only_the_recipients_own_contacts() {
        // RFC 3261 §21.3: a 3xx lists where to try next. Another phone's token is the only
        // address that reaches it through NAT, so only the recipient's own one is written back.
        let (p, table, t0) = edge();
        let own = token_for(&table, DAVE, PHONE, 60, t0);
        let other = token_for(&table, "sip:erin@10.2.2.2", "198.51.100.20:5070", 60, t0);
        let contacts = format!(
            "Contact: <sip:{own}@192.0.2.10:5060;transport=udp>;q=0.9, \
<sip:{other}@192.0.2.10:5060>;q=0.5\r\n"
        );
        let r = handle(
            &p,
            &answer("302 Moved Temporarily", "INVITE", &contacts),
            REGISTRAR,
            t0,
        );
        let want = format!("Contact: <{DAVE}>;q=0.9, <sip:{other}@192.0.2.10:5060>;q=0.5\r\n");
        assert_eq!(
            forwarded(&r),
            delivered("302 Moved Temporarily", "INVITE", &want)
        );
        // No grant in a 3xx: the entry keeps its lifetime.
        assert_eq!(live(&table, &own, t0 + secs(59)), Ok(()));
    }

    #[test]
    fn other_responses_are_untouched_by_write_back() {
        // A 200 to INVITE names the callee, not a binding list; a 4xx to REGISTER lists none.
        let (p, table, t0) = edge();
        let token = token_for(&table, DAVE, PHONE, 60, t0);
        let contact = format!("Contact: <sip:{token}@192.0.2.10:5060>\r\n");
        for (status, method) in [("200 OK", "INVITE"), ("423 Interval Too Brief", "REGISTER")] {
            let r = handle(&p, &answer(status, method, &contact), REGISTRAR, t0);
            assert_eq!(
                forwarded(&r),
                delivered(status, method, &contact),
                "{status}"
            );
        }
    }

    #[test]
    fn a_long_list_fits_or_is_dropped_whole() {
        // Written-back URIs are staged at the end of the output buffer: a list that leaves no
        // room for the message is an OutputTooLarge drop, never a panic.
        let (p, table, t0) = edge();
        let mut contacts = String::new();
        let mut want = String::new();
        for i in 0..40 {
            let uri = format!("sip:dave-{i}-{}@192.168.1.20:5062", "x".repeat(200));
            let token = token_for(&table, &uri, PHONE, 60, t0);
            contacts.push_str(&format!(
                "Contact: <sip:{token}@192.0.2.10:5060>;expires=10\r\n"
            ));
            want.push_str(&format!("Contact: <{uri}>;expires=10\r\n"));
        }
        let ok = answer("200 OK", "REGISTER", &contacts);
        let r = handle(&p, &ok, REGISTRAR, t0);
        assert_eq!(forwarded(&r), delivered("200 OK", "REGISTER", &want));
        for size in [0, 100, 5_000, 10_000, 14_000] {
            let mut out = vec![0u8; size];
            let (outcome, _) = handle_in(&p, &ok, REGISTRAR, t0, &mut out);
            assert_eq!(outcome, Outcome::Drop(DropReason::OutputTooLarge), "{size}");
        }
    }
}
