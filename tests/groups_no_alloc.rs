//! Forwarding to a destination group does not allocate: with a counting global allocator, a
//! thousand request / response round trips through two workers, each request routed by the
//! group (rendezvous hashing over the Call-ID, one atomic load of the live set), and the prober
//! thread running beside them, cost no heap allocation at all.

mod runtime_support;

use std::time::Duration;

use ferrovia::groups::{DestinationConfig, GroupConfig, ProbeConfig};
use ferrovia::settings::Settings;
use runtime_support::sip::{invite, response, top_via_sent_by};
use runtime_support::{loopback_settings, peer, recv_text, start_proxy};

mod alloc_support;

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const ROUND_TRIPS: usize = 1_000;

#[test]
fn forwarding_through_a_group_allocates_nothing() {
    let (bob, alice) = (peer(), peer());
    let (bob_addr, alice_addr) = (bob.local_addr().unwrap(), alice.local_addr().unwrap());
    let uri = format!("sip:{alice_addr}");
    let destination = DestinationConfig::parse(&uri, 1, 0, |_| None).unwrap();
    // Two placeholders that never answer stay up: their first probe is still pending when the
    // test ends (the prober polls all the while).
    let others = ["sip:127.0.0.1:9", "sip:127.0.0.1:13"]
        .map(|u| DestinationConfig::parse(u, 1, 0, |_| None).unwrap());
    let mut group = GroupConfig::new("core", [vec![destination], others.to_vec()].concat());
    group.probe = ProbeConfig {
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        ..ProbeConfig::default()
    };
    let settings = Settings {
        groups: vec![group],
        route_to_group: Some("core".into()),
        ..loopback_settings(2)
    };
    let (proxy, proxy_addr) = start_proxy(&settings);

    // A Call-ID the group sends to alice (the other two never see a message).
    let request = (0..100)
        .map(|i| invite(bob_addr, alice_addr, &format!("no-alloc-{i}")))
        .find(|r| {
            bob.send_to(r.as_bytes(), proxy_addr).unwrap();
            let forwarded = next_non_probe(&alice, Duration::from_millis(300));
            forwarded.is_some()
        })
        .expect("a call for alice")
        .into_bytes();
    // Warm up with it: the stateless proxy rewrites the same request into the same bytes.
    bob.send_to(&request, proxy_addr).unwrap();
    let forwarded = next_non_probe(&alice, Duration::from_secs(5)).unwrap();
    let answer = response(&forwarded, 200, "OK").into_bytes();
    let via = top_via_sent_by(&forwarded).unwrap();
    alice.send_to(&answer, via).unwrap();
    recv_text(&bob);
    let mut buf = vec![0u8; 65_536];

    let before = alloc_support::in_process();
    for _ in 0..ROUND_TRIPS {
        bob.send_to(&request, proxy_addr).unwrap();
        alice.recv_from(&mut buf).unwrap();
        alice.send_to(&answer, via).unwrap();
        bob.recv_from(&mut buf).unwrap();
    }
    let during = alloc_support::in_process() - before;

    let snapshot = proxy.snapshot();
    let sent = snapshot.groups().unwrap().groups[0].destinations[0].messages_sent;
    assert!(sent >= ROUND_TRIPS as u64, "{sent}");
    drop(proxy.shutdown());
    assert_eq!(
        during, 0,
        "{during} allocations in {ROUND_TRIPS} round trips"
    );
}

/// The next message at `socket` that is not a probe, within `limit`.
fn next_non_probe(socket: &std::net::UdpSocket, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = vec![0u8; 65_536];
    let found = loop {
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            break None;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("OPTIONS ") {
            break Some(text);
        }
    };
    socket
        .set_read_timeout(Some(runtime_support::RECV_LIMIT))
        .unwrap();
    found
}
