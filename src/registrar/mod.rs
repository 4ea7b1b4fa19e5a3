//! The registrar, the location service and digest authentication (RFC 3261 §10.3, §22;
//! RFC 8760; RFC 3327; RFC 5626).
//!
//! [`Registrar`] is built once and shared by every worker (`Arc`); like the proxy core it
//! is sans-IO: each call gets the scanned message, the flow it came over and `now`, and
//! returns an [`Answer`] to send or what to do next. It owns:
//! - [`Auth`]: 401 / 407 challenges with stateless nonces, verification against the users
//!   file, constant-time comparison, a named [`AuthResult`] for every outcome;
//! - [`Location`]: every AoR's bindings in a lock-free map, with the flow each REGISTER
//!   came over, its expiry and q;
//! - the counters the stats export.
//!
//! The proxy calls [`Registrar::register`] for a REGISTER addressed to one of our domains,
//! [`Registrar::authenticate`] for out-of-dialog requests from our users, and
//! [`Registrar::lookup`] for a Request-URI naming one of our AoRs. A policy layer may call
//! the same three.

#![forbid(unsafe_code)]

mod answer;
mod auth;
mod bindings;
mod counters;
mod credentials;
mod digest;
mod fields;
mod keepalive;
mod location;
pub mod nonce;
mod register;
mod replay;
pub mod snapshot;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use std::time::Instant;

use crate::sip::Flow;
use crate::sip::{HeaderName, Message, Method};

pub use answer::{Answer, Extra};
pub use auth::{Auth, AuthResult, Challenge, Verified};
pub use bindings::{Binding, ContactSpec, Limits, MAX_CONTACT_URI, Refusal};
pub use counters::{
    KeepaliveResult, LookupResult, RegisterResult, RegistrarCounters, RegistrarStats, StoreResult,
};
pub use credentials::Credentials;
pub use digest::{A2, Algorithm, Hex, Qop};
pub use keepalive::{KeepaliveAnswers, KeepaliveConfig, KeepaliveMode, Keepalives};
pub use location::{Location, Lookup, RegisterError};
pub use nonce::{NonceKey, Nonces};
pub use users::{Secrets, Users, UsersError, entry_lines, replace_entry};

/// The longest AoR key (`user@domain`) the table holds; longer users are unknown.
const MAX_AOR: usize = 256;

/// What the registrar does beside the table and the authenticator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The domains we are the registrar for, lower-case; the first also stands for requests
    /// addressed to the proxy's own address (`sip:alice@192.0.2.1`).
    pub domains: Vec<String>,
    pub limits: Limits,
    /// Most AoRs held.
    pub capacity: usize,
    /// Challenge every REGISTER (401).
    pub authenticate_register: bool,
    /// Out-of-dialog requests of these methods whose From is one of our domains are
    /// challenged (407).
    pub authenticate: Vec<Method>,
    /// The status for a request to a user we do not know (404 by default; 480 hides who
    /// exists).
    pub unknown_user: u16,
}

impl Default for RegistrarConfig {
    fn default() -> RegistrarConfig {
        RegistrarConfig {
            domains: Vec::new(),
            limits: Limits::default(),
            capacity: 100_000,
            authenticate_register: true,
            authenticate: vec![
                Method::Invite,
                Method::Message,
                Method::Subscribe,
                Method::Refer,
                Method::Publish,
            ],
            unknown_user: 404,
        }
    }
}

/// The registrar, shared by every worker.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    auth: Option<Auth>,
    location: Arc<Location>,
    counters: RegistrarCounters,
    /// The shared store's writer, when there is one: every change of an AoR goes there.
    replicate: Option<Sender<Changed>>,
    /// The SIP addresses of the other nodes sharing the store: requests from them were
    /// authenticated where they came in.
    peers: ArcSwap<Vec<SocketAddr>>,
    /// Recognises answers to our NAT keepalives, when they are OPTIONS.
    keepalive: Option<KeepaliveAnswers>,
}

/// An AoR whose bindings a REGISTER here changed, for the shared store's writer.
#[derive(Debug)]
pub struct Changed {
    pub aor: Box<[u8]>,
    pub bindings: Vec<Binding>,
}

/// An AoR key on the stack: `user@domain`, the domain as configured.
pub struct AorKey {
    bytes: [u8; MAX_AOR],
    len: usize,
}

impl AorKey {
    pub fn new(user: &[u8], domain: &str) -> Option<AorKey> {
        let len = user.len() + 1 + domain.len();
        let mut key = AorKey {
            bytes: [0; MAX_AOR],
            len,
        };
        let dst = key.bytes.get_mut(..len)?;
        dst[..user.len()].copy_from_slice(user);
        dst[user.len()] = b'@';
        dst[user.len() + 1..].copy_from_slice(domain.as_bytes());
        Some(key)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Registrar {
    /// `auth` `None`: nothing is authenticated (every REGISTER for our domains is taken).
    pub fn new(config: RegistrarConfig, auth: Option<Auth>, location: Arc<Location>) -> Registrar {
        Registrar {
            config,
            auth,
            location,
            counters: RegistrarCounters::default(),
            replicate: None,
            peers: ArcSwap::from_pointee(Vec::new()),
            keepalive: None,
        }
    }

    /// Answers to OPTIONS keepalives are recognised by `answers` (see [`Keepalives`]).
    pub fn with_keepalive(mut self, answers: KeepaliveAnswers) -> Registrar {
        self.keepalive = Some(answers);
        self
    }

    /// Whether `msg` answers one of our keepalives: then the worker consumes it (a
    /// keepalive's answer is not forwarded).
    pub fn consume_keepalive_answer(&self, msg: &Message<'_>, source: SocketAddr) -> bool {
        self.keepalive
            .as_ref()
            .is_some_and(|k| k.consume(msg, source))
    }

    /// Removes every binding whose UDP flow is `source` at listener `local` (a dead flow,
    /// RFC 5626 §4.4's reason for keepalives); the change goes to the shared store.
    pub fn remove_flow(&self, source: SocketAddr, local: SocketAddr, now: Instant) {
        let dead = |b: &Binding| {
            b.remote.is_none()
                && b.flow.transport == crate::sip::Transport::Udp
                && b.flow.source == source
                && b.flow.local == local
        };
        let mut aors = Vec::new();
        self.location.each(|aor, bindings| {
            if bindings.iter().any(dead) {
                aors.push(Box::<[u8]>::from(aor));
            }
        });
        for aor in aors {
            if let Some(left) = self.location.remove_where(&aor, dead) {
                let live: Vec<Binding> = left.into_iter().filter(|b| b.expires > now).collect();
                self.replicate(&aor, &live);
            }
        }
    }

    /// Sends every change of an AoR to `writer` (the shared store's side thread).
    pub fn with_replication(mut self, writer: Sender<Changed>) -> Registrar {
        self.replicate = Some(writer);
        self
    }

    /// Queues a change for the store's writer without waiting (a full queue is counted).
    fn replicate(&self, aor: &[u8], bindings: &[Binding]) {
        if let Some(writer) = &self.replicate {
            let change = Changed {
                aor: aor.into(),
                bindings: bindings.to_vec(),
            };
            if writer.try_send(change).is_err() {
                self.counters.store(StoreResult::Dropped);
            }
        }
    }

    /// The counters, for the store's side threads.
    pub fn counters(&self) -> &RegistrarCounters {
        &self.counters
    }

    /// Remembers another node's SIP address (learnt from the store).
    pub fn add_peer(&self, addr: SocketAddr) {
        if !self.is_peer(addr) {
            self.peers.rcu(|old| {
                let mut new = Vec::clone(old);
                new.push(addr);
                new
            });
        }
    }

    /// Whether `addr` is another node of the cluster.
    pub fn is_peer(&self, addr: SocketAddr) -> bool {
        self.peers.load().contains(&addr)
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    pub fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }

    pub fn location(&self) -> &Arc<Location> {
        &self.location
    }

    /// The counters, with the table's size.
    pub fn stats(&self) -> RegistrarStats {
        let mut stats = self.counters.read();
        stats.aors = self.location.aors() as u64;
        stats.bindings = self.location.bindings() as u64;
        stats
    }

    /// The index of the domain `host` names, ignoring case.
    pub fn domain(&self, host: &[u8]) -> Option<usize> {
        self.config
            .domains
            .iter()
            .position(|d| d.as_bytes().eq_ignore_ascii_case(host))
    }

    /// RFC 3261 §10.3 for a REGISTER whose Request-URI is our domain `domain` (an index
    /// into the configured domains): step 3 (401 challenge), 4–5 (the To user is the
    /// authenticated one and ours), then the bindings.
    pub fn register(&self, msg: &Message<'_>, domain: usize, flow: Flow, now: Instant) -> Answer {
        let to = fields::address(msg, HeaderName::To);
        let to_user = to
            .as_ref()
            .and_then(|(_, uri)| fields::user(msg.buf(), uri));
        if self.config.authenticate_register
            && let Some(auth) = &self.auth
        {
            let client = flow.source.ip();
            match auth.verify_at(msg, Challenge::Www, to_user, client, Some(flow.local), now) {
                Verified::Ok { .. } => self.counters.auth(AuthResult::Ok),
                Verified::Refuse(answer, result) => {
                    self.counters.auth(result);
                    return answer;
                }
            }
        }
        // Step 5: the AoR is the To URI, in the Request-URI's domain, a user we know.
        let (Some((_, to_uri)), Some(user)) = (to, to_user) else {
            return self.counted(Answer::plain(404, "Not Found"), RegisterResult::NotFound);
        };
        let to_host = to_uri.host.span.of(msg.buf());
        let same_domain = self.domain(to_host).is_none_or(|d| d == domain);
        let known = self
            .auth
            .as_ref()
            .is_none_or(|a| a.users().get(user).is_some());
        let key = AorKey::new(user, &self.config.domains[domain]);
        let (Some(key), true, true) = (key, same_domain, known) else {
            return self.counted(Answer::plain(404, "Not Found"), RegisterResult::NotFound);
        };
        let (answer, result) = register::register(self, msg, key.as_bytes(), flow, now);
        self.counted(answer, result)
    }

    fn counted(&self, answer: Answer, result: RegisterResult) -> Answer {
        self.counters.register(result);
        answer
    }

    /// Whether an out-of-dialog request of `method` from one of our domains must
    /// authenticate (407).
    pub fn must_authenticate(&self, method: Method) -> bool {
        self.auth.is_some()
            && method != Method::Register
            && self.config.authenticate.contains(&method)
    }

    /// RFC 3261 §22.3: verifies a request's Proxy-Authorization for our realm. The From
    /// user must be the authenticated one (unless configured otherwise). `flow`: where it
    /// came from (the nonce is bound to its source address) and to.
    pub fn authenticate(&self, msg: &Message<'_>, flow: Flow, now: Instant) -> Verified {
        let client = flow.source.ip();
        let Some(auth) = &self.auth else {
            return Verified::Ok {
                lines: Default::default(),
            };
        };
        let from = fields::address(msg, HeaderName::From);
        let from_user = from
            .as_ref()
            .and_then(|(_, uri)| fields::user(msg.buf(), uri));
        let local = Some(flow.local);
        let verified = auth.verify_at(msg, Challenge::Proxy, from_user, client, local, now);
        match &verified {
            Verified::Ok { .. } => self.counters.auth(AuthResult::Ok),
            Verified::Refuse(_, result) => self.counters.auth(*result),
        }
        verified
    }

    /// The location service (RFC 3261 §16.5 with §10): the best live binding of
    /// `user@domains[domain]`, read by `read` without allocating; otherwise the status to
    /// answer: 480 for a known user without a binding, `unknown_user` (404) for others.
    pub fn lookup<R>(
        &self,
        user: &[u8],
        domain: usize,
        now: Instant,
        read: impl FnOnce(&Binding) -> R,
    ) -> Result<R, (u16, &'static str)> {
        let key = AorKey::new(user, &self.config.domains[domain]);
        let found = key.and_then(|k| self.location.lookup(k.as_bytes(), now, read));
        let known = self
            .auth
            .as_ref()
            .is_some_and(|a| a.users().get(user).is_some());
        match found {
            Some(Lookup::Found(r)) => {
                self.counters.lookup(LookupResult::Found);
                Ok(r)
            }
            Some(Lookup::NoBinding) => self.unavailable(),
            None if known => self.unavailable(),
            None => {
                self.counters.lookup(LookupResult::Unknown);
                match self.config.unknown_user {
                    480 => Err((480, "Temporarily Unavailable")),
                    _ => Err((404, "Not Found")),
                }
            }
        }
    }

    /// Whether a lookup of `user` at `domain` that missed here is worth asking the shared
    /// store about (issue 14, several nodes): there is a store, and the user is one we know
    /// (or nobody is authenticated, so any user may have registered on another node). The
    /// AoR key to ask for.
    pub fn ask_store(&self, user: &[u8], domain: usize) -> Option<AorKey> {
        self.replicate.as_ref()?;
        let known = match &self.auth {
            Some(auth) => auth.users().get(user).is_some(),
            None => true,
        };
        known.then(|| AorKey::new(user, &self.config.domains[domain]))?
    }

    fn unavailable<R>(&self) -> Result<R, (u16, &'static str)> {
        self.counters.lookup(LookupResult::NoBinding);
        Err((480, "Temporarily Unavailable"))
    }
}
