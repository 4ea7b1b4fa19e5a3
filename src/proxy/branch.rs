//! The stateless branch (RFC 3261 §16.11) and the stateless To tag (§8.2.7).
//!
//! The branch of a forwarded request is `z9hG4bKfv` + 16 hex digits of a keyed SipHash-1-3.
//! When the received top Via's branch has the magic cookie, the hash covers that branch alone;
//! otherwise it covers the top Via, the To and From tags, the Call-ID, the CSeq number and the
//! Request-URI. The method is never hashed, so a CANCEL and the ACK for a non-2xx response get
//! their INVITE's branch, and a retransmission gets the same branch as the original.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

use crate::sip::{HeaderName, Message, NameAddr, Span, Values, Via, parse_cseq};

/// The secret that keys the branch hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BranchKey {
    k0: u64,
    k1: u64,
}

impl BranchKey {
    pub(super) fn new(secret: [u8; 16]) -> BranchKey {
        let (a, b) = secret.split_at(8);
        // Both halves are exactly 8 bytes: `split_at(8)` of a 16-byte array.
        BranchKey {
            k0: u64::from_le_bytes(a.try_into().unwrap_or_default()),
            k1: u64::from_le_bytes(b.try_into().unwrap_or_default()),
        }
    }

    /// The hash identifying the transaction of `msg`, whose parsed top Via is `top`.
    pub(super) fn transaction_hash(&self, msg: &Message<'_>, top: &Via) -> u64 {
        let buf = msg.buf();
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        match top.branch.filter(|_| top.has_magic_cookie(buf)) {
            Some(branch) => {
                h.write_u8(b'b');
                write_field(&mut h, branch.of(buf));
            }
            None => {
                h.write_u8(b'v');
                write_field(&mut h, top.span.of(buf));
                write_field(&mut h, tag(msg, HeaderName::To));
                write_field(&mut h, tag(msg, HeaderName::From));
                write_field(&mut h, header_value(msg, HeaderName::CallId));
                let cseq = msg
                    .header(HeaderName::CSeq)
                    .and_then(|c| parse_cseq(buf, c.value).ok())
                    .map_or(u32::MAX, |c| c.number);
                h.write_u32(cseq);
                let ruri = match msg.start() {
                    crate::sip::StartLine::Request { uri, .. } => uri.of(buf),
                    crate::sip::StartLine::Response { .. } => &[],
                };
                write_field(&mut h, ruri);
            }
        }
        h.finish()
    }
}

impl BranchKey {
    /// A 32-bit tag binding a connection id to the branch it travels with, so that a peer
    /// cannot steer a response onto another client's connection by editing our Via.
    pub(super) fn connection_tag(&self, connection: u64, branch_hash: u64) -> u32 {
        let mut h = SipHasher13::new_with_keys(self.k1, self.k0);
        h.write_u64(connection);
        h.write_u64(branch_hash);
        h.finish() as u32
    }
}

/// A stateless To tag for a locally generated response: the same for every retransmission of
/// the request (RFC 3261 §8.2.7), and unrelated-looking to the branch.
pub(crate) fn to_tag(transaction_hash: u64) -> u64 {
    transaction_hash.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15
}

/// Length-prefixed, so that field boundaries cannot be shifted to forge a collision.
fn write_field(h: &mut SipHasher13, bytes: &[u8]) {
    h.write_usize(bytes.len());
    h.write(bytes);
}

fn header_value<'a>(msg: &Message<'a>, name: HeaderName) -> &'a [u8] {
    msg.header(name).map_or(&[], |h| msg.bytes(h.value))
}

/// The `tag` parameter of the From or To header, or nothing.
pub(crate) fn tag<'a>(msg: &Message<'a>, name: HeaderName) -> &'a [u8] {
    tag_span(msg, name).map_or(&[], |s| msg.bytes(s))
}

pub(crate) fn tag_span(msg: &Message<'_>, name: HeaderName) -> Option<Span> {
    let header = msg.header(name)?;
    let first = Values::new(msg.buf(), header.value).next()?;
    NameAddr::parse(msg.buf(), first)?.param(msg.buf(), b"tag")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(raw: &[u8]) -> u64 {
        let msg = Message::scan(raw, false).unwrap();
        let h = msg.header(HeaderName::Via).unwrap();
        let first = Values::new(raw, h.value).next().unwrap();
        let via = Via::parse(raw, first).unwrap();
        BranchKey::new([9; 16]).transaction_hash(&msg, &via)
    }

    const INVITE: &[u8] = b"INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bK74bf9\r\nTo: <sip:bob@b.example>\r\n\
From: <sip:al@a.example>;tag=9fxced76sl\r\nCall-ID: 3848276298220188511\r\nCSeq: 1 INVITE\r\n\r\n";

    #[test]
    fn cancel_and_ack_share_the_invites_branch() {
        let cancel = String::from_utf8_lossy(INVITE)
            .replace("INVITE sip", "CANCEL sip")
            .replace("1 INVITE", "1 CANCEL");
        let ack = String::from_utf8_lossy(INVITE)
            .replace("INVITE sip", "ACK sip")
            .replace("To: <sip:bob@b.example>", "To: <sip:bob@b.example>;tag=314")
            .replace("1 INVITE", "1 ACK");
        assert_eq!(hash(INVITE), hash(cancel.as_bytes()));
        assert_eq!(hash(INVITE), hash(ack.as_bytes()));
        assert_eq!(hash(INVITE), hash(INVITE), "retransmission");
    }

    #[test]
    fn a_new_branch_is_a_new_transaction() {
        let other = String::from_utf8_lossy(INVITE).replace("74bf9", "74bfa");
        assert_ne!(hash(INVITE), hash(other.as_bytes()));
    }

    #[test]
    fn without_the_cookie_the_dialog_fields_count() {
        let old = String::from_utf8_lossy(INVITE).replace("z9hG4bK74bf9", "1234");
        let base = hash(old.as_bytes());
        let cancel = old
            .replace("INVITE sip", "CANCEL sip")
            .replace("1 INVITE", "1 CANCEL");
        assert_eq!(base, hash(cancel.as_bytes()), "method is not hashed");
        for (from, to) in [
            ("CSeq: 1", "CSeq: 2"),
            ("tag=9fxced76sl", "tag=other"),
            ("3848276298220188511", "3848276298220188512"),
            ("INVITE sip:bob@", "INVITE sip:carol@"),
            ("a.example;branch", "a2.example;branch"),
        ] {
            assert_ne!(
                base,
                hash(old.replace(from, to).as_bytes()),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn keys_change_hashes() {
        let msg = Message::scan(INVITE, false).unwrap();
        let h = msg.header(HeaderName::Via).unwrap();
        let via = Via::parse(INVITE, h.value).unwrap();
        assert_ne!(
            BranchKey::new([1; 16]).transaction_hash(&msg, &via),
            BranchKey::new([2; 16]).transaction_hash(&msg, &via)
        );
        assert_ne!(to_tag(1), 1);
        let key = BranchKey::new([1; 16]);
        assert_ne!(key.connection_tag(7, 1), key.connection_tag(8, 1));
        assert_ne!(key.connection_tag(7, 1), key.connection_tag(7, 2));
    }
}
