//! A fixed-count loop over the media anchoring path for instruction counting under
//! callgrind (repeatable on a loaded machine where wall-clock timings are not):
//!
//! ```text
//! cargo build --release --example media
//! valgrind --tool=callgrind target/release/examples/media invite 10000
//! ```
//! Instructions per message = (total at N) - (total at 0), divided by N. Modes:
//! - `invite`: an anchored INVITE with SDP through the core: `handle` (it parks, the NG
//!   query is built) then `resume` with rtpengine's SDP (decided again, forwarded with the
//!   new body and Content-Length, the marks in Via and Record-Route);
//! - `ok`: the same for its 200 OK with the answer;
//! - `plain-invite`, `plain-ok`: the same messages through a proxy without `[media]`;
//! - `ng`: the NG client's share of one command (encode the offer, parse rtpengine's reply).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use ferrovia::media::ng::{self, Extras, Reply};
use ferrovia::media::{Flags, Media, MediaAnswer, MediaConfig};
use ferrovia::proxy::{Answer, Context, OUTPUT_BUFFER_SIZE, Outcome, Query, Tables};

/// rtpengine's SDP for the vectors' offer and answer (the same size as a real one).
const RELAYED: &[u8] = b"v=0\r\no=alice 2890844526 2890844526 IN IP4 203.0.113.9\r\ns=-\r\n\
c=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\na=rtcp:30001\r\n";

fn anchoring() -> common::Core {
    let mut config = common::config();
    config.media = Some(Media::new(MediaConfig {
        rtpengine: vec!["127.0.0.1:2223".parse().unwrap()],
        toward_callee: Flags::parse("replace-origin replace-session-connection").unwrap(),
        toward_caller: Flags::parse("replace-origin replace-session-connection").unwrap(),
        ..MediaConfig::default()
    }));
    common::Core::new(config, Tables::default())
}

/// Handles `bytes`; a parked message is resumed at once with rtpengine's SDP.
fn through(core: &mut common::Core, bytes: &[u8], source: &str, out: &mut [u8]) -> Outcome {
    let input = common::input(bytes, source, Instant::now());
    match core.handle(input, out) {
        Outcome::Park(ticket) => {
            let answer = Answer::Media(Box::new(MediaAnswer::Sdp(RELAYED.to_vec())));
            let mut ctx = Context::new(&core.tables, &mut core.state);
            core.proxy
                .resume(ticket, answer, &mut ctx, out)
                .expect("parked")
        }
        other => other,
    }
}

/// The 200 OK with SDP that answers the INVITE `forwarded` (our Via on top, with its mark).
fn ok_for(forwarded: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(forwarded);
    let vias: String = text
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let ok = String::from_utf8_lossy(common::VECTORS[2].1).into_owned();
    let (first, rest) = ok.split_once("\r\n").unwrap();
    let rest: String = rest
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("Via:"))
        .collect();
    format!("{first}\r\n{vias}{rest}").into_bytes()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: media invite|ok|plain-invite|plain-ok|ng COUNT";
    let (mode, count) = match args.as_slice() {
        [_, mode, count] => (mode.as_str(), count.parse::<u64>().expect(usage)),
        _ => panic!("{usage}"),
    };
    let (_, invite, caller) = common::VECTORS[0];
    let callee = common::VECTORS[2].2;
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let mut core = if mode.starts_with("plain") {
        common::core()
    } else {
        anchoring()
    };
    let Outcome::Forward(t) = through(&mut core, invite, caller, &mut out) else {
        panic!("the INVITE is not forwarded");
    };
    let ok = ok_for(&out[..t.len]);
    // The loop measures what it says: with [media] the 200 parks, without it does not.
    let parks = matches!(
        core.handle(common::input(&ok, callee, Instant::now()), &mut out),
        Outcome::Park(_)
    );
    assert_eq!(
        parks,
        !mode.starts_with("plain"),
        "{mode}: the 200 {}",
        if parks { "parked" } else { "did not park" }
    );
    core.state.parking.clear();
    let mut query = None;
    if mode == "ng" {
        let mut probe = anchoring();
        if let Outcome::Park(ticket) =
            probe.handle(common::input(invite, caller, Instant::now()), &mut out)
        {
            query = match probe.state.parking.query(ticket) {
                Some(Query::Media(q)) => Some(*q),
                _ => None,
            };
        }
    }
    let flags = Flags::parse("replace-origin replace-session-connection").unwrap();
    let reply = [
        &b"7_1 d3:sdp"[..],
        RELAYED.len().to_string().as_bytes(),
        b":",
        RELAYED,
        b"6:result2:oke",
    ]
    .concat();
    let mut buf = Vec::with_capacity(2048);
    for _ in 0..count {
        match mode {
            "invite" | "plain-invite" => {
                let _ = black_box(through(&mut core, black_box(invite), caller, &mut out));
            }
            "ok" | "plain-ok" => {
                let _ = black_box(through(&mut core, black_box(&ok), callee, &mut out));
            }
            "ng" => {
                let q = query.as_ref().expect("a query");
                let extras = Extras {
                    flags: Some(&flags),
                    delete_delay: None,
                };
                ng::encode(&mut buf, b"7_1", black_box(q), extras);
                black_box(Reply::parse(black_box(&reply)).map(|r| r.sdp.map(<[u8]>::len)));
            }
            _ => panic!("{usage}"),
        }
    }
}
