//! Property tests of edge protection's check: whatever the bytes and the source, no panic;
//! a response is never limited; the same request from an allowlisted source always passes
//! (but for a scanner pattern); a source never gets more than its burst plus what refilled.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ferrovia::protect::{
    AccessList, CidrSet, Limit, ProtectConfig, Protection, ScannerField, Verdict,
};
use ferrovia::proxy::{DropReason, Transport};
use proptest::prelude::*;

fn config() -> ProtectConfig {
    ProtectConfig {
        allow: CidrSet::parse(&["10.9.0.0/16", "2001:db8:9::/48"]).unwrap(),
        limits: [
            Some(Limit {
                per_second: 5,
                burst: 10,
            }),
            Some(Limit {
                per_second: 50,
                burst: 20,
            }),
            None,
        ],
        ban_after: Some(Duration::from_millis(200)),
        sources: 64,
        max_bans: 16,
        scanners: vec![
            (ScannerField::UserAgent, "sipvicious".into()),
            (ScannerField::From, "scanner".into()),
        ],
        access: vec![AccessList {
            listener: None,
            allow: CidrSet::default(),
            deny: CidrSet::parse(&["10.66.0.0/16"]).unwrap(),
        }],
        ..ProtectConfig::default()
    }
}

fn source() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("INVITE".to_string()),
        Just("REGISTER".to_string()),
        Just("OPTIONS".to_string()),
        "[A-Z]{1,12}",
    ];
    let header = prop_oneof![
        Just("User-Agent: SIPVicious x".to_string()),
        Just("f: \"Scanner\" <sip:a@b>".to_string()),
        "[A-Za-z-]{1,12}: [ -~]{0,40}",
        "[ -~]{0,60}",
    ];
    (method, prop::collection::vec(header, 0..8), prop::bool::ANY).prop_map(|(m, hs, lf)| {
        let eol = if lf { "\n" } else { "\r\n" };
        let mut text = format!("{m} sip:x@y SIP/2.0{eol}");
        for h in hs {
            text.push_str(&h);
            text.push_str(eol);
        }
        text.push_str(eol);
        text.into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn no_input_panics(
        data in prop::collection::vec(any::<u8>(), 0..600),
        from in source(),
        ms in 0u64..10_000,
    ) {
        let p = Protection::new(&config(), 3);
        let local: SocketAddr = common::PROXY_ADDR.parse().unwrap();
        let now = Instant::now() + Duration::from_millis(ms);
        let _ = p.check(&data, from, local, Transport::Udp, now);
        let _ = p.check(&data, from, local, Transport::Tcp, now);
    }

    #[test]
    fn responses_are_never_limited(from in source(), n in 1usize..200) {
        let p = Protection::new(&config(), 3);
        let local: SocketAddr = common::PROXY_ADDR.parse().unwrap();
        let denied = CidrSet::parse(&["10.66.0.0/16"]).unwrap().contains(from.ip());
        let now = Instant::now();
        for _ in 0..n {
            let v = p.check(b"SIP/2.0 200 OK\r\n\r\n", from, local, Transport::Udp, now);
            let want = if denied { Verdict::Drop(DropReason::AccessDenied) } else { Verdict::Pass };
            prop_assert_eq!(v, want);
        }
    }

    #[test]
    fn requests_get_at_most_burst_plus_refill(
        msgs in prop::collection::vec(request(), 1..300),
        third in 0u8..=255,
        step_us in 0u64..5_000,
    ) {
        let p = Protection::new(&config(), 3);
        let local: SocketAddr = common::PROXY_ADDR.parse().unwrap();
        let from = SocketAddr::from(([10, 1, third, 1], 5060));
        let trusted = SocketAddr::from(([10, 9, third, 1], 5060));
        let start = Instant::now();
        let mut register_passed = 0u64;
        for (i, msg) in msgs.iter().enumerate() {
            let now = start + Duration::from_micros(step_us * i as u64);
            let v = p.check(msg, from, local, Transport::Udp, now);
            let scanner = matches!(p.check(msg, trusted, local, Transport::Udp, now),
                Verdict::Drop(DropReason::Scanner));
            if !scanner {
                prop_assert_eq!(p.check(msg, trusted, local, Transport::Udp, now), Verdict::Pass);
            }
            if msg.starts_with(b"REGISTER ") && v == Verdict::Pass {
                register_passed += 1;
            }
        }
        let elapsed_s = (step_us * msgs.len() as u64) as f64 / 1e6;
        prop_assert!(register_passed as f64 <= 10.0 + 5.0 * elapsed_s + 1.0,
            "{} REGISTERs passed in {} s", register_passed, elapsed_s);
    }
}
