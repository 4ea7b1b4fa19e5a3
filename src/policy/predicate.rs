//! The tests a rule's match is made of, compiled from the policy file. Each reads the
//! request's offsets through [`RequestView`]; none allocates.

use std::net::SocketAddr;

use crate::sip::{HeaderName, Method, Transport};

use super::addr::Cidr;
use super::text::{TextContext, TextMatch};
use super::verdict::HeaderKey;
use super::view::RequestView;

/// Methods as a bit set over [`Method`], plus extension methods by name.
#[derive(Debug, Default)]
pub(crate) struct Methods {
    pub known: u32,
    pub other: Vec<Box<[u8]>>,
}

impl Methods {
    pub(crate) fn add(&mut self, name: &str) {
        match method_of(name.as_bytes()) {
            Method::Other => self.other.push(name.as_bytes().into()),
            m => self.known |= 1 << m as u32,
        }
    }

    fn contains(&self, view: &RequestView<'_>) -> bool {
        match view.method() {
            Method::Other => self.other.iter().any(|o| **o == *view.method_name()),
            m => self.known & (1 << m as u32) != 0,
        }
    }
}

/// The method a token names (methods are case-sensitive, RFC 3261 §7.1).
pub(crate) fn method_of(name: &[u8]) -> Method {
    const ALL: [(&[u8], Method); 14] = [
        (b"INVITE", Method::Invite),
        (b"ACK", Method::Ack),
        (b"BYE", Method::Bye),
        (b"CANCEL", Method::Cancel),
        (b"REGISTER", Method::Register),
        (b"OPTIONS", Method::Options),
        (b"SUBSCRIBE", Method::Subscribe),
        (b"NOTIFY", Method::Notify),
        (b"REFER", Method::Refer),
        (b"INFO", Method::Info),
        (b"UPDATE", Method::Update),
        (b"PRACK", Method::Prack),
        (b"MESSAGE", Method::Message),
        (b"PUBLISH", Method::Publish),
    ];
    ALL.iter()
        .find(|(n, _)| *n == name)
        .map_or(Method::Other, |(_, m)| *m)
}

/// A source test: CIDR blocks and named address sets (indexes into the tables).
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub blocks: Vec<Cidr>,
    pub sets: Vec<usize>,
}

/// What a header test asks of the first header with its name.
#[derive(Debug)]
pub(crate) enum HeaderTest {
    Present,
    Absent,
    Equals(Box<[u8]>),
    Contains(Box<[u8]>),
    /// Index into the regex table.
    Regex(usize),
}

/// One test of a rule.
#[derive(Debug)]
pub(crate) enum Predicate {
    Method(Methods),
    UriUser(TextMatch),
    UriHost(TextMatch),
    FromUser(TextMatch),
    FromHost(TextMatch),
    ToUser(TextMatch),
    ToHost(TextMatch),
    Source(Sources),
    /// A bit per [`Transport`].
    Transport(u8),
    Listener(Vec<SocketAddr>),
    Header(HeaderKey, HeaderTest),
    InDialog(bool),
    /// Larger than this many bytes.
    SizeAbove(usize),
    /// At most this many bytes.
    SizeAtMost(usize),
    /// None of the nested tests all hold.
    Not(Vec<Predicate>),
}

pub(crate) fn transport_bit(t: Transport) -> u8 {
    1 << (t as u8)
}

impl Predicate {
    /// Whether the request passes this test.
    pub(crate) fn holds(&self, view: &RequestView<'_>, cx: &mut TextContext<'_>) -> bool {
        match self {
            Predicate::Method(m) => m.contains(view),
            Predicate::UriUser(t) => t.matches(view.uri_user(), false, cx),
            Predicate::UriHost(t) => t.matches(view.uri_host(), true, cx),
            Predicate::FromUser(t) => t.matches(view.party(HeaderName::From).0, false, cx),
            Predicate::FromHost(t) => t.matches(view.party(HeaderName::From).1, true, cx),
            Predicate::ToUser(t) => t.matches(view.party(HeaderName::To).0, false, cx),
            Predicate::ToHost(t) => t.matches(view.party(HeaderName::To).1, true, cx),
            Predicate::Source(s) => {
                let ip = view.source.ip();
                s.blocks.iter().any(|b| b.contains(ip))
                    || s.sets.iter().any(|&i| {
                        cx.tables
                            .addresses
                            .get(i)
                            .is_some_and(|set| set.blocks.iter().any(|b| b.contains(ip)))
                    })
            }
            Predicate::Transport(bits) => bits & transport_bit(view.transport) != 0,
            Predicate::Listener(addrs) => addrs.contains(&view.local),
            Predicate::Header(key, test) => header_holds(view.header(key), test, cx),
            Predicate::InDialog(want) => view.in_dialog() == *want,
            Predicate::SizeAbove(n) => view.size() > *n,
            Predicate::SizeAtMost(n) => view.size() <= *n,
            Predicate::Not(all) => !all.iter().all(|p| p.holds(view, cx)),
        }
    }
}

fn header_holds(value: Option<&[u8]>, test: &HeaderTest, cx: &mut TextContext<'_>) -> bool {
    match (value, test) {
        (None, HeaderTest::Absent) => true,
        (None, _) | (Some(_), HeaderTest::Absent) => false,
        (Some(_), HeaderTest::Present) => true,
        (Some(v), HeaderTest::Equals(want)) => v == &**want,
        (Some(v), HeaderTest::Contains(part)) => memchr::memmem::find(v, part).is_some(),
        (Some(v), HeaderTest::Regex(i)) => TextMatch::Regex(*i).matches(v, false, cx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::text::{AddressSet, Scratch, Tables};
    use crate::sip::Message;

    const INVITE: &[u8] = b"INVITE sip:+15551234@edge.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=1\r\n\
To: <sip:bob@edge.example>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nX-Script: yes\r\n\
Subject: hello there\r\nContent-Length: 0\r\n\r\n";

    fn holds_in(p: &Predicate, raw: &[u8]) -> bool {
        let msg = Message::scan(raw, false).unwrap();
        let view = RequestView::new(
            &msg,
            "10.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:5060".parse().unwrap(),
            Transport::Udp,
        );
        let tables = Tables {
            regexes: vec![crate::policy::text::Pattern::new("^hel+o").unwrap()],
            domains: Vec::new(),
            addresses: vec![AddressSet {
                name: "trusted".into(),
                blocks: vec![Cidr::parse("10.0.0.0/8").unwrap()],
            }],
        };
        let mut scratch = Scratch::for_tables(&tables);
        let mut cx = TextContext {
            tables: &tables,
            scratch: &mut scratch,
            to_me: false,
        };
        p.holds(&view, &mut cx)
    }

    fn holds(p: &Predicate) -> bool {
        holds_in(p, INVITE)
    }

    fn text(s: &str) -> TextMatch {
        TextMatch::Exact(s.as_bytes().into())
    }

    #[test]
    fn methods() {
        let mut m = Methods::default();
        m.add("INVITE");
        assert!(holds(&Predicate::Method(m)));
        let mut m = Methods::default();
        m.add("MESSAGE");
        m.add("FOO");
        assert!(!holds(&Predicate::Method(m)));
        let raw = INVITE.to_vec();
        let foo = [b"FOO".as_slice(), &raw[6..]].concat();
        let foo = String::from_utf8(foo).unwrap().replace("1 INVITE", "1 FOO");
        let mut m = Methods::default();
        m.add("FOO");
        assert!(holds_in(&Predicate::Method(m), foo.as_bytes()));
    }

    #[test]
    fn uri_from_and_to_parts() {
        assert!(holds(&Predicate::UriUser(TextMatch::Prefix(
            b"+1".to_vec().into()
        ))));
        assert!(holds(&Predicate::UriHost(text("EDGE.example"))));
        assert!(holds(&Predicate::FromUser(text("alice"))));
        assert!(holds(&Predicate::FromHost(text("a.example"))));
        assert!(holds(&Predicate::ToUser(text("bob"))));
        assert!(!holds(&Predicate::ToHost(text("a.example"))));
    }

    #[test]
    fn sources_transports_and_listeners() {
        let block = Sources {
            blocks: vec![Cidr::parse("10.0.0.1").unwrap()],
            sets: vec![],
        };
        assert!(holds(&Predicate::Source(block)));
        let set = Sources {
            blocks: vec![],
            sets: vec![0],
        };
        assert!(holds(&Predicate::Source(set)));
        let other = Sources {
            blocks: vec![Cidr::parse("192.0.2.0/24").unwrap()],
            sets: vec![],
        };
        assert!(!holds(&Predicate::Source(other)));
        assert!(holds(&Predicate::Transport(transport_bit(Transport::Udp))));
        assert!(!holds(&Predicate::Transport(transport_bit(Transport::Tcp))));
        assert!(holds(&Predicate::Listener(vec![
            "127.0.0.1:5060".parse().unwrap()
        ])));
        assert!(!holds(&Predicate::Listener(vec![
            "127.0.0.1:5061".parse().unwrap()
        ])));
    }

    #[test]
    fn headers() {
        let key = || HeaderKey::new("x-script");
        assert!(holds(&Predicate::Header(key(), HeaderTest::Present)));
        assert!(!holds(&Predicate::Header(key(), HeaderTest::Absent)));
        assert!(holds(&Predicate::Header(
            key(),
            HeaderTest::Equals(b"yes".to_vec().into())
        )));
        assert!(!holds(&Predicate::Header(
            key(),
            HeaderTest::Equals(b"YES".to_vec().into())
        )));
        let subject = || HeaderKey::new("Subject");
        assert!(holds(&Predicate::Header(
            subject(),
            HeaderTest::Contains(b"lo th".to_vec().into())
        )));
        assert!(holds(&Predicate::Header(subject(), HeaderTest::Regex(0))));
        assert!(holds(&Predicate::Header(
            HeaderKey::new("X-None"),
            HeaderTest::Absent
        )));
    }

    #[test]
    fn dialog_size_and_negation() {
        assert!(holds(&Predicate::InDialog(false)));
        let n = INVITE.len();
        assert!(holds(&Predicate::SizeAbove(n - 1)));
        assert!(!holds(&Predicate::SizeAbove(n)));
        assert!(holds(&Predicate::SizeAtMost(n)));
        assert!(!holds(&Predicate::Not(vec![Predicate::InDialog(false)])));
        assert!(holds(&Predicate::Not(vec![
            Predicate::InDialog(false),
            Predicate::SizeAbove(n)
        ])));
        let in_dialog = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("<sip:bob@edge.example>", "<sip:bob@edge.example>;tag=9");
        assert!(holds_in(&Predicate::InDialog(true), in_dialog.as_bytes()));
    }
}
