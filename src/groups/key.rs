//! The key `hash` and `priority` select by, read from a request without allocating.
//!
//! Hashed with SipHash-1-3 under a fixed key: every instance of ferrovia (and every restart)
//! maps the same key to the same destination, so a farm of proxies behind one address agrees.
//! A key the request lacks (no user part in the From URI, say) falls back to the Call-ID,
//! which every request has (RFC 3261 §8.1.1.4; the core answers 400 without it).

use std::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher13;

use crate::sip::{HeaderName, Message, NameAddr, SipUri, Span, StartLine};

use super::config::HashKey;

const FIXED_KEY: [u8; 16] = *b"ferrovia-groups!";

fn hash_bytes(bytes: &[u8]) -> u64 {
    // One pass over the bytes, no tail buffer: the same value as `write` then `finish`.
    SipHasher13::new_with_key(&FIXED_KEY).hash(bytes)
}

/// A stable hash of a destination's URI: its rendezvous seed.
pub(crate) fn seed(uri: &str) -> u64 {
    hash_bytes(uri.as_bytes())
}

/// The hash of `key` in `msg` (which came from `source`).
pub(crate) fn key_hash(msg: &Message<'_>, key: HashKey, source: SocketAddr) -> u64 {
    let user = match key {
        HashKey::CallId => None,
        HashKey::SourceIp => return ip_hash(source.ip()),
        HashKey::FromUser => header_user(msg, HeaderName::From),
        HashKey::ToUser => header_user(msg, HeaderName::To),
        HashKey::RequestUriUser => match msg.start() {
            StartLine::Request { uri, .. } => uri_user(msg.buf(), uri),
            StartLine::Response { .. } => None,
        },
    };
    match user {
        Some(user) => hash_bytes(user),
        None => hash_bytes(call_id(msg)),
    }
}

fn ip_hash(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => hash_bytes(&v6.octets()),
    }
}

fn call_id<'a>(msg: &Message<'a>) -> &'a [u8] {
    msg.header(HeaderName::CallId)
        .map_or(&[][..], |h| msg.bytes(h.value))
}

/// The user part of the URI in the first `name` header (From or To).
fn header_user<'a>(msg: &Message<'a>, name: HeaderName) -> Option<&'a [u8]> {
    let header = msg.header(name)?;
    let addr = NameAddr::parse(msg.buf(), header.value)?;
    uri_user(msg.buf(), addr.uri)
}

fn uri_user(buf: &[u8], uri: Span) -> Option<&[u8]> {
    let uri = SipUri::parse(buf, uri).ok()?;
    // `user[:password]`: the password is not part of who the user is.
    let user = uri.user?.of(buf);
    let user = user.split(|&b| b == b':').next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(raw: &[u8]) -> Message<'_> {
        Message::scan(raw, false).unwrap()
    }

    const INVITE: &[u8] = b"INVITE sip:+4930123@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: \"A\" <sip:alice:pw@a.example>;tag=1\r\n\
To: <sip:bob@b.example>\r\nCall-ID: abc@10.0.0.1\r\nCSeq: 1 INVITE\r\n\r\n";
    const CANCEL: &[u8] = b"CANCEL sip:+4930123@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: \"A\" <sip:alice@a.example>;tag=1\r\n\
To: <sip:bob@b.example>\r\ni: abc@10.0.0.1\r\nCSeq: 1 CANCEL\r\n\r\n";

    #[test]
    fn keys_are_read_from_their_fields() {
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let m = msg(INVITE);
        assert_eq!(
            key_hash(&m, HashKey::CallId, src),
            hash_bytes(b"abc@10.0.0.1")
        );
        assert_eq!(key_hash(&m, HashKey::FromUser, src), hash_bytes(b"alice"));
        assert_eq!(key_hash(&m, HashKey::ToUser, src), hash_bytes(b"bob"));
        assert_eq!(
            key_hash(&m, HashKey::RequestUriUser, src),
            hash_bytes(b"+4930123")
        );
        let other: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        assert_eq!(
            key_hash(&m, HashKey::SourceIp, src),
            key_hash(&m, HashKey::SourceIp, other),
            "the port is not part of the source-ip key"
        );
    }

    #[test]
    fn the_one_pass_hash_is_the_streaming_one() {
        use std::hash::Hasher;
        let text = b"a Call-ID of some length, 0123456789@host.example.net";
        for len in 0..=text.len() {
            let mut h = SipHasher13::new_with_key(&FIXED_KEY);
            h.write(&text[..len]);
            assert_eq!(hash_bytes(&text[..len]), h.finish(), "{len} bytes");
        }
    }

    #[test]
    fn a_cancel_hashes_like_its_invite() {
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        for key in [
            HashKey::CallId,
            HashKey::FromUser,
            HashKey::ToUser,
            HashKey::RequestUriUser,
        ] {
            assert_eq!(
                key_hash(&msg(INVITE), key, src),
                key_hash(&msg(CANCEL), key, src),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_missing_user_falls_back_to_the_call_id() {
        let raw = b"OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a.example>;tag=1\r\nTo: <sip:b.example>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let m = msg(raw);
        for key in [HashKey::FromUser, HashKey::ToUser, HashKey::RequestUriUser] {
            assert_eq!(key_hash(&m, key, src), hash_bytes(b"c1"));
        }
    }
}
