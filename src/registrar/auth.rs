//! Digest authentication of requests (RFC 3261 §22; RFC 2617; RFC 8760).
//!
//! A REGISTER is challenged with 401 and WWW-Authenticate and answers with Authorization
//! (§22.2); any other request with 407 and Proxy-Authenticate, answered with
//! Proxy-Authorization (§22.3). Nonces are stateless ([`super::nonce`]); the HA1 comes from
//! the users file; the response is compared in constant time. The authenticated user must be
//! the request's own: the To user for a REGISTER (§10.3 step 4: who may change an AoR), the
//! From user otherwise (configurable). Every outcome has a named, counted reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use smallvec::SmallVec;
use subtle::ConstantTimeEq;

use crate::sip::{Message, SipUri, Span, StartLine};

use super::answer::{Answer, Extra};
use super::credentials::Credentials;
use super::digest::{A2, Algorithm, Hex, Qop};
use super::fields;
use super::nonce::{NonceCheck, Nonces};
use super::replay::NonceCounts;
use super::users::Users;

/// Which challenge: 401 for a registrar, 407 for a proxy (RFC 3261 §22.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// 401, WWW-Authenticate, answered in Authorization.
    Www,
    /// 407, Proxy-Authenticate, answered in Proxy-Authorization.
    Proxy,
}

impl Challenge {
    pub fn code(self) -> u16 {
        match self {
            Challenge::Www => 401,
            Challenge::Proxy => 407,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Challenge::Www => "Unauthorized",
            Challenge::Proxy => "Proxy Authentication Required",
        }
    }

    pub(crate) fn challenge_header(self) -> &'static [u8] {
        match self {
            Challenge::Www => b"WWW-Authenticate",
            Challenge::Proxy => b"Proxy-Authenticate",
        }
    }

    fn credentials_header(self) -> &'static [u8] {
        match self {
            Challenge::Www => b"authorization",
            Challenge::Proxy => b"proxy-authorization",
        }
    }
}

macro_rules! auth_results {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// How one authentication ended. Each one is a counter; [`AuthResult::failed`] ones
        /// are the failures a ban list may act on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuthResult {
            $($(#[$doc])* $variant,)+
        }

        impl AuthResult {
            pub const ALL: &'static [AuthResult] = &[$(AuthResult::$variant,)+];

            pub fn name(self) -> &'static str {
                match self {
                    $(AuthResult::$variant => $name,)+
                }
            }
        }
    };
}

auth_results! {
    /// The credentials are good.
    Ok => "ok",
    /// No credentials for our realm: challenged.
    Missing => "missing",
    /// Our nonce, but too old: challenged with `stale=true`.
    Stale => "stale_nonce",
    /// A nonce we did not mint (or for another client): challenged again.
    BadNonce => "bad_nonce",
    /// An algorithm we do not offer: challenged again.
    BadAlgorithm => "bad_algorithm",
    /// Credentials missing a field, or a qop we do not offer: 403.
    Malformed => "malformed",
    /// No such user: 403.
    UnknownUser => "unknown_user",
    /// The wrong password: 403.
    BadResponse => "bad_response",
    /// A good password for another user than the request's own: 403.
    UserMismatch => "user_mismatch",
    /// The digest `uri` is not the Request-URI (RFC 2617 §3.2.2.5): 400.
    UriMismatch => "uri_mismatch",
    /// A `(nonce, nc)` this node accepted before, outside a retransmission (RFC 2617
    /// §3.2.2): challenged again with `stale=true`.
    Replayed => "replayed_nonce",
}

impl AuthResult {
    pub const COUNT: usize = Self::ALL.len();

    /// True for the results that refuse the request (403).
    pub fn failed(self) -> bool {
        matches!(
            self,
            AuthResult::Malformed
                | AuthResult::UnknownUser
                | AuthResult::BadResponse
                | AuthResult::UserMismatch
        )
    }
}

/// What verification decided.
#[derive(Debug)]
pub enum Verified {
    /// Good credentials; `lines` are the header lines that carried credentials for our
    /// realm (removed before the request is forwarded).
    Ok { lines: SmallVec<[Span; 2]> },
    /// Answer with this: a challenge or a 403.
    Refuse(Answer, AuthResult),
}

/// The authenticator: realm, offered algorithms, users, nonces.
#[derive(Debug)]
pub struct Auth {
    realm: std::sync::Arc<str>,
    algorithms: Vec<Algorithm>,
    users: Users,
    nonces: Nonces,
    match_user: bool,
    /// The nonce counts this node accepted (replay detection).
    counts: NonceCounts,
}

impl Auth {
    /// `algorithms` in the order offered (at least one); `match_user`: the authenticated
    /// user must be the From user of a non-REGISTER request.
    pub fn new(algorithms: Vec<Algorithm>, users: Users, nonces: Nonces, match_user: bool) -> Auth {
        Auth {
            realm: users.realm().into(),
            algorithms,
            users,
            nonces,
            match_user,
            counts: NonceCounts::new(random_key()),
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub fn users(&self) -> &Users {
        &self.users
    }

    /// A 401 or 407 with a fresh nonce for `client`.
    pub fn challenge(&self, kind: Challenge, client: IpAddr, now: Instant, stale: bool) -> Answer {
        Answer {
            code: kind.code(),
            reason: kind.reason(),
            extra: Extra::Challenge {
                realm: self.realm.clone(),
                algorithms: [
                    self.algorithms.first().copied(),
                    self.algorithms.get(1).copied(),
                ],
                kind,
                nonce: self.nonces.mint(now, self.realm.as_bytes(), client),
                stale,
            },
        }
    }

    /// Checks the request's credentials for our realm. `owner` is the user the request
    /// speaks for (To user of a REGISTER, From user otherwise); `None` when it has none.
    pub fn verify(
        &self,
        msg: &Message<'_>,
        kind: Challenge,
        owner: Option<&[u8]>,
        client: IpAddr,
        now: Instant,
    ) -> Verified {
        self.verify_at(msg, kind, owner, client, None, now)
    }

    /// [`Auth::verify`] for a request that arrived on listener `local`: a digest `uri` naming
    /// that listener (`sip:IP:PORT`, no user) is taken as naming the request's resource too —
    /// some clients (sipp, phones set up with an outbound proxy) answer with the address they
    /// sent to rather than the Request-URI.
    pub fn verify_at(
        &self,
        msg: &Message<'_>,
        kind: Challenge,
        owner: Option<&[u8]>,
        client: IpAddr,
        local: Option<SocketAddr>,
        now: Instant,
    ) -> Verified {
        let buf = msg.buf();
        let mut lines = SmallVec::new();
        let mut ours = None;
        for h in fields::named(msg, kind.credentials_header()) {
            let Some(c) = Credentials::parse(buf, h.value) else {
                continue;
            };
            if c.realm.map(|r| r.of(buf)) == Some(self.realm.as_bytes()) {
                lines.push(h.line);
                ours.get_or_insert(c);
            }
        }
        let Some(creds) = ours else {
            return self.refuse(kind, client, now, AuthResult::Missing);
        };
        match self.check(msg, &creds, kind, owner, (client, local), now) {
            AuthResult::Ok => Verified::Ok { lines },
            result => self.refuse(kind, client, now, result),
        }
    }

    fn refuse(
        &self,
        kind: Challenge,
        client: IpAddr,
        now: Instant,
        result: AuthResult,
    ) -> Verified {
        let answer = if result == AuthResult::UriMismatch {
            Answer::plain(400, "Bad Request")
        } else if result.failed() {
            Answer::plain(403, "Forbidden")
        } else {
            let stale = matches!(result, AuthResult::Stale | AuthResult::Replayed);
            self.challenge(kind, client, now, stale)
        };
        Verified::Refuse(answer, result)
    }

    fn check(
        &self,
        msg: &Message<'_>,
        c: &Credentials,
        kind: Challenge,
        owner: Option<&[u8]>,
        (client, local): (IpAddr, Option<SocketAddr>),
        now: Instant,
    ) -> AuthResult {
        let buf = msg.buf();
        let get = |s: Option<Span>| s.map(|s| s.of(buf));
        // RFC 2617 §3.2.2: without `algorithm`, MD5.
        let algorithm = match get(c.algorithm) {
            None => Some(Algorithm::Md5),
            Some(token) => Algorithm::parse(token),
        };
        let Some(algorithm) = algorithm.filter(|a| self.algorithms.contains(a)) else {
            return AuthResult::BadAlgorithm;
        };
        let (Some(user), Some(nonce), Some(uri_span), Some(response)) =
            (get(c.username), get(c.nonce), c.uri, get(c.response))
        else {
            return AuthResult::Malformed;
        };
        let (method, ruri) = match msg.start() {
            StartLine::Request {
                method_name, uri, ..
            } => (method_name.of(buf), uri),
            StartLine::Response { .. } => return AuthResult::Malformed,
        };
        // RFC 2617 §3.2.2.5 (RFC 3261 §22.4): the credentials must be for this request's
        // resource, else 400.
        if !names_resource(buf, ruri, uri_span, local) {
            return AuthResult::UriMismatch;
        }
        let uri = uri_span.of(buf);
        let qop = match get(c.qop) {
            None => None,
            Some(q) if q.eq_ignore_ascii_case(b"auth") => match (get(c.nc), get(c.cnonce)) {
                (Some(nc), Some(cnonce)) if parse_nc(nc).is_some() => {
                    Some(Qop { qop: q, nc, cnonce })
                }
                _ => return AuthResult::Malformed,
            },
            Some(_) => return AuthResult::Malformed,
        };
        match self.nonces.check(nonce, now, self.realm.as_bytes(), client) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale => return AuthResult::Stale,
            NonceCheck::Invalid => return AuthResult::BadNonce,
        }
        let Some(ha1) = self.users.get(user).and_then(|s| s.ha1(algorithm)) else {
            return AuthResult::UnknownUser;
        };
        let expected = algorithm.response(ha1.as_bytes(), nonce, qop, A2 { method, uri });
        let Some(given) = Hex::parse(algorithm, response) else {
            return AuthResult::BadResponse;
        };
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return AuthResult::BadResponse;
        }
        let must_match = kind == Challenge::Www || self.match_user;
        if must_match && owner != Some(user) {
            return AuthResult::UserMismatch;
        }
        // RFC 2617 §3.2.2: nc counts the requests made with this nonce; one the node has
        // seen is a replay. Checked last, so only good credentials take a slot. RFC 2069
        // credentials (no qop) count as nc = 1.
        // `nc` was checked with the qop above.
        let nc = qop.and_then(|q| parse_nc(q.nc)).unwrap_or(1);
        if !self.counts.admit(nonce, nc, self.nonces.seconds(now)) {
            return AuthResult::Replayed;
        }
        AuthResult::Ok
    }
}

/// RFC 2617 §3.2.2: `nc` is 8 hex digits.
fn parse_nc(text: &[u8]) -> Option<u32> {
    if text.len() != 8 {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

/// The digest `uri` is the Request-URI's resource ([`same_resource`]) or names the
/// listener `local` ([`names_listener`]). The digest `uri` is parsed once for both.
fn names_resource(buf: &[u8], ruri: Span, uri: Span, local: Option<SocketAddr>) -> bool {
    if ruri.of(buf) == uri.of(buf) {
        return true;
    }
    let Ok(digest_uri) = SipUri::parse(buf, uri) else {
        return false;
    };
    let same = SipUri::parse(buf, ruri).is_ok_and(|r| same_resource(buf, &r, &digest_uri));
    same || local.is_some_and(|local| names_listener(&digest_uri, local))
}

/// RFC 2617 §3.2.2.5: the digest `uri` names the Request-URI's resource: both SIP URIs
/// with the same scheme, user, host (case ignored) and port (the scheme's default when
/// absent); parameters are not compared — a phone may write `;transport=` in one and not
/// the other.
fn same_resource(buf: &[u8], x: &SipUri, y: &SipUri) -> bool {
    let port = |u: &SipUri| {
        u.port.unwrap_or(match u.scheme {
            crate::sip::Scheme::Sips => 5061,
            _ => 5060,
        })
    };
    x.scheme == y.scheme
        && x.user.map(|s| s.of(buf)) == y.user.map(|s| s.of(buf))
        && x.host
            .span
            .of(buf)
            .eq_ignore_ascii_case(y.host.span.of(buf))
        && port(x) == port(y)
}

/// Whether the digest `uri` is `sip:IP[:PORT]` (no user) naming the listener `local`.
fn names_listener(u: &SipUri, local: SocketAddr) -> bool {
    let ip = match u.host.kind {
        crate::sip::HostKind::Ipv4(ip) => IpAddr::V4(ip),
        crate::sip::HostKind::Ipv6(ip) => IpAddr::V6(ip),
        crate::sip::HostKind::Name => return false,
    };
    u.user.is_none()
        && u.scheme == crate::sip::Scheme::Sip
        && (ip == local.ip() || local.ip().is_unspecified())
        && u.port.unwrap_or(5060) == local.port()
}

/// A random key for the replay table's slot hash (std's per-process random hasher keys).
fn random_key() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut key = [0u8; 16];
    for (i, half) in key.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::nonce::NonceKey;
    use std::time::Duration;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    fn auth(algorithms: Vec<Algorithm>, t0: Instant) -> Auth {
        let users =
            Users::parse("alice:edge.example:password:alice-secret\n", "edge.example").unwrap();
        let nonces = Nonces::new(
            vec![NonceKey {
                id: 1,
                secret: [3; 32],
            }],
            Duration::from_secs(300),
            t0,
            1_700_000_000,
        )
        .unwrap();
        Auth::new(algorithms, users, nonces, true)
    }

    /// What a client computes for `password`, as an Authorization line.
    fn answer(alg: Algorithm, nonce: &str, password: &str, method: &str, header: &str) -> String {
        let ha1 = alg.ha1(b"alice", b"edge.example", password.as_bytes());
        let qop = Qop {
            qop: b"auth",
            nc: b"00000001",
            cnonce: b"c0ffee",
        };
        let a2 = A2 {
            method: method.as_bytes(),
            uri: b"sip:edge.example",
        };
        let response = alg.response(ha1.as_bytes(), nonce.as_bytes(), Some(qop), a2);
        format!(
            "{header}: Digest username=\"alice\", realm=\"edge.example\", nonce=\"{nonce}\", \
             uri=\"sip:edge.example\", response=\"{}\", algorithm={}, cnonce=\"c0ffee\", \
             qop=auth, nc=00000001\r\n",
            String::from_utf8_lossy(response.as_bytes()),
            alg.name()
        )
    }

    fn request(method: &str, from_user: &str, extra: &str) -> Vec<u8> {
        format!(
            "{method} sip:edge.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\n\
             From: <sip:{from_user}@edge.example>;tag=1\r\nTo: <sip:{from_user}@edge.example>\r\n\
             Call-ID: c\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn verify(
        auth: &Auth,
        raw: &[u8],
        kind: Challenge,
        now: Instant,
    ) -> Result<usize, (u16, AuthResult, bool)> {
        let msg = Message::scan(raw, false).unwrap();
        match auth.verify(&msg, kind, Some(b"alice"), CLIENT, now) {
            Verified::Ok { lines } => Ok(lines.len()),
            Verified::Refuse(a, r) => {
                let stale = matches!(a.extra, Extra::Challenge { stale: true, .. });
                Err((a.code, r, stale))
            }
        }
    }

    fn nonce_of(auth: &Auth, now: Instant) -> String {
        let nonce = auth.nonces.mint(now, b"edge.example", CLIENT);
        String::from_utf8(nonce.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn missing_credentials_are_challenged_401_or_407() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Md5], t0);
        let raw = request("REGISTER", "alice", "");
        assert_eq!(
            verify(&a, &raw, Challenge::Www, t0),
            Err((401, AuthResult::Missing, false))
        );
        let raw = request(
            "INVITE",
            "alice",
            "Proxy-Authorization: Digest username=\"x\", realm=\"elsewhere\"\r\n",
        );
        assert_eq!(
            verify(&a, &raw, Challenge::Proxy, t0),
            Err((407, AuthResult::Missing, false))
        );
    }

    #[test]
    fn good_credentials_pass_with_md5_and_sha256() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Sha256, Algorithm::Md5], t0);
        for alg in Algorithm::ALL {
            let line = answer(
                alg,
                &nonce_of(&a, t0),
                "alice-secret",
                "REGISTER",
                "Authorization",
            );
            let raw = request("REGISTER", "alice", &line);
            assert_eq!(verify(&a, &raw, Challenge::Www, t0), Ok(1), "{alg:?}");
        }
        let line = answer(
            Algorithm::Md5,
            &nonce_of(&a, t0),
            "alice-secret",
            "INVITE",
            "Proxy-Authorization",
        );
        let raw = request("INVITE", "alice", &line);
        assert_eq!(verify(&a, &raw, Challenge::Proxy, t0), Ok(1));
    }

    /// Alice's REGISTER with `line` as its credentials, verified at `now`.
    fn register_with(a: &Auth, line: &str, now: Instant) -> Result<usize, (u16, AuthResult, bool)> {
        verify(a, &request("REGISTER", "alice", line), Challenge::Www, now)
    }

    #[test]
    fn failures_are_named() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Md5], t0);
        let nonce = nonce_of(&a, t0);
        let with = |alg, password| answer(alg, &nonce, password, "REGISTER", "Authorization");
        let good = with(Algorithm::Md5, "alice-secret");
        let later = t0 + Duration::from_secs(301);
        let cases = [
            (
                with(Algorithm::Md5, "guess"),
                t0,
                (403, AuthResult::BadResponse, false),
            ),
            (
                with(Algorithm::Sha256, "alice-secret"),
                t0,
                (401, AuthResult::BadAlgorithm, false),
            ),
            (good.clone(), later, (401, AuthResult::Stale, true)),
            (
                good.replace(&nonce[..4], "ffff"),
                t0,
                (401, AuthResult::BadNonce, false),
            ),
            (
                good.replace("username=\"alice\"", "username=\"mallory\""),
                t0,
                (403, AuthResult::UnknownUser, false),
            ),
            (
                good.replace("response=", "xresponse="),
                t0,
                (403, AuthResult::Malformed, false),
            ),
        ];
        for (line, now, refusal) in cases {
            assert_eq!(register_with(&a, &line, now), Err(refusal), "{line}");
        }
        assert_eq!(register_with(&a, &good, t0), Ok(1));
    }

    #[test]
    fn alice_may_not_register_or_call_as_bob() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Md5], t0);
        let good = answer(
            Algorithm::Md5,
            &nonce_of(&a, t0),
            "alice-secret",
            "REGISTER",
            "Authorization",
        );
        let raw = request("REGISTER", "bob", &good);
        let msg = Message::scan(&raw, false).unwrap();
        match a.verify(&msg, Challenge::Www, Some(b"bob"), CLIENT, t0) {
            Verified::Refuse(answer, AuthResult::UserMismatch) => assert_eq!(answer.code, 403),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_challenge_offers_each_algorithm_in_order() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Sha256, Algorithm::Md5], t0);
        let raw = request("INVITE", "alice", "");
        let msg = Message::scan(&raw, false).unwrap();
        let mut text = Vec::new();
        a.challenge(Challenge::Proxy, CLIENT, t0, true)
            .write_headers(&msg, &mut |b| text.extend_from_slice(b));
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("Proxy-Authenticate: Digest realm=\"edge.example\", nonce=\"")
        );
        assert!(
            lines[0].ends_with("\", qop=\"auth\", algorithm=SHA-256, stale=true"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("algorithm=MD5"));
    }

    #[test]
    fn rfc2617_3_2_2_5_the_digest_uri_must_be_the_request_uri() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Md5], t0);
        let nonce = nonce_of(&a, t0);
        let good = answer(
            Algorithm::Md5,
            &nonce,
            "alice-secret",
            "INVITE",
            "Proxy-Authorization",
        );
        // The credentials say uri="sip:edge.example"; this INVITE is for sip:bob@edge.example.
        let raw = String::from_utf8(request("INVITE", "alice", &good))
            .unwrap()
            .replacen(
                "INVITE sip:edge.example ",
                "INVITE sip:bob@edge.example ",
                1,
            );
        assert_eq!(
            verify(&a, raw.as_bytes(), Challenge::Proxy, t0),
            Err((400, AuthResult::UriMismatch, false))
        );
        // The same resource written differently (case, default port, a parameter) passes.
        let same = |a: &str, b: &str| {
            let buf = format!("{a} {b}");
            names_resource(
                buf.as_bytes(),
                Span::new(0, a.len()),
                Span::new(a.len() + 1, buf.len()),
                None,
            )
        };
        assert!(same(
            "sip:Alice@Edge.Example",
            "sip:Alice@edge.example:5060;transport=udp"
        ));
        assert!(same("SIP:edge.example", "sip:EDGE.example"));
        assert!(
            !same("sip:Alice@edge.example", "sip:alice@edge.example"),
            "user: case counts"
        );
        assert!(
            !same("sip:alice@edge.example", "sips:alice@edge.example"),
            "another scheme"
        );
        assert!(
            !same("sip:alice@edge.example", "sip:alice@edge.example:5070"),
            "another port"
        );
        assert!(!same("sip:alice@edge.example", "garbage"));
        // The listener's own address (what sipp writes) names the resource too.
        let buf = b"sip:192.0.2.1:5070 sip:bob@192.0.2.1:5070 sip:192.0.2.1";
        let local = "192.0.2.1:5070".parse().unwrap();
        let listener = |start, end| {
            let uri = SipUri::parse(buf, Span::new(start, end)).unwrap();
            names_listener(&uri, local)
        };
        assert!(listener(0, 18));
        assert!(!listener(19, 41), "a user is a resource");
        assert!(!listener(42, buf.len()), "another port");
        let ruri = Span::new(19, 41);
        assert!(names_resource(buf, ruri, Span::new(0, 18), Some(local)));
        assert!(!names_resource(buf, ruri, Span::new(0, 18), None));
    }

    #[test]
    fn rfc2617_3_2_2_a_replayed_nonce_count_is_challenged_again_stale() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Md5], t0);
        let nonce = nonce_of(&a, t0);
        let good = answer(
            Algorithm::Md5,
            &nonce,
            "alice-secret",
            "REGISTER",
            "Authorization",
        );
        let raw = request("REGISTER", "alice", &good);
        assert_eq!(verify(&a, &raw, Challenge::Www, t0), Ok(1));
        // A UDP retransmission within Timer F passes as the original did (no transaction
        // layer in a stateless proxy)...
        let soon = t0 + Duration::from_secs(2);
        assert_eq!(verify(&a, &raw, Challenge::Www, soon), Ok(1));
        // ...the same (nonce, nc) later is a replay: a fresh challenge with stale=true.
        let later = t0 + Duration::from_secs(40);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, later),
            Err((401, AuthResult::Replayed, true))
        );
        // The next nc with the same nonce is the client's next request: accepted.
        let next = good.replace("nc=00000001", "nc=00000002");
        let next = next.replace(
            &param_of(&good, "response"),
            &response_for(&nonce, "00000002"),
        );
        let raw = request("REGISTER", "alice", &next);
        assert_eq!(verify(&a, &raw, Challenge::Www, later), Ok(1));
        // An nc that is not 8 hex digits is malformed (403).
        let bad = good.replace("nc=00000001", "nc=1");
        let raw = request("REGISTER", "alice", &bad);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, later),
            Err((403, AuthResult::Malformed, false))
        );
    }

    fn param_of(line: &str, name: &str) -> String {
        let at = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[at..at + line[at..].find('"').unwrap()].to_owned()
    }

    fn response_for(nonce: &str, nc: &str) -> String {
        let alg = Algorithm::Md5;
        let ha1 = alg.ha1(b"alice", b"edge.example", b"alice-secret");
        let qop = Qop {
            qop: b"auth",
            nc: nc.as_bytes(),
            cnonce: b"c0ffee",
        };
        let a2 = A2 {
            method: b"REGISTER",
            uri: b"sip:edge.example",
        };
        let r = alg.response(ha1.as_bytes(), nonce.as_bytes(), Some(qop), a2);
        String::from_utf8_lossy(r.as_bytes()).into_owned()
    }
}
