//! The guard as a whole: the order of its checks and what each verdict is.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn invite(user_agent: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
         User-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The worked example's settings (`examples/protection/edge.toml`).
fn edge() -> ProtectConfig {
    let limit = Limit {
        per_second: 1000,
        burst: 2000,
    };
    ProtectConfig {
        allow: CidrSet::parse(&["127.0.0.9"]).unwrap(),
        limits: [Some(limit); 3],
        ban_after: Some(Duration::from_secs(1)),
        ban_time: Duration::from_secs(60),
        scanners: vec![
            (ScannerField::UserAgent, "friendly-scanner".into()),
            (ScannerField::UserAgent, "sipvicious".into()),
        ],
        ..ProtectConfig::default()
    }
}

struct Run {
    p: Protection,
    start: Instant,
    local: SocketAddr,
}

impl Run {
    fn new(config: ProtectConfig) -> Run {
        let p = Protection::new(&config, 42);
        Run {
            start: Instant::now(),
            p,
            local: addr("127.0.0.1:5060"),
        }
    }

    fn check(&self, msg: &[u8], from: &str, at: Duration) -> Verdict {
        self.p
            .check(msg, addr(from), self.local, Transport::Udp, self.start + at)
    }

    /// Sends `per_ms` requests each millisecond for `ms`; returns the verdicts counted.
    fn flood(&self, from: &str, per_ms: u32, ms: u32, offset: Duration) -> (u32, u32, u32) {
        let msg = invite("flooder");
        let (mut pass, mut rate, mut ban) = (0, 0, 0);
        for t in 0..ms {
            for _ in 0..per_ms {
                match self.check(&msg, from, offset + MS * t) {
                    Verdict::Pass => pass += 1,
                    Verdict::Drop(DropReason::RateLimited) => rate += 1,
                    Verdict::Drop(DropReason::Banned) => ban += 1,
                    other => panic!("{other:?}"),
                }
            }
        }
        (pass, rate, ban)
    }
}

#[test]
fn a_flooder_is_limited_then_banned_after_a_second_over_its_limit() {
    let run = Run::new(edge());
    // 50 requests/ms: the burst of 2,000 lasts 40 ms, then one per ms passes.
    let (pass, rate, ban) = run.flood("127.0.0.2:5060", 50, 1000, Duration::ZERO);
    // The burst, then one a millisecond: about 3,000 in the first second, and no ban yet
    // (the first refusal came at 40 ms).
    assert!((2990..=3001).contains(&pass), "{pass}");
    assert_eq!(ban, 0, "not banned before a second over the limit");
    assert_eq!(rate, 50_000 - pass);
    let (pass, _, ban) = run.flood("127.0.0.2:5060", 50, 100, Duration::from_millis(1000));
    assert!(
        ban >= 50 * 50,
        "banned about 1,040 ms in: {pass} passed, {ban} banned"
    );
    let bans = run.p.bans(run.start + Duration::from_secs(2));
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].source.to_string(), "127.0.0.2");
    assert_eq!(bans[0].until_ns - bans[0].since_ns, 60_000_000_000);
    // Another source, and the flooder's other ports, are judged by source address.
    assert_eq!(
        run.check(&invite("x"), "127.0.0.3:7", Duration::from_secs(2)),
        Verdict::Pass
    );
    let banned = run.check(&invite("x"), "127.0.0.2:9", Duration::from_secs(2));
    assert_eq!(banned, Verdict::Drop(DropReason::Banned));
    // Lifted: back, with a fresh streak.
    assert!(run.p.lift(
        "127.0.0.2".parse().unwrap(),
        run.start + Duration::from_secs(3)
    ));
    assert_eq!(
        run.check(&invite("x"), "127.0.0.2:9", Duration::from_secs(4)),
        Verdict::Pass
    );
    // After its 60 s the ban is over by itself.
    let run = Run::new(edge());
    run.flood("127.0.0.2:5060", 50, 1100, Duration::ZERO);
    let later = Duration::from_secs(61) + Duration::from_millis(100);
    assert_eq!(run.check(&invite("x"), "127.0.0.2:1", later), Verdict::Pass);
}

#[test]
fn a_burst_within_the_allowance_and_a_short_overrun_are_not_banned() {
    let run = Run::new(edge());
    // 2,500 at once: 500 refused, but the refusals stop, and no ban follows.
    let (pass, rate, _) = run.flood("127.0.0.4:1", 2500, 1, Duration::ZERO);
    assert_eq!((pass, rate), (2000, 500));
    let (pass, rate, ban) = run.flood("127.0.0.4:1", 1, 3000, Duration::from_millis(1));
    assert_eq!((rate, ban), (0, 0), "{pass} passed at the rate");
    assert!(run.p.bans(run.start + Duration::from_secs(4)).is_empty());
}

#[test]
fn the_allowlist_is_never_limited_and_responses_never_are() {
    let run = Run::new(edge());
    let (pass, _, _) = run.flood("127.0.0.9:5060", 50, 2000, Duration::ZERO);
    assert_eq!(pass, 100_000);
    let response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n";
    for _ in 0..10_000 {
        assert_eq!(
            run.check(response, "127.0.0.5:5060", Duration::ZERO),
            Verdict::Pass
        );
    }
    // A banned source's responses still pass.
    run.flood("127.0.0.5:5060", 50, 1100, Duration::ZERO);
    let at = Duration::from_millis(1200);
    assert_eq!(
        run.check(&invite("x"), "127.0.0.5:1", at),
        Verdict::Drop(DropReason::Banned)
    );
    assert_eq!(run.check(response, "127.0.0.5:1", at), Verdict::Pass);
}

#[test]
fn scanners_are_dropped_and_counted_by_pattern() {
    let run = Run::new(edge());
    let at = Duration::ZERO;
    let hit = run.check(&invite("Friendly-Scanner"), "192.0.2.1:1", at);
    assert_eq!(hit, Verdict::Drop(DropReason::Scanner));
    let hit = run.check(&invite("sipvicious 0.3"), "127.0.0.9:1", at);
    assert_eq!(
        hit,
        Verdict::Drop(DropReason::Scanner),
        "even from the allowlist"
    );
    assert_eq!(
        run.check(&invite("Linphone"), "192.0.2.1:1", at),
        Verdict::Pass
    );
    let report = run.p.report(run.start);
    let counts: Vec<u64> = report.scanners.iter().map(|s| s.dropped).collect();
    assert_eq!(counts, [1, 1]);
    assert!(
        report.bans.is_empty(),
        "scanners are not banned unless asked"
    );
    let run = Run::new(ProtectConfig {
        ban_scanners: true,
        ..edge()
    });
    let _ = run.check(&invite("sipvicious"), "192.0.2.1:1", at);
    assert_eq!(
        run.check(&invite("ok"), "192.0.2.1:2", at),
        Verdict::Drop(DropReason::Banned)
    );
    assert_eq!(run.p.report(run.start).bans[0].reason, "scanner");
}

#[test]
fn access_lists_drop_first_and_per_listener() {
    let deny = AccessList {
        listener: Some(ListenerMatch {
            transport: Transport::Udp,
            addr: addr("127.0.0.1:5060"),
        }),
        allow: CidrSet::parse(&["127.0.0.0/8"]).unwrap(),
        deny: CidrSet::parse(&["127.0.0.66"]).unwrap(),
    };
    let run = Run::new(ProtectConfig {
        access: vec![deny],
        ..edge()
    });
    let acl = Verdict::Drop(DropReason::AccessDenied);
    let response = b"SIP/2.0 200 OK\r\n\r\n";
    assert_eq!(run.check(&invite("x"), "127.0.0.66:1", Duration::ZERO), acl);
    assert_eq!(run.check(response, "127.0.0.66:1", Duration::ZERO), acl);
    assert_eq!(run.check(&invite("x"), "192.0.2.1:1", Duration::ZERO), acl);
    assert_eq!(
        run.check(&invite("x"), "127.0.0.5:1", Duration::ZERO),
        Verdict::Pass
    );
    let other = run.p.check(
        &invite("x"),
        addr("192.0.2.1:1"),
        addr("127.0.0.1:5070"),
        Transport::Udp,
        run.start,
    );
    assert_eq!(other, Verdict::Pass, "another listener has no list");
}

#[test]
fn method_classes_have_their_own_limits_and_503_is_an_option() {
    let one = Limit {
        per_second: 1,
        burst: 1,
    };
    let run = Run::new(ProtectConfig {
        limits: [Some(one), None, Some(one)],
        over_limit: OverLimit::Reply {
            retry_after: Duration::from_secs(5),
        },
        ..ProtectConfig::default()
    });
    let register = b"REGISTER sip:x SIP/2.0\r\n\r\n";
    let options = b"OPTIONS sip:x SIP/2.0\r\n\r\n";
    let at = Duration::ZERO;
    assert_eq!(run.check(register, "192.0.2.1:1", at), Verdict::Pass);
    assert_eq!(
        run.check(register, "192.0.2.1:1", at),
        Verdict::Refuse { retry_after: 5 }
    );
    assert_eq!(run.check(options, "192.0.2.1:1", at), Verdict::Pass);
    for _ in 0..100 {
        assert_eq!(
            run.check(&invite("x"), "192.0.2.1:1", at),
            Verdict::Pass,
            "unlimited"
        );
    }
    let top = &run.p.report(run.start).top_talkers[0];
    assert_eq!(
        (top.source.as_str(), top.requests, top.refused),
        ("192.0.2.1", 3, 1)
    );
}
