//! The offer/answer decision table: which NG command, if any, a SIP message of an anchored
//! call needs (RFC 3264 over RFC 3261 and RFC 3262, RFC 3311).
//!
//! A stateless proxy does not remember what the INVITE carried, so the facts a later message
//! needs travel with the dialog: in our Via on the request (whether it carried an offer, and
//! whether it was an initial INVITE; the response reads it back) and in our Record-Route
//! (whether the dialog's INVITE carried the offer, and the caller's From tag; every
//! in-dialog request reads it back from its Route). See `crate::proxy` (`media_hook`).

use crate::sip::Method;

/// What the message asks of rtpengine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    None,
    Offer,
    Answer,
    Delete,
}

/// A request of an anchored call (initial, or following our Record-Route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub method: Method,
    /// It carries an SDP body.
    pub sdp: bool,
    /// The dialog's INVITE carried the offer (RFC 3264 early offer); `true` for an initial
    /// INVITE itself.
    pub invite_offered: bool,
}

/// A response to a request of an anchored call (our Via says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseFacts {
    pub code: u16,
    /// The method of its CSeq.
    pub method: Method,
    pub sdp: bool,
    /// Its request carried an offer (we sent `offer` for it).
    pub request_offered: bool,
    /// Its request was an INVITE outside a dialog.
    pub initial_invite: bool,
}

/// The command a request needs.
pub fn for_request(facts: RequestFacts) -> Operation {
    use Operation::*;
    match (facts.method, facts.sdp) {
        // RFC 3264 §4 / RFC 3261 §13.2.1: an INVITE (initial or re-INVITE) with a body
        // carries an offer; one without leaves the offer to the 2xx.
        (Method::Invite, true) => Offer,
        // RFC 3311 §5.1: an UPDATE with a body is an offer.
        (Method::Update, true) => Offer,
        // RFC 3262 §5: when the INVITE had no offer, the first reliable provisional carries
        // it and the PRACK the answer; otherwise a PRACK body is a new offer.
        (Method::Prack, true) if !facts.invite_offered => Answer,
        (Method::Prack, true) => Offer,
        // RFC 3261 §13.2.1: an ACK with a body carries the answer to an offer in the 2xx.
        (Method::Ack, true) => Answer,
        // RFC 3261 §15: BYE ends the session; §9: CANCEL ends an INVITE still pending.
        (Method::Bye | Method::Cancel, _) => Delete,
        _ => None,
    }
}

/// The command a response needs.
pub fn for_response(facts: ResponseFacts) -> Operation {
    use Operation::*;
    let code = facts.code;
    match facts.method {
        // RFC 3261 §13.2.1: the answer in a reliable 1xx or the 2xx when the INVITE offered;
        // otherwise the offer is there (and the answer comes in the ACK or PRACK). A 183 with
        // early media is treated the same (rtpengine accepts the same answer twice).
        Method::Invite if (101..300).contains(&code) && facts.sdp => {
            if facts.request_offered {
                Answer
            } else {
                Offer
            }
        }
        // RFC 3261 §9.2: a 487 answers an INVITE its CANCEL ended, and the CANCEL (which
        // takes the INVITE's path, §16.10) deleted the session already: no second delete.
        Method::Invite if code == 487 => None,
        // RFC 3261 §13.3.1.4, §15: a final non-2xx to an initial INVITE ends the call.
        Method::Invite if code >= 300 && facts.initial_invite => Delete,
        // RFC 3311 §5.2, RFC 3262 §5: the 2xx of an UPDATE or PRACK that offered answers it.
        Method::Update | Method::Prack
            if (200..300).contains(&code) && facts.sdp && facts.request_offered =>
        {
            Answer
        }
        _ => None,
    }
}

/// Whether the NG command's tags swap the SIP From and To tags: rtpengine wants the
/// offerer's tag as `from-tag`, so an answer in a request (ACK, PRACK: from the offer's
/// recipient) or an offer in a response (from the callee) swaps them.
pub fn swaps_tags(operation: Operation, request: bool) -> bool {
    matches!(
        (operation, request),
        (Operation::Answer, true) | (Operation::Offer, false)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;
    use Operation::{Answer as A, Delete as D, None as N, Offer as O};

    #[test]
    fn requests() {
        // (method, sdp, invite offered) -> command
        let table = [
            (Invite, true, true, O),
            (Invite, false, true, N),
            (Update, true, true, O),
            (Update, false, true, N),
            (Prack, true, false, A),
            (Prack, true, true, O),
            (Prack, false, false, N),
            (Ack, true, false, A),
            (Ack, false, true, N),
            (Bye, false, true, D),
            (Bye, true, true, D),
            (Cancel, false, true, D),
            (Options, true, true, N),
            (Info, true, true, N),
            (Message, true, true, N),
            (Register, false, true, N),
        ];
        for (method, sdp, invite_offered, want) in table {
            let facts = RequestFacts {
                method,
                sdp,
                invite_offered,
            };
            assert_eq!(for_request(facts), want, "{facts:?}");
        }
    }

    #[test]
    fn responses() {
        // (code, method, sdp, request offered, initial invite) -> command
        let table = [
            (100, Invite, false, true, true, N),
            (180, Invite, false, true, true, N),
            (183, Invite, true, true, true, A),
            (183, Invite, true, false, true, O),
            (200, Invite, true, true, true, A),
            (200, Invite, true, false, true, O),
            (200, Invite, true, true, false, A),
            (200, Invite, false, true, true, N),
            (486, Invite, false, true, true, D),
            (487, Invite, false, true, true, N),
            (302, Invite, false, false, true, D),
            (491, Invite, false, true, false, N),
            (200, Update, true, true, false, A),
            (200, Update, true, false, false, N),
            (200, Prack, true, true, false, A),
            (200, Bye, false, false, false, N),
            (200, Cancel, false, false, false, N),
            (200, Options, true, false, false, N),
        ];
        for (code, method, sdp, request_offered, initial_invite, want) in table {
            let facts = ResponseFacts {
                code,
                method,
                sdp,
                request_offered,
                initial_invite,
            };
            assert_eq!(for_response(facts), want, "{facts:?}");
        }
    }

    #[test]
    fn the_offerer_tag_comes_first() {
        assert!(!swaps_tags(O, true));
        assert!(swaps_tags(A, true));
        assert!(swaps_tags(O, false));
        assert!(!swaps_tags(A, false));
        assert!(!swaps_tags(D, true));
    }
}
