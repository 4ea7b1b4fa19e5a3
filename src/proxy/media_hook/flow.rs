//! A call through an anchoring proxy in memory: which messages park for which NG command,
//! what the forwarded bytes look like once rtpengine answered (its SDP in place of the body,
//! Content-Length fixed, our marks in Via and Record-Route), and every fallback.

use std::sync::Arc;

use crate::media::{Command, Media, MediaAnswer, MediaConfig, MediaQuery, OnFailure, Toward};
use crate::proxy::test_support::*;

fn anchoring(on_failure: OnFailure) -> (Core, Arc<Media>) {
    let media = Media::new(MediaConfig {
        rtpengine: vec!["127.0.0.1:2223".parse().unwrap()],
        on_failure,
        ..MediaConfig::default()
    });
    let shared = Arc::clone(&media);
    let core = proxy_with(|c| {
        c.record_route = true;
        c.media = Some(shared);
    });
    (core, media)
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n";
const RELAYED: &str = "v=0\r\no=- 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\n\
t=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";

fn with_sdp(head: &str) -> String {
    let head = head.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
            SDP.len()
        ),
    );
    format!("{head}{SDP}")
}

fn parked_query(p: &Core, r: &Handled) -> (Ticket, MediaQuery) {
    let Outcome::Park(ticket) = r.outcome else {
        panic!("not parked: {:?}\n{}", r.outcome, r.text);
    };
    match p.state.borrow().parking.query(ticket) {
        Some(Query::Media(q)) => (ticket, *q),
        other => panic!("{other:?}"),
    }
}

fn resume(p: &Core, ticket: Ticket, answer: Answer) -> Handled {
    let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
    let mut state = p.state.borrow_mut();
    let mut ctx = Context::new(&p.tables, &mut state);
    let outcome = p
        .proxy
        .resume(ticket, answer, &mut ctx, &mut out)
        .expect("parked");
    let len = match outcome {
        Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => t.len,
        Outcome::Drop(_) | Outcome::Park(_) => 0,
    };
    Message::scan(&out[..len], false).expect("output re-scans");
    Handled {
        outcome,
        text: mask(&String::from_utf8_lossy(&out[..len])),
    }
}

fn sdp(body: &str) -> Answer {
    Answer::Media(Box::new(MediaAnswer::Sdp(body.as_bytes().to_vec())))
}

fn body_of(text: &str) -> &str {
    text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn content_length(text: &str) -> usize {
    text.lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Content-Length")
}

const INVITE: &str = "INVITE sip:bob@10.0.0.2:5060";

#[test]
fn an_anchored_call_parks_its_offer_answer_and_bye() {
    let (p, media) = anchoring(OnFailure::Reject);
    // RFC 3264 §5: the INVITE's offer.
    let invite = with_sdp(&request(INVITE, ""));
    let r = run(&p, &invite, "10.0.0.1:5060");
    let (ticket, q) = parked_query(&p, &r);
    assert_eq!(q.command, Command::Offer);
    assert_eq!(q.call_id, b"a84b4c76e66710");
    assert_eq!(q.from_tag, b"1928301774");
    assert_eq!(q.to_tag, None);
    assert_eq!(q.sdp, SDP.as_bytes());
    assert_eq!(q.toward, Toward::Callee);
    assert_eq!(q.source, "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
    assert!(q.new_call);
    // A retransmission while the first copy waits is absorbed.
    let again = run(&p, &invite, "10.0.0.1:5060");
    assert_eq!(dropped(&again), DropReason::ParkedRetransmission);
    let r = resume(&p, ticket, sdp(RELAYED));
    assert_eq!(forwarded_to(&r), "10.0.0.2:5060".parse().unwrap());
    assert_eq!(body_of(&r.text), RELAYED);
    assert_eq!(content_length(&r.text), RELAYED.len());
    assert_eq!(r.text.matches("Content-Length").count(), 1, "{}", r.text);
    assert!(
        r.text.starts_with(
            "INVITE sip:bob@10.0.0.2:5060 SIP/2.0\r\n\
Record-Route: <sip:192.0.2.10:5060;lr;fm=o;ft=1928301774>\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfvHASH;fm=doi\r\n"
        ),
        "{}",
        r.text
    );

    // The callee's 200 carries the answer (the INVITE offered: `o` in our Via).
    let via = format!(
        "Via: {}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n",
        our_branch_via(&invite).replace(";fm=dni", ";fm=doi")
    );
    let r = run(&p, &with_sdp(&response("200 OK", &via)), "10.0.0.2:5060");
    let (ticket, q) = parked_query(&p, &r);
    assert_eq!(q.command, Command::Answer);
    assert_eq!(q.from_tag, b"1928301774");
    assert_eq!(q.to_tag.as_deref(), Some(&b"a6c85cf"[..]));
    assert_eq!(q.toward, Toward::Caller);
    let r = resume(&p, ticket, sdp(RELAYED));
    assert_eq!(forwarded_to(&r), "10.0.0.1:5060".parse().unwrap());
    assert_eq!(body_of(&r.text), RELAYED);
    assert_eq!(content_length(&r.text), RELAYED.len());

    // The callee's BYE follows our Record-Route: a delete, best effort.
    let bye = "BYE sip:alice@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKbye\r\n\
Route: <sip:192.0.2.10:5060;lr;fm=o;ft=1928301774>\r\nMax-Forwards: 70\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
To: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    let r = run(&p, bye, "10.0.0.2:5060");
    let (ticket, q) = parked_query(&p, &r);
    assert_eq!(q.command, Command::Delete);
    assert_eq!(q.from_tag, b"a6c85cf");
    assert_eq!(q.toward, Toward::Caller);
    // rtpengine down: the BYE still goes on, counted.
    let r = resume(&p, ticket, Answer::TimedOut);
    assert_eq!(forwarded_to(&r), "10.0.0.1:5060".parse().unwrap());
    assert!(r.text.contains(";fm=unr\r\n"), "{}", r.text);
    let s = media.counters.snapshot();
    let want = [("503", 0), ("unanchored", 0), ("forwarded", 1)];
    assert_eq!(s.fallbacks, want.map(|(f, n)| (f.to_string(), n)));
}

#[test]
fn a_late_offer_comes_in_the_200_and_its_answer_in_the_ack() {
    let (p, _) = anchoring(OnFailure::Reject);
    let invite = request(INVITE, "");
    let r = run(&p, &invite, "10.0.0.1:5060");
    // RFC 3264: no offer in the INVITE, nothing to ask yet; the marks still go.
    assert!(r.text.contains(";fm=dni\r\n"), "{}", r.text);
    assert!(r.text.contains(";lr;fm=n;ft=1928301774>"), "{}", r.text);
    let via = format!("Via: {}\r\n", our_branch_via(&invite));
    let ok = with_sdp(&response(
        "200 OK",
        &format!("{via}Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"),
    ));
    let r = run(&p, &ok, "10.0.0.2:5060");
    let (_, q) = parked_query(&p, &r);
    assert_eq!(q.command, Command::Offer);
    // The offerer is the callee: its tag first.
    assert_eq!(q.from_tag, b"a6c85cf");
    let ack = with_sdp(
        "ACK sip:alice@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack\r\n\
Route: <sip:192.0.2.10:5060;lr;fm=n;ft=1928301774>\r\nMax-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 314159 ACK\r\nContent-Length: 0\r\n\r\n",
    );
    let r = run(&p, &ack, "10.0.0.1:5060");
    let (_, q) = parked_query(&p, &r);
    assert_eq!(q.command, Command::Answer);
    assert_eq!(q.from_tag, b"a6c85cf");
    assert_eq!(q.to_tag.as_deref(), Some(&b"1928301774"[..]));
    assert_eq!(q.toward, Toward::Callee);
}

fn our_branch_via(invite: &str) -> String {
    let (_, text) = handle_on(&proxy(), invite, "10.0.0.1:5060", Transport::Udp, None);
    let line = text
        .lines()
        .find(|l| l.contains("z9hG4bKfv"))
        .expect("our Via");
    format!("{};fm=dni", line.trim_start_matches("Via: "))
}

#[test]
fn a_failed_initial_offer_gets_503_or_goes_unanchored() {
    let (p, media) = anchoring(OnFailure::Reject);
    let invite = with_sdp(&request(INVITE, ""));
    let (ticket, _) = parked_query(&p, &run(&p, &invite, "10.0.0.1:5060"));
    let r = resume(&p, ticket, Answer::Media(Box::new(MediaAnswer::Failed)));
    assert_eq!(replied(&r).0, 503);
    assert!(
        r.text
            .starts_with("SIP/2.0 503 Media Relay Unavailable\r\n")
    );
    assert_eq!(media.counters.snapshot().fallbacks[0], ("503".into(), 1));

    let (p, media) = anchoring(OnFailure::Unanchored);
    let (ticket, _) = parked_query(&p, &run(&p, &invite, "10.0.0.1:5060"));
    let r = resume(&p, ticket, Answer::TimedOut);
    assert_eq!(forwarded_to(&r), "10.0.0.2:5060".parse().unwrap());
    assert_eq!(body_of(&r.text), SDP);
    assert!(
        !r.text.contains("fm="),
        "no marks on an unanchored call: {}",
        r.text
    );
    assert_eq!(
        media.counters.snapshot().fallbacks[1],
        ("unanchored".into(), 1)
    );
}

#[test]
fn a_final_failure_to_the_initial_invite_deletes_and_a_200_retransmission_is_absorbed() {
    let (p, _) = anchoring(OnFailure::Reject);
    let via = format!(
        "Via: {}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n",
        our_branch_via(&request(INVITE, "")).replace(";fm=dni", ";fm=doi")
    );
    let busy = response("486 Busy Here", &via);
    let (_, q) = parked_query(&p, &run(&p, &busy, "10.0.0.2:5060"));
    assert_eq!(q.command, Command::Delete);
    let ok = with_sdp(&response("200 OK", &via));
    let (ticket, q) = parked_query(&p, &run(&p, &ok, "10.0.0.2:5060"));
    assert_eq!(q.command, Command::Answer);
    assert_eq!(
        dropped(&run(&p, &ok, "10.0.0.2:5060")),
        DropReason::ParkedRetransmission
    );
    // rtpengine refused the answer: the 200 still goes on, unchanged.
    let r = resume(&p, ticket, Answer::Media(Box::new(MediaAnswer::Failed)));
    assert_eq!(body_of(&r.text), SDP);
    // A 180 without SDP needs nothing.
    let ringing = response("180 Ringing", &via);
    assert_eq!(
        forwarded_to(&run(&p, &ringing, "10.0.0.2:5060")),
        "10.0.0.1:5060".parse().unwrap()
    );
}

#[test]
fn calls_that_are_not_anchored_never_park() {
    let (p, _) = anchoring(OnFailure::Reject);
    for raw in [
        request("OPTIONS sip:bob@10.0.0.2:5060", ""),
        request("MESSAGE sip:bob@10.0.0.2:5060", ""),
        // In a dialog that did not come through our Record-Route.
        with_sdp(&request(INVITE, "").replace(
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: Bob <sip:bob@biloxi.example.com>;tag=x",
        )),
    ] {
        let r = run(&p, &raw, "10.0.0.1:5060");
        assert_eq!(forwarded_to(&r), "10.0.0.2:5060".parse().unwrap(), "{raw}");
        assert!(!r.text.contains("fm="), "{}", r.text);
    }
    // A 200 to a request that was not anchored (no mark in our Via).
    let via = format!(
        "Via: {}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n",
        our_branch_via(&request(INVITE, "")).replace(";fm=dni", "")
    );
    let r = run(&p, &with_sdp(&response("200 OK", &via)), "10.0.0.2:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.1:5060".parse().unwrap());
}

/// The routing policy's `media` modifier decides under `anchor = "rules"`, and can exclude a
/// call under `anchor = "invites"`.
#[test]
fn a_rule_anchors_or_excludes_a_call() {
    use crate::media::Anchor;
    use crate::policy::{CompileOptions, Engine, PolicyHandle, compile_str};
    let with_policy = |anchor: Anchor, rules: &str| {
        let media = Media::new(MediaConfig {
            rtpengine: vec!["127.0.0.1:2223".parse().unwrap()],
            anchor,
            ..MediaConfig::default()
        });
        let p = proxy_with(|c| {
            c.record_route = true;
            c.media = Some(media);
        });
        let path = std::path::Path::new("media.toml");
        let policy = compile_str(rules, path, &CompileOptions::new(1)).expect("compiles");
        p.state.borrow_mut().router = Some(Box::new(Engine::new(PolicyHandle::new(policy, 1), 0)));
        p
    };
    let invite = with_sdp(&request(INVITE, ""));
    let anchored = "[[route]]\nmethod = \"INVITE\"\naction = \"proxy\"\nmedia = true\n";
    let p = with_policy(Anchor::Rules, anchored);
    assert!(matches!(
        run(&p, &invite, "10.0.0.1:5060").outcome,
        Outcome::Park(_)
    ));
    let plain = "[[route]]\nmethod = \"INVITE\"\naction = \"proxy\"\n";
    let p = with_policy(Anchor::Rules, plain);
    assert_eq!(
        forwarded_to(&run(&p, &invite, "10.0.0.1:5060")),
        "10.0.0.2:5060".parse().unwrap()
    );
    let excluded = "[[route]]\nmethod = \"INVITE\"\naction = \"proxy\"\nmedia = false\n";
    let p = with_policy(Anchor::Invites, excluded);
    let r = run(&p, &invite, "10.0.0.1:5060");
    assert_eq!(forwarded_to(&r), "10.0.0.2:5060".parse().unwrap());
    assert!(!r.text.contains("fm="), "{}", r.text);
    // `media` is a proxy modifier: refused on other actions.
    let wrong = "[[route]]\naction = \"reject\"\nmedia = true\n";
    assert!(
        compile_str(
            wrong,
            std::path::Path::new("m.toml"),
            &CompileOptions::new(1)
        )
        .is_err()
    );
}
