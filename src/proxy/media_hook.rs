//! Where media anchoring meets the core: which message of an anchored call needs which NG
//! command (`crate::media::table`), the marks that carry a call's media facts through a
//! stateless proxy, the query a parked message waits for, and what a resumed message gets.
//!
//! The marks (nothing else remembers a call):
//! - our **Via** on a forwarded request of an anchored call gets `;fm=XYZ`: X `d`/`u` the
//!   request travels toward the callee / the caller, Y `o`/`n` it carried an offer or not,
//!   Z `i`/`r` it is an initial INVITE or not. Its responses read the mark back (RFC 3261
//!   §16.7: the response carries our Via, unchanged).
//! - our **Record-Route** on an anchored initial INVITE gets `;fm=o|n;ft=<From tag>`: the
//!   dialog's INVITE carried the offer or not, and the caller's tag. Every in-dialog request
//!   carries it back in its Route (RFC 3261 §12.1.1, §16.12); its From tag against `ft` tells
//!   which way it travels.

use std::net::IpAddr;

use crate::media::table::{self, Operation, RequestFacts, ResponseFacts};
use crate::media::{Anchor, Command, Fallback, Media, MediaAnswer, MediaQuery, OnFailure, Toward};
use crate::sip::{HeaderName, Message, Method, Params, Span, parse_cseq};

use super::branch::tag_span;
use super::park::Answer;
use super::route::RouteSet;

/// The media facts of a request of an anchored call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestMedia {
    pub operation: Operation,
    pub toward: Toward,
    /// An INVITE outside a dialog: the call starts here (and gets the Record-Route mark).
    pub initial: bool,
    /// This request carries an offer.
    pub offered: bool,
    /// The dialog's INVITE carried the offer (for the Record-Route mark).
    pub invite_offered: bool,
}

/// The media facts of a response to a request of an anchored call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResponseMedia {
    pub operation: Operation,
    pub toward: Toward,
}

/// Whether a message carries an SDP body (RFC 3261 §20.15, RFC 4566 §5: `application/sdp`).
/// A multipart body is not looked into.
pub(crate) fn has_sdp(msg: &Message<'_>) -> bool {
    if msg.body().is_empty() {
        return false;
    }
    msg.header(HeaderName::ContentType).is_some_and(|h| {
        let value = msg.bytes(h.value);
        value.len() >= 15 && value[..15].eq_ignore_ascii_case(b"application/sdp")
    })
}

/// The media facts of a request, or `None` when its call is not anchored. `rule` is the
/// routing policy's `media` modifier for it.
pub(crate) fn for_request(
    media: &Media,
    msg: &Message<'_>,
    routes: &RouteSet,
    rule: Option<bool>,
) -> Option<RequestMedia> {
    let method = msg.method().unwrap_or(Method::Other);
    let sdp = has_sdp(msg);
    let in_dialog = tag_span(msg, HeaderName::To).is_some();
    if !in_dialog && matches!(method, Method::Invite | Method::Cancel) {
        let anchored = match media.config.anchor {
            Anchor::Invites => rule != Some(false),
            Anchor::Rules => rule == Some(true),
        };
        if !anchored {
            return None;
        }
        let facts = RequestFacts {
            method,
            sdp,
            invite_offered: sdp,
        };
        return Some(RequestMedia {
            operation: table::for_request(facts),
            toward: Toward::Callee,
            initial: method == Method::Invite,
            offered: method == Method::Invite && sdp,
            invite_offered: sdp,
        });
    }
    let buf = msg.buf();
    let mark = routes
        .entries
        .iter()
        .filter(|e| e.removed)
        .find_map(|e| route_mark(buf, e.uri.params))?;
    let toward = match (mark.caller_tag, tag_span(msg, HeaderName::From)) {
        (Some(caller), Some(from)) if caller.of(buf) != from.of(buf) => Toward::Caller,
        _ => Toward::Callee,
    };
    let facts = RequestFacts {
        method,
        sdp,
        invite_offered: mark.invite_offered,
    };
    let operation = table::for_request(facts);
    Some(RequestMedia {
        operation,
        toward,
        initial: false,
        offered: operation == Operation::Offer,
        invite_offered: mark.invite_offered,
    })
}

/// What our Record-Route said about the dialog.
struct RouteMark {
    invite_offered: bool,
    caller_tag: Option<Span>,
}

fn route_mark(buf: &[u8], params: Span) -> Option<RouteMark> {
    let mut offered = None;
    let mut caller_tag = None;
    for param in Params::new(buf, params).map_while(Result::ok) {
        if param.is(buf, b"fm") {
            offered = Some(param.value.is_some_and(|v| v.of(buf) == b"o"));
        } else if param.is(buf, b"ft") {
            caller_tag = param.value;
        }
    }
    Some(RouteMark {
        invite_offered: offered?,
        caller_tag,
    })
}

/// The Via mark of a forwarded request: `;fm=` and three letters (see the module docs).
pub(crate) fn via_mark(m: &RequestMedia) -> &'static [u8] {
    const MARKS: [&[u8]; 8] = [
        b";fm=dnr", b";fm=dni", b";fm=dor", b";fm=doi", b";fm=unr", b";fm=uni", b";fm=uor",
        b";fm=uoi",
    ];
    let index = usize::from(m.toward == Toward::Caller) * 4
        + usize::from(m.offered) * 2
        + usize::from(m.initial);
    MARKS[index]
}

/// The parameters our Record-Route gets on an anchored initial INVITE, before the caller's
/// From tag (copied from the message).
pub(crate) fn record_route_mark(m: &RequestMedia) -> &'static [u8] {
    if m.invite_offered {
        b";fm=o;ft="
    } else {
        b";fm=n;ft="
    }
}

/// The media facts of a response whose top Via is ours with parameters `params` (what
/// follows its branch), or `None` when its request was not anchored.
pub(crate) fn for_response(msg: &Message<'_>, params: Span) -> Option<ResponseMedia> {
    let buf = msg.buf();
    let mark = Params::new(buf, params)
        .map_while(Result::ok)
        .find(|p| p.is(buf, b"fm"))?
        .value?
        .of(buf);
    let &[way, offer, initial] = mark else {
        return None;
    };
    let crate::sip::StartLine::Response { code, .. } = msg.start() else {
        return None;
    };
    let cseq = parse_cseq(buf, msg.header(HeaderName::CSeq)?.value).ok()?;
    let facts = ResponseFacts {
        code,
        method: Method::of(msg.bytes(cseq.method)),
        sdp: has_sdp(msg),
        request_offered: offer == b'o',
        initial_invite: initial == b'i',
    };
    Some(ResponseMedia {
        operation: table::for_response(facts),
        // A response travels back the way its request came.
        toward: if way == b'u' {
            Toward::Callee
        } else {
            Toward::Caller
        },
    })
}

/// The NG query for `operation` on `msg` (`request`: it is a request), or `None` when the
/// message lacks what rtpengine keys a call by (a Call-ID, the offerer's tag).
pub(crate) fn query(
    msg: &Message<'_>,
    operation: Operation,
    toward: Toward,
    source: IpAddr,
    new_call: bool,
) -> Option<MediaQuery> {
    let command = Command::of(operation)?;
    let call_id = msg.bytes(msg.header(HeaderName::CallId)?.value);
    let from = tag_span(msg, HeaderName::From).map(|s| msg.bytes(s));
    let to = tag_span(msg, HeaderName::To).map(|s| msg.bytes(s));
    let (first, second) = if table::swaps_tags(operation, msg.is_request()) {
        (to, from)
    } else {
        (from, to)
    };
    let sdp = match command {
        Command::Offer | Command::Answer => msg.bytes(msg.body()).to_vec(),
        _ => Vec::new(),
    };
    Some(MediaQuery {
        command,
        call_id: call_id.to_vec(),
        from_tag: first?.to_vec(),
        to_tag: second.map(<[u8]>::to_vec),
        sdp,
        toward,
        source,
        new_call,
    })
}

/// What a message of an anchored call gets once rtpengine answered (or did not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resumed<'a> {
    /// Forward with this SDP as the body.
    Body(&'a [u8]),
    /// Forward as it is (a delete done, or a failure that is best effort).
    Unchanged,
    /// Forward as it is, without the marks: the call goes on unanchored.
    Unanchored,
    /// Answer 503 (an initial offer failed, `on-failure = "503"`).
    Reject,
}

/// The resumed outcome for `answer`, counting a fallback. `initial_offer`: the message is
/// the offer that starts the call (its failure follows `on-failure`).
pub(crate) fn resumed<'a>(media: &Media, answer: &'a Answer, initial_offer: bool) -> Resumed<'a> {
    let failed = match answer {
        Answer::Media(a) => match a.as_ref() {
            MediaAnswer::Sdp(sdp) => return Resumed::Body(sdp),
            MediaAnswer::Done => return Resumed::Unchanged,
            MediaAnswer::Failed => true,
        },
        _ => true,
    };
    debug_assert!(failed);
    let counters = &media.counters;
    match (initial_offer, media.config.on_failure) {
        (true, OnFailure::Reject) => {
            counters.fallback(Fallback::Rejected);
            Resumed::Reject
        }
        (true, OnFailure::Unanchored) => {
            counters.fallback(Fallback::Unanchored);
            Resumed::Unanchored
        }
        (false, _) => {
            counters.fallback(Fallback::Forwarded);
            Resumed::Unchanged
        }
    }
}

#[cfg(test)]
mod flow;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaConfig;

    fn media(anchor: Anchor) -> std::sync::Arc<Media> {
        Media::new(MediaConfig {
            anchor,
            ..MediaConfig::default()
        })
    }

    fn scan(raw: &[u8]) -> Message<'_> {
        Message::scan(raw, false).expect("scans")
    }

    const INVITE: &[u8] = b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
From: <sip:a@a>;tag=caller\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn an_initial_invite_is_anchored_by_the_setting_or_its_rule() {
        let msg = scan(INVITE);
        let routes = RouteSet::default();
        let m = for_request(&media(Anchor::Invites), &msg, &routes, None).unwrap();
        assert_eq!(m.operation, Operation::Offer);
        assert_eq!(m.toward, Toward::Callee);
        assert!(m.initial && m.offered && m.invite_offered);
        assert_eq!(via_mark(&m), b";fm=doi");
        assert_eq!(record_route_mark(&m), b";fm=o;ft=");
        assert_eq!(
            for_request(&media(Anchor::Invites), &msg, &routes, Some(false)),
            None
        );
        assert_eq!(
            for_request(&media(Anchor::Rules), &msg, &routes, None),
            None
        );
        assert!(for_request(&media(Anchor::Rules), &msg, &routes, Some(true)).is_some());
    }

    #[test]
    fn in_dialog_requests_read_our_route_mark() {
        // A BYE from the callee: its From tag is not the caller's.
        let raw = b"BYE sip:a@a SIP/2.0\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
Route: <sip:127.0.0.1;lr;fm=n;ft=caller>\r\nFrom: <sip:b@h>;tag=callee\r\n\
To: <sip:a@a>;tag=caller\r\nCall-ID: c1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
        let msg = scan(raw);
        let mut routes = RouteSet::collect(&msg).unwrap();
        routes.entries[0].removed = true;
        let m = for_request(&media(Anchor::Invites), &msg, &routes, None).unwrap();
        assert_eq!(m.operation, Operation::Delete);
        assert_eq!(m.toward, Toward::Caller);
        assert!(!m.invite_offered);
        // Not our Route (kept): not anchored.
        routes.entries[0].removed = false;
        assert_eq!(
            for_request(&media(Anchor::Invites), &msg, &routes, None),
            None
        );
        let q = query(
            &msg,
            Operation::Delete,
            Toward::Caller,
            [127, 0, 0, 1].into(),
            false,
        )
        .unwrap();
        assert_eq!(q.command, Command::Delete);
        assert_eq!(q.from_tag, b"callee");
        assert_eq!(q.to_tag.as_deref(), Some(&b"caller"[..]));
        assert!(q.sdp.is_empty());
    }

    #[test]
    fn responses_read_our_via_mark() {
        // RFC 3264 late offer: the INVITE had none (`n`), the 200 carries the offer, and the
        // offerer's tag is the callee's (the To tag).
        let raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKfv1;fm=dni\r\n\
From: <sip:a@a>;tag=caller\r\nTo: <sip:b@h>;tag=callee\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";
        let msg = scan(raw);
        let via = msg.header(HeaderName::Via).unwrap().value;
        let mark = raw.windows(4).position(|w| w == b";fm=").unwrap();
        let params = Span::new(mark, via.end());
        let m = for_response(&msg, params).unwrap();
        assert_eq!(m.operation, Operation::Offer);
        assert_eq!(m.toward, Toward::Caller);
        let q = query(&msg, m.operation, m.toward, [127, 0, 0, 1].into(), false).unwrap();
        assert_eq!(q.from_tag, b"callee");
        assert_eq!(q.to_tag.as_deref(), Some(&b"caller"[..]));
        assert_eq!(q.sdp, b"v=0\n");
        // No mark: not anchored.
        assert_eq!(for_response(&msg, Span::new(via.end(), via.end())), None);
    }

    #[test]
    fn sdp_is_recognised_by_content_type() {
        assert!(has_sdp(&scan(INVITE)));
        let raw = b"MESSAGE sip:b@h SIP/2.0\r\nContent-Type: text/plain\r\n\r\nv=0\n";
        assert!(!has_sdp(&scan(raw)));
        let raw = b"INVITE sip:b@h SIP/2.0\r\nContent-Type: APPLICATION/SDP\r\n\r\n";
        assert!(!has_sdp(&scan(raw)));
    }

    #[test]
    fn failures_follow_on_failure_only_for_the_initial_offer() {
        let m = Media::new(MediaConfig::default());
        let failed = Answer::Media(Box::new(MediaAnswer::Failed));
        assert_eq!(resumed(&m, &failed, true), Resumed::Reject);
        assert_eq!(resumed(&m, &Answer::TimedOut, false), Resumed::Unchanged);
        let sdp = Answer::Media(Box::new(MediaAnswer::Sdp(b"v=0".to_vec())));
        assert_eq!(resumed(&m, &sdp, true), Resumed::Body(b"v=0"));
        let u = Media::new(MediaConfig {
            on_failure: OnFailure::Unanchored,
            ..MediaConfig::default()
        });
        assert_eq!(resumed(&u, &Answer::TimedOut, true), Resumed::Unanchored);
        let s = m.counters.snapshot();
        let want = [("503", 1), ("unanchored", 0), ("forwarded", 1)];
        assert_eq!(s.fallbacks, want.map(|(f, n)| (f.to_string(), n)));
    }
}
