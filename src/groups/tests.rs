//! The table end to end in virtual time: selection, probe answers, verdicts, passive holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

const KEY: [u8; 16] = *b"probe-key-tests!";

fn no_hosts(_: &str) -> Option<std::net::IpAddr> {
    None
}

/// The worked example's group: 5071 (w1), 5072 (w1), 5073 (w2), hash over Call-ID, probes
/// every second, failed after 0.9 s, down after 2, up after 1.
fn core_farm(epoch: Instant) -> Arc<Groups> {
    Arc::new(Groups::new(vec![core_farm_config([1, 1, 2])], KEY, epoch).unwrap())
}

/// The worked example's group with these weights.
fn core_farm_config(weights: [u32; 3]) -> GroupConfig {
    let d = |port: u16, weight| {
        DestinationConfig::parse(&format!("sip:127.0.0.1:{port}"), weight, 0, no_hosts).unwrap()
    };
    let [w1, w2, w3] = weights;
    let mut g = GroupConfig::new("core", vec![d(5071, w1), d(5072, w2), d(5073, w3)]);
    g.probe = ProbeConfig {
        enabled: true,
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(900),
        down_after: 2,
        up_after: 1,
        alive_codes: vec![200],
    };
    g.retry_after = 17;
    g
}

fn origin() -> ProbeOrigin {
    ProbeOrigin::udp("127.0.0.1:5060")
}

fn invite(call_id: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{call_id}\r\n\
From: <sip:alice@a>;tag=1\r\nTo: <sip:bob@b>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\r\n"
    )
    .into_bytes()
}

fn pick(groups: &Groups, call_id: &str) -> Selection {
    pick_in_lane(groups, call_id, 0)
}

/// `pick` by the worker counting in `lane`.
fn pick_in_lane(groups: &Groups, call_id: &str, lane: usize) -> Selection {
    let raw = invite(call_id);
    let msg = Message::scan(&raw, false).unwrap();
    let src: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    groups.select(GroupId(0), &msg, src, 0, lane)
}

fn port_of(s: Selection) -> Option<u16> {
    match s {
        Selection::To { addr, .. } => Some(addr.port()),
        Selection::AllDown { .. } => None,
    }
}

/// The answer a destination gives to a probe: the probe's headers under a status line.
fn answer(probe: &[u8], code: u16) -> Vec<u8> {
    let text = String::from_utf8_lossy(probe);
    let (_, rest) = text.split_once("\r\n").unwrap();
    format!("SIP/2.0 {code} Whatever\r\n{rest}").into_bytes()
}

/// Polls at `now`, answering every probe sent to a port in `answering` (`code`) at once.
fn tick(groups: &Groups, prober: &mut Prober, now: Instant, answering: &[u16]) -> usize {
    let mut sent = Vec::new();
    prober.poll(now, |p| sent.push((p.bytes.to_vec(), p.to)));
    for (bytes, to) in &sent {
        if answering.contains(&to.port()) {
            let raw = answer(bytes, 200);
            let msg = Message::scan(&raw, false).unwrap();
            assert!(groups.consume_probe_answer(&msg, *to, now + Duration::from_millis(5)));
        }
    }
    prober.poll(now + Duration::from_millis(10), |_| {});
    sent.len()
}

#[test]
fn calls_spread_by_weight_and_stick() {
    let groups = core_farm(Instant::now());
    let mut counts = [0u32; 3];
    for i in 0..20_000 {
        let port = port_of(pick(&groups, &format!("call-{i}@host"))).unwrap();
        counts[usize::from(port - 5071)] += 1;
        assert_eq!(
            port_of(pick(&groups, &format!("call-{i}@host"))),
            Some(port)
        );
    }
    let share = |i: usize| f64::from(counts[i]) / 20_000.0;
    assert!((share(0) - 0.25).abs() < 0.02, "{counts:?}");
    assert!((share(1) - 0.25).abs() < 0.02, "{counts:?}");
    assert!((share(2) - 0.5).abs() < 0.02, "{counts:?}");
    let sent = groups.snapshot().groups[0].destinations[2].messages_sent;
    assert_eq!(sent, 2 * u64::from(counts[2]));
}

/// Which destination a call reaches depends only on its Call-ID and the destinations' URIs
/// and weights, in every version, so that proxies of two versions side by side (a rolling
/// upgrade) send a call's messages, its CANCEL and ACK alike. These were recorded black-box
/// from ferrovia at 385d8d8 (SipHash-1-3 of the Call-ID, a `w / -ln(u)` score for each
/// destination), through `examples/groups/core-farm.toml` and the same with weights 1, 1, 1.
#[test]
fn the_destination_of_a_call_is_the_same_as_in_earlier_versions() {
    let recorded = [
        (
            [1, 1, 2],
            "2 1 1 3 3 1 1 3 2 2 3 3 2 1 3 3 3 3 1 1 1 1 2 3 3 3 1 1 3 1 3 3 1 3 1 3 3 1 3 2",
        ),
        (
            [1, 1, 1],
            "2 1 1 3 3 1 1 3 2 2 3 3 2 1 1 3 3 3 1 1 1 1 2 3 3 3 1 1 1 1 1 3 1 2 1 3 3 1 1 2",
        ),
    ];
    for (weights, ports) in recorded {
        let groups = Groups::new(vec![core_farm_config(weights)], KEY, Instant::now()).unwrap();
        for (i, last_digit) in ports.split(' ').enumerate() {
            let want = 5070 + last_digit.parse::<u16>().unwrap();
            let got = port_of(pick(&groups, &format!("call-{i}@host")));
            assert_eq!(got, Some(want), "weights {weights:?}, call-{i}@host");
        }
    }
}

#[test]
fn requests_sent_are_counted_per_worker_lane_and_summed() {
    let groups = Groups::new(vec![core_farm_config([1, 1, 1])], KEY, Instant::now())
        .unwrap()
        .with_lanes(2);
    let mut want = [0u64; 3];
    // Lanes 0 and 1 are the two workers'; lane 7 (a worker beyond the lanes) shares one.
    for (i, lane) in (0..600).zip([0, 1, 7].into_iter().cycle()) {
        let port = port_of(pick_in_lane(&groups, &format!("call-{i}@host"), lane)).unwrap();
        want[usize::from(port - 5071)] += 1;
    }
    let g = &groups.groups[0];
    for (d, &n) in want.iter().enumerate() {
        assert_eq!(
            g.messages_sent(DestinationId(d as u8)),
            n,
            "destination {d}"
        );
        assert_eq!(groups.snapshot().groups[0].destinations[d].messages_sent, n);
    }
    // The two workers' counters for one destination are on different cache lines.
    let addr = |lane| g.sent.counter(lane, 0).unwrap() as *const _ as usize;
    assert!(addr(1).abs_diff(addr(0)) >= 64);
    assert_eq!(addr(7), addr(1));
}

#[test]
fn only_a_destination_named_in_dns_changes_address() {
    let named = DestinationConfig::parse("sip:core.example.net:5060", 1, 0, no_hosts).unwrap();
    let literal = DestinationConfig::parse("sip:127.0.0.1:5071", 1, 0, no_hosts).unwrap();
    let g = GroupConfig::new("core", vec![named, literal]);
    let groups = Groups::new(vec![g], KEY, Instant::now()).unwrap();
    let [named, literal] = &groups.groups[0].destinations[..] else {
        panic!("two destinations");
    };
    let elsewhere: SocketAddr = "192.0.2.7:5060".parse().unwrap();
    assert!(named.addr().ip().is_unspecified());
    named.set_addr(elsewhere);
    assert_eq!(named.addr(), elsewhere);
    literal.set_addr(elsewhere);
    assert_eq!(literal.addr(), "127.0.0.1:5071".parse().unwrap());
}

#[test]
fn a_silent_destination_goes_down_within_three_seconds_and_comes_back() {
    let t0 = Instant::now();
    let groups = core_farm(t0);
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    assert_eq!(tick(&groups, &mut prober, ms(0), &[5071, 5072, 5073]), 3);
    let snap = groups.snapshot();
    assert!(snap.groups[0].destinations[0].last_probe_rtt_us > 0);
    assert_eq!(snap.groups[0].live, 3);

    // 5073 stops answering just after its first probe was answered.
    let mut down_at = None;
    for step in 1..=60u64 {
        let now = ms(step * 100);
        tick(&groups, &mut prober, now, &[5071, 5072]);
        if groups.groups[0].live() & 0b100 == 0 && down_at.is_none() {
            down_at = Some(step * 100);
        }
    }
    let down_at = down_at.expect("5073 went down");
    assert!(down_at <= 3000, "down after {down_at} ms");
    assert_eq!(groups.groups[0].live(), 0b011);
    let snap = groups.snapshot();
    let d = &snap.groups[0].destinations[2];
    assert_eq!((d.state.as_str(), d.went_down), ("down", 1));
    assert!(d.probes_failed >= 2);

    // Its calls moved; nobody else's did.
    for i in 0..2000 {
        let call = format!("call-{i}@host");
        let port = port_of(pick(&groups, &call)).unwrap();
        assert_ne!(port, 5073);
    }

    // Back: one answered probe brings it up within the next interval.
    let mut up_at = None;
    for step in 61..=100u64 {
        tick(&groups, &mut prober, ms(step * 100), &[5071, 5072, 5073]);
        if groups.groups[0].live() == 0b111 && up_at.is_none() {
            up_at = Some(step * 100 - 6000);
        }
    }
    assert!(up_at.expect("5073 came back") <= 3000);
}

#[test]
fn nothing_live_is_all_down_with_the_retry_after() {
    let t0 = Instant::now();
    let groups = core_farm(t0);
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    for step in 0..40u64 {
        tick(
            &groups,
            &mut prober,
            t0 + Duration::from_millis(step * 100),
            &[],
        );
    }
    assert_eq!(groups.groups[0].live(), 0);
    assert_eq!(pick(&groups, "x"), Selection::AllDown { retry_after: 17 });
}

#[test]
fn probe_answers_are_consumed_and_checked() {
    let t0 = Instant::now();
    let groups = core_farm(t0);
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    let mut sent = Vec::new();
    prober.poll(t0, |p| sent.push((p.bytes.to_vec(), p.to)));
    let (probe, to) = &sent[0];
    let raw = answer(probe, 200);
    let msg = Message::scan(&raw, false).unwrap();
    // From another address: consumed, but not counted as the destination's answer.
    let stranger: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    assert!(groups.consume_probe_answer(&msg, stranger, t0));
    assert_eq!(groups.groups[0].destinations[0].health.last_answer(), None);
    assert!(groups.consume_probe_answer(&msg, *to, t0));
    assert!(
        groups.groups[0].destinations[0]
            .health
            .last_answer()
            .is_some()
    );
    // A response to a forwarded request is not a probe answer.
    let other =
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfv0011223344556677\r\n\
From: <sip:a@a>;tag=1\r\nTo: <sip:b@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
    let msg = Message::scan(other, false).unwrap();
    assert!(!groups.consume_probe_answer(&msg, *to, t0));
}

#[test]
fn an_unalive_code_is_a_failure() {
    let t0 = Instant::now();
    let groups = core_farm(t0);
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    for step in 0..3u64 {
        let now = t0 + Duration::from_secs(step);
        let mut sent = Vec::new();
        prober.poll(now, |p| sent.push((p.bytes.to_vec(), p.to)));
        for (bytes, to) in &sent {
            let raw = answer(bytes, 404);
            let msg = Message::scan(&raw, false).unwrap();
            groups.consume_probe_answer(&msg, *to, now);
        }
        prober.poll(now + Duration::from_millis(1), |_| {});
    }
    assert_eq!(groups.groups[0].live(), 0);
}

#[test]
fn a_503_with_retry_after_holds_a_destination_down() {
    let t0 = Instant::now();
    let groups = core_farm(t0);
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    let busy = b"SIP/2.0 503 Busy\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfv0011223344556677\r\n\
From: <sip:a@a>;tag=1\r\nTo: <sip:b@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nRetry-After: 5 (maintenance)\r\n\r\n";
    let msg = Message::scan(busy, false).unwrap();
    let from: SocketAddr = "127.0.0.1:5072".parse().unwrap();
    assert!(
        !groups.consume_probe_answer(&msg, from, t0),
        "not a probe answer"
    );
    groups.note_response(&msg, from, t0);
    assert_eq!(groups.groups[0].live(), 0b101, "down at once");
    // Probes answered during the hold do not bring it back.
    for step in 0..=45u64 {
        tick(
            &groups,
            &mut prober,
            t0 + Duration::from_millis(step * 100),
            &[5071, 5072, 5073],
        );
        assert_eq!(groups.groups[0].live(), 0b101, "at {step}");
    }
    for step in 50..=70u64 {
        tick(
            &groups,
            &mut prober,
            t0 + Duration::from_millis(step * 100),
            &[5071, 5072, 5073],
        );
    }
    assert_eq!(groups.groups[0].live(), 0b111, "back after the hold");
    assert_eq!(groups.snapshot().groups[0].destinations[1].passive_downs, 1);
}

#[test]
fn destinations_over_streams_are_not_probed_and_stay_up() {
    let t0 = Instant::now();
    let d = |uri: &str| DestinationConfig::parse(uri, 1, 0, no_hosts).unwrap();
    let g = GroupConfig::new(
        "mixed",
        vec![
            d("sip:127.0.0.1:5071"),
            d("sip:127.0.0.1:5072;transport=tcp"),
        ],
    );
    let groups = Arc::new(Groups::new(vec![g], KEY, t0).unwrap());
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    let mut probed = Vec::new();
    for step in 0..40u64 {
        prober.poll(t0 + Duration::from_millis(step * 500), |p| {
            probed.push(p.to.port())
        });
    }
    assert!(probed.iter().all(|&p| p == 5071), "{probed:?}");
    assert_eq!(
        groups.groups[0].live(),
        0b10,
        "the UDP one failed, the TCP one stays up"
    );
}

/// Probes from a UDP, a TCP and a TLS listener; destinations over each, the TLS one named
/// in DNS (resolved here by hand to 127.0.0.1:5073).
fn over_every_transport(t0: Instant) -> (Arc<Groups>, Prober) {
    let d = |uri: &str| DestinationConfig::parse(uri, 1, 0, no_hosts).unwrap();
    let mut named = d("sips:core.test");
    named.addr = "127.0.0.1:5073".parse().unwrap();
    let mut g = GroupConfig::new(
        "streams",
        vec![
            d("sip:127.0.0.1:5071"),
            d("sip:127.0.0.1:5072;transport=tcp"),
            named,
        ],
    );
    g.probe = core_farm(t0).groups[0].probe.clone();
    let groups = Arc::new(Groups::new(vec![g], KEY, t0).unwrap());
    let listener = |transport, sent_by: &str| ProbeListener {
        transport,
        ipv6: false,
        sent_by: sent_by.into(),
    };
    let origin = ProbeOrigin {
        listeners: vec![
            listener(Transport::Udp, "127.0.0.1:5060"),
            listener(Transport::Tcp, "127.0.0.1:5060"),
            listener(Transport::Tls, "127.0.0.1:5061"),
        ],
    };
    let prober = Prober::new(Arc::clone(&groups), origin, t0);
    (groups, prober)
}

#[test]
fn destinations_over_tcp_and_tls_are_probed_over_their_transport() {
    let t0 = Instant::now();
    let (groups, mut prober) = over_every_transport(t0);
    assert_eq!(
        groups.groups[0].destinations[2].transport,
        Transport::Tls,
        "sips: is TLS"
    );
    let mut sent = Vec::new();
    prober.poll(t0, |p| {
        let text = String::from_utf8_lossy(p.bytes).into_owned();
        sent.push((
            p.to.port(),
            p.transport,
            p.listener,
            p.name.map(str::to_owned),
            text,
        ));
    });
    assert_eq!(sent.len(), 3);
    assert_eq!((sent[0].0, sent[0].1, sent[0].2), (5071, Transport::Udp, 0));
    assert_eq!((sent[1].0, sent[1].1, sent[1].2), (5072, Transport::Tcp, 1));
    assert_eq!((sent[2].0, sent[2].1, sent[2].2), (5073, Transport::Tls, 2));
    assert!(sent[1].4.contains("Via: SIP/2.0/TCP 127.0.0.1:5060;"));
    assert!(sent[2].4.contains("Via: SIP/2.0/TLS 127.0.0.1:5061;"));
    // RFC 5922 §7.2: the TLS one is verified against the name it was configured by.
    assert_eq!(sent[2].3.as_deref(), Some("core.test"));
    assert_eq!(sent[1].3, None);
    // Answers on the connections (the destination's own address) settle as UDP ones do.
    for (port, .., text) in &sent[..2] {
        let raw = answer(text.as_bytes(), 200);
        let msg = Message::scan(&raw, true).unwrap();
        let from = SocketAddr::from(([127, 0, 0, 1], *port));
        assert!(groups.consume_probe_answer(&msg, from, t0 + Duration::from_millis(3)));
    }
    prober.poll(t0 + Duration::from_millis(5), |_| {});
    let snap = groups.snapshot();
    let tcp = &snap.groups[0].destinations[1];
    assert!(
        tcp.last_probe_rtt_us > 0 && tcp.probes_failed == 0,
        "{tcp:?}"
    );
}

#[test]
fn a_failed_connect_or_handshake_fails_the_probe_at_once() {
    let t0 = Instant::now();
    let (groups, mut prober) = over_every_transport(t0);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    // Every TLS probe fails (a refused connect, a certificate refused) within a millisecond.
    for second in 0..2u64 {
        let mut failed = Vec::new();
        prober.poll(ms(second * 1000), |p| {
            if p.transport == Transport::Tls {
                failed.push((p.group, p.destination, p.seq));
            }
        });
        for (group, dest, seq) in failed {
            groups.note_probe_failure(group, dest, seq, ms(second * 1000 + 1));
        }
        prober.poll(ms(second * 1000 + 2), |_| {});
        let d = &groups.snapshot().groups[0].destinations[2];
        assert_eq!(
            d.probes_failed,
            second + 1,
            "long before the 900 ms timeout"
        );
    }
    let d = &groups.snapshot().groups[0].destinations[2];
    assert_eq!(
        (d.state.as_str(), d.went_down, d.last_probe_rtt_us),
        ("down", 1, 0)
    );
    // A provisional answer settles nothing; a final one does.
    let mut next = Vec::new();
    prober.poll(ms(2000), |p| {
        if p.transport == Transport::Tls {
            next.push(p.bytes.to_vec());
        }
    });
    let from: SocketAddr = "127.0.0.1:5073".parse().unwrap();
    let trying = answer(&next[0], 100);
    let trying = Message::scan(&trying, true).unwrap();
    assert!(
        groups.consume_probe_answer(&trying, from, ms(2001)),
        "consumed"
    );
    prober.poll(ms(2002), |_| {});
    assert_eq!(groups.snapshot().groups[0].destinations[2].state, "down");
    let ok = answer(&next[0], 200);
    let ok = Message::scan(&ok, true).unwrap();
    assert!(groups.consume_probe_answer(&ok, from, ms(2003)));
    prober.poll(ms(2004), |_| {});
    let d = &groups.snapshot().groups[0].destinations[2];
    assert_eq!((d.state.as_str(), d.went_up, d.probes_failed), ("up", 1, 2));
}

#[test]
fn an_icmp_unreachable_takes_a_destination_down_until_probes_bring_it_back() {
    let t0 = Instant::now();
    let groups = core_farm(t0);
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    tick(&groups, &mut prober, t0, &[5071, 5072, 5073]);
    let stranger: SocketAddr = "127.0.0.1:5999".parse().unwrap();
    assert_eq!(groups.note_unreachable(stranger, Transport::Udp, t0), 0);
    let dead: SocketAddr = "127.0.0.1:5072".parse().unwrap();
    assert_eq!(
        groups.note_unreachable(dead, Transport::Tcp, t0),
        0,
        "a failed connect says nothing of a UDP destination"
    );
    assert_eq!(groups.groups[0].live(), 0b111, "strangers change nothing");
    assert_eq!(groups.note_unreachable(dead, Transport::Udp, t0), 1);
    assert_eq!(
        groups.groups[0].live(),
        0b101,
        "down at once, before the prober"
    );
    assert_eq!(
        port_of(pick(&groups, "moved")).map(|p| p != 5072),
        Some(true)
    );
    // The prober logs and counts it, and an answered probe (up after 1) brings it back.
    prober.poll(t0 + Duration::from_millis(20), |_| {});
    let d = &groups.snapshot().groups[0].destinations[1];
    assert_eq!(
        (d.state.as_str(), d.went_down, d.passive_downs),
        ("down", 1, 1)
    );
    tick(
        &groups,
        &mut prober,
        t0 + Duration::from_secs(1),
        &[5071, 5072, 5073],
    );
    let d = &groups.snapshot().groups[0].destinations[1];
    assert_eq!((d.state.as_str(), d.went_up), ("up", 1));
    let others = &groups.snapshot().groups[0].destinations;
    assert_eq!((others[0].went_down, others[2].went_down), (0, 0));
}

#[test]
fn a_failed_connect_holds_an_unprobed_destination_for_one_interval() {
    let t0 = Instant::now();
    let d = |uri: &str| DestinationConfig::parse(uri, 1, 0, no_hosts).unwrap();
    let mut g = GroupConfig::new(
        "mixed",
        vec![
            d("sip:127.0.0.1:5071"),
            d("sip:127.0.0.1:5072;transport=tcp"),
        ],
    );
    g.probe.interval = Duration::from_secs(2);
    g.probe.timeout = Duration::from_secs(1);
    let groups = Arc::new(Groups::new(vec![g], KEY, t0).unwrap());
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    let tcp: SocketAddr = "127.0.0.1:5072".parse().unwrap();
    assert_eq!(groups.note_unreachable(tcp, Transport::Tcp, t0), 1);
    assert_eq!(groups.groups[0].live() & 0b10, 0);
    tick(&groups, &mut prober, t0 + Duration::from_secs(1), &[5071]);
    assert_eq!(groups.groups[0].live(), 0b01, "held for the probe interval");
    tick(
        &groups,
        &mut prober,
        t0 + Duration::from_millis(2100),
        &[5071],
    );
    assert_eq!(
        groups.groups[0].live(),
        0b11,
        "no probe can, so the hold's end does"
    );
    let d = &groups.snapshot().groups[0].destinations[1];
    assert_eq!((d.went_down, d.went_up, d.passive_downs), (1, 1, 1));
}

#[test]
fn a_signal_racing_with_a_probe_verdict_is_not_lost() {
    let t0 = Instant::now();
    let groups = core_farm(t0);
    let mut prober = Prober::new(Arc::clone(&groups), origin(), t0);
    let dead: SocketAddr = "127.0.0.1:5071".parse().unwrap();
    // Taken down by probes, then answered: the prober sets the bit again...
    groups.set_live(GroupId(0), DestinationId(0), false);
    // ...while a signal arrives after it read the flag: the bit must end cleared.
    groups.groups[0].destinations[0].health.mark_unreachable(0);
    groups.set_live_strict(GroupId(0), DestinationId(0), true);
    if groups.groups[0].destinations[0]
        .health
        .unreachable_pending()
    {
        groups.set_live_strict(GroupId(0), DestinationId(0), false);
    }
    assert_eq!(groups.groups[0].live() & 1, 0);
    prober.poll(t0, |_| {});
    assert_eq!(groups.groups[0].live() & 1, 0, "the prober takes it down");
    assert_eq!(groups.note_unreachable(dead, Transport::Udp, t0), 1);
}

#[test]
fn groups_are_found_by_name() {
    let groups = core_farm(Instant::now());
    assert_eq!(groups.id("core"), Some(GroupId(0)));
    assert_eq!(groups.id("edge"), None);
}
