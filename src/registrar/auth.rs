//! Digest authentication of requests (RFC 3261 §22; RFC 2617; RFC 8760).
//!
//! A REGISTER is challenged with 401 and WWW-Authenticate and answers with Authorization
//! (§22.2); any other request with 407 and Proxy-Authenticate, answered with
//! Proxy-Authorization (§22.3). Nonces are stateless ([`super::nonce`]); the HA1 comes from
//! the users file; the response is compared in constant time. The authenticated user must be
//! the request's own: the To user for a REGISTER (§10.3 step 4: who may change an AoR), the
//! From user otherwise (configurable). Every outcome has a named, counted reason.

use std::net::IpAddr;
use std::time::Instant;

use smallvec::SmallVec;
use subtle::ConstantTimeEq;

use crate::sip::{Message, Span, StartLine};

use super::answer::{Answer, Extra};
use super::credentials::Credentials;
use super::digest::{A2, Algorithm, Hex, Qop};
use super::fields;
use super::nonce::{NonceCheck, Nonces};
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
        match self.check(msg, &creds, kind, owner, client, now) {
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
        let answer = if result.failed() {
            Answer::plain(403, "Forbidden")
        } else {
            self.challenge(kind, client, now, result == AuthResult::Stale)
        };
        Verified::Refuse(answer, result)
    }

    fn check(
        &self,
        msg: &Message<'_>,
        c: &Credentials,
        kind: Challenge,
        owner: Option<&[u8]>,
        client: IpAddr,
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
        let (Some(user), Some(nonce), Some(uri), Some(response)) =
            (get(c.username), get(c.nonce), get(c.uri), get(c.response))
        else {
            return AuthResult::Malformed;
        };
        let qop = match get(c.qop) {
            None => None,
            Some(q) if q.eq_ignore_ascii_case(b"auth") => match (get(c.nc), get(c.cnonce)) {
                (Some(nc), Some(cnonce)) => Some(Qop { qop: q, nc, cnonce }),
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
        let method = match msg.start() {
            StartLine::Request { method_name, .. } => method_name.of(buf),
            StartLine::Response { .. } => return AuthResult::Malformed,
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
        AuthResult::Ok
    }
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

    #[test]
    fn failures_are_named() {
        let t0 = Instant::now();
        let a = auth(vec![Algorithm::Md5], t0);
        let nonce = nonce_of(&a, t0);
        let wrong = answer(Algorithm::Md5, &nonce, "guess", "REGISTER", "Authorization");
        let raw = request("REGISTER", "alice", &wrong);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, t0),
            Err((403, AuthResult::BadResponse, false))
        );
        let sha = answer(
            Algorithm::Sha256,
            &nonce,
            "alice-secret",
            "REGISTER",
            "Authorization",
        );
        let raw = request("REGISTER", "alice", &sha);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, t0),
            Err((401, AuthResult::BadAlgorithm, false))
        );
        let good = answer(
            Algorithm::Md5,
            &nonce,
            "alice-secret",
            "REGISTER",
            "Authorization",
        );
        let later = t0 + Duration::from_secs(301);
        let raw = request("REGISTER", "alice", &good);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, later),
            Err((401, AuthResult::Stale, true))
        );
        let forged = good.replace(&nonce[..4], "ffff");
        let raw = request("REGISTER", "alice", &forged);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, t0),
            Err((401, AuthResult::BadNonce, false))
        );
        let stranger = good.replace("username=\"alice\"", "username=\"mallory\"");
        let raw = request("REGISTER", "alice", &stranger);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, t0),
            Err((403, AuthResult::UnknownUser, false))
        );
        let no_response = good.replace("response=", "xresponse=");
        let raw = request("REGISTER", "alice", &no_response);
        assert_eq!(
            verify(&a, &raw, Challenge::Www, t0),
            Err((403, AuthResult::Malformed, false))
        );
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
}
