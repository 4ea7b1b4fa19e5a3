//! The resolver against a server played by the test on loopback sockets: RFC 5452 (a fresh
//! port and id per question; replies from elsewhere, or with another id or question,
//! ignored), RFC 6891 (EDNS offered, dropped after FORMERR) and RFC 7766 (a truncated reply
//! asked again over TCP). Every wait is bounded.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record};

use super::*;
use crate::dns::Want;

const LIMIT: Duration = Duration::from_secs(5);

/// A resolver asking only `server` (one attempt of 500 ms per question), and its cache.
fn resolver(server: SocketAddr) -> (Resolver, Arc<DnsCache>) {
    let config = DnsConfig {
        servers: vec![server],
        timeout: Duration::from_millis(500),
        attempts: 1,
        ..DnsConfig::default()
    };
    let cache = Arc::new(DnsCache::new(100));
    let resolver = Resolver::start(config, Arc::clone(&cache), [9; 16]).unwrap();
    (resolver, cache)
}

/// Starts resolving `name` (A, then AAAA); the resolution arrives on the receiver.
fn ask(resolver: &Resolver, name: &str) -> crossbeam_channel::Receiver<Resolution> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let lookup = Lookup::new(name.as_bytes(), Want::Address).unwrap();
    resolver.resolve(
        lookup,
        Box::new(move |r| {
            let _ = tx.send(r.clone());
        }),
    );
    rx
}

/// The next query the server receives, decoded, and where it came from.
fn query(server: &UdpSocket) -> (Message, SocketAddr) {
    server.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = server.recv_from(&mut buf).expect("a query");
    (Message::from_vec(&buf[..n]).unwrap(), from)
}

/// The answer to `query`: its id and question, `ip` as the A record (none: an empty answer).
fn answer(query: &Message, ip: Option<Ipv4Addr>) -> Message {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.add_query(query.queries[0].clone());
    if let Some(ip) = ip {
        let owner = query.queries[0].name().clone();
        m.answers
            .push(Record::from_rdata(owner, 60, RData::A(A(ip))));
    }
    m
}

fn found(rx: &crossbeam_channel::Receiver<Resolution>) -> Vec<SocketAddr> {
    match rx.recv_timeout(LIMIT).expect("a resolution") {
        Resolution::Found(targets) => targets.iter().map(|t| t.addr).collect(),
        other => panic!("not found: {other:?}"),
    }
}

#[test]
fn rfc5452_9_2_each_question_leaves_from_a_fresh_port_with_its_own_id() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (resolver, _) = resolver(server.local_addr().unwrap());
    let (mut ports, mut ids) = (Vec::new(), Vec::new());
    for i in 0..8 {
        let rx = ask(&resolver, &format!("host{i}.test"));
        let (q, from) = query(&server);
        assert!(
            from.ip().is_loopback(),
            "a loopback server is asked from loopback"
        );
        ports.push(from.port());
        ids.push(q.metadata.id);
        let reply = answer(&q, Some(Ipv4Addr::new(10, 0, 0, i)));
        server.send_to(&reply.to_vec().unwrap(), from).unwrap();
        assert_eq!(found(&rx), vec![SocketAddr::from(([10, 0, 0, i], 0))]);
    }
    let distinct = |v: &mut Vec<u16>| {
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    // Random ports may meet by chance; one socket for all would give one port.
    assert!(distinct(&mut ports) >= 6, "{ports:?}");
    assert!(distinct(&mut ids) >= 6, "{ids:?}");
}

#[test]
fn rfc5452_a_reply_must_come_from_the_server_asked_and_match_its_question() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (resolver, cache) = resolver(server.local_addr().unwrap());
    let rx = ask(&resolver, "target.test");
    let (q, from) = query(&server);
    let forged = Ipv4Addr::new(10, 9, 9, 9);
    // From another port of the server's host: never reaches the resolver's socket.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bytes = answer(&q, Some(forged)).to_vec().unwrap();
    stranger.send_to(&bytes, from).unwrap();
    // From the server, with another id, then for another name: ignored, counted.
    let mut wrong_id = answer(&q, Some(forged));
    wrong_id.metadata.id = q.metadata.id.wrapping_add(1);
    server.send_to(&wrong_id.to_vec().unwrap(), from).unwrap();
    let mut other = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    let mut question = q.queries[0].clone();
    question.set_name(Name::from_ascii("elsewhere.test.").unwrap());
    other.add_query(question);
    server.send_to(&other.to_vec().unwrap(), from).unwrap();
    // The real one.
    let good = answer(&q, Some(Ipv4Addr::new(10, 0, 0, 7)));
    server.send_to(&good.to_vec().unwrap(), from).unwrap();
    assert_eq!(found(&rx), vec![SocketAddr::from(([10, 0, 0, 7], 0))]);
    assert_eq!(cache.snapshot().malformed, 2);
}

#[test]
fn rfc6891_edns0_is_offered_and_dropped_for_a_server_that_refuses_it() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (resolver, _) = resolver(server.local_addr().unwrap());
    let rx = ask(&resolver, "old.test");
    let (q, from) = query(&server);
    let edns = q.edns.as_ref().expect("EDNS(0) offered");
    assert_eq!((edns.version(), edns.max_payload()), (0, 1232));
    let mut formerr = answer(&q, None);
    formerr.metadata.response_code = ResponseCode::FormErr;
    server.send_to(&formerr.to_vec().unwrap(), from).unwrap();
    // §7: the same question again, without the OPT record.
    let (again, from) = query(&server);
    assert!(again.edns.is_none());
    assert_eq!(again.queries, q.queries);
    let reply = answer(&again, Some(Ipv4Addr::new(10, 0, 0, 8)));
    server.send_to(&reply.to_vec().unwrap(), from).unwrap();
    assert_eq!(found(&rx), vec![SocketAddr::from(([10, 0, 0, 8], 0))]);
}

#[test]
fn rfc7766_a_truncated_reply_is_asked_again_over_tcp() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).expect("the same port over TCP");
    let (resolver, _) = resolver(addr);
    let rx = ask(&resolver, "big.test");
    let (q, from) = query(&server);
    let mut truncated = answer(&q, None);
    truncated.metadata.truncation = true;
    server.send_to(&truncated.to_vec().unwrap(), from).unwrap();
    let (mut stream, _) = tcp.accept().unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut bytes).unwrap();
    let over_tcp = Message::from_vec(&bytes).unwrap();
    assert_eq!(
        (over_tcp.metadata.id, &over_tcp.queries),
        (q.metadata.id, &q.queries)
    );
    let reply = answer(&over_tcp, Some(Ipv4Addr::new(10, 0, 0, 9)))
        .to_vec()
        .unwrap();
    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&reply);
    stream.write_all(&framed).unwrap();
    assert_eq!(found(&rx), vec![SocketAddr::from(([10, 0, 0, 9], 0))]);
}

#[test]
fn a_tcp_retry_does_not_hold_the_other_questions() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).expect("the same port over TCP");
    // A long timeout: a reader stuck in the TCP exchange would hold the second answer for it.
    let config = DnsConfig {
        servers: vec![addr],
        timeout: Duration::from_secs(20),
        attempts: 1,
        ..DnsConfig::default()
    };
    let cache = Arc::new(DnsCache::new(100));
    let resolver = Resolver::start(config, cache, [9; 16]).unwrap();
    let big = ask(&resolver, "big.test");
    let (q, from) = query(&server);
    let mut truncated = answer(&q, None);
    truncated.metadata.truncation = true;
    server.send_to(&truncated.to_vec().unwrap(), from).unwrap();
    // The TCP connection is accepted and left unanswered while another name resolves.
    let (mut stream, _) = tcp.accept().unwrap();
    let small = ask(&resolver, "small.test");
    let (q2, from2) = query(&server);
    let reply = answer(&q2, Some(Ipv4Addr::new(10, 0, 0, 2)));
    server.send_to(&reply.to_vec().unwrap(), from2).unwrap();
    assert_eq!(found(&small), vec![SocketAddr::from(([10, 0, 0, 2], 0))]);
    // Then the TCP answer, which still counts.
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut bytes).unwrap();
    let over_tcp = Message::from_vec(&bytes).unwrap();
    let reply = answer(&over_tcp, Some(Ipv4Addr::new(10, 0, 0, 1)))
        .to_vec()
        .unwrap();
    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&reply);
    stream.write_all(&framed).unwrap();
    assert_eq!(found(&big), vec![SocketAddr::from(([10, 0, 0, 1], 0))]);
}
