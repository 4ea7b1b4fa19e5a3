//! Shared by the registrar's tests: the worked example's users and realm, a core proxy with
//! the registrar, and a digest client that answers a challenge the way a phone does.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrovia::proxy::{
    Context, Input, Listener, OUTPUT_BUFFER_SIZE, Outcome, Proxy, ProxyConfig, Tables, Transport,
    WorkerState,
};
use ferrovia::registrar::{
    A2, Algorithm, Auth, Location, NonceKey, Nonces, Qop, Registrar, RegistrarConfig, Users,
};
use ferrovia::sip::Flow;
use ferrovia::sip::Method;

pub const PROXY: &str = "192.0.2.10:5060";
pub const DOMAIN: &str = "edge.example";
pub const USERS: &str = "alice:edge.example:password:alice-secret\n\
                         bob:edge.example:password:bob-secret\n\
                         carol:edge.example:password:carol-secret\n";

/// The worked example's registrar (MD5, REGISTER and INVITE/MESSAGE authenticated).
pub fn registrar(now: Instant) -> Arc<Registrar> {
    let users = Users::parse(USERS, DOMAIN).unwrap();
    let key = NonceKey {
        id: 1,
        secret: [5; 32],
    };
    let nonces = Nonces::new(vec![key], Duration::from_secs(300), now, 1_800_000_000).unwrap();
    let auth = Auth::new(vec![Algorithm::Md5], users, nonces, true);
    let config = RegistrarConfig {
        domains: vec![DOMAIN.into()],
        authenticate: vec![Method::Invite, Method::Message],
        ..RegistrarConfig::default()
    };
    Arc::new(Registrar::new(
        config,
        Some(auth),
        Arc::new(Location::new(1000)),
    ))
}

/// A proxy with the context a worker gives it: the registrar in the shared tables.
pub struct Core {
    pub proxy: Proxy,
    pub tables: Tables,
    pub state: WorkerState,
}

impl Core {
    /// `Proxy::handle` with this core's context.
    pub fn handle(&mut self, input: Input<'_>, out: &mut [u8]) -> Outcome {
        let mut ctx = Context::new(&self.tables, &mut self.state);
        self.proxy.handle(input, &mut ctx, out)
    }

    /// Handles one message: the outcome and the text it wrote (empty for a drop or a park).
    pub fn exchange(&mut self, input: Input<'_>) -> (Outcome, String) {
        let mut out = vec![0u8; OUTPUT_BUFFER_SIZE];
        let outcome = self.handle(input, &mut out);
        let len = match outcome {
            Outcome::Forward(t) | Outcome::Reply { transmit: t, .. } => t.len,
            Outcome::Drop(_) | Outcome::Park(_) => 0,
        };
        (outcome, String::from_utf8_lossy(&out[..len]).into_owned())
    }
}

/// The status of a reply the proxy wrote itself, `None` for anything else.
pub fn status(outcome: &Outcome) -> Option<u16> {
    match outcome {
        Outcome::Reply { status, .. } => Some(*status),
        _ => None,
    }
}

/// A core proxy on UDP and TCP 192.0.2.10:5060 with Record-Route and the registrar.
pub fn proxy(registrar: Arc<Registrar>) -> Core {
    let udp = Listener {
        transport: Transport::Udp,
        addr: PROXY.parse().unwrap(),
        advertise: None,
    };
    let mut config = ProxyConfig::new(udp, *b"ferrovia-testkey");
    config.listeners.push(Listener {
        transport: Transport::Tcp,
        ..config.listeners[0].clone()
    });
    config.record_route = true;
    let proxy = Proxy::new(config).unwrap();
    let state = WorkerState::new(proxy.config());
    let tables = Tables {
        registrar: Some(registrar),
        ..Tables::default()
    };
    Core {
        proxy,
        tables,
        state,
    }
}

pub fn udp<'a>(data: &'a [u8], source: &str, now: Instant) -> Input<'a> {
    Input {
        data,
        flow: Flow::new(
            Transport::Udp,
            source.parse::<SocketAddr>().unwrap(),
            PROXY.parse().unwrap(),
        ),
        now,
    }
}

/// The value of `name="..."` (or `name=token`) in a challenge line.
pub fn param(text: &str, name: &str) -> Option<String> {
    let at = text.find(&format!("{name}="))? + name.len() + 1;
    let rest = &text[at..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => rest.split([',', '\r', '\n', ' ']).next()?,
    };
    Some(value.to_owned())
}

/// The Authorization (or Proxy-Authorization) line a phone sends for `user` / `password`
/// after `challenge` (the 401 / 407 text), for `method` and `uri`.
pub fn authorization(
    challenge: &str,
    header: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
) -> String {
    let nonce = param(challenge, "nonce").expect("a nonce in the challenge");
    let realm = param(challenge, "realm").expect("a realm in the challenge");
    let alg = Algorithm::Md5;
    let ha1 = alg.ha1(user.as_bytes(), realm.as_bytes(), password.as_bytes());
    let qop = Qop {
        qop: b"auth",
        nc: b"00000001",
        cnonce: b"4a5b6c",
    };
    let a2 = A2 {
        method: method.as_bytes(),
        uri: uri.as_bytes(),
    };
    let response = alg.response(ha1.as_bytes(), nonce.as_bytes(), Some(qop), a2);
    format!(
        "{header}: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{}\", algorithm=MD5, cnonce=\"4a5b6c\", qop=auth, \
         nc=00000001\r\n",
        String::from_utf8_lossy(response.as_bytes())
    )
}

/// The Authorization line `user` sends with `password` after the REGISTER challenge
/// `challenge`, for the Request-URI `sip:edge.example`.
pub fn register_auth(challenge: &str, user: &str, password: &str) -> String {
    authorization(
        challenge,
        "Authorization",
        user,
        password,
        "REGISTER",
        &format!("sip:{DOMAIN}"),
    )
}

/// A REGISTER for `user` from `contact`, with `extra` header lines.
pub fn register(user: &str, contact: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKreg{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r1\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\n{extra}\
         Content-Length: 0\r\n\r\n"
    )
}

/// An out-of-dialog INVITE from `from` to `sip:{to}@edge.example`.
pub fn invite(from: &str, to: &str, branch: &str, cseq: u32, extra: &str) -> String {
    format!(
        "INVITE sip:{to}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 10.2.2.2:5060;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@{DOMAIN}>;tag=c1\r\nTo: <sip:{to}@{DOMAIN}>\r\n\
         Call-ID: call-{branch}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{from}@10.2.2.2:5060>\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// The same registrar without a users file: every REGISTER for our domain is applied.
pub fn open_registrar() -> Arc<Registrar> {
    let config = RegistrarConfig {
        domains: vec![DOMAIN.into()],
        ..RegistrarConfig::default()
    };
    Arc::new(Registrar::new(config, None, Arc::new(Location::new(1000))))
}
