use std::net::IpAddr;

use super::*;
use crate::dns::wire::{Kind, Rcode, Rec, Reply};

fn reply(rcode: Rcode, records: Vec<Rec>, negative_ttl: Option<u32>) -> Heard {
    Heard::Reply(Reply {
        id: 1,
        question: None,
        rcode,
        truncated: false,
        records,
        negative_ttl,
    })
}

fn ok(records: Vec<Rec>) -> Heard {
    reply(Rcode::NoError, records, None)
}

fn a(name: &str, ip: &str, ttl: u32) -> Rec {
    Rec::Address {
        name: name.into(),
        ip: ip.parse::<IpAddr>().unwrap(),
        ttl,
    }
}

fn srv(name: &str, priority: u16, weight: u16, port: u16, target: &str, ttl: u32) -> Rec {
    Rec::Srv {
        name: name.into(),
        priority,
        weight,
        port,
        target: target.into(),
        ttl,
    }
}

fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> Rec {
    Rec::Naptr {
        name: "example.net".into(),
        order,
        preference,
        flags: b"S".to_vec(),
        services: services.as_bytes().to_vec(),
        replacement: replacement.into(),
        ttl: 300,
    }
}

fn lookup(want: Want) -> Lookup {
    Lookup::new(b"example.net", want).unwrap()
}

fn ask(name: &str, kind: Kind) -> Step {
    Step::Ask(name.into(), kind)
}

fn target(addr: &str, transport: Transport, priority: u16, weight: u16) -> Target {
    Target {
        addr: addr.parse().unwrap(),
        transport,
        priority,
        weight,
    }
}

#[test]
fn rfc3263_4_2_an_explicit_port_asks_a_then_aaaa_only() {
    let (mut p, step) = Procedure::start(&lookup(Want::Address));
    assert_eq!(step, ask("example.net", Kind::A));
    assert_eq!(p.heard(ok(vec![])), ask("example.net", Kind::Aaaa));
    let step = p.heard(ok(vec![a("example.net", "2001:db8::1", 30)]));
    assert_eq!(
        step,
        Step::Done(Outcome::Found {
            targets: vec![target("[2001:db8::1]:0", Transport::Udp, 0, 0)],
            ttl: 30
        })
    );
}

#[test]
fn rfc3263_4_1_naptr_order_then_preference_picks_the_srv_name() {
    // RFC 3263 §4.1's example: TCP preferred (order 50) over UDP (order 90); SCTP is not ours.
    let (mut p, step) = Procedure::start(&lookup(Want::Naptr { secure: false }));
    assert_eq!(step, ask("example.net", Kind::Naptr));
    let step = p.heard(ok(vec![
        naptr(90, 50, "SIP+D2U", "_sip._udp.example.net"),
        naptr(50, 50, "SIP+D2S", "_sip._sctp.example.net"),
        naptr(50, 60, "SIP+D2T", "_sip._tcp.example.net"),
    ]));
    assert_eq!(step, ask("_sip._tcp.example.net", Kind::Srv));
    // The SRV answer carries one target's address; the other is asked for.
    let step = p.heard(ok(vec![
        srv("_sip._tcp.example.net", 0, 1, 5070, "a.example.net", 60),
        srv("_sip._tcp.example.net", 0, 2, 5072, "b.example.net", 60),
        a("a.example.net", "127.0.0.1", 40),
    ]));
    assert_eq!(step, ask("b.example.net", Kind::A));
    let step = p.heard(ok(vec![a("b.example.net", "127.0.0.2", 20)]));
    assert_eq!(
        step,
        Step::Done(Outcome::Found {
            targets: vec![
                target("127.0.0.1:5070", Transport::Tcp, 0, 1),
                target("127.0.0.2:5072", Transport::Tcp, 0, 2),
            ],
            // The smallest TTL of every record used: NAPTR 300, SRV 60, A 40 and 20.
            ttl: 20
        })
    );
}

#[test]
fn rfc3263_4_1_an_empty_srv_moves_to_the_next_naptr() {
    let (mut p, _) = Procedure::start(&lookup(Want::Naptr { secure: false }));
    let step = p.heard(ok(vec![
        naptr(10, 10, "SIP+D2U", "_sip._udp.example.net"),
        naptr(20, 10, "SIP+D2T", "_sip._tcp.example.net"),
    ]));
    assert_eq!(step, ask("_sip._udp.example.net", Kind::Srv));
    assert_eq!(p.heard(ok(vec![])), ask("_sip._tcp.example.net", Kind::Srv));
}

#[test]
fn rfc3263_4_1_sips_uses_only_sips_services() {
    let records = vec![
        naptr(10, 10, "SIP+D2U", "_sip._udp.example.net"),
        naptr(20, 10, "SIPS+D2T", "_sips._tcp.example.net"),
    ];
    let found = naptr_services(&records, true);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, Transport::Tls);
    assert_eq!(naptr_services(&records, false).len(), 2);
    // Flags other than "s" (here "u", an ENUM-style rewrite) are not for us.
    let mut odd = naptr(1, 1, "SIP+D2U", "_sip._udp.example.net");
    if let Rec::Naptr { flags, .. } = &mut odd {
        *flags = b"u".to_vec();
    }
    assert!(naptr_services(&[odd], false).is_empty());
}

#[test]
fn rfc3263_4_1_without_naptr_srv_for_each_transport_then_a_at_5060() {
    let (mut p, _) = Procedure::start(&lookup(Want::Naptr { secure: false }));
    assert_eq!(p.heard(ok(vec![])), ask("_sip._udp.example.net", Kind::Srv));
    assert_eq!(p.heard(ok(vec![])), ask("_sip._tcp.example.net", Kind::Srv));
    assert_eq!(
        p.heard(ok(vec![])),
        ask("_sips._tcp.example.net", Kind::Srv)
    );
    // §4.2: no SRV either → A/AAAA of the name, UDP at 5060.
    assert_eq!(p.heard(ok(vec![])), ask("example.net", Kind::A));
    let step = p.heard(ok(vec![a("example.net", "127.0.0.7", 10)]));
    assert_eq!(
        step,
        Step::Done(Outcome::Found {
            targets: vec![target("127.0.0.7:5060", Transport::Udp, 0, 0)],
            ttl: 10
        })
    );
}

#[test]
fn rfc3263_4_2_sips_without_anything_is_tls_at_5061() {
    let (mut p, _) = Procedure::start(&lookup(Want::Naptr { secure: true }));
    assert_eq!(
        p.heard(ok(vec![])),
        ask("_sips._tcp.example.net", Kind::Srv)
    );
    assert_eq!(p.heard(ok(vec![])), ask("example.net", Kind::A));
    let step = p.heard(ok(vec![a("example.net", "127.0.0.7", 10)]));
    assert!(
        matches!(step, Step::Done(Outcome::Found { ref targets, .. }) if targets[0] == target("127.0.0.7:5061", Transport::Tls, 0, 0))
    );
}

#[test]
fn rfc3263_4_2_a_transport_without_port_asks_its_srv() {
    let (mut p, step) = Procedure::start(&lookup(Want::Srv(Transport::Tcp)));
    assert_eq!(step, ask("_sip._tcp.example.net", Kind::Srv));
    assert_eq!(p.heard(ok(vec![])), ask("example.net", Kind::A));
    // WebSocket has no SRV (RFC 7118): straight to A at 80.
    let (_, step) = Procedure::start(&lookup(Want::Srv(Transport::Ws)));
    assert_eq!(step, ask("example.net", Kind::A));
}

#[test]
fn rfc2782_a_dot_target_means_no_service() {
    let (mut p, _) = Procedure::start(&lookup(Want::Srv(Transport::Udp)));
    let step = p.heard(ok(vec![srv("_sip._udp.example.net", 0, 0, 0, ".", 60)]));
    assert_eq!(step, ask("example.net", Kind::A));
}

#[test]
fn rfc2308_nxdomain_ends_the_procedure_with_its_negative_ttl() {
    let (mut p, _) = Procedure::start(&lookup(Want::Naptr { secure: false }));
    let step = p.heard(reply(Rcode::NxDomain, vec![], Some(45)));
    assert_eq!(
        step,
        Step::Done(Outcome::NotFound {
            negative_ttl: Some(45)
        })
    );
    // NODATA all the way: the smallest negative TTL seen.
    let (mut p, _) = Procedure::start(&lookup(Want::Address));
    p.heard(reply(Rcode::NoError, vec![], Some(50)));
    let step = p.heard(reply(Rcode::NoError, vec![], Some(30)));
    assert_eq!(
        step,
        Step::Done(Outcome::NotFound {
            negative_ttl: Some(30)
        })
    );
    // NXDOMAIN on A: no AAAA question.
    let (mut p, _) = Procedure::start(&lookup(Want::Address));
    let step = p.heard(reply(Rcode::NxDomain, vec![], None));
    assert_eq!(step, Step::Done(Outcome::NotFound { negative_ttl: None }));
}

#[test]
fn a_server_failure_or_silence_is_a_failure() {
    let (mut p, _) = Procedure::start(&lookup(Want::Address));
    assert_eq!(
        p.heard(reply(Rcode::Failed, vec![], None)),
        Step::Done(Outcome::Failed)
    );
    let (mut p, _) = Procedure::start(&lookup(Want::Address));
    assert_eq!(p.heard(Heard::Failed), Step::Done(Outcome::Failed));
}

#[test]
fn a_cname_chain_ends_in_addresses() {
    let (mut p, _) = Procedure::start(&lookup(Want::Address));
    let step = p.heard(ok(vec![
        Rec::Cname {
            name: "example.net".into(),
            target: "real.example.net".into(),
            ttl: 100,
        },
        a("real.example.net", "127.0.0.3", 100),
    ]));
    assert!(matches!(step, Step::Done(Outcome::Found { .. })));
}

#[test]
fn a_hostile_answer_is_bounded() {
    // 200 SRV targets, none with an address: at most MAX_QUESTIONS questions in all.
    let (mut p, _) = Procedure::start(&lookup(Want::Srv(Transport::Udp)));
    let many = (0..200)
        .map(|i| {
            srv(
                "_sip._udp.example.net",
                0,
                1,
                5060,
                &format!("h{i}.example.net"),
                60,
            )
        })
        .collect();
    let mut step = p.heard(ok(many));
    let mut asked = 2;
    while let Step::Ask(..) = step {
        step = p.heard(ok(vec![]));
        asked += 1;
        assert!(asked <= MAX_QUESTIONS + 2);
    }
    assert_eq!(step, Step::Done(Outcome::Failed));
}

#[test]
fn a_proxy_that_sends_only_over_ipv6_asks_aaaa_first() {
    let (mut p, step) = Procedure::start_with(&lookup(Want::Address), true);
    assert_eq!(step, ask("example.net", Kind::Aaaa));
    // No AAAA: A before giving the host up.
    assert_eq!(p.heard(ok(vec![])), ask("example.net", Kind::A));
    let step = p.heard(ok(vec![a("example.net", "192.0.2.1", 30)]));
    let Step::Done(Outcome::Found { targets, .. }) = step else {
        panic!("{step:?}");
    };
    assert_eq!(targets[0].addr, "192.0.2.1:0".parse().unwrap());
}

#[test]
fn a_hosts_addresses_are_of_one_family_the_first_asked() {
    // Glue of both families in the SRV answer: only the family asked first is taken, so a
    // dual-stack host counts once in the SRV weights.
    let records = vec![
        srv("_sip._udp.example.net", 0, 1, 5060, "box.example.net", 60),
        a("box.example.net", "192.0.2.1", 60),
        a("box.example.net", "2001:db8::1", 60),
    ];
    for (v6_first, want) in [(false, "192.0.2.1:5060"), (true, "[2001:db8::1]:5060")] {
        let (mut p, _) = Procedure::start_with(&lookup(Want::Srv(Transport::Udp)), v6_first);
        let Step::Done(Outcome::Found { targets, .. }) = p.heard(ok(records.clone())) else {
            panic!("found");
        };
        let addrs: Vec<String> = targets.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(addrs, vec![want.to_owned()]);
    }
}
