//! DNS messages on the wire, through `hickory-proto` (never written by hand): a query for one
//! name and type, and a reply read into the few record kinds RFC 3263 uses. Anything a
//! server (or a forger) sends that does not decode is a [`Malformed`] value, never a panic.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The record types RFC 3263 asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    A,
    Aaaa,
    Srv,
    Naptr,
}

impl Kind {
    fn record_type(self) -> RecordType {
        match self {
            Kind::A => RecordType::A,
            Kind::Aaaa => RecordType::AAAA,
            Kind::Srv => RecordType::SRV,
            Kind::Naptr => RecordType::NAPTR,
        }
    }
}

/// One record of an answer, with its owner name (lower-case, no trailing dot) and TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rec {
    Address {
        name: String,
        ip: IpAddr,
        ttl: u32,
    },
    Srv {
        name: String,
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
        ttl: u32,
    },
    Naptr {
        name: String,
        order: u16,
        preference: u16,
        flags: Vec<u8>,
        services: Vec<u8>,
        replacement: String,
        ttl: u32,
    },
    Cname {
        name: String,
        target: String,
        ttl: u32,
    },
}

/// The server's verdict on a question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    /// The name does not exist (RFC 2308 §2.1).
    NxDomain,
    /// FORMERR: the server could not read the query — for a query with an OPT record, a
    /// server without EDNS may say so (RFC 6891 §7: ask again without it).
    FormErr,
    /// SERVFAIL, REFUSED, NOTIMP...: no verdict on the name.
    Failed,
}

/// A decoded reply.
#[derive(Clone, Debug)]
pub struct Reply {
    pub id: u16,
    /// The question it answers (name lower-case, no trailing dot).
    pub question: Option<(String, Kind)>,
    pub rcode: Rcode,
    pub truncated: bool,
    /// The answer section, then the additional section (SRV targets' addresses).
    pub records: Vec<Rec>,
    /// RFC 2308 §5: how long a negative answer may be cached — the smaller of the SOA
    /// record's TTL and its MINIMUM field; `None` without an SOA (then it is not cached).
    pub negative_ttl: Option<u32>,
}

/// A reply that does not decode, or is not a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

/// The UDP payload size offered in EDNS(0): 1232 bytes, the size the DNS Flag Day 2020
/// settled on — it fits an IPv6 datagram on a 1280-byte MTU path, so a reply is neither
/// fragmented (a spoofing vector) nor, for the few records RFC 3263 asks, truncated.
pub const EDNS_PAYLOAD: u16 = 1232;

/// A standard query (recursion desired) for `name`'s records of `kind`, offering EDNS(0)
/// with a [`EDNS_PAYLOAD`]-byte UDP payload (RFC 6891 §6.1.1: one OPT record, version 0).
pub fn query(id: u16, name: &str, kind: Kind) -> Result<Vec<u8>, Malformed> {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    build(id, name, kind, Some(edns))
}

/// [`query`] without the OPT record: for a server that answered it with FORMERR (RFC 6891
/// §7), and over TCP.
pub fn query_without_edns(id: u16, name: &str, kind: Kind) -> Result<Vec<u8>, Malformed> {
    build(id, name, kind, None)
}

fn build(id: u16, name: &str, kind: Kind, edns: Option<Edns>) -> Result<Vec<u8>, Malformed> {
    let mut fqdn = Name::from_ascii(name).map_err(|e| Malformed(e.to_string()))?;
    fqdn.set_fqdn(true);
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(fqdn, kind.record_type()));
    if let Some(edns) = edns {
        message.set_edns(edns);
    }
    message.to_vec().map_err(|e| Malformed(e.to_string()))
}

/// Decodes a reply.
pub fn parse(bytes: &[u8]) -> Result<Reply, Malformed> {
    let message = Message::from_vec(bytes).map_err(|e| Malformed(e.to_string()))?;
    if message.metadata.message_type != MessageType::Response {
        return Err(Malformed("not a response".into()));
    }
    let question = message.queries.first().and_then(|q| {
        let kind = match q.query_type() {
            RecordType::A => Kind::A,
            RecordType::AAAA => Kind::Aaaa,
            RecordType::SRV => Kind::Srv,
            RecordType::NAPTR => Kind::Naptr,
            _ => return None,
        };
        Some((text(q.name()), kind))
    });
    let rcode = match message.metadata.response_code {
        ResponseCode::NoError => Rcode::NoError,
        ResponseCode::NXDomain => Rcode::NxDomain,
        ResponseCode::FormErr => Rcode::FormErr,
        _ => Rcode::Failed,
    };
    let records = message
        .answers
        .iter()
        .chain(&message.additionals)
        .filter_map(record)
        .collect();
    // RFC 2308 §5: "the TTL of this record is set from the minimum of the MINIMUM field of
    // the SOA record and the TTL of the SOA itself".
    let negative_ttl = message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    });
    Ok(Reply {
        id: message.metadata.id,
        question,
        rcode,
        truncated: message.metadata.truncation,
        records,
        negative_ttl,
    })
}

/// A name as we compare it: lower-case, without the root's trailing dot.
fn text(name: &Name) -> String {
    let mut s = name.to_ascii().to_ascii_lowercase();
    if s.ends_with('.') {
        s.pop();
    }
    s
}

fn record(r: &Record) -> Option<Rec> {
    let name = text(&r.name);
    let ttl = r.ttl;
    Some(match &r.data {
        RData::A(a) => Rec::Address {
            name,
            ip: IpAddr::V4(a.0),
            ttl,
        },
        RData::AAAA(a) => Rec::Address {
            name,
            ip: IpAddr::V6(a.0),
            ttl,
        },
        RData::SRV(srv) => Rec::Srv {
            name,
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: text(&srv.target),
            ttl,
        },
        RData::NAPTR(n) => Rec::Naptr {
            name,
            order: n.order,
            preference: n.preference,
            flags: n.flags.to_vec(),
            services: n.services.to_vec(),
            replacement: text(&n.replacement),
            ttl,
        },
        RData::CNAME(c) => Rec::Cname {
            name,
            target: text(&c.0),
            ttl,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{A, NAPTR, SOA, SRV};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn answer(id: u16, q: &str, t: RecordType) -> Message {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name(q), t));
        m
    }

    #[test]
    fn a_query_round_trips_through_hickory() {
        let bytes = query(0x1234, "core.example.net", Kind::Naptr).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries[0].query_type(), RecordType::NAPTR);
        assert_eq!(m.queries[0].name(), &name("core.example.net."));
        assert!(query(1, "bad..name", Kind::A).is_err());
    }

    #[test]
    fn rfc6891_a_query_offers_edns0_with_a_1232_byte_payload() {
        let bytes = query(9, "core.example.net", Kind::Srv).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        let edns = m.edns.expect("an OPT record");
        assert_eq!((edns.version(), edns.max_payload()), (0, 1232));
        // One OPT record in the additional section, nothing else added (§6.1.1).
        assert!(m.additionals.is_empty());
        let plain =
            Message::from_vec(&query_without_edns(9, "core.example.net", Kind::Srv).unwrap());
        assert!(plain.unwrap().edns.is_none());
    }

    #[test]
    fn rfc6891_7_formerr_is_told_apart() {
        let mut m = answer(5, "example.net.", RecordType::A);
        m.metadata.response_code = ResponseCode::FormErr;
        assert_eq!(parse(&m.to_vec().unwrap()).unwrap().rcode, Rcode::FormErr);
        m.metadata.response_code = ResponseCode::ServFail;
        assert_eq!(parse(&m.to_vec().unwrap()).unwrap().rcode, Rcode::Failed);
    }

    #[test]
    fn srv_naptr_and_addresses_are_read_from_answer_and_additional_sections() {
        let mut m = answer(7, "_sip._udp.example.net.", RecordType::SRV);
        let srv = SRV::new(10, 60, 5070, name("Core1.example.net."));
        m.answers.push(Record::from_rdata(
            name("_sip._udp.example.net."),
            300,
            RData::SRV(srv),
        ));
        let a = RData::A(A::new(127, 0, 0, 9));
        m.additionals
            .push(Record::from_rdata(name("core1.example.net."), 60, a));
        let reply = parse(&m.to_vec().unwrap()).unwrap();
        assert_eq!(reply.id, 7);
        assert_eq!(
            reply.question,
            Some(("_sip._udp.example.net".into(), Kind::Srv))
        );
        assert_eq!(reply.rcode, Rcode::NoError);
        assert_eq!(reply.records.len(), 2);
        assert!(
            matches!(&reply.records[0], Rec::Srv { target, port: 5070, priority: 10, weight: 60, ttl: 300, .. } if target == "core1.example.net")
        );
        assert!(matches!(&reply.records[1], Rec::Address { ttl: 60, .. }));

        let mut m = answer(8, "example.net.", RecordType::NAPTR);
        let naptr = NAPTR::new(
            10,
            20,
            b"s".to_vec().into(),
            b"SIP+D2T".to_vec().into(),
            Vec::new().into(),
            name("_sip._tcp.example.net."),
        );
        m.answers.push(Record::from_rdata(
            name("example.net."),
            30,
            RData::NAPTR(naptr),
        ));
        let reply = parse(&m.to_vec().unwrap()).unwrap();
        assert!(
            matches!(&reply.records[0], Rec::Naptr { order: 10, preference: 20, services, replacement, .. }
            if services == b"SIP+D2T" && replacement == "_sip._tcp.example.net")
        );
    }

    #[test]
    fn rfc2308_5_negative_ttl_is_the_smaller_of_soa_ttl_and_minimum() {
        let mut m = answer(9, "gone.example.net.", RecordType::A);
        m.metadata.response_code = ResponseCode::NXDomain;
        let soa = SOA::new(
            name("ns.example.net."),
            name("h.example.net."),
            1,
            2,
            3,
            4,
            60,
        );
        m.authorities.push(Record::from_rdata(
            name("example.net."),
            300,
            RData::SOA(soa.clone()),
        ));
        let reply = parse(&m.to_vec().unwrap()).unwrap();
        assert_eq!(reply.rcode, Rcode::NxDomain);
        assert_eq!(reply.negative_ttl, Some(60));
        m.authorities[0].ttl = 20;
        assert_eq!(parse(&m.to_vec().unwrap()).unwrap().negative_ttl, Some(20));
        m.authorities.clear();
        assert_eq!(parse(&m.to_vec().unwrap()).unwrap().negative_ttl, None);
    }

    #[test]
    fn garbage_and_queries_are_malformed_never_a_panic() {
        assert!(parse(b"").is_err());
        assert!(parse(&[0xff; 11]).is_err());
        let q = query(3, "example.net", Kind::A).unwrap();
        assert!(parse(&q).is_err(), "a query is not a reply");
        let good = answer(4, "example.net.", RecordType::A).to_vec().unwrap();
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        // Every single-byte corruption of a real reply decodes or fails, never panics.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xa5;
            let _ = parse(&bad);
        }
    }
}
