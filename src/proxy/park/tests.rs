//! Parking in memory: a request for a host name outside the static table parks when the proxy
//! has a resolver, a retransmission is absorbed, the area is bounded by count and by bytes, a
//! resume forwards with the answer or replies 503, a stale ticket finds nothing, and expiry
//! and shutdown see every parked message.

use std::time::{Duration, Instant};

use crate::proxy::test_support::*;

fn resolving(limits: ParkingLimits) -> Core {
    proxy_with(|c| {
        c.resolver = true;
        c.parking = limits;
    })
}

fn limits(messages: usize, bytes: usize) -> ParkingLimits {
    ParkingLimits {
        messages,
        bytes,
        timeout: Duration::from_secs(1),
    }
}

fn ticket(r: &Handled) -> Ticket {
    match r.outcome {
        Outcome::Park(ticket) => ticket,
        other => panic!("not parked: {other:?}\n{}", r.text),
    }
}

fn resume(p: &Core, ticket: Ticket, answer: Answer) -> Option<Handled> {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let mut state = p.state.borrow_mut();
    let mut ctx = Context::new(&p.tables, &mut state);
    let outcome = p.proxy.resume(ticket, answer, &mut ctx, &mut out)?;
    let text = mask(&String::from_utf8_lossy(written(outcome, &out)));
    Some(Handled { outcome, text })
}

fn parked(p: &Core) -> usize {
    p.state.borrow().parking.len()
}

const FAR: &str = "MESSAGE sip:carol@Far.Example:5070";

#[test]
fn without_a_resolver_an_unknown_name_is_503_at_once() {
    let r = run(&proxy(), &request(FAR, ""), "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 503);
    assert!(
        r.text
            .starts_with("SIP/2.0 503 Unresolvable Destination\r\n")
    );
}

#[test]
fn an_unknown_name_parks_and_the_answer_forwards_it() {
    let p = resolving(ParkingLimits::default());
    let r = run(&p, &request(FAR, ""), "10.0.0.1:5060");
    let t = ticket(&r);
    let query = p.state.borrow().parking.query(t);
    let Some(Query::Resolve(name)) = query else {
        panic!("{query:?}");
    };
    assert_eq!(name.as_bytes(), b"Far.Example");
    assert!(name.is(b"far.example"));
    assert_eq!(parked(&p), 1);
    let answer = Answer::Address("10.0.0.44".parse().unwrap());
    let r = resume(&p, t, answer.clone()).expect("still parked");
    assert_eq!(forwarded_to(&r), "10.0.0.44:5070".parse().unwrap());
    r.assert_starts(&format!("{FAR} SIP/2.0\r\n{OUR_VIA}"));
    assert_eq!(parked(&p), 0);
    assert!(
        resume(&p, t, answer).is_none(),
        "a used ticket finds nothing"
    );
}

#[test]
fn names_in_the_host_table_and_ip_literals_never_park() {
    let p = proxy_with(|c| {
        c.resolver = true;
        c.hosts
            .push(("far.example".into(), "10.0.0.45".parse().unwrap()));
    });
    let r = run(&p, &request(FAR, ""), "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.45:5070".parse().unwrap());
    let r = run(
        &p,
        &request("MESSAGE sip:carol@10.0.0.46", ""),
        "10.0.0.1:5060",
    );
    assert_eq!(forwarded_to(&r), "10.0.0.46:5060".parse().unwrap());
}

#[test]
fn no_address_and_a_timeout_are_503() {
    let p = resolving(ParkingLimits::default());
    for answer in [Answer::NotFound, Answer::TimedOut] {
        let t = ticket(&run(&p, &request(FAR, ""), "10.0.0.1:5060"));
        let r = resume(&p, t, answer).expect("parked");
        assert_eq!(replied(&r), (503, "10.0.0.1:5060".parse().unwrap()));
        assert!(
            r.text
                .starts_with("SIP/2.0 503 Unresolvable Destination\r\n")
        );
    }
}

#[test]
fn an_answer_for_another_name_does_not_resolve_this_one() {
    let p = resolving(ParkingLimits::default());
    let t = ticket(&run(&p, &request(FAR, ""), "10.0.0.1:5060"));
    let mut state = p.state.borrow_mut();
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let mut ctx = Context::new(&p.tables, &mut state);
    let (bytes, kept) = ctx.worker.parking.take(t).unwrap();
    let input = Input {
        data: &bytes,
        flow: kept.flow,
        now: kept.since,
    };
    let msg = Message::scan(&bytes, false).unwrap();
    let other = Query::Resolve(HostName::new(b"near.example").unwrap());
    let answer = Answer::Address("10.0.0.47".parse().unwrap());
    let outcome =
        super::super::request::resume(&p.proxy, &msg, &input, (other, answer), &mut ctx, &mut out);
    assert!(
        matches!(outcome, Outcome::Reply { status: 503, .. }),
        "{outcome:?}"
    );
}

#[test]
fn a_retransmission_is_absorbed_but_a_cancel_parks_on_its_own() {
    let p = resolving(ParkingLimits::default());
    let invite = request("INVITE sip:carol@far.example", "");
    ticket(&run(&p, &invite, "10.0.0.1:5060"));
    let again = run(&p, &invite, "10.0.0.1:5060");
    assert_eq!(dropped(&again), DropReason::ParkedRetransmission);
    let cancel = invite
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 314159 INVITE", "CSeq: 314159 CANCEL");
    ticket(&run(&p, &cancel, "10.0.0.1:5060"));
    assert_eq!(parked(&p), 2);
}

#[test]
fn the_area_is_bounded_by_count_and_by_bytes() {
    let p = resolving(limits(2, 1 << 20));
    for call in ["a", "b"] {
        let raw = request(FAR, "").replace("z9hG4bK776asdhds", &format!("z9hG4bK-{call}"));
        ticket(&run(&p, &raw, "10.0.0.1:5060"));
    }
    let raw = request(FAR, "").replace("z9hG4bK776asdhds", "z9hG4bK-c");
    let r = run(&p, &raw, "10.0.0.1:5060");
    assert_eq!(replied(&r).0, 503);
    r.assert_starts("SIP/2.0 503 Resolver Busy\r\n");
    let ack = request("ACK sip:carol@far.example", "").replace("z9hG4bK776asdhds", "z9hG4bK-d");
    assert_eq!(
        dropped(&run(&p, &ack, "10.0.0.1:5060")),
        DropReason::ParkingFull
    );

    let raw = request(FAR, "");
    let p = resolving(limits(8, raw.len() + 10));
    ticket(&run(&p, &raw, "10.0.0.1:5060"));
    assert_eq!(p.state.borrow().parking.bytes(), raw.len());
    let second = raw.replace("z9hG4bK776asdhds", "z9hG4bK-other");
    assert_eq!(replied(&run(&p, &second, "10.0.0.1:5060")).0, 503);
}

#[test]
fn expiry_and_shutdown_see_every_parked_message() {
    let p = resolving(limits(4, 1 << 20));
    let t = ticket(&run(&p, &request(FAR, ""), "10.0.0.1:5060"));
    let raw = request(FAR, "").replace("z9hG4bK776asdhds", "z9hG4bK-second");
    ticket(&run(&p, &raw, "10.0.0.1:5060"));
    let state = p.state.borrow();
    let now = Instant::now();
    assert_eq!(state.parking.next_expired(now), None);
    let later = now + Duration::from_secs(2);
    assert_eq!(state.parking.next_expired(later), Some(t));
    drop(state);
    assert_eq!(p.state.borrow_mut().parking.clear(), 2);
    assert!(p.state.borrow().parking.is_empty());
    assert_eq!(p.state.borrow().parking.bytes(), 0);
    assert!(resume(&p, t, Answer::TimedOut).is_none());
}

#[test]
fn a_message_with_a_deadline_of_its_own_expires_on_it() {
    use crate::proxy::park::{HostName, Parked, Parking};
    use crate::sip::{Flow, Method, Transport};
    let mut parking = Parking::new(limits(4, 1 << 20));
    let addr = "127.0.0.1:5060".parse().unwrap();
    let now = Instant::now();
    let parked = |timeout, hash| Parked {
        query: Query::Resolve(HostName::new(b"far.test").unwrap()),
        flow: Flow::new(Transport::Udp, addr, addr),
        since: now,
        timeout,
        hash,
        method: Method::Invite,
    };
    let default = parking.park(b"INVITE", parked(None, 1)).unwrap();
    let short = parking.park(b"INVITE", parked(Some(Duration::from_millis(300)), 2));
    let short = short.unwrap();
    assert_eq!(
        Query::Resolve(HostName::new(b"x").unwrap()).kind(),
        SideKind::Resolve
    );
    assert_eq!(parking.next_expired(now + Duration::from_millis(299)), None);
    assert_eq!(
        parking.next_expired(now + Duration::from_millis(300)),
        Some(short)
    );
    let (bytes, kept) = parking.take(short).unwrap();
    assert_eq!((bytes.as_slice(), kept.hash), (&b"INVITE"[..], 2));
    assert_eq!(parking.next_expired(now + Duration::from_millis(999)), None);
    assert_eq!(
        parking.next_expired(now + Duration::from_secs(1)),
        Some(default)
    );
}

/// The name a forwarded request asks its TLS next hop's certificate to carry.
fn tls_name(r: &Handled) -> Option<String> {
    match r.outcome {
        Outcome::Forward(t) => t.name.map(|n| n.as_str().to_owned()),
        other => panic!("not forwarded: {other:?}\n{}", r.text),
    }
}

#[test]
fn rfc5922_7_2_a_tls_next_hop_found_in_dns_is_verified_as_the_uri_domain() {
    // RFC 5922 §7.2 / RFC 3263 §4: the certificate must name the domain of the URI, not the
    // SRV target the resolver found for it (`_sips._tcp.far.example` → box7.example.net).
    let p = proxy_with(|c| {
        c.resolver = true;
        c.listeners
            .push(listener("192.0.2.10:5061", Transport::Tls));
        c.hosts
            .push(("Core.Example".into(), "10.0.0.45".parse().unwrap()));
    });
    let sips = "MESSAGE sips:carol@Far.Example";
    let t = ticket(&run(&p, &request(sips, ""), "10.0.0.1:5060"));
    let box7 = "10.0.0.44:5061".parse().unwrap();
    let r = resume(&p, t, Answer::Target(box7, Transport::Tls)).expect("parked");
    assert_eq!(forwarded_to(&r), box7);
    assert_eq!(tls_name(&r).as_deref(), Some("far.example"));

    // `;transport=tls` names its domain too; so does a name of the static table.
    let tls = "MESSAGE sip:carol@core.example:5061;transport=tls";
    let r = run(&p, &request(tls, ""), "10.0.0.1:5060");
    assert_eq!(tls_name(&r).as_deref(), Some("core.example"));

    // An IP literal has no name: the address itself is verified.
    let literal = "MESSAGE sips:carol@10.0.0.46";
    let r = run(&p, &request(literal, ""), "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.46:5061".parse().unwrap());
    assert_eq!(tls_name(&r), None);

    // Not over TLS: nothing to verify.
    let plain = "MESSAGE sip:carol@core.example:5070";
    assert_eq!(
        tls_name(&run(&p, &request(plain, ""), "10.0.0.1:5060")),
        None
    );
}

#[test]
fn rfc5922_7_2_a_tls_group_destination_named_in_dns_is_verified_as_its_domain() {
    use crate::groups::{DestinationConfig, GroupConfig, GroupId, Groups};
    // `sips:Core.Example` resolved (by the groups' refresher) to 10.0.0.50:5061: the
    // certificate must name core.example, as for a Request-URI found in DNS; a literal's
    // address is verified; a TCP destination has nothing to verify.
    let mut named = DestinationConfig::parse("sips:Core.Example", 1, 0, |_| None).unwrap();
    named.addr = "10.0.0.50:5061".parse().unwrap();
    let group = |name: &str, d: DestinationConfig| GroupConfig::new(name, vec![d]);
    let literal = DestinationConfig::parse("sips:10.0.0.51", 1, 0, |_| None).unwrap();
    let tcp = DestinationConfig::parse("sip:10.0.0.52;transport=tcp", 1, 0, |_| None).unwrap();
    let configs = vec![
        group("named", named),
        group("literal", literal),
        group("tcp", tcp),
    ];
    let groups = Groups::new(configs, [3; 16], Instant::now()).unwrap();
    let tables = crate::proxy::Tables {
        groups: Some(std::sync::Arc::new(groups)),
        ..crate::proxy::Tables::default()
    };
    let to = |group: u16| {
        let tables = tables.clone();
        core_with(
            |c| {
                c.listeners
                    .push(listener("192.0.2.10:5061", Transport::Tls));
                c.listeners
                    .push(listener("192.0.2.10:5060", Transport::Tcp));
                c.route_to_group = Some(GroupId(group));
            },
            tables,
        )
    };
    let message = request("MESSAGE sip:carol@elsewhere.example", "");
    let r = run(&to(0), &message, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.50:5061".parse().unwrap());
    assert_eq!(tls_name(&r).as_deref(), Some("core.example"));
    let r = run(&to(1), &message, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.51:5061".parse().unwrap());
    assert_eq!(tls_name(&r), None);
    let r = run(&to(2), &message, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.52:5060".parse().unwrap());
    assert_eq!(tls_name(&r), None);
}
