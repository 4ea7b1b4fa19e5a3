//! The registrar's counters: REGISTER outcomes, authentication outcomes and location
//! lookups, shared by every worker (relaxed atomics, read by the stats thread).

use std::sync::atomic::{AtomicU64, Ordering};

use super::auth::AuthResult;

macro_rules! named_results {
    ($(#[$meta:meta])* $ty:ident { $($(#[$doc:meta])* $variant:ident => $name:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $ty {
            $($(#[$doc])* $variant,)+
        }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)+];
            pub const COUNT: usize = Self::ALL.len();

            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }
    };
}

named_results! {
    /// How a REGISTER for our domain ended.
    RegisterResult {
        /// 200 with at least one binding.
        Ok => "ok",
        /// 200 after removing the last binding (un-REGISTER).
        Removed => "removed",
        IntervalTooBrief => "interval_too_brief",
        OutOfOrder => "out_of_order",
        TooManyBindings => "too_many_bindings",
        TableFull => "table_full",
        /// 400 / 420: a malformed Contact, Expires or wildcard; an unsupported Require.
        BadRequest => "bad_request",
        /// 404: the To URI is not a user of ours (§10.3 step 5).
        NotFound => "not_found",
    }
}

named_results! {
    /// What the shared store (Redis) did, on its side threads.
    StoreResult {
        /// An AoR's bindings written (or deleted) and announced.
        Written => "written",
        /// Another node's AoR read back into this node's table.
        Applied => "applied",
        /// A store command or connection failed (the local table keeps serving).
        Error => "error",
        /// A change not queued for the writer: its queue was full.
        Dropped => "dropped",
    }
}

named_results! {
    /// NAT keepalives to UDP bindings (on their side thread; answers on the workers).
    KeepaliveResult {
        /// A CRLF or OPTIONS ping sent to a flow.
        Sent => "sent",
        /// A ping that could not be sent (the socket's buffer full, no listener to send from).
        Failed => "failed",
        /// An answer to an OPTIONS ping from its flow.
        Answered => "answered",
        /// A flow that left `dead-after` OPTIONS unanswered: its bindings were removed.
        Dead => "dead",
    }
}

named_results! {
    /// What a request for one of our AoRs found (RFC 3261 §16.5 through the location service).
    LookupResult {
        Found => "found",
        /// 480: registered once, no live binding now.
        NoBinding => "no_binding",
        /// 404 (configurable): no such user.
        Unknown => "unknown",
    }
}

/// Every counter, indexed by the enums' discriminants.
#[derive(Debug)]
pub struct RegistrarCounters {
    register: [AtomicU64; RegisterResult::COUNT],
    auth: [AtomicU64; AuthResult::COUNT],
    lookup: [AtomicU64; LookupResult::COUNT],
    store: [AtomicU64; StoreResult::COUNT],
    keepalive: [AtomicU64; KeepaliveResult::COUNT],
}

impl Default for RegistrarCounters {
    fn default() -> RegistrarCounters {
        RegistrarCounters {
            register: std::array::from_fn(|_| AtomicU64::new(0)),
            auth: std::array::from_fn(|_| AtomicU64::new(0)),
            lookup: std::array::from_fn(|_| AtomicU64::new(0)),
            store: std::array::from_fn(|_| AtomicU64::new(0)),
            keepalive: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl RegistrarCounters {
    pub fn register(&self, r: RegisterResult) {
        self.register[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth(&self, r: AuthResult) {
        self.auth[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn lookup(&self, r: LookupResult) {
        self.lookup[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn store(&self, r: StoreResult) {
        self.store[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn keepalive(&self, r: KeepaliveResult) {
        self.keepalive[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A copy for the stats.
    pub fn read(&self) -> RegistrarStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RegistrarStats {
            register: RegisterResult::ALL
                .iter()
                .map(|r| (r.name().to_owned(), load(&self.register[*r as usize])))
                .collect(),
            auth: AuthResult::ALL
                .iter()
                .map(|r| (r.name().to_owned(), load(&self.auth[*r as usize])))
                .collect(),
            lookup: LookupResult::ALL
                .iter()
                .map(|r| (r.name().to_owned(), load(&self.lookup[*r as usize])))
                .collect(),
            store: StoreResult::ALL
                .iter()
                .map(|r| (r.name().to_owned(), load(&self.store[*r as usize])))
                .collect(),
            keepalive: KeepaliveResult::ALL
                .iter()
                .map(|r| (r.name().to_owned(), load(&self.keepalive[*r as usize])))
                .collect(),
            aors: 0,
            bindings: 0,
        }
    }
}

/// The registrar's figures at one moment, by stable names.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistrarStats {
    pub register: Vec<(String, u64)>,
    pub auth: Vec<(String, u64)>,
    pub lookup: Vec<(String, u64)>,
    /// The shared store's counters (all zero without one).
    #[serde(default)]
    pub store: Vec<(String, u64)>,
    /// NAT keepalives (all zero when they are off).
    #[serde(default)]
    pub keepalive: Vec<(String, u64)>,
    pub aors: u64,
    pub bindings: u64,
}

impl RegistrarStats {
    /// Authentication failures (the 403s), summed.
    pub fn auth_failures(&self) -> u64 {
        self.auth
            .iter()
            .filter(|(name, _)| {
                AuthResult::ALL
                    .iter()
                    .any(|r| r.name() == *name && r.failed())
            })
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_name() {
        let c = RegistrarCounters::default();
        c.register(RegisterResult::Ok);
        c.auth(AuthResult::BadResponse);
        c.auth(AuthResult::Missing);
        c.lookup(LookupResult::NoBinding);
        let s = c.read();
        assert!(s.register.contains(&("ok".into(), 1)));
        assert!(s.lookup.contains(&("no_binding".into(), 1)));
        assert_eq!(s.auth_failures(), 1);
    }
}
